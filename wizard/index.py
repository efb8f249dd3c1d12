"""The tree read once: every file, which are manifests, which do not parse, and the Kubernetes objects.

A manifest is a YAML or JSON file (and a plain file the catalog names, like haproxy.cfg): the only kind
of file the wizard edits. Shell scripts, docs and READMEs are read for tokens (notes) and never edited.
A manifest that does not parse is recorded with its file:line and blocks only what is in it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from wizard.errors import OutsideTree, TreeError
from wizard.locate import views as V
from wizard.locate.jsonspan import JNode
from wizard.locate.resolve import Tree
from wizard.locate.yamlspan import map_get, scalar, to_data

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass
class Obj:
    """A Kubernetes object: a YAML document with apiVersion and kind."""

    file: str
    view: V.View
    node: JNode
    kind: str
    name: str
    api_version: str

    @property
    def address(self) -> str:
        return f"{self.file} › {self.kind}/{self.name}"

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.file, self.kind, self.name)

    @cached_property
    def data(self) -> dict:
        d = to_data(self.node)
        return d if isinstance(d, dict) else {}

    def line(self) -> int:
        return self.view.line_of(self.node.start)


@dataclass
class TreeIndex:
    tree: Tree
    files: list[str]
    manifests: list[str]
    broken: dict[str, TreeError] = field(default_factory=dict)
    objects: list[Obj] = field(default_factory=list)

    @classmethod
    def build(cls, tree: Tree, extra_manifests=()) -> "TreeIndex":
        from wizard.scan import tree_files

        files = tree_files(tree)
        extra = set(extra_manifests)
        manifests = [f for f in files if f.endswith(MANIFEST_SUFFIXES) or f in extra]
        index = cls(tree, files, manifests)
        for rel in manifests:
            try:
                if rel.endswith((".yaml", ".yml")):
                    view, docs = tree.yaml_docs(rel)
                    for doc in docs:
                        index._add(rel, view, doc)
                elif rel.endswith(".json"):
                    tree.json_doc(rel)
                else:
                    tree.file(rel)
            except OutsideTree:
                raise  # a link out of the tree is refused outright, never a leftover
            except TreeError as exc:
                index.broken[rel] = exc
        return index

    def _add(self, rel: str, view: V.View, doc: JNode | None) -> None:
        if doc is None or doc.kind != "map":
            return
        api, kind = scalar(map_get(doc, "apiVersion")), scalar(map_get(doc, "kind"))
        if not (api and kind):
            return
        if kind == "List" and map_get(doc, "items") is not None and map_get(doc, "items").kind == "seq":
            for item in map_get(doc, "items").value:
                self._add(rel, view, item)
            return
        name = scalar(map_get(map_get(doc, "metadata"), "name")) or ""
        self.objects.append(Obj(rel, view, doc, kind, str(name), api))

    # ---- queries

    @cached_property
    def by_kind(self) -> dict[str, list[Obj]]:
        out: dict[str, list[Obj]] = {}
        for o in self.objects:
            out.setdefault(o.kind, []).append(o)
        return out

    def of_kind(self, kind: str) -> list[Obj]:
        return self.by_kind.get(kind, [])

    def named(self, kind: str, name: str) -> list[Obj]:
        return [o for o in self.of_kind(kind) if o.name == name]

    def in_file(self, rel: str, kind: str, name: str) -> list[Obj]:
        return [o for o in self.of_kind(kind) if o.file == rel and o.name == name]

    def where(self, rel: str) -> str:
        exc = self.broken.get(rel)
        return (exc.where or rel) if exc else rel

    @cached_property
    def plain_docs(self) -> list[tuple[str, V.View, JNode]]:
        """YAML documents that are not Kubernetes objects (Helm values, plain configs), in files that parse."""
        out = []
        for rel in self.manifests:
            if rel in self.broken or not rel.endswith((".yaml", ".yml")):
                continue
            view, docs = self.tree.yaml_docs(rel)
            for doc in docs:
                if doc is not None and doc.kind == "map" and not (scalar(map_get(doc, "apiVersion"))
                                                                  and scalar(map_get(doc, "kind"))):
                    out.append((rel, view, doc))
        return out
