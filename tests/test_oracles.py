"""Each oracle must be able to both pass and fail, against the real tool."""

from __future__ import annotations

import smtplib
import subprocess
import textwrap
from email.message import EmailMessage

import pytest
import yaml

import oracles

pytestmark = pytest.mark.e2e  # the real tools: Synapse, htpasswd, envsubst, kubernetes-validate, PostgreSQL, coturn

# --------------------------------------------------------------------------------------
# Synapse's config parser
# --------------------------------------------------------------------------------------

HOMESERVER = textwrap.dedent(
    """\
    server_name: "matrix.example.com"
    public_baseurl: "https://matrix.example.com/"
    pid_file: /data/homeserver.pid
    report_stats: false
    listeners:
      - port: 8008
        type: http
        tls: false
        x_forwarded: true
        bind_addresses: ['0.0.0.0']
        resources:
          - names: [client, federation]
            compress: false
      - port: 9093
        type: http
        bind_addresses: ['0.0.0.0']
        resources:
          - names: [replication]
    database:
      name: psycopg2
      args:
        user: synapse
        password: ${DB_PASSWORD}
        database: synapse
        host: matrix-postgresql-rw.matrix.svc.cluster.local
        cp_min: 5
        cp_max: 10
    redis:
      enabled: true
      host: redis.matrix.svc.cluster.local
      port: 6379
      password: ${REDIS_PASSWORD}
    log_config: /data/log.yaml
    media_store_path: /data/media_store
    signing_key_path: /data/signing.key
    macaroon_secret_key: ${MACAROON_SECRET}
    registration_shared_secret: "${REGISTRATION_SECRET}"
    form_secret: $FORM_SECRET
    worker_replication_secret: ${REPLICATION_SECRET}
    turn_uris: ["turn:turn.matrix.example.com:3478?transport=udp"]
    turn_shared_secret: ${TURN_SECRET}
    url_preview_enabled: true
    url_preview_ip_range_blacklist: ['127.0.0.0/8', '10.0.0.0/8']
    trusted_key_servers:
      - server_name: "matrix.org"
    modules:
      - module: synapse_recovery_key_storage.RecoveryKeyStorageModule
        config:
          api_key: ${KEY_VAULT_API_KEY}
    media_storage_providers:
      - module: s3_storage_provider.S3StorageProviderBackend
        store_local: true
        config:
          bucket: synapse-media
          access_key_id: ${S3_ACCESS_KEY}
          secret_access_key: ${S3_SECRET_KEY}
    """
)

ENV = {
    "DB_PASSWORD": "Dbpass0123456789abcdefABCDEF0123456789abcd",
    "REDIS_PASSWORD": "Redis0123456789abcdefABCDEF0123456789abcd",
    "MACAROON_SECRET": "Macaroon0123456789abcdefABCDEF0123456789ab",
    "REGISTRATION_SECRET": "Reg0123456789abcdefABCDEF0123456789abcdef",
    "FORM_SECRET": "Form0123456789abcdefABCDEF0123456789abcde",
    "REPLICATION_SECRET": "Repl0123456789abcdefABCDEF0123456789abcde",
    "TURN_SECRET": "Turn0123456789abcdefABCDEF0123456789abcde",
    "KEY_VAULT_API_KEY": "Kv0123456789abcdefABCDEF0123456789abcdefg",
    "S3_ACCESS_KEY": "synapse-s3-user",
    "S3_SECRET_KEY": "S3sec0123456789abcdefABCDEF0123456789abcd",
}


def test_synapse_accepts_valid_config(tmp_path):
    out = oracles.synapse_config_check(HOMESERVER, ENV, tmp_path)
    assert "Config parses OK!" in out
    assert "server.server_name: matrix.example.com" in out


def test_synapse_config_prepared_as_catalog_says(tmp_path):
    path = oracles.prepare_synapse_config(HOMESERVER, ENV, tmp_path)
    cfg = yaml.safe_load(path.read_text())
    assert "modules" not in cfg and "media_storage_providers" not in cfg
    for key in oracles.SYNAPSE_PATH_KEYS:
        assert cfg[key].startswith(str(tmp_path)), key
    assert cfg["database"]["args"]["password"] == ENV["DB_PASSWORD"]
    assert cfg["form_secret"] == ENV["FORM_SECRET"]  # $VAR form too, as envsubst does
    assert cfg["registration_shared_secret"] == ENV["REGISTRATION_SECRET"]
    # nothing else changed
    orig = yaml.safe_load(oracles.envsubst_strict(HOMESERVER, ENV))
    for key in set(orig) - set(oracles.SYNAPSE_PATH_KEYS) - set(oracles.SYNAPSE_DROPPED_KEYS):
        assert cfg[key] == orig[key], key
    oracles.read_signing_key((tmp_path / "signing.key").read_text())


def test_synapse_uses_given_signing_key(tmp_path):
    line = oracles.generate_signing_key_line("a_Test")
    path = oracles.prepare_synapse_config(HOMESERVER, {**ENV, "__signing_key__": line}, tmp_path)
    assert (tmp_path / "signing.key").read_text() == line
    assert "__signing_key__" not in path.read_text()
    oracles.synapse_config_check(HOMESERVER, {**ENV, "__signing_key__": line}, tmp_path)


BROKEN_CONFIGS = {
    "no-server_name": (HOMESERVER.replace('server_name: "matrix.example.com"\n', ""), "Missing mandatory `server_name`"),
    "bad-db-engine": (HOMESERVER.replace("name: psycopg2", "name: nosuchengine"), "nosuchengine"),
    "no-report_stats": (HOMESERVER.replace("report_stats: false\n", ""), "report_stats"),
    "no-preview-blacklist": (HOMESERVER.replace("url_preview_ip_range_blacklist: ['127.0.0.0/8', '10.0.0.0/8']\n", ""),
                             "url_preview_ip_range_blacklist"),
    "bad-listener-type": (HOMESERVER.replace("type: http\n    tls: false", "type: nosuchtype\n    tls: false"),
                          "nosuchtype"),
    "bad-duration": (HOMESERVER.replace("report_stats: false", "report_stats: false\nturn_user_lifetime: forever"),
                     "Bad duration"),
}
# Synapse's parser as `python -m synapse.config` (a process each) for two of them; in this process (what the
# other tests use: the same HomeServerConfig.load_config) for all of them.
CHECKERS = [("cli", case) for case in ("no-server_name", "bad-duration")] + \
    [("inprocess", case) for case in BROKEN_CONFIGS]


@pytest.mark.parametrize("checker, case", CHECKERS, ids=[f"{c}-{k}" for c, k in CHECKERS])
def test_synapse_rejects_broken_config(tmp_path, checker, case):
    broken, expected = BROKEN_CONFIGS[case]
    check = oracles.synapse_config_check if checker == "cli" else oracles.synapse_config_check_inprocess
    with pytest.raises(oracles.ToolError, match="Synapse refused") as exc:
        check(broken, ENV, tmp_path)
    assert expected in exc.value.output


def test_synapse_in_process_accepts_what_the_cli_accepts(tmp_path):
    config = oracles.synapse_config_check_inprocess(HOMESERVER, ENV, tmp_path)
    assert config.server.server_name == "matrix.example.com"


def test_synapse_rejects_bad_signing_key(tmp_path):
    with pytest.raises(oracles.ToolError, match="Synapse refused") as exc:
        oracles.synapse_config_check(HOMESERVER, {**ENV, "__signing_key__": "ed25519 a_abcd !!!notbase64\n"},
                                     tmp_path)
    assert "Error reading signing_key" in exc.value.output


def test_synapse_check_fails_on_missing_env_var(tmp_path):
    env = dict(ENV)
    del env["TURN_SECRET"]
    with pytest.raises(AssertionError, match="TURN_SECRET"):
        oracles.synapse_config_check(HOMESERVER, env, tmp_path)


def test_synapse_check_fails_on_invalid_yaml(tmp_path):
    with pytest.raises(AssertionError, match="not valid YAML"):
        oracles.synapse_config_check("server_name: [unclosed\n", {}, tmp_path)


# --------------------------------------------------------------------------------------
# signedjson
# --------------------------------------------------------------------------------------


def test_signedjson_reads_generated_key():
    import signedjson.key
    import signedjson.sign

    line = oracles.generate_signing_key_line("a_Ab12")
    assert line.endswith("\n") and line.count("\n") == 1
    alg, version, b64 = line.split()
    assert (alg, version) == ("ed25519", "a_Ab12") and "=" not in b64
    key = oracles.read_signing_key(line)
    assert key.alg == "ed25519" and key.version == "a_Ab12"
    verify_key = signedjson.key.get_verify_key(key)
    assert signedjson.key.encode_verify_key_base64(verify_key) == signedjson.key.encode_verify_key_base64(
        key.verify_key
    )
    signed = signedjson.sign.sign_json({"hello": "world"}, "matrix.example.com", key)
    signedjson.sign.verify_signed_json(signed, "matrix.example.com", verify_key)


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "garbage\n",
        "ed25519 a_abcd !!!notbase64\n",
        "ed25519 a_abcd QUJD\n",  # base64 of 3 bytes: not a 32-byte seed
        "rsa a_abcd " + "A" * 43 + "\n",
        "ed25519 a_abcd " + "A" * 43 + "\ned25519 a_efgh " + "B" * 43 + "\n",  # two keys
    ],
    ids=["empty", "one-word", "not-base64", "short-seed", "unknown-alg", "two-keys"],
)
def test_signedjson_rejects_garbage(garbage):
    with pytest.raises(AssertionError):
        oracles.read_signing_key(garbage)


# --------------------------------------------------------------------------------------
# htpasswd
# --------------------------------------------------------------------------------------


def _htpasswd_line(user: str, password: str) -> str:
    proc = subprocess.run(["htpasswd", "-nbB", "-C", "12", user, password], capture_output=True, text=True,
                          check=True)
    return proc.stdout.strip()


def test_htpasswd_verifies_bcrypt_line():
    pw = "Adm1n-p4ss word'\"\\"
    line = _htpasswd_line("admin", pw)
    assert line.startswith("admin:$2y$12$")
    assert oracles.htpasswd_verify(line, pw) is True
    assert oracles.htpasswd_verify(line + "\n", pw) is True


def test_htpasswd_rejects_wrong_password():
    line = _htpasswd_line("admin", "right-password")
    assert oracles.htpasswd_verify(line, "wrong-password") is False
    assert oracles.htpasswd_verify("admin:not-a-hash", "right-password") is False
    with pytest.raises(AssertionError):
        oracles.htpasswd_verify("no colon here", "x")


# --------------------------------------------------------------------------------------
# kubernetes-validate
# --------------------------------------------------------------------------------------

DEPLOYMENT = textwrap.dedent(
    """\
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: element-web
      namespace: matrix
      annotations:
        example.com/when: 2024-01-01
    spec:
      replicas: 2
      selector:
        matchLabels: {app: element-web}
      template:
        metadata:
          labels: {app: element-web}
        spec:
          containers:
            - name: element-web
              image: vectorim/element-web:v1.11.50
              ports:
                - containerPort: 80
    """
)

BAD_CONFIGMAP = textwrap.dedent(
    """\
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: synapse-config
      namespace: matrix
    spec:
      replicas: 1
    data:
      homeserver.yaml: "server_name: x"
    """
)

CNPG_CLUSTER = textwrap.dedent(
    """\
    apiVersion: postgresql.cnpg.io/v1
    kind: Cluster
    metadata:
      name: matrix-postgresql
      namespace: matrix
    spec:
      instances: 3
    """
)


def test_kube_validate_accepts_deployment(tmp_path):
    f = tmp_path / "deployment.yaml"
    f.write_text(DEPLOYMENT)
    result = oracles.kube_validate(f)
    assert result.errors == [] and result.ok
    assert len(result.checked) == 1 and result.unchecked == []


def test_kube_validate_flags_configmap_with_spec(tmp_path):
    f = tmp_path / "configmap.yaml"
    f.write_text(BAD_CONFIGMAP)
    result = oracles.kube_validate(f)
    assert not result.ok
    assert len(result.errors) == 1
    assert "ConfigMap/synapse-config" in result.errors[0] and "spec" in result.errors[0]


def test_kube_validate_folder_crds_unchecked_and_core_errors(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.yaml").write_text(DEPLOYMENT + "---\n" + CNPG_CLUSTER)
    (tmp_path / "sub" / "b.yaml").write_text(BAD_CONFIGMAP)
    (tmp_path / "sub" / "c.yaml").write_text(DEPLOYMENT.replace("apps/v1", "apps/v2"))
    (tmp_path / "notes.txt").write_text("not: [yaml")
    result = oracles.kube_validate(tmp_path)
    assert len(result.checked) == 1
    assert len(result.unchecked) == 1 and "Cluster/matrix-postgresql" in result.unchecked[0]
    assert len(result.errors) == 2
    assert any("apps/v2" in e for e in result.errors)


def test_kube_validate_reports_every_error_and_wrong_types(tmp_path):
    bad = DEPLOYMENT.replace("replicas: 2", "replicas: two\n  bogus: 1")
    f = tmp_path / "d.yaml"
    f.write_text(bad)
    errors = oracles.kube_validate(f).errors
    assert any("spec.replicas" in e for e in errors), errors
    assert any("bogus" in e for e in errors), errors


def test_kube_validate_duplicate_key_is_error(tmp_path):
    f = tmp_path / "d.yaml"
    f.write_text(DEPLOYMENT.replace("  replicas: 2\n", "  replicas: 2\n  replicas: 3\n"))
    errors = oracles.kube_validate(f).errors
    assert len(errors) == 1 and "duplicate key" in errors[0] and "line 10" in errors[0]


# --------------------------------------------------------------------------------------
# strict YAML
# --------------------------------------------------------------------------------------


def test_yaml_strict_loads_valid_multidoc():
    docs = oracles.yaml_load_all_strict("a: 1\nb: {c: 2}\n---\nbase: &b {x: 1, y: 2}\nd:\n  <<: *b\n  x: 3\n")
    assert docs == [{"a": 1, "b": {"c": 2}}, {"base": {"x": 1, "y": 2}, "d": {"x": 3, "y": 2}}]


def test_yaml_strict_raises_on_duplicate_key_with_line():
    text = "---\nfirst: 1\n---\nmeta:\n  name: x\n  labels: {}\n  name: y\n"
    with pytest.raises(oracles.DuplicateKeyError) as exc:
        oracles.yaml_load_all_strict(text)
    assert exc.value.line == 7 and exc.value.first_line == 5 and exc.value.key == "name"
    assert "line 7" in str(exc.value)
    assert isinstance(exc.value, yaml.YAMLError)
    # plain PyYAML silently keeps the last one
    assert list(yaml.safe_load_all(text))[1] == {"meta": {"name": "y", "labels": {}}}


def test_yaml_strict_duplicate_in_flow_mapping():
    with pytest.raises(oracles.DuplicateKeyError) as exc:
        oracles.yaml_load_all_strict("x: 1\ny: {a: 1, b: 2, a: 3}\n")
    assert exc.value.line == 2


# --------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------

NASTY_PASSWORD = "it's a \"quoted\" \\back\\\\slash\\' pass = $x; --"


def test_postgres_role_with_nasty_password(postgres):
    import psycopg2

    postgres.psql(
        "DROP DATABASE IF EXISTS wizard_oracle; DROP ROLE IF EXISTS wizard_oracle;\n"
        f"CREATE ROLE wizard_oracle LOGIN PASSWORD {oracles.sql_literal(NASTY_PASSWORD)};\n"
        "CREATE DATABASE wizard_oracle OWNER wizard_oracle;\n"
    )
    # real psql over TCP with scram
    out = postgres.psql("SELECT current_user, current_database();", user="wizard_oracle",
                        password=NASTY_PASSWORD, dbname="wizard_oracle")
    assert out.strip() == "wizard_oracle|wizard_oracle"
    with pytest.raises(AssertionError, match="password authentication failed"):
        postgres.psql("SELECT 1", user="wizard_oracle", password=NASTY_PASSWORD + "x", dbname="wizard_oracle")

    # psycopg2 through a libpq conninfo string
    conninfo = postgres.conninfo(user="wizard_oracle", password=NASTY_PASSWORD, dbname="wizard_oracle")
    assert "\\'" in conninfo and "\\\\" in conninfo
    conn = postgres.connect(conninfo)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_user")
            assert cur.fetchone() == ("wizard_oracle",)
    finally:
        conn.close()
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        postgres.connect(postgres.conninfo(user="wizard_oracle", password="it's wrong", dbname="wizard_oracle"))

    # the server stored a scram verifier for that password
    assert postgres.psql("SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid "
                         "WHERE rolname = 'wizard_oracle'").strip() == "t"


def test_postgres_superuser_connect(postgres):
    conn = postgres.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            assert cur.fetchone() == (True,)
    finally:
        conn.close()
    with pytest.raises(AssertionError, match="syntax error"):
        postgres.psql("SELEC 1")


# --------------------------------------------------------------------------------------
# coturn
# --------------------------------------------------------------------------------------


def test_synapse_turn_credentials_format():
    user, pw = oracles.synapse_turn_credentials("s3cret", "@alice:example.com", ttl=60, now=1_700_000_000.5)
    assert user == "1700000060:@alice:example.com"
    import base64
    import hashlib
    import hmac

    assert pw == base64.b64encode(hmac.new(b"s3cret", user.encode(), hashlib.sha1).digest()).decode()


def test_coturn_allocates_with_synapse_credentials(coturn):
    secret, realm = "TurnSecretAbc123def456ghi789jkl012mno345pq", "turn.matrix.example.com"
    server = coturn(secret, realm)

    user, pw = oracles.synapse_turn_credentials(secret, "@alice:matrix.example.com")
    detail = oracles.turn_allocate_detail(server.host, server.port, user, pw, realm)
    assert detail.ok, (detail, server.log())
    assert detail.relayed_address is not None and detail.relayed_address[0] == "127.0.0.1"
    assert oracles.turn_allocate(server.host, server.port, user, pw, realm) is True

    # wrong secret: refused with 401
    user2, pw2 = oracles.synapse_turn_credentials("WrongSecret000", "@alice:matrix.example.com")
    detail = oracles.turn_allocate_detail(server.host, server.port, user2, pw2, realm)
    assert not detail.ok and detail.error_code == 401, detail
    assert oracles.turn_allocate(server.host, server.port, user2, pw2, realm) is False

    # expired credentials (right secret) are refused too
    user3, pw3 = oracles.synapse_turn_credentials(secret, "@alice:matrix.example.com", ttl=-3600)
    assert oracles.turn_allocate(server.host, server.port, user3, pw3, realm) is False

    # credentials for another realm are not for this server
    assert oracles.turn_allocate(server.host, server.port, user, pw, "other.example.com") is False


def test_turn_allocate_silence_is_not_a_refusal():
    from conftest import free_port

    user, pw = oracles.synapse_turn_credentials("s", "@a:b")
    with pytest.raises(oracles.StunTimeout):
        oracles.turn_allocate_detail("127.0.0.1", free_port(), user, pw, "r", timeout=0.2, tries=2)


# --------------------------------------------------------------------------------------
# SMTP
# --------------------------------------------------------------------------------------


def test_smtp_server_receives_message(smtp_server):
    msg = EmailMessage()
    msg["From"] = "Matrix <noreply@matrix.example.com>"
    msg["To"] = "alice@example.com"
    msg["Subject"] = "Your validation code"
    msg.set_content("code 123456")
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=30) as s:
        s.login("synapse", "SmtpPass123")
        s.send_message(msg)
    assert len(smtp_server.messages) == 1
    got = smtp_server.messages[0]
    assert got.mail_from == "noreply@matrix.example.com"
    assert got.rcpt_tos == ["alice@example.com"]
    assert got.message["Subject"] == "Your validation code"
    assert "code 123456" in got.message.get_content()
    assert got.auth_login == "synapse"
    assert smtp_server.auth_attempts == [("PLAIN", "synapse", "SmtpPass123", True)]


def test_smtp_server_rejects_wrong_credentials(smtp_server):
    smtp_server.accounts = {"synapse": "right"}
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=30) as s:
        with pytest.raises(smtplib.SMTPAuthenticationError):
            s.login("synapse", "wrong")
    assert smtp_server.messages == []
