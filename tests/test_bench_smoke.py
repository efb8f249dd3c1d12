"""The benchmark entry point runs on the bundled tree and writes its JSON (a smoke run, not timed).

`python bench/run.py --quick` runs every tool once on the bundled tree and on a small generated
large tree. Only the shape of the result is checked here; times are reported, never asserted.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e  # runs the benchmark script

REPO = Path(__file__).resolve().parent.parent
TOOLS = ("wizard_first", "wizard_reapply", "ruamel", "js_yaml")
FIDELITY_KEYS = ("files_changed", "changed_lines", "unexplained_changed_lines", "comment_lines_lost",
                 "trailing_comments_lost", "data_changed_files", "examples")


def test_bench_quick_run_writes_its_json(tmp_path):
    out = tmp_path / "quick.json"
    r = subprocess.run([sys.executable, str(REPO / "bench" / "run.py"), "--quick", "--out", str(out)],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:] + r.stdout[-2000:]
    assert "wizard first apply" in r.stdout  # the table was printed
    result = json.loads(out.read_text())
    assert out.with_suffix(".md").read_text().startswith("Run ")

    assert result["config"]["quick"] is True and result["config"]["reps"] == 1
    assert {"cpu", "cpus", "memory_gb", "os", "versions"} <= set(result["machine"])
    assert set(result["trees"]) == {"bundled", "large"}
    for name, tree in result["trees"].items():
        assert tree["files"] > 0 and tree["documents"] > 0, name
        for tool in TOOLS:
            t = tree["tools"][tool]
            if tool == "js_yaml" and "skipped" in t:
                assert t["skipped"], "a skipped baseline says why"
                continue
            assert t["time_s"] > 0 and t["cpu_s"] >= 0 and t["peak_rss_mb"] > 0, (name, tool)
            assert len(t["times_s"]) == 1, (name, tool)
            assert set(FIDELITY_KEYS) <= set(t["fidelity"]), (name, tool)
            assert t["fidelity"]["files_changed"] > 0, (name, tool)  # the tool did edit the tree
        assert "wizard_reapply/ruamel" in tree["ratios"]
        assert tree["wizard_edits"] > 0 and tree["plan_files"] > 0
    large, bundled = result["trees"]["large"], result["trees"]["bundled"]
    assert large["documents"] > bundled["documents"]  # the large tree really is larger
    assert result["large_tree"]["factor"] == result["config"]["factor"]
    assert {"size_ratio", "time_ratio", "wizard_within_10x"} <= set(result["linearity"])
    assert result["help"]["time_s"] > 0
    assert {"wizard_zero_unexplained_lines", "wizard_zero_comments_lost", "help_le_0_3s",
            "reapply_faster_than_ruamel_bundled"} <= set(result["checks"])


def test_own_tree_figures_for_two_seeds(tmp_path):
    """bench/own_tree.py on two drifted trees: one table row each and the totals; the leftovers it counts are the
    generator's expected ones, and every catalog location is either at its place or discovered."""
    out = tmp_path / "own.md"
    r = subprocess.run([sys.executable, str(REPO / "bench" / "own_tree.py"), "--seeds", "4,7", "--out", str(out)],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:] + r.stdout[-2000:]
    assert out.read_text() == r.stdout
    rows = [ln.split("|")[1:-1] for ln in r.stdout.splitlines() if ln.startswith("| ") and ln[2].isdigit()]
    assert [c.strip() for c in (row[0] for row in rows)] == ["4", "7"]
    for row in rows:
        catalog, discovered = int(row[1]), int(row[2].split()[0])
        left, expected = row[4].split()
        assert catalog > 0 and discovered > 0
        assert left == expected.strip("()")
    assert "Discovered, by how:" in r.stdout and "mounted key" in r.stdout
