"""Edit builders, one per way a value is written (the `write` of a catalog location): set the value at its
spans, add a key after its commented example, set or remove an annotation, add a `key=value` line to a
conf file, set a YAML section key by key, append a document, replace old_signing_keys. Each builder takes
a place found in the tree and appends edits; it knows formats, never which id lives where."""
from __future__ import annotations

import re

from wizard import catalog as C
from wizard.catalog import Location, SecretRef
from wizard.edits import Edit, FlowMap, column, insert_entry, insert_nested, remove_entry_lines, render_entry, \
    yaml_scalar
from wizard.errors import CannotCarry, TreeError
from wizard.find import Place
from wizard.locate import views as V
from wizard.locate.resolve import Address, Seg, Step, Tree, encode_conf, resolve
from wizard.locate.yamlspan import map_get, map_key, object_id, parse_yaml_single, to_data


class Writer:
    def __init__(self, tree: Tree):
        self.tree = tree
        self.edits: list[Edit] = []
        self.replaced: list[tuple[str, str]] = []  # (id, file:line) of set values replaced

    def _edit(self, sp: V.Span, text: str, cid: str) -> None:
        start, end = sp.file_span()
        self.edits.append(Edit(sp.file.rel, start, end, text, (cid,), f"set {cid}"))

    # ---------------------------------------------------------------- values at spans
    def spans(self, cid: str, place_spans, value: str) -> None:
        """The value at every span; a set value that is replaced is recorded (it asks first)."""
        for loc, sp in place_spans:
            if sp.value == value:
                continue
            if not C.is_unset(cid, sp.value):
                self.replaced.append((cid, sp.where()))
            try:
                text = sp.render(value, cid)
            except CannotCarry as exc:
                exc.where = exc.where or sp.where()
                exc.message = f"{exc.message} [{loc}]"
                raise
            self._edit(sp, text, cid)

    def at(self, place: Place, value, cid: str) -> None:
        """The value at a place's spans: text as text, other scalars (ports, booleans) as YAML scalars."""
        if isinstance(value, str):
            self.spans(cid, [(place.location.address, sp) for sp in place.spans], value)
            return
        text = yaml_scalar(value)
        for sp in place.spans:
            if sp.value != text:
                self._edit(sp, sp.view.encode(text, cid), cid)

    def splice(self, cid: str, sp: V.Span, new_value: str) -> None:
        """A new whole value for a span (a token replaced inside it)."""
        if sp.value == new_value:
            return
        try:
            text = sp.render(new_value, cid)
        except CannotCarry as exc:
            exc.where = exc.where or sp.where()
            raise
        self._edit(sp, text, cid)

    # ---------------------------------------------------------------- keys added and removed
    def add(self, place: Place, value, cid: str) -> None:
        """Add the key a location names where it is absent (after its commented example)."""
        if not place.found.missing:
            return
        m = place.found.missing[0]
        keys = tuple(str(s.arg) for s in m.rest)
        if m.node is None:
            raise TreeError(f"cannot add {'.'.join(keys)}: no document", where=place.address.file)
        if len(keys) == 1:
            self.edits.append(insert_entry(m.view, m.node, keys[0], value, example=place.location.example or keys[0],
                                           after_key=place.location.after, ids=(cid,), what=f"add {keys[0]}"))
        else:
            self.edits.append(insert_nested(m.view, m.node, keys, value, ids=(cid,), what=f"add {'.'.join(keys)}"))

    def set_or_add(self, place: Place, value, cid: str) -> None:
        if place.spans:
            self.at(place, value, cid)
        else:
            self.add(place, value, cid)

    def remove(self, place: Place, cid: str) -> None:
        """Remove the entry a location names (its whole lines), when it is there."""
        key = str(place.address.steps[-1].arg[-1].arg)
        for view, node, _ in resolve(self.tree, parent(place.address), want_nodes=True).nodes:
            k = map_key(node, key)
            if k is not None:
                if not C.is_unset(cid, str(map_get(node, key).value)):
                    self.replaced.append((cid, view.where(k.start)))
                self.edits.append(remove_entry_lines(view, k, map_get(node, key), ids=(cid,), what=f"remove {key}"))

    def annotation(self, place: Place, value: str | None, cid: str) -> None:
        """Set, add (back) or — when the value is None (manual TLS: no issuer) — remove an annotation."""
        if value is None:
            self.remove(place, cid)
        else:
            self.set_or_add(place, value, cid)

    # ---------------------------------------------------------------- other formats
    def conf_line(self, place: Place, value: str, cid: str) -> None:
        """A `key=value` line: set; or added after its commented example, or at the end of the file."""
        if place.spans:
            self.at(place, value, cid)
            return
        key = str(place.address.steps[-1].arg)
        conf = Address(place.address.text.rpartition(" › ")[0], place.address.file, place.address.obj,
                       place.address.steps[:-1])
        whole = resolve(self.tree, conf)
        if not whole.spans:
            return
        view = whole.spans[0].opener()
        text = view.text
        m = None
        for m in re.finditer(r"^[ \t]*#[ \t]*" + re.escape(key) + r"[ \t]*=.*$", text, re.MULTILINE):
            pass
        anchor = m.end() if m else len(text.rstrip("\n"))
        new = f"\n{key}={encode_conf(value, cid)}"
        self.edits.append(Edit(view.file.rel, view.to_file(anchor), view.to_file(anchor), view.encode(new, cid),
                               (cid,), f"add {key}"))

    def document(self, place: Place, doc_text: str, cid: str) -> None:
        """A YAML document appended to the file when no document of the same kind and name is there."""
        view, docs = self.tree.yaml_docs(place.address.file)
        want = object_id(parse_yaml_single(V.FileView(V.SourceFile.from_bytes("doc", doc_text.encode()))))
        if any(object_id(d) is not None and object_id(d)[1:] == want[1:] for d in docs):
            return
        text = view.text
        sep = "" if text.endswith("\n") or not text else "\n"
        self.edits.append(Edit(view.file.rel, len(text), len(text), view.encode(sep + "---\n" + doc_text, cid),
                               (cid,), f"add {want[1]}/{want[2]}"))

    def section(self, place: Place, section: dict, cid: str, refs) -> None:
        """A YAML mapping set key by key (a key added after its commented example), or added whole after
        the section's own commented example. A SecretRef value is written as `${VAR}` where the config is
        rendered by envsubst, else as the secret's value: `refs(ref) -> (id, text)`."""
        values = {}
        for k, v in section.items():
            if isinstance(v, SecretRef):
                values[k] = refs(v, place.location.envsubst)
            else:
                values[k] = (cid, v)
        mapping = place.found.nodes[0][1] if place.found.nodes and place.found.nodes[0][1].kind == "map" else None
        if mapping is None:
            if place.found.missing:
                m = place.found.missing[0]
                key = str(m.rest[0].arg)
                self.edits.append(insert_entry(m.view, m.node, key, {k: v for k, (_, v) in values.items()},
                                               example=place.location.example or f"{key}:", ids=(cid,),
                                               what=f"add {key} section"))
            return
        for k, (key_cid, v) in values.items():
            sub = child(place.address, k)
            found = resolve(self.tree, sub, want_nodes=True)
            if found.spans:
                self.at(Place(Location(sub.text), sub, found), v, key_cid)
            elif found.missing:
                m = found.missing[0]
                self.edits.append(insert_entry(m.view, m.node, k, v, example=k, ids=(key_cid,), what=f"add {k}"))

    def old_keys(self, place: Place, wanted: dict, cid: str) -> None:
        """Retired verify keys (`old_signing_keys`) of a homeserver config: every entry of `wanted` added, the
        config's own entries kept; rewritten in flow style, one line per key."""
        key_name = str(place.address.steps[-1].arg[-1].arg)
        holder = _mapping_holding(self.tree, place.address)
        if holder is None:
            return
        view, doc = holder
        key = map_key(doc, key_name)
        current = to_data(map_get(doc, key_name)) if key is not None else None
        if key is None and not wanted:
            return
        merged = dict(current) if isinstance(current, dict) else {}
        merged.update(wanted)
        if current == merged:
            return
        value = {kid: FlowMap([("key", e["key"]), ("expired_ts", int(e["expired_ts"]))])
                 for kid, e in sorted(merged.items())}
        if key is not None:
            self.edits.append(remove_entry_lines(view, key, map_get(doc, key_name), ids=(cid,),
                                                 what=f"replace {key_name}"))
            self.edits.append(_insert_before_line(view, key, key_name, value, cid))
        else:
            after = place.location.after if map_key(doc, place.location.after or "") is not None else None
            self.edits.append(insert_entry(view, doc, key_name, value, after_key=after, ids=(cid,),
                                           what=f"add {key_name}"))


# ---------------------------------------------------------------- addresses

def child(addr: Address, key: str) -> Address:
    """The address of `key` inside the mapping `addr` names."""
    last = addr.steps[-1]
    return Address(f'{addr.text}."{key}"', addr.file, addr.obj,
                   (*addr.steps[:-1], Step(last.fmt, (*last.arg, Seg("key", key)))))


def parent(addr: Address) -> Address:
    """The address of the mapping that holds the last key of `addr`."""
    last = addr.steps[-1]
    return Address(addr.text.rpartition(" ")[0], addr.file, addr.obj,
                   (*addr.steps[:-1], Step(last.fmt, tuple(last.arg[:-1]))))


def _mapping_holding(tree: Tree, addr: Address):
    for view, node, _ in resolve(tree, parent(addr), want_nodes=True).nodes:
        if node.kind == "map":
            return view, node
    return None


def _insert_before_line(view, key_node, key: str, value, cid: str) -> Edit:
    text = view.text
    col = column(text, key_node.start)
    ls = text.rfind("\n", 0, key_node.start) + 1
    lines = render_entry(key, value, col)
    if isinstance(view, V.LiteralBlockView):
        # whole lines inserted at the start of a block line: each carries the block's indentation
        pad = " " * view.indent
        new = "".join(pad + ln + "\n" for ln in lines)
        at = view.line_start_in_parent(ls)
        return Edit(view.file.rel, at, at, view.parent.encode(new, key), (cid,), f"write {key}")
    new = "".join(ln + "\n" for ln in lines)
    return Edit(view.file.rel, ls, ls, view.encode(new, key), (cid,), f"write {key}")
