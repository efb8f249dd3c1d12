"""Structural edits: set a value, add a mapping entry after its siblings (and after a commented
example of it), remove an entry's lines, append a document. All in view coordinates, turned into
file byte spans that change nothing else."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from wizard.errors import TreeError
from wizard.locate import views as V
from wizard.locate.jsonspan import JNode
from wizard.locate.resolve import yaml_plain_ok


@dataclass
class Edit:
    file: str
    start: int
    end: int
    text: str
    ids: tuple[str, ...] = ()
    what: str = ""


def yaml_scalar(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    value = str(value)
    return value if yaml_plain_ok(value) and ":" not in value else '"' + V.escape_yaml_double(value, "value") + '"'


def render_entry(key: str, value, indent: int, step: int = 2) -> list[str]:
    """Lines (without indentation of the first level applied yet) for `key: value`."""
    pad = " " * indent
    k = yaml_scalar(key)
    if isinstance(value, dict):
        lines = [f"{pad}{k}:"]
        for sub_key, sub_value in value.items():
            lines.extend(render_entry(sub_key, sub_value, indent + step, step))
        return lines
    if isinstance(value, list):
        return [f"{pad}{k}: [" + ", ".join(yaml_scalar(v) for v in value) + "]"]
    if isinstance(value, FlowMap):
        return [f"{pad}{k}: {{" + ", ".join(f"{yaml_scalar(a)}: {yaml_scalar(b)}" for a, b in value.items) + "}"]
    return [f"{pad}{k}: {yaml_scalar(value)}"]


@dataclass
class FlowMap:
    items: list = field(default_factory=list)


def column(text: str, index: int) -> int:
    return index - (text.rfind("\n", 0, index) + 1)


def _line_end(text: str, index: int) -> int:
    nl = text.find("\n", index)
    end = len(text) if nl == -1 else nl
    if end > 0 and text[end - 1] == "\r":
        end -= 1
    return end


def entry_end(text: str, value: JNode) -> int:
    """Index of the end (before the line break) of the last line of a mapping entry's value."""
    pos = value.end
    if pos > 0 and text[pos - 1] == "\n":
        pos -= 1
        if pos > 0 and text[pos - 1] == "\r":
            pos -= 1
        # trailing blank lines inside a block scalar belong to it but we stay on its last content line
        while pos > value.start:
            ls = text.rfind("\n", 0, pos) + 1
            if text[ls:pos].strip():
                break
            pos = ls - 1
            if pos > 0 and text[pos - 1] == "\r":
                pos -= 1
        return pos
    return _line_end(text, pos)


def insert_entry(view: V.View, mapping: JNode, key: str, value, *, after_key: str | None = None,
                 example: str | None = None, ids=(), what="") -> Edit:
    """Add `key: value` to a block mapping: after `after_key` when given, else after the last entry
    and any commented example lines that follow it."""
    text = view.text
    if mapping.kind == "scalar" and not mapping.value:  # `annotations:` with nothing under it
        return _insert_under_empty(view, mapping, key, value, ids, what)
    if mapping.kind == "map" and mapping.style == "{" and not mapping.value \
            and text[mapping.start:mapping.end] == "{}":  # `annotations: {}`
        return _insert_under_empty(view, mapping, key, value, ids, what, replace_flow=True)
    if mapping.kind != "map" or mapping.style == "{":
        raise TreeError(f"cannot add {key!r} to a flow-style mapping; rewrite it in block style",
                        where=view.where(mapping.start))
    if not mapping.value:
        raise TreeError(f"cannot add {key!r} to an empty mapping", where=view.where(mapping.start))
    col = column(text, mapping.value[0][0].start)
    entries = mapping.value
    target = entries[-1]
    if after_key is not None:
        for k, v in entries:
            if k.value == after_key:
                target = (k, v)
                break
    anchor = entry_end(text, target[1])
    # A commented example of this key (`# key: …`, possibly with its commented children below it) stays
    # where it is and the real key goes right after it.
    if example is not None:
        found = _commented_example(text, mapping, col, example)
        if found is not None:
            anchor = found
    lines = render_entry(key, value, col)
    new = "\n" + "\n".join(lines)
    return Edit(view.file.rel, view.to_file(anchor), view.to_file(anchor), view.encode(new, what or key),
                tuple(ids), what or f"add {key}")


def _insert_under_empty(view: V.View, node: JNode, key: str, value, ids, what,
                        replace_flow: bool = False) -> Edit:
    """`parent:` (null) or `parent: {}` → `parent:` followed by the new entry one level deeper."""
    text = view.text
    ls = text.rfind("\n", 0, node.start) + 1
    if not text[ls:node.start].strip():  # the null sits at the start of the next line
        ls = text.rfind("\n", 0, max(ls - 1, 0)) + 1
    line = text[ls:_line_end(text, ls)]
    stripped = line.lstrip(" ")
    col = len(line) - len(stripped)
    while stripped.startswith("- "):
        col += 2
        stripped = stripped[2:].lstrip(" ")
    lines = render_entry(key, value, col + 2)
    if replace_flow:
        start, end = node.start, node.end
        # drop the space before `{}` too, so the parent line reads `parent:`
        while start > ls and text[start - 1] == " ":
            start -= 1
        new = "\n" + "\n".join(lines)
        return Edit(view.file.rel, view.to_file(start), view.to_file(end), view.encode(new, what or key),
                    tuple(ids), what or f"add {key}")
    anchor = _line_end(text, ls)
    new = "\n" + "\n".join(lines)
    return Edit(view.file.rel, view.to_file(anchor), view.to_file(anchor), view.encode(new, what or key),
                tuple(ids), what or f"add {key}")


def _commented_example(text: str, mapping: JNode, col: int, example: str) -> int | None:
    """End of the commented example block for `example` inside the mapping's lines, or None."""
    first_key = mapping.value[0][0].start
    region_start = text.rfind("\n", 0, first_key) + 1
    region_end = entry_end(text, mapping.value[-1][1])
    # comments right after the last entry belong to the mapping too
    probe = region_end
    while True:
        nl = text.find("\n", probe)
        if nl == -1:
            break
        le = _line_end(text, nl + 1)
        if not text[nl + 1:le].lstrip().startswith("#"):
            break
        region_end = probe = le
    pat = re.compile(r"^([ \t]*)#[ \t]?([ \t]*)" + re.escape(example), re.MULTILINE)
    for m in pat.finditer(text, region_start, region_end):
        if len(m.group(1)) < col - 1:
            continue
        inner = len(m.group(2))
        end = _line_end(text, m.start())
        while True:
            nl = text.find("\n", end)
            if nl == -1 or nl + 1 >= region_end:
                break
            le = _line_end(text, nl + 1)
            line = text[nl + 1:le]
            mm = re.match(r"[ \t]*#[ \t]?([ \t]*)\S", line)
            if not mm or len(mm.group(1)) <= inner:
                break
            end = le
        return end
    return None


def insert_nested(view: V.View, mapping: JNode, keys: tuple[str, ...], value, **kw) -> Edit:
    """Add `keys[0]: {keys[1]: … value}` to a mapping."""
    nested = value
    for k in reversed(keys[1:]):
        nested = {k: nested}
    return insert_entry(view, mapping, keys[0], nested, **kw)


def remove_entry_lines(view: V.View, key: JNode, value: JNode, *, ids=(), what="") -> Edit:
    """Remove the whole lines of a mapping entry (key line through the value's last line)."""
    if not isinstance(view, (V.FileView, V.LiteralBlockView)) or (
            isinstance(view, V.LiteralBlockView) and not isinstance(view.parent, V.FileView)):
        raise TreeError("cannot remove lines here", where=view.where(key.start))
    text = view.text
    ls = text.rfind("\n", 0, key.start) + 1
    if text[ls:key.start].strip(" -"):
        raise TreeError("the entry does not start its line", where=view.where(key.start))
    end = entry_end(text, value)
    nl = text.find("\n", end)
    stop = len(text) if nl == -1 else nl + 1
    if isinstance(view, V.FileView):
        start_f, stop_f = ls, stop
    else:
        start_f = view.line_start_in_parent(ls)
        stop_f = view.line_start_in_parent(stop)
    return Edit(view.file.rel, start_f, stop_f, "", tuple(ids), what or f"remove {key.value}")
