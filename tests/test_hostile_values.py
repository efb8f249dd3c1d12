"""Issue 5: values the wizard did not generate are written with each format's escaping and read back
identical with that format's real parser — or refused with a clear message."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

import treecheck as T
from helpers import FULL_ANSWERS, edit_secrets, run_wizard, write_answers
from wizard.errors import CannotCarry, WizardError
from wizard.locate.resolve import Address, Tree, resolve

pytestmark = pytest.mark.e2e  # values judged by a real PostgreSQL, bash and the CLI

_PIECES = st.one_of(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    st.sampled_from(['"', "'", "\\", "#", ": ", " #", "${X}", "$(id)", "`", "\n", "é", "€", "😀", " ", "\t", "%",
                     "&", "- ", "[", "{", "*", "!", "|", ">"]),
)
HOSTILE = st.lists(_PIECES, min_size=1, max_size=20).map("".join)
LINE_BREAKS = set("\r\x85\u2028\u2029")
E2E = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _unprintable(value: str) -> bool:
    import re

    return bool(re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ufffe\uffff]", value))


# ------------------------------------------------------------------ format by format, through the locator

SAMPLE = """\
# sample manifests in three quoting styles, CRLF-free
apiVersion: v1
kind: ConfigMap
metadata:
  name: sample
data:
  plain: value-one   # trailing comment
  single: 'value two'
  double: "value three"
  config.json: |
    {
      "a": {"b": "old"},
      "list": ["x", "old"]
    }
  homeserver.yaml: |
    # embedded
    server_name: old
    nested:
      key: "old"
  setup.sql: |
    CREATE USER r WITH PASSWORD 'old';
    CREATE SUBSCRIPTION s CONNECTION 'host=db port=5432 password=old dbname=x' PUBLICATION p;
  config.env: |
    export A="old"
    export B='old'
  turn.conf: |
    realm=old
"""

CASES = {
    "plain": "sample.yaml › ConfigMap/sample › data.plain",
    "single": "sample.yaml › ConfigMap/sample › data.single",
    "double": "sample.yaml › ConfigMap/sample › data.double",
    "json": 'sample.yaml › ConfigMap/sample › data."config.json" › (json) a.b',
    "embedded-yaml": 'sample.yaml › ConfigMap/sample › data."homeserver.yaml" › (yaml) server_name',
    "embedded-yaml-quoted": 'sample.yaml › ConfigMap/sample › data."homeserver.yaml" › (yaml) nested.key',
    "sql": 'sample.yaml › ConfigMap/sample › data."setup.sql" › (sql) CREATE USER r WITH PASSWORD',
    "conninfo": 'sample.yaml › ConfigMap/sample › data."setup.sql" › (sql) CONNECTION › (conninfo) password',
    "shell-double": 'sample.yaml › ConfigMap/sample › data."config.env" › (shell) A',
    "shell-single": 'sample.yaml › ConfigMap/sample › data."config.env" › (shell) B',
}


def _read_back(kind: str, text: str) -> str:
    data = yaml.safe_load(text)["data"]
    assert YAML(typ="rt").load(text)["data"] == data  # ruamel reads the same
    if kind in ("plain", "single", "double"):
        return data[kind]
    if kind == "json":
        return json.loads(data["config.json"])["a"]["b"]
    if kind == "embedded-yaml":
        return yaml.safe_load(data["homeserver.yaml"])["server_name"]
    if kind == "embedded-yaml-quoted":
        return yaml.safe_load(data["homeserver.yaml"])["nested"]["key"]
    if kind == "sql":
        return T.sql_literal_after(data["setup.sql"], "CREATE USER r WITH PASSWORD")
    if kind == "conninfo":
        return T.conninfo_value(T.sql_literal_after(data["setup.sql"], "CONNECTION"), "password")
    if kind.startswith("shell"):
        return T.shell_var(data["config.env"], "A" if kind == "shell-double" else "B")
    raise AssertionError(kind)


def _write(tmp: Path, kind: str, value: str) -> str:
    tree_dir = tmp / "t"
    if tree_dir.exists():
        shutil.rmtree(tree_dir)
    tree_dir.mkdir()
    (tree_dir / "sample.yaml").write_text(SAMPLE)
    tree = Tree(tree_dir)
    (span,) = resolve(tree, Address.parse(CASES[kind])).spans
    assert span.value == "old" or kind in ("plain", "single", "double")
    new = span.render(value, kind)
    start, end = span.file_span()
    return SAMPLE[:start] + new + SAMPLE[end:]


@pytest.mark.parametrize("kind", list(CASES))
@SETTINGS
@given(value=HOSTILE)
def test_every_format_round_trips_or_refuses(tmp_path, kind, value):
    if kind.startswith("shell") and ("\x00" in value):
        return
    try:
        text = _write(tmp_path, kind, value)
    except CannotCarry as exc:
        # refusals are allowed only for what the format really cannot carry, with a clear reason; a line-based
        # format (shell) refuses a line break of every kind
        assert str(exc)
        breaks = LINE_BREAKS | ({"\n"} if kind.startswith("shell") else set())
        assert (set(value) & breaks) or _unprintable(value), (kind, value, str(exc))
        return
    assert _read_back(kind, text) == value, (kind, value, text)
    # nothing outside the value changed: the other lines are byte-identical
    before = [ln for ln in SAMPLE.split("\n")]
    after = text.split("\n")
    assert after[:6] == before[:6]


# ------------------------------------------------------------------ through the real consumers

@pytest.fixture(scope="module")
def configured(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    run_wizard("init", str(tmp / "deployment"), check=True)
    answers = write_answers(tmp / "prod.yaml", FULL_ANSWERS)
    run_wizard("--answers", str(answers), "--yes", check=True)
    return tmp


def _apply_with_secret(base: Path, tmp: Path, cid: str, value: str) -> Path:
    """Copy the configured site, write `value` into its secrets file, apply in-process."""
    from wizard.answers import load_answers
    from wizard.plan import make_plan
    from wizard.store import load_store
    from wizard.write import write_plan

    site = tmp / "site"
    if site.exists():
        shutil.rmtree(site)
    shutil.copytree(base, site)
    answers = load_answers(site / "prod.yaml")
    store = load_store(answers.secrets_file)
    store.values[cid] = value
    from wizard.store import write_store

    write_store(store)
    store = load_store(answers.secrets_file)
    plan = make_plan(Tree(site / "deployment"), answers, store)
    write_plan(plan, site / "deployment")
    return site / "deployment"


@E2E
@given(value=HOSTILE.filter(lambda v: not (set(v) & LINE_BREAKS) and not _unprintable(v)))
def test_replication_password_reaches_postgres(configured, postgres, tmp_path, value):
    tree = _apply_with_secret(configured, tmp_path, "postgres.replication_password", value)
    assert set(T.secret_groups(tree)["postgres.replication_password"]) == {value}
    sql = T.cm(tree, T.SYNC, "sync-system-config")["setup-replication.sql"]
    import re

    stmt = re.search(r"CREATE USER replication_user WITH REPLICATION PASSWORD '(?:[^']|'')*'", sql).group()
    postgres.psql("DROP ROLE IF EXISTS replication_user")
    postgres.psql(stmt.replace("WITH REPLICATION", "WITH LOGIN REPLICATION"))
    conninfo = T.sql_literal_after(T.cm(tree, T.SYNC, "sync-system-config")["setup-subscription.sql"], "CONNECTION")
    from psycopg2.extensions import make_dsn, parse_dsn

    params = parse_dsn(conninfo)
    params.update(host=postgres.host, port=str(postgres.port), dbname="postgres", sslmode="disable")
    conn = postgres.connect(make_dsn(**params))
    conn.close()
    # and psql, reading the password the Secret holds
    out = postgres.psql("select current_user", user="replication_user",
                        password=T.sd(tree, T.SYNC, "sync-system-secrets")["MAIN_DB_PASSWORD"])
    assert out.strip() == "replication_user"


@E2E
@given(value=HOSTILE.filter(lambda v: not (set(v) & (LINE_BREAKS | {"\n"})) and not _unprintable(v)))
def test_minio_root_password_reaches_the_shell(configured, tmp_path, value):
    tree = _apply_with_secret(configured, tmp_path, "minio.root_password", value)
    env = T.sd(tree, T.MINIO, "minio-config")["config.env"]
    assert T.shell_var(env, "MINIO_ROOT_PASSWORD") == value


@pytest.mark.parametrize("cid,value", [
    ("synapse.macaroon_secret", 'with "quote"'),   # "${MACAROON_SECRET}": quoted reference
    ("synapse.macaroon_secret", "back\\slash"),
    ("postgres.synapse_password", "has: colon"),  # ${DB_PASSWORD}: unquoted reference
    ("postgres.synapse_password", "#starts-with-hash"),
    ("redis.password", "a/b&c"),
])
def test_values_a_consumer_cannot_carry_are_refused(configured, tmp_path, cid, value):
    site = tmp_path / "site"
    shutil.copytree(configured, site)
    edit_secrets(site / "prod.secrets.yaml", lambda data: data["secrets"].update({cid: value}))
    before = T.read_text(site / "deployment/main-instance/01-synapse/secrets.yaml")
    proc = run_wizard("--answers", str(site / "prod.yaml"), "--yes")
    assert proc.returncode == 2, proc.stdout
    assert cid in proc.stderr and value not in proc.stderr
    assert T.read_text(site / "deployment/main-instance/01-synapse/secrets.yaml") == before


def test_a_safe_but_unusual_adopted_value_is_quoted_for_yaml(configured, tmp_path):
    tree = _apply_with_secret(configured, tmp_path, "key_vault.django_secret_key", "true")
    assert T.sd(tree, T.KV, "key-vault-secrets")["DJANGO_SECRET_KEY"] == "true"


def test_operator_answers_with_hostile_text(tmp_path):
    import copy

    (tmp_path / "AuthKey.p8").write_text("-----BEGIN PRIVATE KEY-----\nMIGT\n-----END PRIVATE KEY-----\n")
    (tmp_path / "fcm.json").write_text('{"project_id": "p", "note": "quote \\" and \\\\ and #"}')
    data = copy.deepcopy(FULL_ANSWERS)
    realm = 'Say "hi" # not a comment: ok \\ é'
    user = "us'er\"#1: x"
    sender = 'Ops "Team" # <ops@acme-corp.net>'
    key_id = "K1-x.y"  # Sygnal renders ${APNS_KEY_ID} unquoted: a hostile one is refused (below)
    data["li"]["auth_realm"] = realm
    data["smtp"] = {"enabled": True, "host": "smtp.acme-corp.net", "user": user, "from": sender,
                    "password": "env:HOSTILE_SMTP"}
    data["push"] = {"enabled": True, "apns": {"key_file": "AuthKey.p8", "key_id": key_id, "team_id": "T1é",
                                              "topic": "net.acme"}, "fcm": {"service_account_file": "fcm.json"}}
    run_wizard("init", str(tmp_path / "deployment"), check=True)
    answers = write_answers(tmp_path / "prod.yaml", data)
    run_wizard("--answers", str(answers), "--yes", check=True, env={"HOSTILE_SMTP": "pw: #'x"})
    tree = tmp_path / "deployment"
    rt = YAML(typ="rt")
    ing_file = tree / "li-instance/03-synapse-admin-li/deployment.yaml"
    ann = T.obj(tree, "li-instance/03-synapse-admin-li/deployment.yaml", "Ingress", "synapse-admin-li")[
        "metadata"]["annotations"]
    assert ann["nginx.ingress.kubernetes.io/auth-realm"] == realm
    assert any(d.get("kind") == "Ingress" and d["metadata"]["annotations"]["nginx.ingress.kubernetes.io/auth-realm"]
               == realm for d in rt.load_all(T.read_text(ing_file)))
    email = yaml.safe_load(T.cm(tree, "main-instance/01-synapse/configmap.yaml", "synapse-config")["homeserver.yaml"])["email"]
    assert email["smtp_user"] == user and email["notif_from"] == sender
    plain = T.plain(tree, "config/synapse/homeserver.yaml")["email"]
    assert plain["smtp_pass"] == "pw: #'x" and plain["smtp_user"] == user
    sy = T.sd(tree, "main-instance/07-sygnal/deployment.yaml", "sygnal-secrets")
    assert sy["apns-key-id"] == key_id and sy["apns-team-id"] == "T1é"
    assert json.loads(sy["fcm-service-account.json"])["note"] == 'quote " and \\ and #'
    # Sygnal's init container renders `key_id: ${APNS_KEY_ID}` with envsubst: this one would break its YAML
    data["push"]["apns"]["key_id"] = "K\"1#: x'"
    answers = write_answers(tmp_path / "prod.yaml", data)
    proc = run_wizard("--answers", str(answers), "--yes", env={"HOSTILE_SMTP": "pw: #'x"})
    assert proc.returncode == 2 and "push.apns.key_id" in proc.stderr and "K\"1#" not in proc.stderr
    data["push"]["apns"]["key_id"] = key_id
    # a `$NAME` would be eaten by envsubst in the main config: refused
    data["smtp"]["user"] = "user$HOME"
    answers = write_answers(tmp_path / "prod.yaml", data)
    proc = run_wizard("--answers", str(answers), "--yes", env={"HOSTILE_SMTP": "pw"})
    assert proc.returncode == 2 and "smtp.user" in proc.stderr
