"""`wizard` with no --answers: the guided first-time setup.

It walks the checklist's sections, asks only what it cannot know (pre-filled from the default
answers file or --from FILE), runs the checks the operator agrees to, shows a summary of what will
change (secrets masked), and then hands the answers to the one apply path (wizard.cli.apply_answers).
It ends by saving the answers file and printing the checklist's state and the next commands.
"""
from __future__ import annotations

import copy
import json
import os
import re
import signal
import sys
from contextlib import contextmanager
from pathlib import Path

import yaml

from wizard.answers import (DOMAIN_KEYS, TLS_MODES, answers_from_dict, derive_domains, open_families, parse_cidr,
                            read_reference, valid_domain, valid_email)
from wizard.errors import AnswersError, WizardError
from wizard.ui.prompts import CONFIRM, SELECT, ConfiguredAsker, Question, TerminalAsker

DOMAIN_LABELS = {
    "matrix": "Matrix API (client and federation)",
    "element": "Element web",
    "turn": "TURN relay",
    "li_matrix": "LI homeserver",
    "li_element": "LI Element web",
    "li_admin": "LI admin UI",
    "livekit": "LiveKit (video calls)",
}
TLS_LABELS = {
    "letsencrypt-prod": "letsencrypt-prod     Let's Encrypt, trusted certificates (needs public DNS)",
    "letsencrypt-staging": "letsencrypt-staging  Let's Encrypt staging, for a trial run (untrusted)",
    "selfsigned": "selfsigned           cert-manager's self-signed issuer (labs only)",
    "manual": "manual               your own TLS Secret, no cert-manager issuer",
}
# Answers keys that hold a path, relative to the answers file's folder.
PATH_KEYS = ("secrets_file", "well_known_dir", "push.apns.key_file", "push.fcm.service_account_file")
REFERENCE_KEYS = ("li.admin_password", "smtp.password")


# ---------------------------------------------------------------- dotted access to the answers dict

def get(data: dict, dotted: str, default=None):
    node = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or node.get(part) is None:
            return default
        node = node[part]
    return node


def put(data: dict, dotted: str, value) -> None:
    parts = dotted.split(".")
    node = data
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    if value is None:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = value


# ---------------------------------------------------------------- answer parsers (ValueError = the reason)

def parse_domain(text: str) -> str:
    value = text.strip().lower().rstrip(".")
    if not valid_domain(value):
        raise ValueError(f"{text.strip()!r} is not a valid domain name (lower-case labels joined by dots, "
                         "e.g. example.org)")
    return value


def parse_email(text: str) -> str:
    if not valid_email(text.strip()):
        raise ValueError(f"{text.strip()!r} is not a valid e-mail address")
    return text.strip()


def parse_cidrs(text: str) -> list[str]:
    out = []
    for item in [c for c in re.split(r"[,\s]+", text.strip()) if c]:
        try:
            out.append(parse_cidr(item))
        except ValueError as exc:
            raise ValueError(f"{item!r} is not a valid address block: {exc}") from None
    return out


OPEN_WORD = "open"


def parse_allowlist(text: str) -> list[str]:
    """The LI allowlist: address blocks, or the word `open` (reachable from any address). Blocks that
    together let every address of a family in are no allowlist: refused, `open` says it instead."""
    if text.strip().lower() == OPEN_WORD:
        return []
    cidrs = parse_cidrs(text)
    families = open_families(cidrs)
    if families:
        raise ValueError(f"{', '.join(cidrs)} together let every {' and every '.join(families)} address in: "
                         f"narrow them, or type \"{OPEN_WORD}\" to leave the LI instance reachable from any address")
    return cidrs


def show_allowlist(value) -> str:
    """The allowlist as editable text: a saved open allowlist ([]) is shown as the word that chose it."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return ", ".join(value) if value else OPEN_WORD


def parse_port(text: str) -> int:
    if not text.strip().isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"{text.strip()!r} is not a port number (1-65535)")
    return int(text)


def probe(key: str, value, base_dir: Path, extra: dict | None = None):
    """Check one value exactly as the answers file would be checked; ValueError with the reason."""
    data = {"version": 1, "server_name": "probe.example.org"}
    for k, v in (extra or {}).items():
        put(data, k, v)
    put(data, key, value)
    try:
        answers_from_dict(data, path=None, base_dir=base_dir)
    except AnswersError as exc:
        raise ValueError(exc.message if (exc.where or "").startswith(key) else str(exc)) from None
    return value


def reference_parser(key: str, base_dir: Path):
    def parse(text: str) -> str:
        ref = text.strip()
        if not ref.startswith(("env:", "file:")):
            raise ValueError("give a reference, env:NAME or file:PATH, not the secret itself "
                             "(the answers file is meant to be committed)")
        try:
            value = read_reference(ref, key, base_dir)
        except AnswersError as exc:
            raise ValueError(exc.message) from None
        if not value or "\n" in value:
            raise ValueError("the referenced value is empty or has a line break")
        return ref
    return parse


def file_parser(base_dir: Path, check=None):
    def parse(text: str) -> str:
        p = Path(text.strip()).expanduser()
        full = p if p.is_absolute() else base_dir / p
        try:
            content = full.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"cannot read {full}: {exc.strerror}") from None
        if check is not None:
            check(content)
        return text.strip()
    return parse


def _pem_key(content: str) -> None:
    if "PRIVATE KEY" not in content:
        raise ValueError("the file is not a PEM private key (.p8)")


def _json_file(content: str) -> None:
    try:
        json.loads(content)
    except ValueError:
        raise ValueError("the file is not valid JSON") from None


def rebase(path_text: str, old_dir: Path, new_dir: Path) -> str:
    """A path relative to `old_dir`, made relative to `new_dir` (absolute paths stay)."""
    p = Path(path_text).expanduser()
    if p.is_absolute() or old_dir.resolve() == new_dir.resolve():
        return path_text
    return os.path.relpath((old_dir / p).resolve(), new_dir.resolve())


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

    def header(self, number: int, total: int, title: str, intro: str) -> None:
        self.console.print()
        self.console.rule(f"[bold]{number}/{total}  {title}", align="left")
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
        self.smtp_send_to = None

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
                if not dep_flag and isinstance(self.prefill.get("deployment"), str):
                    dep = default.parent / self.prefill["deployment"]
        self.deployment = Path(os.path.abspath(dep))
        self.answers_path = default_answers_path(self.deployment)
        self.base_dir = self.answers_path.parent
        if source is not None:
            old_dir = source.resolve().parent
            for key in PATH_KEYS:
                if isinstance(get(self.prefill, key), str):
                    put(self.prefill, key, rebase(get(self.prefill, key), old_dir, self.base_dir))
            for key in REFERENCE_KEYS:
                ref = get(self.prefill, key)
                if isinstance(ref, str) and ref.startswith("file:"):
                    put(self.prefill, key, "file:" + rebase(ref[5:], old_dir, self.base_dir))
            if from_flag:  # a different answers file: its secrets file is not this one's
                self.prefill.pop("secrets_file", None)
        self.source = source

    # ------------------------------------------------------------ asking
    def ask(self, q: Question, default=None):
        return self.asker.ask(q, default)

    def ask_key(self, q: Question, default=None):
        """Ask for an answers key: pre-filled value first, then the given default."""
        pre = get(self.prefill, q.key)
        value = self.ask(q, pre if pre is not None else default)
        put(self.data, q.key, value)
        return value

    def confirm_manual(self, item) -> None:
        pre = get(self.prefill, "checklist") or {}
        q = Question(f"checklist.{item.id}", f"Done: {item.title}?", CONFIRM, help=item.help)
        if self.ask(q, bool(pre.get(item.id, False))):
            self.confirmed[item.id] = True
        else:
            self.screen.say("  left open; it stays on the checklist", "yellow")

    def offer_checks(self, ids, message: str, **options) -> None:
        from wizard.checklist import ITEMS, run_check_item

        if not self.ask(Question(f"flow.check.{ids[0]}", message, CONFIRM), True):
            for i in ids:
                self.checks.pop(i, None)
            self.screen.say("  not checked: run `wizard checklist` later", "yellow")
            return
        answers = self.partial_answers()
        with self.screen.console.status("checking…") if self.asker.interactive else _nothing():
            for i in ids:
                self.checks[i] = run_check_item(ITEMS[i], answers, **options.get(i, {}))
        for i in ids:
            self.screen.result(self.checks[i].ok, f"{ITEMS[i].title}: {self.checks[i].detail}")

    def partial_answers(self):
        """The answers so far (later sections at their defaults); None before the server name is known."""
        data = self.full_data()
        if not data.get("server_name"):
            return None
        return answers_from_dict(copy.deepcopy(data), path=self.answers_path, base_dir=self.base_dir)

    def full_data(self) -> dict:
        data = copy.deepcopy(self.data)
        data["version"] = 1
        if self.confirmed:
            data["checklist"] = dict(sorted(self.confirmed.items()))
        else:
            data["checklist"] = {}
        return data

    # ------------------------------------------------------------ sections
    def section_infrastructure(self, section) -> None:
        self.offer_checks(["tools.kubectl", "tools.helm", "cluster.reachable"],
                          "Check for kubectl, helm and a reachable cluster now?")
        self.confirm_manual(_item("cluster.operators"))

    def section_secrets(self, section) -> None:
        from wizard.catalog import GENERATED_IDS

        store = self.store
        kept = sum(1 for i in GENERATED_IDS if i in store.values)
        where = _short(self.secrets_path)
        if kept:
            self.screen.say(f"  {kept} secrets are already in {where}; they are kept. "
                            f"The others are generated or adopted from the tree.")
        else:
            self.screen.say(f"  {len(GENERATED_IDS)} secrets will be generated (or adopted from the tree) into "
                            f"{where}, never shown, never in the answers file.")
        self.ask_key(Question("minio.s3_access_key", "S3 access key id (MinIO user for media and backups):",
                              parse=lambda t: probe("minio.s3_access_key", t.strip(), self.base_dir)),
                     "synapse-s3-user")
        self.ask_key(Question("key_vault.rsa_bits", "RSA key size of the recovery-key vault:", SELECT,
                              choices=((2048, "2048 bits"), (3072, "3072 bits"), (4096, "4096 bits"))), 2048)

    def section_domains(self, section) -> None:
        pre_server = get(self.prefill, "server_name")
        server = self.ask_key(Question(
            "server_name", "Server name:", parse=parse_domain,
            help="User ids will look like @alice:SERVER_NAME. It cannot be changed later.\n"
                 "Use your organisation's domain (example.org) or a matrix host (matrix.example.org)."),
            None)
        derived = derive_domains(server)
        same_server = pre_server == server
        proposed = {k: (get(self.prefill, f"domains.{k}") if same_server and get(self.prefill, f"domains.{k}")
                        else derived[k]) for k in DOMAIN_KEYS}
        self.show_domains(proposed)
        if self.ask(Question("flow.domains", "Use these host names?", CONFIRM), True):
            for k in DOMAIN_KEYS:
                put(self.data, f"domains.{k}", proposed[k])
        else:
            for k in DOMAIN_KEYS:
                value = self.ask(Question(f"domains.{k}", f"{DOMAIN_LABELS[k]} host:", parse=parse_domain),
                                 proposed[k])
                put(self.data, f"domains.{k}", value)
        matrix = get(self.data, "domains.matrix")
        if server != matrix:
            pre_dir = get(self.prefill, "well_known_dir")
            want = self.ask(Question(
                "flow.well_known", "Write the .well-known delegation files?", CONFIRM,
                help=f"{server} is not the Matrix host ({matrix}): clients and servers find it through\n"
                     f"https://{server}/.well-known/matrix/server and …/client. The wizard can write both files\n"
                     "into a folder outside the tree, for your web server to serve."),
                True if pre_dir is not None or not self.prefill else False)
            if want:
                self.ask_key(Question("well_known_dir", "Folder for them (relative to "
                                      f"{_short(self.base_dir)}):", parse=self.parse_well_known_dir), "well-known")
            else:
                put(self.data, "well_known_dir", None)
                self.screen.say(f"  then serve https://{server}/.well-known/matrix/server yourself "
                                "(an open checklist item until it is there)", "yellow")
        self.offer_checks(["domains.dns"], "Check that these hosts resolve in DNS now?")

    def parse_well_known_dir(self, text: str) -> str:
        p = Path(text.strip()).expanduser()
        full = (p if p.is_absolute() else self.base_dir / p).resolve()
        tree = self.deployment.resolve()
        if full == tree or tree in full.parents:
            raise ValueError("it must be outside the deployment tree")
        if full.exists() and not full.is_dir():
            raise ValueError(f"{full} exists and is not a folder")
        return text.strip()

    def show_domains(self, domains: dict) -> None:
        from rich.table import Table

        table = Table(show_header=False, box=None, padding=(0, 2))
        for k in DOMAIN_KEYS:
            table.add_row(f"  {DOMAIN_LABELS[k]}", domains[k])
        self.screen.console.print(table)

    def section_li(self, section) -> None:
        from wizard.checklist import check_cidrs

        help_text = ("Only these address blocks reach the LI homeserver, Element and admin UI (nginx allowlist).\n"
                     f"To leave them reachable from any address, type \"{OPEN_WORD}\" (an open checklist item).")
        if self.asker.interactive:
            # Enter on an empty allowlist asks again: leaving it open is a choice the operator types
            cidrs = self.ask_key(Question(
                "li.allowed_cidrs", f"Networks allowed to reach the LI instance (CIDRs, comma-separated; "
                f"{OPEN_WORD} = any address):", parse=parse_allowlist, show=show_allowlist, help=help_text,
                required=f"an allowlist is required: give the networks, or type \"{OPEN_WORD}\" to leave the LI "
                         "instance reachable from any address"), None)
        else:  # the answers file's value (absent: [] — open, a warning and an open checklist item)
            cidrs = self.ask_key(Question(
                "li.allowed_cidrs", "Networks allowed to reach the LI instance:", parse=parse_cidrs,
                optional=True, empty=[], show=show_allowlist), [])
        result = check_cidrs(cidrs)
        self.checks["li.allowlist"] = result
        if result.ok:
            self.screen.result(True, f"allowlist: {result.detail}")
        else:
            self.screen.result(False, f"{result.detail} — an open checklist item")
        self.ask_key(Question("li.admin_user", "LI admin UI user name:",
                              parse=lambda t: probe("li.admin_user", t.strip(), self.base_dir)), "admin")
        self.ask_key(Question(
            "li.admin_password", "LI admin UI password reference (env:NAME or file:PATH; empty = generate):",
            parse=reference_parser("li.admin_password", self.base_dir), optional=True,
            help="Empty: a strong password is generated into the secrets file "
                 f"(shown with `wizard secrets show li.admin_password --answers {_arg(self.answers_path)}`)."),
            None)
        self.ask_key(Question("li.auth_realm", "Text of the browser's login box:",
                              parse=lambda t: probe("li.auth_realm", t.strip(), self.base_dir)), "LI administration")
        self.confirm_manual(_item("li.legal_review"))

    def section_signing_keys(self, section) -> None:
        if "synapse.signing_key" in self.store.values:
            self.screen.say(f"  kept from {_short(self.secrets_path)}")
        else:
            self.screen.say("  generated now (or adopted from the tree), and the same key written to main and LI")
        self.confirm_manual(_item("signing_key.backup"))

    def section_tls(self, section) -> None:
        server = get(self.data, "server_name")
        base = server[len("matrix."):] if server.startswith("matrix.") else server
        mode = self.ask_key(Question("tls.mode", "Certificates:", SELECT,
                                     choices=tuple((m, TLS_LABELS[m]) for m in TLS_MODES)), "letsencrypt-prod")
        self.ask_key(Question("tls.acme_email", "ACME account e-mail (Let's Encrypt expiry notices):",
                              parse=parse_email), f"admin@{base}")
        if mode == "manual":
            self.ask_key(Question("tls.secret_name", "Name of your TLS Secret (namespace matrix):",
                                  parse=lambda t: probe("tls.secret_name", t.strip(), self.base_dir,
                                                        {"tls.mode": "manual"})), "matrix-tls")
            self.confirm_manual(_item("tls.secret_created"))
        else:
            put(self.data, "tls.secret_name", None)

    def section_external(self, section) -> None:
        server = get(self.data, "server_name")
        base = server[len("matrix."):] if server.startswith("matrix.") else server
        smtp_extra = {"smtp.enabled": True, "smtp.host": "smtp.example.org", "smtp.from": "probe@example.org"}
        if self.ask_key(Question("smtp.enabled", "Send e-mail (notifications, password resets) through SMTP?",
                                 CONFIRM), False):
            self.ask_key(Question("smtp.host", "SMTP server host:",
                                  parse=lambda t: probe("smtp.host", t.strip().lower(), self.base_dir, smtp_extra)),
                         f"smtp.{base}")
            self.ask_key(Question("smtp.port", "SMTP port:", parse=parse_port), 587)
            self.ask_key(Question("smtp.user", "SMTP user (empty for none):", optional=True,
                                  parse=lambda t: probe("smtp.user", t.strip(), self.base_dir, smtp_extra)), None)
            self.ask_key(Question("smtp.password", "SMTP password reference (env:NAME or file:PATH; empty for none):",
                                  parse=reference_parser("smtp.password", self.base_dir), optional=True), None)
            self.ask_key(Question("smtp.from", "Sender address:",
                                  parse=lambda t: probe("smtp.from", t.strip(), self.base_dir, smtp_extra)),
                         f"noreply@{base}")
            self.ask_key(Question("smtp.require_transport_security", "Require STARTTLS?", CONFIRM), True)
            self.offer_smtp_check()
        else:
            self.data["smtp"] = {"enabled": False}
            self.checks.pop("smtp.server", None)
        self.screen.say(f"  LiveKit (video calls): {get(self.data, 'domains.livekit')}, API key and secret generated")
        self.ask_key(Question("turn.external_ip", "TURN public IP address (empty = coturn detects it):",
                              optional=True, parse=lambda t: probe("turn.external_ip", t.strip(), self.base_dir)),
                     None)
        if self.ask_key(Question("push.enabled", "Configure push notifications (Sygnal: APNs and FCM)?", CONFIRM,
                                 help="Needs your app's APNs key (.p8) and an FCM service account; "
                                      "without them Sygnal keeps its placeholders."), False):
            self.ask_key(Question("push.apns.key_file", "APNs key file (.p8):",
                                  parse=file_parser(self.base_dir, _pem_key)), None)
            self.ask_key(Question("push.apns.key_id", "APNs key id:"), None)
            self.ask_key(Question("push.apns.team_id", "Apple team id:"), None)
            self.ask_key(Question("push.apns.topic", "APNs topic (the app's bundle id):"), None)
            self.ask_key(Question("push.fcm.service_account_file", "FCM service account JSON file:",
                                  parse=file_parser(self.base_dir, _json_file)), None)
        else:
            self.data["push"] = {"enabled": False}

    def offer_smtp_check(self) -> None:
        if not self.ask(Question("flow.check.smtp", "Check that the SMTP server answers now?", CONFIRM), True):
            self.checks.pop("smtp.server", None)
            self.screen.say("  not checked: run `wizard checklist` later", "yellow")
            return
        send_to = None
        if self.ask(Question("flow.smtp_test_mail", "Also send a test mail?", CONFIRM), False):
            send_to = self.ask(Question("flow.smtp_test_to", "Send it to:", parse=parse_email),
                               get(self.data, "tls.acme_email"))
        from wizard.checklist import ITEMS, run_check_item

        result = run_check_item(ITEMS["smtp.server"], self.partial_answers(), send_to=send_to)
        self.checks["smtp.server"] = result
        self.screen.result(result.ok, f"SMTP: {result.detail}")

    def section_storage(self, section) -> None:
        self.ask_key(Question("storage.class", "StorageClass for every volume:",
                              parse=lambda t: probe("storage.class", t.strip(), self.base_dir),
                              help="kubectl get storageclass lists the ones your cluster has."), "standard")
        self.confirm_manual(_item("backup.tested"))

    def section_network(self, section) -> None:
        self.confirm_manual(_item("firewall.ports"))

    def section_final(self, section) -> None:
        self.screen.say("  after writing, the wizard audits the tree (wizard check) and shows the checklist")

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

        self.data = {"version": 1, "deployment": os.path.relpath(self.deployment, self.base_dir)}
        if isinstance(self.prefill.get("secrets_file"), str):
            self.data["secrets_file"] = self.prefill["secrets_file"]
        probe_answers = answers_from_dict({"version": 1, "server_name": "probe.example.org",
                                           **({"secrets_file": self.data["secrets_file"]}
                                              if "secrets_file" in self.data else {})},
                                          path=self.answers_path, base_dir=self.base_dir)
        self.secrets_path = probe_answers.secrets_file
        self.store = load_store(self.secrets_path)  # a secrets file with wrong permissions stops us here

        for number, section in enumerate(SECTIONS, 1):
            s.header(number, len(SECTIONS), section.title, section.intro)
            getattr(self, f"section_{section.id}")(section)

        data = self.full_data()
        answers = answers_from_dict(copy.deepcopy(data), path=self.answers_path, base_dir=self.base_dir)
        return self.finish(answers, data)

    def finish(self, answers, data) -> int:
        from wizard import app
        from wizard.answers_file import save_answers
        from wizard.checklist import titles

        s = self.screen
        s.console.print()
        s.console.rule("[bold]Summary", align="left")
        prepared = app.prepare(answers)
        plan = prepared.plan
        self.show_summary(answers, plan)
        outside = [p for p, (old, new) in plan.outside.items() if old != new]
        changes = bool(plan.changed_files or plan.store_changed or self.create or outside)
        if self.ctx.opt("dry_run"):
            self.show_diff(plan)
            s.say("dry run: nothing was written, and the answers file was not saved", "yellow")
            return 0
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
        with _interrupt_after() as interrupted:
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
        self.show_next(answers, result if changes else None)
        if interrupted:
            s.say("interrupted: the write was finished first", "yellow")
            return 130
        return 0

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
            what = self.describe(section.id, answers, plan)
            n, files = per_section.get(section.id, (0, set()))
            edits = f"{n} in {len(files)} file{'s' if len(files) > 1 else ''}" if n else "—"
            table.add_row(section.title, what, edits)
        s = self.screen
        s.console.print(table)
        if self.create:
            s.say(f"{_short(self.deployment)} will be created from the bundled templates")
        s.say(f"{len(plan.changed_files)} files change in the tree; secrets file: {_short(answers.secrets_file)} "
              f"({'updated' if plan.store_changed else 'unchanged'}); answers file: {_short(self.answers_path)}")

    def describe(self, section: str, a, plan):
        """One cell of the summary: the settings of a section, in the operator's words (rich Text)."""
        from rich.text import Text

        def checks(ids):
            parts = []
            for i in ids:
                r = self.checks.get(i)
                parts.append((f"{i}: " + ("ok" if r.ok else "open") + "  ", "green" if r.ok else "red") if r else
                             (f"{i}: not checked  ", "yellow"))
            return Text.assemble(*parts)

        if section == "infrastructure":
            return checks(["tools.kubectl", "tools.helm", "cluster.reachable"])
        if section == "secrets":
            from wizard.catalog import GENERATED_IDS

            parts = [f"generate {len(set(plan.generated))}"]
            kept = sum(1 for i in GENERATED_IDS if i in self.store.values)
            if kept:
                parts.append(f"keep {kept} from the secrets file")
            if plan.adopted:
                parts.append(f"adopt {len(set(plan.adopted))} from the tree")
            return Text(", ".join(parts) + " (values never shown); "
                        f"S3 access key {a.s3_access_key}; RSA {a.rsa_bits} bits")
        if section == "domains":
            text = f"{a.server_name}: " + ", ".join(a.domains[k] for k in DOMAIN_KEYS)
            if a.well_known_dir is not None and a.server_name != a.domains["matrix"]:
                text += f"; .well-known files in {_short(a.well_known_dir)}"
            return Text(text)
        if section == "li":
            pw = a.admin_password_ref or ("kept" if "li.admin_password" in self.store.values else "generated")
            if a.allowed_cidrs:
                allow = Text(f"allowlist {', '.join(a.allowed_cidrs)}", style="green")
            else:
                allow = Text("allowlist OPEN (reachable from any address)", style="bold red")
            return Text.assemble(allow, f"; basic auth {a.admin_user}, password {pw}")
        if section == "signing_keys":
            return Text("new ed25519 key" if "synapse.signing_key" in plan.generated else "kept",)
        if section == "tls":
            return Text(f"{a.tls_mode}, {a.acme_email}" + (f", Secret {a.tls_secret_name}" if a.tls_secret_name else ""))
        if section == "external":
            smtp = f"SMTP {a.smtp.host}:{a.smtp.port}" if a.smtp.enabled else "SMTP off"
            push = "push on" if a.push.enabled else "push off"
            ip = a.external_ip or "auto"
            return Text(f"{smtp}; LiveKit {a.domains['livekit']}; TURN {a.domains['turn']} (IP {ip}); {push}")
        if section == "storage":
            return Text(f"StorageClass {a.storage_class}")
        if section == "network":
            return Text("firewall: confirmed" if self.confirmed.get("firewall.ports") else "firewall: open item",
                        style="" if self.confirmed.get("firewall.ports") else "yellow")
        return Text("wizard check after writing")

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
        still = [st for st in statuses if st.state == OPEN]
        if any(st.item.id == "li.allowlist" for st in still):
            s.say("the LI allowlist is open: anyone can reach the LI ingresses until li.allowed_cidrs is set",
                  "bold red")

    def show_next(self, answers, result=None) -> None:
        """The commands to go on with, each runnable as printed from the current folder (the answers file
        spelled out), then how to deploy the tree, in the order the steps must run."""
        from wizard import app
        from wizard.steps import format_steps

        s = self.screen
        flag = f" --answers {_arg(self.answers_path)}"
        s.console.print()
        s.console.rule("[bold]Next", align="left")
        s.say(f"  LI admin UI: https://{answers.domains['li_admin']}/  user {answers.admin_user}")
        if answers.admin_password_ref:
            s.say(f"  its password comes from {answers.admin_password_ref}")
        else:
            s.say(f"  its password is kept in {_short(answers.secrets_file)}; show it with:")
            s.say(f"    wizard secrets show li.admin_password{flag}", "bold")
        s.say(f"  wizard check{flag}          # audit the tree (CI: --strict)")
        s.say(f"  wizard checklist{flag}      # what is still open")
        s.say(f"  wizard{flag}   # re-apply without questions")
        s.say(f"  commit {_short(self.answers_path)}; never commit {_short(answers.secrets_file)}; "
              f"back it up somewhere safe")
        if answers.well_known_dir is not None and answers.server_name != answers.domains["matrix"]:
            s.say(f"  serve {_short(Path(answers.well_known_dir) / '.well-known')} at https://{answers.server_name}/")
        steps = app.deploy_steps(answers, result)
        if steps:
            s.say("")
            s.say("next, in this order:", "bold")
            for line in format_steps(steps):
                s.say(f"  {line}")


def section_of(cid: str) -> str:
    """Which checklist section an edit's catalog id belongs to (for the summary)."""
    from wizard.catalog import GENERATED_IDS

    if cid == "synapse.signing_key":
        return "signing_keys"
    if cid.startswith(("li.allowed", "li.admin", "li.auth")):
        return "li"
    if cid in GENERATED_IDS or cid in ("minio.s3_access_key",):
        return "secrets"
    if cid == "server_name" or cid.startswith("domains."):
        return "domains"
    if cid.startswith("tls."):
        return "tls"
    if cid.startswith("storage."):
        return "storage"
    return "external"


def _item(item_id: str):
    from wizard.checklist import ITEMS

    return ITEMS[item_id]


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


@contextmanager
def _interrupt_after():
    """Ctrl-C while writing: finish the write first (the tree is never left half-configured)."""
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
