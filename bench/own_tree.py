"""Figures for the operator's own tree: the wizard on the structural-drift trees of tests/treedrift.py.

    python bench/own_tree.py [--seeds 1-22] [--out bench/results/own_tree.md]

For each seeded tree (renamed, moved, split and merged objects, components removed and added, new tokens,
the LI pod mounting main's key, broken files, a planted ambiguity) it applies the answers the generator
wrote (its `placeholders:`) to it, plans the run in this process (nothing is written) and counts:

- catalog: catalog locations found at the catalog's own file and object (rank 1);
- discovered: catalog locations found elsewhere (a similar name, the only object with the key, the mounted
  signing key, the Secret a pod loads): exactly the run's "found elsewhere" list;
- tokens: token occurrences written by their token (outside any catalog location);
- left: leftovers of the run (exit 1 while there are any), and the generator's expected count;
- notes: notes of the run.
"""
from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import treedrift  # noqa: E402  (tests/: the generator the acceptance test uses)
from helpers import FULL_ANSWERS  # noqa: E402

from wizard import generate  # noqa: E402
from wizard.answers import answers_from_dict  # noqa: E402
from wizard.locate.resolve import Tree  # noqa: E402
from wizard.store import load_store  # noqa: E402
from wizard.plan import Planner  # noqa: E402


def _seeds(text: str) -> list[int]:
    out = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


HOW = (  # how a discovered location was found, from find.py's words
    ("mounted key", re.compile(r"mounted for signing_key_path")),
    ("pod's Secret", re.compile(r"loaded by the pod")),
    ("locations:", re.compile(r"as `locations:` says")),
    ("only object with the key", re.compile(r"\(the only \S+ with ")),
    ("only file with the key", re.compile(r"\(the only file with ")),
    ("renamed", re.compile(r"^\S+/(\S+) in \S+ for \S+/(?!\1\b)")),
    ("moved", re.compile(r"")),  # same name, other file (object or file)
)


def _how(text: str) -> str:
    return next(name for name, rx in HOW if rx.search(text))


def figures(seed: int, work: Path) -> dict:
    site = work / f"seed-{seed}"
    report = treedrift.make_drift_tree(ROOT / "templates" / "deployment", site / "deployment", seed)
    data = dict(FULL_ANSWERS)
    if report["placeholders"]:
        data["placeholders"] = report["placeholders"]
    answers = answers_from_dict(data, path=site / "prod.yaml", base_dir=site, env=dict(report["env"]))
    gen = generate.Generators()
    try:  # the planner's own survey: the locations of what this run configures
        planner = Planner(Tree(site / "deployment"), answers, load_store(None), gen=gen, now_ms=0,
                          denylist=generate.load_denylist())
        plan = planner.run()
    finally:
        gen.close()
    survey = planner.survey
    assert len(plan.found) == sum(1 for places in survey.places.values() for p in places if p.how)
    catalog = discovered = 0
    hows: Counter = Counter()
    for places in survey.places.values():
        for p in places:
            if p.how:
                discovered += 1
                hows[_how(p.how)] += 1
            else:
                catalog += 1
    tokens = sum(len(hits) for hits in survey.token_places.values())
    kinds = Counter(p.kind for p in plan.leftovers)
    note_kinds = Counter(p.kind for p in plan.notes)
    return {"seed": seed, "catalog": catalog, "discovered": discovered, "found_listed": len(plan.found),
            "tokens": tokens, "left": len(plan.leftovers), "expected_left": len(report["expected_leftovers"]),
            "left_kinds": dict(sorted(kinds.items())), "notes": len(plan.notes),
            "hows": dict(hows.most_common()), "note_kinds": dict(note_kinds.most_common())}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default=f"{treedrift.E2E_SEEDS[0]}-{treedrift.E2E_SEEDS[-1]}")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "own_tree.md")
    ns = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="own-tree-figures-"))
    rows = []
    try:
        for seed in _seeds(ns.seeds):
            rows.append(figures(seed, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lines = ["| seed | catalog place | discovered (how) | tokens anchored | left over (expected) | kinds left | notes |",
             "|---|---|---|---|---|---|---|"]

    def counts(d: dict) -> str:
        return ", ".join(f"{k} {n}" for k, n in d.items()) or "-"

    for r in rows:
        lines.append(f"| {r['seed']} | {r['catalog']} | {r['discovered']} ({counts(r['hows'])}) | {r['tokens']} | "
                     f"{r['left']} ({r['expected_left']}) | {counts(r['left_kinds'])} | {r['notes']} |")
    total = {k: sum(r[k] for r in rows) for k in ("catalog", "discovered", "tokens", "left", "expected_left")}
    lines.append(f"| all {len(rows)} | {total['catalog']} | {total['discovered']} | {total['tokens']} | "
                 f"{total['left']} ({total['expected_left']}) | | |")
    hows, notes = Counter(), Counter()
    for r in rows:
        hows.update(r["hows"])
        notes.update(r["note_kinds"])
    lines += ["", f"Discovered, by how: {counts(dict(hows.most_common()))}.",
              f"Notes, by kind: {counts(dict(notes.most_common()))}."]
    text = "\n".join(lines) + "\n"
    ns.out.parent.mkdir(parents=True, exist_ok=True)
    ns.out.write_text(text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
