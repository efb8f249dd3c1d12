"""The docs' tables that come from the catalog's records, generated, never written by hand:

    python -m wizard.catalog.docs          # rewrite them in docs/
    python -m wizard.catalog.docs --check  # exit 1 when a committed table is stale

A table sits between `<!-- generated: NAME -->` and `<!-- end: NAME -->` in its file; the text around it
is the docs' own."""
from __future__ import annotations

import sys
from pathlib import Path

from wizard.catalog import RECORDS, SECRET


def rotation_table() -> str:
    """One row per rotatable secret: what it protects, what a leak exposes, what restarts, the step by hand."""
    rows = ["| id | protects | blast radius when leaked | restart | manual step | in `--all` |",
            "|---|---|---|---|---|---|"]
    for r in RECORDS:
        if r.kind != SECRET or r.provided or not r.rotation.rotatable:
            continue
        d = r.docs
        also = [o.id for o in RECORDS if o.rotation.via == r.id]
        name = f"`{r.id}`" + (f" (and {', '.join(f'`{a}`' for a in also)})" if also else "")
        in_all = "yes" if r.rotation.in_all else f"with `--{r.rotation.include_flag}`"
        rows.append(f"| {name} | {d.protects} | {d.leaked} | {d.restart} | {d.by_hand} | {in_all} |")
    return "\n".join(rows) + "\n"


TABLES = {("docs/rotation.md", "per-secret"): rotation_table}


def replace_between(text: str, name: str, table: str) -> str:
    start, end = f"<!-- generated: {name} -->\n", f"<!-- end: {name} -->"
    i, j = text.index(start) + len(start), text.index(end)
    return text[:i] + table + text[j:]


def stale(root: Path) -> list[str]:
    """The files whose generated tables differ from what the records give."""
    out = []
    for (rel, name), make in TABLES.items():
        text = (root / rel).read_text(encoding="utf-8")
        if replace_between(text, name, make()) != text:
            out.append(rel)
    return out


def main(argv: list[str]) -> int:
    root = Path(__file__).resolve().parents[2]
    if "--check" in argv:
        bad = stale(root)
        for rel in bad:
            print(f"{rel}: a generated table is stale: python -m wizard.catalog.docs", file=sys.stderr)
        return 1 if bad else 0
    for (rel, name), make in TABLES.items():
        path = root / rel
        path.write_text(replace_between(path.read_text(encoding="utf-8"), name, make()), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
