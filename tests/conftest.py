"""Fixtures that start REAL throwaway services: PostgreSQL, coturn, an SMTP server.

A fixture skips only when its tool truly cannot be found.  Under CI (``CI=true``) or with
``WIZARD_TESTS_REQUIRE_TOOLS=1`` a missing tool FAILS instead: .ci/run installs them all, so
a skip there would hide a broken install step.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import oracles  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


unavailable = oracles.unavailable  # skip (locally) or fail (in CI) because a real tool is missing


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port free for TCP and UDP on 127.0.0.1 at the time of the call."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        other = socket.SOCK_DGRAM if kind == socket.SOCK_STREAM else socket.SOCK_STREAM
        try:
            with socket.socket(socket.AF_INET, other) as s2:
                s2.bind(("127.0.0.1", port))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port found")


def _wait_tcp(host: str, port: int, proc: subprocess.Popen | None, limit: float, what: str, log: Path | None):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            break
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    text = log.read_text(errors="replace") if log and log.exists() else ""
    raise RuntimeError(f"{what} did not listen on {host}:{port} (exit={proc.poll() if proc else None})\n{text}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


# --------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------


def _pg_bindir() -> Path | None:
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: [int(x) if x.isdigit() else x for x in Path(p).parent.name.split(".")],
    )
    for d in reversed(candidates):
        if (Path(d) / "initdb").exists() and (Path(d) / "pg_ctl").exists():
            return Path(d)
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).parent
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        d = Path(out.stdout.strip())
        if (d / "initdb").exists():
            return d
    return None


@dataclasses.dataclass
class Postgres:
    host: str
    port: int
    superuser: str
    password: str
    datadir: Path
    bindir: Path
    run_as: list[str]

    def conninfo(self, user: str | None = None, password: str | None = None, dbname: str = "postgres",
                 **extra: Any) -> str:
        """A libpq conninfo with every value properly quoted."""
        return oracles.libpq_conninfo(
            host=self.host, port=self.port, user=user or self.superuser,
            password=self.password if password is None and user is None else password,
            dbname=dbname, connect_timeout=10, **extra,
        )

    def psql(self, sql: str, user: str | None = None, password: str | None = None,
             dbname: str = "postgres", check: bool = True) -> str:
        """Run SQL through the real ``psql`` over TCP with password auth; return stdout
        (``-At``: unaligned, tuples only).  Raises AssertionError with psql's output on error."""
        if user is None:
            user, password = self.superuser, self.password if password is None else password
        psql = shutil.which("psql") or str(self.bindir / "psql")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(PGPASSWORD=password or "", PGCONNECT_TIMEOUT="10", PGSSLMODE="disable")
        proc = subprocess.run(
            [psql, "-X", "-v", "ON_ERROR_STOP=1", "-At", "-h", self.host, "-p", str(self.port),
             "-U", user, "-d", dbname, "-w", "-f", "-"],
            input=sql, capture_output=True, text=True, env=env, timeout=60,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"psql as {user!r} on {dbname!r} failed (exit {proc.returncode}):\n"
                                 f"{proc.stderr}\n--- stdout ---\n{proc.stdout}\n--- sql ---\n{sql}")
        return proc.stdout

    def connect(self, conninfo: str | None = None, **kwargs: Any):
        """A psycopg2 connection (default: as the superuser).  Raises psycopg2 errors as they are."""
        try:
            import psycopg2
        except ImportError:
            unavailable("psycopg2 is not installed")
        return psycopg2.connect(conninfo if conninfo is not None else self.conninfo(), **kwargs)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A real throwaway PostgreSQL cluster on 127.0.0.1:<free port>, scram-sha-256 everywhere,
    superuser ``postgres_test`` with a known password.  Stopped and deleted at session end."""
    bindir = _pg_bindir()
    if bindir is None:
        unavailable("PostgreSQL server binaries (initdb/pg_ctl) not found; apt-get install postgresql")
    if shutil.which("psql") is None and not (bindir / "psql").exists():
        unavailable("psql not found; apt-get install postgresql-client")

    run_as: list[str] = []
    is_root = os.geteuid() == 0
    if is_root:
        import pwd

        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            unavailable("running as root and there is no 'postgres' OS user to run initdb as")
        if shutil.which("runuser") is None:
            unavailable("running as root and runuser is missing")
        run_as = ["runuser", "-u", "postgres", "--"]

    # not under pytest's tmp dir: that is 0700 root-owned and the postgres user could not enter it
    base = Path(tempfile.mkdtemp(prefix="wizard-pg-"))
    if is_root:
        os.chown(base, pw.pw_uid, pw.pw_gid)
    os.chmod(base, 0o700)
    datadir = base / "data"
    pwfile = base / "pwfile"
    logfile = base / "server.log"
    superuser = "postgres_test"
    password = "Sup3r-" + secrets.token_hex(12)
    pwfile.write_text(password + "\n")
    if is_root:
        os.chown(pwfile, pw.pw_uid, pw.pw_gid)
    os.chmod(pwfile, 0o600)

    def run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess:
        p = subprocess.run(run_as + cmd, capture_output=True, text=True, cwd=str(base), **kw)
        if p.returncode != 0:
            log = logfile.read_text(errors="replace") if logfile.exists() else ""
            raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}\n{log}")
        return p

    run([str(bindir / "initdb"), "-D", str(datadir), "-U", superuser, f"--pwfile={pwfile}",
         "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C",
         "--no-sync"], timeout=120)
    pwfile.unlink()

    port = free_port()
    opts = (f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={base} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c password_encryption=scram-sha-256 -c max_connections=50")
    started = False
    try:
        run([str(bindir / "pg_ctl"), "-D", str(datadir), "-l", str(logfile), "-o", opts, "-w", "-t", "60",
             "start"], timeout=120)
        started = True
        pg = Postgres("127.0.0.1", port, superuser, password, datadir, bindir, run_as)
        pg.psql("SELECT 1")
        yield pg
    finally:
        if started:
            subprocess.run(run_as + [str(bindir / "pg_ctl"), "-D", str(datadir), "-m", "fast", "-w", "stop"],
                           capture_output=True, text=True, cwd=str(base), timeout=120)
        shutil.rmtree(base, ignore_errors=True)


# --------------------------------------------------------------------------------------
# coturn
# --------------------------------------------------------------------------------------


@dataclasses.dataclass
class Coturn:
    host: str
    port: int
    secret: str
    realm: str
    proc: subprocess.Popen
    logfile: Path

    def log(self) -> str:
        return self.logfile.read_text(errors="replace") if self.logfile.exists() else ""

    def allocate(self, username: str, password: str, realm: str | None = None) -> bool:
        return oracles.turn_allocate(self.host, self.port, username, password, realm or self.realm)


@pytest.fixture
def coturn(tmp_path_factory) -> Iterator[Callable[..., Coturn]]:
    """Factory: ``coturn(secret, realm)`` starts a real ``turnserver`` on 127.0.0.1 (UDP+TCP on one
    free port) with TURN REST auth (``--use-auth-secret --static-auth-secret``), waits until it
    answers a STUN Binding and accepts TCP, and stops it at teardown."""
    binary = shutil.which("turnserver") or ("/usr/bin/turnserver" if os.path.exists("/usr/bin/turnserver") else None)
    if binary is None:
        unavailable("coturn's turnserver not found; apt-get install coturn")
    started: list[Coturn] = []

    def start(secret: str, realm: str, extra_args: list[str] | None = None) -> Coturn:
        d = tmp_path_factory.mktemp("coturn")
        port = free_port()
        relay_min = 40000 + (port % 20) * 1000
        logfile = d / "turnserver.log"
        args = [
            binary, "-n",  # no config file
            "--listening-ip=127.0.0.1", f"--listening-port={port}",
            "--relay-ip=127.0.0.1", f"--min-port={relay_min}", f"--max-port={relay_min + 999}",
            "--use-auth-secret", f"--static-auth-secret={secret}", f"--realm={realm}",
            "--no-tls", "--no-dtls", "--no-cli", "--no-multicast-peers",
            "--fingerprint", "--no-software-attribute", "--no-rfc5780",
            f"--userdb={d / 'turndb'}", f"--pidfile={d / 'turnserver.pid'}",
            f"--log-file={logfile}", "--simple-log", "--no-stdout-log", "--verbose",
        ] + list(extra_args or [])
        out = open(d / "turnserver.stdout", "wb")
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                cwd=str(d), start_new_session=True)
        out.close()
        server = Coturn("127.0.0.1", port, secret, realm, proc, logfile)
        started.append(server)
        deadline = time.monotonic() + 30
        last: Exception | None = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                oracles.stun_binding("127.0.0.1", port, timeout=0.3, tries=1)
                _wait_tcp("127.0.0.1", port, proc, 5, "turnserver", logfile)
                return server
            except (OSError, TimeoutError, RuntimeError, AssertionError) as e:
                last = e
                time.sleep(0.2)
        stdout = (d / "turnserver.stdout").read_text(errors="replace")
        raise RuntimeError(f"turnserver did not come up on 127.0.0.1:{port} (exit={proc.poll()}, last={last!r})\n"
                           f"cmd: {' '.join(args)}\n--- stdout ---\n{stdout}\n--- log ---\n{server.log()}")

    yield start
    for s in started:
        _stop(s.proc)


# --------------------------------------------------------------------------------------
# SMTP
# --------------------------------------------------------------------------------------


@dataclasses.dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    message: Any  # email.message.EmailMessage
    auth_login: str | None


@dataclasses.dataclass
class SmtpServer:
    host: str
    port: int
    messages: list[ReceivedMail]
    #: if set, AUTH only succeeds for these user -> password pairs; if None, any AUTH succeeds
    accounts: dict[str, str] | None = None
    #: every AUTH attempt: (mechanism, login, password, accepted)
    auth_attempts: list[tuple[str, str, str, bool]] = dataclasses.field(default_factory=list)


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real aiosmtpd SMTP server on 127.0.0.1:<free port> that keeps what it receives.
    AUTH PLAIN/LOGIN is offered without TLS (not required); see ``SmtpServer.accounts``."""
    try:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword
    except ImportError:
        unavailable("aiosmtpd is not installed")
    import email
    import email.policy

    server = SmtpServer("127.0.0.1", free_port(), [])

    class Handler:
        async def handle_DATA(self, smtp, session, envelope):
            data = envelope.original_content or envelope.content
            if isinstance(data, str):
                data = data.encode("utf-8")
            login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
            server.messages.append(ReceivedMail(
                envelope.mail_from, list(envelope.rcpt_tos), data,
                email.message_from_bytes(data, policy=email.policy.default), login,
            ))
            return "250 Message accepted for delivery"

    def authenticator(smtp, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login, pw = auth_data.login.decode(), auth_data.password.decode()
        ok = server.accounts is None or server.accounts.get(login) == pw
        server.auth_attempts.append((mechanism, login, pw, ok))
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    controller = Controller(
        Handler(), hostname="127.0.0.1", port=server.port,
        authenticator=authenticator, auth_require_tls=False, auth_required=False,
    )
    controller.start()
    try:
        yield server
    finally:
        controller.stop()


def self_signed_cert(folder: Path, host: str = "localhost") -> tuple[Path, Path]:
    """A self-signed certificate and key (PEM files) for `host` and 127.0.0.1: what an impostor has."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture
def smtp_tls_server(tmp_path):
    """Factory: `smtp_tls_server("implicit" | "starttls")` starts a real aiosmtpd server whose TLS
    certificate is self-signed (an impostor), recording every AUTH attempt it sees."""
    try:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword
    except ImportError:
        unavailable("aiosmtpd is not installed")
    import ssl

    cert, key = self_signed_cert(tmp_path)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    started = []

    def start(mode: str) -> SmtpServer:
        server = SmtpServer("127.0.0.1", free_port(), [])

        class Handler:
            async def handle_DATA(self, smtp, session, envelope):
                server.messages.append(envelope)
                return "250 OK"

        def authenticator(smtp, session, envelope, mechanism, auth_data):
            if isinstance(auth_data, LoginPassword):
                server.auth_attempts.append((mechanism, auth_data.login.decode(), auth_data.password.decode(), True))
            return AuthResult(success=True, handled=False, auth_data=auth_data)

        kwargs = dict(hostname="127.0.0.1", port=server.port, authenticator=authenticator, auth_require_tls=False,
                      auth_required=False)
        if mode == "implicit":
            controller = Controller(Handler(), ssl_context=ctx, **kwargs)
        else:
            controller = Controller(Handler(), tls_context=ctx, require_starttls=False, **kwargs)
        controller.start()
        started.append(controller)
        return server

    yield start
    for c in started:
        c.stop()
