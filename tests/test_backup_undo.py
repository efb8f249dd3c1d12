"""Issue 5: backups beside the tree (0700), and `wizard undo` restores the previous state."""
from __future__ import annotations

import os
import stat
import subprocess

import pytest

from helpers import FULL_ANSWERS, run_wizard, snapshot, write_answers

pytestmark = pytest.mark.e2e  # undo through the CLI


def test_backup_and_undo_restore_tree_and_secrets(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    run_wizard("init", str(tmp_path / "deployment"), check=True)
    answers = write_answers(tmp_path / "prod.yaml", FULL_ANSWERS)
    fresh = snapshot(tmp_path / "deployment")
    run_wizard("--answers", str(answers), "--yes", check=True)
    configured = snapshot(tmp_path / "deployment")
    secrets_before = (tmp_path / "prod.secrets.yaml").read_bytes()
    backups = tmp_path / ".wizard-backups"
    assert stat.S_IMODE(os.stat(backups).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(backups / "deployment").st_mode) == 0o700
    gitignore = (tmp_path / ".gitignore").read_text().split()
    assert "/prod.secrets.yaml" in gitignore and "/.wizard-backups" in gitignore
    run_wizard("rotate", "redis.password", "--answers", str(answers), "--yes", check=True)
    assert snapshot(tmp_path / "deployment") != configured
    proc = run_wizard("undo", "--answers", str(answers), "--yes", check=True)
    assert "restored" in proc.stdout
    assert snapshot(tmp_path / "deployment") == configured
    assert (tmp_path / "prod.secrets.yaml").read_bytes() == secrets_before
    run_wizard("undo", "--answers", str(answers), "--yes", check=True)
    assert snapshot(tmp_path / "deployment") == fresh
    proc = run_wizard("undo", "--answers", str(answers), "--yes")
    assert proc.returncode == 2 and "no backup" in proc.stderr
    for p in backups.rglob("*"):
        if p.is_file():
            assert stat.S_IMODE(p.stat().st_mode) == 0o600


def test_manifests_keep_their_mode(tmp_path):
    run_wizard("init", str(tmp_path / "deployment"), check=True)
    target = tmp_path / "deployment/main-instance/01-synapse/secrets.yaml"
    os.chmod(target, 0o640)
    answers = write_answers(tmp_path / "prod.yaml", FULL_ANSWERS)
    run_wizard("--answers", str(answers), "--yes", check=True)
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "prod.secrets.yaml").stat().st_mode) == 0o600


def test_warns_when_secret_manifests_are_tracked_by_git(tmp_path):
    run_wizard("init", str(tmp_path / "deployment"), check=True)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "add", "deployment"], check=True)
    answers = write_answers(tmp_path / "prod.yaml", FULL_ANSWERS)
    proc = run_wizard("--answers", str(answers), "--yes", check=True)
    assert "tracked by git" in proc.stderr and "sops" in proc.stderr
    assert "/prod.secrets.yaml" in (tmp_path / ".gitignore").read_text()
