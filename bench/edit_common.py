"""Pieces the Python baseline shares: indentation guessing and the plan's ops on plain data."""
from __future__ import annotations

import json
import re
from collections import Counter

_BLOCK_SCALAR = re.compile(r"(?:^|[:\-]\s)[|>][-+0-9]*\s*$")
_OPENS_BLOCK = re.compile(r":\s*$")
_DASH = re.compile(r"-\s+")


def _strip_comment(s: str) -> str:
    """The line without a trailing comment (good enough for guessing indentation)."""
    quote = None
    for i, c in enumerate(s):
        if quote:
            if c == quote:
                quote = None
        elif c in "\"'":
            quote = c
        elif c == "#" and (i == 0 or s[i - 1] in " \t"):
            return s[:i].rstrip()
    return s.rstrip()


def guess_yaml_indent(text: str) -> tuple[int, int, int]:
    """(mapping indent, dash offset of a block sequence under its key, columns from a dash to its
    item's content), the most common ones in `text`."""
    maps: Counter = Counter()
    seqs: Counter = Counter()
    gaps: Counter = Counter()
    parent = None  # column of the key whose block starts on the next content line
    block = None  # column of the line that opened a block scalar: deeper lines are its content
    for raw in text.splitlines():
        body = raw.lstrip(" ")
        col = len(raw) - len(body)
        if block is not None:
            if not body.strip() or col > block:
                continue
            block = None
        if not body.strip() or body.startswith("#") or body.startswith("---"):
            continue
        if parent is not None and col > parent:
            (seqs if body.startswith("- ") or body == "-" else maps)[col - parent] += 1
        elif parent is not None and col == parent and body.startswith("- "):
            seqs[0] += 1
        line = _strip_comment(body)
        parent = None
        key_col = col
        dash = _DASH.match(line)
        if dash and len(dash.group(0)) < len(line):
            key_col = col + len(dash.group(0))
            gaps[len(dash.group(0))] += 1
        if _BLOCK_SCALAR.search(line):
            block = col
        elif _OPENS_BLOCK.search(line):
            parent = key_col
    mapping = maps.most_common(1)[0][0] if maps else 2
    offset = seqs.most_common(1)[0][0] if seqs else 0
    gap = gaps.most_common(1)[0][0] if gaps else 2
    return mapping, offset, gap


def guess_json_indent(text: str) -> int:
    for line in text.splitlines()[1:]:
        body = line.lstrip(" ")
        if body:
            return len(line) - len(body) or 2
    return 2


def walk(root, path):
    for k in path:
        root = root[k]
    return root


def apply_plain(root, changes) -> None:
    """Apply plan ops to plain dicts/lists (parsed JSON)."""
    for ch in changes:
        op = ch["op"]
        if op == "rename":
            d = walk(root, ch["path"])
            items = list(d.items())
            d.clear()
            d.update((ch["to"] if k == ch["from"] else k, v) for k, v in items)
            continue
        parent = walk(root, ch["path"][:-1])
        last = ch["path"][-1]
        if op == "set":
            if isinstance(parent, list) and last == len(parent):
                parent.append(ch["value"])
            else:
                parent[last] = ch["value"]
        elif op == "del":
            del parent[last]
        elif op == "embed":
            if ch["format"] != "json":
                raise ValueError(f"embedded {ch['format']} inside JSON is not supported")
            parent[last] = roundtrip_json(parent[last], ch["changes"])


def roundtrip_json(text: str, changes) -> str:
    """json.loads → edit → json.dumps with the file's indentation; the usual script."""
    data = json.loads(text)
    apply_plain(data, changes)
    out = json.dumps(data, indent=guess_json_indent(text), ensure_ascii=False)
    return out + "\n" if text.endswith("\n") else out
