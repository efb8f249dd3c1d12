"""Command line: arguments, exit codes, and what each command prints. The work is done by wizard.app."""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

from wizard import __version__
from wizard.errors import WizardError

EPILOG = """\
commands:
  (none)               guided setup of ./deployment (or --deployment DIR); with --answers FILE,
                       a non-interactive apply that never asks a question
  init [DIR]           copy the bundled templates to DIR (default ./deployment)
  check                audit a tree: placeholders, example.com, equality groups, LI rules, schema,
                       duplicate objects, Service/Secret references, replication listener, PDBs
  secrets show ID      print one secret (e.g. li.admin_password)
  rotate ID... | --all replace secrets everywhere they live and say what to do next
  checklist            the pre-deployment checklist and the state of each item
  undo                 restore what the last run changed (backups: .wizard-backups/ beside the tree)

examples:
  wizard init deployment
  wizard --answers prod.yaml --dry-run       # show the diff, secrets masked, write nothing
  wizard --answers prod.yaml --yes           # configure the tree
  wizard check --answers prod.yaml --strict  # CI gate: exit 1 on any error or warning
  wizard rotate turn.shared_secret --answers prod.yaml

confirmation: on a terminal, a command that would replace a value already set (rotate, undo, or an
apply that changes a set value) shows it and asks once; --yes skips the question. Without a
terminal it never asks: such a change needs --yes (exit 2 otherwise).

exit codes:
  0    success (apply: nothing left to do; notes may be listed)
  1    check found an error (a warning too with --strict); apply configured what it could and
       listed the leftovers
  2    bad input, nothing written (answers, arguments, no deployment, refused secrets file, a value
       a consumer cannot carry, a held lock, a declined or missing confirmation, ...)
  3    a write failed part-way: the files written and not written are named; a re-run finishes
  130  interrupted: nothing half-written
The default answers file is wizard-answers.yaml beside the deployment folder.
Set NO_COLOR=1 (or --no-color) to disable colour.
"""

# The flags each command honours (and offers in its --help); nothing else is accepted.
APPLY_FLAGS = ("deployment", "answers", "dry_run", "yes", "json", "show_secrets", "no_color", "from_file")
HONOURS = {
    None: APPLY_FLAGS,
    "init": ("dry_run", "json"),
    "check": ("deployment", "answers", "json", "no_color"),
    "secrets": ("deployment", "answers", "json"),
    "rotate": ("deployment", "answers", "dry_run", "yes", "json", "show_secrets", "no_color"),
    "undo": ("deployment", "answers", "dry_run", "yes", "json"),
    "checklist": ("deployment", "answers", "json", "no_color"),
}
_FLAG_HELP = {
    "deployment": (("--deployment",), dict(metavar="DIR", help="the deployment tree (wins over the answers file's "
                                                                "`deployment:`)")),
    "answers": (("--answers",), dict(metavar="FILE", help="answers file (YAML, safe to commit)")),
    "dry_run": (("--dry-run",), dict(action="store_true", help="show what would change (secrets masked) and write "
                                                                 "nothing, anywhere")),
    "yes": (("--yes", "-y"), dict(action="store_true", help="confirm replacing values already set (no question; "
                                                             "needed without a terminal)")),
    "json": (("--json",), dict(action="store_true", help="machine-readable output on stdout (never asks)")),
    "show_secrets": (("--show-secrets",), dict(action="store_true", help="do not mask secret values in diffs "
                                                                          "(careful: terminals and CI logs keep them)")),
    "no_color": (("--no-color",), dict(action="store_true", help="no colour (same as NO_COLOR=1)")),
    "from_file": (("--from",), dict(dest="from_file", metavar="FILE", help="guided setup: pre-fill from this "
                                                                           "answers file")),
}


def _flags(parser: argparse.ArgumentParser, names, *, top: bool = False) -> None:
    for name in names:
        args, kw = _FLAG_HELP[name]
        kw = dict(kw)
        kw["default"] = argparse.SUPPRESS  # absent unless given: lets us tell given flags apart
        parser.add_argument(*args, **kw)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # exit 2 with one line, as every other bad input
        self.print_usage(sys.stderr)
        print(f"wizard: error: {message}", file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="wizard", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Configure a Matrix/Synapse Kubernetes deployment tree: every CHANGEME placeholder, "
                    "secret, domain and LI setting, surgically, and keep it right through rotations.")
    p.add_argument("--version", action="version", version=f"wizard {__version__}")
    _flags(p, APPLY_FLAGS, top=True)
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    s = sub.add_parser("init", help="copy the bundled templates to DIR (refuses when DIR exists)",
                       description="Copy the bundled templates to DIR (default ./deployment); refuses when DIR "
                                   "exists. --dry-run says what would be created and creates nothing.")
    s.add_argument("dir", nargs="?", default=None, metavar="DIR")
    _flags(s, HONOURS["init"])

    s = sub.add_parser("check", help="audit a tree (read-only)", description="Audit a deployment tree. One line per "
                       "finding: FILE:LINE: SEVERITY RULE: message (hint). Exit 1 on any error (and, with --strict, "
                       "any warning); exit 2 when the folder holds no deployment.")
    s.add_argument("--strict", action="store_true", help="warnings also make the exit code 1")
    s.add_argument("--rule", action="append", metavar="ID", help="run only this rule (repeat, or ID,ID; "
                   "rules are listed in docs/check.md and by an unknown ID)")
    s.add_argument("--skip-rule", action="append", metavar="ID", help="do not run this rule (repeat, or ID,ID)")
    s.add_argument("--allow-domain", action="append", metavar="DOMAIN",
                   help="stray-domain: also accept DOMAIN and its subdomains (a public service you use)")
    _flags(s, HONOURS["check"])

    s = sub.add_parser("secrets", help="show one secret, or list the ids in the secrets file",
                       description="The explicit way to see a secret: wizard secrets show ID.")
    ss = s.add_subparsers(dest="secrets_command", metavar="SUBCOMMAND", parser_class=_Parser)
    show = ss.add_parser("show", help="print one secret value")
    show.add_argument("id", metavar="ID")
    show.add_argument("--as-sql-role", metavar="ROLE",
                      help="print `ALTER ROLE \"ROLE\" WITH PASSWORD '…';` for psql instead of the bare value")
    _flags(show, HONOURS["secrets"])
    lst = ss.add_parser("list", help="list the ids in the secrets file (no values)")
    _flags(lst, HONOURS["secrets"])

    s = sub.add_parser("rotate", help="rotate secrets everywhere they live",
                       description="Replace secrets everywhere they live (secrets file first), then print the "
                                   "steps in the order they must run: apply the manifests, change what lives "
                                   "outside the tree (database roles, MinIO), restart the clients.")
    s.add_argument("ids", nargs="*", metavar="ID")
    s.add_argument("--all", action="store_true", help="every generated secret except the signing and RSA keys")
    s.add_argument("--include-signing-key", action="store_true", help="with --all: the signing key too")
    s.add_argument("--include-rsa-key", action="store_true", help="with --all: the key vault RSA key too")
    mode = s.add_mutually_exclusive_group()
    mode.add_argument("--retire", action="store_true", help="signing key: old signatures stay valid (default)")
    mode.add_argument("--revoke", action="store_true", help="signing key: compromised, expire it in the past")
    _flags(s, HONOURS["rotate"])

    s = sub.add_parser("undo", help="restore the files (and secrets file) the last run changed, from its backup",
                       description="Restore what the last run changed, all or nothing. Refused when a file was "
                                   "edited since that run (--force restores anyway).")
    s.add_argument("--force", action="store_true", help="restore even files edited since the run")
    _flags(s, HONOURS["undo"])

    s = sub.add_parser("checklist", help="the pre-deployment checklist with each item's state",
                       description="The pre-deployment checklist: each item done by the wizard, confirmed by the "
                       "operator (checklist: in the answers file), or open. Checks (tools, cluster, DNS, SMTP) "
                       "run with a short timeout; a failed check is an open item.")
    s.add_argument("--no-checks", action="store_true", help="do not run the checks (tools, cluster, DNS, SMTP)")
    s.add_argument("--check-timeout", type=float, default=5.0, metavar="SECONDS",
                   help="time allowed to each check (default 5)")
    _flags(s, HONOURS["checklist"])
    return p


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = build_parser()
    ns = parser.parse_args(argv)
    cmd = getattr(ns, "command", None)
    given = [n for n in APPLY_FLAGS if n in vars(ns)]
    not_here = [n for n in given if n not in HONOURS[cmd]]
    if not_here:
        flag = _FLAG_HELP[not_here[0]][0][0]
        parser.error(f"{flag} is not an option of `wizard {cmd}`" if cmd else f"{flag} is not an option here")
    for name in APPLY_FLAGS:
        if name not in vars(ns):
            setattr(ns, name, None if name in ("deployment", "answers", "from_file") else False)
    return ns


class Ctx:
    def __init__(self, ns: argparse.Namespace):
        self.ns = ns
        self.json = bool(getattr(ns, "json", False))
        self.out = sys.stdout
        self.err = sys.stderr
        self.closed = False
        from wizard.ui.render import use_colour

        self.colour = use_colour(self.out) and not getattr(ns, "no_color", False) and not self.json

    def opt(self, name, default=None):
        return getattr(self.ns, name, default)

    def _print(self, text: str, stream) -> None:
        if self.closed:
            return
        try:
            print(text, file=stream)
            stream.flush()
        except BrokenPipeError:  # `| head`: the reader left; the command still finishes its work
            self.closed = True
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, stream.fileno())
            except (OSError, ValueError):
                pass

    def say(self, text: str = "") -> None:
        if not self.json:
            self._print(text, self.out)

    def warn(self, text: str) -> None:
        self._print(f"wizard: warning: {text}", self.err)

    def emit_json(self, data) -> None:
        self._print(json.dumps(data, indent=2, sort_keys=True), self.out)


def main(argv: list[str] | None = None) -> int:
    ns = parse(argv)
    ctx = Ctx(ns)
    try:
        return _dispatch(ctx)
    except KeyboardInterrupt:
        ctx._print("\ninterrupted: nothing was written", sys.stderr)
        return 130
    except WizardError as exc:
        lines = exc.lines() if hasattr(exc, "lines") else [str(exc)]
        if ctx.json:
            ctx.emit_json({"ok": False, "error": str(exc), "exit_code": exc.exit_code, "errors": lines})
        for line in lines:
            ctx._print(f"wizard: error: {line}", sys.stderr)
        if len(lines) > 1 and exc.exit_code == 2:
            ctx._print(f"wizard: {len(lines)} problems; nothing was written", sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        return 0
    except Exception as exc:  # noqa: BLE001 - last resort: one line, no traceback (it could quote values)
        if os.environ.get("WIZARD_DEBUG"):
            raise
        ctx._print(f"wizard: internal error ({type(exc).__name__}): files are replaced atomically, so none is "
                   "half-written; re-run to finish. Re-run with WIZARD_DEBUG=1 for the traceback and report it.",
                   sys.stderr)
        return 3


def _dispatch(ctx: Ctx) -> int:
    cmd = ctx.opt("command")
    if cmd == "init":
        return cmd_init(ctx)
    if cmd == "check":
        return cmd_check(ctx)
    if cmd == "secrets":
        return cmd_secrets(ctx)
    if cmd == "rotate":
        return cmd_rotate(ctx)
    if cmd == "undo":
        return cmd_undo(ctx)
    if cmd == "checklist":
        return cmd_checklist(ctx)
    if ctx.opt("answers"):
        if ctx.opt("from_file"):
            raise WizardError("--from pre-fills guided setup; with --answers FILE there is nothing to pre-fill")
        return cmd_apply(ctx)
    from wizard.ui.guided import cmd_guided

    return cmd_guided(ctx)


# ------------------------------------------------------------------ confirmation

def terminal(ctx: Ctx) -> bool:
    return sys.stdin.isatty() and sys.stderr.isatty() and not ctx.json


def confirmer(ctx: Ctx):
    """PRODUCT's "Confirmation": None (proceed) with --yes; on a terminal, ask once; without one, exit 2
    naming --yes."""
    if ctx.opt("yes"):
        return None

    def confirm(question: str, lines: list[str]) -> bool:
        if not terminal(ctx):
            shown = f" ({', '.join(lines[:3])}{', …' if len(lines) > 3 else ''})" if lines else ""
            raise WizardError(f"{question.rstrip('?')}{shown}: this replaces values already set and there is no "
                              "terminal to confirm it", hint="add --yes to confirm")
        for line in lines[:40]:
            print(f"  {line}", file=sys.stderr)
        if len(lines) > 40:
            print(f"  … and {len(lines) - 40} more", file=sys.stderr)
        sys.stderr.write(f"{question} [y/N] ")
        sys.stderr.flush()
        answer = sys.stdin.readline()
        if not answer:
            raise KeyboardInterrupt
        return answer.strip().lower() in ("y", "yes")

    return confirm


# ------------------------------------------------------------------ commands

def _where(ctx: Ctx, *, need_answers: bool, must_exist: bool = True):
    from wizard import app

    return app.locate(ctx.opt("deployment"), ctx.opt("answers"), need_answers=need_answers, must_exist=must_exist)


def cmd_init(ctx: Ctx) -> int:
    from wizard import app

    dest = Path(ctx.opt("dir") or app.DEFAULT_DEPLOYMENT)
    dry = bool(ctx.opt("dry_run"))
    count, example = app.init(dest, dry_run=dry)
    if ctx.json:
        ctx.emit_json({"ok": True, "dry_run": dry, "created": None if dry else str(dest), "files": count,
                       "example": None if example is None else str(example)})
    elif dry:
        also = f" and {_shown(example)} (every answers key, documented)" if example is not None else ""
        ctx.say(f"dry run: would create {dest} from the bundled templates ({count} files){also}; "
                "nothing was written")
    else:
        ctx.say(f"created {dest} from the bundled templates ({count} files)")
        if example is not None:
            ctx.say(f"wrote {_shown(example)} beside it: every answers key, documented")
        ctx.say(f"next: wizard --deployment {shlex.quote(_shown(dest))}   # guided setup of the new tree")
        ctx.say("  or copy the example answers file, fill it in, and run: wizard --answers <your answers file> "
                f"--deployment {shlex.quote(_shown(dest))}")
    return 0


def cmd_apply(ctx: Ctx) -> int:
    from wizard import app
    from wizard.answers import load_answers

    dep_flag = ctx.opt("deployment")
    answers = load_answers(Path(ctx.opt("answers")), deployment_override=Path(dep_flag) if dep_flag else None)
    result = app.apply(answers, dry_run=bool(ctx.opt("dry_run")), confirm=confirmer(ctx))
    report_apply(ctx, result, answers)
    return exit_code(result)


def exit_code(result) -> int:
    """130 interrupted (after finishing the write); 1 when something is left over; else 0."""
    if result.interrupted:
        return 130
    return 1 if result.plan.leftovers else 0


def report_problems(ctx: Ctx, plan) -> None:
    """What was found elsewhere than the catalog says, what is left (exit 1) and the notes."""
    from wizard.ui.render import paint

    if plan.found:
        ctx.say("found elsewhere than the catalog says:")
        for f in plan.found:
            ctx.say(f"  {f.id}: {f.how}")
    if plan.leftovers:
        ctx.say(paint(f"left over ({len(plan.leftovers)}): the rest is configured; fix these and re-run", "red",
                      ctx.colour))
        for p in plan.leftovers:
            ctx.say(f"  {p.format()}")
    if plan.notes:
        ctx.say(f"notes ({len(plan.notes)}): nothing to do for the wizard")
        for p in plan.notes:
            ctx.say(f"  {p.format()}")


def report_next(ctx: Ctx, steps) -> None:
    from wizard.steps import format_steps

    if steps:
        ctx.say("next, in this order:")
        for line in format_steps(steps):
            ctx.say(f"  {line}")


def report_apply(ctx: Ctx, result, answers, *, quiet_json: bool = False) -> None:
    from wizard.ui.render import Masker, colour_diff_line, paint, unified_diff

    plan = result.plan
    for w in result.warnings:
        ctx.warn(w)
    masker = Masker(plan.secret_values, show=bool(ctx.opt("show_secrets")))
    changed = plan.changed_files
    outside = sorted(p for p, (old, new) in plan.outside.items() if old != new)
    written = result.written
    if ctx.json:
        if quiet_json:
            return
        ctx.emit_json({
            "ok": not plan.leftovers, "exit_code": exit_code(result), "dry_run": result.dry_run,
            "deployment": str(answers.deployment),
            "leftovers": [p.to_json() for p in plan.leftovers], "notes": [p.to_json() for p in plan.notes],
            "found": [f.to_json() for f in plan.found],
            "created": result.created, "changed_files": changed, "outside_files": outside,
            "generated": sorted(set(plan.generated)), "adopted": sorted(set(plan.adopted)),
            "secrets_file": str(answers.secrets_file) if answers.secrets_file else None,
            "secrets_file_changed": plan.store_changed,
            "replaced": [{"id": cid, "where": where} for cid, where in plan.replaced],
            "edits": [{"file": e.file, "line": plan.files[e.file].line_of(e.start), "ids": list(e.ids), "what": e.what}
                      for e in plan.edits],
            "next_steps": [] if result.dry_run else _next_json(answers, result),
        })
        return
    if result.dry_run:
        if result.created:
            ctx.say(f"{answers.deployment} does not exist: showing the changes against the bundled templates")
        for rel in changed:
            for line in unified_diff(rel, plan.old_texts[rel], plan.new_texts[rel], masker):
                ctx.say(colour_diff_line(line) if ctx.colour else line)
        for path in outside:
            old, new = plan.outside[path]
            for line in unified_diff(path, (old or b"").decode("utf-8", "replace"), new.decode(), masker):
                ctx.say(colour_diff_line(line) if ctx.colour else line)
        ctx.say()
        report_problems(ctx, plan)
        n = len(changed) + len(outside)
        ctx.say(f"dry run: {n} files would change; nothing was written" if n else "dry run: nothing to change")
        return
    if result.created:
        ctx.say(f"created {answers.deployment} from the bundled templates")
    if not changed and not plan.store_changed and not outside:
        report_problems(ctx, plan)
        ctx.say(paint("nothing to change: the tree already matches the answers", "green", ctx.colour))
        warn_tracked(ctx, answers)
        return
    if written is not None and written.secrets_file:
        ctx.say(f"secrets file: {answers.secrets_file} (mode 0600)")
    if plan.generated:
        ctx.say(f"generated: {', '.join(sorted(set(plan.generated)))}")
    if plan.adopted:
        ctx.say(f"kept from the tree: {', '.join(sorted(set(plan.adopted)))}")
    ctx.say(paint(f"updated {len(changed)} files in {answers.deployment}", "green", ctx.colour))
    for rel in changed:
        n = sum(1 for e in plan.edits if e.file == rel)
        ctx.say(f"  {rel} ({n} {'edit' if n == 1 else 'edits'})")
    for path in outside:
        ctx.say(f"wrote {path}")
    report_problems(ctx, plan)
    for cid in kept_only_in_secrets_file(plan):
        ctx.say(f"{_what(cid)} is in the secrets file: wizard secrets show {cid} "
                f"--answers {shlex.quote(_shown(answers.path))}")
    if not result.dry_run:
        from wizard import app

        report_next(ctx, app.deploy_steps(answers, result))
    warn_tracked(ctx, answers, plan)


def warn_tracked(ctx: Ctx, answers, plan=None) -> None:
    """Files holding secrets that git tracks would be pushed in clear: the secrets file above all."""
    tracked = tracked_secret_files(answers, plan)
    secrets_file = str(answers.secrets_file) if answers.secrets_file is not None else None
    if secrets_file in tracked:
        tracked.remove(secrets_file)
        ctx.warn(f"the secrets file {_shown(secrets_file)} is tracked by git: every generated secret would be pushed "
                 f"in clear; untrack it (git rm --cached {shlex.quote(_shown(secrets_file))}), keep it out of git "
                 "(.gitignore) and back it up elsewhere")
    if tracked:
        ctx.warn(f"{len(tracked)} files holding secrets are tracked by git "
                 f"({', '.join(tracked[:3])}{', …' if len(tracked) > 3 else ''}): do not push them in clear; "
                 "encrypt them (sops) or generate SealedSecrets instead")


def kept_only_in_secrets_file(plan) -> list[str]:
    """Secrets generated in this run that live nowhere in the tree (a password the tree holds only as a hash)."""
    from wizard.catalog import record

    return [cid for cid in sorted(set(plan.generated)) if (r := record(cid)) is not None and not r.locations
            and not r.provided]


def _what(cid: str) -> str:
    from wizard.catalog import record

    r = record(cid)
    return (r.what or cid).split(" (")[0] if r is not None else cid


def _next_json(answers, result) -> list:
    from wizard import app
    from wizard.steps import to_json

    return to_json(app.deploy_steps(answers, result))


def _shown(path) -> str:
    rel = os.path.relpath(Path(path).absolute(), Path.cwd())
    return rel if not rel.startswith("..") else str(path)


def tracked_secret_files(answers, plan=None) -> list[str]:
    """Manifests holding secrets (where this tree holds them, when a plan says), and the secrets file, that git
    tracks: they would be pushed in clear."""
    from wizard.catalog import SECRET, record, secrets
    from wizard.write import git_tracked

    if plan is not None:
        files = sorted({a.split(" › ")[0].split(":")[0] for cid, where in plan.where.items()
                        if (r := record(cid)) is not None and r.kind == SECRET for a in where})
    else:
        files = sorted({loc.file for s in secrets() for loc in s.locations})
    out = git_tracked(Path(answers.deployment), [f for f in files if (Path(answers.deployment) / f).exists()])
    if answers.secrets_file is not None and Path(answers.secrets_file).exists():
        sf = Path(answers.secrets_file)
        if git_tracked(sf.parent, [sf.name]):
            out.append(str(answers.secrets_file))
    return out


def cmd_check(ctx: Ctx) -> int:
    from wizard import app
    from wizard.check import ERROR, WARNING, summarize
    from wizard.rules import select

    rules = select(ctx.opt("rule"), ctx.opt("skip_rule") or ())
    where = _where(ctx, need_answers=False)
    findings = app.check(where, rules=rules, allow_domains=ctx.opt("allow_domain") or ())
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


def cmd_rotate(ctx: Ctx) -> int:
    from wizard import app

    where = _where(ctx, need_answers=True)
    answers = where.answers
    r = app.rotate(answers, ctx.opt("ids") or [], all_=bool(ctx.opt("all")),
                   include_signing=bool(ctx.opt("include_signing_key")),
                   include_rsa=bool(ctx.opt("include_rsa_key")), revoke=bool(ctx.opt("revoke")),
                   dry_run=bool(ctx.opt("dry_run")), confirm=confirmer(ctx))
    from wizard.steps import format_steps, to_json

    dry = r.result.dry_run
    if ctx.json:
        plan = r.result.plan
        ctx.emit_json({"ok": not plan.leftovers, "exit_code": exit_code(r.result), "dry_run": dry,
                       "rotated": r.rotated, "finished": r.finished, "held_back": r.held_back,
                       "locations": r.locations,
                       "leftovers": [p.to_json() for p in plan.leftovers], "notes": [p.to_json() for p in plan.notes],
                       "next_steps": to_json(r.steps)})
        return exit_code(r.result)
    if dry:
        report_apply(ctx, r.result, answers)
    elif r.result.plan.leftovers:
        report_problems(ctx, r.result.plan)
    for w in r.result.warnings:
        ctx.warn(w)
    verb = "would rotate" if dry else "rotated"
    if r.rotated:
        ctx.say(f"{verb}: {', '.join(r.rotated)}")
    if r.finished:
        ctx.say(f"{'would finish' if dry else 'finished'} an interrupted rotation of: {', '.join(r.finished)}")
    if r.held_back:
        ctx.say(f"{'would not rotate' if dry else 'not rotated'}: {', '.join(r.held_back)} (a place of "
                f"{'it' if len(r.held_back) == 1 else 'each'} is left over, listed above; its value stays as it "
                "was everywhere: fix that and re-run)")
    for cid, locs in r.locations.items():
        ctx.say(f"  {cid}:")
        for loc in locs:
            ctx.say(f"    {loc}")
    if r.steps:
        ctx.say("next, in this order:" if not dry else "after the rotation, in this order:")
        for line in format_steps(r.steps):
            ctx.say(f"  {line}")
    if not dry:
        warn_tracked(ctx, answers)
    return exit_code(r.result)


def cmd_undo(ctx: Ctx) -> int:
    from wizard import app

    where = _where(ctx, need_answers=False)
    r = app.undo(where.deployment, dry_run=bool(ctx.opt("dry_run")), force=bool(ctx.opt("force")),
                 confirm=confirmer(ctx))
    up = r.plan
    if ctx.json:
        ctx.emit_json({"ok": True, "dry_run": r.dry_run, "backup": str(up.backup), "time": up.time,
                       "nothing": up.nothing, "edited": up.edited,
                       "restored": r.restored if not r.dry_run else [label for label, _, _ in up.restores]})
        return 0
    if up.nothing:
        if r.dry_run:
            ctx.say(f"dry run: the last run ({up.time}) changed nothing; undo would restore nothing")
        else:
            ctx.say(f"the last run ({up.time}) changed nothing: nothing to undo, nothing restored")
            ctx.say(f"to restore the state before the run that last changed files, run it again: "
                    f"wizard undo --deployment {shlex.quote(_shown(where.deployment))}")
        return 0
    if r.dry_run:
        ctx.say(f"dry run: would restore {len(up.restores)} files from {up.backup} (the run of {up.time}); "
                "nothing was written")
        for label, _, _ in up.restores:
            ctx.say(f"  {label}")
        if up.edited:
            ctx.say(f"edited since that run (undo refuses them without --force): {', '.join(up.edited)}")
        return 0
    ctx.say(f"restored {len(r.restored)} files from {up.backup} (the run of {up.time})")
    for rel in r.restored:
        ctx.say(f"  {rel}")
    return 0


def cmd_secrets(ctx: Ctx) -> int:
    from wizard import app
    from wizard.catalog import is_known_id

    sub = ctx.opt("secrets_command")
    if sub not in ("show", "list"):
        raise WizardError("usage: wizard secrets show ID | wizard secrets list")
    where = _where(ctx, need_answers=True, must_exist=False)
    store = app.secrets_of(where.answers)
    if sub == "list":
        ids = sorted(store.values)
        if ctx.json:
            ctx.emit_json({"ids": ids, "provided": sorted(store.provided)})
        else:
            for i in ids:
                ctx.say(f"{i}{' (provided)' if i in store.provided else ''}")
        return 0
    cid = ctx.opt("id")
    if not is_known_id(cid):
        raise WizardError(f"unknown secret id {cid!r}", hint="wizard secrets list")
    if cid not in store.values:
        raise WizardError(f"{cid} is not in {where.answers.secrets_file}")
    value = store.values[cid]
    role = ctx.opt("as_sql_role")
    if role:
        from wizard.steps import alter_role_sql

        value = alter_role_sql(role, value)
    if ctx.json:
        ctx.emit_json({"id": cid, "value": value})
    else:
        ctx._print(value, sys.stdout)
    return 0


def cmd_checklist(ctx: Ctx) -> int:
    from wizard import app
    from wizard.checklist import (CHECK_TIMEOUT, CONFIRMED, DONE, OPEN, STATE_STYLE, checklist_status, counts,
                                  status_lines, status_table, unknown_confirmations)
    from wizard.ui.render import paint

    where = _where(ctx, need_answers=False)
    answers, deployment = where.answers, where.deployment
    store = app.read_store(answers)
    statuses = checklist_status(answers, deployment, store=store, run=not ctx.opt("no_checks"),
                                timeout=float(ctx.opt("check_timeout") or CHECK_TIMEOUT))
    n = counts(statuses)
    unknown = unknown_confirmations(answers)
    if ctx.json:
        ctx.emit_json({"ok": True, "deployment": str(deployment),
                       "answers": str(answers.path) if answers is not None and answers.path else None,
                       "counts": n, "items": [s.to_json() for s in statuses], "unknown_confirmations": unknown})
        return 0
    if answers is None:
        ctx.say(f"no answers file beside {deployment}: manual items and settings cannot be read "
                "(give --answers FILE)")
    if ctx.out.isatty():
        from rich.console import Console

        console = Console(file=ctx.out, no_color=not ctx.colour, highlight=False)
        console.print(status_table(statuses, title=f"Checklist for {deployment}"))
    else:
        for s, line in zip(statuses, status_lines(statuses)):
            ctx.say(paint(line, STATE_STYLE[s.state], ctx.colour))
    for k in unknown:
        ctx.say(f"note: checklist: {k} in the answers file is not a checklist item")
    summary = f"{n[DONE]} done, {n[CONFIRMED]} confirmed, {n[OPEN]} open"
    ctx.say(paint(summary, "red" if n[OPEN] else "green", ctx.colour))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
