"""/.well-known/matrix/{server,client}: delegating the server name to the Matrix host. The files live
outside the tree (the operator's web server serves them); they are planned, backed up and undone
like the tree's files."""
from __future__ import annotations

import json
from pathlib import Path

from wizard.errors import AnswersError


def needs_delegation(answers) -> bool:
    return answers.server_name != answers.domains["matrix"]


def documents(answers) -> dict[str, str]:
    from wizard.catalog import well_known_documents

    return {name: json.dumps(doc, indent=2) + "\n" for name, doc in well_known_documents(answers.domains["matrix"]).items()}


def paths(answers) -> dict[str, Path]:
    base = Path(answers.well_known_dir) / ".well-known" / "matrix"
    return {name: base / name for name in ("server", "client")}


def folder(answers) -> Path:
    return Path(answers.well_known_dir) / ".well-known" / "matrix"


def planned(answers) -> dict[str, tuple[bytes | None, bytes]]:
    """{path: (current bytes or None, wanted bytes)} for the files to write; empty when not configured.
    A folder inside the deployment tree is refused (exit 2)."""
    if answers.well_known_dir is None or not needs_delegation(answers):
        return {}
    root = Path(answers.well_known_dir).resolve()
    tree = Path(answers.deployment).resolve()
    if root == tree or tree in root.parents:
        raise AnswersError(f"{answers.well_known_dir} is inside the deployment tree", where="well_known_dir")
    docs = documents(answers)
    out = {}
    for name, path in paths(answers).items():
        try:
            current = path.read_bytes() if path.is_file() else None
        except OSError:
            current = None
        out[str(path)] = (current, docs[name].encode("utf-8"))
    return out


def state(answers) -> tuple[bool, str]:
    """(written as wanted, what is wrong) for the checklist."""
    docs = documents(answers)
    for name, path in paths(answers).items():
        try:
            if path.read_text(encoding="utf-8") != docs[name]:
                return False, f"{path} does not delegate to {answers.domains['matrix']}"
        except OSError:
            return False, f"{path} is missing"
    return True, ""
