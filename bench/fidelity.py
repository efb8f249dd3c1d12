"""Fidelity of an edited tree against the original: what changed that no edited value explains.

- unexplained changed lines: a line-level diff of each file; a removed original line is explained
  when it holds the text of a value that changed (an old fragment), an added line when it holds a
  new value (changes.fragments). The count per changed run of lines is the larger of its
  unexplained removed and unexplained added lines.
- comment lines lost: full-line comments (in YAML and in the embedded files alike) of the original
  that the result has fewer copies of; trailing comments are counted apart.
- data changed: files whose data, read with PyYAML (YAML 1.1, as Kubernetes reads it) and with the
  embedded YAML/JSON files parsed, differs from the reference result — a value other than the
  intended ones changed (`0600` written as `600`, a dropped key, a broken embedded file).
"""
from __future__ import annotations

import difflib
import re
from collections import Counter
from pathlib import Path

from changes import fragments, load_data, typed

_TRAILING = re.compile(r"""^(?:[^#'"]|'[^']*'|"(?:[^"\\]|\\.)*")*?\s(#.*)$""")


def _comment_lines(lines: list[str]) -> Counter:
    return Counter(s.strip() for s in lines if s.lstrip().startswith("#"))


def _trailing_comments(lines: list[str]) -> Counter:
    c: Counter = Counter()
    for s in lines:
        if s.lstrip().startswith("#"):
            continue
        m = _TRAILING.match(s)
        if m:
            c[m.group(1).strip()] += 1
    return c


def _explained(line: str, frags: set[str]) -> bool:
    s = line.strip()
    return any(f in s for f in frags)


def file_fidelity(orig: str, out: str, old_f: set[str], new_f: set[str]) -> dict:
    a, b = orig.splitlines(), out.splitlines()
    unexplained = changed = 0
    examples: list[str] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        changed += max(i2 - i1, j2 - j1)
        bad_rem = [(i, a[i]) for i in range(i1, i2) if not _explained(a[i], old_f)]
        bad_add = [(j, b[j]) for j in range(j1, j2) if not _explained(b[j], new_f)]
        unexplained += max(len(bad_rem), len(bad_add))
        examples += [f"-{i + 1}: {x.strip()[:70]!r}" for i, x in bad_rem[:2]]
        examples += [f"+{j + 1}: {y.strip()[:70]!r}" for j, y in bad_add[:2]]
    lost = _comment_lines(a) - _comment_lines(b)
    lost_trailing = _trailing_comments(a) - _trailing_comments(b)
    return {"changed_lines": changed, "unexplained": unexplained, "examples": examples,
            "comments_lost": sum(lost.values()), "trailing_comments_lost": sum(lost_trailing.values())}


def tree_fidelity(orig_root: Path, out_root: Path, plan: dict, ref_root: Path | None) -> dict:
    """Fidelity of `out_root` against `orig_root`; `plan` is the intended change set (from
    changes.tree_plan); data is compared with `ref_root` when given."""
    total = {"files_changed": 0, "changed_lines": 0, "unexplained_changed_lines": 0,
             "comment_lines_lost": 0, "trailing_comments_lost": 0, "data_changed_files": [],
             "examples": {}}
    for p in sorted(orig_root.rglob("*")):
        if not p.is_file():
            continue
        rel = p.relative_to(orig_root).as_posix()
        q = out_root / rel
        orig = p.read_bytes().decode("utf-8-sig")
        out = q.read_bytes().decode("utf-8-sig") if q.exists() else ""
        if ref_root is not None and typed_data(ref_root / rel) != typed_data(q):
            total["data_changed_files"].append(rel)
        if orig == out:
            continue
        total["files_changed"] += 1
        old_f, new_f = fragments(plan[rel], orig) if rel in plan else (set(), set())
        f = file_fidelity(orig, out, old_f, new_f)
        total["changed_lines"] += f["changed_lines"]
        total["unexplained_changed_lines"] += f["unexplained"]
        total["comment_lines_lost"] += f["comments_lost"]
        total["trailing_comments_lost"] += f["trailing_comments_lost"]
        if f["examples"]:
            total["examples"][rel] = f["examples"][:4]
    return total


def hunks_off_edit_list(orig_root: Path, out_root: Path, edits: list[dict]) -> list[str]:
    """Changed runs of lines in the wizard's result that no entry of its `--json` edit list points
    at (an edit's line is the first line of its value, or the key line of a block value)."""
    lines: dict[str, set[int]] = {}
    for e in edits:
        lines.setdefault(e["file"], set()).add(e["line"])
    off = []
    for p in sorted(out_root.rglob("*")):
        if not p.is_file():
            continue
        rel = p.relative_to(out_root).as_posix()
        o = orig_root / rel
        a = o.read_bytes().decode("utf-8-sig").splitlines() if o.exists() else []
        b = p.read_bytes().decode("utf-8-sig").splitlines()
        if a == b:
            continue
        at = lines.get(rel, set())
        for tag, i1, i2, _j1, _j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
            if tag != "equal" and not any(i1 <= n <= max(i2, i1 + 1) for n in at):
                off.append(f"{rel}:{i1 + 1}")
    return off


def typed_data(path: Path):
    return typed(load_data(path)) if path.exists() else None


def intent_check(orig_root: Path, plan: dict) -> list[str]:
    """Changes in `plan` whose old value held no placeholder token, `example.com`, or known
    default: for the wizard's own result, a data change that the catalog does not explain."""
    from changes import parse, _get

    token = re.compile(r"CHANGE_?ME|CHANGE_TO_|example\.com")
    defaults = {"", "standard", "local-path", "admin"}
    odd = []

    def walk(rel, data, changes, prefix):
        for ch in changes:
            if ch["op"] == "embed":
                walk(rel, parse(_get(data, ch["path"]), ch["format"]), ch["changes"], prefix + ch["path"])
                continue
            if ch["op"] == "rename":
                old = ch["from"]
            elif ch["op"] == "text":
                continue
            else:
                try:
                    old = _get(data, ch["path"])
                except (KeyError, IndexError, TypeError):
                    continue  # an added key: the catalog's (b)/(c) kinds of change
            if isinstance(old, str) and (token.search(old) or old in defaults):
                continue
            odd.append(f"{rel} {prefix + ch['path']}: {str(old)[:40]!r}")

    for rel, fp in plan.items():
        if fp["format"] != "text":
            text = (orig_root / rel).read_bytes().decode("utf-8-sig")
            walk(rel, parse(text, fp["format"]), fp["changes"], [])
    return odd


