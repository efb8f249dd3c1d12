"""Plan → disk: under a lock, only while every file still holds what was planned from, every target
checked writable first; backup, then the secrets file, then each file atomically. And the way back:
`undo` restores the last backup, all or nothing, refusing files edited since."""
from __future__ import annotations

import datetime
import errno
import fcntl
import hashlib
import json
import os
import shutil
import stat
import subprocess
import tempfile
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from wizard.errors import PartialWrite, TreeError, WizardError
from wizard.files import TEMP_PREFIX, atomic_write, is_regular
from wizard.store import SecretStore, store_target, verify_unchanged, write_store

BACKUP_KEEP = 10


# ---------------------------------------------------------------- the lock

def lock_folder(*, create: bool = True) -> Path:
    """$TMPDIR/wizard-locks-<uid>: created 0700; refused when it is a link, not ours, or not private."""
    folder = Path(tempfile.gettempdir()) / f"wizard-locks-{os.geteuid()}"
    if not create:
        return folder
    try:
        os.mkdir(folder, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(folder)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise WizardError(f"the lock folder {folder} is not a folder (a link?)", hint=f"remove {folder}")
    if st.st_uid != os.geteuid():
        raise WizardError(f"the lock folder {folder} belongs to another user (uid {st.st_uid})",
                          hint=f"remove {folder}, or set TMPDIR to a private folder")
    if st.st_mode & 0o077:
        raise WizardError(f"the lock folder {folder} is not private (mode {stat.S_IMODE(st.st_mode):04o})",
                          hint=f"chmod 700 {folder}")
    return folder


@contextmanager
def _one_lock(folder: Path, key: Path, what: str):
    name = hashlib.sha256(str(key).encode()).hexdigest()[:32] + ".lock"
    try:
        fd = os.open(folder / name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise WizardError(f"cannot open the lock file {folder / name}: {exc.strerror}",
                          hint=f"remove {folder / name}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
            raise WizardError(f"the lock file {folder / name} is not a private regular file of yours",
                              hint=f"remove {folder / name}")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise WizardError(f"another wizard run is working on {what} {key}",
                                  hint="wait for it to finish, then re-run") from None
            raise
        yield
    finally:
        os.close(fd)


@contextmanager
def run_lock(tree_root: Path, secrets_file: Path | None = None):
    """Locks outside the tree, keyed by the real paths of the tree and of the secrets file; they die
    with the process and leave nothing in the operator's folders. Held: fail at once (exit 2)."""
    folder = lock_folder()
    with ExitStack() as stack:
        stack.enter_context(_one_lock(folder, Path(tree_root).resolve(), "the tree"))
        if secrets_file is not None:
            stack.enter_context(_one_lock(folder, Path(secrets_file).resolve(), "the secrets file"))
        yield


# ---------------------------------------------------------------- paths inside the tree

def real_path(root: Path, rel: str) -> Path:
    """The real location of a manifest path; refused when it (through any link) leaves the tree."""
    root_real = Path(root).resolve()
    real = (Path(root) / rel).resolve()
    if real != root_real and root_real not in real.parents:
        raise TreeError("points outside the tree (through a link); refused", where=rel,
                        hint="replace the link by the folder or file itself")
    return real


def _writable(path: Path) -> str | None:
    """Why `path` cannot be replaced atomically, or None."""
    folder = path.parent
    if not folder.is_dir():
        return f"its folder {folder} does not exist"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"its folder {folder} is not writable"
    if path.exists() and not is_regular(path):
        return "it is not a regular file"
    if path.exists() and not os.access(path, os.W_OK):
        return "it is read-only"
    return None


# ---------------------------------------------------------------- writing a plan

@dataclass
class Written:
    files: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)  # files outside the tree (.well-known)
    secrets_file: bool = False
    backup: Path | None = None


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_plan(plan, root: Path, *, backup: bool = True) -> Written:
    """Check, back up, then write: the secrets file first (if changed), every changed file, then clear
    `rotating:`. Nothing is written when a target is unwritable or changed since it was read (exit 2); a
    failure part-way is exit 3 naming what was written and what was not."""
    root = Path(root)
    store: SecretStore | None = plan.store
    targets: list[tuple[str, Path, bytes]] = []
    problems = []
    for rel in plan.changed_files:
        try:
            real = real_path(root, rel)
        except TreeError as exc:
            problems.append(str(exc))
            continue
        why = _writable(real)
        if why:
            problems.append(f"{rel}: cannot be written: {why}")
            continue
        targets.append((rel, real, plan.files[rel].to_bytes(plan.new_texts[rel])))
    outside = [(Path(p), new) for p, (old, new) in sorted(plan.outside.items()) if old != new]
    for path, _ in outside:
        why = _writable(path) if path.parent.exists() else None
        if why:
            problems.append(f"{path}: cannot be written: {why}")
    if store is not None and store.path is not None and plan.store_changed:
        target = store_target(store.path)
        if target.parent.exists():
            why = _writable(target)
            if why:
                problems.append(f"{store.path}: cannot be written: {why}")
    if problems:
        raise WizardError("; ".join(problems) + "; nothing was written",
                          hint="fix the permissions and re-run")
    # compare: every file still holds what the plan was made from
    for rel, real, _ in targets:
        try:
            current = real.read_bytes()
        except OSError as exc:
            raise TreeError(f"cannot read: {exc.strerror}; nothing was written", where=rel) from None
        if current != plan.files[rel].raw:
            raise TreeError("changed since it was read (another run, or an editor?); nothing was written",
                            where=rel, hint="re-run the command")
    for path, _ in outside:
        old = plan.outside[str(path)][0]
        current = path.read_bytes() if path.exists() else None
        if current != old:
            raise WizardError(f"{path} changed since it was read; nothing was written", hint="re-run the command")
    done = Written()
    if not targets and not outside and not plan.store_changed and not (store is not None and store.rotating):
        if backup:
            record_run(root, changed=False)
        return done
    if store is not None and store.path is not None:
        # the plan was made from these secrets, written or not: another run that changed them since (a
        # rotation) would be undone by writing values decided from the old ones
        verify_unchanged(store)
    final_store = None
    if store is not None and store.path is not None:
        final = store.copy()
        final.rotating.clear()
        final_store = final.dump().encode()
    if backup:
        done.backup = make_backup(root, [(rel, real, new) for rel, real, new in targets], outside,
                                  store if plan.store_changed or (store and store.rotating) else None, final_store)
    pending = [rel for rel, _, _ in targets] + [str(p) for p, _ in outside]
    try:
        if store is not None and store.path is not None and plan.store_changed:
            write_store(store)
            done.secrets_file = True
            ensure_gitignored(Path(store.path))
        for rel, real, data in targets:
            atomic_write(real, data)
            done.files.append(rel)
            pending.remove(rel)
        for path, data in outside:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, data, mode=0o644)
            done.outside.append(str(path))
            pending.remove(str(path))
        if store is not None and store.path is not None and store.rotating:
            store.rotating.clear()  # every location now holds the new values
            write_store(store)
            done.secrets_file = True
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - whatever stopped it, say what was written and what was not
        raise PartialWrite(done.files + done.outside, pending, exc, secrets_written=done.secrets_file) from None
    return done


# ---------------------------------------------------------------- backups and undo

def backups_root(tree_root: Path) -> Path:
    tree_root = Path(tree_root).resolve()
    return tree_root.parent / ".wizard-backups" / tree_root.name


def _private_folder(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)


def _last_run_file(tree_root: Path, *, create: bool = True) -> Path:
    key = hashlib.sha256(str(Path(tree_root).resolve()).encode()).hexdigest()[:32]
    return lock_folder(create=create) / f"{key}.last-run"


def record_run(tree_root: Path, *, changed: bool) -> None:
    """What the last run did, for `undo`: a run that changed nothing must not make undo roll back the run
    before it. Kept beside the locks (outside the operator's folders, so a run that changes nothing
    writes nothing there)."""
    path = _last_run_file(tree_root)
    if changed:
        path.unlink(missing_ok=True)
        return
    stamp = datetime.datetime.now().isoformat(timespec="seconds")
    atomic_write(path, json.dumps({"time": stamp, "changed": False}).encode(), mode=0o600)


def make_backup(tree_root: Path, targets, outside, store: SecretStore | None, final_store: bytes | None) -> Path:
    """Copy what is about to change (and the secrets file) into a new timestamped folder (0700), with a
    manifest of what the run writes, so that undo can tell the wizard's bytes from later edits."""
    base = backups_root(tree_root)
    _private_folder(base.parent)
    _private_folder(base)
    now = datetime.datetime.now()
    stamp = now.strftime("%Y%m%d-%H%M%S-%f")
    folder = base / stamp
    tmp = base / f"{TEMP_PREFIX}{stamp}"
    tmp.mkdir(mode=0o700)
    manifest = {"time": now.isoformat(timespec="seconds"), "files": {}, "outside": {}, "secrets": None}
    for rel, real, new in targets:
        dst = tmp / "tree" / rel
        dst.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        shutil.copy2(real, dst)
        os.chmod(dst, 0o600)
        manifest["files"][rel] = {"before": _sha(dst.read_bytes()), "after": _sha(new)}
    for i, (path, new) in enumerate(outside):
        entry = {"path": str(path.resolve()), "after": _sha(new), "before": None}
        if path.exists():
            (tmp / "outside").mkdir(exist_ok=True, mode=0o700)
            shutil.copy2(path, tmp / "outside" / str(i))
            os.chmod(tmp / "outside" / str(i), 0o600)
            entry["before"] = _sha(path.read_bytes())
        manifest["outside"][str(i)] = entry
    if store is not None and store.path is not None:
        entry = {"path": str(Path(store.path).absolute()), "after": _sha(final_store or b""), "before": None}
        if store.exists:
            (tmp / "secrets.yaml").write_bytes(store.raw)
            os.chmod(tmp / "secrets.yaml", 0o600)
            entry["before"] = _sha(store.raw)
        manifest["secrets"] = entry
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
    os.replace(tmp, folder)
    ensure_gitignored(base.parent)
    for old in _backups(base)[:-BACKUP_KEEP]:
        shutil.rmtree(old, ignore_errors=True)
    for stale in base.glob(f"{TEMP_PREFIX}*"):
        shutil.rmtree(stale, ignore_errors=True)
    record_run(tree_root, changed=True)
    return folder


def _backups(base: Path) -> list[Path]:
    if not base.is_dir():
        return []
    return sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(TEMP_PREFIX))


@dataclass
class UndoPlan:
    backup: Path
    time: str
    restores: list[tuple[str, Path, bytes]]  # (label, target, bytes)
    removes: list[tuple[str, Path]]  # files the run created (outside the tree)
    edited: list[str]  # changed since the run wrote them
    nothing: bool = False  # the last run changed nothing


def plan_undo(tree_root: Path) -> UndoPlan:
    """What `undo` would restore, and what was edited since the run (refused unless forced)."""
    base = backups_root(tree_root)
    last = _last_run_file(tree_root, create=False)
    try:
        marker = json.loads(last.read_text()) if last.exists() else None
    except (OSError, ValueError):
        marker = None
    folders = _backups(base)
    if marker is not None and not marker.get("changed"):
        return UndoPlan(folders[-1] if folders else base, marker.get("time", "?"), [], [], [], nothing=True)
    if not folders:
        raise WizardError(f"no backup to restore for {tree_root}")
    folder = folders[-1]
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        raise WizardError(f"the backup {folder} has no readable manifest.json; restore it by hand") from None
    restores, removes, edited = [], [], []

    def judge(label: str, target: Path, entry: dict, saved: Path | None) -> None:
        current = target.read_bytes() if target.is_file() else None
        cur = _sha(current) if current is not None else None
        if cur not in (entry["after"], entry["before"]):
            edited.append(label)
        if saved is not None:
            restores.append((label, target, saved.read_bytes()))
        elif current is not None:
            removes.append((label, target))

    for rel, entry in sorted(manifest.get("files", {}).items()):
        judge(rel, real_path(tree_root, rel), entry, folder / "tree" / rel)
    for i, entry in sorted(manifest.get("outside", {}).items()):
        saved = folder / "outside" / i
        judge(entry["path"], Path(entry["path"]), entry, saved if saved.exists() else None)
    sec = manifest.get("secrets")
    if sec is not None:
        saved = folder / "secrets.yaml"
        judge(sec["path"], store_target(Path(sec["path"])) if os.path.lexists(sec["path"]) else Path(sec["path"]),
              sec, saved if saved.exists() else None)
    return UndoPlan(folder, manifest.get("time", folder.name), restores, removes, edited)


def apply_undo(tree_root: Path, up: UndoPlan) -> list[str]:
    """Restore every file of the backup, or none: targets are checked writable first; a failure part-way
    is exit 3 naming what was restored and what was not."""
    if up.nothing:
        _last_run_file(tree_root).unlink(missing_ok=True)
        return []
    problems = []
    for label, target, _ in up.restores:
        target.parent.mkdir(parents=True, exist_ok=True) if target.parent.parent.exists() else None
        why = _writable(target)
        if why:
            problems.append(f"{label}: cannot be restored: {why}")
    if problems:
        raise WizardError("; ".join(problems) + "; nothing was restored", hint="fix it and re-run wizard undo")
    done: list[str] = []
    pending = [label for label, _, _ in up.restores] + [label for label, _ in up.removes]
    try:
        for label, target, data in up.restores:
            mode = 0o600 if target.name.endswith(".secrets.yaml") or label.endswith("secrets.yaml") else None
            atomic_write(target, data, mode=mode)
            done.append(label)
            pending.remove(label)
        for label, target in up.removes:
            target.unlink()
            done.append(label)
            pending.remove(label)
    except OSError as exc:
        raise PartialWrite(done, pending, exc) from None
    shutil.rmtree(up.backup)
    _last_run_file(tree_root).unlink(missing_ok=True)
    return done


# ---------------------------------------------------------------- git

def in_git_worktree(path: Path) -> Path | None:
    try:
        out = subprocess.run(["git", "-C", str(path), "rev-parse", "--show-toplevel"], capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return Path(out.stdout.strip())


def git_tracked(folder: Path, paths: list[str]) -> list[str]:
    """Which of `paths` (relative to `folder`) git tracks."""
    if not paths or in_git_worktree(folder) is None:
        return []
    try:
        out = subprocess.run(["git", "-C", str(folder), "ls-files", "--", *paths], capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [ln for ln in out.stdout.splitlines() if ln]


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
