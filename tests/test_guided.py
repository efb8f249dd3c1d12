"""Issue 3: the guided setup, driven as a person would drive it: the real CLI in a pseudo-terminal
(pexpect), real questionary prompts, keys typed one answer at a time. Issue 13: on the operator's own
tree it asks for each unknown token and each ambiguous location (tests/test_answers_schema.py drives the
same flow in-process)."""
from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest
import yaml

from helpers import FULL_ANSWERS, digest, run_wizard, snapshot, terminal_env, write_answers

pexpect = pytest.importorskip("pexpect")
pytestmark = pytest.mark.e2e  # every test here runs the CLI: in a terminal, or as a subprocess

PROMPT_TIMEOUT = 60


class Terminal:
    """`python -m wizard ARGS` in a pseudo-terminal; `answer(prompt, keys)` waits for the prompt and types."""

    def __init__(self, cwd: Path, *args: str, env: dict | None = None):
        self.child = pexpect.spawn(sys.executable, ["-m", "wizard", *args], cwd=str(cwd), env=terminal_env(env),
                                   encoding="utf-8", codec_errors="replace", dimensions=(50, 160),
                                   timeout=PROMPT_TIMEOUT)
        self.transcript: list[str] = []

    def expect(self, pattern: str) -> str:
        self.child.expect(pattern)
        seen = self.child.before + self.child.after
        self.transcript.append(seen)
        return seen

    def answer(self, prompt: str, keys: str = "") -> None:
        self.expect(prompt)
        self.child.send(typed(keys))

    def ctrl_c(self, prompt: str) -> None:
        self.expect(prompt)
        self.child.sendcontrol("c")

    def drive(self, replies: dict[str, str] | None = None, *, stop_at: str | None = None) -> list[str]:
        """Answer every prompt until the program ends: the keys of the first `replies` entry whose text
        is in the question, else just Enter. With `stop_at`, return (unanswered) at that question.
        A prompt starts with prompt_toolkit's bracketed-paste switch; its first render ends by turning
        line wrapping back on: the question is read from that render."""
        questions = []
        while True:
            if self.child.expect([r"\x1b\[\?2004h", pexpect.EOF]) == 1:
                break
            self.transcript.append(self.child.before)
            self.child.expect(r"\x1b\[\?7h")  # the end of the prompt's first render
            self.transcript.append(self.child.before)
            question = plain(self.child.before).strip()
            questions.append(question)
            if stop_at is not None and stop_at in question:
                return questions
            keys = next((v for k, v in (replies or {}).items() if k in question), "")
            self.child.send(typed(keys))
        self.transcript.append(self.child.before)
        self.child.expect(pexpect.EOF) if self.child.isalive() else None
        return questions

    def finish(self) -> tuple[int, str]:
        self.child.expect(pexpect.EOF)
        self.transcript.append(self.child.before)
        self.child.close()
        return self.child.exitstatus, plain("".join(self.transcript))


def typed(keys: str) -> str:
    """What a person types: y or n alone answers a yes/no question; anything else ends with Enter."""
    return keys if keys in ("y", "n") else keys + "\r"


def plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r", "", text)


# The prompts of a first run in order, each with the keys a person types ("" = just Enter).
def first_run_script(server_name: str, *, cidrs: str = "open", confirm_firewall: bool = False):
    return [
        ("Create it from the bundled templates", ""),
        ("Check now that kubectl is installed, helm is installed and kubectl reaches the cluster", ""),
        ("Done: cert-manager", ""),
        ("S3 access key id", ""),
        ("RSA key size", ""),
        ("Server name:", server_name),
        ("Use these host names", ""),
        ("Write the .well-known delegation files", ""),
        ("Folder for them", ""),
        ("Check now that every host resolves in DNS", ""),
        ("Networks allowed to reach the LI instance", cidrs),
        ("LI admin UI user name", ""),
        ("LI admin UI password reference", ""),
        ("Text of the browser's login box", ""),
        ("Done: the LI instance was reviewed", ""),
        ("Done: the signing key is backed up", ""),
        ("Certificates:", ""),
        ("ACME account e-mail", ""),
        ("TURN public IP address", ""),
        ("Send e-mail", ""),
        ("Configure push notifications", ""),
        ("StorageClass for every volume", ""),
        ("Done: a backup was restored", ""),
        ("Done: firewall allows", "y" if confirm_firewall else ""),
        ("Show the full diff", ""),
        ("Write these changes", ""),
    ]


def run_script(term: Terminal, script) -> tuple[int, str]:
    for prompt, keys in script:
        term.answer(re.escape(prompt), keys)
    return term.finish()


def secret_fragments(secrets_file: Path) -> list[str]:
    data = yaml.safe_load(secrets_file.read_text())["secrets"]
    out = []
    for value in data.values():
        out.append(value)
        out.extend(line.strip() for line in value.splitlines() if len(line.strip()) >= 12
                   and not line.strip().startswith("-----"))
    return out


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """Typing only a server name, then Enter at every prompt, on a folder with no deployment."""
    work = tmp_path_factory.mktemp("guided")
    term = Terminal(work, "--deployment", "T/deployment")
    code, out = run_script(term, first_run_script("example.org"))
    return {"work": work, "tree": work / "T" / "deployment", "code": code, "out": out,
            "answers": work / "T" / "wizard-answers.yaml", "secrets": work / "T" / "wizard-answers.secrets.yaml"}


def test_defaults_path_configures_the_tree(first_run):
    assert first_run["code"] == 0, first_run["out"][-3000:]
    assert "Traceback" not in first_run["out"]
    proc = run_wizard("check", "--deployment", str(first_run["tree"]))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"^0 errors,", proc.stdout, re.M), proc.stdout
    errors = [ln for ln in proc.stdout.splitlines() if ": error " in ln]
    assert errors == []


def test_defaults_path_answers_file_holds_no_secret(first_run):
    text = first_run["answers"].read_text()
    data = yaml.safe_load(text)
    assert data["server_name"] == "example.org"
    assert data["domains"]["matrix"] == "matrix.example.org"
    assert data["li"]["allowed_cidrs"] == []
    assert "#" in text  # commented
    leaks = [f for f in secret_fragments(first_run["secrets"]) if f in text]
    assert leaks == []
    assert os.stat(first_run["secrets"]).st_mode & 0o077 == 0


def test_defaults_path_summary_shows_the_open_allowlist(first_run):
    out = first_run["out"]
    assert "allowlist OPEN" in out  # the summary before writing
    assert re.search(r"LI ingresses restricted to an IP\s.*open", out, re.S)
    assert "the LI allowlist is open" in out
    assert "wizard secrets show li.admin_password --answers T/wizard-answers.yaml" in out
    proc = run_wizard("checklist", "--deployment", str(first_run["tree"]), "--json", "--no-checks")
    items = {i["id"]: i for i in json.loads(proc.stdout)["items"]}
    assert items["li.allowlist"]["state"] == "open"
    assert items["secrets.generated"]["state"] == "done"
    assert items["final.check"]["state"] == "done"
    assert items["firewall.ports"]["state"] == "open"


def test_defaults_path_writes_well_known_outside_the_tree(first_run):
    base = first_run["work"] / "T" / "well-known" / ".well-known" / "matrix"
    assert json.loads((base / "server").read_text()) == {"m.server": "matrix.example.org:443"}
    assert json.loads((base / "client").read_text()) == {"m.homeserver": {"base_url": "https://matrix.example.org"}}
    assert yaml.safe_load(first_run["answers"].read_text())["well_known_dir"] == "well-known"


def test_rerun_with_the_saved_answers_changes_no_byte(first_run):
    before = digest(first_run["tree"])
    proc = run_wizard("--answers", str(first_run["answers"]))
    assert proc.returncode == 0, proc.stderr
    assert "nothing to change" in proc.stdout
    assert digest(first_run["tree"]) == before


def test_second_guided_run_prefilled_changes_nothing(first_run):
    """Run the guided setup again: every question pre-filled from the saved answers, Enter everywhere."""
    tree_before = digest(first_run["tree"])
    answers_before = first_run["answers"].read_bytes()
    secrets_before = first_run["secrets"].read_bytes()
    term = Terminal(first_run["work"], "--deployment", "T/deployment")
    questions = term.drive()
    code, out = term.finish()
    assert code == 0, out[-3000:]
    assert any("Server name: example.org" in q for q in questions)
    assert not any("Create it" in q or "Write these changes" in q for q in questions)
    assert "the tree already matches these answers" in out and "answers unchanged" in out
    assert digest(first_run["tree"]) == tree_before
    assert first_run["answers"].read_bytes() == answers_before
    assert first_run["secrets"].read_bytes() == secrets_before


def test_secret_shown_only_by_the_explicit_command(first_run):
    proc = run_wizard("secrets", "show", "li.admin_password", "--deployment", str(first_run["tree"]))
    assert proc.returncode == 0, proc.stderr
    password = proc.stdout.strip()
    assert len(password) >= 16
    assert password not in first_run["out"]


def test_wrong_answers_are_re_asked_with_the_reason(tmp_path):
    term = Terminal(tmp_path, "--deployment", "deployment")
    script = first_run_script("ignored")
    before_server = script[:script.index(("Server name:", "ignored"))]
    for prompt, keys in before_server:
        term.answer(re.escape(prompt), keys)
    term.answer("Server name:", "chat_server")
    term.expect(r"'chat_server' is not a valid domain name")
    term.answer("Server name:", "")  # empty: required
    term.expect("an answer is required")
    term.answer("Server name:", "Chat.Example.ORG")  # accepted, written in lower case
    for prompt, keys in script[script.index(("Server name:", "ignored")) + 1:]:
        if prompt.startswith("Networks allowed"):
            term.answer(re.escape(prompt), "10.1.2.3/8")
            term.expect(r"'10.1.2.3/8' is not a valid address block: 10.1.2.3/8 has host bits set")
            term.answer(re.escape(prompt), "203.0.113.0/24, 2001:db8::/32")
            continue
        if prompt.startswith("ACME account"):
            term.expect(re.escape(prompt))
            term.child.send("\x15not-an-email\r")  # Ctrl-U clears the pre-filled default
            term.expect(r"'not-an-email' is not a valid e-mail address")
            term.expect(re.escape(prompt))
            term.child.send("\x15pki@example.org\r")
            continue
        term.answer(re.escape(prompt), keys)
    code, out = term.finish()
    assert code == 0, out[-3000:]
    data = yaml.safe_load((tmp_path / "wizard-answers.yaml").read_text())
    assert data["server_name"] == "chat.example.org"
    assert data["li"]["allowed_cidrs"] == ["203.0.113.0/24", "2001:db8::/32"]
    assert data["tls"]["acme_email"] == "pki@example.org"
    assert "allowlist 203.0.113.0/24, 2001:db8::/32" in out
    proc = run_wizard("checklist", "--deployment", str(tmp_path / "deployment"), "--json", "--no-checks")
    items = {i["id"]: i for i in json.loads(proc.stdout)["items"]}
    assert items["li.allowlist"]["state"] == "done"


@pytest.mark.parametrize("where", ["Server name:", "Use these host names", "Networks allowed", "Write these changes"])
def test_ctrl_c_on_a_fresh_folder_writes_nothing(tmp_path, where):
    term = Terminal(tmp_path, "--deployment", "deployment")
    for prompt, keys in first_run_script("example.org"):
        if prompt.startswith(where):
            term.ctrl_c(re.escape(prompt))
            break
        term.answer(re.escape(prompt), keys)
    code, out = term.finish()
    assert code == 130
    assert "interrupted: nothing was written" in out
    assert "Traceback" not in out
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_before_writing_a_configured_tree_leaves_every_byte(tmp_path):
    """A configured tree, its answers and secrets file: change one answer, Ctrl-C at the last prompt."""
    site = tmp_path / "site"
    site.mkdir()
    answers = write_answers(site / "wizard-answers.yaml", dict(FULL_ANSWERS))
    run_wizard("--answers", str(answers), check=True)
    before = snapshot(site)
    term = Terminal(site, "--deployment", "deployment")
    questions = term.drive({"StorageClass": "\x15other-class"}, stop_at="Write these changes")
    assert "Write these changes" in questions[-1]
    term.child.sendcontrol("c")
    code, out = term.finish()
    assert code == 130, out[-2000:]
    assert "StorageClass other-class" in out  # the summary showed the change that was not written
    assert "interrupted: nothing was written" in out and "Traceback" not in out
    assert snapshot(site) == before


def test_prefilled_from_file_enter_everywhere(tmp_path):
    """--from FILE pre-fills every question: Enter at each prompt reproduces that file's answers."""
    src = write_answers(tmp_path / "prod.yaml", dict(FULL_ANSWERS, deployment="elsewhere"))
    term = Terminal(tmp_path, "--deployment", "site/deployment", "--from", str(src))
    questions = term.drive()
    code, out = term.finish()
    assert code == 0, out[-3000:]
    assert len(questions) >= 20
    assert any("Server name: chat.acme-corp.net" in q for q in questions)  # pre-filled, not typed
    saved = yaml.safe_load((tmp_path / "site" / "wizard-answers.yaml").read_text())
    for key in ("server_name", "domains", "tls", "storage", "minio"):
        assert saved[key] == FULL_ANSWERS[key], key
    assert saved["li"]["allowed_cidrs"] == FULL_ANSWERS["li"]["allowed_cidrs"]
    assert saved["li"]["admin_user"] == "lawful"
    assert saved["deployment"] == "deployment"
    proc = run_wizard("check", "--deployment", str(tmp_path / "site" / "deployment"))
    assert proc.returncode == 0, proc.stdout


def test_smtp_check_and_test_mail_against_a_real_server(tmp_path, smtp_server):
    """SMTP settings asked, the server checked over loopback (EHLO, login) and a test mail received;
    the password stays a reference in the answers file."""
    prefill = dict(FULL_ANSWERS, smtp={"enabled": True, "host": "127.0.0.1", "port": smtp_server.port,
                                      "user": "synapse", "password": "env:WIZ_SMTP_PW",
                                      "from": "matrix@acme-corp.net", "require_transport_security": False})
    src = write_answers(tmp_path / "prefill.yaml", prefill)
    term = Terminal(tmp_path, "--deployment", "site/deployment", "--from", str(src),
                    env={"WIZ_SMTP_PW": "s3cret-Smtp-pw"})
    questions = term.drive({"Also send a test mail": "y", "Send it to": "\x15ops@acme-corp.net"})
    code, out = term.finish()
    assert code == 0, out[-3000:]
    assert any("SMTP server host: 127.0.0.1" in q for q in questions)
    assert f"the SMTP server answers: 127.0.0.1:{smtp_server.port} answers EHLO" in out
    assert len(smtp_server.messages) == 1
    mail = smtp_server.messages[0]
    assert mail.rcpt_tos == ["ops@acme-corp.net"]
    assert mail.mail_from == "matrix@acme-corp.net"
    assert mail.auth_login == "synapse"
    assert ("synapse", "s3cret-Smtp-pw") in [(a[1], a[2]) for a in smtp_server.auth_attempts]
    text = (tmp_path / "site" / "wizard-answers.yaml").read_text()
    assert "env:WIZ_SMTP_PW" in text and "s3cret-Smtp-pw" not in text
    assert "s3cret-Smtp-pw" not in out
    assert re.search(r"the SMTP server answers\s.*done", out, re.S)


def test_no_terminal_and_no_server_name_names_the_setting(tmp_path):
    proc = run_wizard("--deployment", str(tmp_path / "deployment"), input="")
    assert proc.returncode == 2
    assert "server_name" in proc.stderr and "no terminal" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_no_terminal_with_prefill_needs_yes_then_applies(tmp_path):
    write_answers(tmp_path / "wizard-answers.yaml", {"version": 1, "server_name": "matrix.example.net"})
    proc = run_wizard("--deployment", str(tmp_path / "deployment"), input="")
    assert proc.returncode == 2 and "--yes" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wizard-answers.yaml"]
    proc = run_wizard("--deployment", str(tmp_path / "deployment"), "--yes", input="")
    assert proc.returncode == 0, proc.stderr
    saved = yaml.safe_load((tmp_path / "wizard-answers.yaml").read_text())
    assert saved["domains"]["matrix"] == "matrix.example.net"  # server name is the matrix host
    assert "well_known_dir" not in saved
    assert run_wizard("check", "--deployment", str(tmp_path / "deployment")).returncode == 0


def test_own_tree_asks_for_an_unknown_token_and_an_ambiguous_location(tmp_path):
    """Issue 13 in a terminal: the tree has a token no catalog row knows and two copies of the coturn
    Secret. Guided setup asks for the token's value (here a reference, so the value stays a secret) and
    which copy is the catalog's, keeps both in the answers file, and configures the rest."""
    from test_answers_schema import AMBIGUOUS, COTURN, TOKEN, own_tree

    own_tree(tmp_path / "deployment")
    secret = "Extra-token-value-1234"
    term = Terminal(tmp_path, "--deployment", "deployment", env={"EXTRA_TOKEN": secret})
    questions = term.drive({"Server name": "acme-corp.net", "Check": "n", "Networks allowed": "203.0.113.0/24",
                            f"Value of {TOKEN}": "env:EXTRA_TOKEN", "Which one is": "\x1b[B"})
    code, out = term.finish()
    assert code == 0, out[-3000:]
    assert sum(TOKEN in q for q in questions) == 1 and sum("Which one is" in q for q in questions) == 1
    saved = yaml.safe_load((tmp_path / "wizard-answers.yaml").read_text())
    assert saved["placeholders"] == {TOKEN: "env:EXTRA_TOKEN"}
    assert saved["locations"] == {AMBIGUOUS: f"{COTURN} › Secret/coturn-secrets-west"}
    assert f"API_TOKEN: {secret}" in (tmp_path / "deployment/main-instance/09-extra-api/secret.yaml").read_text()
    assert secret not in out and secret not in (tmp_path / "wizard-answers.yaml").read_text()
