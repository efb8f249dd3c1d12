#!/usr/bin/env python3
"""Benchmark: the wizard against a ruamel.yaml round-trip and the JavaScript `yaml` package.

    python bench/run.py [--quick] [--out bench/results/latest.json] [--factor N] [--reps N]

On (A) the bundled tree (templates/deployment) and (B) a generated large tree (the same layout,
each manifest carrying FACTOR times its objects: the originals plus renamed copies, see
largetree.py), every tool runs as a cold process on a fresh copy of the tree:
  wizard first apply   `wizard --answers` with no secrets file: every secret generated
                       (bcrypt, RSA, ed25519 included)
  wizard re-apply      the same on an untouched copy, with the secrets file of a first apply kept
  ruamel.yaml          bench/baseline_ruamel.py: the same value changes by a tuned round-trip
  yaml (JS)            bench/baseline_yaml.mjs: the same through the yaml package's Document API
The baselines replay the values of the wizard's re-apply (its result, read back with PyYAML,
diffed against the original: changes.py), so all tools write the same data.
For each: wall time (median of REPS after a warm-up), CPU time, peak RSS of the child (ru_maxrss),
and fidelity against the original tree (fidelity.py). Also `wizard --help` as a cold process.
Prints a table, writes JSON to --out and the same table as Markdown beside it (.md).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
TEMPLATES = REPO / "templates" / "deployment"
ANSWERS = REPO / "answers.example.yaml"
sys.path.insert(0, str(BENCH))

import changes  # noqa: E402
import fidelity  # noqa: E402
import largetree  # noqa: E402

TOOLS = ("wizard_first", "wizard_reapply", "ruamel", "js_yaml")
LABELS = {"wizard_first": "wizard first apply", "wizard_reapply": "wizard re-apply",
          "ruamel": "ruamel.yaml round-trip", "js_yaml": "yaml (JS) Document API",
          "help": "wizard --help"}


# --------------------------------------------------------------------------------- processes

def child_env() -> dict:
    env = dict(os.environ)
    # measure this checkout's wizard even when another copy is installed
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def run_child(argv: list[str], cwd: Path, env: dict) -> dict:
    """Run one cold process; wall time, CPU time and peak RSS of that child alone (wait4)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return {"wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "rss_kb": ru.ru_maxrss,
                "rc": p.returncode, "stdout": out.read().decode("utf-8", "replace"),
                "stderr": err.read().decode("utf-8", "replace")}


class ToolFailed(RuntimeError):
    pass


class Tool:
    """One measured command: `argv(dir)` run in a fresh dir made by `prepare()`."""

    def __init__(self, key: str, prepare, argv, env: dict):
        self.key, self.prepare, self.argv, self.env = key, prepare, argv, env
        self.walls: list[float] = []
        self.cpus: list[float] = []
        self.rss: list[int] = []
        self.kept_dir: Path | None = None
        self.kept_run: dict | None = None

    def run(self, measured: bool) -> None:
        d = self.prepare()
        r = run_child(self.argv(d), d, self.env)
        if r["rc"] != 0:
            raise ToolFailed(f"{LABELS[self.key]} exited {r['rc']} in {d}:\n"
                             f"{r['stderr'][-2000:]}{r['stdout'][-1000:]}")
        if self.kept_dir is None:
            self.kept_dir, self.kept_run = d, r
        elif d != self.kept_dir:
            shutil.rmtree(d, ignore_errors=True)
        if measured:
            self.walls.append(r["wall"])
            self.cpus.append(r["cpu"])
            self.rss.append(r["rss_kb"])

    def stats(self, warmup: int) -> dict:
        return {"time_s": round(statistics.median(self.walls), 4),
                "times_s": [round(w, 4) for w in self.walls],
                "cpu_s": round(statistics.median(self.cpus), 4),
                "peak_rss_mb": round(max(self.rss) / 1024, 1), "runs": len(self.walls), "warmup": warmup}


def measure_all(tools: list[Tool], reps: int, warmup: int, between=None) -> None:
    """The first run of each tool in order (its result is kept; with no warm-up it is also the
    first measured run), `between(tool)` after it; then the remaining runs round-robin, so that a
    change in machine load weighs on every tool alike."""
    for t in tools:
        t.run(measured=warmup == 0)
        if between:
            between(t)
    for _ in range(reps - (1 if warmup == 0 else 0)):
        for t in tools:
            t.run(measured=True)


# --------------------------------------------------------------------------------- node

def node_setup() -> tuple[str | None, str | None]:
    """(node executable, None) when the JS baseline can run, else (None, the reason)."""
    node = shutil.which("node")
    if not node:
        return None, "node is not on PATH"
    if not (BENCH / "node_modules" / "yaml" / "package.json").exists():
        npm = shutil.which("npm")
        if not npm:
            return None, "the yaml package is not installed in bench/node_modules and npm is not on PATH"
        cmd = [npm, "ci" if (BENCH / "package-lock.json").exists() else "install",
               "--no-audit", "--no-fund", "--loglevel=error"]
        r = subprocess.run(cmd, cwd=BENCH, capture_output=True, text=True)
        if r.returncode != 0:
            return None, f"npm could not install the yaml package: {r.stderr.strip()[-300:]}"
    r = subprocess.run([node, "--version"], capture_output=True, text=True)
    major = int(r.stdout.strip().lstrip("v").split(".")[0] or 0) if r.returncode == 0 else 0
    if major < 14:
        return None, f"node {r.stdout.strip()} is too old (the yaml package needs 14+)"
    return node, None


# --------------------------------------------------------------------------------- one tree

def bench_tree(name: str, src: Path, work: Path, reps: int, warmup: int, env: dict,
               node: str | None, node_reason: str | None) -> dict:
    base = work / name
    base.mkdir()
    counter = iter(range(10**6))
    secrets = base / "kept.secrets.yaml"
    plan_path = base / "plan.json"

    def fresh(with_secrets: bool = False):
        def prepare():
            d = base / f"run{next(counter)}"
            d.mkdir()
            shutil.copy2(ANSWERS, d / "answers.yaml")
            shutil.copytree(src, d / "deployment")
            if with_secrets:
                shutil.copy2(secrets, d / "answers.secrets.yaml")  # keeps mode 0600
            return d
        return prepare

    def wizard(d):
        return [sys.executable, "-m", "wizard", "--answers", "answers.yaml", "--deployment", "deployment",
                "--yes", "--json"]

    runners = [
        Tool("wizard_first", fresh(), wizard, env),
        Tool("wizard_reapply", fresh(True), wizard, env),
        Tool("ruamel", fresh(), lambda d: [sys.executable, str(BENCH / "baseline_ruamel.py"),
                                           str(plan_path), "deployment"], env),
    ]
    if node:
        runners.append(Tool("js_yaml", fresh(), lambda d: [node, str(BENCH / "baseline_yaml.mjs"),
                                                          str(plan_path), "deployment"], env))
    plan: dict = {}

    def between(t: Tool):
        if t.key == "wizard_first":  # its secrets file is the one the re-apply keeps
            shutil.copy2(t.kept_dir / "answers.secrets.yaml", secrets)
        elif t.key == "wizard_reapply":  # its result is the reference the baselines replay
            plan.update(changes.tree_plan(src, t.kept_dir / "deployment"))
            plan_path.write_text(json.dumps(plan), encoding="utf-8")

    measure_all(runners, reps, warmup, between)
    by = {t.key: t for t in runners}
    tools: dict = {t.key: t.stats(warmup) for t in runners}
    if not node:
        tools["js_yaml"] = {"skipped": node_reason}
    res: dict = {"files": sum(1 for p in src.rglob("*") if p.is_file()),
                 "bytes": largetree.tree_bytes(src), "documents": count_documents(src), "tools": tools}
    first_dir, re_dir = by["wizard_first"].kept_dir, by["wizard_reapply"].kept_dir
    first_json = json.loads(by["wizard_first"].kept_run["stdout"])
    re_json = json.loads(by["wizard_reapply"].kept_run["stdout"])
    ref = re_dir / "deployment"
    res["wizard_edits"] = len(re_json.get("edits", []))
    res["wizard_files_changed"] = len(re_json.get("changed_files", []))
    res["reapply_same_bytes_as_first_apply"] = trees_equal(first_dir / "deployment", ref)
    res["plan_files"] = len(plan)
    outputs = {t.key: t.kept_dir / "deployment" for t in runners}
    edit_lists = {"wizard_first": first_json.get("edits", []), "wizard_reapply": re_json.get("edits", [])}

    # fidelity: the wizard's own results against their own value changes, checked for intent;
    # the baselines against the wizard's values, data compared with the wizard's result
    for tool, out in outputs.items():
        if tool.startswith("wizard"):
            own_plan = changes.tree_plan(src, out)
            fid = fidelity.tree_fidelity(src, out, own_plan, None)
            odd = fidelity.intent_check(src, own_plan)
            fid["data_changed_files"] = sorted({o.split(" ", 1)[0] for o in odd})
            fid["unintended_values"] = odd[:10]
            off = fidelity.hunks_off_edit_list(src, out, edit_lists[tool])
            fid["changes_off_edit_list"] = len(off)
            fid["changes_off_edit_list_examples"] = off[:10]
        else:
            fid = fidelity.tree_fidelity(src, out, plan, ref)
        tools[tool]["fidelity"] = fid
    res["edits_in_first_apply"] = len(first_json.get("edits", []))

    res["ratios"] = {}
    for w in ("wizard_first", "wizard_reapply"):
        for b in ("ruamel", "js_yaml"):
            if "time_s" in tools[b]:
                res["ratios"][f"{w}/{b}"] = round(tools[w]["time_s"] / tools[b]["time_s"], 3)
                res["ratios"][f"{w}/{b} (cpu)"] = round(tools[w]["cpu_s"] / tools[b]["cpu_s"], 3)
    return res


def count_documents(root: Path) -> int:
    n = 0
    for p in root.rglob("*.yaml"):
        n += len([d for d in changes.parse(p.read_text(encoding="utf-8"), "yaml") if d is not None])
    return n


def trees_equal(a: Path, b: Path) -> bool:
    fa = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    fb = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    return fa == fb and all((a / f).read_bytes() == (b / f).read_bytes() for f in fa)


# --------------------------------------------------------------------------------- report

def machine() -> dict:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    versions = {"python": platform.python_version()}
    for mod, dist in (("ruamel.yaml", "ruamel.yaml"), ("PyYAML", "PyYAML")):
        try:
            from importlib.metadata import version
            versions[mod] = version(dist)
        except Exception:  # noqa: BLE001
            pass
    node = shutil.which("node")
    if node:
        versions["node"] = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    pkg = BENCH / "node_modules" / "yaml" / "package.json"
    if pkg.exists():
        versions["yaml (JS)"] = json.loads(pkg.read_text())["version"]
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": cpu, "cpus": cpus, "memory_gb": mem, "os": platform.platform(),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()], "versions": versions}


def rows(result: dict) -> list[list[str]]:
    out = []
    for tree, r in result["trees"].items():
        for tool in TOOLS:
            t = r["tools"][tool]
            if "skipped" in t:
                out.append([tree, LABELS[tool], "skipped: " + t["skipped"]] + [""] * 6)
                continue
            f = t["fidelity"]
            out.append([tree, LABELS[tool], f"{t['time_s']:.3f}", f"{t['cpu_s']:.3f}", f"{t['peak_rss_mb']:.0f}",
                        str(f["changed_lines"]), str(f["unexplained_changed_lines"]),
                        str(f["comment_lines_lost"]), str(len(f["data_changed_files"]))])
    h = result["help"]
    out.append(["-", LABELS["help"], f"{h['time_s']:.3f}", f"{h['cpu_s']:.3f}", f"{h['peak_rss_mb']:.0f}",
                "", "", "", ""])
    return out


HEADER = ["tree", "tool", "wall s (median)", "cpu s", "peak MB", "changed lines",
          "unexplained", "comment lines lost", "files w/ other data changed"]


def text_table(result: dict) -> str:
    data = [HEADER] + rows(result)
    widths = [max(len(r[i]) for r in data if len(r) > i) for i in range(len(HEADER))]
    lines = []
    for k, r in enumerate(data):
        if len(r) == 3 or (len(r) > 2 and r[2].startswith("skipped")):
            lines.append(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]}")
        else:
            lines.append("  ".join(c.rjust(w) if i >= 2 else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))))
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def summary_lines(result: dict) -> list[str]:
    s = []
    for tree, r in result["trees"].items():
        ratios = ", ".join(f"{k} {v:.2f}x" for k, v in r["ratios"].items() if "(cpu)" not in k)
        cpu = ", ".join(f"{k.replace(' (cpu)', '')} {v:.2f}x" for k, v in r["ratios"].items() if "(cpu)" in k)
        s.append(f"{tree}: {r['files']} files, {r['documents']} documents, {r['bytes'] / 1e6:.2f} MB; "
                 f"wizard/baseline wall-time ratios: {ratios}; cpu-time ratios: {cpu}")
    lin = result.get("linearity")
    if lin:
        parts = ", ".join(f"{LABELS[k]} {v:.2f}x" for k, v in lin["time_ratio"].items())
        s.append(f"linearity (large / bundled, size {lin['size_ratio']:.1f}x bytes, "
                 f"{lin['documents_ratio']:.1f}x documents): {parts}; "
                 f"wizard within 10x: {'yes' if lin['wizard_within_10x'] else 'NO'}")
    return s


def markdown(result: dict) -> str:
    m = result["machine"]
    data = rows(result)
    md = ["| " + " | ".join(HEADER) + " |", "|" + "|".join(["---"] * 2 + ["--:"] * 7) + "|"]
    for r in data:
        r = r + [""] * (len(HEADER) - len(r))
        md.append("| " + " | ".join(r) + " |")
    desc = (f"{m['cpu']}, {m['cpus']} CPUs, {m['memory_gb']} GB RAM, {m['os']}; "
            + ", ".join(f"{k} {v}" for k, v in m["versions"].items())
            + f"; load average at start {m['load_average_at_start']}")
    cfg = result["config"]
    warm = f", after {cfg['warmup']} warm-up run" if cfg["warmup"] else ", no warm-up"
    head = (f"Run {result['date']} with `{result['command']}` (median of {cfg['reps']} cold-process runs"
            f"{warm}; large tree = {cfg['factor']}x the objects). Machine: {desc}.")
    return "\n".join([head, ""] + md + [""] + [f"- {x}" for x in summary_lines(result)] + [""] + LEGEND) + "\n"


LEGEND = [
    "*changed lines*: lines of the original that differ in the result (line diff); *unexplained*: those that "
    "hold no value that was meant to change (reformatting, lost blank lines, moved comments); *comment lines "
    "lost*: full-line comments of the original (manifests and embedded files) missing from the result; "
    "*files w/ other data changed*: files whose data, read as Kubernetes reads YAML (1.1), differs in a "
    "value that was not meant to change (for the wizard: a changed value that held no placeholder, "
    "`example.com` or default). The baselines replay the wizard's values (no secret generation) and write "
    "without fsync; the wizard writes each file atomically (temp file, fsync, rename).",
]


# --------------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="1 run per tool, no warm-up, large tree 3x (a smoke run, not a measurement)")
    ap.add_argument("--out", type=Path, help="JSON result (default bench/results/latest.json, "
                                            "bench/results/quick.json with --quick)")
    ap.add_argument("--factor", type=int, help="objects per manifest in the large tree (default 10)")
    ap.add_argument("--reps", type=int, help="measured runs per tool (default 5)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (printed)")
    args = ap.parse_args(argv)
    reps = args.reps or (1 if args.quick else 5)
    warmup = 0 if args.quick else 1
    factor = args.factor or (3 if args.quick else 10)
    out = args.out or BENCH / "results" / ("quick.json" if args.quick else "latest.json")

    started = time.perf_counter()
    env = child_env()
    node, node_reason = node_setup()
    if node_reason:
        print(f"yaml (JS) baseline skipped: {node_reason}", file=sys.stderr)
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"note: load average {load:.2f} before the bench: other work shares the CPUs, wall times "
              "will be noisy (the cpu s column is steadier)", file=sys.stderr)
    work = Path(tempfile.mkdtemp(prefix="wizard-bench-"))
    result: dict = {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                    "command": "python bench/run.py" + (" --quick" if args.quick else ""),
                    "machine": machine(),
                    "config": {"quick": args.quick, "reps": reps, "warmup": warmup, "factor": factor},
                    "trees": {}}
    try:
        large_src = work / "large-src"
        result["large_tree"] = largetree.build(TEMPLATES, large_src, factor)
        for name, src in (("bundled", TEMPLATES), ("large", large_src)):
            print(f"benchmarking the {name} tree ...", file=sys.stderr)
            result["trees"][name] = bench_tree(name, src, work, reps, warmup, env, node, node_reason)

        hdir = work / "help"
        hdir.mkdir()
        helper = Tool("help", lambda: hdir, lambda d: [sys.executable, "-m", "wizard", "--help"], env)
        measure_all([helper], reps, warmup)
        result["help"] = helper.stats(warmup)
    except ToolFailed as e:
        print(f"bench failed: {e}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"work folder kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)

    a, b = result["trees"]["bundled"], result["trees"]["large"]
    result["linearity"] = {
        "size_ratio": round(b["bytes"] / a["bytes"], 2),
        "documents_ratio": round(b["documents"] / a["documents"], 2),
        "time_ratio": {t: round(b["tools"][t]["time_s"] / a["tools"][t]["time_s"], 2)
                       for t in TOOLS if "time_s" in a["tools"][t]},
    }
    result["linearity"]["wizard_within_10x"] = all(
        result["linearity"]["time_ratio"][t] <= 10 for t in ("wizard_first", "wizard_reapply"))
    result["checks"] = {
        "wizard_zero_unexplained_lines": all(
            r["tools"][t]["fidelity"]["unexplained_changed_lines"] == 0
            for r in result["trees"].values() for t in ("wizard_first", "wizard_reapply")),
        "wizard_zero_comments_lost": all(
            r["tools"][t]["fidelity"]["comment_lines_lost"] == 0
            for r in result["trees"].values() for t in ("wizard_first", "wizard_reapply")),
        "wizard_changes_all_on_its_edit_list": all(
            r["tools"][t]["fidelity"]["changes_off_edit_list"] == 0
            for r in result["trees"].values() for t in ("wizard_first", "wizard_reapply")),
        "wizard_no_unintended_data_change": all(
            not r["tools"][t]["fidelity"]["data_changed_files"]
            for r in result["trees"].values() for t in ("wizard_first", "wizard_reapply")),
        "first_apply_le_1s_bundled": a["tools"]["wizard_first"]["time_s"] <= 1.0,
        "reapply_faster_than_ruamel_bundled": a["tools"]["wizard_reapply"]["time_s"] < a["tools"]["ruamel"]["time_s"],
        "help_le_0_3s": result["help"]["time_s"] <= 0.3,
        "linear_within_10x": result["linearity"]["wizard_within_10x"],
    }
    result["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["bench_seconds"] = round(time.perf_counter() - started, 1)

    print(text_table(result))
    print()
    for line in summary_lines(result):
        print(line)
    print("checks: " + ", ".join(f"{k}={'ok' if v else 'FAIL'}" for k, v in result["checks"].items()))
    print(f"bench took {result['bench_seconds']} s; machine load average {result['machine']['load_average_at_start']}"
          f" at start, {result['machine']['load_average_at_end']} at end")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    out.with_suffix(".md").write_text(markdown(result), encoding="utf-8")
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
