"""Baseline (2): the wizard's value changes made by a ruamel.yaml round-trip, tuned for preservation.

usage: python bench/baseline_ruamel.py PLAN.json TREE      (edits TREE in place)

Tuning, as a careful operator's script would do it: round-trip mode, preserve_quotes, width 4096
(no re-folding), the mapping indent, sequence dash offset and dash-to-content gap guessed per file,
`---` before the first document when the file had one, the comment header above the first `---`
(which ruamel drops) set aside and put back, and a new value keeps the style of the scalar it
replaces (literal block, quoted). Embedded YAML is a nested round-trip tuned the same way; embedded and plain
JSON go through json.loads/json.dumps with the file's indent. Files that are neither YAML nor JSON
(haproxy.cfg) get the new text as a whole, which a script would produce with str.replace.
"""
from __future__ import annotations

import json
import sys
from io import StringIO
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from edit_common import guess_yaml_indent, roundtrip_json, walk  # noqa: E402
from ruamel.yaml import YAML  # noqa: E402
from ruamel.yaml.scalarstring import (  # noqa: E402
    DoubleQuotedScalarString,
    FoldedScalarString,
    LiteralScalarString,
    SingleQuotedScalarString,
)

_STYLES = (LiteralScalarString, FoldedScalarString, SingleQuotedScalarString, DoubleQuotedScalarString)


def make_yaml(text: str) -> YAML:
    y = YAML()  # round-trip
    y.preserve_quotes = True
    y.width = 4096
    mapping, offset, gap = guess_yaml_indent(text)
    y.indent(mapping=mapping, sequence=offset + gap, offset=offset)
    for line in text.splitlines():
        s = line.strip()
        if s and not s.startswith("#"):
            y.explicit_start = s.startswith("---")
            break
    return y


def styled(old, new):
    if isinstance(new, str):
        for cls in _STYLES:
            if isinstance(old, cls):
                return cls(new)
    return new


def apply_ruamel(root, changes) -> None:
    for ch in changes:
        op = ch["op"]
        if op == "rename":
            m = walk(root, ch["path"])
            pos = list(m.keys()).index(ch["from"])
            value = m.pop(ch["from"])
            m.insert(pos, ch["to"], value)
            if ch["from"] in m.ca.items:
                m.ca.items[ch["to"]] = m.ca.items.pop(ch["from"])
            continue
        parent = walk(root, ch["path"][:-1])
        last = ch["path"][-1]
        exists = last < len(parent) if isinstance(parent, list) else last in parent
        if op == "set":
            if not exists and isinstance(parent, list):
                parent.append(ch["value"])
            else:
                parent[last] = styled(parent[last], ch["value"]) if exists else ch["value"]
        elif op == "del":
            del parent[last]
        elif op == "embed":
            old = parent[last]
            if ch["format"] == "yaml":
                new = roundtrip_yaml(str(old), ch["changes"])
            else:
                new = roundtrip_json(str(old), ch["changes"])
            parent[last] = styled(old, new)


def split_header(text: str) -> tuple[str, str]:
    """(the comment/blank lines above a first `---`, the rest): ruamel drops that header, so the
    script keeps it aside and puts it back."""
    pos = 0
    for line in text.splitlines(keepends=True):
        s = line.strip()
        if s.startswith("---"):
            return text[:pos], text[pos:]
        if s and not s.startswith("#"):
            break
        pos += len(line)
    return "", text


def roundtrip_yaml(text: str, changes) -> str:
    header, body = split_header(text)
    y = make_yaml(body)
    docs = list(y.load_all(body))
    apply_ruamel(docs, changes)
    buf = StringIO()
    y.dump_all(docs, buf)
    return header + buf.getvalue()


def main(argv: list[str]) -> int:
    plan = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    tree = Path(argv[2])
    for rel, fp in plan.items():
        path = tree / rel
        if fp["format"] == "text":
            new = fp["changes"][0]["value"]
        else:
            text = path.read_bytes().decode("utf-8")
            if fp["format"] == "yaml":
                new = roundtrip_yaml(text, fp["changes"])
            else:
                new = roundtrip_json(text, fp["changes"])
        path.write_bytes(new.encode("utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
