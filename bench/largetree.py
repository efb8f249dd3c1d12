"""Build the bench's large tree: the bundled layout, each manifest carrying FACTOR times its objects.

Every Kubernetes object (a document with `kind` and `metadata.name`) is appended FACTOR-1 more
times, renamed `<name>-copyN` by a text splice of the name scalar, so the catalog's `Kind/name`
locations stay unique and still point at the original objects. Copies keep their text (comments,
placeholder tokens, embedded files) byte for byte apart from the name. Files that hold no
Kubernetes object (plain homeserver.yaml, Helm values, JSON, haproxy.cfg) are copied as they are.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import yaml

_DOC_START = re.compile(r"^---(?:[ \t]|\r?$)")


def split_documents(text: str) -> list[str]:
    """Chunks of `text` that each start at a `---` line (the first one at the file start)."""
    lines = text.splitlines(keepends=True)
    chunks: list[list[str]] = [[]]
    for line in lines:
        if _DOC_START.match(line) and chunks[-1]:
            chunks.append([])
        chunks[-1].append(line)
    return ["".join(c) for c in chunks if c]


def _name_span(chunk: str) -> tuple[int, int, str] | None:
    """(start, end, style) of the metadata.name scalar of the object in `chunk`, if any."""
    try:
        node = yaml.compose(chunk, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    if not isinstance(node, yaml.MappingNode):
        return None
    top = {k.value: v for k, v in node.value if isinstance(k, yaml.ScalarNode)}
    meta = top.get("metadata")
    if "kind" not in top or not isinstance(meta, yaml.MappingNode):
        return None
    for k, v in meta.value:
        if isinstance(k, yaml.ScalarNode) and k.value == "name" and isinstance(v, yaml.ScalarNode):
            return v.start_mark.index, v.end_mark.index, v.style or ""
    return None


def renamed_copy(chunk: str, suffix: str) -> str | None:
    """`chunk` with its object's metadata.name suffixed, or None when it holds no named object."""
    span = _name_span(chunk)
    if span is None:
        return None
    start, end, style = span
    cut = end - 1 if style in ('"', "'") else end
    return chunk[:cut] + suffix + chunk[cut:]


def grow_manifest(text: str, factor: int) -> tuple[str, int]:
    """(new text, number of objects copied per round) for one manifest file."""
    newline = "\r\n" if "\r\n" in text else "\n"
    chunks = split_documents(text)
    named = [c for c in chunks if _name_span(c) is not None]
    if factor <= 1 or not named:
        return text, 0
    out = [text if text.endswith(("\n", "\r")) else text + newline]
    for i in range(1, factor):
        for chunk in named:
            copy = renamed_copy(chunk, f"-copy{i}")
            if not _DOC_START.match(copy):
                copy = "---" + newline + copy
            if not copy.endswith(("\n", "\r")):
                copy += newline
            out.append(copy)
    return "".join(out), len(named)


def build(src: Path, dst: Path, factor: int) -> dict:
    """Copy tree `src` to `dst` (which must not exist) with every manifest grown `factor` times."""
    shutil.copytree(src, dst)
    objects = files_grown = 0
    for path in sorted(dst.rglob("*")):
        if not path.is_file() or path.suffix not in (".yaml", ".yml"):
            continue
        text = path.read_bytes().decode("utf-8")
        grown, n = grow_manifest(text, factor)
        if n:
            mode = path.stat().st_mode
            path.write_bytes(grown.encode("utf-8"))
            os.chmod(path, mode)
            objects += n
            files_grown += 1
    return {"factor": factor, "files_grown": files_grown, "objects_per_copy": objects,
            "bytes": tree_bytes(dst), "bytes_bundled": tree_bytes(src)}


def tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
