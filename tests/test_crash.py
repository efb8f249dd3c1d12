"""Issue 5: SIGKILL at many points of an apply and of a rotation, then the same command again: the tree
equals an uninterrupted run's with the same secrets file, and no secret is ever only in the tree."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import treecheck as T
from helpers import FULL_ANSWERS, run_wizard, snapshot, write_answers

ROOT = Path(__file__).resolve().parent.parent


def _start(args, env_extra):
    env = dict(os.environ, NO_COLOR="1", **env_extra)
    return subprocess.Popen([sys.executable, "-m", "wizard", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def _run_until_pause_then_kill(args, point: int) -> bool:
    """True when the process reached the pause point and was killed there."""
    proc = _start(args, {"WIZARD_TEST_STOP_AT": str(point)})
    deadline = time.time() + 60
    line = ""
    while time.time() < deadline:
        line = proc.stderr.readline()
        if not line or "wizard-test: paused" in line:
            break
    if "wizard-test: paused" in line:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return True
    proc.wait()
    return False


def _store(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) if path.exists() else {}


def _tree_secret_values(tree: Path) -> set[str]:
    out = set()
    for values in T.secret_groups(tree).values():
        out.update(v for v in values if not T.TOKEN_RE.search(v))
    return out


def _reference(base: Path, store_text: str, tmp: Path) -> dict[str, bytes]:
    """The tree an uninterrupted run gives with this secrets file."""
    ref = tmp / "ref"
    if ref.exists():
        shutil.rmtree(ref)
    shutil.copytree(base, ref)
    (ref / "prod.secrets.yaml").write_text(store_text)
    (ref / "prod.secrets.yaml").chmod(0o600)
    run_wizard("--answers", str(ref / "prod.yaml"), "--yes", check=True)
    return snapshot(ref / "deployment")


@pytest.fixture(scope="module")
def fresh_site(tmp_path_factory):
    base = tmp_path_factory.mktemp("crash-base")
    run_wizard("init", str(base / "deployment"), check=True)
    write_answers(base / "prod.yaml", FULL_ANSWERS)
    return base


@pytest.fixture(scope="module")
def configured_site(tmp_path_factory, fresh_site):
    base = tmp_path_factory.mktemp("crash-configured")
    shutil.copytree(fresh_site, base, dirs_exist_ok=True)
    run_wizard("--answers", str(base / "prod.yaml"), "--yes", check=True)
    return base


APPLY_POINTS = list(range(1, 49))  # two per file written: the secrets file + 23 manifests
ROTATE_POINTS = list(range(1, 31))  # rotate --all --include-signing-key: secrets file twice + 13 manifests


@pytest.mark.parametrize("point", APPLY_POINTS)
def test_apply_killed_then_rerun(fresh_site, tmp_path, point):
    site = tmp_path / "site"
    shutil.copytree(fresh_site, site)
    args = ["--answers", str(site / "prod.yaml"), "--yes"]
    killed = _run_until_pause_then_kill(args, point)
    assert killed, f"the apply has fewer than {point} pause points"
    store = _store(site / "prod.secrets.yaml")
    in_store = set((store.get("secrets") or {}).values())
    assert _tree_secret_values(site / "deployment") <= in_store, "a secret exists only in the tree"
    run_wizard(*args, check=True)
    assert not list(site.rglob(".wizard-tmp-*")), "temp files left behind"
    final_store = (site / "prod.secrets.yaml").read_text()
    assert snapshot(site / "deployment") == _reference(fresh_site, final_store, tmp_path)


@pytest.mark.parametrize("point", ROTATE_POINTS)
def test_rotation_killed_then_rerun(configured_site, tmp_path, point):
    site = tmp_path / "site"
    shutil.copytree(configured_site, site)
    before_store = set(_store(site / "prod.secrets.yaml")["secrets"].values())
    args = ["rotate", "--all", "--include-signing-key", "--answers", str(site / "prod.yaml"), "--yes"]
    killed = _run_until_pause_then_kill(args, point)
    assert killed, f"the rotation has fewer than {point} pause points"
    store = _store(site / "prod.secrets.yaml")
    in_store = set((store.get("secrets") or {}).values()) | before_store
    assert _tree_secret_values(site / "deployment") <= in_store, "a new secret exists only in the tree"
    run_wizard(*args, check=True)
    final = _store(site / "prod.secrets.yaml")
    assert "rotating" not in final
    groups = T.secret_groups(site / "deployment")
    for cid, values in groups.items():
        assert len(set(values)) == 1, cid
    final_text = (site / "prod.secrets.yaml").read_text()
    assert snapshot(site / "deployment") == _reference(configured_site, final_text, tmp_path)
