"""What the wizard changed, as data: the edit plan the baselines replay, and the value fragments
that explain a changed line.

The reference is the wizard's own output. Both trees are read with PyYAML (YAML 1.1, as the
Kubernetes API reads manifests); strings under a key ending in .yaml/.yml/.json are parsed as the
embedded file they are, so a change inside them becomes a change at a key path of that file.

A plan is JSON: {relative file: {"format": "yaml"|"json"|"text", "changes": [op, ...]}} with ops
  {"op": "set", "path": [...], "value": v}      set a value (an existing scalar keeps its style)
  {"op": "del", "path": [...]}                  remove a key or item
  {"op": "rename", "path": [...], "from": k, "to": k2}   rename a mapping key in place
  {"op": "embed", "path": [...], "format": "yaml"|"json", "changes": [...]}   nested round-trip
  {"op": "text", "value": "..."}                whole new text (files that are neither YAML nor JSON)
For YAML streams the first path element is the document index; for JSON, paths start at the root.
"""
from __future__ import annotations

import difflib
import json
from pathlib import Path

import yaml

try:  # the C loader when PyYAML has it: the bench measures the tools, not its own reading
    _Loader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _Loader = yaml.SafeLoader


def file_format(path: Path | str) -> str:
    suffix = Path(path).suffix
    if suffix in (".yaml", ".yml"):
        return "yaml"
    if suffix == ".json":
        return "json"
    return "text"


def embed_format(key, value) -> str | None:
    if not isinstance(key, str) or not isinstance(value, str):
        return None
    if key.endswith((".yaml", ".yml")):
        return "yaml"
    if key.endswith(".json"):
        return "json"
    return None


def parse(text: str, fmt: str):
    """Data of `text`: a list of documents for YAML, the value for JSON, the text otherwise."""
    if fmt == "yaml":
        return list(yaml.load_all(text, Loader=_Loader))
    if fmt == "json":
        return json.loads(text)
    return text


class Embedded:
    """An embedded file, parsed; equal when the data is."""

    def __init__(self, fmt: str, data):
        self.fmt, self.data = fmt, data

    def __eq__(self, other):
        return isinstance(other, Embedded) and (self.fmt, self.data) == (other.fmt, other.data)

    def __repr__(self):
        return f"Embedded({self.fmt}, {self.data!r})"


def expand(value, key=None):
    """`value` with every embedded YAML/JSON string replaced by its parsed data (for comparing)."""
    fmt = embed_format(key, value)
    if fmt:
        try:
            return Embedded(fmt, expand(parse(value, fmt)))
        except (yaml.YAMLError, ValueError):
            return value
    if isinstance(value, dict):
        return {k: expand(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [expand(v) for v in value]
    return value


def typed(v):
    """Comparable form of a value: 1, 1.0 and True are different values here."""
    if isinstance(v, dict):
        return ("map", tuple((typed(k), typed(x)) for k, x in v.items()))
    if isinstance(v, list):
        return ("seq", tuple(typed(x) for x in v))
    if isinstance(v, Embedded):
        return ("embedded", v.fmt, typed(v.data))
    return (type(v).__name__, v)


def load_data(path: Path):
    """Expanded data of one file (YAML/JSON parsed, embedded files parsed), or the text."""
    text = path.read_bytes().decode("utf-8-sig")
    fmt = file_format(path)
    try:
        return expand(parse(text, fmt))
    except (yaml.YAMLError, ValueError) as e:
        return ("unparsable", str(e).splitlines()[0])


# ---------------------------------------------------------------------------------------------
# diff → plan


def _jsonable(v):
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    return str(v)  # dates and the like: none is expected on a changed path


def diff(old, new, path: list, out: list) -> None:
    """Append to `out` the ops that turn data `old` into `new` (raw PyYAML/JSON data)."""
    if isinstance(old, dict) and isinstance(new, dict):
        gone = [k for k in old if k not in new]
        added = [k for k in new if k not in old]
        if gone and len(gone) == len(added):  # a renamed key (a host as a JSON object key)
            for k1, k2 in zip(gone, added):
                out.append({"op": "rename", "path": list(path), "from": k1, "to": k2})
                diff(old[k1], new[k2], path + [k2], out)
        else:
            for k in gone:
                out.append({"op": "del", "path": path + [k]})
            for k in added:
                out.append({"op": "set", "path": path + [k], "value": _jsonable(new[k])})
        for k in old:
            if k not in new:
                continue
            fmt = embed_format(k, old[k])
            if fmt and isinstance(new[k], str) and old[k] != new[k]:
                try:
                    sub: list = []
                    diff(parse(old[k], fmt), parse(new[k], fmt), [], sub)
                    out.append({"op": "embed", "path": path + [k], "format": fmt, "changes": sub})
                    continue
                except (yaml.YAMLError, ValueError):
                    pass
            diff(old[k], new[k], path + [k], out)
        return
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new)):
            diff(a, b, path + [i], out)
        return
    if typed(old) != typed(new):
        out.append({"op": "set", "path": list(path), "value": _jsonable(new)})


def file_plan(orig: Path, ref: Path) -> dict | None:
    """The ops that turn file `orig` into file `ref`, or None when their data is the same."""
    a = orig.read_bytes().decode("utf-8-sig")
    b = ref.read_bytes().decode("utf-8-sig")
    if a == b:
        return None
    fmt = file_format(orig)
    if fmt != "text":
        old, new = parse(a, fmt), parse(b, fmt)
        if fmt == "yaml" and len(old) != len(new):
            fmt = "text"  # documents added or removed: not a value edit
        else:
            out: list = []
            diff(old, new, [], out)
            return {"format": fmt, "changes": out} if out else None
    return {"format": "text", "changes": [{"op": "text", "value": b}]}


def tree_plan(orig_root: Path, ref_root: Path) -> dict:
    plan = {}
    for p in sorted(orig_root.rglob("*")):
        if p.is_file():
            rel = p.relative_to(orig_root).as_posix()
            fp = file_plan(p, ref_root / rel)
            if fp:
                plan[rel] = fp
    return plan


# ---------------------------------------------------------------------------------------------
# fragments: the text of changed values, to tell an explained changed line from another


def _changed_lines(a: str, b: str) -> tuple[set[str], set[str]]:
    al, bl = a.splitlines(), b.splitlines()
    old, new = set(), set()
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, al, bl, autojunk=False).get_opcodes():
        if tag != "equal":
            old.update(x.strip() for x in al[i1:i2])
            new.update(x.strip() for x in bl[j1:j2])
    return old, new


def _leaves(v) -> set[str]:
    if isinstance(v, dict):
        s = set()
        for k, x in v.items():
            s |= _leaves(k) | _leaves(x)
        return s
    if isinstance(v, list):
        s = set()
        for x in v:
            s |= _leaves(x)
        return s
    if isinstance(v, str):
        return {x.strip() for x in v.splitlines()}
    if isinstance(v, bool):
        return {str(v).lower()}
    return {str(v)} if v is not None else set()


def _get(root, path):
    for k in path:
        root = root[k]
    return root


def fragments(plan_file: dict, orig_text: str) -> tuple[set[str], set[str]]:
    """(old fragments, new fragments) of one file's plan: text that a line touched by one of
    the changes contains (the stripped changed lines of a multi-line value, a scalar's text)."""
    old_f: set[str] = set()
    new_f: set[str] = set()
    fmt = plan_file["format"]
    if fmt == "text":
        o, n = _changed_lines(orig_text, plan_file["changes"][0]["value"])
        return {x for x in o if x}, {x for x in n if x}
    data = parse(orig_text, fmt)

    def walk(data, changes):
        for ch in changes:
            op = ch["op"]
            if op == "rename":
                old_f.update(_leaves(ch["from"]))
                new_f.update(_leaves(ch["to"]))
                continue
            try:
                old = _get(data, ch["path"])
            except (KeyError, IndexError, TypeError):
                old = None
            if op == "set":
                if isinstance(old, str) and isinstance(ch["value"], str) and "\n" in old + ch["value"]:
                    o, n = _changed_lines(old, ch["value"])
                    old_f.update(o)
                    new_f.update(n)
                else:
                    old_f.update(_leaves(old))
                    new_f.update(_leaves(ch["value"]))
                    key = ch["path"][-1]
                    if isinstance(key, str) and old is None:  # an added key
                        new_f.add(key)
                    elif isinstance(key, str) and old in ("", None):  # `key: ""` has no value text
                        old_f.update((f"{key}:", f'"{key}":'))
                        new_f.update((f"{key}:", f'"{key}":'))
            elif op == "del":
                old_f.update(_leaves(old))
            elif op == "embed":
                walk(parse(old, ch["format"]), ch["changes"])

    walk(data, plan_file["changes"])
    return {x for x in old_f if x}, {x for x in new_f if x}
