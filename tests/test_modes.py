"""TLS modes, SMTP, push and TURN options end to end, judged by independent readers and real tools."""
from __future__ import annotations

import copy
import json

import pytest
import yaml

import treecheck as T
from helpers import FULL_ANSWERS, digest, run_wizard, write_answers
from oracles import kube_validate, synapse_config_check_inprocess

pytestmark = pytest.mark.e2e  # the CLI through every mode

INGRESSES = [("main-instance/03-haproxy/deployment.yaml", "matrix-client"),
             ("main-instance/03-haproxy/deployment.yaml", "matrix-federation"),
             ("main-instance/02-element-web/deployment.yaml", "element-web"),
             ("li-instance/01-synapse-li/deployment.yaml", "synapse-li"),
             ("li-instance/02-element-web-li/deployment.yaml", "element-web-li"),
             ("li-instance/03-synapse-admin-li/deployment.yaml", "synapse-admin-li")]


def _configure(tmp_path, change, env=None):
    data = copy.deepcopy(FULL_ANSWERS)
    change(data)
    if not (tmp_path / "deployment").exists():
        run_wizard("init", str(tmp_path / "deployment"), check=True)
    answers = write_answers(tmp_path / "prod.yaml", data)
    run_wizard("--answers", str(answers), "--yes", check=True, env=env)
    return tmp_path / "deployment", answers


def _issuers(tree):
    out = []
    for rel, name in INGRESSES:
        ann = T.obj(tree, rel, "Ingress", name)["metadata"].get("annotations") or {}
        out.append(ann.get("cert-manager.io/cluster-issuer"))
    lk = T.plain(tree, "values/livekit-values.yaml")["ingress"].get("annotations") or {}
    out.append(lk.get("cert-manager.io/cluster-issuer"))
    return out


def test_manual_then_selfsigned_then_prod(tmp_path):
    tree, answers = _configure(tmp_path, lambda d: d["tls"].update(mode="manual", secret_name="wildcard-tls"))
    assert _issuers(tree) == [None] * 7
    for rel, name in INGRESSES:
        tls = T.obj(tree, rel, "Ingress", name)["spec"]["tls"]
        assert {t["secretName"] for t in tls} == {"wildcard-tls"}
    cert = T.obj(tree, "main-instance/06-coturn/deployment.yaml", "Certificate", "coturn-tls")
    assert cert["spec"]["issuerRef"]["name"] == "letsencrypt-prod"  # left as it is (the operator's)
    for rel, _ in INGRESSES:
        assert kube_validate(tree / rel).errors == []
    before = digest(tmp_path)
    run_wizard("--answers", str(answers), "--yes", check=True)
    assert digest(tmp_path) == before

    _configure(tmp_path, lambda d: d["tls"].update(mode="selfsigned"))
    assert _issuers(tree) == ["selfsigned"] * 7
    issuer = T.obj(tree, "infrastructure/04-networking/cert-manager-install.yaml", "ClusterIssuer", "selfsigned")
    assert issuer["spec"] == {"selfSigned": {}}
    cert = T.obj(tree, "main-instance/06-coturn/deployment.yaml", "Certificate", "coturn-tls")
    assert cert["spec"]["issuerRef"]["name"] == "selfsigned"
    for name in ("letsencrypt-prod", "letsencrypt-staging"):
        assert T.obj(tree, "infrastructure/04-networking/cert-manager-install.yaml", "ClusterIssuer",
                     name)["spec"]["acme"]["email"] == FULL_ANSWERS["tls"]["acme_email"]

    _configure(tmp_path, lambda d: d["tls"].update(mode="letsencrypt-prod"))
    assert _issuers(tree) == ["letsencrypt-prod"] * 7
    proc = run_wizard("check", "--answers", str(answers), "--json")
    assert json.loads(proc.stdout)["counts"]["error"] == 0


def test_smtp_push_and_turn_ip(tmp_path):
    (tmp_path / "AuthKey.p8").write_text("-----BEGIN PRIVATE KEY-----\nMIGTAgEAMBMGByqGSM49AgEGCCqGSM49\n"
                                         "-----END PRIVATE KEY-----\n")
    (tmp_path / "fcm.json").write_text(json.dumps({"type": "service_account", "project_id": "acme-push",
                                                   "private_key_id": "k1", "client_email": "p@acme-push.iam"}))

    def change(d):
        d["smtp"] = {"enabled": True, "host": "smtp.acme-corp.net", "port": 465, "user": "mailer@acme-corp.net",
                     "password": "env:SMTP_TEST_PW", "from": "Chat <chat@acme-corp.net>",
                     "require_transport_security": False}
        d["push"] = {"enabled": True, "apns": {"key_file": "AuthKey.p8", "key_id": "ABC123DEFG",
                                               "team_id": "TEAM456789", "topic": "net.acme-corp.chat"},
                     "fcm": {"service_account_file": "fcm.json"}}
        d["turn"] = {"external_ip": "198.51.100.7"}

    env = {"SMTP_TEST_PW": "smtp:pw with spaces"}
    tree, answers = _configure(tmp_path, change, env)
    left = [(v.file, v.where) for v in T.walk_values(tree) if T.TOKEN_RE.search(v.text)]
    assert left == []  # Sygnal configured too
    main = T.sd(tree, T.MAIN_SEC, "synapse-secrets")
    assert main["SMTP_PASSWORD"] == env["SMTP_TEST_PW"]
    hs_main = T.cm(tree, "main-instance/01-synapse/configmap.yaml", "synapse-config")["homeserver.yaml"]
    email = yaml.safe_load(hs_main)["email"]
    assert email["smtp_host"] == "smtp.acme-corp.net" and email["smtp_port"] == 465
    assert email["smtp_pass"] == "${SMTP_PASSWORD}" and email["require_transport_security"] is False
    plain = T.plain(tree, "config/synapse/homeserver.yaml")["email"]
    assert plain["smtp_pass"] == env["SMTP_TEST_PW"] and plain["notif_from"] == "Chat <chat@acme-corp.net>"
    key = main["signing.key"]
    for i, (text, e) in enumerate([(hs_main, main), (T.read_text(tree / "config/synapse/homeserver.yaml"), {})]):
        d = tmp_path / f"hs{i}"
        d.mkdir()
        e = {k: v for k, v in e.items() if "." not in k}
        e["__signing_key__"] = key
        synapse_config_check_inprocess(text, e, d)
    sygnal = T.sd(tree, "main-instance/07-sygnal/deployment.yaml", "sygnal-secrets")
    assert sygnal["apns-key.p8"].strip() == (tmp_path / "AuthKey.p8").read_text().strip()
    assert json.loads(sygnal["fcm-service-account.json"])["project_id"] == "acme-push"
    assert (sygnal["apns-key-id"], sygnal["apns-team-id"], sygnal["apns-topic"]) == \
        ("ABC123DEFG", "TEAM456789", "net.acme-corp.chat")
    conf = T.cm(tree, "main-instance/06-coturn/deployment.yaml", "coturn-config")["turnserver.conf"]
    assert "\nexternal-ip=198.51.100.7\n" in conf
    before = digest(tmp_path)
    run_wizard("--answers", str(answers), "--yes", check=True, env=env)
    assert digest(tmp_path) == before
    proc = run_wizard("check", "--answers", str(answers), "--json", env=env)
    data = json.loads(proc.stdout)
    assert data["counts"]["error"] == 0, data
    secrets = yaml.safe_load((tmp_path / "prod.secrets.yaml").read_text())
    assert {"smtp.password", "push.apns.key"} <= set(secrets["provided"])


def test_answers_write_well_known_delegation(tmp_path):
    tree, answers = _configure(tmp_path, lambda d: d.update(well_known_dir="site-root"))
    server = json.loads((tmp_path / "site-root/.well-known/matrix/server").read_text())
    client = json.loads((tmp_path / "site-root/.well-known/matrix/client").read_text())
    assert server == {"m.server": f"{FULL_ANSWERS['domains']['matrix']}:443"}
    assert client["m.homeserver"]["base_url"] == f"https://{FULL_ANSWERS['domains']['matrix']}"
    before = digest(tmp_path)
    proc = run_wizard("--answers", str(answers), "--yes", check=True)
    assert digest(tmp_path) == before and "wrote" not in proc.stdout
