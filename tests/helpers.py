"""Running the real CLI in a subprocess, and small tree utilities for tests."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates" / "deployment"


def terminal_env(env: dict | None = None) -> dict:
    """The environment of the wizard in a pseudo-terminal: plain output, a fixed 160x50 xterm, no
    cursor-position queries (prompt_toolkit), then `env`."""
    full = dict(os.environ)
    full.pop("FORCE_COLOR", None)
    full.update({"NO_COLOR": "1", "PROMPT_TOOLKIT_NO_CPR": "1", "TERM": "xterm", "COLUMNS": "160", "LINES": "50"})
    full.update(env or {})
    return full


def run_wizard(*args: str, cwd: Path | None = None, env: dict | None = None, check: bool = False,
               input: str | None = None, point: int | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python -m wizard ARGS` in a child process: its exit code, stdout and stderr.

    The child is forked from a server that has imported the wizard already (tests/forkserver.py); with
    WIZARD_TEST_REAL_CLI=1 every run starts a new interpreter instead (same results, slower). `point`
    installs tests/crashhook.py's crash point N in the child."""
    full_env = dict(os.environ)
    full_env.pop("FORCE_COLOR", None)
    full_env["NO_COLOR"] = "1"
    if env:
        full_env.update(env)
    if os.environ.get("WIZARD_TEST_REAL_CLI") == "1":
        cmd = [sys.executable, "-m", "wizard", *args]
        if point is not None:
            cmd = [sys.executable, str(ROOT / "tests" / "crashhook.py"), str(point), *args]
        proc = subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True, input=input,
                              timeout=timeout)
    else:
        import forkserver

        proc = forkserver.server().run(list(args), cwd=cwd, env=full_env, input=input, point=point,
                                         timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"wizard {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def digest(folder: Path) -> str:
    h = hashlib.sha256()
    for rel, data in snapshot(folder).items():
        h.update(rel.encode() + b"\0" + data + b"\0")
    return h.hexdigest()


SECRETS_END = "# end of wizard secrets"


def write_secrets(path: Path, data: dict) -> Path:
    """Write a secrets file by hand, as an operator may: any YAML, the end line kept last, mode 0600."""
    path.write_text("# edited by hand\n" + yaml.safe_dump(data, sort_keys=False) + SECRETS_END + "\n")
    path.chmod(0o600)
    return path


def edit_secrets(path: Path, change) -> dict:
    """Load a secrets file, let `change(data)` edit it, write it back (end line kept)."""
    data = yaml.safe_load(path.read_text())
    change(data)
    write_secrets(path, data)
    return data


def write_answers(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


FULL_ANSWERS = {
    "version": 1,
    "deployment": "deployment",
    "server_name": "chat.acme-corp.net",
    "domains": {
        "matrix": "hs.acme-corp.net",
        "element": "web.acme-corp.net",
        "turn": "relay.acme-corp.net",
        "li_matrix": "li-hs.acme-corp.net",
        "li_element": "li-web.acme-corp.net",
        "li_admin": "li-admin.acme-corp.net",
        "livekit": "rtc.acme-corp.net",
    },
    "tls": {"mode": "letsencrypt-staging", "acme_email": "pki@acme-corp.net"},
    "li": {"allowed_cidrs": ["203.0.113.0/24", "198.51.100.0/25"], "admin_user": "lawful",
           "auth_realm": "LI staff only"},
    "storage": {"class": "fast-ssd"},
    "minio": {"s3_access_key": "media-writer"},
}
