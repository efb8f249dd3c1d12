"""empty-directory: a folder of the tree with no file in it (or only .gitkeep)."""
from __future__ import annotations

import os
from typing import Iterator

from wizard.rules.finding import WARNING, Finding
from wizard.rules.model import TreeModel
from wizard.files import TEMP_PREFIX

PLACEHOLDER_FILES = {".gitkeep", ".keep"}


def empty_directory(model: TreeModel, ctx) -> Iterator[Finding]:
    root = str(model.tree.root)
    empty: set[str] = set()
    # bottom-up: a folder is empty when it holds no real file and every sub-folder is empty
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        rel = os.path.relpath(dirpath, root).replace(os.sep, "/")
        if rel == "." or any(part.startswith(".git") for part in rel.split("/")):
            continue
        files = [f for f in filenames if f not in PLACEHOLDER_FILES and not f.startswith(TEMP_PREFIX)]
        subs = [f"{rel}/{d}" for d in dirnames if not d.startswith(".git")]
        if not files and all(s in empty for s in subs):
            empty.add(rel)
    for rel in sorted(empty):
        parent = rel.rpartition("/")[0]
        if parent in empty:
            continue  # reported once, at the top-most empty folder
        yield Finding(rel + "/", 0, WARNING, "empty-directory",
                      "empty directory: a component that should be here is missing, and "
                      "`kubectl apply -f` on it fails with \"no objects passed to apply\"",
                      "add the manifests that belong here, or delete the directory")
