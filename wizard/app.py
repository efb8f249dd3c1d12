"""The use cases — apply, rotate, undo, check, init, secrets — for every front end (the command line,
guided setup, the checklist). Nothing here prints or prompts: results come back as data, and a
confirmation is a callback the front end supplies (None: proceed, as with --yes)."""
from __future__ import annotations

import os
import shutil
import signal
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from wizard import wellknown
from wizard.errors import SecretsError, WizardError

DEFAULT_DEPLOYMENT = "deployment"
DEFAULT_ANSWERS = "wizard-answers.yaml"

# confirm(question, lines) -> bool: lines say what would be replaced; False declines (exit 2)
Confirm = Callable[[str, list[str]], bool]


class Declined(WizardError):
    """The operator declined a confirmation: exit 2, nothing written."""


# ---------------------------------------------------------------- where things are

def templates_dir() -> Path:
    here = Path(__file__).resolve().parent.parent / "templates" / "deployment"
    if here.is_dir():  # a source checkout (editable install)
        return here
    try:
        from importlib.resources import files

        p = Path(str(files("wizard_templates") / "deployment"))
        if p.is_dir():
            return p
    except Exception:  # noqa: BLE001 - any packaging oddity means "not there"
        pass
    raise WizardError("the bundled templates are missing from this installation")


def copy_templates(dest: Path) -> int:
    dest = Path(dest)
    if os.path.lexists(dest):
        raise WizardError(f"{dest} already exists; refusing to overwrite it", hint="choose another folder")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".wizard-tmp-init-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(templates_dir(), tmp, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "__init__.py"))
    os.replace(tmp, dest)
    return sum(1 for p in dest.rglob("*") if p.is_file())


def default_answers_path(deployment: Path) -> Path:
    return Path(deployment).resolve().parent / DEFAULT_ANSWERS


@dataclass
class Where:
    answers: object | None  # wizard.answers.Answers
    deployment: Path


def locate(deployment_flag: str | None, answers_flag: str | None, *, need_answers: bool,
           must_exist: bool = True) -> Where:
    """The answers (flag, or the default answers file beside the deployment) and the deployment folder."""
    from wizard.answers import load_answers

    override = Path(deployment_flag) if deployment_flag else None
    answers = None
    if answers_flag:
        answers = load_answers(Path(answers_flag), deployment_override=override)
    else:
        default = default_answers_path(Path(deployment_flag or DEFAULT_DEPLOYMENT))
        if default.exists():
            answers = load_answers(default, deployment_override=override)
    if need_answers and answers is None:
        raise WizardError("no answers file: give --answers FILE (or keep wizard-answers.yaml beside the deployment)")
    deployment = Path(answers.deployment) if answers else Path(deployment_flag or DEFAULT_DEPLOYMENT)
    if must_exist and not deployment.is_dir():
        raise WizardError(f"no deployment at {deployment}")
    return Where(answers, deployment)


def holds_deployment(root: Path) -> bool:
    """A folder holds a deployment when a Kubernetes object or a homeserver config is found in it."""
    from wizard.locate.resolve import Tree
    from wizard.scan import holds_kube_or_homeserver

    return holds_kube_or_homeserver(Tree(Path(root)))


def read_store(answers):
    """The secrets file of these answers, refused when it sits inside the tree."""
    from wizard.store import SecretStore, load_store

    if answers is None or answers.secrets_file is None:
        return SecretStore(None)
    path = Path(answers.secrets_file)
    tree = Path(answers.deployment).resolve()
    real = path.resolve() if os.path.lexists(path) else path.absolute()
    if real == tree or tree in real.parents or tree in path.absolute().parents:
        raise SecretsError("the secrets file is inside the deployment tree: it would be applied and committed with it",
                           where=str(path), hint="keep it beside the answers file (secrets_file: in the answers)")
    return load_store(path)


# ---------------------------------------------------------------- apply

@dataclass
class ApplyResult:
    plan: object  # wizard.plan.Plan
    written: object | None  # wizard.write.Written
    created: bool
    dry_run: bool
    tree_root: Path
    warnings: list[str] = field(default_factory=list)
    interrupted: bool = False


def _plan(tree_root: Path, answers, store, *, rotate=(), revoke=False):
    from wizard.locate.resolve import Tree
    from wizard.plan import make_plan

    plan = make_plan(Tree(tree_root), answers, store, rotate=tuple(rotate), revoke=revoke,
                     now_ms=int(time.time() * 1000))
    plan.outside = wellknown.planned(answers)
    return plan


def _store_warnings(store) -> list[str]:
    if store.upgraded_from == 1:
        return [f"{store.path} is a version 1 secrets file: it is read once and rewritten as version 2 "
                "by this run"]
    return []


@contextmanager
def defer_interrupt():
    """Ctrl-C while writing: finish the write first (nothing is left half-done), then stop. Yields the list of
    signals received meanwhile."""
    got: list[int] = []
    try:
        old = signal.signal(signal.SIGINT, lambda signum, frame: got.append(signum))
    except ValueError:  # not the main thread
        yield got
        return
    try:
        yield got
    finally:
        signal.signal(signal.SIGINT, old)


def replaced_lines(plan) -> list[str]:
    return [f"{where}: {cid}" for cid, where in plan.replaced]


def _confirm_plan(plan, confirm: Confirm | None, question: str, always: bool = False) -> None:
    if confirm is None:
        return
    lines = replaced_lines(plan)
    if (lines or always) and not confirm(question, lines):
        raise Declined("declined: nothing was written")


def apply(answers, *, dry_run: bool = False, rotate=(), revoke: bool = False, confirm: Confirm | None = None,
          confirm_question: str = "Replace these values already set?", always_confirm: bool = False,
          decide=None) -> ApplyResult:
    """Plan the answers against the tree and write the plan (secrets file first). A missing tree is created
    from the bundled templates when no secrets file exists either (a first run); --dry-run writes nothing,
    anywhere (no lock, no temp-file clean-up, no tree created). Everything is read under the lock: the
    secrets file, the tree, and `decide(tree_root, store)`, which may choose the ids to rotate then."""
    from wizard.files import remove_leftover_temps, remove_leftover_temps_of
    from wizard.write import run_lock, write_plan

    deployment = Path(answers.deployment)
    create = False
    if not os.path.lexists(deployment):
        if answers.secrets_file is not None and os.path.lexists(answers.secrets_file):
            raise WizardError(f"no deployment at {deployment}, but the secrets file {answers.secrets_file} exists: "
                              "is the deployment path mistyped?",
                              hint="fix `deployment:` or --deployment; a new tree is created only on a first run")
        create = True
    elif not deployment.is_dir():
        raise WizardError(f"{deployment} is not a folder")
    tree_root = templates_dir() if create else deployment

    def make(store):
        nonlocal rotate
        if decide is not None:
            rotate = decide(tree_root, store)
        return _plan(tree_root, answers, store, rotate=rotate, revoke=revoke)

    if dry_run:
        store = read_store(answers)
        plan = make(store)
        return ApplyResult(plan, None, create, True, tree_root, _store_warnings(store))
    with run_lock(deployment, answers.secrets_file):
        if not create:
            remove_leftover_temps(deployment)
        if answers.secrets_file is not None:
            remove_leftover_temps_of(answers.secrets_file)
        store = read_store(answers)
        if create and store.exists:
            raise WizardError(f"the secrets file {answers.secrets_file} exists but there is no deployment at "
                              f"{deployment}", hint="fix the deployment path")
        plan = make(store)
        _confirm_plan(plan, confirm, confirm_question, always_confirm)
        with defer_interrupt() as interrupted:
            if create:
                copy_templates(deployment)
            written = write_plan(plan, deployment)
    return ApplyResult(plan, written, create, False, deployment, _store_warnings(store), bool(interrupted))


@dataclass
class Prepared:
    """A plan shown to the operator, to be written exactly as shown (guided setup)."""

    answers: object
    plan: object
    create: bool


def prepare(answers) -> Prepared:
    deployment = Path(answers.deployment)
    create = not os.path.lexists(deployment)
    if create and answers.secrets_file is not None and os.path.lexists(answers.secrets_file):
        raise WizardError(f"no deployment at {deployment}, but the secrets file {answers.secrets_file} exists",
                          hint="fix the deployment path")
    store = read_store(answers)
    plan = _plan(templates_dir() if create else deployment, answers, store)
    return Prepared(answers, plan, create)


def commit(prepared: Prepared) -> ApplyResult:
    """Write exactly the prepared plan: under the lock, only if the secrets file and every file still hold
    what the plan was made from (else exit 2: re-run)."""
    from wizard.files import remove_leftover_temps
    from wizard.write import run_lock, write_plan

    answers = prepared.answers
    deployment = Path(answers.deployment)
    with run_lock(deployment, answers.secrets_file):
        if prepared.create and os.path.lexists(deployment):
            raise WizardError(f"{deployment} appeared since the plan was made; nothing was written",
                              hint="re-run")
        if not prepared.create:
            remove_leftover_temps(deployment)
        with defer_interrupt() as interrupted:
            if prepared.create:
                copy_templates(deployment)
            written = write_plan(prepared.plan, deployment)
    return ApplyResult(prepared.plan, written, prepared.create, False, deployment, [], bool(interrupted))


# ---------------------------------------------------------------- rotate

@dataclass
class RotateResult:
    result: ApplyResult
    rotated: list[str]
    finished: list[str]
    locations: dict[str, list[str]]
    steps: list  # wizard.steps.Step, in the order they must run
    held_back: list[str] = field(default_factory=list)  # chosen, but a location is left over: nothing changed


def rotate(answers, ids, *, all_: bool = False, include_signing: bool = False, include_rsa: bool = False,
           revoke: bool = False, dry_run: bool = False, confirm: Confirm | None = None) -> RotateResult:
    """New values for `ids` (or --all) everywhere they live. Read under the lock: a tree whose equality
    groups disagree is refused unless the secrets file explains the split (a rotation in progress), and an
    id whose rotation is in progress is finished with its stored value, never rotated a second time."""
    from wizard import rotate as R
    from wizard.locate.resolve import Tree

    deployment = Path(answers.deployment)
    if not deployment.is_dir():
        raise WizardError(f"no deployment at {deployment}")
    chosen: list[str] = []
    fresh: list[str] = []
    finishing: list[str] = []
    before: dict[str, str] = {}

    def decide(tree_root, store):
        if not store.exists:
            raise SecretsError(f"no secrets file at {answers.secrets_file}: configure the tree first "
                               "(wizard --answers)")
        includes = {"include-signing-key": include_signing, "include-rsa-key": include_rsa}
        chosen[:] = R.select_ids(list(ids), all_, includes, store)
        bad, explained = R.split_groups(Tree(tree_root), store, getattr(answers, "locations", None))
        if bad:
            raise WizardError(f"the tree breaks equality groups the secrets file does not explain: {', '.join(bad)}",
                              hint="run wizard check, settle the values, then rotate")
        finishing[:] = [i for i in chosen if i in store.rotating or i in explained]
        fresh[:] = [i for i in chosen if i not in finishing]
        before.update(store.values)
        return tuple(fresh)

    result = apply(answers, dry_run=dry_run, revoke=revoke, confirm=confirm, decide=decide,
                   confirm_question="Rotate these secrets?", always_confirm=True)
    # a new value whose group cannot be placed whole is written nowhere (never split): not rotated
    held = [i for i in fresh if result.plan.store.values.get(i) == before.get(i)]
    done = [i for i in chosen if i not in held]
    locations = R.rotation_locations(done, result.plan.where)
    steps = R.rotation_steps(deployment, done, locations, result.plan.changed_files, answers=answers,
                             kube_files=result.plan.kube_files)
    return RotateResult(result, [i for i in fresh if i not in held], finishing, locations, steps, held)


def deploy_steps(answers, result: ApplyResult | None = None) -> list:
    """How to deploy the configured tree, in order (the tree's own deploy script when nothing would stop it).
    Without a result (a run that wrote nothing), the answers' deployment folder."""
    from wizard.scan import preflight_hits
    from wizard.steps import deploy_steps as steps_for

    root = result.tree_root if result is not None else Path(answers.deployment)
    return steps_for(root, cwd=Path.cwd(), blocking_lines=preflight_hits(root))


# ---------------------------------------------------------------- undo

@dataclass
class UndoResult:
    plan: object  # wizard.write.UndoPlan
    restored: list[str]
    dry_run: bool


def undo(deployment: Path, *, dry_run: bool = False, force: bool = False,
         confirm: Confirm | None = None) -> UndoResult:
    from wizard.write import apply_undo, plan_undo, run_lock

    deployment = Path(deployment)
    if dry_run:
        return UndoResult(plan_undo(deployment), [], True)
    with run_lock(deployment):
        up = plan_undo(deployment)
        if up.edited and not force:
            raise WizardError("changed since the run it would undo (hand edits?): " + ", ".join(up.edited)
                              + "; nothing was restored", hint="keep the edits, or wizard undo --force")
        if not up.nothing and confirm is not None:
            lines = [label for label, _, _ in up.restores] + [f"{label} (removed)" for label, _ in up.removes]
            if not confirm(f"Restore the state before the run of {up.time}?", lines):
                raise Declined("declined: nothing was restored")
        with defer_interrupt():
            restored = apply_undo(deployment, up)
    return UndoResult(up, restored, False)


# ---------------------------------------------------------------- check, init, secrets

def check(where: Where, *, rules=None, allow_domains=()):
    from wizard.check import run_check
    from wizard.locate.resolve import Tree

    if not holds_deployment(where.deployment):
        raise WizardError(f"no deployment found in {where.deployment} (no Kubernetes object and no homeserver "
                          "config in it)")
    store = read_store(where.answers)
    return run_check(Tree(where.deployment), where.answers, store, rules=rules, allow_domains=allow_domains)


def init(dest: Path, *, dry_run: bool = False) -> tuple[int, Path | None]:
    """Copy the bundled templates to `dest` (which must not exist), and write answers.example.yaml beside it
    unless a file of that name is there. Returns (files copied, the example written or None)."""
    from wizard.answers_file import EXAMPLE_NAME, write_example

    dest = Path(dest)
    if os.path.lexists(dest):
        raise WizardError(f"{dest} already exists; refusing to overwrite it", hint="choose another folder")
    example = dest.parent / EXAMPLE_NAME
    if dry_run:
        count = sum(1 for p in templates_dir().rglob("*") if p.is_file() and p.name != "__init__.py"
                    and "__pycache__" not in p.parts)
        return count, None if os.path.lexists(example) else example
    count = copy_templates(dest)
    return count, write_example(dest.parent)


def secrets_of(answers):
    store = read_store(answers)
    if not store.exists:
        raise WizardError(f"no secrets file at {answers.secrets_file}")
    return store
