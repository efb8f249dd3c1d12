"""Issue 5: SIGKILL at every point of an apply and of a rotation where a write becomes visible, then the
same command again: the tree equals an uninterrupted run's with the same secrets file, and no secret is
ever only in the tree. The crash points come from tests/crashhook.py, installed by the test in the child
process (the product carries no test hook): a forked child of tests/forkserver.py, killed with SIGKILL."""
from __future__ import annotations

import re
import shutil
import signal
from pathlib import Path

import pytest
import yaml

import treecheck as T
from helpers import FULL_ANSWERS, run_wizard, snapshot, write_answers

pytestmark = pytest.mark.e2e  # each case kills a wizard process at a crash point

ROOT = Path(__file__).resolve().parent.parent


def _run_until_point_then_killed(args, point: int) -> bool:
    """True when the child reached crash point `point` and was killed there (SIGKILL)."""
    proc = run_wizard(*args, point=point)
    reached = f"crashhook: reached {point}" in proc.stderr
    if reached:
        assert proc.returncode == -signal.SIGKILL, proc.stderr
    return reached


def _rerun(args: list[str]) -> None:
    """The same command again, after the crash: through the application layer in this process (what the
    CLI calls; its report is not what is judged here). The CLI's own re-run is tested once, below."""
    from wizard import app
    from wizard.answers import load_answers

    answers = load_answers(args[args.index("--answers") + 1])
    if args[0] == "rotate":
        app.rotate(answers, [], all_="--all" in args, include_signing="--include-signing-key" in args)
    else:
        app.apply(answers)


def _store(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) if path.exists() else {}


def _tree_secret_values(tree: Path) -> set[str]:
    out = set()
    for values in T.secret_groups(tree).values():
        out.update(v for v in values if not T.TOKEN_RE.search(v))
    return out


def _reference(base: Path, store_text: str, tmp: Path) -> dict[str, bytes]:
    """The tree an uninterrupted run gives with this secrets file (in this process: same code, less time)."""
    from wizard import app
    from wizard.answers import load_answers

    ref = tmp / "ref"
    if ref.exists():
        shutil.rmtree(ref)
    shutil.copytree(base, ref)
    (ref / "prod.secrets.yaml").write_text(store_text)
    (ref / "prod.secrets.yaml").chmod(0o600)
    app.apply(load_answers(ref / "prod.yaml"))
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


# Two per file written (temp file created, renamed over the target) and one for the backup folder:
# the first apply writes the secrets file and 27 manifests; rotate --all --include-signing-key the secrets
# file twice (new values first, `rotating:` cleared last) and 13 manifests.
APPLY_POINTS = list(range(1, 1 + 2 * (1 + 27) + 1))
ROTATE_POINTS = list(range(1, 1 + 2 * (2 + 13) + 1))


def test_the_runs_have_exactly_these_points(fresh_site, configured_site, tmp_path):
    for base, args, last in ((fresh_site, ["--answers", "prod.yaml", "--yes"], APPLY_POINTS[-1]),
                             (configured_site, ["rotate", "--all", "--include-signing-key", "--answers", "prod.yaml",
                                                "--yes"], ROTATE_POINTS[-1])):
        site = tmp_path / base.name
        shutil.copytree(base, site)
        args = [a if a != "prod.yaml" else str(site / "prod.yaml") for a in args]
        proc = run_wizard(*args, point=last + 1)
        assert proc.returncode == 0, proc.stderr
        assert int(re.search(r"crashhook: points (\d+)", proc.stderr).group(1)) == last


@pytest.mark.parametrize("point", APPLY_POINTS)
def test_apply_killed_then_rerun(fresh_site, tmp_path, point):
    site = tmp_path / "site"
    shutil.copytree(fresh_site, site)
    args = ["--answers", str(site / "prod.yaml"), "--yes"]
    killed = _run_until_point_then_killed(args, point)
    assert killed, f"the apply has fewer than {point} crash points"
    store = _store(site / "prod.secrets.yaml")
    in_store = set((store.get("secrets") or {}).values())
    assert _tree_secret_values(site / "deployment") <= in_store, "a secret exists only in the tree"
    _rerun(args)
    assert not list(site.rglob(".wizard-tmp-*")), "temp files left behind"
    final_store = (site / "prod.secrets.yaml").read_text()
    assert snapshot(site / "deployment") == _reference(fresh_site, final_store, tmp_path)


@pytest.mark.parametrize("point", ROTATE_POINTS)
def test_rotation_killed_then_rerun(configured_site, tmp_path, point):
    site = tmp_path / "site"
    shutil.copytree(configured_site, site)
    before_store = set(_store(site / "prod.secrets.yaml")["secrets"].values())
    args = ["rotate", "--all", "--include-signing-key", "--answers", str(site / "prod.yaml"), "--yes"]
    killed = _run_until_point_then_killed(args, point)
    assert killed, f"the rotation has fewer than {point} crash points"
    store = _store(site / "prod.secrets.yaml")
    in_store = set((store.get("secrets") or {}).values()) | before_store
    assert _tree_secret_values(site / "deployment") <= in_store, "a new secret exists only in the tree"
    _rerun(args)
    final = _store(site / "prod.secrets.yaml")
    assert "rotating" not in final
    groups = T.secret_groups(site / "deployment")
    for cid, values in groups.items():
        assert len(set(values)) == 1, cid
    final_text = (site / "prod.secrets.yaml").read_text()
    assert snapshot(site / "deployment") == _reference(configured_site, final_text, tmp_path)


@pytest.mark.parametrize("kind, point", [("apply", APPLY_POINTS[len(APPLY_POINTS) // 2]),
                                         ("rotate", ROTATE_POINTS[len(ROTATE_POINTS) // 2])])
def test_the_cli_rerun_finishes_the_job(fresh_site, configured_site, tmp_path, kind, point):
    """The re-run above goes through the application layer; here it is the command line, in a new process."""
    base = fresh_site if kind == "apply" else configured_site
    site = tmp_path / "site"
    shutil.copytree(base, site)
    args = ["--answers", str(site / "prod.yaml"), "--yes"]
    if kind == "rotate":
        args = ["rotate", "--all", "--include-signing-key", *args]
    assert _run_until_point_then_killed(args, point)
    proc = run_wizard(*args, check=True)
    assert "rotating" not in _store(site / "prod.secrets.yaml")
    assert snapshot(site / "deployment") == _reference(base, (site / "prod.secrets.yaml").read_text(), tmp_path), \
        proc.stdout
