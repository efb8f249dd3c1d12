"""The tree as the rules see it, parsed once: Kubernetes objects, structured configs, value lines.

- a YAML document is a Kubernetes object when it has both `apiVersion` and `kind` (strings);
  one with neither is a plain config (Helm values, `config/synapse/homeserver.yaml`), whatever
  its path; one with only one of them but a `metadata` mapping is a broken object;
- a ConfigMap `data` / Secret `stringData` entry whose key ends in .yaml/.yml/.json is an
  embedded config, parsed with positions so that findings inside it carry file lines;
- value lines (scalars, block-scalar lines, JSON strings, lines of other text files, without
  comments) are what the text rules (service names, domains) search.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Iterator

from wizard.errors import TreeError
from wizard.locate import views as V
from wizard.locate.jsonspan import JNode
from wizard.locate.resolve import Tree, parse_json_view as _parse_json_view, span_of as _span_of
from wizard.locate.yamlspan import map_get, map_key, parse_yaml_stream, scalar, to_data
from wizard.rules.finding import ERROR, Finding
from wizard.scan import ValueText, tree_files, value_texts

EMBEDDED_SUFFIXES = {".yaml": "yaml", ".yml": "yaml", ".json": "json"}
_NAME_LINE = re.compile(r"""^[ \t-]*name:[ \t]*["']?([A-Za-z0-9][A-Za-z0-9._-]*)["']?[ \t]*(?:#.*)?$""", re.M)


def node_at(node: JNode | None, path) -> tuple[JNode | None, JNode | None]:
    """(the node at `path`, the deepest node reached on the way). Steps are keys or indices."""
    deepest = node
    for step in path:
        if node is None:
            break
        if isinstance(step, int):
            node = node.value[step] if node.kind == "seq" and 0 <= step < len(node.value) else None
        else:
            node = map_get(node, str(step))
        if node is not None:
            deepest = node
    return node, deepest


key_node = map_key  # the mapping key node itself (for line numbers)


@dataclass
class KubeObject:
    file: str
    view: V.View
    node: JNode
    data: dict
    api_version: str
    kind: str
    name: str
    namespace: str  # "" when the manifest does not say (kubectl's current namespace)

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def ident(self) -> str:
        return f"{self.kind}/{self.name}"

    def line(self, path=("metadata", "name")) -> int:
        """Line of the node at `path`, or of the deepest node that exists on the way."""
        _, deepest = node_at(self.node, path)
        return self.view.line_of((deepest or self.node).start)

    def path_line(self, path) -> int:
        """Line of what `path` names: the key for a mapping entry (`spec:`), the item for an index."""
        path = tuple(path)
        if not path:
            return self.line(("kind",))
        if isinstance(path[-1], str):
            return self.key_line(path[:-1], path[-1])
        return self.line(path)

    def key_line(self, path, key: str) -> int:
        """Line of the mapping key `key` inside the mapping at `path`."""
        parent, _ = node_at(self.node, path)
        k = key_node(parent, key)
        return self.view.line_of(k.start) if k is not None else self.line(path)


@dataclass
class ConfigDoc:
    """A structured config that is not a Kubernetes object: a plain YAML/JSON file, or a
    YAML/JSON file embedded in a ConfigMap/Secret (`owner`, `key`)."""

    file: str
    view: V.View
    node: JNode
    fmt: str
    owner: KubeObject | None = None
    key: str = ""

    def line(self, node: JNode) -> int:
        return self.view.line_of(node.start)

    @property
    def label(self) -> str:
        if self.owner is None:
            return self.file
        return f"{self.owner.ident} {self.key}"


@dataclass
class TreeModel:
    tree: Tree
    files: list[str]
    broken: set[str]
    objects: list[KubeObject] = field(default_factory=list)
    configs: list[ConfigDoc] = field(default_factory=list)
    problems: list[Finding] = field(default_factory=list)  # embedded configs that do not parse, broken objects
    _lines: list[ValueText] | None = None
    _broken_text: list[str] | None = None
    _broken_names: set[str] | None = None

    @classmethod
    def build(cls, tree: Tree, broken: set[str]) -> "TreeModel":
        model = cls(tree=tree, files=tree_files(tree), broken=set(broken))
        for rel in model.files:
            if rel in model.broken:
                continue
            try:
                if rel.endswith((".yaml", ".yml")):
                    model._add_yaml_file(rel)
                elif rel.endswith(".json"):
                    view, doc = tree.json_doc(rel)
                    model.configs.append(ConfigDoc(rel, view, doc, "json"))
            except TreeError:
                model.broken.add(rel)  # reported by the parse rule
        return model

    def _add_yaml_file(self, rel: str) -> None:
        view, docs = self.tree.yaml_docs(rel)
        for doc in docs:
            if doc is None or doc.kind != "map":
                continue
            api_version = scalar(map_get(doc, "apiVersion"))
            kind = scalar(map_get(doc, "kind"))
            if api_version and kind:
                data = to_data(doc)
                if kind == "List" and map_get(doc, "items") is not None and map_get(doc, "items").kind == "seq":
                    items = data.get("items") if isinstance(data, dict) else None
                    for i, item in enumerate(map_get(doc, "items").value):
                        idata = items[i] if isinstance(items, list) and i < len(items) else None
                        self._add_object(rel, view, item, idata)
                else:
                    self._add_object(rel, view, doc, data)
            elif (api_version or kind) and map_get(doc, "metadata") is not None:
                missing = "apiVersion" if kind else "kind"
                self.problems.append(Finding(rel, view.line_of(doc.start), ERROR, "schema",
                                             f"an object without {missing} (it has metadata:)",
                                             f"add {missing}: every Kubernetes object needs apiVersion and kind"))
            else:
                self.configs.append(ConfigDoc(rel, view, doc, "yaml"))

    def _add_object(self, rel: str, view: V.View, node: JNode, data) -> None:
        if node.kind != "map":
            return
        meta = map_get(node, "metadata")
        obj = KubeObject(rel, view, node, data if isinstance(data, dict) else {},
                         scalar(map_get(node, "apiVersion")) or "", scalar(map_get(node, "kind")) or "",
                         str(scalar(map_get(meta, "name")) or ""), str(scalar(map_get(meta, "namespace")) or ""))
        self.objects.append(obj)
        holders = {"ConfigMap": ("data",), "Secret": ("stringData",)}.get(obj.kind, ())
        for holder in holders:
            entries = map_get(node, holder)
            if entries is None or entries.kind != "map":
                continue
            for k, v in entries.value:
                fmt = EMBEDDED_SUFFIXES.get(os.path.splitext(str(k.value))[1].lower())
                if fmt is None or v.kind != "scalar" or not isinstance(v.value, str) or not v.value.strip():
                    continue
                self._add_embedded(obj, f"{holder}.{k.value}", view, v, fmt)

    def _add_embedded(self, obj: KubeObject, key: str, view: V.View, node: JNode, fmt: str) -> None:
        try:
            opener = getattr(_span_of(view, node, "yaml"), "opener", None)
            if opener is None:  # a folded block: no positions inside it
                return
            inner = opener()
            if fmt == "json":
                root = _parse_json_view(inner)
                self.configs.append(ConfigDoc(obj.file, inner, root, "json", obj, key))
            else:
                for root in parse_yaml_stream(inner):
                    if root is not None and root.kind in ("map", "seq"):
                        self.configs.append(ConfigDoc(obj.file, inner, root, "yaml", obj, key))
        except TreeError as exc:
            f, _, ln = (exc.where or obj.file).rpartition(":")
            line = int(ln) if ln.isdigit() else view.line_of(node.start)
            self.problems.append(Finding(obj.file, line, ERROR, "parse",
                                         f"{obj.ident} {key} does not parse: {exc.message}",
                                         "fix the embedded file; the program that reads it will refuse it too"))

    # ---- queries

    def use_lines(self, lines: list[ValueText]) -> None:
        """The value lines, when the caller already walked them."""
        self._lines = lines

    def lines(self) -> list[ValueText]:
        if self._lines is None:
            out = []
            for rel in self.files:
                if rel in self.broken:
                    continue
                try:
                    out.extend(value_texts(self.tree, rel))
                except (TreeError, UnicodeDecodeError):
                    continue
            self._lines = out
        return self._lines

    def of_kind(self, *kinds: str) -> Iterator[KubeObject]:
        return (o for o in self.objects if o.kind in kinds)

    # ---- what the files that do not parse may define (their own finding says they do not parse: the
    # objects they would define are not reported missing too)

    def _broken_texts(self) -> list[str]:
        if self._broken_text is None:
            out = []
            for rel in sorted(self.broken):
                try:
                    out.append(self.tree.file(rel).text)
                except (TreeError, UnicodeDecodeError):
                    continue
            self._broken_text = out
        return self._broken_text

    def maybe_defined(self, name: str) -> bool:
        """A file that does not parse has an object named `name`, or one whose operator creates it
        (`matrix-postgresql-li` for `matrix-postgresql-li-rw`)."""
        if self._broken_names is None:
            self._broken_names = {m.group(1) for text in self._broken_texts() for m in _NAME_LINE.finditer(text)}
        return any(name == n or name.startswith(n + "-") for n in self._broken_names)

    def broken_mentions(self, *words: str) -> bool:
        """Every word appears in one file that does not parse."""
        return any(all(w in text for w in words) for text in self._broken_texts())


def same_namespace(a: str, b: str) -> bool:
    """A manifest without a namespace goes to kubectl's current one: it matches any."""
    return not a or not b or a == b


# ---- pod specs inside workloads

POD_SPEC_PATHS = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}


def dig(data, path):
    for step in path:
        if isinstance(step, int):
            if not isinstance(data, list) or not 0 <= step < len(data):
                return None
        elif not isinstance(data, dict):
            return None
        data = data[step] if isinstance(step, int) else data.get(step)
    return data


def pod_spec(obj: KubeObject) -> tuple[tuple, dict] | None:
    path = POD_SPEC_PATHS.get(obj.kind)
    if path is None:
        return None
    spec = dig(obj.data, path)
    return (path, spec) if isinstance(spec, dict) else None


def containers(obj: KubeObject) -> Iterator[tuple[tuple, dict]]:
    """(path, container) of every container, init container and ephemeral container."""
    ps = pod_spec(obj)
    if ps is None:
        return
    path, spec = ps
    for group in ("initContainers", "containers", "ephemeralContainers"):
        items = spec.get(group)
        if isinstance(items, list):
            for i, c in enumerate(items):
                if isinstance(c, dict):
                    yield path + (group, i), c
