"""The answers schema defined once (issue 12, item 4) and guided setup on the operator's own tree (issue 13,
items 1 and 2).

From wizard.catalog.answers come: the loader's validation (every problem of a file in one run, each naming
its dotted key; an empty file names the required keys), Answers.get (the same meaning as the attributes the
planner read), the writer and answers.example.yaml, and guided setup's questions. Guided setup plans the
answers against the tree and asks for each unknown placeholder token and each ambiguous location, keeping
the answers in `placeholders:` and `locations:`. In-process unless marked e2e.
"""
from __future__ import annotations

import copy
import io
import re
import shutil
from pathlib import Path

import pytest
import yaml

from helpers import FULL_ANSWERS, ROOT, TEMPLATES, run_wizard, snapshot, write_answers
from wizard import answers as A
from wizard.answers_file import example_text, render_answers, write_example
from wizard.catalog import answers as S
from wizard.errors import AnswersError

e2e = pytest.mark.e2e


def _load(tmp_path: Path, data, env=None, name="prod.yaml"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return A.load_answers(path, env=env or {})


def _problems(tmp_path: Path, data) -> list[str]:
    with pytest.raises(AnswersError) as exc:
        _load(tmp_path, data)
    return exc.value.lines()


# ---------------------------------------------------------------- every problem in one run

FIVE_WRONG = dict(copy.deepcopy(FULL_ANSWERS), sever_name="x.org",
                  domains=dict(FULL_ANSWERS["domains"], turn="turn..acme-corp.net"),
                  tls={"mode": "lets-encrypt", "acme_email": "ops-at-acme"}, storage={"class": "Fast SSD"})
FIVE_KEYS = ["sever_name", "domains.turn", "tls.mode", "tls.acme_email", "storage.class"]


def test_every_problem_of_a_file_in_one_run(tmp_path):
    lines = _problems(tmp_path, FIVE_WRONG)
    assert len(lines) == 5, lines
    assert sorted(line.split(":")[0] for line in lines) == sorted(FIVE_KEYS)


@e2e
def test_every_problem_in_one_run_from_the_command_line(tmp_path):
    run_wizard("init", str(tmp_path / "deployment"), check=True)
    answers = write_answers(tmp_path / "prod.yaml", FIVE_WRONG)
    before = snapshot(tmp_path)
    proc = run_wizard("--answers", str(answers), "--yes")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("wizard: error: ")]
    assert len(errors) == 5, proc.stderr
    for key in FIVE_KEYS:
        assert sum(ln.startswith(f"wizard: error: {key}: ") for ln in errors) == 1, (key, proc.stderr)
    assert "5 problems; nothing was written" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("text", ["", "# nothing but a comment\n", "---\n"])
def test_an_empty_file_names_the_required_keys(tmp_path, text):
    lines = _problems(tmp_path, text)
    assert [line.split(":")[0] for line in lines] == list(S.required_keys()) == ["version", "server_name"]
    assert all("is required" in line for line in lines)


def test_a_wrong_value_does_not_cascade(tmp_path):
    """What depends on a wrong value is not judged: one problem, named once."""
    assert [ln.split(":")[0] for ln in _problems(tmp_path, {"version": 1, "server_name": "Not A Domain"})] == \
        ["server_name"]
    assert [ln.split(":")[0] for ln in _problems(tmp_path, {"version": 1, "server_name": "acme-corp.net",
                                                            "smtp": {"enabled": "yes", "port": 0}})] == \
        ["smtp.enabled"]
    assert [ln.split(":")[0] for ln in _problems(tmp_path, {"version": 1, "server_name": "acme-corp.net",
                                                            "tls": "manual"})] == ["tls"]
    # another schema version: its keys mean something else, nothing more is judged
    assert [ln.split(":")[0] for ln in _problems(tmp_path, {"version": 2, "servr": "x"})] == ["version"]
    assert [ln.split(":")[0] for ln in _problems(tmp_path, {"version": True, "server_name": "x.org"})] == ["version"]


def test_problems_name_the_key_inside_lists_and_mappings(tmp_path):
    lines = _problems(tmp_path, {"version": 1, "server_name": "acme-corp.net",
                                 "li": {"allowed_cidrs": ["10.0.0.1/8", "203.0.113.0/24", "everyone"]},
                                 "checklist": {"firewall.ports": "yes"},
                                 "placeholders": {"CHANGEME_X": {"generate": "nope"}, "not-a-token": "v"},
                                 "push": {"enabled": True, "apns": {"key_fiel": "k.p8"}}})
    keys = [ln.split(": ")[0] for ln in lines]
    assert keys == ["push.apns.key_fiel", "li.allowed_cidrs[0]", "li.allowed_cidrs[2]", "push.apns.key_file",
                    "push.apns.key_id", "push.apns.team_id", "push.apns.topic", "push.fcm.service_account_file",
                    "checklist.firewall.ports", "placeholders.CHANGEME_X", "placeholders.not-a-token"], lines
    assert "allowed in push.apns: key_file, key_id, team_id, topic" in lines[0]
    assert all("is required when push.enabled is true" in ln for ln in lines[3:8])


def test_conditions_of_keys(tmp_path):
    base = {"version": 1, "server_name": "acme-corp.net"}
    assert _problems(tmp_path, dict(base, tls={"secret_name": "my-tls"})) == \
        ["tls.secret_name: is only used when tls.mode is manual"]
    assert _problems(tmp_path, dict(base, tls={"mode": "manual"})) == \
        ["tls.secret_name: is required when tls.mode is manual"]
    # a switched-off section's keys are not judged, and read as off
    a = _load(tmp_path, dict(base, smtp={"enabled": False, "host": "??", "port": "x"}))
    assert a.get("smtp") is None and a.get("smtp.host") is None and a.smtp == A.Smtp()


# ---------------------------------------------------------------- Answers.get means what the attributes meant

# The planner's reading of the answers before `get` existed (wizard.plan._ANSWER_ATTRS, verbatim).
OLD_ATTRS = {
    "server_name": lambda a: a.server_name,
    "tls.acme_email": lambda a: a.acme_email,
    "tls.mode": lambda a: a.tls_mode,
    "tls.secret_name": lambda a: a.tls_secret_name or None,
    "li.allowed_cidrs": lambda a: list(a.allowed_cidrs),
    "li.admin_user": lambda a: a.admin_user,
    "li.admin_password": lambda a: a.admin_password,
    "li.auth_realm": lambda a: a.auth_realm or None,
    "storage.class": lambda a: a.storage_class,
    "turn.external_ip": lambda a: a.external_ip or None,
    "minio.s3_access_key": lambda a: a.s3_access_key,
    "key_vault.rsa_bits": lambda a: a.rsa_bits,
    "smtp": lambda a: a.smtp if a.smtp.enabled else None,
    "smtp.enabled": lambda a: a.smtp.enabled,
    "smtp.password": lambda a: a.smtp.password if a.smtp.enabled else None,
    "push.enabled": lambda a: a.push.enabled,
    "push.apns.key_file": lambda a: a.push.values.get("push.apns.key"),
    "push.apns.key_id": lambda a: a.push.values.get("push.apns.key_id"),
    "push.apns.team_id": lambda a: a.push.values.get("push.apns.team_id"),
    "push.apns.topic": lambda a: a.push.values.get("push.apns.topic"),
    "push.fcm.service_account_file": lambda a: a.push.values.get("push.fcm.service_account"),
    **{f"domains.{k}": (lambda k: lambda a: a.domains[k])(k)
       for k in ("matrix", "element", "turn", "li_matrix", "li_element", "li_admin", "livekit")},
}
P8 = "-----BEGIN PRIVATE KEY-----\nMIGTAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBHkwdwIBAQQg\n-----END PRIVATE KEY-----\n"
EVERYTHING = dict(copy.deepcopy(FULL_ANSWERS), turn={"external_ip": "198.51.100.7"}, key_vault={"rsa_bits": 3072},
                  tls={"mode": "manual", "acme_email": "pki@acme-corp.net", "secret_name": "acme-tls"},
                  li=dict(FULL_ANSWERS["li"], admin_password="env:LI_PW"),
                  smtp={"enabled": True, "host": "smtp.acme-corp.net", "port": 2525, "user": "synapse",
                        "password": "file:smtp.pw", "from": "Matrix <matrix@acme-corp.net>",
                        "require_transport_security": False},
                  push={"enabled": True, "apns": {"key_file": "AuthKey.p8", "key_id": "ABC123DEFG",
                                                  "team_id": 1234567890, "topic": "net.acme.chat"},
                        "fcm": {"service_account_file": "fcm.json"}},
                  well_known_dir="www", checklist={"firewall.ports": True},
                  placeholders={"CHANGEME_KUBE_DNS_IP": "10.96.0.10", "CHANGEME_PICKLE": {"generate": "password"}},
                  locations={"a.yaml › Secret/s": "b.yaml › Secret/s-east"})


def _everything(tmp_path: Path):
    (tmp_path / "AuthKey.p8").write_text(P8)
    (tmp_path / "fcm.json").write_text('{"type": "service_account"}\n')
    (tmp_path / "smtp.pw").write_text("smtp-secret\n")
    return _load(tmp_path, EVERYTHING, env={"LI_PW": "li-secret"})


@pytest.mark.parametrize("which", ["everything", "full", "minimal"])
def test_get_means_what_the_planner_read(tmp_path, which):
    if which == "everything":
        a = _everything(tmp_path)
    else:
        a = _load(tmp_path, FULL_ANSWERS if which == "full" else {"version": 1, "server_name": "acme-corp.net"})
    for key, old in OLD_ATTRS.items():
        want, got = old(a), a.get(key)
        if key == "smtp" and want is not None:  # a section: its values by name, readable as attributes too
            for name in ("enabled", "host", "port", "password", "require_transport_security", "from_"):
                assert getattr(got, name) == getattr(want, name), name
            assert (got.user or "") == want.user and got["from"] == want.from_
            continue
        assert got == want, key
    if which == "everything":
        assert a.get("push.apns.key_file") == P8.rstrip("\n")  # the .p8 file's content, as push.apns.key takes
        assert a.get("push.apns.team_id") == "1234567890"
        assert a.get("li.admin_password") == "li-secret" and a.admin_password_ref == "env:LI_PW"
        assert a.get("smtp.password") == "smtp-secret" and a.smtp.password_ref == "file:smtp.pw"
        assert a.provided_secrets() == {"li.admin_password": "li-secret", "smtp.password": "smtp-secret",
                                        **a.push.values}


def test_get_of_sections_mappings_paths_and_unknown_keys(tmp_path):
    a = _everything(tmp_path)
    assert a.get("tls") == {"mode": "manual", "acme_email": "pki@acme-corp.net", "secret_name": "acme-tls"}
    assert a.get("domains") == a.domains
    assert a.get("push")["apns"]["key_id"] == "ABC123DEFG" and a.get("push.fcm")["service_account_file"].startswith("{")
    assert a.get("checklist.firewall.ports") is True and a.get("checklist.nothing") is None
    assert a.get("placeholders.CHANGEME_PICKLE") == A.Placeholder(None, "password", True)
    assert a.get("locations.a.yaml › Secret/s") == "b.yaml › Secret/s-east"
    assert a.get("deployment") == tmp_path / "deployment"
    assert a.get("secrets_file") == tmp_path / "prod.secrets.yaml" == a.secrets_file
    assert a.get("well_known_dir") == tmp_path / "www" == a.well_known_dir
    assert a.get("version") == 1
    off = _load(tmp_path, FULL_ANSWERS)
    assert off.get("push") is None and off.get("push.apns") is None and off.get("push.apns.topic") is None
    assert off.get("tls.acme_email") == "pki@acme-corp.net"
    assert _load(tmp_path, {"version": 1, "server_name": "matrix.acme-corp.net"}).get("tls.acme_email") == \
        "admin@acme-corp.net"
    with pytest.raises(KeyError):
        a.get("tls.nope")
    moved = A.load_answers(tmp_path / "prod.yaml", deployment_override=Path("elsewhere/tree"))
    assert moved.deployment == moved.get("deployment") == Path("elsewhere/tree")  # --deployment wins


def test_every_key_the_catalog_reads_is_in_the_schema():
    from wizard.catalog import COMPONENTS, RECORDS

    keys = {r.answers_key for r in RECORDS if r.answers_key} | {key for r in RECORDS for _, key in r.form_params}
    keys |= {c.switch for c in COMPONENTS if c.switch}
    keys |= {s for r in RECORDS for s in r.derived_from if s in S.KEYS or s.split(".")[0] in S.KEYS}
    assert keys - set(S.KEYS) == set()


def test_the_schema_is_consistent():
    from wizard.checklist import SECTIONS

    order = {k.key: i for i, k in enumerate(S.SCHEMA)}
    sections = {s.id for s in SECTIONS}
    for k in S.SCHEMA:
        named = []
        for when in (k.when, k.ask.when if k.ask else None):
            if when is not None:
                named += [when.key] + ([when.differs_from] if when.differs_from else [])
        for d in (k.default, k.example, k.ask.suggest if k.ask else None):
            if isinstance(d, S.Derived):
                named += list(d.sources)
        assert all(order[n] < order[k.key] for n in named), k.key  # resolved before the key that needs them
        assert k.parent is None or S.KEYS[k.parent].type == S.SECTION, k.key
        assert k.section is None or k.section in sections, k.key
        assert k.type == S.SECTION or k.type in A.PARSERS, k.key
        assert k.comment, f"{k.key} has no comment for the answers file"
        if k.ask is not None and k.ask.kind == S.ASK_SELECT and k.ask.flow is None:
            assert len(k.ask.labels) == len(k.choices), k.key
        if k.secret:
            assert k.type == S.REFERENCE and (k.example is None or str(k.example).startswith(("env:", "file:")))
    # a key of a checklist section has a question; a question outside the sections is a flow's (leftovers)
    for k in S.leaves():
        if k.section is not None:
            assert k.ask is not None, k.key
        elif k.ask is not None:
            assert k.ask.flow == S.UNSETTLED, k.key


# The modules the schema replaced: no dotted answers key as a literal (they are generic over the schema).
GENERIC = ("wizard/answers.py", "wizard/answers_file.py", "wizard/ui/guided.py", "wizard/ui/prompts.py")


@pytest.mark.parametrize("module", GENERIC)
def test_no_answers_key_literal_outside_the_catalog(module):
    text = (ROOT / module).read_text()
    dotted = [k.key for k in S.SCHEMA if "." in k.key]
    found = [key for key in dotted if re.search(r"[\"']" + re.escape(key) + r"[\"']", text)]
    assert found == [], f"{module} names answers keys: {found}"


# ---------------------------------------------------------------- the writer and answers.example.yaml

def test_the_committed_example_is_what_the_schema_generates():
    committed = (ROOT / "answers.example.yaml").read_text()
    assert committed == example_text(), \
        "answers.example.yaml is stale: python -m wizard.answers_file > answers.example.yaml"


def test_the_example_is_valid_and_documents_every_key(tmp_path):
    text = example_text()
    a = A.load_answers(write_example(tmp_path))
    assert (tmp_path / "answers.example.yaml").read_text() == text
    assert a.server_name == S.EXAMPLE_SERVER and a.allowed_cidrs  # configures the bundled templates, LI closed
    lines = [ln.replace("# ", "", 1) if ln.lstrip().startswith("#") else ln for ln in text.splitlines()]
    for k in S.SCHEMA:  # each key on its own line at its depth (set, or commented out), with its comment
        indent = "  " * k.key.count(".")
        assert any(ln.startswith(f"{indent}{k.name}:") and " # " in ln for ln in lines), k.key
    assert write_example(tmp_path, "wizard-answers.example.yaml").read_text().startswith(
        "# Answers for `wizard --answers wizard-answers.example.yaml`")
    (tmp_path / "answers.example.yaml").write_text("# mine\n")
    assert write_example(tmp_path) is None and (tmp_path / "answers.example.yaml").read_text() == "# mine\n"


@e2e
def test_init_writes_the_example_beside_the_new_tree_and_keeps_the_operators(tmp_path):
    proc = run_wizard("init", str(tmp_path / "deployment"), check=True)
    example = tmp_path / "answers.example.yaml"
    assert example.read_text() == example_text()
    assert "answers.example.yaml beside it" in proc.stdout
    # filled in as it stands, it configures the tree init made
    done = run_wizard("--answers", str(example), "--deployment", str(tmp_path / "deployment"), "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    example.write_text("# mine\n")
    proc = run_wizard("init", str(tmp_path / "second"), check=True)
    assert example.read_text() == "# mine\n" and "beside it" not in proc.stdout
    before = snapshot(tmp_path)
    dry = run_wizard("init", str(tmp_path / "elsewhere" / "third"), "--dry-run", check=True)
    assert "nothing was written" in dry.stdout and snapshot(tmp_path) == before


def test_writer_refuses_every_secret_in_clear():
    with pytest.raises(AnswersError) as exc:
        render_answers({"version": 1, "server_name": "acme-corp.net", "li": {"admin_password": "hunter2"},
                        "smtp": {"enabled": True, "password": "clear"}})
    assert [ln.split(":")[0] for ln in exc.value.lines()] == ["li.admin_password", "smtp.password"]


def test_writer_keeps_placeholders_and_locations(tmp_path):
    data = {"version": 1, "server_name": "acme-corp.net",
            "placeholders": {"CHANGEME_KUBE_DNS_IP": "10.96.0.10", "CHANGEME_PICKLE": {"generate": "password"},
                             "CHANGEME@li-instance/05-key-vault/deployment.yaml": "env:KV", "CHANGE_TO_PORT": 5432},
            "locations": {'a/x.yaml › Secret/coturn-secrets': 'b/y.yaml › Secret/coturn-secrets-west',
                          "values/livekit-values.yaml": "helm/livekit.yaml"}}
    text = render_answers(data)
    assert yaml.safe_load(text) == data
    path = tmp_path / "a.yaml"
    path.write_text(text)
    a = A.load_answers(path, env={"KV": "kv-secret"})
    assert a.placeholders["CHANGEME@li-instance/05-key-vault/deployment.yaml"] == A.Placeholder("kv-secret", None, True)
    assert a.placeholders["CHANGE_TO_PORT"] == A.Placeholder("5432", None, False)
    assert a.locations == data["locations"]


# ---------------------------------------------------------------- guided setup on the operator's own tree

TOKEN = "CHANGEME_EXTRA_API_TOKEN"
COTURN = "main-instance/06-coturn/deployment.yaml"
AMBIGUOUS = f"{COTURN} › Secret/coturn-secrets"


def own_tree(dest: Path) -> Path:
    """The bundled tree with one token the catalog does not know (a component of the operator's own) and
    the coturn Secret replaced by two copies, east and west: the catalog cannot tell which is its own."""
    shutil.copytree(TEMPLATES, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "__init__.py"))
    coturn = dest / COTURN
    text = coturn.read_text()
    start = text.rindex("apiVersion", 0, text.index("kind: Secret\nmetadata:\n  name: coturn-secrets\n"))
    end = text.index("\n---\n", start) + 1
    doc = text[start:end]
    copies = [doc.replace("name: coturn-secrets\n", f"name: coturn-secrets-{side}\n") for side in ("east", "west")]
    coturn.write_text(text[:start] + "---\n".join(copies) + text[end:])
    extra = dest / "main-instance/09-extra-api/secret.yaml"
    extra.parent.mkdir()
    extra.write_text("apiVersion: v1\nkind: Secret\nmetadata:\n  name: extra-api\n  namespace: matrix\n"
                     f"stringData:\n  API_TOKEN: {TOKEN}\n")
    return dest


class Ctx:
    """What guided setup reads of the command line: options, and where to print."""

    json = False
    colour = False

    def __init__(self, **opts):
        self.opts = opts
        self.out = io.StringIO()

    def opt(self, name, default=None):
        return self.opts.get(name, default)


class Scripted:
    """A person at a terminal: the reply of the first entry whose text is in the question, else Enter
    (the offered answer); a typed reply is parsed as the terminal would parse it."""

    interactive = True

    def __init__(self, replies: dict):
        self.replies = replies
        self.asked: list = []

    def ask(self, q, default=None):
        from wizard.ui.prompts import CONFIRM, SELECT, parse_text

        self.asked.append(q)
        reply = next((r for text, r in self.replies.items() if text in q.message), None)
        if q.kind == CONFIRM:
            return bool(default) if reply is None else reply
        if q.kind == SELECT:
            values = [c[0] for c in q.choices]
            choice = reply(values) if callable(reply) else reply if reply is not None else default
            assert choice in values, (q.message, choice, values)
            return choice
        return parse_text(q, q.show(default) if reply is None else reply)


def _guided(monkeypatch, tmp_path, asker, **opts) -> tuple[int, str]:
    from wizard.ui.guided import Guided, Screen

    monkeypatch.chdir(tmp_path)
    ctx = Ctx(deployment="deployment", **opts)
    code = Guided(ctx, Screen(ctx), asker).run()
    return code, ctx.out.getvalue()


@pytest.mark.e2e
def test_guided_asks_for_an_unknown_token_and_an_ambiguous_location(tmp_path, monkeypatch):
    own_tree(tmp_path / "deployment")
    asker = Scripted({"Server name": "acme-corp.net", "Check now": False, "Networks allowed": "203.0.113.0/24",
                      f"Value of {TOKEN}": "generate", "Which one is": lambda values: values[-1]})
    code, out = _guided(monkeypatch, tmp_path, asker)
    token_q = [q for q in asker.asked if TOKEN in q.message]
    place_q = [q for q in asker.asked if AMBIGUOUS in q.message]
    assert len(token_q) == 1 and "main-instance/09-extra-api/secret.yaml:7" in token_q[0].message
    assert len(place_q) == 1
    assert [c[0] for c in place_q[0].choices] == [f"{COTURN} › Secret/coturn-secrets-east",
                                                  f"{COTURN} › Secret/coturn-secrets-west"]
    saved = yaml.safe_load((tmp_path / "wizard-answers.yaml").read_text())
    assert saved["placeholders"] == {TOKEN: {"generate": "password"}}
    assert saved["locations"] == {AMBIGUOUS: f"{COTURN} › Secret/coturn-secrets-west"}
    # the answers took effect: the token holds a generated value kept in the secrets file, no question is left
    stored = yaml.safe_load((tmp_path / "wizard-answers.secrets.yaml").read_text())["secrets"]
    value = stored[f"placeholder.{TOKEN}"]
    assert f"API_TOKEN: {value}" in (tmp_path / "deployment/main-instance/09-extra-api/secret.yaml").read_text()
    assert TOKEN not in out.split("Summary")[1] and "could be any of" not in out.split("Summary")[1]
    assert code in (0, 1), out[-3000:]
    # a second run pre-filled from the saved answers asks neither again and changes nothing
    again = Scripted({"Check now": False})
    code, out = _guided(monkeypatch, tmp_path, again)
    assert not [q for q in again.asked if TOKEN in q.message or "Which one is" in q.message]
    assert "the tree already matches these answers" in out and "answers unchanged" in out


@pytest.mark.e2e
def test_guided_without_a_terminal_reports_what_is_left(tmp_path, monkeypatch):
    from wizard.ui.prompts import ConfiguredAsker

    own_tree(tmp_path / "deployment")
    write_answers(tmp_path / "wizard-answers.yaml", {"version": 1, "server_name": "acme-corp.net"})
    code, out = _guided(monkeypatch, tmp_path, ConfiguredAsker(), yes=True)
    assert code == 1, out[-3000:]
    left = out[out.index("left over ("):]
    assert f"unknown placeholder {TOKEN}" in left and "could be any of" in left
    saved = yaml.safe_load((tmp_path / "wizard-answers.yaml").read_text())
    assert "placeholders" not in saved and "locations" not in saved
