"""Walk every value of the tree (not comments): for placeholder tokens, stray domains, markers."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Iterator

from wizard.errors import TreeError
from wizard.locate.jsonspan import JNode
from wizard.locate.resolve import Tree
from wizard.files import TEMP_PREFIX

TEXT_SUFFIXES = (".yaml", ".yml", ".json", ".cfg", ".conf", ".sql", ".sh", ".env", ".txt", ".ini", ".toml")
_COMMENT_LINE = re.compile(r"^\s*(#|--|//|;)")
_TRAILING_COMMENT = re.compile(r"\s#.*$")


@dataclass(frozen=True)
class ValueText:
    file: str
    line: int
    text: str
    key: str = ""  # the YAML key path or "" when unknown


def tree_files(tree: Tree) -> list[str]:
    """Every file of the tree, relative to its root. A folder or file linked from inside the tree is followed
    when its real place is inside the tree too; one that leaves the tree is refused (OutsideTree, exit 2)."""
    from wizard.errors import OutsideTree

    out = []
    root = str(tree.root)
    real_root = os.path.realpath(root)
    seen = {real_root}

    def inside(path: str) -> bool:
        real = os.path.realpath(path)
        return real == real_root or real.startswith(real_root + os.sep)

    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        keep = []
        for d in sorted(dirnames):
            if d.startswith(".git"):
                continue
            full = os.path.join(dirpath, d)
            if os.path.islink(full):
                rel = os.path.relpath(full, root).replace(os.sep, "/")
                if not inside(full):
                    raise OutsideTree("points outside the tree (through a link); refused", where=rel,
                                      hint="replace the link by the folder itself")
                if os.path.realpath(full) in seen:
                    continue  # a link back into a folder already walked
            seen.add(os.path.realpath(full))
            keep.append(d)
        dirnames[:] = keep
        for name in sorted(filenames):
            if name.startswith(TEMP_PREFIX):
                continue
            rel = os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/")
            out.append(rel)
    return out


def value_texts(tree: Tree, rel: str) -> Iterator[ValueText]:
    if rel.endswith((".yaml", ".yml")):
        view, docs = tree.yaml_docs(rel)
        for doc in docs:
            if doc is not None:
                yield from _walk_yaml(view, doc, rel, "")
    elif rel.endswith(".json"):
        view, doc = tree.json_doc(rel)
        yield from _walk_json(view, doc, rel)
    elif rel.endswith(TEXT_SUFFIXES) or "." not in rel.rsplit("/", 1)[-1]:
        f = tree.file(rel)
        for i, line in enumerate(f.text.split("\n"), 1):
            if not _COMMENT_LINE.match(line):
                yield ValueText(rel, i, _TRAILING_COMMENT.sub("", line))


def _walk_yaml(view, node: JNode, rel: str, path: str) -> Iterator[ValueText]:
    if node.kind == "map":
        for k, v in node.value:
            yield from _walk_yaml(view, v, rel, f"{path}.{k.value}" if path else str(k.value))
    elif node.kind == "seq":
        for i, x in enumerate(node.value):
            yield from _walk_yaml(view, x, rel, f"{path}[{i}]")
    elif isinstance(node.value, str):
        if node.style in ("|", ">"):
            first = view.line_of(node.start) + 1
            for i, line in enumerate(node.value.split("\n")):
                if line and not _COMMENT_LINE.match(line):
                    yield ValueText(rel, first + i, _TRAILING_COMMENT.sub("", line), path)
        else:
            yield ValueText(rel, view.line_of(node.start), node.value, path)


def _walk_json(view, node: JNode, rel: str) -> Iterator[ValueText]:
    if node.kind == "map":
        for k, v in node.value:
            yield ValueText(rel, view.line_of(k.start), k.value)
            yield from _walk_json(view, v, rel)
    elif node.kind == "seq":
        for x in node.value:
            yield from _walk_json(view, x, rel)
    elif isinstance(node.value, str):
        yield ValueText(rel, view.line_of(node.start), node.value)


def holds_kube_or_homeserver(tree: Tree) -> bool:
    """A Kubernetes object (apiVersion and kind) or a homeserver config (a mapping with server_name, plain or
    under a ConfigMap key) somewhere in the tree; files that do not parse are skipped."""
    from wizard.locate.yamlspan import map_get, scalar

    for rel in tree_files(tree):
        if not rel.endswith((".yaml", ".yml")):
            continue
        try:
            _, docs = tree.yaml_docs(rel)
        except TreeError:
            continue
        for doc in docs:
            if doc is None or doc.kind != "map":
                continue
            if scalar(map_get(doc, "apiVersion")) and scalar(map_get(doc, "kind")):
                return True
            if map_get(doc, "server_name") is not None:
                return True
    return False


PREFLIGHT_WORD = "CHANGEME"


def preflight_hits(root) -> list[tuple[str, int, str]]:
    """What the tree's own pre-flight finds:
    `grep -rn CHANGEME ROOT --exclude-dir=docs --exclude-dir=.git --exclude='*.md' --exclude='*.sh'`
    (links below ROOT not followed, as grep -r does)."""
    out = []
    root = str(root)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in ("docs", ".git"))
        for name in sorted(filenames):
            if name.endswith((".md", ".sh")) or name.startswith(TEMP_PREFIX):
                continue
            path = os.path.join(dirpath, name)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            try:
                with open(path, "rb") as fh:
                    data = fh.read()
            except OSError:
                continue
            if PREFLIGHT_WORD.encode() not in data:
                continue
            rel = os.path.relpath(path, root).replace(os.sep, "/")
            text = data.decode("utf-8", "replace")
            for i, line in enumerate(text.split("\n"), 1):
                if PREFLIGHT_WORD in line:
                    out.append((rel, i, line.rstrip("\r")))
    return out
