"""Issue 5: broken or foreign trees get one clear message with file:line and nothing written; CRLF and
BOM files are edited and keep their line ends and BOM."""
from __future__ import annotations

import os

import pytest

from helpers import FULL_ANSWERS, run_wizard, snapshot, write_answers

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


def test_tab_indentation(site):
    p = site / "deployment" / SECRETS
    lines = p.read_text().split("\n")
    i = next(i for i, ln in enumerate(lines) if ln.startswith("  REDIS_PASSWORD"))
    lines[i] = "\t" + lines[i].lstrip()
    p.write_text("\n".join(lines))
    _refused(site, f"{SECRETS}:{i + 1}")


def test_missing_document(site):
    p = site / "deployment/main-instance/06-coturn/deployment.yaml"
    docs = p.read_text().split("\n---")
    kept = [d for d in docs if "kind: Secret\n" not in d or "name: coturn-secrets" not in d]
    assert len(kept) == len(docs) - 1
    p.write_text("\n---".join(kept))
    _refused(site, "main-instance/06-coturn/deployment.yaml", "Secret/coturn-secrets")


def test_unknown_placeholder_is_reported_with_line(site):
    p = site / "deployment/values/metallb-values.yaml"
    text = p.read_text()
    p.write_text(text + "extra:\n  region: CHANGE_TO_YOUR_REGION\n")
    line = text.count("\n") + 2
    proc = _refused(site, f"values/metallb-values.yaml:{line}", "CHANGE_TO_YOUR_REGION")
    proc = run_wizard("check", "--deployment", str(site / "deployment"))
    assert proc.returncode == 1 and f"values/metallb-values.yaml:{line}" in proc.stdout


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
    other = tmp_path / "other"
    (other / "k8s").mkdir(parents=True)
    (other / "k8s/app.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata: {}\n")
    proc = run_wizard("--answers", str(site / "prod.yaml"), "--deployment", str(other), "--yes")
    assert proc.returncode == 2 and "expected deployment layout" in proc.stderr
    assert sorted(p.name for p in other.rglob("*")) == ["app.yaml", "k8s"]


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
