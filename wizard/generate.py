"""One small generator per secret form (CATALOG §3). Every byte comes from the OS CSPRNG."""
from __future__ import annotations

import base64
import secrets
import string

LETTERS = string.ascii_letters
ALNUM = string.ascii_letters + string.digits
PASSWORD_LENGTH = 48  # 1 letter + 47 of 62 symbols: ~285 bits


def _alnum(n: int) -> str:
    return "".join(secrets.choice(ALNUM) for _ in range(n))


def password() -> str:
    """[A-Za-z0-9], starting with a letter, >= 256 bits."""
    return secrets.choice(LETTERS) + _alnum(PASSWORD_LENGTH - 1)


def django_key() -> str:
    return secrets.choice(LETTERS) + _alnum(49)


def livekit_key() -> str:
    return "API" + _alnum(12)


def signing_key() -> str:
    """Synapse key file line: `ed25519 a_XXXX <unpadded base64 of the 32-byte seed>`."""
    seed = secrets.token_bytes(32)
    return f"ed25519 a_{_alnum(4)} {base64.b64encode(seed).decode().rstrip('=')}"


def rsa_key(bits: int = 2048) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption())
    return pem.decode().rstrip("\n")


def htpasswd_line(user: str, pw: str, cost: int = 12) -> str:
    """`user:$2y$…` as Apache's htpasswd -B writes it."""
    import bcrypt

    hashed = bcrypt.hashpw(pw.encode(), bcrypt.gensalt(rounds=cost)).decode()
    return f"{user}:$2y${hashed[4:]}"


def htpasswd_verifies(line: str, user: str, pw: str) -> bool:
    import bcrypt

    name, sep, hashed = line.partition(":")
    if not sep or name != user or not hashed.startswith(("$2y$", "$2b$", "$2a$")):
        return False
    try:
        return bcrypt.checkpw(pw.encode(), ("$2b$" + hashed[4:]).encode())
    except ValueError:
        return False


GENERATORS = {
    "password": password,
    "django_key": django_key,
    "livekit_key": livekit_key,
    "signing_key": signing_key,
    "rsa_key": rsa_key,
}
FORMS = tuple(GENERATORS)  # what `placeholders: {TOKEN: {generate: FORM}}` may ask for


def is_form_placeholder(form: str, value: str) -> bool:
    """A value that only looks set: the signing key line's `a_XXXX` id of a fresh tree."""
    return form == "signing_key" and value.split()[1:2] == ["a_XXXX"]


class Generators:
    """The CSPRNG generators, bcrypt run in a background thread so that it overlaps the rest of the plan.
    The planner takes one of these: it never draws randomness itself."""

    def __init__(self):
        self._pool = None

    def _submit(self, fn, *args):
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="wizard-gen")
        return self._pool.submit(fn, *args)

    def new(self, form: str, **params) -> str:
        if form == "rsa_key":
            return rsa_key(int(params.get("bits") or 2048))
        return GENERATORS[form]()

    def htpasswd(self, user: str, pw: str):
        """A callable giving the htpasswd line (computed in the background meanwhile)."""
        job = self._submit(htpasswd_line, user, pw)
        return job.result

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def signing_key_parts(line: str) -> tuple[str, str, bytes]:
    """(alg, version, seed) of a key-file line; ValueError when it is not one."""
    parts = line.strip().split()
    if len(parts) != 3 or parts[0] != "ed25519" or not parts[1]:
        raise ValueError("expected `ed25519 <key id> <base64 seed>`")
    b64 = parts[2] + "=" * (-len(parts[2]) % 4)
    try:
        seed = base64.b64decode(b64, validate=True)
    except ValueError:
        raise ValueError("the key is not base64") from None
    if len(seed) != 32:
        raise ValueError("the key is not 32 bytes")
    return parts[0], parts[1], seed


def verify_key_b64(line: str) -> tuple[str, str]:
    """("ed25519:<id>", unpadded base64 public key) for a key-file line."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    alg, version, seed = signing_key_parts(line)
    pub = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return f"{alg}:{version}", base64.b64encode(pub).decode().rstrip("=")


DENYLIST_ENV = "WIZARD_SIGNING_KEY_DENYLIST"


def load_denylist() -> frozenset[str]:
    """Verify keys (unpadded base64) known to be bad: the bundled list plus the operator's file (read once
    by the application and handed to the planner)."""
    return frozenset(_denylist())


def _denylist() -> set[str]:
    """Verify keys (unpadded base64) known to be bad: the bundled list plus the operator's file."""
    import os
    from pathlib import Path

    files = [Path(__file__).with_name("denied_signing_keys.txt"),
             Path.home() / ".config" / "wizard" / "denied_signing_keys.txt"]
    if os.environ.get(DENYLIST_ENV):
        files.append(Path(os.environ[DENYLIST_ENV]))
    out = set()
    for f in files:
        try:
            for line in f.read_text(encoding="utf-8").splitlines():
                line = line.split("#", 1)[0].strip()
                if line:
                    out.add(line.split()[-1].rstrip("="))
        except OSError:
            continue
    return out


def signing_key_problem(line: str, denylist: frozenset[str] | None = None) -> str | None:
    """Why a signing key must not be used, or None."""
    try:
        _, _, seed = signing_key_parts(line)
    except ValueError as exc:
        return str(exc)
    if len(set(seed)) <= 2 or all((seed[i + 1] - seed[i]) % 256 == 1 for i in range(31)):
        return "its seed is degenerate (a repeated or counting byte pattern): anyone can derive it"
    _, pub = verify_key_b64(line)
    if pub in (load_denylist() if denylist is None else denylist):
        return "it is on the deny-list of known compromised keys"
    return None


def old_key_problem(kid: str, entry, current_line: str | None = None) -> str | None:
    """Why an old_signing_keys entry is malformed or leaks private material, or None."""
    import base64

    if not isinstance(kid, str) or not kid.startswith("ed25519:") or len(kid) <= len("ed25519:"):
        return f"{kid!r}: the id must be ed25519:<key id>"
    if not isinstance(entry, dict) or set(entry) - {"key", "expired_ts"} or "key" not in entry:
        return f"{kid}: an entry holds exactly `key` (the public verify key) and `expired_ts`"
    key = str(entry["key"])
    if " " in key.strip() or key.startswith("ed25519"):
        return f"{kid}: the entry holds a key-file line (private key material)"
    try:
        raw = base64.b64decode(key + "=" * (-len(key) % 4), validate=True)
    except ValueError:
        return f"{kid}: the key is not base64"
    if len(raw) != 32:
        return f"{kid}: the key is not a 32-byte ed25519 verify key"
    if current_line:
        try:
            _, _, seed = signing_key_parts(current_line)
            if raw == seed:
                return f"{kid}: the entry holds the private seed of the current signing key"
        except ValueError:
            pass
    return None
