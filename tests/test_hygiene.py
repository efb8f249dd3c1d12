"""Issue 5: no secret value in any output; signing-key safety; secrets-file hygiene."""
from __future__ import annotations

import base64
import json
import os
import re

import pytest
import yaml

from helpers import FULL_ANSWERS, run_wizard, snapshot, write_answers, write_secrets

pytestmark = pytest.mark.e2e  # every command run as the operator runs it


@pytest.fixture
def site(tmp_path):
    run_wizard("init", str(tmp_path / "deployment"), check=True)
    answers = dict(FULL_ANSWERS)
    answers["li"] = dict(answers["li"], admin_password="env:WIZ_TEST_LI_PW")
    answers["smtp"] = {"enabled": True, "host": "smtp.acme-corp.net", "port": 587, "user": "mailer",
                       "password": "env:WIZ_TEST_SMTP_PW", "from": "Matrix <matrix@acme-corp.net>"}
    path = write_answers(tmp_path / "prod.yaml", answers)
    return tmp_path, path


ENV = {"WIZ_TEST_LI_PW": "Operator-LI-pw-7d1e", "WIZ_TEST_SMTP_PW": "Operator-SMTP-pw-93c2"}


def _secret_values(tmp_path):
    data = yaml.safe_load((tmp_path / "prod.secrets.yaml").read_text())
    values = set()
    for v in data["secrets"].values():
        values.add(v)
        values.update(line for line in v.split("\n") if len(line) >= 12 and not line.startswith("-----"))
    return values


def test_no_secret_in_any_output(site):
    tmp, answers = site
    a = str(answers)
    outputs = []

    def run(*args):
        proc = run_wizard(*args, env=ENV)
        outputs.append((args, proc.stdout + proc.stderr))
        return proc

    run("--answers", a, "--yes")
    secrets = _secret_values(tmp)
    assert ENV["WIZ_TEST_SMTP_PW"] in secrets and ENV["WIZ_TEST_LI_PW"] in secrets
    run("--answers", a, "--yes", "--json")
    run("--answers", a, "--dry-run")
    run("--answers", a, "--dry-run", "--json")
    run("check", "--answers", a)
    run("check", "--answers", a, "--json")
    run("secrets", "list", "--answers", a)
    run("rotate", "turn.shared_secret", "--answers", a, "--dry-run")
    run("rotate", "--all", "--answers", a, "--yes")
    run("rotate", "--all", "--answers", a, "--yes", "--json")
    run("rotate", "synapse.signing_key", "--answers", a, "--yes")
    run("checklist", "--answers", a, "--no-checks")
    run("checklist", "--answers", a, "--no-checks", "--json")
    run("rotate", "smtp.password", "--answers", a, "--yes")  # refused
    # a change whose diff has secrets on both sides
    p = tmp / "deployment/main-instance/06-coturn/deployment.yaml"
    p.write_text(p.read_text().replace("TURN_PASSWORD:", "TURN_PASSWORD: x\n  IGNORED:"))
    run("--answers", a, "--dry-run")
    run("undo", "--answers", a, "--yes")
    secrets |= _secret_values(tmp)
    for args, out in outputs:
        for s in secrets:
            assert s not in out, f"secret value printed by wizard {' '.join(args)}"
    assert any("••••" in out for args, out in outputs if "--dry-run" in args)
    # the answers file holds references only
    text = answers.read_text()
    for s in secrets:
        assert s not in text
    # only the explicit command shows a secret
    proc = run_wizard("secrets", "show", "li.admin_password", "--answers", a, env=ENV)
    assert proc.stdout.strip() == ENV["WIZ_TEST_LI_PW"]


def _zero_key():
    return "ed25519 a_zero " + base64.b64encode(bytes(32)).decode().rstrip("=")


@pytest.mark.parametrize("line,word", [
    (_zero_key(), "degenerate"),
    ("ed25519 a_rep " + base64.b64encode(b"\x07" * 32).decode().rstrip("="), "degenerate"),
    ("ed25519 a_cnt " + base64.b64encode(bytes(range(32))).decode().rstrip("="), "degenerate"),
])
def test_known_bad_signing_keys_are_refused(site, line, word):
    tmp, answers = site
    run_wizard("--answers", str(answers), "--yes", check=True, env=ENV)
    sf = tmp / "prod.secrets.yaml"
    data = yaml.safe_load(sf.read_text())
    data["secrets"]["synapse.signing_key"] = line
    write_secrets(sf, data)
    sf.chmod(0o600)
    before = snapshot(tmp)
    proc = run_wizard("--answers", str(answers), "--yes", env=ENV)
    assert proc.returncode == 2 and word in proc.stderr and line.split()[2] not in proc.stderr
    assert snapshot(tmp) == before
    # rotating it away is allowed
    proc = run_wizard("rotate", "synapse.signing_key", "--revoke", "--answers", str(answers), "--yes", env=ENV)
    assert proc.returncode == 0, proc.stderr


def test_operator_deny_list_file(site, tmp_path):
    tmp, answers = site
    run_wizard("--answers", str(answers), "--yes", check=True, env=ENV)
    from wizard.generate import verify_key_b64

    line = yaml.safe_load((tmp / "prod.secrets.yaml").read_text())["secrets"]["synapse.signing_key"]
    deny = tmp_path / "deny.txt"
    deny.write_text(f"# leaked in an incident\n{verify_key_b64(line)[1]}\n")
    proc = run_wizard("--answers", str(answers), "--yes", env={**ENV, "WIZARD_SIGNING_KEY_DENYLIST": str(deny)})
    assert proc.returncode == 2 and "deny-list" in proc.stderr


@pytest.mark.parametrize("entry,word", [
    ({"a_noprefix": {"key": "O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik", "expired_ts": 1}}, "ed25519:"),
])
def test_bad_old_signing_keys_in_secrets_file(site, entry, word):
    tmp, answers = site
    run_wizard("--answers", str(answers), "--yes", check=True, env=ENV)
    sf = tmp / "prod.secrets.yaml"
    data = yaml.safe_load(sf.read_text())
    data["old_signing_keys"] = entry
    write_secrets(sf, data)
    sf.chmod(0o600)
    proc = run_wizard("--answers", str(answers), "--yes", env=ENV)
    assert proc.returncode == 2 and word in proc.stderr


def test_private_seed_in_old_signing_keys_is_refused(site):
    tmp, answers = site
    run_wizard("--answers", str(answers), "--yes", check=True, env=ENV)
    sf = tmp / "prod.secrets.yaml"
    data = yaml.safe_load(sf.read_text())
    line = data["secrets"]["synapse.signing_key"]
    data["old_signing_keys"] = {"ed25519:a_leak": {"key": line.split()[2], "expired_ts": 1}}
    write_secrets(sf, data)
    sf.chmod(0o600)
    proc = run_wizard("--answers", str(answers), "--yes", env=ENV)
    assert proc.returncode == 2 and "private" in proc.stderr


def test_check_flags_bad_keys_in_the_tree(site):
    tmp, answers = site
    run_wizard("--answers", str(answers), "--yes", check=True, env=ENV)
    data = yaml.safe_load((tmp / "prod.secrets.yaml").read_text())
    line = data["secrets"]["synapse.signing_key"]
    hs = tmp / "deployment/config/synapse/homeserver.yaml"
    text = hs.read_text()
    hs.write_text(text.replace("\nserver_name:", f'\nold_signing_keys:\n  "a_bad": {{key: "{line.split()[2]}", '
                                                 'expired_ts: 1}\nserver_name:', 1))
    zero = _zero_key()
    for rel in ("main-instance/01-synapse/secrets.yaml", "li-instance/01-synapse-li/deployment.yaml"):
        p = tmp / "deployment" / rel
        p.write_text(p.read_text().replace(line, zero))
    proc = run_wizard("check", "--answers", str(answers), "--json", "--rule", "signing-key", env=ENV)
    findings = [f for f in json.loads(proc.stdout)["findings"] if f["rule"] == "signing-key"]
    assert proc.returncode == 1
    msgs = " ".join(f["message"] for f in findings)
    assert "degenerate" in msgs and "ed25519:" in msgs
    assert any(f["file"] == "config/synapse/homeserver.yaml" for f in findings)
