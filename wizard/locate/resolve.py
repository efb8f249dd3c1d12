"""Catalog addresses → spans in the tree.

An address reads like CATALOG.md's notation, steps joined by ` › `:

    main-instance/01-synapse/configmap.yaml › ConfigMap/synapse-config › data."homeserver.yaml" › (yaml) public_baseurl › (url) host

- the file (relative to the deployment root);
- for a multi-document YAML file, `Kind/name` picks the object;
- a key path in the current structured format: `a.b."c.d"`, `[0]`, `[*]` (every item),
  `[=@path]` (the item equal to the value at `path` of the same document),
  `{@path}` (the mapping *key* equal to the value at `path`, compared without a trailing `/`);
- `(fmt) selector` opens the current string value in an embedded format:
  yaml/json (a key path), sql (the literal after a phrase), conninfo (a key), shell (a variable),
  conf (a `key=value` line), haproxy (`Host:\\ ` values), url (`host`).
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from wizard.errors import CannotCarry, OutsideTree, TreeError
from wizard.files import read_regular
from wizard.locate import views as V
from wizard.locate.jsonspan import JNode, JsonSyntaxError, parse_json
from wizard.locate.yamlspan import map_get, object_id, parse_yaml_single, parse_yaml_stream
from wizard.source import SourceFile

SEP = " › "


# ------------------------------------------------------------------ address syntax

@dataclass(frozen=True)
class Seg:
    op: str  # "key" | "index" | "all" | "match" | "keyof"
    arg: object = None


_SEG_RE = re.compile(r'"((?:[^"\\]|\\.)*)"|([^.\[\]{}"]+)|\[(\*|\d+|=@[^\]]+)\]|\{@([^}]+)\}|(\.)')


def parse_path(text: str) -> tuple[Seg, ...]:
    segs: list[Seg] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _SEG_RE.match(text, pos)
        if not m:
            raise ValueError(f"bad key path {text!r} at {pos}")
        pos = m.end()
        if m.group(5):
            continue
        if m.group(1) is not None:
            segs.append(Seg("key", json.loads('"' + m.group(1) + '"')))
        elif m.group(2) is not None:
            segs.append(Seg("key", m.group(2)))
        elif m.group(3) is not None:
            inner = m.group(3)
            if inner == "*":
                segs.append(Seg("all"))
            elif inner.startswith("=@"):
                segs.append(Seg("match", parse_path(inner[2:])))
            else:
                segs.append(Seg("index", int(inner)))
        else:
            segs.append(Seg("keyof", parse_path(m.group(4))))
    return tuple(segs)


@dataclass(frozen=True)
class Step:
    fmt: str  # "path" (in the current structured format) or an embedded format name
    arg: object


@dataclass(frozen=True)
class Address:
    text: str
    file: str
    obj: tuple[str, str] | None
    steps: tuple[Step, ...]

    @classmethod
    def parse(cls, text: str) -> "Address":
        parts = [p.strip() for p in text.split(SEP.strip())]
        file = parts[0]
        obj = None
        rest = parts[1:]
        if rest and re.fullmatch(r"[A-Z][A-Za-z0-9]*/[A-Za-z0-9.*-]+", rest[0]):
            kind, name = rest[0].split("/", 1)
            obj = (kind, name)
            rest = rest[1:]
        steps = []
        for part in rest:
            m = re.fullmatch(r"\((\w+)\)\s*(.*)", part)
            if m:
                fmt, sel = m.group(1), m.group(2)
                arg = parse_path(sel) if fmt in ("yaml", "json") and sel else sel
                steps.append(Step(fmt, arg))
            else:
                steps.append(Step("path", parse_path(part)))
        return cls(text=text, file=file, obj=obj, steps=tuple(steps))


# ------------------------------------------------------------------ the tree, parsed once

class Tree:
    """Read-only access to the deployment folder: files, YAML documents, JSON documents."""

    def __init__(self, root: Path, overrides: dict[str, bytes] | None = None):
        self.root = Path(root)
        self._files: dict[str, SourceFile] = {}
        self._docs: dict[str, tuple[V.FileView, list]] = {}
        self._json: dict[str, tuple[V.FileView, JNode]] = {}
        self._embedded: dict[tuple, tuple[V.View, JNode | None]] = {}  # a parsed file inside a value
        self._overrides = overrides or {}

    def file(self, rel: str) -> SourceFile:
        f = self._files.get(rel)
        if f is None:
            if rel in self._overrides:
                f = SourceFile.from_bytes(rel, self._overrides[rel])
            else:
                path = self.root / rel
                if not os.path.lexists(path):
                    raise TreeError("file missing (is this the expected deployment layout?)", where=rel)
                real = path.resolve()
                root = self.root.resolve()
                if real != root and root not in real.parents:
                    raise OutsideTree("points outside the tree (through a link); refused", where=rel,
                                      hint="replace the link by the folder or file itself")
                f = SourceFile.from_bytes(rel, read_regular(real, rel))
            self._files[rel] = f
        return f

    def with_texts(self, texts: dict[str, bytes]) -> "Tree":
        """The same tree as it will be once `texts` (rel -> new bytes) are written (files that do not
        change keep what was parsed of them)."""
        changed = {rel for rel, data in texts.items() if rel not in self._files or self._files[rel].raw != data}
        after = Tree(self.root, {**self._overrides, **{rel: texts[rel] for rel in changed}})
        after._files = {rel: f for rel, f in self._files.items() if rel not in changed}
        after._docs = {rel: d for rel, d in self._docs.items() if rel not in changed}
        after._json = {rel: d for rel, d in self._json.items() if rel not in changed}
        after._embedded = {k: d for k, d in self._embedded.items() if k[0] not in changed}
        return after

    def embedded(self, key: tuple, parse):
        """The (view, document) of a YAML/JSON file inside a value, parsed once per tree."""
        got = self._embedded.get(key)
        if got is None:
            got = self._embedded[key] = parse()
        return got

    def view(self, rel: str) -> V.FileView:
        return V.FileView(self.file(rel))

    def yaml_docs(self, rel: str) -> tuple[V.FileView, list]:
        if rel not in self._docs:
            view = V.FileView(self.file(rel))
            self._docs[rel] = (view, parse_yaml_stream(view))
        return self._docs[rel]

    def json_doc(self, rel: str) -> tuple[V.FileView, JNode]:
        if rel not in self._json:
            view = V.FileView(self.file(rel))
            self._json[rel] = (view, _parse_json_view(view))
        return self._json[rel]

    def find_object(self, rel: str, kind: str, name: str) -> tuple[V.FileView, JNode]:
        view, docs = self.yaml_docs(rel)
        hits = []
        for doc in docs:
            oid = object_id(doc)
            if oid and oid[1] == kind and oid[2] == name:
                hits.append(doc)
        if not hits:
            raise TreeError(f"no {kind}/{name} in this file (is this the expected deployment layout?)",
                            where=rel)
        if len(hits) > 1:
            raise TreeError(f"{kind}/{name} is defined {len(hits)} times", where=view.where(hits[1].start))
        return view, hits[0]


def _parse_json_view(view: V.View) -> JNode:
    try:
        return parse_json(view.text)
    except JsonSyntaxError as exc:
        raise TreeError(f"not valid JSON: {exc}", where=view.where(min(exc.index, max(len(view.text) - 1, 0)))) from None


# ------------------------------------------------------------------ resolution

@dataclass
class Missing:
    """Where a path stopped: `node` (a mapping, or None for no document) lacks `rest`."""

    view: V.View
    node: JNode | None
    rest: tuple[Seg, ...]
    fmt: str  # "yaml" or "json"


@dataclass
class Found:
    spans: list[V.Span] = field(default_factory=list)
    missing: list[Missing] = field(default_factory=list)
    nodes: list[tuple[V.View, JNode, str]] = field(default_factory=list)  # for structural edits


@dataclass
class _Cur:
    view: V.View
    node: JNode | None  # a structured node, or None when `span` is set
    fmt: str  # "yaml" | "json" | "text"
    root: JNode | None
    span: V.Span | None = None


def resolve(tree: Tree, addr: Address, *, want_nodes: bool = False) -> Found:
    found = Found()
    rel = addr.file
    if rel.endswith((".yaml", ".yml")):
        if addr.obj:
            view, doc = tree.find_object(rel, *addr.obj)
        else:
            view, docs = tree.yaml_docs(rel)
            docs = [d for d in docs if d is not None]
            doc = docs[0] if docs else None
        curs = [_Cur(view, doc, "yaml", doc)]
    elif rel.endswith(".json"):
        view, doc = tree.json_doc(rel)
        curs = [_Cur(view, doc, "json", doc)]
    else:
        view = tree.view(rel)
        whole = V.Span(view, 0, len(view.text), view.text, _ident)
        whole.opener = lambda: view
        curs = [_Cur(view, None, "text", None, whole)]

    for step in addr.steps:
        nxt: list[_Cur] = []
        for cur in curs:
            if step.fmt == "path":
                nxt.extend(_walk(cur, step.arg, found))
            else:
                nxt.extend(_embedded(tree, cur, step, found))
        curs = nxt
    for cur in curs:
        if cur.span is not None:
            found.spans.append(cur.span)
        elif cur.node is not None:
            if want_nodes or cur.node.kind != "scalar":
                found.nodes.append((cur.view, cur.node, cur.fmt))
            if cur.node.kind == "scalar":
                found.spans.append(_span_of(cur.view, cur.node, cur.fmt))
    return found


def _ident(value: str, what: str) -> str:
    return value


def _walk(cur: _Cur, segs: tuple[Seg, ...], found: Found) -> list[_Cur]:
    if cur.node is None and cur.span is not None:
        raise TreeError("a key path cannot follow a plain-text value", where=cur.view.where(cur.span.start))
    nodes = [cur.node]
    for i, seg in enumerate(segs):
        out = []
        for n in nodes:
            if n is None:
                found.missing.append(Missing(cur.view, None, segs[i:], cur.fmt))
                continue
            if seg.op == "key":
                v = map_get(n, seg.arg) if n.kind == "map" else None
                if v is None:
                    if n.kind == "map" or (n.kind == "scalar" and not n.value):
                        found.missing.append(Missing(cur.view, n, segs[i:], cur.fmt))
                    continue
                out.append(v)
            elif seg.op in ("index", "all", "match"):
                if n.kind != "seq":
                    continue
                if seg.op == "index":
                    if seg.arg < len(n.value):
                        out.append(n.value[seg.arg])
                elif seg.op == "all":
                    out.extend(n.value)
                else:
                    want = _value_at(cur.root, seg.arg)
                    out.extend(x for x in n.value if x.kind == "scalar" and want is not None
                               and str(x.value) == want)
            elif seg.op == "keyof":
                want = _value_at(cur.root, seg.arg)
                if n.kind != "map" or want is None:
                    continue
                for k, _ in n.value:
                    if k.kind == "scalar" and str(k.value).rstrip("/") == want.rstrip("/"):
                        out.append(k)
        nodes = out
    return [_Cur(cur.view, n, cur.fmt, cur.root) for n in nodes]


def _value_at(root: JNode | None, segs: tuple[Seg, ...]) -> str | None:
    n = root
    for seg in segs:
        if n is None:
            return None
        if seg.op == "key":
            n = map_get(n, seg.arg)
        elif seg.op == "index" and n.kind == "seq" and seg.arg < len(n.value):
            n = n.value[seg.arg]
        else:
            return None
    if n is None or n.kind != "scalar":
        return None
    return str(n.value)


# ---- turning a scalar node into a span, and opening a scalar's content as a view

def _yaml_whole_encoder(style: str):
    def enc(value: str, what: str) -> str:
        if style == "'":
            try:
                return "'" + V.escape_yaml_single(value, what) + "'"
            except CannotCarry:
                return '"' + V.escape_yaml_double(value, what) + '"'
        if style == '"':
            return '"' + V.escape_yaml_double(value, what) + '"'
        # plain: stay plain when the value reads back as the same string, else double-quote
        if yaml_plain_ok(value):
            return value
        return '"' + V.escape_yaml_double(value, what) + '"'
    return enc


_PLAIN_WHOLE = re.compile(r"[A-Za-z0-9_./@%+=~-][A-Za-z0-9_./@%+=~:,-]*")


def yaml_plain_ok(value: str) -> bool:
    """A string that YAML 1.1 and 1.2 both read back unquoted as the same string."""
    import yaml as _yaml

    if not value or not _PLAIN_WHOLE.fullmatch(value) or value.endswith(":"):
        return False
    try:
        return _yaml.safe_load(value) == value
    except _yaml.YAMLError:
        return False


def _block_whole(value: str, what: str) -> str:
    if value.startswith((" ", "\t")) or value.startswith("\n"):
        raise CannotCarry(f"{what}: a block value cannot start with white space or an empty line")
    if value.endswith("\n"):
        value = value.rstrip("\n")
    return value


def _span_of(view: V.View, node: JNode, fmt: str) -> V.Span:
    if fmt == "json":
        if node.style == '"':
            span = V.Span(view, node.start, node.end, node.value,
                          lambda v, what: '"' + V.escape_json(v, what) + '"')
            span.opener = lambda: V.decode_json_string(view, node.start, node.end)
            return span
        return V.Span(view, node.start, node.end, json.dumps(node.value),
                      lambda v, what: json.dumps(v, ensure_ascii=False))
    style = node.style
    if style == "|":
        lv = V.LiteralBlockView(view, node.start, node.end, node.value)
        content = lv.text.rstrip("\n")
        span = V.Span(lv, 0, len(content), content, _block_whole)
        span.opener = lambda: lv
        return span
    if style == ">":
        def refuse(value, what, _w=view.where(node.start)):
            raise CannotCarry(f"{what}: folded block scalars (>) are not edited", hint=_w)
        return V.Span(view, node.start, node.end, node.value.rstrip("\n"), refuse)
    value = node.value if isinstance(node.value, str) else str(node.value)
    span = V.Span(view, node.start, node.end, value, _yaml_whole_encoder(style))
    if style == '"':
        span.opener = lambda: V.decode_yaml_double(view, node.start, node.end)
    elif style == "'":
        span.opener = lambda: V.decode_yaml_single(view, node.start, node.end)
    else:
        span.opener = lambda: V.decode_plain(view, node.start, node.end, value)
    return span


def _open(cur: _Cur) -> V.View:
    span = cur.span if cur.span is not None else _span_of(cur.view, cur.node, cur.fmt)
    opener = getattr(span, "opener", None)
    if opener is None:
        raise TreeError("this value cannot be opened as an embedded file", where=span.where())
    return opener()


# ---- embedded formats

def _embedded(tree: Tree, cur: _Cur, step: Step, found: Found) -> list[_Cur]:
    if cur.node is not None and cur.node.kind != "scalar":
        raise TreeError(f"expected a text value to read as {step.fmt}", where=cur.view.where(cur.node.start))
    fmt = step.fmt
    if fmt in ("yaml", "json") and cur.node is not None and isinstance(cur.view, V.FileView):
        def parse():
            view = _open(cur)
            return view, (parse_yaml_single(view) if fmt == "yaml" else _parse_json_view(view))

        view, doc = tree.embedded((cur.view.file.rel, cur.node.start, cur.node.end, fmt), parse)
    else:
        view = _open(cur)
        doc = None
        if fmt == "yaml":
            doc = parse_yaml_single(view)
        elif fmt == "json":
            doc = _parse_json_view(view)
    if fmt in ("yaml", "json"):
        return _walk(_Cur(view, doc, fmt, doc), step.arg, found) if step.arg else [_Cur(view, doc, fmt, doc)]
    finder = _TEXT_FORMATS.get(fmt)
    if finder is None:
        raise ValueError(f"unknown embedded format {fmt!r}")
    return [_Cur(s.view, None, "text", None, s) for s in finder(view, step.arg)]


def _sql_literal(view: V.View, phrase: str) -> list[V.Span]:
    words = r"\s+".join(re.escape(w) for w in phrase.split())
    m = re.search(words + r"\s*('(?:[^']|'')*')", view.text, re.IGNORECASE)
    if not m:
        return []
    mv = V.decode_sql_literal(view, m.start(1), m.end(1))
    span = V.Span(mv, 0, len(mv.text), mv.text, _ident)
    span.opener = lambda: mv
    return [span]


_CONNINFO_TOKEN = re.compile(r"\s*([A-Za-z_]+)\s*=\s*('(?:[^'\\]|\\.)*'|[^\s']*)")


def _conninfo(view: V.View, key: str) -> list[V.Span]:
    out = []
    pos = 0
    text = view.text
    while pos < len(text):
        m = _CONNINFO_TOKEN.match(text, pos)
        if not m:
            break
        pos = m.end()
        if m.group(1) == key:
            raw = m.group(2)
            value = re.sub(r"\\(.)", r"\1", raw[1:-1]) if raw.startswith("'") else raw
            out.append(V.Span(view, m.start(2), m.end(2), value, encode_conninfo))
    return out


def encode_conninfo(value: str, what: str) -> str:
    if value and re.fullmatch(r"[A-Za-z0-9_.@+-]+", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


_SHELL_DQ_ESC = re.compile(r'\\([\\"$`\n])')


def _shell(view: V.View, name: str) -> list[V.Span]:
    pat = re.compile(r"^[ \t]*(?:export[ \t]+)?" + re.escape(name) +
                     r"""=("(?:[^"\\]|\\.)*"|'[^']*'|[^\s#;'"]*)""", re.MULTILINE | re.DOTALL)
    m = pat.search(view.text)
    if not m:
        return []
    raw = m.group(1)
    if raw.startswith('"'):
        value = _SHELL_DQ_ESC.sub(lambda mm: "" if mm.group(1) == "\n" else mm.group(1), raw[1:-1])
        enc = encode_shell_double
    elif raw.startswith("'"):
        value = raw[1:-1]
        enc = encode_shell_single
    else:
        value = raw
        enc = encode_shell_bare
    return [V.Span(view, m.start(1), m.end(1), value, enc)]


_LINE_BREAK = re.compile("[\n\r\x85\u2028\u2029]")


def _one_line(value: str, what: str, fmt: str) -> None:
    """Line-based formats (shell, conf, haproxy, htpasswd) refuse a line break of every kind."""
    if _LINE_BREAK.search(value):
        raise CannotCarry(f"{what}: a {fmt} value cannot hold a line break")


def encode_shell_double(value: str, what: str) -> str:
    _one_line(value, what, "shell")
    if "\x00" in value:
        raise CannotCarry(f"{what}: a shell string cannot hold a NUL character")
    return '"' + re.sub(r'([\\"$`])', r"\\\1", value) + '"'


def encode_shell_single(value: str, what: str) -> str:
    _one_line(value, what, "shell")
    if "\x00" in value:
        raise CannotCarry(f"{what}: a shell string cannot hold a NUL character")
    return "'" + value.replace("'", "'\\''") + "'"


def encode_shell_bare(value: str, what: str) -> str:
    if value and re.fullmatch(r"[A-Za-z0-9_./:@%+=,-]+", value):
        return value
    return encode_shell_double(value, what)


def _conf(view: V.View, key: str) -> list[V.Span]:
    pat = re.compile(r"^[ \t]*" + re.escape(key) + r"[ \t]*=[ \t]*([^\r\n#]*?)[ \t]*$", re.MULTILINE)
    return [V.Span(view, m.start(1), m.end(1), m.group(1), encode_conf) for m in pat.finditer(view.text)]


def encode_conf(value: str, what: str) -> str:
    if not value or re.search(r"[\s#\\\"']", value):
        raise CannotCarry(f"{what}: a config-file value cannot be empty or hold white space, #, quotes or backslashes")
    return value


def _haproxy(view: V.View, header: str) -> list[V.Span]:
    pat = re.compile(re.escape(header) + r":\\ ([^\s\\]+)")
    return [V.Span(view, m.start(1), m.end(1), m.group(1), encode_token) for m in pat.finditer(view.text)
            if not _in_comment(view.text, m.start())]


def _in_comment(text: str, index: int) -> bool:
    ls = text.rfind("\n", 0, index) + 1
    return "#" in text[ls:index]


def encode_token(value: str, what: str) -> str:
    if not value or re.search(r"[\s\\#]", value):
        raise CannotCarry(f"{what}: the value cannot hold white space, # or backslashes here")
    return value


_URL_HOST = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:(?://)?([^/:?#\s\[\]@]+)")


def _url(view: V.View, part: str) -> list[V.Span]:
    if part != "host":
        raise ValueError(f"unknown url part {part!r}")
    m = _URL_HOST.match(view.text)
    if not m:
        return []
    return [V.Span(view, m.start(1), m.end(1), m.group(1), encode_token)]


_TEXT_FORMATS = {
    "sql": _sql_literal,
    "conninfo": _conninfo,
    "shell": _shell,
    "conf": _conf,
    "haproxy": _haproxy,
    "url": _url,
}


# Public names for the rules of `wizard check`, which read embedded files with positions too.
span_of = _span_of
parse_json_view = _parse_json_view
