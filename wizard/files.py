"""Files on disk: atomic replacement, regular files only, temp files with a recognisable name."""
from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from wizard.errors import TreeError

TEMP_PREFIX = ".wizard-tmp-"


def atomic_write(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Write `data` to `path` so that a reader sees the old or the new file, never a mix: a temp file in
    the same folder, fsync, rename. The file keeps its mode (and owner) unless `mode` is given."""
    path = Path(path)
    try:
        st = path.stat()
        owner = (st.st_uid, st.st_gid)
        kept_mode = st.st_mode & 0o7777
    except FileNotFoundError:
        owner, kept_mode = None, 0o644
    if mode is None:
        mode = kept_mode
    tmp = path.parent / f"{TEMP_PREFIX}{path.name}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
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
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
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


def read_regular(path: Path, rel: str) -> bytes:
    """The bytes of a regular file; a FIFO, device or folder is refused without being opened for reading
    in a way that could block."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise TreeError(f"cannot read: {exc.strerror}", where=rel) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise TreeError("not a regular file (a pipe, device or folder is never read)", where=rel)
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def remove_leftover_temps(root: Path) -> list[Path]:
    """Temp files an interrupted run left in the tree (never following links out of it)."""
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
    for folder, name in {(path.parent, path.name), (path.resolve().parent, path.resolve().name)}:
        if not folder.is_dir():
            continue
        for p in folder.glob(f"{TEMP_PREFIX}{name}.*"):
            try:
                p.unlink()
            except OSError:
                pass
