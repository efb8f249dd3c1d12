"""Issue 10: secrets never lost, never leaked, never injected — the cases found by attacking the wizard.

(4) an interrupted rotation is finished with the value recorded before anything was written, never
rotated a second time (a key that never went live does not land in old_signing_keys); (5, 6) every secret
is masked in every output, whatever its source and in every form it takes in a file; (9) a zone id or a
line break never reaches a line-based file; (11) a password bcrypt cannot take is refused by name.
"""
from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

import treecheck as T
from helpers import FULL_ANSWERS, run_wizard, snapshot, write_answers
from oracles import htpasswd_verify

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def configured(tmp_path_factory):
    base = tmp_path_factory.mktemp("safety")
    run_wizard("init", str(base / "deployment"), check=True)
    write_answers(base / "prod.yaml", FULL_ANSWERS)
    run_wizard("--answers", str(base / "prod.yaml"), "--yes", check=True)
    return base


def _copy(base: Path, dest: Path) -> Path:
    shutil.copytree(base, dest)
    return dest


def _store(site: Path) -> dict:
    return yaml.safe_load((site / "prod.secrets.yaml").read_text())


def _hooked(point: int, *args) -> subprocess.CompletedProcess:
    """The CLI with tests/crashhook.py's crash point `point` installed: killed there with SIGKILL."""
    return run_wizard(*args, point=point)


def _points(site: Path, args) -> int:
    probe = _copy(site, site.with_name(site.name + "-probe"))
    proc = _hooked(10_000, *[a.replace(str(site), str(probe)) for a in args])
    return int(re.search(r"crashhook: points (\d+)", proc.stderr).group(1))


def _tree_keys(tree: Path) -> set[str]:
    return {v for v in T.secret_groups(tree)["synapse.signing_key"]}


def _old_key_ids(tree: Path) -> set[str]:
    hs = T.cm(tree, "main-instance/01-synapse/configmap.yaml", "synapse-config")["homeserver.yaml"]
    return set((yaml.safe_load(hs) or {}).get("old_signing_keys") or {})


@pytest.mark.parametrize("when", ["nothing-written-yet", "everything-written"])
def test_an_interrupted_signing_key_rotation_is_finished_not_repeated(configured, tmp_path, when):
    site = _copy(configured, tmp_path / "site")
    original = _store(site)["secrets"]["synapse.signing_key"]
    args = ["rotate", "synapse.signing_key", "--answers", str(site / "prod.yaml"), "--yes"]
    total = _points(site, args)
    # points: 1 backup folder, 2-3 secrets file (new value and `rotating:`), then the manifests, and the
    # secrets file again at the end (`rotating:` cleared)
    point = 4 if when == "nothing-written-yet" else total - 1
    proc = _hooked(point, *args)
    assert f"crashhook: reached {point}" in proc.stderr
    store = _store(site)
    new = store["rotating"]["synapse.signing_key"]
    assert new != original and store["secrets"]["synapse.signing_key"] == new
    assert _tree_keys(site / "deployment") == ({original} if when == "nothing-written-yet" else {new})
    proc = run_wizard(*args)
    assert proc.returncode == 0, proc.stderr
    assert "finished an interrupted rotation of: synapse.signing_key" in proc.stdout
    final = _store(site)
    assert "rotating" not in final
    assert final["secrets"]["synapse.signing_key"] == new
    assert _tree_keys(site / "deployment") == {new}
    kid = "ed25519:" + original.split()[1]
    assert _old_key_ids(site / "deployment") == {kid}  # the new key never went live: it is not retired
    assert set(final["old_signing_keys"]) == {kid}


def test_a_plain_apply_finishes_a_rotation_in_progress_too(configured, tmp_path):
    site = _copy(configured, tmp_path / "site")
    args = ["rotate", "turn.shared_secret", "--answers", str(site / "prod.yaml"), "--yes"]
    proc = _hooked(4, *args)
    assert "crashhook: reached 4" in proc.stderr
    new = _store(site)["rotating"]["turn.shared_secret"]
    run_wizard("--answers", str(site / "prod.yaml"), "--yes", check=True)
    assert set(T.secret_groups(site / "deployment")["turn.shared_secret"]) == {new}
    assert "rotating" not in _store(site)


# ---------------------------------------------------------------- (5, 6) masked, whatever the source

def _forms(value: str) -> set[str]:
    """The forms a value takes in the files, computed here without the wizard."""
    forms = {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1],
             yaml.safe_dump(value, default_style='"', allow_unicode=True).strip()[1:-1],
             yaml.safe_dump(value, default_style='"').strip()[1:-1], value.replace("'", "''")}
    return {f for f in forms if len(f) >= 6}


def _assert_masked(out: str, values) -> None:
    for v in values:
        for form in _forms(v):
            assert form not in out, f"a secret is printed ({form[:4]}…)"


def test_a_second_clone_shows_no_stored_secret(configured, tmp_path):
    """The secrets file holds every value; the tree is fresh (a second clone): the dry-run diff writes them
    all and shows none."""
    site = tmp_path / "clone"
    site.mkdir()
    shutil.copy2(configured / "prod.yaml", site / "prod.yaml")
    shutil.copy2(configured / "prod.secrets.yaml", site / "prod.secrets.yaml")
    run_wizard("init", str(site / "deployment"), check=True)
    proc = run_wizard("--answers", str(site / "prod.yaml"), "--dry-run")
    assert proc.returncode == 0, proc.stderr
    values = [v for v in _store(site)["secrets"].values()]
    _assert_masked(proc.stdout + proc.stderr, values)
    assert proc.stdout.count("••••") >= 20
    assert "(synapse.signing_key)" in proc.stdout and "(key_vault.rsa_private_key)" in proc.stdout


def test_values_adopted_from_the_tree_are_masked(configured, tmp_path):
    site = _copy(configured, tmp_path / "site")
    values = list(_store(site)["secrets"].values())
    (site / "prod.secrets.yaml").unlink()
    data = copy.deepcopy(FULL_ANSWERS)
    data["storage"] = {"class": "other-class"}  # something to show in the diff next to the secrets
    write_answers(site / "prod.yaml", data)
    tree = site / "deployment/main-instance/01-synapse/secrets.yaml"
    tree.write_text(tree.read_text().replace("REDIS_PASSWORD:", "OLD_NOTE: x\n  REDIS_PASSWORD:"))
    proc = run_wizard("--answers", str(site / "prod.yaml"), "--dry-run")
    assert proc.returncode == 0, proc.stderr
    _assert_masked(proc.stdout + proc.stderr, values)


SMTP = {"enabled": True, "host": "smtp.acme-corp.net", "user": "mailer", "password": "env:SMTP_PW",
        "from": "matrix@acme-corp.net"}


def test_the_smtp_password_is_masked_in_its_escaped_form(configured, tmp_path):
    site = _copy(configured, tmp_path / "site")
    data = copy.deepcopy(FULL_ANSWERS)
    data["smtp"] = SMTP
    write_answers(site / "prod.yaml", data)
    pw = "Tab\there-and-é-Ω-quote'x"
    env = {"SMTP_PW": pw}
    outs = []
    for args in (["--answers", str(site / "prod.yaml"), "--dry-run"],
                 ["--answers", str(site / "prod.yaml"), "--dry-run", "--json"]):
        proc = run_wizard(*args, env=env)
        assert proc.returncode == 0, proc.stderr
        outs.append(proc.stdout + proc.stderr)
    assert "(smtp.password)" in outs[0]
    run_wizard("--answers", str(site / "prod.yaml"), "--yes", check=True, env=env)
    proc = run_wizard("rotate", "turn.shared_secret", "--answers", str(site / "prod.yaml"), "--dry-run", env=env)
    assert proc.returncode == 0, proc.stderr
    outs.append(proc.stdout + proc.stderr)
    plain = T.plain(site / "deployment", "config/synapse/homeserver.yaml")["email"]["smtp_pass"]
    assert plain == pw  # written, and read back exactly
    for out in outs:
        _assert_masked(out, [pw])
        assert "\\there" not in out and "Tab\\t" not in out


def test_an_smtp_password_that_would_end_a_comment_is_refused_unprinted(configured, tmp_path):
    site = _copy(configured, tmp_path / "site")
    data = copy.deepcopy(FULL_ANSWERS)
    data["smtp"] = SMTP
    write_answers(site / "prod.yaml", data)
    pw = "pw\u2028enable_registration: true"
    before = snapshot(site)
    for args in (["--dry-run"], ["--yes"]):
        proc = run_wizard("--answers", str(site / "prod.yaml"), *args, env={"SMTP_PW": pw})
        assert proc.returncode == 2 and "smtp.password" in proc.stderr
        _assert_masked(proc.stdout + proc.stderr, [pw])
        assert "enable_registration" not in proc.stderr
    assert snapshot(site) == before


# ---------------------------------------------------------------- (9) line-based files

@pytest.mark.parametrize("ip", ["fe80::1%eth0", "fe80::1%x\nno-auth\ncli-password=pwned", "198.51.100.7\nno-auth",
                                "203.0.113.9\u2028no-auth"])
def test_turn_external_ip_refuses_zone_ids_and_line_breaks(configured, tmp_path, ip):
    site = _copy(configured, tmp_path / "site")
    data = copy.deepcopy(FULL_ANSWERS)
    data["turn"] = {"external_ip": ip}
    write_answers(site / "prod.yaml", data)
    before = snapshot(site)
    proc = run_wizard("--answers", str(site / "prod.yaml"), "--yes")
    assert proc.returncode == 2 and "turn.external_ip" in proc.stderr
    assert snapshot(site) == before


@pytest.mark.parametrize("ip", ["198.51.100.7", "2001:db8::7"])
def test_turn_external_ip_adds_exactly_one_line(configured, tmp_path, ip):
    site = _copy(configured, tmp_path / "site")
    conf_of = lambda: T.cm(site / "deployment", T.COTURN, "coturn-config")["turnserver.conf"]  # noqa: E731
    before = conf_of().split("\n")
    data = copy.deepcopy(FULL_ANSWERS)
    data["turn"] = {"external_ip": ip}
    write_answers(site / "prod.yaml", data)
    run_wizard("--answers", str(site / "prod.yaml"), "--yes", check=True)
    after = conf_of().split("\n")
    assert len(after) == len(before) + 1
    assert [ln for ln in after if ln.startswith("external-ip")] == [f"external-ip={ip}"]


# ---------------------------------------------------------------- (11) bcrypt's 72 bytes

@pytest.mark.parametrize("pw,ok", [("é" * 36, True), ("é" * 36 + "x", False), ("a" * 100, False),
                                   ("line\u2028break", False)])
def test_the_li_admin_password_bcrypt_can_take(configured, tmp_path, pw, ok):
    site = _copy(configured, tmp_path / "site")
    data = copy.deepcopy(FULL_ANSWERS)
    data["li"] = dict(data["li"], admin_password="env:LI_PW")
    write_answers(site / "prod.yaml", data)
    before = snapshot(site)
    proc = run_wizard("--answers", str(site / "prod.yaml"), "--yes", env={"LI_PW": pw})
    if ok:
        assert proc.returncode == 0, proc.stderr
        line = T.sd(site / "deployment", "li-instance/03-synapse-admin-li/deployment.yaml",
                    "synapse-admin-auth")["auth"]
        assert htpasswd_verify(line, pw)
    else:
        assert proc.returncode == 2 and "li.admin_password" in proc.stderr and "Traceback" not in proc.stderr
        assert snapshot(site) == before


def test_check_answers_names_a_tree_value_differing_from_the_secrets_file(configured, tmp_path):
    """Issue 10 (2): `check --answers` reports a tree whose value differs from the secrets file as an error
    naming the id and every location that differs, never a value; exit 1."""
    site = _copy(configured, tmp_path / "site")
    stored = _store(site)["secrets"]["postgres.synapse_password"]
    tampered = "Tampered0by0hand0" + "x" * 20
    changed = []
    for p in sorted((site / "deployment").rglob("*.yaml")):
        text = p.read_text()
        if stored in text:
            p.write_text(text.replace(stored, tampered))
            changed.append(p.relative_to(site / "deployment").as_posix())
    assert len(changed) >= 2  # the whole group changed alike: equal to each other, not to the secrets file
    proc = run_wizard("--deployment", str(site / "deployment"), "--answers", str(site / "prod.yaml"), "check")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if "secrets-file" in ln]
    assert lines and all("error" in ln and "postgres.synapse_password" in ln for ln in lines), proc.stdout
    named = " ".join(lines)
    assert all(rel in named for rel in changed), (changed, lines)
    out = proc.stdout + proc.stderr
    assert stored not in out and tampered not in out
    # the same tree without the answers file: nothing to compare with, no secrets-file finding
    alone = run_wizard("--deployment", str(site / "deployment"), "check", cwd=tmp_path)
    assert "secrets-file" not in alone.stdout
