"""Bad input: one clear message naming the key or file:line, exit 2, nothing written."""
from __future__ import annotations

import copy
import os

import pytest

from helpers import FULL_ANSWERS, run_wizard, snapshot, write_answers

pytestmark = pytest.mark.e2e  # bad input through the CLI


@pytest.fixture
def site(tmp_path):
    run_wizard("init", str(tmp_path / "deployment"), check=True)
    return tmp_path


def _with(change):
    data = copy.deepcopy(FULL_ANSWERS)
    change(data)
    return data


CASES = [
    ("missing server_name", lambda d: d.pop("server_name"), "server_name"),
    ("missing version", lambda d: d.pop("version"), "version"),
    ("unknown top key", lambda d: d.update(sever_name="x.org"), "sever_name"),
    ("unknown nested key", lambda d: d["tls"].update(mdoe="manual"), "tls.mdoe"),
    ("bad domain", lambda d: d["domains"].update(turn="turn..acme.net"), "domains.turn"),
    ("bad server_name", lambda d: d.update(server_name="Not A Domain"), "server_name"),
    ("bad cidr", lambda d: d["li"].update(allowed_cidrs=["10.0.0.1/8"]), "li.allowed_cidrs[0]"),
    ("bad cidr text", lambda d: d["li"].update(allowed_cidrs=["everyone"]), "li.allowed_cidrs[0]"),
    ("bad email", lambda d: d["tls"].update(acme_email="ops-at-acme"), "tls.acme_email"),
    ("bad tls mode", lambda d: d["tls"].update(mode="lets-encrypt"), "tls.mode"),
    ("manual without secret", lambda d: d["tls"].update(mode="manual"), "tls.secret_name"),
    ("smtp without host", lambda d: d.update(smtp={"enabled": True, "from": "a@b.net"}), "smtp.host"),
    ("smtp bad port", lambda d: d.update(smtp={"enabled": True, "host": "smtp.acme.net", "port": 70000,
                                               "from": "a@b.net"}), "smtp.port"),
    ("clear-text password", lambda d: d["li"].update(admin_password="hunter2"), "li.admin_password"),
    ("missing env ref", lambda d: d["li"].update(admin_password="env:WIZARD_TEST_UNSET_VAR"), "li.admin_password"),
    ("missing file ref", lambda d: d["li"].update(admin_password="file:nope.txt"), "li.admin_password"),
    ("bad storage class", lambda d: d["storage"].update({"class": "Fast SSD"}), "storage.class"),
    ("bad rsa bits", lambda d: d.update(key_vault={"rsa_bits": 1024}), "key_vault.rsa_bits"),
]


@pytest.mark.parametrize("name,change,key", CASES, ids=[c[0] for c in CASES])
def test_bad_answers(site, name, change, key):
    answers = write_answers(site / "prod.yaml", _with(change))
    before = snapshot(site)
    proc = run_wizard("--answers", str(answers), "--yes")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert key in lines[0]
    assert "Traceback" not in proc.stderr
    assert snapshot(site) == before


def _keep_going(site, answers, *words):
    """A problem confined to one manifest (issue 13): exit 1, the leftover names it, the rest is written."""
    import json

    proc = run_wizard("--answers", str(answers), "--yes", "--json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    text = "\n".join(f"{e['file']}:{e['line']}: {e['message']}" for e in json.loads(proc.stdout)["leftovers"])
    for w in words:
        assert w in text, text
    assert "Traceback" not in proc.stderr
    return text


def test_manifest_not_yaml_names_file_and_line(site):
    answers = write_answers(site / "prod.yaml", FULL_ANSWERS)
    p = site / "deployment/main-instance/06-coturn/deployment.yaml"
    lines = p.read_text().split("\n")
    lines[20] = lines[20] + " : : ]["
    p.write_text("\n".join(lines))
    broken = p.read_bytes()
    _keep_going(site, answers, "main-instance/06-coturn/deployment.yaml:2")  # line 21 or nearby, named
    assert p.read_bytes() == broken  # nothing written into it
    assert "CHANGEME" not in (site / "deployment/main-instance/01-synapse/configmap.yaml").read_text().split(
        "email:")[0].split("macaroon_secret_key")[0]  # the rest is configured


def test_duplicate_key_is_reported_with_line(site):
    answers = write_answers(site / "prod.yaml", FULL_ANSWERS)
    p = site / "deployment/infrastructure/02-redis/redis-secret.yaml"
    text = p.read_text()
    idx = text.index("  password:")
    p.write_text(text[:idx] + "  password: one\n" + text[idx:])
    line = text[:idx].count("\n") + 2
    broken = p.read_bytes()
    _keep_going(site, answers, f"infrastructure/02-redis/redis-secret.yaml:{line}", "duplicate key")
    assert p.read_bytes() == broken


def test_missing_file_of_layout(site):
    """A component removed whole (the key vault): a note, not a leftover; its shared values go to the rest."""
    import json

    answers = write_answers(site / "prod.yaml", FULL_ANSWERS)
    (site / "deployment/main-instance/08-key-vault/deployment.yaml").unlink()
    proc = run_wizard("--answers", str(answers), "--yes", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(proc.stdout)
    assert any(n["kind"] == "absent-component" and "key-vault" in n["message"] for n in data["notes"])
    secrets = (site / "deployment/main-instance/01-synapse/secrets.yaml").read_text()
    assert "CHANGEME_SECURE_KEY_VAULT_API_KEY" not in secrets


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_secrets_file_readable_by_others_is_refused(site, mode):
    answers = write_answers(site / "prod.yaml", FULL_ANSWERS)
    run_wizard("--answers", str(answers), "--yes", check=True)
    secrets = site / "prod.secrets.yaml"
    os.chmod(secrets, mode)
    tree = site / "deployment/main-instance/01-synapse/secrets.yaml"
    tree.write_text(tree.read_text().replace("REDIS_PASSWORD:", "REDIS_PASSWORD: x\n  OLD_REDIS:"))
    before = snapshot(site)
    proc = run_wizard("--answers", str(answers), "--yes")
    assert proc.returncode == 2 and "chmod 600" in proc.stderr
    assert snapshot(site) == before
    for cmd in (["rotate", "redis.password"], ["secrets", "show", "redis.password"], ["check"]):
        proc = run_wizard(*cmd, "--answers", str(answers))
        assert proc.returncode == 2, cmd
    assert snapshot(site) == before


def test_init_refuses_existing_dir_and_check_needs_a_tree(site):
    proc = run_wizard("init", str(site / "deployment"))
    assert proc.returncode == 2 and "exists" in proc.stderr
    proc = run_wizard("check", "--deployment", str(site / "nowhere"))
    assert proc.returncode == 2 and "no deployment at" in proc.stderr
