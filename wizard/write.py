"""Plan → disk: secrets file first, then each file atomically (temp + fsync + rename), under a lock."""
from __future__ import annotations

import errno
import fcntl
import os
import secrets
import subprocess
from contextlib import contextmanager
from pathlib import Path

from wizard.errors import WizardError

TEMP_PREFIX = ".wizard-tmp-"


def atomic_write(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Write `data` to `path` so that a reader sees the old or the new file, never a mix."""
    path = Path(path)
    try:
        st = path.stat()
        owner = (st.st_uid, st.st_gid)
        kept_mode = st.st_mode & 0o7777
    except FileNotFoundError:
        owner, kept_mode = None, 0o644
    if mode is None:  # a file keeps its mode (and owner) across the rewrite
        mode = kept_mode
    tmp = path.parent / f"{TEMP_PREFIX}{path.name}.{secrets.token_hex(4)}"
    _pause_point()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fchmod(fh.fileno(), mode)
            if owner is not None and os.geteuid() == 0:
                try:
                    os.fchown(fh.fileno(), *owner)
                except OSError:
                    pass
            os.fsync(fh.fileno())
        _pause_point()
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_WRITES = {"n": 0}


def _pause_point() -> None:
    """Test hook for the crash tests: WIZARD_TEST_STOP_AT=N makes the process wait (to be killed) at
    the Nth pause point; there are two per file written (before the temp file, before the rename)."""
    stop_at = os.environ.get("WIZARD_TEST_STOP_AT")
    if not stop_at:
        return
    _WRITES["n"] += 1
    if _WRITES["n"] == int(stop_at):
        import sys
        import time

        sys.stderr.write(f"wizard-test: paused at point {stop_at}\n")
        sys.stderr.flush()
        time.sleep(3600)


def remove_leftover_temps(root: Path) -> list[Path]:
    removed = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for name in filenames:
            if name.startswith(TEMP_PREFIX):
                p = Path(dirpath) / name
                try:
                    p.unlink()
                    removed.append(p)
                except OSError:
                    pass
    return removed


def remove_leftover_temps_of(path: Path) -> None:
    """Temp files an interrupted write of `path` (e.g. the secrets file) left beside it."""
    path = Path(path)
    if not path.parent.is_dir():
        return
    for p in path.parent.glob(f"{TEMP_PREFIX}{path.name}.*"):
        try:
            p.unlink()
        except OSError:
            pass


@contextmanager
def tree_lock(root: Path):
    """An OS lock outside the tree (in the temp folder, keyed by the tree's real path); it dies with
    the process, and leaves nothing in the operator's folders."""
    import hashlib
    import tempfile

    root = Path(root).resolve()
    folder = Path(tempfile.gettempdir()) / f"wizard-locks-{os.geteuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    lock_path = folder / (hashlib.sha256(str(root).encode()).hexdigest()[:32] + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise WizardError(f"another wizard run is working on {root}", hint="wait for it to finish") from None
            raise
        yield
    finally:
        os.close(fd)


def in_git_worktree(path: Path) -> Path | None:
    try:
        out = subprocess.run(["git", "-C", str(path), "rev-parse", "--show-toplevel"], capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return Path(out.stdout.strip())


def ensure_gitignored(path: Path) -> bool:
    """Add `path` to the .gitignore of its folder when the folder is in a git work tree."""
    folder = path.parent
    if in_git_worktree(folder) is None:
        return False
    gi = folder / ".gitignore"
    entry = "/" + path.name
    try:
        current = gi.read_text(encoding="utf-8") if gi.exists() else ""
    except OSError:
        return False
    lines = [ln.strip() for ln in current.splitlines()]
    if entry in lines or path.name in lines:
        return False
    sep = "" if not current or current.endswith("\n") else "\n"
    atomic_write(gi, (current + sep + entry + "\n").encode("utf-8"))
    return True


BACKUP_KEEP = 10


def backups_root(tree_root: Path) -> Path:
    tree_root = Path(tree_root).resolve()
    return tree_root.parent / ".wizard-backups" / tree_root.name


def make_backup(tree_root: Path, rels: list[str], secrets_file: Path | None) -> Path | None:
    """Copy the files about to change (and the secrets file) into a new timestamped folder (0700)."""
    import datetime
    import shutil

    if not rels:
        return None
    base = backups_root(tree_root)
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(base.parent, 0o700)
    os.chmod(base, 0o700)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    folder = base / stamp
    tmp = base / f"{TEMP_PREFIX}{stamp}"
    tmp.mkdir(mode=0o700)
    for rel in rels:
        src = Path(tree_root) / rel
        dst = tmp / "tree" / rel
        dst.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        shutil.copy2(src, dst)
        os.chmod(dst, 0o600)
    if secrets_file is not None and Path(secrets_file).exists():
        shutil.copy2(secrets_file, tmp / "secrets.yaml")
        os.chmod(tmp / "secrets.yaml", 0o600)
        (tmp / "secrets.path").write_text(str(Path(secrets_file).resolve()))
    os.replace(tmp, folder)
    ensure_gitignored(base.parent)
    for old in sorted(p for p in base.iterdir() if not p.name.startswith(TEMP_PREFIX))[:-BACKUP_KEEP]:
        shutil.rmtree(old, ignore_errors=True)
    for stale in base.glob(f"{TEMP_PREFIX}*"):
        shutil.rmtree(stale, ignore_errors=True)
    return folder


def restore_last_backup(tree_root: Path) -> tuple[Path, list[str]]:
    import shutil

    from wizard.errors import WizardError

    base = backups_root(tree_root)
    folders = sorted(p for p in base.iterdir() if not p.name.startswith(TEMP_PREFIX)) if base.is_dir() else []
    if not folders:
        raise WizardError(f"no backup to restore for {tree_root}")
    last = folders[-1]
    restored = []
    secrets = last / "secrets.yaml"
    if secrets.exists():
        target = Path((last / "secrets.path").read_text().strip())
        atomic_write(target, secrets.read_bytes(), mode=0o600)
    tree_dir = last / "tree"
    if tree_dir.is_dir():
        for src in sorted(p for p in tree_dir.rglob("*") if p.is_file()):
            rel = src.relative_to(tree_dir).as_posix()
            atomic_write(Path(tree_root) / rel, src.read_bytes())
            restored.append(rel)
    shutil.rmtree(last)
    return last, restored


def write_plan(plan, root: Path, *, backup: bool = True) -> list[str]:
    """Write the secrets file (if changed) and then every changed file. Returns files written."""
    from wizard.store import write_store

    if backup and (plan.changed_files or plan.store_changed):
        make_backup(root, plan.changed_files, plan.store.path if plan.store is not None else None)

    if plan.store is not None and plan.store.path is not None and plan.store_changed:
        write_store(plan.store)
        ensure_gitignored(plan.store.path)
    written = []
    for rel in plan.changed_files:
        f = plan.files[rel]
        target = Path(root) / rel
        if target.is_symlink():  # write through links inside the tree (the reader refused others)
            target = target.resolve()
        atomic_write(target, f.to_bytes(plan.new_texts[rel]))
        written.append(rel)
    if plan.store is not None and plan.store.path is not None and plan.store.rotating:
        plan.store.rotating.clear()  # every location now holds the new values
        write_store(plan.store)
    return written
