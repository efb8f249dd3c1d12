"""The pre-deployment checklist as data, the checks the wizard can run, and each item's state.

An item is one of three kinds:
  wizard  the wizard does it (secrets, domains, TLS, ...); its state is read from the tree.
  check   the wizard can check it (tools on PATH, DNS, SMTP, ...) with a short timeout; a failure
          or a timeout leaves it open, never blocks anything.
  manual  only the operator can tell (firewall, legal review, backups); a confirmation is recorded
          under `checklist:` in the answers file.
States: done (by the wizard, or a check passed), confirmed (by the operator), open.
"""
from __future__ import annotations

import ipaddress
import json
import os
import shlex
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from wizard import wellknown
from wizard.answers import open_families

WIZARD, CHECK, MANUAL = "wizard", "check", "manual"
DONE, CONFIRMED, OPEN = "done", "confirmed", "open"
CHECK_TIMEOUT = 5.0


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    detail: str


@dataclass(frozen=True)
class Facts:
    """What an item's state is read from."""

    answers: object | None  # wizard.answers.Answers
    tree: Path | None
    store: object | None  # wizard.store.SecretStore
    findings: tuple = ()  # wizard.check.Finding
    checks: dict = field(default_factory=dict)  # item id -> CheckResult (absent: not run)


@dataclass(frozen=True)
class Item:
    id: str
    title: str
    kind: str
    help: str = ""
    when: Callable[[object], bool] = lambda answers: True  # answers (or None) -> applies?
    state: Callable[[Facts], tuple[str, str]] | None = None  # wizard items: (state, detail)
    check: Callable[..., CheckResult] | None = None  # check items: (answers, **options) -> result
    needs_answers: bool = False  # check items that read hosts etc. from the answers
    instant: bool = False  # a pure check (no tool, no network): always run
    topic: str = ""  # the records of its section whose docs.topic names it are its own (see `item_of`)


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    intro: str
    items: tuple[Item, ...]


@dataclass(frozen=True)
class ItemStatus:
    section: str
    item: Item
    state: str
    detail: str

    def to_json(self) -> dict:
        return {"section": self.section, "id": self.item.id, "title": self.item.title, "kind": self.item.kind,
                "state": self.state, "detail": self.detail, "help": self.item.help}


# ---------------------------------------------------------------- checks (each bounded in time)

def with_timeout(fn: Callable[[], CheckResult], timeout: float = CHECK_TIMEOUT) -> CheckResult:
    """Run a check in a daemon thread; no answer in time is a failed check (and nobody waits for it)."""
    box: list[CheckResult] = []

    def run():
        try:
            box.append(fn())
        except Exception as exc:  # noqa: BLE001 - a check that breaks is an open item, not a crash
            box.append(CheckResult(False, f"{type(exc).__name__}: {exc}"))

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    if not box:
        return CheckResult(False, f"no answer within {timeout:g}s")
    return box[0]


def check_tool(name: str) -> CheckResult:
    path = shutil.which(name)
    return CheckResult(True, f"{path}") if path else CheckResult(False, f"{name} is not on PATH")


def check_cluster(timeout: float = CHECK_TIMEOUT) -> CheckResult:
    if not shutil.which("kubectl"):
        return CheckResult(False, "kubectl is not on PATH")
    t = max(1, int(timeout) - 1)
    # its own session, so that a timeout kills whatever it started too (a plugin, a credential helper)
    proc = subprocess.Popen(["kubectl", "version", "-o", "json", f"--request-timeout={t}s"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        proc.communicate()
        return CheckResult(False, f"kubectl version: no answer within {timeout:g}s")
    try:
        server = json.loads(stdout or "{}").get("serverVersion") or {}
    except ValueError:
        server = {}
    if proc.returncode == 0 and server:
        return CheckResult(True, f"cluster answers (Kubernetes {server.get('gitVersion', '?')})")
    err = (stderr.strip().splitlines() or ["no server version"])[-1]
    return CheckResult(False, f"cluster not reachable: {err[:160]}")


def check_dns(hosts, timeout: float = CHECK_TIMEOUT) -> CheckResult:
    """Every host resolves (looked up in parallel, each bounded by the timeout)."""
    hosts = sorted(set(hosts))
    results = {}

    def lookup(host: str):
        try:
            infos = socket.getaddrinfo(host, 443, proto=socket.IPPROTO_TCP)
            results[host] = sorted({i[4][0] for i in infos})
        except OSError as exc:
            results[host] = exc

    threads = [threading.Thread(target=lookup, args=(h,), daemon=True) for h in hosts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    failed = [h for h in hosts if not isinstance(results.get(h), list)]
    if failed:
        return CheckResult(False, f"{len(failed)} of {len(hosts)} do not resolve: {', '.join(failed)}")
    return CheckResult(True, f"all {len(hosts)} resolve")


def check_cidrs(cidrs) -> CheckResult:
    if not cidrs:
        return CheckResult(False, "no allowlist: the LI ingresses are reachable from any address")
    wide = [c for c in cidrs if ipaddress.ip_network(c, strict=False).prefixlen == 0]
    if wide:
        return CheckResult(False, f"{', '.join(wide)} lets every address in")
    families = open_families(cidrs)
    if families:  # e.g. 0.0.0.0/1 and 128.0.0.0/1: no allowlist at all
        return CheckResult(False, f"{', '.join(cidrs)} together let every {' and every '.join(families)} address in")
    return CheckResult(True, ", ".join(cidrs))


def check_smtp(smtp, *, send_to: str | None = None, timeout: float = CHECK_TIMEOUT,
               implicit_tls: bool | None = None) -> CheckResult:
    """The server answers EHLO (STARTTLS when offered or required, login when a user is set); optionally
    send a test mail. Every TLS connection verifies the server's certificate and name: the password is
    never sent to a server that cannot prove it is the one named. Port 465 means TLS from the start."""
    implicit_tls = smtp.port == 465 if implicit_tls is None else implicit_tls
    context = ssl.create_default_context()
    try:
        if implicit_tls:
            client = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=timeout, context=context)
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, timeout=timeout)
    except ssl.SSLError as exc:
        return CheckResult(False, f"{smtp.host}:{smtp.port}: TLS refused, nothing sent: {exc}")
    except (OSError, smtplib.SMTPException) as exc:
        return CheckResult(False, f"no SMTP server at {smtp.host}:{smtp.port}: {exc}")
    try:
        code, _ = client.ehlo()
        if code != 250:
            return CheckResult(False, f"EHLO refused ({code})")
        notes = [f"{smtp.host}:{smtp.port} answers EHLO"]
        if not implicit_tls:
            if client.has_extn("starttls"):
                client.starttls(context=context)
                client.ehlo()
                notes.append("STARTTLS ok")
            elif smtp.require_transport_security:
                return CheckResult(False, f"{smtp.host}:{smtp.port} offers no STARTTLS, but "
                                          "smtp.require_transport_security is true")
        if smtp.user:
            if smtp.password is None:
                notes.append("login not tried (no password reference)")
            else:
                client.login(smtp.user, smtp.password)
                notes.append(f"login as {smtp.user} ok")
        if send_to:
            from email.message import EmailMessage

            msg = EmailMessage()
            msg["From"] = smtp.from_
            msg["To"] = send_to
            msg["Subject"] = "wizard: test mail from your Matrix deployment"
            msg.set_content("This is a test mail sent by the Matrix deployment wizard's SMTP check.\n")
            client.send_message(msg)
            notes.append(f"test mail sent to {send_to}")
        return CheckResult(True, "; ".join(notes))
    except ssl.SSLError as exc:
        return CheckResult(False, f"{smtp.host}:{smtp.port}: TLS refused, nothing sent: {exc}")
    except (OSError, smtplib.SMTPException) as exc:
        return CheckResult(False, f"{smtp.host}:{smtp.port}: {exc}")
    finally:
        try:
            client.quit()
        except Exception:  # noqa: BLE001 - closing a broken session
            client.close()


# ---------------------------------------------------------------- states of the wizard's own items

def item_of(cid: str) -> str | None:
    """The checklist item a catalog id belongs to: its record's section (docs.section), and within it the
    item naming the record's topic (docs.topic), else the section's first item the wizard does."""
    from wizard.catalog import record

    r = record(cid)
    return None if r is None else _section_item(r.docs.section, r.docs.topic)


def _section_item(section: str, topic: str = "") -> str | None:
    for sec in SECTIONS:
        if sec.id == section:
            named = next((i.id for i in sec.items if topic and i.topic == topic), None)
            return named or next((i.id for i in sec.items if i.kind == WIZARD), None)
    return None


def items_of(finding) -> set[str]:
    """The items a finding is about: those of its ids; without ids, its rule's checklist section's."""
    if finding.ids:
        return {i for i in (item_of(cid) for cid in finding.ids) if i}
    spec = finding.spec
    item = _section_item(spec.section) if spec is not None and spec.section else None
    return {item} if item else set()


def _errors_about(facts: Facts, item_id: str, *, drift: bool = False) -> list:
    """The errors (and with `drift`, the drift warnings) of wizard check about this item's values."""
    return [f for f in facts.findings if (f.severity == "error" or (drift and f.rule == "drift"))
            and item_id in items_of(f)]


def shown(path) -> str:
    """A path as short as it can be said from the current folder."""
    rel = os.path.relpath(Path(path).absolute(), Path.cwd())
    return rel if not rel.startswith("..") else str(path)


def _problems(findings) -> str:
    first = findings[0]
    more = f" (and {len(findings) - 1} more)" if len(findings) > 1 else ""
    return f"{first.file}:{first.line}: {first.message}{more}"


def _secrets_state(facts: Facts):
    from wizard.catalog import generated_ids

    if facts.tree is None:
        return OPEN, "no deployment"
    bad = _errors_about(facts, "secrets.generated")
    if bad:
        return OPEN, _problems(bad)
    store = facts.store
    if store is None or not getattr(store, "exists", False):
        return OPEN, "no secrets file yet: run the wizard"
    wanted = generated_ids()
    missing = [i for i in wanted if i not in store.values]
    if missing:
        return OPEN, f"not in the secrets file: {', '.join(missing)}"
    return DONE, f"{len(wanted)} secrets in {shown(store.path)} (mode 0600)"


def _domains_state(facts: Facts):
    a = facts.answers
    bad = _errors_about(facts, "domains.set", drift=True)
    if bad:
        return OPEN, _problems(bad)
    if a is None:
        return DONE, "no example.com left in a value"
    return DONE, f"{a.server_name}; " + ", ".join(a.domains[k] for k in ("matrix", "element", "turn", "li_matrix",
                                                                         "li_element", "li_admin", "livekit"))


def _well_known_state(facts: Facts):
    a = facts.answers
    if not wellknown.needs_delegation(a):
        return DONE, "not needed: the server name is the matrix host"
    if a.well_known_dir is None:
        return OPEN, (f"serve https://{a.server_name}/.well-known/matrix/server and client "
                      "(or set well_known_dir to have them written)")
    ok, why = wellknown.state(a)
    if not ok:
        return OPEN, why
    return DONE, f"written to {shown(wellknown.folder(a))}; serve it at https://{a.server_name}/"


def _allowlist_extra(facts: Facts):
    warn = [f for f in facts.findings if f.rule == "li-allowlist" or (f.severity == "error"
                                                                        and "li.allowlist" in items_of(f))]
    return _problems(warn) if warn else ""


def _admin_auth_state(facts: Facts):
    bad = _errors_about(facts, "li.admin_auth")
    if bad:
        return OPEN, _problems(bad)
    user = facts.answers.admin_user if facts.answers else "?"
    if facts.answers is not None and facts.answers.path is not None:
        show = f"wizard secrets show li.admin_password --answers {shlex.quote(shown(facts.answers.path))}"
    else:  # no answers file: the command could not find the secrets file
        show = "wizard secrets show li.admin_password --answers <your answers file>"
    return DONE, f"basic auth, user {user}; password: {show}"


def _signing_state(facts: Facts):
    bad = _errors_about(facts, "signing_key.generated")
    if bad:
        return OPEN, _problems(bad)
    return DONE, "ed25519 key, the same on main and LI"


def _tls_state(facts: Facts):
    a = facts.answers
    if a is None:
        return DONE, "see the ClusterIssuers"
    if a.tls_mode == "manual":
        return DONE, f"manual: every Ingress uses Secret {a.tls_secret_name}"
    return DONE, f"{a.tls_mode}, ACME e-mail {a.acme_email}"


def _smtp_state(facts: Facts):
    a = facts.answers
    if a is None or not a.smtp.enabled:
        return DONE, "off: Synapse sends no e-mail"
    return DONE, f"{a.smtp.host}:{a.smtp.port}, from {a.smtp.from_}"


def _livekit_state(facts: Facts):
    bad = _errors_about(facts, "livekit")
    if bad:
        return OPEN, _problems(bad)
    host = facts.answers.domains["livekit"] if facts.answers else "LiveKit"
    return DONE, f"{host}; API key and secret generated"


def _turn_state(facts: Facts):
    bad = _errors_about(facts, "turn")
    if bad:
        return OPEN, _problems(bad)
    a = facts.answers
    if a is None:
        return DONE, "shared secret generated"
    ip = a.external_ip or "detected by coturn at start"
    return DONE, f"{a.domains['turn']}; external IP: {ip}"


def _push_state(facts: Facts):
    a = facts.answers
    if a is None or not a.push.enabled:
        return DONE, "off: Sygnal keeps its placeholders (info in wizard check)"
    bad = _errors_about(facts, "push")
    if bad:
        return OPEN, _problems(bad)
    return DONE, f"APNs topic {a.push.apns_topic}, FCM service account"


def _storage_state(facts: Facts):
    bad = _errors_about(facts, "storage.volumes")
    if bad:
        return OPEN, _problems(bad)
    return DONE, f"StorageClass {facts.answers.storage_class}" if facts.answers else "set"


def _final_state(facts: Facts):
    from wizard.check import summarize

    counts = summarize(list(facts.findings))
    text = f"wizard check: {counts['error']} errors, {counts['warning']} warnings"
    return (OPEN if counts["error"] else DONE), text


def _smtp_on(answers) -> bool:
    return answers is not None and answers.smtp.enabled


def _manual_tls(answers) -> bool:
    return answers is not None and answers.tls_mode == "manual"


def _hosts(answers) -> list[str]:
    return sorted(set(answers.domains.values()))


# ---------------------------------------------------------------- the checklist

SECTIONS: tuple[Section, ...] = (
    Section("infrastructure", "Infrastructure prerequisites",
            "The tools the deployment is applied with, and a cluster to apply it to.", (
                Item("tools.kubectl", "kubectl is installed", CHECK, check=lambda a, **o: check_tool("kubectl")),
                Item("tools.helm", "helm is installed", CHECK, check=lambda a, **o: check_tool("helm")),
                Item("cluster.reachable", "kubectl reaches the cluster", CHECK,
                     check=lambda a, timeout=CHECK_TIMEOUT, **o: check_cluster(timeout)),
                Item("cluster.operators", "cert-manager, ingress-nginx, CloudNativePG and the MinIO operator "
                     "are installed", MANUAL, help="The manifests use their resource kinds; install them first "
                     "(values/ holds their Helm values)."),
            )),
    Section("secrets", "Secrets",
            "Every password, key and token is generated once, kept in the secrets file (mode 0600, "
            "git-ignored), and written to every place that needs it.", (
                Item("secrets.generated", "secrets generated and consistent everywhere", WIZARD, state=_secrets_state),
            )),
    Section("domains", "Domains",
            "The server name is the part after the colon in user ids; the other hosts default from it.", (
                Item("domains.set", "server name and hosts set everywhere", WIZARD, state=_domains_state),
                Item("domains.well_known", ".well-known delegation of the server name", WIZARD,
                     when=lambda a: a is not None, state=_well_known_state),
                Item("domains.dns", "every host resolves in DNS", CHECK, needs_answers=True,
                     when=lambda a: a is not None,
                     check=lambda a, timeout=CHECK_TIMEOUT, **o: check_dns(_hosts(a), timeout)),
            )),
    Section("li", "LI security",
            "The lawful-intercept instance must be reachable only from the allowed networks, behind basic auth.", (
                Item("li.allowlist", "LI ingresses restricted to an IP allowlist (not 0.0.0.0/0)", CHECK,
                     needs_answers=True, instant=True, check=lambda a, **o: check_cidrs(a.allowed_cidrs),
                     topic="allowlist"),
                Item("li.admin_auth", "LI admin UI behind basic auth", WIZARD, state=_admin_auth_state),
                Item("li.legal_review", "the LI instance was reviewed by your legal team", MANUAL,
                     help="Lawful intercept is regulated: who may search, what is logged, how long data is kept."),
            )),
    Section("signing_keys", "Signing keys",
            "The federation signing key is generated once and shared by the main and LI homeservers.", (
                Item("signing_key.generated", "signing key generated, main and LI identical", WIZARD,
                     state=_signing_state),
                Item("signing_key.backup", "the signing key is backed up outside the cluster", MANUAL,
                     help="Losing it breaks federation for your users: keep a copy of the secrets file safe."),
            )),
    Section("tls", "TLS",
            "cert-manager issues the certificates (Let's Encrypt by default); or bring your own Secret.", (
                Item("tls.certificates", "certificate issuer set on every Ingress", WIZARD, state=_tls_state),
                Item("tls.secret_created", "the TLS Secret exists in namespace matrix", MANUAL, when=_manual_tls,
                     help="kubectl -n matrix create secret tls NAME --cert=… --key=…"),
            )),
    Section("external", "External services",
            "E-mail, video calls (LiveKit), TURN relay and push notifications.", (
                Item("smtp", "SMTP for notification e-mail", WIZARD, state=_smtp_state, topic="smtp"),
                Item("smtp.server", "the SMTP server answers", CHECK, needs_answers=True, when=_smtp_on,
                     check=lambda a, timeout=CHECK_TIMEOUT, send_to=None, **o: check_smtp(a.smtp, send_to=send_to,
                                                                                          timeout=timeout)),
                Item("livekit", "LiveKit keys and host", WIZARD, state=_livekit_state, topic="livekit"),
                Item("turn", "TURN (coturn) secret and realm", WIZARD, state=_turn_state, topic="turn"),
                Item("push", "push notifications (Sygnal)", WIZARD, state=_push_state, topic="push"),
            )),
    Section("storage", "Storage and backup",
            "Every volume claim uses one StorageClass; PostgreSQL backs up to MinIO.", (
                Item("storage.volumes", "StorageClass set on every volume", WIZARD, state=_storage_state),
                Item("backup.tested", "a backup was restored once as a test", MANUAL,
                     help="A backup that was never restored is a hope, not a backup."),
            )),
    Section("network", "Network and firewall",
            "Open only what the deployment serves.", (
                Item("firewall.ports", "firewall allows 80/443 TCP, TURN 3478 and 5349 (TCP+UDP) and the TURN "
                     "relay ports", MANUAL, help="Everything else stays closed to the internet."),
            )),
    Section("final", "Final validation",
            "The configured tree passes the wizard's own audit.", (
                Item("final.check", "wizard check finds no error", WIZARD, state=_final_state),
            )),
)

ITEMS = {i.id: i for s in SECTIONS for i in s.items}


def titles() -> dict[str, str]:
    return {i.id: i.title for i in ITEMS.values()}


def run_check_item(item: Item, answers, *, timeout: float = CHECK_TIMEOUT, **options) -> CheckResult:
    if item.needs_answers and answers is None:
        return CheckResult(False, "no answers file to read the settings from")
    return with_timeout(lambda: item.check(answers, timeout=timeout, **options), timeout + 1)


def run_checks(answers, ids=None, *, timeout: float = CHECK_TIMEOUT) -> dict[str, CheckResult]:
    """Run the applicable checks (all, or `ids`) in parallel; each one bounded by `timeout`."""
    items = [i for i in ITEMS.values() if i.kind == CHECK and i.when(answers) and (ids is None or i.id in ids)]
    results: dict[str, CheckResult] = {}

    def one(item):
        results[item.id] = run_check_item(item, answers, timeout=timeout)

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in items]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 2)
    for i in items:
        results.setdefault(i.id, CheckResult(False, f"no answer within {timeout:g}s"))
    return results


def checklist_status(answers, tree: Path | None, *, store=None, findings=None, checks=None,
                     run: bool = True, timeout: float = CHECK_TIMEOUT) -> list[ItemStatus]:
    """Every applicable item with its state. `checks` are results already at hand; with `run`, the
    missing ones are run now (pure checks always). `findings` default to `wizard check` on the tree."""
    if findings is None and tree is not None and Path(tree).is_dir():
        from wizard.check import run_check
        from wizard.locate.resolve import Tree

        findings = run_check(Tree(Path(tree)), answers, store)
    checks = dict(checks or {})
    missing = [i.id for i in ITEMS.values() if i.kind == CHECK and i.id not in checks and i.when(answers)
               and (run or i.instant)]
    if missing:
        checks.update(run_checks(answers, missing, timeout=timeout))
    facts = Facts(answers, Path(tree) if tree else None, store, tuple(findings or ()), checks)
    confirmed = dict(answers.checklist) if answers is not None else {}
    out = []
    for section in SECTIONS:
        for item in section.items:
            if not item.when(answers):
                continue
            if item.kind == MANUAL:
                state, detail = (CONFIRMED, "confirmed by the operator") if confirmed.get(item.id) else \
                    (OPEN, "not confirmed")
            elif item.kind == CHECK:
                result = checks.get(item.id)
                if result is None:
                    state, detail = OPEN, "not checked"
                else:
                    state, detail = (DONE if result.ok else OPEN), result.detail
                if item.id == "li.allowlist" and answers is None:
                    state, detail = (OPEN, _allowlist_extra(facts)) if _allowlist_extra(facts) else \
                        (DONE, "an allowlist is set on the LI ingresses")
                elif item.id == "li.allowlist" and state == DONE and _allowlist_extra(facts):
                    state, detail = OPEN, _allowlist_extra(facts)
            elif answers is None and item.id not in ("secrets.generated", "final.check", "signing_key.generated"):
                state, detail = OPEN, "no answers file"
            else:
                state, detail = item.state(facts)
            out.append(ItemStatus(section.title, item, state, detail))
    return out


def unknown_confirmations(answers) -> list[str]:
    return sorted(k for k in (answers.checklist if answers else {}) if k not in ITEMS)


# ---------------------------------------------------------------- output

STATE_STYLE = {DONE: "green", CONFIRMED: "cyan", OPEN: "red"}


def status_table(statuses: list[ItemStatus], *, title: str = "Checklist"):
    """A rich table (for a terminal): open items in red."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, title_justify="left", expand=False)
    table.add_column("section", style="bold", no_wrap=True)
    table.add_column("item")
    table.add_column("state", no_wrap=True)
    table.add_column("detail", overflow="fold")
    last = None
    for s in statuses:
        table.add_row(s.section if s.section != last else "", s.item.title,
                      Text(s.state, style=STATE_STYLE[s.state] + " bold"), s.detail)
        last = s.section
    return table


def status_lines(statuses: list[ItemStatus]) -> list[str]:
    return [f"{s.state:<9} {s.item.id:<22} {s.item.title} — {s.detail}" for s in statuses]


def counts(statuses: list[ItemStatus]) -> dict[str, int]:
    out = {DONE: 0, CONFIRMED: 0, OPEN: 0}
    for s in statuses:
        out[s.state] += 1
    return out
