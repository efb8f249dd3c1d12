"""The secrets file: generated secrets, operator-provided ids, retired signing keys, rotations in
progress and where tokens were placed.

Whole or refused: a file that does not end with END_LINE (cut short), an empty file, a duplicate key
at any level, a dangling link or anything but a regular file is refused (exit 2) and never taken as
"no secrets". Only a file that does not exist means a first run. A link to a regular file is written
through, never replaced. The file is written only if it still holds what was read (no lost update).
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from wizard.catalog import is_block_id, is_known_id, required_store_ids
from wizard.errors import SecretsError
from wizard.locate.views import escape_yaml_double

HEADER = "# wizard secrets: never commit, never share\n"
END_LINE = "# end of wizard secrets"
VERSION = 2
_TOP_KEYS = ("version", "secrets", "old_signing_keys", "provided", "rotating", "verified", "placed")


@dataclass
class SecretStore:
    path: Path | None
    values: dict[str, str] = field(default_factory=dict)
    provided: set[str] = field(default_factory=set)
    old_signing_keys: dict[str, dict] = field(default_factory=dict)
    exists: bool = False
    raw: bytes = b""  # the bytes read: the file is written only while it still holds them
    rotating: dict[str, str] = field(default_factory=dict)  # id -> the new value of a rotation in progress
    verified: dict[str, str] = field(default_factory=dict)  # id -> fingerprint of a derived value checked
    placed: dict[str, list[str]] = field(default_factory=dict)  # id -> locations found by a token
    upgraded_from: int | None = None  # 1: read from a version 1 file (rewritten as version 2 when written)

    def copy(self) -> "SecretStore":
        return SecretStore(self.path, dict(self.values), set(self.provided),
                           {k: dict(v) for k, v in self.old_signing_keys.items()}, self.exists, self.raw,
                           dict(self.rotating), dict(self.verified), {k: list(v) for k, v in self.placed.items()},
                           self.upgraded_from)

    def dump(self) -> str:
        lines = [HEADER, f"version: {VERSION}\n", "secrets:\n"]
        for key in sorted(self.values):
            lines.append(f"  {_key(key)}: {_quote(self.values[key])}\n")
        if self.old_signing_keys:
            lines.append("old_signing_keys:\n")
            for kid in sorted(self.old_signing_keys):
                entry = self.old_signing_keys[kid]
                lines.append(f"  {_quote(kid)}: {{key: {_quote(entry['key'])}, "
                             f"expired_ts: {int(entry['expired_ts'])}}}\n")
        if self.provided:
            lines.append("provided: [" + ", ".join(_key(p) for p in sorted(self.provided)) + "]\n")
        if self.rotating:
            lines.append("rotating:  # a rotation in progress: re-run it to finish with these values\n")
            for key in sorted(self.rotating):
                lines.append(f"  {_key(key)}: {_quote(self.rotating[key])}\n")
        if self.verified:
            lines.append("verified:  # fingerprints of derived values already checked (saves bcrypt time)\n")
            for key in sorted(self.verified):
                lines.append(f"  {_key(key)}: {_quote(self.verified[key])}\n")
        if self.placed:
            lines.append("placed:  # locations found by a placeholder token, kept once the token is gone\n")
            for key in sorted(self.placed):
                lines.append(f"  {_key(key)}: [" + ", ".join(_quote(p) for p in self.placed[key]) + "]\n")
        lines.append(END_LINE + "\n")
        return "".join(lines)


def _quote(value: str) -> str:
    """A YAML double-quoted scalar that reads back as exactly `value` (line breaks of every kind escaped)."""
    return '"' + escape_yaml_double(value, "secrets file") + '"'


def _key(key: str) -> str:
    import re

    return key if re.fullmatch(r"[a-z][a-z0-9_]*(\.[a-z0-9_]+)*", key) else _quote(key)


# ---------------------------------------------------------------- reading

class _StrictLoader(yaml.SafeLoader):
    """Duplicate keys at any level are an error (a second `secrets:` block must not hide the first)."""


def _no_duplicates(loader, node, deep=False):
    seen: dict = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            dup = key in seen
        except TypeError:
            dup = False
        if dup:
            raise SecretsError(f"duplicate key {key!r} (first at line {seen[key]})",
                               where=f"line {key_node.start_mark.line + 1}")
        try:
            seen[key] = key_node.start_mark.line + 1
        except TypeError:
            pass
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def check_permissions(path: Path) -> None:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretsError(f"{path} is readable by group or others (mode {stat.S_IMODE(mode):04o})",
                           hint=f"chmod 600 {path}")


def store_target(path: Path) -> Path:
    """The regular file a secrets-file path stands for (a link is followed, never replaced)."""
    path = Path(path)
    if path.is_symlink():
        target = path.resolve()
        if not target.exists():
            raise SecretsError("the secrets file is a link that points nowhere", where=str(path),
                               hint="restore the file it points to, or remove the link")
        return target
    return path


def load_store(path: Path | None) -> SecretStore:
    """The secrets file at `path`. Only a path that does not exist at all (no file, no link) is a first run."""
    if path is None:
        return SecretStore(None)
    path = Path(path)
    if not os.path.lexists(path):
        return SecretStore(path)
    target = store_target(path)
    try:
        st = os.stat(target)
    except OSError as exc:
        raise SecretsError(f"cannot read the secrets file: {exc.strerror}", where=str(path)) from None
    if not stat.S_ISREG(st.st_mode):
        raise SecretsError("the secrets file is not a regular file", where=str(path))
    check_permissions(target)
    try:
        raw = target.read_bytes()
    except OSError as exc:
        raise SecretsError(f"cannot read the secrets file: {exc.strerror}", where=str(path)) from None
    return parse_store(path, raw)


def parse_store(path: Path, raw: bytes) -> SecretStore:
    where = str(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretsError("the secrets file is not UTF-8 text", where=where) from None
    if not text.strip():
        raise SecretsError("the secrets file is empty (an empty file is not \"no secrets\")", where=where,
                           hint="restore it from a backup (.wizard-backups/) or delete it to start over")
    lines = text.rstrip("\n \t\r").split("\n")
    complete = lines[-1].rstrip("\r") == END_LINE
    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except SecretsError as exc:
        exc.where = f"{path}:{exc.where.split()[-1]}" if exc.where else where
        raise
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise SecretsError("the secrets file is not valid YAML",
                           where=f"{path}:{mark.line + 1}" if mark else where) from None
    if not isinstance(data, dict):
        raise SecretsError("the secrets file must be a mapping", where=where)
    version = data.get("version")
    if complete and version != VERSION:
        raise SecretsError(f"unsupported version {version!r} (expected {VERSION})", where=where)
    if not complete:
        if version in (None, 1):
            return _upgrade_v1(path, raw, data)
        raise SecretsError(f"the secrets file does not end with {END_LINE!r}: it was cut short", where=where,
                           hint="restore it from a backup (.wizard-backups/); the wizard never guesses missing "
                                "secrets")
    extra = sorted(set(map(str, data)) - set(_TOP_KEYS))
    if extra:
        raise SecretsError(f"unknown key {extra[0]!r}", where=where)
    store = SecretStore(path, exists=True, raw=raw)
    store.values = _secrets(data.get("secrets"), where)
    store.provided = _id_list(data.get("provided"), "provided", where)
    store.old_signing_keys = _old_keys(data.get("old_signing_keys"), where)
    rotating = data.get("rotating") or {}
    if not isinstance(rotating, dict):
        raise SecretsError("`rotating` must map ids to their new values", where=where)
    store.rotating = _values(rotating, "rotating", where)
    verified = data.get("verified") or {}
    if not isinstance(verified, dict) or not all(isinstance(v, str) for v in verified.values()):
        raise SecretsError("`verified` must map ids to fingerprints", where=where)
    store.verified = {str(k): v for k, v in verified.items()}
    placed = data.get("placed") or {}
    if not isinstance(placed, dict) or not all(isinstance(v, list) and all(isinstance(x, str) for x in v)
                                               for v in placed.values()):
        raise SecretsError("`placed` must map ids to lists of locations", where=where)
    for key in placed:
        if not is_known_id(str(key)):
            raise SecretsError(f"unknown secret id {key!r} in `placed`", where=where)
    store.placed = {str(k): list(v) for k, v in placed.items()}
    return store


def _upgrade_v1(path: Path, raw: bytes, data: dict) -> SecretStore:
    """A version 1 file has no end line: accepted only when it holds every generated id (else it may be
    cut short); its `rotating: [ids]` becomes `{id: value}` from `secrets:`."""
    where = str(path)
    extra = sorted(set(map(str, data)) - {"version", "secrets", "old_signing_keys", "provided", "rotating",
                                          "verified"})
    if extra:
        raise SecretsError(f"unknown key {extra[0]!r}", where=where)
    values = _secrets(data.get("secrets"), where)
    missing = [i for i in required_store_ids() if i not in values]
    if missing:
        raise SecretsError(f"the secrets file has no {END_LINE!r} line and lacks {', '.join(missing[:3])}"
                           f"{' …' if len(missing) > 3 else ''}: it may be cut short", where=where,
                           hint="restore it from a backup (.wizard-backups/); the wizard never guesses missing "
                                "secrets")
    rotating_ids = _id_list(data.get("rotating"), "rotating", where)
    verified = data.get("verified") or {}
    if not isinstance(verified, dict):
        raise SecretsError("`verified` must map ids to fingerprints", where=where)
    return SecretStore(path, values, _id_list(data.get("provided"), "provided", where),
                       _old_keys(data.get("old_signing_keys"), where), True, raw,
                       {i: values[i] for i in rotating_ids if i in values},
                       {str(k): str(v) for k, v in verified.items()}, {}, upgraded_from=1)


def _values(mapping, label: str, where: str) -> dict[str, str]:
    out = {}
    for key, value in mapping.items():
        key = str(key)
        if not is_known_id(key):
            raise SecretsError(f"unknown secret id {key!r} in `{label}`", where=where)
        if not isinstance(value, str) or not value:
            raise SecretsError(f"the value of {key} in `{label}` must be non-empty text", where=where)
        # whole-block values (keys, PEM, htpasswd) are kept without their final line break
        out[key] = value.rstrip("\n") if is_block_id(key) else value
    return out


def _secrets(secrets, where: str) -> dict[str, str]:
    if secrets is None:
        return {}
    if not isinstance(secrets, dict):
        raise SecretsError("`secrets` must be a mapping of id to value", where=where)
    return _values(secrets, "secrets", where)


def _id_list(items, label: str, where: str) -> set[str]:
    items = items or []
    if not isinstance(items, list) or any(not isinstance(p, str) or not is_known_id(p) for p in items):
        raise SecretsError(f"`{label}` must list secret ids", where=where)
    return set(items)


def _old_keys(old, where: str) -> dict[str, dict]:
    old = old or {}
    if not isinstance(old, dict):
        raise SecretsError("`old_signing_keys` must be a mapping", where=where)
    for kid, entry in old.items():
        if not (isinstance(kid, str) and kid.startswith("ed25519:") and isinstance(entry, dict)
                and isinstance(entry.get("key"), str) and isinstance(entry.get("expired_ts"), int)
                and not isinstance(entry.get("expired_ts"), bool)):
            raise SecretsError(f"old_signing_keys entry {kid!r} must be \"ed25519:ID\": {{key: …, expired_ts: ms}}",
                               where=where)
    return {k: dict(v) for k, v in old.items()}


# ---------------------------------------------------------------- writing

def write_store(store: SecretStore) -> bool:
    """Write the secrets file atomically with mode 0600, through a link, and only while it still holds
    what was read (another run may have changed it: exit 2, re-run). Returns False when unchanged."""
    from wizard.files import atomic_write

    assert store.path is not None
    data = store.dump().encode("utf-8")
    if store.exists and data == store.raw:
        return False
    verify_unchanged(store)
    target = store_target(store.path)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, data, mode=0o600)
    store.raw = data
    store.exists = True
    store.upgraded_from = None
    return True


def verify_unchanged(store: SecretStore) -> None:
    """The secrets file still holds what was read (or is still absent)."""
    assert store.path is not None
    path = Path(store.path)
    if not store.exists:
        if os.path.lexists(path):
            raise SecretsError("the secrets file appeared since it was read (another run?)", where=str(path),
                               hint="re-run the command")
        return
    try:
        current = store_target(path).read_bytes()
    except (OSError, SecretsError):
        current = None
    if current != store.raw:
        raise SecretsError("the secrets file changed since it was read (another run?); nothing was written",
                           where=str(path), hint="re-run the command")
