"""`wizard` with no --answers: the guided first-time setup.

It walks the checklist's sections (wizard.checklist.SECTIONS); in each it asks the answers keys the
schema assigns to that section (wizard.catalog.answers: question, help, kind, validator, conditions), runs
the section's checks the operator agrees to and asks for its manual confirmations. Questions are
pre-filled from the default answers file or --from FILE. Before the summary it plans the answers against
the tree and asks what the plan cannot settle alone (an unknown placeholder token, an object the tree has
twice); then it shows what will change (secrets masked), writes exactly that plan (wizard.app), saves the
answers file and prints the checklist's state and the next commands.
"""
from __future__ import annotations

import copy
import inspect
import os
import sys
from contextlib import contextmanager
from pathlib import Path

import yaml

from wizard.answers import (Resolved, answers_from_dict, check_value, derive, lookup, parse_as, resolve,
                            text_value)
from wizard.catalog import answers as S
from wizard.errors import AnswersError, WizardError
from wizard.ui.prompts import CONFIRM, SELECT, TEXT, ConfiguredAsker, Question, TerminalAsker

# Options a check can take, asked before it runs: parameter -> (the yes/no question, the value's question).
CHECK_OPTIONS = {"send_to": ("Also send a test mail?", "Send it to:")}
NOT_CHECKED = "  not checked: run `wizard checklist` later"


def put(data: dict, dotted: str, value) -> None:
    """Set a dotted key; None removes it (and the sections it leaves empty)."""
    parts = dotted.split(".")
    if value is None:
        trail = [data]
        for part in parts[:-1]:
            if not isinstance(trail[-1].get(part), dict):
                return
            trail.append(trail[-1][part])
        trail[-1].pop(parts[-1], None)
        for parent, part in zip(reversed(trail[:-1]), reversed(parts[:-1])):
            if parent[part]:
                break
            parent.pop(part)
        return
    node = data
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value


def rebase(path_text: str, old_dir: Path, new_dir: Path) -> str:
    """A path relative to `old_dir`, made relative to `new_dir` (absolute paths stay)."""
    p = Path(path_text).expanduser()
    if p.is_absolute() or old_dir.resolve() == new_dir.resolve():
        return path_text
    return os.path.relpath((old_dir / p).resolve(), new_dir.resolve())


def parse_email(text: str) -> str:
    return parse_as(S.EMAIL, text)


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


class _Values(dict):
    """Template values: top-level names, sections readable as attributes; None shown as ""."""

    def __missing__(self, key):
        return ""


# ---------------------------------------------------------------- output

class Screen:
    """rich for headers and tables; plain lines when nobody watches."""

    def __init__(self, ctx):
        from rich.console import Console

        self.ctx = ctx
        self.colour = ctx.colour
        self.console = Console(file=ctx.out, no_color=not ctx.colour, highlight=False,
                               force_terminal=True if ctx.colour else None)

    def say(self, text: str = "", style: str | None = None) -> None:
        from rich.text import Text

        self.console.print(Text(text, style=style or ""), soft_wrap=True)

    def header(self, number: int | None, total: int, title: str, intro: str) -> None:
        self.console.print()
        self.console.rule(f"[bold]{number}/{total}  {title}" if number else f"[bold]{title}", align="left")
        if intro:
            self.say(intro, "dim")

    def result(self, ok: bool, text: str) -> None:
        self.say(f"  {'✓' if ok else '✗'} {text}", "green" if ok else "red")


# ---------------------------------------------------------------- the guided flow

class Guided:
    def __init__(self, ctx, screen: Screen, asker):
        self.ctx = ctx
        self.screen = screen
        self.asker = asker
        self.data: dict = {}
        self.prefill: dict = {}
        self.checks: dict = {}  # checklist item id -> CheckResult
        self.confirmed: dict = {}

    # ------------------------------------------------------------ setup
    def _load_prefill(self, path: Path) -> dict:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
        except FileNotFoundError:
            raise WizardError(f"answers file not found: {path}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise WizardError(f"cannot read {path}: {exc}") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise AnswersError(f"not valid YAML: {getattr(exc, 'problem', exc)}",
                               where=f"{path}:{mark.line + 1}" if mark else str(path)) from None
        if not isinstance(data, dict):
            raise AnswersError("the answers file must be a mapping of keys", where=str(path))
        try:
            answers_from_dict(copy.deepcopy(data), path=path, base_dir=path.parent.resolve())
        except WizardError as exc:
            self.screen.say(f"note: {path} has a problem ({exc}); its values are offered as defaults "
                            "and checked again", "yellow")
        return data

    def locate(self):
        from wizard.app import DEFAULT_DEPLOYMENT, default_answers_path

        dep_flag = self.ctx.opt("deployment")
        from_flag = self.ctx.opt("from_file")
        dep = Path(dep_flag or DEFAULT_DEPLOYMENT)
        source = None
        if from_flag:
            source = Path(from_flag)
            self.prefill = self._load_prefill(source)
        else:
            default = default_answers_path(dep)
            if default.exists():
                source = default
                self.prefill = self._load_prefill(default)
                if not dep_flag and isinstance(self.prefill.get(S.DEPLOYMENT_KEY), str):
                    dep = default.parent / self.prefill[S.DEPLOYMENT_KEY]
        self.deployment = Path(os.path.abspath(dep))
        self.answers_path = default_answers_path(self.deployment)
        self.base_dir = self.answers_path.parent
        if source is not None:
            self._rebase_prefill(source.resolve().parent, bool(from_flag))
        self.source = source

    def _rebase_prefill(self, old_dir: Path, other_file: bool) -> None:
        """Paths of the pre-fill made relative to this answers file's folder; with --from, what belongs to
        that other file (its secrets file) is left out."""
        for k in S.leaves():
            value = lookup(self.prefill, k.key)
            if other_file and k.belongs_to_file:
                put(self.prefill, k.key, None)
            elif isinstance(value, str) and k.type in (S.PATH, S.FILE):
                put(self.prefill, k.key, rebase(value, old_dir, self.base_dir))
            elif isinstance(value, str) and k.type == S.REFERENCE and value.startswith("file:"):
                put(self.prefill, k.key, "file:" + rebase(value[5:], old_dir, self.base_dir))
            elif isinstance(value, dict) and k.type == S.PLACEHOLDERS:
                for token, v in value.items():
                    if isinstance(v, str) and v.startswith("file:"):
                        value[token] = "file:" + rebase(v[5:], old_dir, self.base_dir)

    # ------------------------------------------------------------ what is known so far
    def full_data(self) -> dict:
        data = copy.deepcopy(self.data)
        data[S.VERSION_KEY] = S.SCHEMA_VERSION
        data[S.of_type(S.FLAGS).key] = dict(sorted(self.confirmed.items()))
        return data

    def resolved(self) -> Resolved:
        """The answers so far, resolved as the loader would (problems of what is not asked yet ignored)."""
        values, _ = resolve(self.full_data(), path=self.answers_path, base_dir=self.base_dir)
        return Resolved(values)

    def partial_answers(self):
        """The answers so far (later sections at their defaults); None while they are not complete enough
        (before the server name is known)."""
        try:
            return answers_from_dict(self.full_data(), path=self.answers_path, base_dir=self.base_dir)
        except AnswersError:
            return None

    def template(self, text: str, k: S.Key | None = None, **extra) -> str:
        if not text:
            return ""
        values = self.resolved()
        fields = _Values({top.name: values.get(top.key) for top in S.children(None)})
        fields.update(label=k.label if k else "", answers_dir=_short(self.base_dir),
                      answers_file=_arg(self.answers_path), **extra)
        return text.format_map(fields)

    # ------------------------------------------------------------ asking
    def ask(self, q: Question, default=None):
        return self.asker.ask(q, default)

    def question(self, k: S.Key) -> Question:
        a = k.ask
        text, help_text = self.template(a.text, k), self.template(a.help, k)
        if k.type == S.BOOL:
            return Question(k.key, text, CONFIRM, help=help_text)
        if a.kind == S.ASK_SELECT:
            labels = a.labels or tuple(map(str, k.choices))
            return Question(k.key, text, SELECT, help=help_text, choices=tuple(zip(k.choices, labels)))
        insist = bool(a.insist) and self.asker.interactive
        required = k.required or (k.required_when and k.when is not None)
        empty = None if isinstance(k.default, S.Derived) else copy.deepcopy(k.default)
        return Question(k.key, text, TEXT, help=help_text, parse=lambda t: self.parse(k, t),
                        optional=not required and not insist, empty=empty,
                        required=a.insist if insist else "an answer is required", show=lambda v: self.show(k, v))

    def parse(self, k: S.Key, text: str, entry: str | None = None):
        """A typed answer → the value the answers file holds, checked as the loader checks it."""
        value = text_value(k, text)
        check_value(k, value, self.full_data(), path=self.answers_path, base_dir=self.base_dir, entry=entry)
        return value

    @staticmethod
    def show(k: S.Key, value) -> str:
        """A value as editable text."""
        if value is None:
            return ""
        if isinstance(value, (list, tuple)):
            return ", ".join(map(str, value)) if value else (k.ask.word if k.ask else "")
        return str(value)

    def proposal(self, k: S.Key, values: Resolved):
        """The answer offered: the pre-filled one, else the suggestion, else the key's default (none for a
        key whose empty answer must be typed as a word)."""
        pre = lookup(self.prefill, k.key)
        if pre is not None:
            return pre
        suggest = k.ask.suggest
        if suggest is None and not k.ask.insist:
            suggest = k.default
        return derive(suggest, values.get) if isinstance(suggest, S.Derived) else suggest

    def asked(self, k: S.Key, values: Resolved) -> bool:
        """The key applies now (its conditions hold); otherwise it is left out of the answers."""
        for when in (k.when, k.ask.when if k.ask else None):
            if when is not None and not when.holds(values.get):
                return False
        return True

    def ask_entry(self, k: S.Key) -> None:
        values = self.resolved()
        if not self.asked(k, values):
            put(self.data, k.key, None)
            return
        if k.ask.flow == S.OPT_IN and not self.opt_in(k):
            put(self.data, k.key, None)
            return
        put(self.data, k.key, self.ask(self.question(k), self.proposal(k, values)))

    def opt_in(self, k: S.Key) -> bool:
        a = k.ask
        pre = lookup(self.prefill, k.key) is not None
        want = self.ask(Question(f"flow.{k.key}", self.template(a.confirm, k), CONFIRM,
                                 help=self.template(a.confirm_help, k)), pre or not self.prefill)
        if not want and a.declined:
            self.screen.say("  " + self.template(a.declined, k), "yellow")
        return want

    def ask_table(self, section: S.Key) -> None:
        """Keys proposed together (the derived host names): accepted as shown, or asked one by one."""
        from rich.table import Table

        values = self.resolved()
        members = [c for c in S.children(section.key) if c.ask is not None]
        proposed = {}
        for c in members:
            pre = lookup(self.prefill, c.key)
            sources = c.default.sources if isinstance(c.default, S.Derived) else ()
            unchanged = all(lookup(self.prefill, s) == lookup(self.data, s) for s in sources)
            proposed[c.key] = pre if pre is not None and unchanged else values.get(c.key)
        table = Table(show_header=False, box=None, padding=(0, 2))
        for c in members:
            table.add_row(f"  {c.label}", str(proposed[c.key]))
        self.screen.console.print(table)
        if self.ask(Question(f"flow.{section.key}", self.template(section.ask.confirm, section), CONFIRM), True):
            for c in members:
                put(self.data, c.key, proposed[c.key])
            return
        for c in members:
            put(self.data, c.key, self.ask(self.question(c), proposed[c.key]))

    # ------------------------------------------------------------ a checklist section
    def ask_section(self, section) -> None:
        self.secrets_note(section.id)
        done: set[str] = set()
        for k in S.in_section(section.id):
            if k.key in done or k.ask is None:
                continue
            if k.type == S.SECTION:
                if k.ask.flow == S.TABLE:
                    self.ask_table(k)
                    done.update(c.key for c in S.children(k.key))
                continue
            self.ask_entry(k)
        self.run_checks(section)
        self.confirm_items(section)

    def secrets_note(self, section_id: str) -> None:
        """What happens to the secrets of this section that the wizard makes (never asked, never shown)."""
        from wizard.catalog import secrets

        records = [r for r in secrets() if not r.provided and not r.answers_key and not r.derive
                   and r.docs.section == section_id]
        if not records:
            return
        where = _short(self.secrets_path)
        kept = [r for r in records if r.id in self.store.values]
        if len(records) > 3:
            if kept:
                self.screen.say(f"  {len(kept)} secrets are already in {where}; they are kept. "
                                "The others are generated or adopted from the tree.")
            else:
                self.screen.say(f"  {len(records)} secrets will be generated (or adopted from the tree) into "
                                f"{where}, never shown, never in the answers file.")
            return
        for r in records:
            state = f"kept from {where}" if r in kept else "generated now (or adopted from the tree)"
            self.screen.say(f"  {r.what}: {state}")

    def run_checks(self, section) -> None:
        from wizard.checklist import CHECK, run_check_item

        answers = self.partial_answers()
        items = []
        for item in section.items:
            if item.kind != CHECK:
                continue
            if item.when(answers):
                items.append(item)
            else:
                self.checks.pop(item.id, None)
        for item in (i for i in items if i.instant):
            result = self.checks[item.id] = run_check_item(item, answers)
            self.screen.result(result.ok, f"{item.title}: {result.detail}" +
                               ("" if result.ok else " — an open checklist item"))
        offered = [i for i in items if not i.instant]
        if not offered:
            return
        if not self.ask(Question(f"flow.check.{section.id}", f"Check now that {_join([i.title for i in offered])}?",
                                 CONFIRM), True):
            for item in offered:
                self.checks.pop(item.id, None)
            self.screen.say(NOT_CHECKED, "yellow")
            return
        options = {item.id: self.check_options(item, answers) for item in offered}
        with self.screen.console.status("checking…") if self.asker.interactive else _nothing():
            for item in offered:
                self.checks[item.id] = run_check_item(item, answers, **options[item.id])
        for item in offered:
            self.screen.result(self.checks[item.id].ok, f"{item.title}: {self.checks[item.id].detail}")

    def check_options(self, item, answers) -> dict:
        params = inspect.signature(item.check).parameters
        out = {}
        for name, (offer, what) in CHECK_OPTIONS.items():
            if name in params and self.ask(Question(f"flow.check.{item.id}.{name}", offer, CONFIRM), False):
                out[name] = self.ask(Question(f"flow.check.{item.id}.{name}.to", what, parse=parse_email),
                                     getattr(answers, "acme_email", None))
        return out

    def confirm_items(self, section) -> None:
        from wizard.checklist import MANUAL

        answers = self.partial_answers()
        flags = S.of_type(S.FLAGS)
        pre = lookup(self.prefill, flags.key) or {}
        for item in section.items:
            if item.kind != MANUAL or not item.when(answers):
                self.confirmed.pop(item.id, None)
                continue
            q = Question(f"{flags.key}.{item.id}", f"Done: {item.title}?", CONFIRM, help=item.help)
            if self.ask(q, bool(pre.get(item.id, False))):
                self.confirmed[item.id] = True
            else:
                self.confirmed.pop(item.id, None)
                self.screen.say("  left open; it stays on the checklist", "yellow")

    # ------------------------------------------------------------ what the tree leaves open (issue 13)
    def settle(self, data: dict):
        """Plan the answers against the tree; on a terminal, ask for each unknown placeholder token and each
        ambiguous location, keep the answers in `placeholders:` and `locations:`, and plan again. Without a
        terminal the leftovers are only reported (in the summary)."""
        from wizard import app
        from wizard.find import AMBIGUOUS, UNKNOWN_TOKEN
        from wizard.generate import FORMS

        tokens, places = S.of_type(S.PLACEHOLDERS), S.of_type(S.LOCATIONS)
        asked: set[tuple[str, str]] = set()
        while True:
            answers = answers_from_dict(copy.deepcopy(data), path=self.answers_path, base_dir=self.base_dir)
            prepared = app.prepare(answers)
            if not self.asker.interactive:
                return answers, data, prepared
            unknown: dict[str, list] = {}
            ambiguous: dict[str, object] = {}
            for p in prepared.plan.leftovers:
                if p.kind == UNKNOWN_TOKEN and p.token and (tokens.key, p.token) not in asked:
                    unknown.setdefault(p.token, []).append(p)
                elif p.kind == AMBIGUOUS and p.address and (places.key, p.address) not in asked:
                    ambiguous.setdefault(p.address, p)
            if not unknown and not ambiguous:
                return answers, data, prepared
            if not asked:
                self.screen.header(None, 0, "Your own tree", "The tree has values the catalog does not know, "
                                   "or objects it cannot tell apart: say what they are (kept in the answers file).")
            for token, found in unknown.items():
                asked.add((tokens.key, token))
                where = f"{found[0].file}:{found[0].line}" + (f" and {len(found) - 1} more" if len(found) > 1 else "")
                q = Question(f"{tokens.key}.{token}", self.template(tokens.ask.text, token=token, where=where),
                             help=self.template(tokens.ask.help, token=token, forms=", ".join(FORMS)),
                             parse=lambda t, token=token: self.parse(tokens, t, entry=token))
                data.setdefault(tokens.key, {})[token] = self.ask(q)
            for address, p in ambiguous.items():
                asked.add((places.key, address))
                candidates = p.message.split(" could be any of ", 1)[-1].split(", ")
                q = Question(f"{places.key}.{address}", self.template(places.ask.text, address=address), SELECT,
                             help=self.template(places.ask.help, address=address),
                             choices=tuple((c, c) for c in candidates))
                data.setdefault(places.key, {})[address] = self.ask(q, candidates[0])

    # ------------------------------------------------------------ the run
    def run(self) -> int:
        from wizard.checklist import SECTIONS
        from wizard.store import load_store

        self.locate()
        s = self.screen
        s.console.rule("[bold]Matrix deployment wizard: guided setup")
        s.say(f"deployment: {_short(self.deployment)}")
        s.say(f"answers:    {_short(self.answers_path)}" + (" (saved at the end)"))
        if self.source is not None:
            s.say(f"pre-filled from {_short(self.source)}: press Enter to keep a value", "dim")
        s.say("Ctrl-C at any prompt leaves without writing anything.", "dim")

        self.create = False
        if not self.deployment.exists():
            if not self.ask(Question("flow.init", f"There is no {_short(self.deployment)}. Create it from the "
                                     "bundled templates?", CONFIRM), True):
                raise WizardError(f"no deployment at {self.deployment}")
            self.create = True
        elif not self.deployment.is_dir():
            raise WizardError(f"{self.deployment} is not a folder")

        self.data = {S.VERSION_KEY: S.SCHEMA_VERSION,
                     S.DEPLOYMENT_KEY: os.path.relpath(self.deployment, self.base_dir)}
        for k in S.children(None):  # what no question asks is carried over from the pre-fill
            if k.section is None and k.type != S.FLAGS and k.key not in self.data and k.key in self.prefill:
                self.data[k.key] = copy.deepcopy(self.prefill[k.key])
        self.secrets_path = self.resolved().get(_secrets_key())
        self.store = load_store(self.secrets_path)  # a secrets file with wrong permissions stops us here

        for number, section in enumerate(SECTIONS, 1):
            s.header(number, len(SECTIONS), section.title, section.intro)
            self.ask_section(section)

        answers, data, prepared = self.settle(self.full_data())
        return self.finish(answers, data, prepared)

    def finish(self, answers, data, prepared) -> int:
        from wizard import app
        from wizard.answers_file import save_answers
        from wizard.checklist import titles

        s = self.screen
        s.console.print()
        s.console.rule("[bold]Summary", align="left")
        plan = prepared.plan
        self.show_summary(answers, plan)
        outside = [p for p, (old, new) in plan.outside.items() if old != new]
        changes = bool(plan.changed_files or plan.store_changed or self.create or outside)
        left = 1 if plan.leftovers else 0
        if self.ctx.opt("dry_run"):
            self.show_diff(plan)
            s.say("dry run: nothing was written, and the answers file was not saved", "yellow")
            return left
        if changes and self.asker.interactive and \
                self.ask(Question("flow.diff", "Show the full diff (secrets masked)?", CONFIRM), False):
            self.show_diff(plan)
        if not changes:
            s.say("the tree already matches these answers", "green")
        elif not self.ctx.opt("yes"):
            if not self.asker.interactive:
                raise WizardError("no terminal to confirm the write: add --yes, or use --answers FILE")
            if not self.ask(Question("flow.write", "Write these changes?", CONFIRM), True):
                s.say("nothing was written", "yellow")
                return 0
        secrets_rel = os.path.relpath(answers.secrets_file, self.base_dir)
        header = (f"wizard answers for {answers.server_name}: safe to commit, no secret in here.\n"
                  f"Generated secrets are in {secrets_rel} (mode 0600): never commit it, back it up.\n"
                  f"Re-apply without questions: wizard --answers {self.answers_path.name}")
        result = None
        with app.defer_interrupt() as interrupted:
            if changes:
                result = app.commit(prepared)  # exactly the plan shown, or nothing (exit 2) if anything moved
                if result.written is not None:
                    s.say(f"updated {len(result.written.files)} files in {_short(self.deployment)}", "green")
                    for path in result.written.outside:
                        s.say(f"wrote {_short(path)}", "green")
            if self.same_as_saved(data):  # keep the operator's own comments when nothing changed
                s.say(f"answers unchanged: {_short(self.answers_path)}")
            else:
                save_answers(self.answers_path, data, header=header, checklist_titles=titles())
                s.say(f"answers saved: {_short(self.answers_path)}", "green")
        self.show_checklist(answers)
        self.show_next(answers, result)
        if interrupted:
            s.say("interrupted: the write was finished first", "yellow")
            return 130
        return left

    def same_as_saved(self, data: dict) -> bool:
        """The saved answers file already means exactly these answers (its wording may differ)."""
        from dataclasses import replace

        from wizard.answers import load_answers

        if not self.answers_path.exists():
            return False
        try:
            saved = load_answers(self.answers_path)
        except WizardError:
            return False
        wanted = answers_from_dict(copy.deepcopy(data), path=self.answers_path, base_dir=self.base_dir)
        return replace(saved, raw={}) == replace(wanted, raw={})

    # ------------------------------------------------------------ summary and results
    def show_summary(self, answers, plan) -> None:
        from rich.table import Table

        from wizard.checklist import SECTIONS

        per_section: dict[str, tuple[int, set]] = {}
        for e in plan.edits:
            sec = section_of(e.ids[0] if e.ids else "")
            n, files = per_section.get(sec, (0, set()))
            files.add(e.file)
            per_section[sec] = (n + 1, files)
        table = Table(title="What will change", title_justify="left")
        table.add_column("section", style="bold", no_wrap=True)
        table.add_column("settings")
        table.add_column("edits", justify="right", no_wrap=True)
        for section in SECTIONS:
            n, files = per_section.get(section.id, (0, set()))
            edits = f"{n} in {len(files)} file{'s' if len(files) > 1 else ''}" if n else "—"
            table.add_row(section.title, self.describe(section, answers, plan), edits)
        s = self.screen
        s.console.print(table)
        if self.create:
            s.say(f"{_short(self.deployment)} will be created from the bundled templates")
        s.say(f"{len(plan.changed_files)} files change in the tree; secrets file: {_short(answers.secrets_file)} "
              f"({'updated' if plan.store_changed else 'unchanged'}); answers file: {_short(self.answers_path)}")
        if plan.leftovers:
            s.say(f"left over ({len(plan.leftovers)}): the rest is configured; fix these and re-run", "red")
            for p in plan.leftovers:
                s.say(f"  {p.format()}")
        if plan.notes:
            s.say(f"notes ({len(plan.notes)}): nothing to do for the wizard")
            for p in plan.notes:
                s.say(f"  {p.format()}", "dim")

    def describe(self, section, a, plan):
        """One cell of the summary: the section's secrets, settings, checks and confirmations (rich Text)."""
        from rich.text import Text

        from wizard.checklist import CHECK, MANUAL

        parts: list[tuple[str, str, str | None]] = []  # (words, style, the table section they list)
        generated = {cid for cid in plan.generated if section_of(cid) == section.id}
        adopted = {cid for cid in plan.adopted if section_of(cid) == section.id}
        kept = {cid for cid in self.store.values if section_of(cid) == section.id} - generated - adopted
        if generated or adopted or kept:
            words = [f"{what} {len(ids)}" for what, ids in (("generate", generated), ("keep", kept),
                                                             ("adopt", adopted)) if ids]
            parts.append((", ".join(words) + " (values never shown)", "", None))
        tables = {k.key for k in S.in_section(section.id) if k.type == S.SECTION and k.ask and k.ask.flow == S.TABLE}
        for k in S.in_section(section.id):
            shown = self.display(k, a) if k.type != S.SECTION and k.label else None
            if shown is None:
                continue
            if k.parent in tables and parts and parts[-1][2] == k.parent:  # a table's values: one list
                parts[-1] = (f"{parts[-1][0]}, {shown[0]}", parts[-1][1], k.parent)
            else:
                parts.append((shown[0] if k.parent in tables else f"{k.label} {shown[0]}", shown[1],
                              k.parent if k.parent in tables else None))
        for item in section.items:
            if item.kind == CHECK and not item.instant and item.when(a):
                r = self.checks.get(item.id)
                parts.append((f"{item.id}: " + ("ok" if r and r.ok else "open" if r else "not checked"),
                              "green" if r and r.ok else "red" if r else "yellow", None))
            elif item.kind == MANUAL and item.when(a):
                done = self.confirmed.get(item.id)
                parts.append((f"{item.id}: " + ("confirmed" if done else "open item"), "" if done else "yellow",
                              None))
        if not parts:
            return Text("—")
        text = Text()
        for i, (words, style, _) in enumerate(parts):
            text.append(("; " if i else "") + words, style=style)
        return text

    def display(self, k: S.Key, a) -> tuple[str, str] | None:
        """A setting as the summary shows it, with its style; None when it does not apply."""
        from wizard.catalog import secrets

        value = a.get(k.key)
        if value is None and k.when is not None and not k.when.holds(a.get):
            return None
        if k.type == S.BOOL:
            return ("on" if value else "off"), ""
        if k.type == S.CIDRS:
            if value:
                return ", ".join(value), "green"
            return "OPEN (reachable from any address)", "bold red"
        if k.secret or k.type == S.FILE:
            raw = lookup(a.raw, k.key)
            if raw is not None:
                return str(raw), ""
            own = [r for r in secrets() if r.answers_key == k.key and not r.provided]
            if own:
                return ("kept" if own[0].id in self.store.values else "generated"), ""
            return None
        if value is None:
            return None
        if k.type == S.PATH:
            return _short(value), ""
        if k.ask is not None and k.ask.labels and value in k.choices and k.type == S.INT:
            return k.ask.labels[k.choices.index(value)], ""
        return str(value), ""

    def show_diff(self, plan) -> None:
        from rich.text import Text

        from wizard.ui.render import Masker, unified_diff

        masker = Masker(plan.secret_values, show=bool(self.ctx.opt("show_secrets")))
        styles = {"+": "green", "-": "red", "@": "cyan"}
        for rel in plan.changed_files:
            for line in unified_diff(rel, plan.old_texts[rel], plan.new_texts[rel], masker):
                style = "bold" if line.startswith(("+++", "---")) else styles.get(line[:1], "")
                self.screen.console.print(Text(line, style=style), soft_wrap=True)

    def show_checklist(self, answers) -> None:
        from wizard import app
        from wizard.checklist import CONFIRMED, DONE, OPEN, checklist_status, counts, status_lines, status_table

        where = app.Where(answers, self.deployment)
        store = app.read_store(answers)
        findings = app.check(where)
        statuses = checklist_status(answers, self.deployment, store=store, findings=findings, checks=self.checks,
                                    run=False)
        s = self.screen
        s.console.print()
        if self.ctx.out.isatty():
            s.console.print(status_table(statuses, title="Checklist"))
        else:
            for st, line in zip(statuses, status_lines(statuses)):
                s.say(line, {DONE: "green", CONFIRMED: "cyan", OPEN: "red"}[st.state])
        n = counts(statuses)
        s.say(f"{n[DONE]} done, {n[CONFIRMED]} confirmed, {n[OPEN]} open", "red" if n[OPEN] else "green")
        for k in S.leaves():
            if k.ask is not None and k.ask.word_means and answers.get(k.key) == text_value(k, k.ask.word):
                s.say(k.ask.word_means, "bold red")

    def show_next(self, answers, result=None) -> None:
        """The commands to go on with, each runnable as printed from the current folder (the answers file
        spelled out), then how to deploy the tree, in the order the steps must run."""
        from wizard import app
        from wizard.catalog import secrets
        from wizard.steps import format_steps

        s = self.screen
        flag = f" --answers {_arg(self.answers_path)}"
        s.console.print()
        s.console.rule("[bold]Next", align="left")
        for r in secrets():  # the secrets the operator may give but the wizard made: how to read them
            if not r.answers_key or r.provided or not r.generated:
                continue
            given = lookup(answers.raw, r.answers_key)
            if given:
                s.say(f"  {r.what}: from {given}")
            else:
                s.say(f"  {r.what}: in {_short(answers.secrets_file)}; show it with:")
                s.say(f"    wizard secrets show {r.id}{flag}", "bold")
        s.say(f"  wizard check{flag}          # audit the tree (CI: --strict)")
        s.say(f"  wizard checklist{flag}      # what is still open")
        s.say(f"  wizard{flag}   # re-apply without questions")
        s.say(f"  commit {_short(self.answers_path)}; never commit {_short(answers.secrets_file)}; "
              f"back it up somewhere safe")
        for k in S.leaves():
            if k.ask is not None and k.ask.after and answers.get(k.key) is not None \
                    and (k.ask.when is None or k.ask.when.holds(answers.get)):
                s.say("  " + self.template(k.ask.after, k, value=_short(answers.get(k.key))))
        steps = app.deploy_steps(answers, result)
        if steps:
            s.say("")
            s.say("next, in this order:", "bold")
            for line in format_steps(steps):
                s.say(f"  {line}")


def _secrets_key() -> str:
    """The key naming the secrets file: the path whose default lies beside the answers file."""
    return next(k.key for k in S.leaves() if k.type == S.PATH and isinstance(k.default, S.Derived))


def section_of(cid: str) -> str:
    """The checklist section of a catalog id (for the summary): its record says; an id made at run time (a
    generated placeholder) is a secret."""
    from wizard.catalog import record

    r = record(cid)
    return r.docs.section if r is not None else "secrets"


def _arg(path) -> str:
    """A path as a shell argument, as short as it can be said from the current folder."""
    import shlex

    return shlex.quote(_short(path))


def _short(path) -> str:
    """A path as the operator typed it: relative to the current folder when under it."""
    from wizard.checklist import shown

    return shown(path)


@contextmanager
def _nothing():
    yield


# ---------------------------------------------------------------- entry point

def cmd_guided(ctx) -> int:
    if ctx.json:
        raise WizardError("--json is for non-interactive runs: use --answers FILE")
    if ctx.opt("no_color"):
        os.environ["NO_COLOR"] = "1"  # questionary (prompt_toolkit) reads it
    screen = Screen(ctx)
    interactive = sys.stdin.isatty() and ctx.out.isatty()
    if interactive:
        asker = TerminalAsker(screen.say)
    else:
        asker = ConfiguredAsker(source="the answers file (--from FILE)", say=screen.say)
    return Guided(ctx, screen, asker).run()
