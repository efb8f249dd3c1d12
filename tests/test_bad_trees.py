"""Broken or foreign trees (issue 5, rewritten for issue 13's "keep going"): a problem confined to one
manifest blocks only what is in it — the rest is configured, the problem is a leftover naming file:line,
exit 1, nothing is lost (every value is in the secrets file, the broken file is untouched) and a re-run
after the fix finishes the job. A link out of the tree is still refused outright (exit 2). CRLF and BOM
files are edited and keep their line ends and BOM."""
from __future__ import annotations

import os

import pytest

import json

import treecheck as T
from helpers import FULL_ANSWERS, run_wizard, snapshot, write_answers

pytestmark = pytest.mark.e2e  # broken trees through the CLI

SECRETS = "main-instance/01-synapse/secrets.yaml"


@pytest.fixture
def site(tmp_path):
    run_wizard("init", str(tmp_path / "deployment"), check=True)
    write_answers(tmp_path / "prod.yaml", FULL_ANSWERS)
    return tmp_path


def _apply(site):
    return run_wizard("--answers", str(site / "prod.yaml"), "--yes")


def _refused(site, *words):
    before = snapshot(site)
    proc = _apply(site)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    for w in words:
        assert w in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert snapshot(site) == before
    return proc


def _left_over(site, *words, kinds=None):
    """Apply: exit 1, the leftovers name `words`; the JSON report says the same."""
    proc = run_wizard("--answers", str(site / "prod.yaml"), "--yes", "--json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    data = json.loads(proc.stdout)
    text = "\n".join(f"{e['file']}:{e['line']}: {e['message']}" for e in data["leftovers"])
    for w in words:
        assert w in text, text
    if kinds is not None:
        assert sorted({e["kind"] for e in data["leftovers"]}) == sorted(kinds), text
    assert "Traceback" not in proc.stderr
    return data


def _stored_and_finished(site, fix):
    """Nothing was lost: every generated id is in the secrets file; after the fix a re-run finishes."""
    import yaml

    stored = yaml.safe_load((site / "prod.secrets.yaml").read_text())["secrets"]
    assert {"synapse.signing_key", "redis.password", "turn.shared_secret"} <= set(stored)
    fix()
    proc = run_wizard("--answers", str(site / "prod.yaml"), "--yes")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    groups = T.secret_groups(site / "deployment")
    assert all(len(set(v)) == 1 and not T.TOKEN_RE.search(v[0]) for v in groups.values())
    for cid in ("synapse.signing_key", "redis.password", "turn.shared_secret"):
        assert groups[cid][0] == stored[cid].rstrip("\n")  # the values stored by the first run


def test_tab_indentation(site):
    p = site / "deployment" / SECRETS
    text = p.read_text()
    lines = text.split("\n")
    i = next(i for i, ln in enumerate(lines) if ln.startswith("  REDIS_PASSWORD"))
    lines[i] = "\t" + lines[i].lstrip()
    p.write_text("\n".join(lines))
    broken = p.read_bytes()
    data = _left_over(site, f"{SECRETS}:{i + 1}", "does not parse")
    assert p.read_bytes() == broken
    assert any(e["kind"] == "held-back" and e["id"] == "redis.password" for e in data["leftovers"])
    # a value that lives in the broken file is written nowhere else either (never split a group)
    assert T.sd(site / "deployment", "infrastructure/02-redis/redis-secret.yaml", "redis-password")["password"] \
        .startswith("CHANGE")
    # what does not touch that file is configured
    assert not T.TOKEN_RE.search(T.sd(site / "deployment", T.COTURN, "coturn-secrets")["TURN_PASSWORD"])
    _stored_and_finished(site, lambda: p.write_text(text))


def test_missing_document(site):
    p = site / "deployment/main-instance/06-coturn/deployment.yaml"
    text = p.read_text()
    docs = text.split("\n---")
    kept = [d for d in docs if "kind: Secret\n" not in d or "name: coturn-secrets" not in d]
    assert len(kept) == len(docs) - 1
    p.write_text("\n---".join(kept))
    data = _left_over(site, "Secret/coturn-secrets")
    assert {e["id"] for e in data["leftovers"] if e["kind"] == "held-back"} >= {"turn.shared_secret"}
    _stored_and_finished(site, lambda: p.write_text(text))


def test_unknown_placeholder_is_reported_with_line(site):
    p = site / "deployment/values/metallb-values.yaml"
    text = p.read_text()
    p.write_text(text + "extra:\n  region: CHANGE_TO_YOUR_REGION\n")
    line = text.count("\n") + 2
    data = _left_over(site, f"values/metallb-values.yaml:{line}", "CHANGE_TO_YOUR_REGION", kinds=["unknown-token"])
    assert data["leftovers"][0]["fix"].startswith("give it a value in the answers file: placeholders:")
    proc = run_wizard("check", "--deployment", str(site / "deployment"))
    assert proc.returncode == 1 and f"values/metallb-values.yaml:{line}" in proc.stdout
    # the answers' placeholders: map gives it a value, and the job is done
    write_answers(site / "prod.yaml", dict(FULL_ANSWERS, placeholders={"CHANGE_TO_YOUR_REGION": "eu-west-3"}))
    proc = run_wizard("--answers", str(site / "prod.yaml"), "--yes")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "region: eu-west-3" in p.read_text()


def test_symlink_out_of_tree(site, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere") / "secrets.yaml"
    p = site / "deployment" / SECRETS
    outside.write_bytes(p.read_bytes())
    p.unlink()
    p.symlink_to(outside)
    _refused(site, SECRETS, "outside the tree")


def test_symlink_inside_tree_is_followed_not_replaced(site):
    p = site / "deployment" / SECRETS
    real = site / "deployment/main-instance/01-synapse/real-secrets.yaml.txt"
    real.write_bytes(p.read_bytes())
    p.unlink()
    os.symlink("real-secrets.yaml.txt", p)
    proc = _apply(site)
    assert proc.returncode == 0, proc.stderr
    assert p.is_symlink() and "CHANGEME_SECURE_DB_PASSWORD" not in real.read_text()


def test_another_layout(site, tmp_path):
    """A tree of another application: nothing of the catalog is found; nothing in it is written, every
    location is a leftover (exit 1), and a folder holding no Kubernetes object at all is no deployment."""
    other = tmp_path / "other"
    (other / "k8s").mkdir(parents=True)
    (other / "k8s/app.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata: {}\n")
    answers = write_answers(tmp_path / "other.yaml", dict(FULL_ANSWERS, deployment="other"))
    proc = run_wizard("--answers", str(answers), "--yes", "--json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    data = json.loads(proc.stdout)
    assert any(e["kind"] == "not-found" and "Secret/synapse-secrets" in (e["address"] or "") for e in data["leftovers"])
    assert sorted(p.name for p in other.rglob("*")) == ["app.yaml", "k8s"]
    (other / "k8s/app.yaml").write_text("just: text\n")
    proc = run_wizard("--answers", str(answers), "--yes")
    assert proc.returncode == 2 and "no deployment" in proc.stderr
    assert (other / "k8s/app.yaml").read_text() == "just: text\n"


def test_crlf_and_bom_are_kept(site):
    p = site / "deployment" / SECRETS
    p.write_bytes(b"\xef\xbb\xbf" + p.read_bytes().replace(b"\n", b"\r\n"))
    hs = site / "deployment/main-instance/01-synapse/configmap.yaml"
    hs.write_bytes(hs.read_bytes().replace(b"\n", b"\r\n"))
    assert _apply(site).returncode == 0
    for f, bom in ((p, True), (hs, False)):
        data = f.read_bytes()
        assert data.startswith(b"\xef\xbb\xbf") == bom
        assert data.count(b"\r\n") == data.count(b"\n")
    import treecheck as T

    groups = T.secret_groups(site / "deployment")
    assert all(len(set(v)) == 1 and not T.TOKEN_RE.search(v[0]) for v in groups.values())


def test_answers_creates_missing_tree_and_dry_run_creates_nothing(tmp_path):
    answers = write_answers(tmp_path / "prod.yaml", FULL_ANSWERS)
    proc = run_wizard("--answers", str(answers), "--dry-run")
    assert proc.returncode == 0 and "bundled templates" in proc.stdout
    assert "+++ b/main-instance/01-synapse/secrets.yaml" in proc.stdout
    assert not (tmp_path / "deployment").exists() and not (tmp_path / "prod.secrets.yaml").exists()
    proc = run_wizard("--answers", str(answers), "--yes")
    assert proc.returncode == 0 and "created" in proc.stdout and (tmp_path / "deployment").is_dir()
