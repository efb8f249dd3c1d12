"""The secrets file: generated secrets, operator-provided ids, retired signing keys."""
from __future__ import annotations

import json
import stat
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from wizard.catalog import SECRET_BY_ID
from wizard.errors import SecretsError

HEADER = "# wizard secrets: never commit, never share\n"
BLOCK_IDS = {"synapse.signing_key", "key_vault.rsa_private_key", "li.admin_htpasswd", "push.apns.key",
             "push.fcm.service_account"}


@dataclass
class SecretStore:
    path: Path | None
    values: dict[str, str] = field(default_factory=dict)
    provided: set[str] = field(default_factory=set)
    old_signing_keys: dict[str, dict] = field(default_factory=dict)
    exists: bool = False
    raw: bytes = b""
    rotating: set[str] = field(default_factory=set)  # rotations written here but maybe not yet to the tree
    verified: dict[str, str] = field(default_factory=dict)  # id -> fingerprint of a derived value checked

    def copy(self) -> "SecretStore":
        return SecretStore(self.path, dict(self.values), set(self.provided),
                           {k: dict(v) for k, v in self.old_signing_keys.items()}, self.exists, self.raw,
                           set(self.rotating), dict(self.verified))

    def dump(self) -> str:
        lines = [HEADER, "version: 1\n", "secrets:\n"]
        for key in sorted(self.values):
            lines.append(f"  {key}: {_quote(self.values[key])}\n")
        if self.provided:
            lines.append("provided: [" + ", ".join(sorted(self.provided)) + "]\n")
        if self.rotating:
            lines.append("rotating: [" + ", ".join(sorted(self.rotating)) + "]  # unfinished: re-run the rotation\n")
        if self.verified:
            lines.append("verified:  # fingerprints of derived values already checked (saves bcrypt time)\n")
            for key in sorted(self.verified):
                lines.append(f"  {key}: {_quote(self.verified[key])}\n")
        if self.old_signing_keys:
            lines.append("old_signing_keys:\n")
            for kid in sorted(self.old_signing_keys):
                entry = self.old_signing_keys[kid]
                lines.append(f"  {_quote(kid)}: {{key: {_quote(entry['key'])}, expired_ts: {int(entry['expired_ts'])}}}\n")
        return "".join(lines)


def _quote(value: str) -> str:
    # JSON strings are YAML double-quoted scalars; keep non-ASCII raw so no surrogate escapes appear.
    return json.dumps(value, ensure_ascii=False)


def check_permissions(path: Path) -> None:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretsError(f"{path} is readable by group or others (mode {stat.S_IMODE(mode):04o})",
                           hint=f"chmod 600 {path}")


def load_store(path: Path | None) -> SecretStore:
    if path is None:
        return SecretStore(None)
    path = Path(path)
    if not path.exists():
        return SecretStore(path)
    check_permissions(path)
    raw = path.read_bytes()
    try:
        data = yaml.safe_load(raw.decode("utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise SecretsError("the secrets file is not valid YAML", where=where) from None
    if not isinstance(data, dict):
        raise SecretsError("expected a mapping", where=str(path))
    extra = set(data) - {"version", "secrets", "provided", "old_signing_keys", "rotating", "verified"}
    if extra:
        raise SecretsError(f"unknown key {sorted(extra)[0]!r}", where=str(path))
    if data.get("version", 1) != 1:
        raise SecretsError(f"unsupported version {data.get('version')!r}", where=str(path))
    secrets = data.get("secrets") or {}
    if not isinstance(secrets, dict):
        raise SecretsError("`secrets` must be a mapping of id to value", where=str(path))
    values = {}
    for key, value in secrets.items():
        if key not in SECRET_BY_ID:
            raise SecretsError(f"unknown secret id {key!r}", where=str(path))
        if not isinstance(value, str) or not value:
            raise SecretsError(f"the value of {key} must be non-empty text", where=str(path))
        # whole-block values (keys, PEM, htpasswd) are kept without their final line break
        values[key] = value.rstrip("\n") if key in BLOCK_IDS else value
    provided = data.get("provided") or []
    if not isinstance(provided, list) or any(p not in SECRET_BY_ID for p in provided):
        raise SecretsError("`provided` must list secret ids", where=str(path))
    rotating = data.get("rotating") or []
    if not isinstance(rotating, list) or any(p not in SECRET_BY_ID for p in rotating):
        raise SecretsError("`rotating` must list secret ids", where=str(path))
    old = data.get("old_signing_keys") or {}
    if not isinstance(old, dict):
        raise SecretsError("`old_signing_keys` must be a mapping", where=str(path))
    for kid, entry in old.items():
        if not (isinstance(kid, str) and kid.startswith("ed25519:") and isinstance(entry, dict)
                and isinstance(entry.get("key"), str) and isinstance(entry.get("expired_ts"), int)):
            raise SecretsError(f"old_signing_keys entry {kid!r} must be \"ed25519:ID\": {{key: …, expired_ts: ms}}",
                               where=str(path))
    verified = data.get("verified") or {}
    if not isinstance(verified, dict) or not all(isinstance(v, str) for v in verified.values()):
        raise SecretsError("`verified` must map ids to fingerprints", where=str(path))
    return SecretStore(path, values, set(provided), {k: dict(v) for k, v in old.items()}, True, raw, set(rotating),
                       dict(verified))


def write_store(store: SecretStore) -> bool:
    """Write the secrets file atomically with mode 0600. Returns False when unchanged."""
    from wizard.write import atomic_write

    assert store.path is not None
    data = store.dump().encode("utf-8")
    if store.exists and data == store.raw:
        return False
    store.path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(store.path, data, mode=0o600)
    store.raw = data
    store.exists = True
    return True
