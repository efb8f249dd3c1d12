"""A survey of the tree for the catalog: where each record's locations are in the operator's own tree,
every placeholder token in a manifest value and the id it stands for, the locations tokens were written
to before (`placed:`), and every problem met on the way — leftovers and notes. The planner writes from
it; `check` audits from it: one discovery for both."""
from __future__ import annotations

import re
from dataclasses import dataclass

from wizard import catalog as C
from wizard.catalog import Location, Record
from wizard.errors import TreeError
from wizard.find import (ABSENT, AMBIGUOUS, COMMENT, DISABLED, NOT_FOUND, OUTSIDE, TOKEN_CONFLICT, UNKNOWN_TOKEN,
                         Finder, Place, Problem)
from wizard.index import TreeIndex
from wizard.locate import views as V
from wizard.locate.resolve import Address, Tree, resolve, span_of
from wizard.locate.yamlspan import map_get, object_id, parse_yaml_single


@dataclass
class Found:
    id: str
    address: str  # the catalog location
    location: str  # where it is in this tree
    how: str

    def to_json(self) -> dict:
        return {"id": self.id, "address": self.address, "location": self.location, "how": self.how}


@dataclass
class TokenHit:
    file: str
    start: int  # file index of the token
    end: int
    token: str
    span: V.Span  # what is replaced: the whole YAML/JSON value, or the token itself in plain text
    whole: V.Span  # the whole value holding it (a block value is replaced whole by a key or a PEM)
    address: str | None  # an address that resolves to that value (for `placed:`), when one can be written
    obj: str | None  # "file › Kind/name" of the object holding it
    structured: bool  # the value sits in YAML/JSON (escaped by its format); else plain text in a block

    def line(self, index: TreeIndex) -> int:
        return self.span.file.line_of(self.start)


class Survey:
    def __init__(self, tree: Tree, answers, store, *, needed=None):
        """`needed(record) -> bool`: whether a record is looked for (a setting without a value is not);
        default: every record of an active component."""
        self.tree = tree
        self.answers = answers
        self.store = store
        self.needed = needed or self._active
        self.records = {r.id: r for r in C.RECORDS}
        self.placeholders = dict(getattr(answers, "placeholders", None) or {}) if answers is not None else {}
        self.index = TreeIndex.build(tree, extra_manifests=[f for f in C.PLAIN_COPIES if not f.endswith(
            (".yaml", ".yml", ".json"))])
        catalog_objects = {f"{a.file} › {a.obj[0]}/{a.obj[1]}" for r in C.RECORDS for loc in r.locations
                           for a in [Address.parse(loc.address)] if a.obj}
        catalog_objects |= {a for c in C.COMPONENTS for a in c.anchors if "/" in a.split(" › ")[-1]}
        settle = (getattr(answers, "locations", None) or {}) if answers is not None else {}
        self.finder = Finder(self.index, catalog_objects, settle=settle)
        self.places: dict[str, list[Place]] = {}
        self.token_places: dict[str, list[TokenHit]] = {}
        self.placed_places: dict[str, list[Place]] = {}
        self.blocked: dict[str, list[Problem]] = {}
        self.problems: list[Problem] = []
        self.found: list[Found] = []
        self.present, self.enabled = self._components()

    def holds_deployment(self) -> bool:
        """A Kubernetes object or a homeserver config is in the tree."""
        return bool(self.index.objects) or any(map_get(doc, "server_name") is not None
                                               for _, _, doc in self.index.plain_docs)

    def run(self) -> "Survey":
        self._parse_problems()
        self._locate()
        self._tokens()
        self._placed()
        return self

    def _components(self):
        present, enabled = {}, {}
        for comp in C.COMPONENTS:
            here = False
            for anchor in comp.anchors:
                a = Address.parse(anchor)
                hit = (self.finder.find_object(a.file, *a.obj) if a.obj else
                       self.finder.find_file(a.file, [], False))
                if hit.obj is not None or hit.file is not None or (hit.problem and hit.problem.kind in ("parse",
                                                                                                        AMBIGUOUS)):
                    here = True
            present[comp.name] = here
            on = here
            if comp.switch is not None:
                on = here and bool(_switch(self.answers, comp.switch))
            enabled[comp.name] = on
        return present, enabled

    def _component_of(self, loc: Location) -> str | None:
        a = Address.parse(loc.address)
        obj = f"{a.file} › {a.obj[0]}/{a.obj[1]}" if a.obj else a.file
        for comp in C.COMPONENTS:
            if obj in comp.anchors or (a.obj is None and a.file in comp.anchors):
                return comp.name
        return None

    def _active(self, r: Record) -> bool:
        return r.component is None or self.enabled.get(r.component, True)

    def _parse_problems(self) -> None:
        for rel in self.index.broken:
            self.problems.append(self.finder._parse_problem(rel))

    def _locate(self) -> None:
        absent_noted = set()
        for r in C.RECORDS:
            if not self.needed(r):
                continue
            for loc in r.locations:
                comp = self._component_of(loc)
                if comp is not None and not self.present.get(comp, True):
                    if comp not in absent_noted:
                        absent_noted.add(comp)
                        self.problems.append(Problem(ABSENT, None, 0, f"component {comp} is not in this tree: its "
                                                     "values are written nowhere", note=True, address=loc.file))
                    continue
                res = self.finder.place(loc)
                if isinstance(res, Problem):
                    if res.note:
                        self.problems.append(res)
                    else:
                        self.blocked.setdefault(r.id, []).append(res)
                        self.problems.append(res)
                    continue
                if not res.spans and res.found.missing and loc.write == C.SET and not loc.optional \
                        and not res.found.nodes:
                    m = res.found.missing[0]
                    keys = ".".join(str(s.arg) for s in m.rest)
                    where = m.view.where(m.node.start) if m.node is not None else m.view.file.rel
                    f, _, ln = where.rpartition(":")
                    p = Problem(NOT_FOUND, f, int(ln) if ln.isdigit() else 0,
                                f"{keys} is not in {res.obj} ({r.id})", "add the key, or run with a tree that has it",
                                id=r.id, address=loc.address)
                    self.blocked.setdefault(r.id, []).append(p)
                    self.problems.append(p)
                    continue
                self.places.setdefault(r.id, []).append(res)
                if res.how:
                    self.found.append(Found(r.id, loc.address, res.address.text, res.how))

    # ---------------------------------------------------------------- tokens
    def _covered(self) -> list[tuple[str, int, int]]:
        out = []
        for places in self.places.values():
            for p in places:
                for sp in p.spans:
                    s, e = sp.file_span()
                    out.append((sp.file.rel, s, e))
        return out

    def _tokens(self) -> None:
        covered = self._covered()
        disabled_objs = set()
        for comp in C.COMPONENTS:
            if self.present.get(comp.name) and not self.enabled.get(comp.name):
                for anchor in comp.anchors:
                    a = Address.parse(anchor)
                    if a.obj:
                        hit = self.finder.find_object(a.file, *a.obj)
                        if hit.obj is not None:
                            disabled_objs.add((hit.obj.address, comp.name))
        disabled = dict(disabled_objs)
        in_values: dict[str, set[int]] = {}
        for hit in _token_hits(self.index):
            in_values.setdefault(hit.file, set()).add(hit.start)
            if any(f == hit.file and s <= hit.start < e for f, s, e in covered):
                continue  # at a catalog location: the location decides the id
            line = hit.line(self.index)
            if hit.obj in disabled:
                self.problems.append(Problem(DISABLED, hit.file, line, f"{hit.token} stays: component "
                                             f"{disabled[hit.obj]} is disabled", f"turn it on in the answers "
                                             f"({C.COMPONENT_BY_NAME[disabled[hit.obj]].switch}) to configure it",
                                             token=hit.token, note=True))
                continue
            if hit.token in C.AMBIGUOUS_TOKENS:
                ids = " or ".join(C.AMBIGUOUS_TOKENS[hit.token])
                self.problems.append(Problem(TOKEN_CONFLICT, hit.file, line, f"{hit.token} stands for {ids} here",
                                             "set this value by hand (it is not a catalog location)",
                                             token=hit.token))
                continue
            cid = C.TOKEN_IDS.get(hit.token)
            if cid is not None:
                r = self.records[cid]
                if not self._active(r):
                    self.problems.append(Problem(DISABLED, hit.file, line, f"{hit.token} ({cid}) stays: component "
                                                 f"{r.component} is off", "turn it on in the answers to configure it",
                                                 token=hit.token, id=cid, note=True))
                    continue
                self.token_places.setdefault(cid, []).append(hit)
                continue
            key = self._placeholder_key(hit.token, hit.file)
            if key is None:
                self.problems.append(Problem(UNKNOWN_TOKEN, hit.file, line, f"unknown placeholder {hit.token} (in no "
                                             "row of the catalog)", f"give it a value in the answers file: "
                                             f"placeholders: {{{hit.token}: …}}", token=hit.token))
                continue
            self.token_places.setdefault(C.placeholder_id(key), []).append(hit)
        for rel, line, text, token in _tokens_outside_values(self.index, in_values):
            kind = COMMENT if rel in self.index.manifests else OUTSIDE
            what = "a comment" if kind == COMMENT else "not a manifest (never edited)"
            self.problems.append(Problem(kind, rel, line, f"{token} in {what}: a hint, not a value",
                                         "nothing to do" if kind == COMMENT else "edit it yourself if it matters",
                                         token=token, note=True))

    def _placeholder_key(self, token: str, rel: str) -> str | None:
        for key in (f"{token}@{rel}", token):
            if key in self.placeholders:
                return key
        return None

    # ---------------------------------------------------------------- placed: locations found by a token before
    def _placed(self) -> None:
        for cid, addresses in self.store.placed.items():
            r = C.record(cid)
            if r is None or (cid in self.records and not self._active(self.records[cid])):
                continue
            for text in addresses:
                try:
                    addr = Address.parse(text)
                    found = resolve(self.tree, addr)
                except (TreeError, ValueError):
                    continue
                if found.spans:
                    self.placed_places.setdefault(cid, []).append(Place(Location(text), addr, found, addr.file))


# ---------------------------------------------------------------- tokens in the tree

_SAFE_KEY = re.compile(r"[A-Za-z0-9_-]+")
EMBEDDED = {".yaml": "yaml", ".yml": "yaml", ".json": "json"}


def _path_text(path: list) -> str:
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            k = str(p)
            piece = k if _SAFE_KEY.fullmatch(k) else '"' + k.replace("\\", "\\\\").replace('"', '\\"') + '"'
            out += ("." if out else "") + piece
    return out


def _token_hits(index: TreeIndex):
    """Every token in a manifest value (embedded YAML/JSON files included), with the value holding it."""
    tree = index.tree
    for rel in index.manifests:
        if rel in index.broken:
            continue
        if rel.endswith((".yaml", ".yml")):
            view, docs = tree.yaml_docs(rel)
            plain_seen = False
            for doc in docs:
                if doc is None:
                    continue
                oid = object_id(doc)
                if oid is not None:
                    base = obj = f"{rel} › {oid[1]}/{oid[2]}"
                else:  # a plain YAML file: its first document is addressed by the file
                    base, obj = (rel if not plain_seen else None), rel
                    plain_seen = True
                yield from _walk_tokens(rel, view, doc, [], base, obj, "yaml", oid)
        elif rel.endswith(".json"):
            view, doc = tree.json_doc(rel)
            yield from _walk_tokens(rel, view, doc, [], rel, rel, "json", None)
        else:  # a plain text manifest (haproxy.cfg): the token itself, outside comment lines
            f = tree.file(rel)
            view = V.FileView(f)
            for m in C.TOKEN_RE.finditer(f.text):
                if _comment_line(f.text, m.start()):
                    continue
                sp = V.Span(view, m.start(), m.end(), m.group(), _as_is)
                yield TokenHit(rel, m.start(), m.end(), m.group(), sp, sp, None, rel, False)


def _as_is(value: str, what: str) -> str:
    return value


def _walk_tokens(rel, view, node, path, base, obj, fmt, oid):
    if node.kind == "map":
        for k, v in node.value:
            yield from _walk_tokens(rel, view, v, path + [k.value], base, obj, fmt, oid)
        return
    if node.kind == "seq":
        for i, x in enumerate(node.value):
            yield from _walk_tokens(rel, view, x, path + [i], base, obj, fmt, oid)
        return
    if not isinstance(node.value, str) or not C.TOKEN_RE.search(node.value):
        return
    whole = span_of(view, node, fmt)
    address = f"{base} › {_path_text(path)}" if base and path else None
    opener = getattr(whole, "opener", None)
    # a YAML/JSON file inside a ConfigMap/Secret value: its own values, with their own escaping
    last = str(path[-1]) if path else ""
    inner_fmt = EMBEDDED.get("." + last.rsplit(".", 1)[-1].lower()) if "." in last else None
    if inner_fmt and oid and oid[1] in ("ConfigMap", "Secret") and opener is not None:
        try:
            inner = opener()
            doc = parse_yaml_single(inner) if inner_fmt == "yaml" else _json_doc(inner)
        except TreeError:
            doc = None
        if doc is not None:
            inner_base = f"{address} › ({inner_fmt})" if address else None
            yield from _walk_tokens(rel, inner, doc, [], inner_base, obj, inner_fmt, None)
            return
    if opener is None:  # a folded block: no way to write inside it
        return
    decoded = opener()
    block = node.style in ("|", ">")
    for m in C.TOKEN_RE.finditer(decoded.text):
        if block and _comment_line(decoded.text, m.start()):
            continue  # a comment line inside a block (a script, a config): a hint, reported as a comment
        start, end = decoded.to_file(m.start()), decoded.to_file(m.end())
        if block:  # plain text in a block: the token itself is replaced, escaped for the block
            sp = V.Span(decoded, m.start(), m.end(), m.group(), _as_is)
        else:
            sp = whole
        yield TokenHit(rel, start, end, m.group(), sp, whole, address, obj, structured=not block)


def _comment_line(text: str, index: int) -> bool:
    ls = text.rfind("\n", 0, index) + 1
    return text[ls:index].lstrip().startswith(("#", "--", "//", ";"))


def _json_doc(view):
    from wizard.locate.resolve import parse_json_view

    return parse_json_view(view)


def _tokens_outside_values(index: TreeIndex, in_values: dict[str, set[int]]):
    """Tokens in comments of manifests and anywhere in other files: (file, line, text, token)."""
    tree = index.tree
    for rel in index.files:
        if rel in index.broken:
            continue
        try:
            f = tree.file(rel)
        except TreeError:
            continue
        starts = in_values.get(rel, set())
        for m in C.TOKEN_RE.finditer(f.text):
            if m.start() in starts:
                continue
            if rel in index.manifests and not _in_comment_or_nonvalue(f.text, m.start()):
                continue
            yield rel, f.line_of(m.start()), "", m.group()


def _in_comment_or_nonvalue(text: str, index: int) -> bool:
    ls = text.rfind("\n", 0, index) + 1
    return "#" in text[ls:index]


def _switch(answers, key: str) -> bool:
    return answers is not None and bool(answer(answers, key))


# ---------------------------------------------------------------- what the answers say

def answer(answers, key: str):
    """The value an answers key gives (references read; None when absent): Answers.get."""
    return answers.get(key)


# ---------------------------------------------------------------- a token in a value
