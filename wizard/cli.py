"""Command line: arguments, exit codes, and what each command prints. Nothing else."""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from wizard import __version__
from wizard.errors import WizardError

DEFAULT_DEPLOYMENT = "deployment"
DEFAULT_ANSWERS = "wizard-answers.yaml"

EPILOG = """\
commands:
  (none)               guided setup of ./deployment (or --deployment DIR); with --answers FILE,
                       a non-interactive apply that never prompts
  init [DIR]           copy the bundled templates to DIR (default ./deployment)
  check                audit a tree: placeholders, example.com, equality groups, LI rules, schema,
                       duplicate objects, Service/Secret references, replication listener, PDBs
  secrets show ID      print one secret (e.g. li.admin_password)
  rotate ID... | --all replace secrets everywhere they live and say what to restart
  checklist            the pre-deployment checklist and the state of each item
  undo                 restore what the last run changed (backups: .wizard-backups/ beside the tree)

examples:
  wizard init deployment
  wizard --answers prod.yaml --dry-run       # show the diff, secrets masked, write nothing
  wizard --answers prod.yaml --yes           # configure the tree
  wizard check --answers prod.yaml --strict  # CI gate: exit 1 on any error or warning
  wizard rotate turn.shared_secret --answers prod.yaml

exit codes: 0 ok · 1 check found an error · 2 bad input (nothing written) · 130 interrupted
The default answers file is wizard-answers.yaml beside the deployment folder.
Set NO_COLOR=1 to disable colour.
"""


def _common(parser: argparse.ArgumentParser, suppress: bool) -> None:
    d = argparse.SUPPRESS if suppress else None
    parser.add_argument("--deployment", metavar="DIR", default=d,
                        help="the deployment tree (wins over the answers file's `deployment:`)")
    parser.add_argument("--answers", metavar="FILE", default=d, help="answers file (YAML, safe to commit)")
    parser.add_argument("--dry-run", action="store_true", default=argparse.SUPPRESS if suppress else False,
                        help="print the diff (secrets masked) and write nothing")
    parser.add_argument("--yes", "-y", action="store_true", default=argparse.SUPPRESS if suppress else False,
                        help="do not ask for confirmation")
    parser.add_argument("--json", action="store_true", default=argparse.SUPPRESS if suppress else False,
                        help="machine-readable output on stdout")
    parser.add_argument("--show-secrets", action="store_true", default=argparse.SUPPRESS if suppress else False,
                        help="do not mask secret values in diffs (careful: terminals and CI logs keep them)")
    parser.add_argument("--no-color", action="store_true", default=argparse.SUPPRESS if suppress else False,
                        help="no colour (same as NO_COLOR=1)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wizard", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Configure a Matrix/Synapse Kubernetes deployment tree: every CHANGEME placeholder, "
                    "secret, domain and LI setting, surgically, and keep it right through rotations.")
    p.add_argument("--version", action="version", version=f"wizard {__version__}")
    _common(p, suppress=False)
    p.add_argument("--from", dest="from_file", metavar="FILE", help="guided setup: pre-fill from this answers file")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("init", help="copy the bundled templates to DIR (refuses when DIR exists)")
    s.add_argument("dir", nargs="?", default=None, metavar="DIR")
    _common(s, suppress=True)

    s = sub.add_parser("check", help="audit a tree (read-only)", description="Audit a deployment tree. One line per "
                       "finding: FILE:LINE: SEVERITY RULE: message (hint). Exit 1 on any error (and, with --strict, "
                       "any warning).")
    s.add_argument("--strict", action="store_true", help="warnings also make the exit code 1")
    s.add_argument("--rule", action="append", metavar="ID", help="run only this rule (repeat, or ID,ID; "
                   "rules are listed in docs/check.md and by an unknown ID)")
    s.add_argument("--skip-rule", action="append", metavar="ID", help="do not run this rule (repeat, or ID,ID)")
    s.add_argument("--allow-domain", action="append", metavar="DOMAIN",
                   help="stray-domain: also accept DOMAIN and its subdomains (a public service you use)")
    _common(s, suppress=True)

    s = sub.add_parser("secrets", help="secret store commands")
    ss = s.add_subparsers(dest="secrets_command", metavar="SUBCOMMAND")
    show = ss.add_parser("show", help="print one secret value")
    show.add_argument("id", metavar="ID")
    _common(show, suppress=True)
    lst = ss.add_parser("list", help="list the ids in the secrets file (no values)")
    _common(lst, suppress=True)

    s = sub.add_parser("rotate", help="rotate secrets everywhere they live")
    s.add_argument("ids", nargs="*", metavar="ID")
    s.add_argument("--all", action="store_true", help="every generated secret except the signing and RSA keys")
    s.add_argument("--include-signing-key", action="store_true", help="with --all: the signing key too")
    s.add_argument("--include-rsa-key", action="store_true", help="with --all: the key vault RSA key too")
    mode = s.add_mutually_exclusive_group()
    mode.add_argument("--retire", action="store_true", help="signing key: old signatures stay valid (default)")
    mode.add_argument("--revoke", action="store_true", help="signing key: compromised, expire it in the past")
    _common(s, suppress=True)

    s = sub.add_parser("undo", help="restore the files (and secrets file) the last run changed, from its backup")
    _common(s, suppress=True)

    s = sub.add_parser("checklist", help="the pre-deployment checklist with each item's state",
                       description="The pre-deployment checklist: each item done by the wizard, confirmed by the "
                       "operator (checklist: in the answers file), or open. Checks (tools, cluster, DNS, SMTP) "
                       "run with a short timeout; a failed check is an open item.")
    s.add_argument("--no-checks", action="store_true", help="do not run the checks (tools, cluster, DNS, SMTP)")
    s.add_argument("--check-timeout", type=float, default=5.0, metavar="SECONDS",
                   help="time allowed to each check (default 5)")
    _common(s, suppress=True)
    return p


class Ctx:
    def __init__(self, ns: argparse.Namespace):
        self.ns = ns
        self.json = bool(getattr(ns, "json", False))
        self.out = sys.stdout
        self.err = sys.stderr
        from wizard.ui.render import use_colour

        self.colour = use_colour(self.out) and not getattr(ns, "no_color", False) and not self.json

    def opt(self, name, default=None):
        return getattr(self.ns, name, default)

    def say(self, text: str = "") -> None:
        if not self.json:
            print(text, file=self.out)

    def emit_json(self, data) -> None:
        print(json.dumps(data, indent=2, sort_keys=True), file=self.out)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    ns = parser.parse_args(argv)
    ctx = Ctx(ns)
    try:
        return _dispatch(ctx)
    except KeyboardInterrupt:
        print("\ninterrupted: nothing was written", file=sys.stderr)
        return 130
    except WizardError as exc:
        if ctx.json:
            ctx.emit_json({"ok": False, "error": str(exc), "exit_code": exc.exit_code,
                           "errors": exc.lines() if hasattr(exc, "lines") else [str(exc)]})
        lines = exc.lines() if hasattr(exc, "lines") else [str(exc)]
        for line in lines:
            print(f"wizard: error: {line}", file=sys.stderr)
        if len(lines) > 1:
            print(f"wizard: {len(lines)} problems; nothing was written", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # noqa: BLE001 - last resort: no traceback (it could quote values)
        if os.environ.get("WIZARD_DEBUG"):
            raise
        print(f"wizard: internal error ({type(exc).__name__}); nothing half-written: files are replaced "
              "atomically. Re-run with WIZARD_DEBUG=1 for the traceback and report it.", file=sys.stderr)
        return 70


def _dispatch(ctx: Ctx) -> int:
    cmd = ctx.opt("command")
    if cmd == "init":
        return cmd_init(ctx)
    if cmd == "check":
        return cmd_check(ctx)
    if cmd == "secrets":
        return cmd_secrets(ctx)
    if cmd == "rotate":
        from wizard.rotate import cmd_rotate

        return cmd_rotate(ctx)
    if cmd == "undo":
        return cmd_undo(ctx)
    if cmd == "checklist":
        from wizard.checklist import cmd_checklist

        return cmd_checklist(ctx)
    if ctx.opt("answers"):
        return cmd_apply(ctx)
    from wizard.ui.guided import cmd_guided

    return cmd_guided(ctx)


# ------------------------------------------------------------------ helpers shared by commands

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


def copy_templates(dest: Path) -> None:
    dest = Path(dest)
    if dest.exists():
        raise WizardError(f"{dest} already exists; refusing to overwrite it", hint="choose another folder")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".wizard-tmp-init-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(templates_dir(), tmp, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    os.replace(tmp, dest)


def default_answers_path(deployment: Path) -> Path:
    return Path(deployment).resolve().parent / DEFAULT_ANSWERS


def load_context(ctx: Ctx, *, need_answers: bool, must_exist: bool = True):
    """(answers or None, deployment Path, store) from flags, the answers file and defaults."""
    from wizard.answers import load_answers
    from wizard.store import SecretStore, load_store

    dep_flag = ctx.opt("deployment")
    answers_flag = ctx.opt("answers")
    if must_exist and dep_flag and not Path(dep_flag).is_dir():
        raise WizardError(f"no deployment at {dep_flag}")
    answers = None
    if answers_flag:
        answers = load_answers(Path(answers_flag), deployment_override=Path(dep_flag) if dep_flag else None)
    else:
        dep = Path(dep_flag or DEFAULT_DEPLOYMENT)
        default = default_answers_path(dep)
        if default.exists():
            answers = load_answers(default, deployment_override=Path(dep_flag) if dep_flag else None)
    if need_answers and answers is None:
        raise WizardError("no answers file: give --answers FILE (or keep wizard-answers.yaml beside the deployment)")
    deployment = answers.deployment if answers else Path(dep_flag or DEFAULT_DEPLOYMENT)
    if must_exist and not Path(deployment).is_dir():
        raise WizardError(f"no deployment at {deployment}")
    store = load_store(answers.secrets_file) if answers else SecretStore(None)
    return answers, Path(deployment), store


# ------------------------------------------------------------------ commands

def cmd_init(ctx: Ctx) -> int:
    dest = Path(ctx.opt("dir") or ctx.opt("deployment") or DEFAULT_DEPLOYMENT)
    if dest.exists():
        print(f"wizard: error: {dest} already exists; refusing to overwrite it", file=sys.stderr)
        return 2
    copy_templates(dest)
    count = sum(1 for _ in dest.rglob("*") if _.is_file())
    if ctx.json:
        ctx.emit_json({"ok": True, "created": str(dest), "files": count})
    else:
        ctx.say(f"created {dest} from the bundled templates ({count} files)")
        ctx.say(f"next: write an answers file (see answers.example.yaml) and run wizard --answers FILE --deployment {dest}")
    return 0


def cmd_apply(ctx: Ctx) -> int:
    from wizard.answers import load_answers
    from wizard.store import load_store

    dep_flag = ctx.opt("deployment")
    answers = load_answers(Path(ctx.opt("answers")), deployment_override=Path(dep_flag) if dep_flag else None)
    store = load_store(answers.secrets_file)
    code = apply_answers(ctx, answers, store)
    if code == 0 and not ctx.opt("dry_run"):
        from wizard.checklist import write_well_known

        for path in write_well_known(answers):
            ctx.say(f"wrote {path}")
    return code


def apply_answers(ctx: Ctx, answers, store, *, rotate=(), revoke=False, quiet=False) -> int:
    from wizard.locate.resolve import Tree
    from wizard.plan import make_plan
    from wizard.write import remove_leftover_temps, remove_leftover_temps_of, tree_lock, write_plan

    deployment = Path(answers.deployment)
    dry = bool(ctx.opt("dry_run"))
    created = False
    if not deployment.exists():
        if dry:
            ctx.say(f"{deployment} does not exist: showing the changes against the bundled templates")
            tree_root = templates_dir()
        else:
            copy_templates(deployment)
            created = True
            ctx.say(f"created {deployment} from the bundled templates")
            tree_root = deployment
    elif not deployment.is_dir():
        raise WizardError(f"{deployment} is not a folder")
    else:
        tree_root = deployment

    def build():
        return make_plan(Tree(tree_root), answers, store, rotate=tuple(rotate), revoke=revoke)

    if dry:
        plan = build()
        if not (quiet and ctx.json):
            _report_plan(ctx, plan, answers, dry=True, created=created)
        return 0
    with tree_lock(tree_root):
        remove_leftover_temps(tree_root)
        if answers.secrets_file is not None:
            remove_leftover_temps_of(answers.secrets_file)
        plan = build()
        written = write_plan(plan, tree_root)
    if not quiet:
        _report_plan(ctx, plan, answers, dry=False, created=created, written=written)
    return 0


def tracked_secret_manifests(deployment: Path) -> list[str]:
    """Files of the tree that hold secrets and are tracked by git (they would be pushed in clear)."""
    import subprocess

    from wizard.catalog import SECRETS
    from wizard.write import in_git_worktree

    deployment = Path(deployment)
    if in_git_worktree(deployment) is None:
        return []
    files = sorted({loc.split(" › ")[0] for s in SECRETS for loc in s.locations})
    try:
        out = subprocess.run(["git", "-C", str(deployment), "ls-files", "--", *files], capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [ln for ln in out.stdout.splitlines() if ln]


def _report_plan(ctx: Ctx, plan, answers, *, dry: bool, created: bool, written=None) -> None:
    from wizard.ui.render import Masker, colour_diff_line, paint, unified_diff

    masker = Masker(plan.secret_values, show=bool(ctx.opt("show_secrets")))
    changed = plan.changed_files
    if ctx.json:
        ctx.emit_json({
            "ok": True, "dry_run": dry, "deployment": str(answers.deployment), "created": created,
            "changed_files": changed, "generated": sorted(set(plan.generated)), "adopted": sorted(set(plan.adopted)),
            "secrets_file": str(answers.secrets_file) if answers.secrets_file else None,
            "secrets_file_changed": plan.store_changed,
            "edits": [{"file": e.file, "line": plan.files[e.file].line_of(e.start), "ids": list(e.ids), "what": e.what}
                      for e in plan.edits],
        })
        return
    if dry:
        for rel in changed:
            for line in unified_diff(rel, plan.old_texts[rel], plan.new_texts[rel], masker):
                ctx.say(colour_diff_line(line) if ctx.colour else line)
        ctx.say()
        if changed:
            ctx.say(f"dry run: {len(changed)} files would change; nothing was written")
        else:
            ctx.say("dry run: nothing to change")
        return
    if not changed and not plan.store_changed:
        ctx.say(paint("nothing to change: the tree already matches the answers", "green", ctx.colour))
        return
    if plan.store_changed:
        ctx.say(f"secrets file: {answers.secrets_file} (mode 0600)")
    if plan.generated:
        ctx.say(f"generated: {', '.join(sorted(set(plan.generated)))}")
    if plan.adopted:
        ctx.say(f"kept from the tree: {', '.join(sorted(set(plan.adopted)))}")
    ctx.say(paint(f"updated {len(changed)} files in {answers.deployment}", "green", ctx.colour))
    for rel in changed:
        n = sum(1 for e in plan.edits if e.file == rel)
        ctx.say(f"  {rel} ({n} {'edit' if n == 1 else 'edits'})")
    if "li.admin_password" in plan.generated:
        where = f" --answers {answers.path}" if answers.path else ""
        ctx.say(f"the LI admin UI password is in the secrets file: wizard secrets show li.admin_password{where}")
    tracked = tracked_secret_manifests(answers.deployment)
    if tracked:
        print(f"wizard: warning: {len(tracked)} manifests holding secrets are tracked by git "
              f"({', '.join(tracked[:3])}{', …' if len(tracked) > 3 else ''}): do not push them in clear; "
              "encrypt them (sops) or generate SealedSecrets instead", file=sys.stderr)


def cmd_check(ctx: Ctx) -> int:
    from wizard.check import ERROR, WARNING, run_check, summarize
    from wizard.locate.resolve import Tree
    from wizard.rules import select

    rules = select(ctx.opt("rule"), ctx.opt("skip_rule") or ())
    answers, deployment, store = load_context(ctx, need_answers=False)
    findings = run_check(Tree(deployment), answers, store, rules=rules, allow_domains=ctx.opt("allow_domain") or ())
    counts = summarize(findings)
    strict = bool(ctx.opt("strict"))
    failed = counts[ERROR] > 0 or (strict and counts[WARNING] > 0)
    summary = f"{counts['error']} errors, {counts['warning']} warnings, {counts['info']} info"
    if ctx.json:
        ctx.emit_json({"ok": not failed, "counts": counts, "rules": sorted(rules),
                       "findings": [f.to_json() for f in findings]})
    elif not ctx.colour:
        for f in findings:
            ctx.say(f.format())
        ctx.say(summary)
    else:  # a terminal: grouped by severity, coloured; each line keeps the FILE:LINE: … format
        from rich.console import Console
        from rich.text import Text

        console = Console(file=ctx.out, highlight=False, soft_wrap=True)
        styles = {"error": "bold red", "warning": "yellow", "info": "dim"}
        titles = {"error": "errors", "warning": "warnings", "info": "info"}
        for severity in ("error", "warning", "info"):
            group = [f for f in findings if f.severity == severity]
            if not group:
                continue
            console.print(Text(f"{titles[severity]} ({len(group)})", style=styles[severity] + " underline"))
            for f in group:
                console.print(Text.assemble((f"{f.file}:{f.line}", "cyan"), ": ", (f.severity, styles[severity]),
                                            " ", (f.rule, "bold"), ": ", f.message,
                                            (f" ({f.hint})" if f.hint else "", "dim")))
            console.print()
        console.print(Text(summary, style="bold red" if failed else "bold green"))
    return 1 if failed else 0


def cmd_undo(ctx: Ctx) -> int:
    from wizard.write import restore_last_backup, tree_lock

    _, deployment, _ = load_context(ctx, need_answers=False)
    with tree_lock(deployment):
        folder, restored = restore_last_backup(deployment)
    if ctx.json:
        ctx.emit_json({"ok": True, "backup": str(folder), "restored": restored})
    else:
        ctx.say(f"restored {len(restored)} files from {folder}")
        for rel in restored:
            ctx.say(f"  {rel}")
    return 0


def cmd_secrets(ctx: Ctx) -> int:
    from wizard.catalog import SECRET_BY_ID

    sub = ctx.opt("secrets_command")
    if sub not in ("show", "list"):
        raise WizardError("usage: wizard secrets show ID | wizard secrets list")
    answers, deployment, store = load_context(ctx, need_answers=True, must_exist=False)
    if not store.exists:
        raise WizardError(f"no secrets file at {answers.secrets_file}")
    if sub == "list":
        ids = sorted(store.values)
        if ctx.json:
            ctx.emit_json({"ids": ids, "provided": sorted(store.provided)})
        else:
            for i in ids:
                ctx.say(f"{i}{' (provided)' if i in store.provided else ''}")
        return 0
    cid = ctx.opt("id")
    if cid not in SECRET_BY_ID:
        raise WizardError(f"unknown secret id {cid!r}", hint="wizard secrets list")
    if cid not in store.values:
        raise WizardError(f"{cid} is not in {answers.secrets_file}")
    if ctx.json:
        ctx.emit_json({"id": cid, "value": store.values[cid]})
    else:
        print(store.values[cid])
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
