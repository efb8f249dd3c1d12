"""The real CLI in a child process, without paying Python's start-up for every run.

A test run makes hundreds of `wizard ...` runs. Each one used to start a new interpreter and import the
wizard and its libraries again (most of a short run's time). Here one server process per test worker
imports them once; every run is then a `fork()` of that server: a new process, with its own pid, file
descriptors 0/1/2 on files, the environment and working folder the test gives, running `wizard.cli.main`
exactly as `python -m wizard` does, ending with its exit status (or killed by a signal — the crash tests
use that, through tests/crashhook.py). The server is single-threaded, so forking it is safe.

    python tests/forkserver.py     # serve: one JSON request per line on stdin, one JSON reply per line

Request: {"args": [...], "cwd": "...", "env": {...}, "stdin": path|null, "stdout": path, "stderr": path,
          "point": N|null, "timeout": seconds}. Reply: {"returncode": int, "timeout": bool}.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


# ------------------------------------------------------------------------------------------ server side
def _warm() -> None:
    """Import what any command may import lazily, so children start ready."""
    import importlib
    import pkgutil

    import wizard

    for mod in pkgutil.walk_packages(wizard.__path__, "wizard."):
        if mod.name.endswith("__main__"):
            continue
        importlib.import_module(mod.name)
    for optional in ("kubernetes_validate", "bcrypt", "cryptography.hazmat.primitives.asymmetric.rsa",
                     "cryptography.hazmat.primitives.asymmetric.ed25519", "rich.console", "questionary",
                     "synapse.config.homeserver"):  # check's synapse-config rule, when installed
        try:
            importlib.import_module(optional)
        except ImportError:
            pass


def _exercise() -> None:
    """Run the commands once here, on a scratch copy of the bundled tree, so that every child starts with
    what a first run fills lazily (compiled patterns, schema validators, Synapse's config classes). Their
    output goes nowhere; the scratch folder is removed; no thread is left running (forking is safe)."""
    import contextlib
    import io
    import shutil
    import threading

    import yaml

    from wizard import app
    from wizard.cli import main

    scratch = Path(tempfile.mkdtemp(prefix="wizard-forkserver-warm-"))
    saved = os.dup(1), os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        os.dup2(null, 2)
        app.copy_templates(scratch / "deployment")
        answers = scratch / "warm.yaml"
        answers.write_text(yaml.safe_dump({"version": 1, "deployment": "deployment", "server_name": "warm.example.net",
                                           "li": {"allowed_cidrs": ["192.0.2.0/24"]}}))
        sink = io.StringIO()
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            for args in (["--answers", str(answers), "--dry-run"], ["--answers", str(answers), "--yes", "--json"],
                         ["--answers", str(answers), "--yes"], ["check", "--answers", str(answers)],
                         ["rotate", "turn.shared_secret", "--answers", str(answers), "--yes", "--dry-run"]):
                main(args)
    except Exception:  # noqa: BLE001 - warming is an optimisation: a failure here only costs time
        pass
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, null):
            os.close(fd)
        shutil.rmtree(scratch, ignore_errors=True)
    for t in threading.enumerate():
        if t is not threading.main_thread():
            t.join(timeout=10)


def _child(req: dict) -> None:
    """In the forked child: become the requested `python -m wizard ...` run. Never returns."""
    rc = 70
    try:
        stdin = os.open(req["stdin"] or os.devnull, os.O_RDONLY)
        stdout = os.open(req["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        stderr = os.open(req["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        for fd, target in ((stdin, 0), (stdout, 1), (stderr, 2)):
            os.dup2(fd, target)
            os.close(fd)
        os.setsid()  # its own session: no controlling terminal, as under subprocess.run from a test
        os.chdir(req["cwd"])
        os.environ.clear()
        os.environ.update(req["env"])
        tempfile.tempdir = None  # gettempdir() reads TMPDIR again
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if req.get("point"):
            sys.path.insert(0, str(HERE))
            import crashhook

            crashhook.install(int(req["point"]), at_exit=False)
        from wizard.cli import main

        try:
            rc = main(list(req["args"]))
        except SystemExit as exc:
            rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if req.get("point"):
            sys.stderr.write(f"crashhook: points {crashhook.seen()}\n")
    except BaseException:  # noqa: BLE001 - as an uncaught exception in `python -m wizard` would
        import traceback

        traceback.print_exc()
        rc = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(rc if isinstance(rc, int) and 0 <= rc < 256 else 1)


def serve() -> None:
    _warm()
    _exercise()
    reply = sys.stdout
    for line in sys.stdin:
        req = json.loads(line)
        reply.flush()
        pid = os.fork()
        if pid == 0:
            _child(req)
        started = time.monotonic()
        deadline = started + float(req.get("timeout") or 300)
        timed_out = False
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                _, status = os.waitpid(pid, 0)
                timed_out = True
                break
            time.sleep(0.002)
        reply.write(json.dumps({"returncode": os.waitstatus_to_exitcode(status), "timeout": timed_out,
                                "seconds": time.monotonic() - started}) + "\n")
        reply.flush()


# ------------------------------------------------------------------------------------------ client side
class ForkServer:
    def __init__(self) -> None:
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._dir = Path(tempfile.mkdtemp(prefix="wizard-forkserver-"))
        self._n = 0

    def _start(self) -> subprocess.Popen:
        if self._proc is None or self._proc.poll() is not None:
            env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
            self._proc = subprocess.Popen([sys.executable, str(HERE / "forkserver.py")], stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, text=True, env=env, cwd=str(ROOT))
        return self._proc

    def run(self, args: list[str], *, cwd: Path | str | None, env: dict, input: str | None = None,
            point: int | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
        with self._lock:
            self._n += 1
            stem = self._dir / f"run{self._n}"
            stdin = None
            if input is not None:
                stdin = str(stem) + ".in"
                Path(stdin).write_text(input)
            out, err = str(stem) + ".out", str(stem) + ".err"
            req = {"args": list(args), "cwd": str(Path(cwd or os.getcwd()).resolve()), "env": env, "stdin": stdin,
                   "stdout": out, "stderr": err, "point": point, "timeout": timeout}
            proc = self._start()
            proc.stdin.write(json.dumps(req) + "\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"the fork server died (exit {proc.wait()})")
            reply = json.loads(line)
            stdout = Path(out).read_text(errors="surrogateescape")
            stderr = Path(err).read_text(errors="surrogateescape")
            for path in (stdin, out, err):
                if path:
                    os.unlink(path)
        cmd = [sys.executable, "-m", "wizard", *args]
        log = os.environ.get("WIZARD_TEST_RUNLOG")
        if log:  # where the suite's time goes: one line per run (seconds, test, command)
            with open(log, "a") as f:
                f.write(f"{reply.get('seconds', 0):.3f}\t{os.environ.get('PYTEST_CURRENT_TEST', '?')}\t"
                        f"{' '.join(args[:3])}\n")
        if reply["timeout"]:
            raise subprocess.TimeoutExpired(cmd, timeout, stdout, stderr)
        return subprocess.CompletedProcess(cmd, reply["returncode"], stdout, stderr)

    def close(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.stdin.close()
            self._proc.wait(timeout=10)


_SERVER: ForkServer | None = None


def server() -> ForkServer:
    global _SERVER
    if _SERVER is None:
        import atexit

        _SERVER = ForkServer()
        atexit.register(_SERVER.close)
    return _SERVER


if __name__ == "__main__":
    serve()
