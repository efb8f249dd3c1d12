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
}


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
