"""Write an answers file: commented YAML in the schema's order (wizard.catalog.answers), holding no secret.

Order, comments and the commented examples of absent keys all come from the schema. Operator secrets
appear only as references (`env:NAME`, `file:PATH`); generated secrets never appear at all (they live in
the secrets file). The text is written atomically. `example_text()` is answers.example.yaml: every key
documented, a valid answers file that configures the bundled templates.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import yaml

from wizard.answers import AnswersErrors, derive, unknown_keys
from wizard.catalog import answers as S
from wizard.errors import AnswersError

COMMENT_COLUMN = 36
EXAMPLE_NAME = "answers.example.yaml"


def _is_reference(value) -> bool:
    return isinstance(value, str) and (value.startswith("env:") or value.startswith("file:")) and len(value) > 5


def _scalar(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_scalar(str(k))}: {_scalar(v)}" for k, v in value.items()) + "}"
    text = str(value)
    if re.fullmatch(r"[A-Za-z0-9_./@+-][A-Za-z0-9_./@+:-]*", text) and not text.endswith(":") \
            and yaml.safe_load(text) == text:
        return text
    # A JSON string is a YAML double-quoted scalar.
    return json.dumps(text, ensure_ascii=False)


def _line(indent: int, key: str, value: str | None, comment: str, commented_at: int | None = None) -> list[str]:
    """`key: value  # comment`; commented out with its `#` at column `commented_at` (uncommenting a block is
    removing "# " from each of its lines)."""
    lead = " " * indent if commented_at is None else " " * commented_at + "# " + " " * (indent - commented_at)
    head = lead + f"{key}:" + (f" {value}" if value is not None else "")
    if not comment:
        return [head]
    first, *more = comment.split("\n")
    pad = max(COMMENT_COLUMN - len(head), 1)
    return [head + " " * pad + "# " + first] + [" " * max(COMMENT_COLUMN, len(head) + pad) + "#   " + m for m in more]


def check_no_secret(data: dict) -> None:
    """Refuse a value in clear where the contract wants a reference (every such key named)."""
    problems = []
    for k in S.leaves():
        if not k.secret:
            continue
        node = data
        for part in k.key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node not in (None, "") and not _is_reference(node):
            problems.append(AnswersError("secrets are not written in clear into the answers file: use env:NAME or "
                                         "file:PATH", where=k.key))
    if problems:
        raise AnswersErrors(problems)


def _shape_problems(data: dict) -> list[AnswersError]:
    """Unknown keys and sections that are not mappings (as the loader says them), and mappings where one
    value belongs."""
    problems = unknown_keys(data)
    for k in S.leaves():
        node = data
        for part in k.key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and k.type not in S.MAPPINGS:
            problems.append(AnswersError("expected a single value, not a mapping", where=k.key))
        elif node is not None and k.type in S.MAPPINGS and not isinstance(node, dict):
            problems.append(AnswersError("expected a mapping", where=k.key))
    return problems


def _example_value(k: S.Key, server_name: str):
    if isinstance(k.example, S.Derived):
        return derive(k.example, {s: server_name for s in k.example.sources}.get)
    if k.example is None and isinstance(k.default, S.Derived) and k.default.sources:
        return derive(k.default, {s: server_name for s in k.default.sources}.get)
    return k.example


def _has_example(k: S.Key) -> bool:
    if k.type == S.SECTION:
        return any(_has_example(c) for c in S.children(k.key))
    return k.example is not None or (isinstance(k.default, S.Derived) and bool(k.default.sources))


def render_answers(data: dict, *, header: str = "", checklist_titles: dict[str, str] | None = None,
                   examples: bool = True) -> str:
    """The answers file text for `data` (keys of the schema only; no secret). With `examples`, an absent
    key that has an example is shown commented out."""
    if not isinstance(data, dict):
        raise AnswersError("the answers must be a mapping")
    problems = _shape_problems(data)
    if problems:
        raise AnswersErrors(problems)
    check_no_secret(data)
    server_name = data.get("server_name") if isinstance(data.get("server_name"), str) else S.EXAMPLE_SERVER
    out: list[str] = [f"# {line}".rstrip() for line in header.splitlines()]

    def comment_of(k: S.Key) -> str:
        return k.comment.replace("{server_name}", server_name)

    def emit_example(k: S.Key, indent: int, at: int) -> None:
        if k.type == S.SECTION:
            out.extend(_line(indent, k.name, None, comment_of(k), at))
            for c in S.children(k.key):
                if _has_example(c):
                    emit_example(c, indent + 2, at)
            return
        value = _example_value(k, server_name)
        if isinstance(value, dict) and value:
            out.extend(_line(indent, k.name, None, comment_of(k), at))
            for entry, v in value.items():
                out.extend(_line(indent + 2, _scalar(str(entry)), _scalar(v), "", at))
            return
        out.extend(_line(indent, k.name, _scalar(value), comment_of(k), at))

    def emit(parent: str | None, node: dict, indent: int) -> None:
        last_was_section = False
        for k in S.children(parent):
            value = node.get(k.name)
            present = value is not None
            shown = present or (examples and _has_example(k))
            if not shown:
                continue
            if indent == 0 and out and out[-1] != "" and (k.type == S.SECTION or last_was_section):
                out.append("")
            last_was_section = k.type == S.SECTION
            if not present:
                emit_example(k, indent, indent)
                continue
            if k.type == S.SECTION:
                out.extend(_line(indent, k.name, None, comment_of(k)))
                emit(k.key, value, indent + 2)
            elif k.type in S.MAPPINGS:
                if not value:
                    out.extend(_line(indent, k.name, "{}", comment_of(k)))
                    continue
                out.extend(_line(indent, k.name, None, comment_of(k)))
                entries = sorted(value) if k.type == S.FLAGS else list(value)
                for entry in entries:
                    note = (checklist_titles or {}).get(entry, "") if k.type == S.FLAGS else ""
                    out.extend(_line(indent + 2, _scalar(str(entry)), _scalar(value[entry]), note))
            else:
                out.extend(_line(indent, k.name, _scalar(value), comment_of(k)))

    emit(None, data, 0)
    text = "\n".join(out) + "\n"
    if normalise(yaml.safe_load(text)) != normalise(data):  # the text must say exactly what was asked
        raise AnswersError("internal error: the rendered answers file does not read back the same")
    return text


def normalise(node):
    if isinstance(node, dict):
        return {str(k): normalise(v) for k, v in node.items()
                if v is not None and not (isinstance(v, dict) and not v and not _mapping_key(str(k)))}
    if isinstance(node, (list, tuple)):
        return [normalise(v) for v in node]
    return node


def _mapping_key(name: str) -> bool:
    return any(k.name == name and k.type in S.MAPPINGS for k in S.SCHEMA)


def save_answers(path: Path, data: dict, *, header: str = "", checklist_titles: dict[str, str] | None = None) -> str:
    """Render and write atomically; returns the text written."""
    from wizard.files import atomic_write

    text = render_answers(data, header=header, checklist_titles=checklist_titles)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, text.encode("utf-8"))
    return text


# ---------------------------------------------------------------- answers.example.yaml

def example_data() -> dict:
    """The example answers: every key the schema marks `in_example`, with its example (or derived) value."""
    data: dict = {}
    server_name = next(k.example for k in S.SCHEMA if k.required and k.type == S.DOMAIN)
    for k in S.leaves():
        if not k.in_example:
            continue
        value = _example_value(k, server_name)
        if value is None:
            value = k.default
        node = data
        for part in k.key.split(".")[:-1]:
            node = node.setdefault(part, {})
        node[k.name] = value
    return data


def example_text(name: str = EXAMPLE_NAME) -> str:
    """answers.example.yaml (under `name`): every key with its comment, absent ones as commented examples;
    itself a valid answers file that configures the bundled templates."""
    stem = name[:-5] if name.endswith(".yaml") else name
    header = (f"Answers for `wizard --answers {name}`: configures the bundled templates.\n"
              "Safe to commit: no secret is written here. Generated secrets go to the secrets file\n"
              f"({stem}.secrets.yaml beside this file, mode 0600, git-ignored).\n"
              "Only version and server_name are required; a commented-out key shows what it may say.")
    return render_answers(example_data(), header=header)


def write_example(folder: Path, name: str = EXAMPLE_NAME, *, overwrite: bool = False) -> Path | None:
    """Write the example answers file into `folder` (e.g. beside a tree `wizard init` made); returns its path,
    or None when a file of that name is there already (an operator's edits are never replaced)."""
    from wizard.files import atomic_write

    path = Path(folder) / name
    if not overwrite and path.exists():
        return None
    atomic_write(path, example_text(name).encode("utf-8"))
    return path


if __name__ == "__main__":  # python -m wizard.answers_file > answers.example.yaml
    sys.stdout.write(example_text())
