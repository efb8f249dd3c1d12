"""YAML with positions: PyYAML's composer (libyaml when present) turned into plain span nodes."""
from __future__ import annotations

import yaml

from wizard.errors import TreeError
from wizard.locate.jsonspan import JNode
from wizard.locate.views import View

try:  # libyaml is ~10x faster; both give character indices
    _Loader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _Loader = yaml.SafeLoader


def parse_yaml_stream(view: View) -> list[JNode | None]:
    """Every document of the view's text as span nodes. Duplicate keys are errors."""
    try:
        roots = list(yaml.compose_all(view.text, Loader=_Loader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = view.where(mark.index) if mark is not None else view.file.rel
        raise TreeError(f"not valid YAML: {exc.problem or exc.context}", where=where) from None
    except yaml.YAMLError as exc:
        raise TreeError(f"not valid YAML: {exc}", where=view.file.rel) from None
    out, aliased = [], []
    for root in roots:
        doc, used_alias = _convert(view, root) if root is not None else (None, False)
        out.append(doc)
        if used_alias:
            aliased.append(doc)
    for doc in aliased:
        if _expanded_size(doc) > MAX_EXPANDED_NODES:
            raise TreeError(f"not valid YAML here: its aliases expand to more than {MAX_EXPANDED_NODES} nodes "
                            "(an alias bomb?)", where=view.where(doc.start))
    return out


# Aliases share nodes; anything that walks the data expands them. A bound keeps a tiny hostile file
# (a "billion laughs") from taking minutes: far above any real manifest, far below a hang.
MAX_EXPANDED_NODES = 200_000


def _expanded_size(root: JNode) -> int:
    sizes: dict[int, int] = {}

    def size(n: JNode) -> int:
        got = sizes.get(id(n))
        if got is not None:
            return got
        sizes[id(n)] = 1  # a recursive alias (a node inside itself) counts once
        if n.kind == "map":
            total = 1 + sum(size(k) + size(v) for k, v in n.value)
        elif n.kind == "seq":
            total = 1 + sum(size(x) for x in n.value)
        else:
            total = 1
        total = min(total, MAX_EXPANDED_NODES + 1)
        sizes[id(n)] = total
        return total

    import sys

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10000))
    try:
        return size(root)
    finally:
        sys.setrecursionlimit(limit)


def parse_yaml_single(view: View) -> JNode | None:
    docs = parse_yaml_stream(view)
    docs = [d for d in docs if d is not None]
    if len(docs) > 1:
        raise TreeError("expected one YAML document, found several", where=view.where(0))
    return docs[0] if docs else None


def _convert(view: View, node) -> tuple[JNode, bool]:
    """The span nodes of a composed document, and whether an alias made a node appear twice."""
    memo: dict[int, JNode] = {}
    aliased = [False]

    def conv(n) -> JNode:
        got = memo.get(id(n))
        if got is not None:
            aliased[0] = True
            return got
        if isinstance(n, yaml.ScalarNode):
            out = JNode("scalar", n.start_mark.index, n.end_mark.index, n.value, n.style or "")
            out.tag = n.tag  # type: ignore[attr-defined]
        elif isinstance(n, yaml.SequenceNode):
            out = JNode("seq", n.start_mark.index, n.end_mark.index, [], "[" if n.flow_style else "")
            memo[id(n)] = out
            out.value = [conv(x) for x in n.value]
        else:
            out = JNode("map", n.start_mark.index, n.end_mark.index, [], "{" if n.flow_style else "")
            memo[id(n)] = out
            seen: dict[str, int] = {}
            items = []
            for k, v in n.value:
                ck = conv(k)
                if ck.kind == "scalar" and k.tag != "tag:yaml.org,2002:merge":
                    if ck.value in seen:
                        raise TreeError(
                            f"duplicate key {ck.value!r} (first at line {view.line_of(seen[ck.value])})",
                            where=view.where(ck.start))
                    seen[ck.value] = ck.start
                items.append((ck, conv(v)))
            out.value = items
        memo[id(n)] = out
        return out

    return conv(node), aliased[0]


def map_get(node: JNode | None, key: str) -> JNode | None:
    if node is None or node.kind != "map":
        return None
    for k, v in node.value:
        if k.kind == "scalar" and k.value == key:
            return v
    return None


def map_key(node: JNode | None, key: str) -> JNode | None:
    if node is None or node.kind != "map":
        return None
    for k, _ in node.value:
        if k.kind == "scalar" and k.value == key:
            return k
    return None


def scalar(node: JNode | None) -> str | None:
    if node is None or node.kind != "scalar":
        return None
    return node.value if isinstance(node.value, str) else None


def object_id(doc: JNode | None) -> tuple[str, str, str] | None:
    """(apiVersion, kind, name) of a Kubernetes object document, else None."""
    if doc is None or doc.kind != "map":
        return None
    kind = scalar(map_get(doc, "kind"))
    name = scalar(map_get(map_get(doc, "metadata"), "name"))
    if not kind:
        return None
    return scalar(map_get(doc, "apiVersion")) or "", kind, name or ""


_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_STR_TAGS = {None, "tag:yaml.org,2002:str", "tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:binary"}
_MERGE = "tag:yaml.org,2002:merge"


def to_data(node: JNode | None):
    """The plain Python value of a YAML node, as PyYAML's safe loader reads it (ints, bools, nulls),
    from the composed nodes we already have. Timestamps and binaries stay strings, as in JSON."""
    if node is None:
        return None
    if node.kind == "map":
        out: dict = {}
        for k, v in node.value:
            if getattr(k, "tag", None) == _MERGE:
                merged = to_data(v)
                for m in merged if isinstance(merged, list) else [merged]:
                    if isinstance(m, dict):
                        for mk, mv in m.items():
                            out.setdefault(mk, mv)
                continue
            out[to_data(k) if k.kind == "scalar" else k.start] = to_data(v)
        return out
    if node.kind == "seq":
        return [to_data(x) for x in node.value]
    tag = getattr(node, "tag", None)
    if tag in _STR_TAGS or not isinstance(node.value, str):
        return node.value
    make = _CONSTRUCTOR.yaml_constructors.get(tag)
    return make(_CONSTRUCTOR, yaml.ScalarNode(tag, node.value)) if make else node.value
