"""The checklist: its checks against real things (an SMTP server on loopback, real processes on PATH,
the resolver), each item's state on real trees, and `wizard checklist` on the command line."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import free_port
from helpers import FULL_ANSWERS, run_wizard, write_answers
from wizard import checklist as CL
from wizard.answers import Smtp, answers_from_dict, load_answers
from wizard.errors import AnswersError
from wizard.store import load_store
from wizard.ui.prompts import CONFIRM, SELECT, ConfiguredAsker, Question


# ---------------------------------------------------------------- SMTP, against a real server

def _smtp(server, **kw) -> Smtp:
    base = dict(enabled=True, host=server.host, port=server.port, from_="matrix@acme-corp.net",
                require_transport_security=False)
    base.update(kw)
    return Smtp(**base)


def test_smtp_ehlo_answered(smtp_server):
    r = CL.check_smtp(_smtp(smtp_server))
    assert r.ok, r.detail
    assert f"{smtp_server.host}:{smtp_server.port} answers EHLO" in r.detail
    assert smtp_server.messages == []


def test_smtp_login_and_test_mail(smtp_server):
    smtp_server.accounts = {"synapse": "pw-Right-1"}
    r = CL.check_smtp(_smtp(smtp_server, user="synapse", password="pw-Right-1"), send_to="ops@acme-corp.net")
    assert r.ok, r.detail
    assert "login as synapse ok" in r.detail and "test mail sent to ops@acme-corp.net" in r.detail
    [mail] = smtp_server.messages
    assert mail.rcpt_tos == ["ops@acme-corp.net"] and mail.auth_login == "synapse"
    assert "test mail" in mail.message["Subject"]


def test_smtp_wrong_password_is_an_open_item(smtp_server):
    smtp_server.accounts = {"synapse": "pw-Right-1"}
    r = CL.check_smtp(_smtp(smtp_server, user="synapse", password="wrong"), send_to="ops@acme-corp.net")
    assert not r.ok
    assert "535" in r.detail or "uthentication" in r.detail
    assert smtp_server.messages == []


def test_smtp_without_starttls_when_required_is_open(smtp_server):
    r = CL.check_smtp(_smtp(smtp_server, require_transport_security=True))
    assert not r.ok
    assert "offers no STARTTLS" in r.detail and "require_transport_security" in r.detail


@pytest.mark.parametrize("mode", ["implicit", "starttls"])
def test_smtp_impostor_with_a_self_signed_certificate_never_sees_the_password(smtp_tls_server, mode):
    server = smtp_tls_server(mode)
    smtp = _smtp(server, user="synapse", password="pw-Right-1", require_transport_security=True)
    r = CL.check_smtp(smtp, implicit_tls=(mode == "implicit"), send_to="ops@acme-corp.net", timeout=5)
    assert not r.ok
    assert "TLS refused" in r.detail and "certificate" in r.detail.lower(), r.detail
    assert server.auth_attempts == [] and server.messages == []


def test_smtp_nobody_listening_is_open_fast():
    port = free_port()
    start = time.monotonic()
    r = CL.check_smtp(Smtp(True, "127.0.0.1", port, from_="a@acme-corp.net"), timeout=3)
    assert not r.ok and f"no SMTP server at 127.0.0.1:{port}" in r.detail
    assert time.monotonic() - start < 30  # refused at once: never a retry loop (the bound is a hang's, not a speed target)


@pytest.mark.e2e
def test_smtp_server_that_never_greets_times_out():
    """A TCP listener that accepts and says nothing: the check gives up after its timeout."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        start = time.monotonic()
        r = CL.with_timeout(lambda: CL.check_smtp(Smtp(True, "127.0.0.1", port, from_="a@acme-corp.net"),
                                                  timeout=1), 3)
        assert not r.ok and ("no answer within" in r.detail or "timed out" in r.detail.lower()), r.detail
        assert time.monotonic() - start < 30  # the listener would hold it forever: abandoned, not waited for


# ---------------------------------------------------------------- tools and cluster, with real processes

def _fake_tool(folder: Path, name: str, script: str) -> None:
    p = folder / name
    p.write_text("#!/bin/sh\n" + textwrap.dedent(script))
    p.chmod(0o755)


@pytest.fixture
def fake_path(tmp_path, monkeypatch):
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", f"{folder}:/usr/bin:/bin")
    return folder


def test_tool_on_path(fake_path, monkeypatch):
    monkeypatch.setenv("PATH", str(fake_path))
    assert CL.check_tool("helm") == CL.CheckResult(False, "helm is not on PATH")
    _fake_tool(fake_path, "helm", "exit 0\n")
    r = CL.check_tool("helm")
    assert r.ok and r.detail == str(fake_path / "helm")
    assert not CL.check_tool("no-such-tool-here").ok


def test_cluster_reachable(fake_path):
    _fake_tool(fake_path, "kubectl", """\
        echo '{"clientVersion": {"gitVersion": "v1.30.1"}, "serverVersion": {"gitVersion": "v1.30.4"}}'
        """)
    r = CL.check_cluster(timeout=5)
    assert r.ok and "v1.30.4" in r.detail


def test_cluster_refused(fake_path):
    _fake_tool(fake_path, "kubectl", """\
        echo '{"clientVersion": {"gitVersion": "v1.30.1"}}'
        echo 'The connection to the server localhost:8080 was refused' >&2
        exit 1
        """)
    r = CL.check_cluster(timeout=5)
    assert not r.ok and "was refused" in r.detail


@pytest.mark.e2e
def test_cluster_that_hangs_is_abandoned_in_time(fake_path):
    # the fake starts a child of its own: the timeout must not wait for it either
    _fake_tool(fake_path, "kubectl", "sleep 30 &\nsleep 30\n")
    start = time.monotonic()
    r = CL.check_cluster(timeout=1)
    assert not r.ok and "no answer within 1s" in r.detail
    assert time.monotonic() - start < 25  # neither kubectl (30 s) nor its child was waited for


def test_no_kubectl(fake_path, monkeypatch):
    monkeypatch.setenv("PATH", str(fake_path))
    assert CL.check_cluster(timeout=1) == CL.CheckResult(False, "kubectl is not on PATH")


@pytest.mark.e2e
def test_with_timeout_never_waits_for_a_stuck_check():
    start = time.monotonic()
    r = CL.with_timeout(lambda: time.sleep(20) or CL.CheckResult(True, "late"), 0.5)
    assert r == CL.CheckResult(False, "no answer within 0.5s")
    assert time.monotonic() - start < 15  # the check sleeps 20 s: abandoned, not waited for


def test_a_check_that_raises_is_open():
    r = CL.with_timeout(lambda: 1 / 0, 2)
    assert not r.ok and "ZeroDivisionError" in r.detail


# ---------------------------------------------------------------- DNS and CIDRs

def test_dns_resolves_localhost_and_not_invalid():
    assert CL.check_dns(["localhost"], timeout=3).ok
    r = CL.check_dns(["localhost", "no-such-host.invalid"], timeout=3)  # .invalid never resolves (RFC 6761)
    assert not r.ok and r.detail == "1 of 2 do not resolve: no-such-host.invalid"


@pytest.mark.parametrize("cidrs, ok, words", [
    ([], False, "reachable from any address"),
    (["0.0.0.0/0"], False, "0.0.0.0/0 lets every address in"),
    (["203.0.113.0/24", "::/0"], False, "::/0 lets every address in"),
    (["203.0.113.0/24", "2001:db8::/32"], True, "203.0.113.0/24, 2001:db8::/32"),
])
def test_cidr_check(cidrs, ok, words):
    r = CL.check_cidrs(cidrs)
    assert r.ok is ok and words in r.detail


# ---------------------------------------------------------------- states on real trees

@pytest.fixture
def configured(tmp_path):
    data = dict(FULL_ANSWERS, checklist={"firewall.ports": True, "backup.tested": False})
    answers_path = write_answers(tmp_path / "prod.yaml", data)
    run_wizard("init", str(tmp_path / "deployment"), check=True)
    run_wizard("--answers", str(answers_path), check=True)
    answers = load_answers(answers_path)
    return answers, tmp_path / "deployment", load_store(answers.secrets_file)


def _states(statuses):
    return {s.item.id: (s.state, s.detail) for s in statuses}


@pytest.mark.e2e
def test_states_of_a_configured_tree(configured):
    answers, tree, store = configured
    states = _states(CL.checklist_status(answers, tree, store=store, run=False))
    for item in ("secrets.generated", "domains.set", "li.admin_auth", "signing_key.generated", "tls.certificates",
                 "livekit", "turn", "push", "storage.volumes", "final.check", "smtp"):
        assert states[item][0] == CL.DONE, (item, states[item])
    assert states["li.allowlist"] == (CL.DONE, "203.0.113.0/24, 198.51.100.0/25")  # pure: checked even offline
    assert states["firewall.ports"][0] == CL.CONFIRMED
    assert states["backup.tested"][0] == CL.OPEN  # false is not a confirmation
    assert states["li.legal_review"][0] == CL.OPEN
    assert states["tools.kubectl"] == (CL.OPEN, "not checked")
    assert states["domains.well_known"][0] == CL.OPEN  # chat.acme-corp.net ≠ hs.acme-corp.net, no files
    assert "tls.secret_created" not in states and "smtp.server" not in states  # not applicable


@pytest.mark.e2e
def test_broken_tree_opens_the_items_it_breaks(configured):
    answers, tree, store = configured
    redis = tree / "infrastructure/02-redis/redis-secret.yaml"
    value = store.values["redis.password"]
    redis.write_text(redis.read_text().replace(value, "CHANGEME_SECURE_REDIS_PASSWORD"))
    states = _states(CL.checklist_status(answers, tree, store=store, run=False))
    assert states["secrets.generated"][0] == CL.OPEN
    assert "infrastructure/02-redis/redis-secret.yaml" in states["secrets.generated"][1]
    assert states["final.check"][0] == CL.OPEN
    assert states["domains.set"][0] == CL.DONE


@pytest.mark.e2e
def test_open_allowlist_in_the_tree_is_open_even_if_answers_say_otherwise(configured, tmp_path):
    answers, tree, store = configured
    for rel in ("li-instance/01-synapse-li/deployment.yaml", "li-instance/02-element-web-li/deployment.yaml",
                "li-instance/03-synapse-admin-li/deployment.yaml"):
        p = tree / rel
        p.write_text("\n".join(ln for ln in p.read_text().split("\n") if "whitelist-source-range" not in ln))
    states = _states(CL.checklist_status(answers, tree, store=store, run=False))
    assert states["li.allowlist"][0] == CL.OPEN and "reachable from any address" in states["li.allowlist"][1]


def test_items_that_depend_on_answers(tmp_path):
    base = {"version": 1, "server_name": "matrix.acme-corp.net"}
    a = answers_from_dict(dict(base, tls={"mode": "manual", "secret_name": "my-tls"},
                               smtp={"enabled": True, "host": "127.0.0.1", "port": free_port(),
                                     "from": "m@acme-corp.net"}), path=None, base_dir=tmp_path)
    states = _states(CL.checklist_status(a, None, run=False))
    assert states["tls.secret_created"][0] == CL.OPEN
    assert states["smtp.server"] == (CL.OPEN, "not checked")
    assert states["domains.well_known"] == (CL.DONE, "not needed: the server name is the matrix host")
    run = _states(CL.checklist_status(a, None, run=True, timeout=2))
    assert run["smtp.server"][0] == CL.OPEN and "no SMTP server" in run["smtp.server"][1]


@pytest.mark.e2e
def test_well_known_written_outside_the_tree_and_judged(tmp_path):
    from wizard import wellknown

    run_wizard("init", str(tmp_path / "deployment"), check=True)
    data = {"version": 1, "server_name": "acme-corp.net", "deployment": "deployment", "well_known_dir": "site"}
    answers = write_answers(tmp_path / "a.yaml", data)
    proc = run_wizard("--answers", str(answers), "--yes", "--dry-run")
    assert proc.returncode == 0 and "site/.well-known/matrix/server" in proc.stdout
    assert not (tmp_path / "site").exists()  # a dry run writes nothing, anywhere
    run_wizard("--answers", str(answers), "--yes", check=True)
    a = answers_from_dict(data, path=answers, base_dir=tmp_path)
    base = tmp_path / "site" / ".well-known" / "matrix"
    assert json.loads((base / "server").read_text()) == {"m.server": "matrix.acme-corp.net:443"}
    assert json.loads((base / "client").read_text()) == {"m.homeserver": {"base_url": "https://matrix.acme-corp.net"}}
    assert all(old == new for old, new in wellknown.planned(a).values())  # unchanged on a second run
    facts = CL.Facts(a, None, None)
    assert CL._well_known_state(facts)[0] == CL.DONE
    (base / "server").write_text('{"m.server": "elsewhere.org:443"}\n')
    assert CL._well_known_state(facts)[0] == CL.OPEN
    inside = answers_from_dict(dict(data, well_known_dir="deployment/wk"), path=answers, base_dir=tmp_path)
    with pytest.raises(AnswersError, match="inside the deployment tree"):
        wellknown.planned(inside)


def test_item_states_read_the_ids_findings_carry_not_their_text():
    from types import SimpleNamespace

    from wizard.catalog import RECORDS, generated_ids
    from wizard.check import Finding

    store = SimpleNamespace(exists=True, values={i: "x" for i in generated_ids()}, path=Path("prod.secrets.yaml"))

    def states(*findings):
        facts = CL.Facts(None, Path("."), store, tuple(findings))
        return {i: CL.ITEMS[i].state(facts)[0] for i in ("secrets.generated", "signing_key.generated",
                                                         "domains.set", "livekit", "storage.volumes")}

    clean = states()
    assert set(clean.values()) == {CL.DONE}
    # the message names no id: the ids field decides
    redis = Finding("infrastructure/02-redis/redis-secret.yaml", 7, "error", "equality-group", "differs",
                    ids=("redis.password",))
    assert states(redis) == dict(clean, **{"secrets.generated": CL.OPEN})
    key = Finding("main-instance/01-synapse/secrets.yaml", 53, "error", "placeholder", "left",
                  ids=("synapse.signing_key",), token="CHANGEME_GENERATE_USING_SYNAPSE_GENERATE_COMMAND")
    assert states(key) == dict(clean, **{"signing_key.generated": CL.OPEN})
    livekit = Finding("values/livekit-values.yaml", 3, "error", "placeholder", "left", ids=("livekit.api_key",))
    assert states(livekit) == dict(clean, livekit=CL.OPEN)
    # a message that mentions an id is not about it
    words = Finding("x.yaml", 1, "error", "placeholder", "placeholder CHANGEME left (redis.password)")
    assert states(words) == clean
    # without ids, the rule's checklist section decides (example.com in a value no catalog location names)
    domain = Finding("values/x.yaml", 1, "error", "example-domain", "matrix.example.com in a value")
    assert states(domain) == dict(clean, **{"domains.set": CL.OPEN})
    # drift of a domain opens its item; drift of the storage class opens the storage item only through errors
    drift = Finding("a.yaml", 1, "warning", "drift", "differs", ids=("domains.matrix",))
    assert states(drift) == dict(clean, **{"domains.set": CL.OPEN})
    # every catalog id belongs to a checklist item, through its record's docs section (and topic)
    for r in RECORDS:
        assert CL.item_of(r.id) in CL.ITEMS, r.id
    assert CL.item_of("placeholder.CHANGEME_KUBE_DNS_IP") == "secrets.generated"


# ---------------------------------------------------------------- `wizard checklist`

@pytest.mark.e2e
def test_cli_no_deployment(tmp_path):
    proc = run_wizard("checklist", "--deployment", str(tmp_path / "nothing"))
    assert proc.returncode == 2 and "no deployment at" in proc.stderr


@pytest.mark.e2e
def test_cli_plain_and_json(configured, tmp_path, fake_path):
    answers, tree, _ = configured
    _fake_tool(fake_path, "kubectl", "echo '{\"serverVersion\": {\"gitVersion\": \"v1.30.0\"}}'\n")
    env = {"PATH": f"{fake_path}:/usr/bin:/bin"}
    proc = run_wizard("checklist", "--answers", str(answers.path), "--json", "--check-timeout", "3", env=env)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    items = {i["id"]: i for i in data["items"]}
    assert items["tools.kubectl"]["state"] == "done"
    assert items["cluster.reachable"]["state"] == "done" and "v1.30.0" in items["cluster.reachable"]["detail"]
    assert items["tools.helm"]["state"] == "open"
    assert items["domains.dns"]["state"] == "open"  # acme-corp.net hosts of the test answers do not resolve here
    assert items["firewall.ports"]["state"] == "confirmed"
    assert data["counts"] == {s: sum(1 for i in data["items"] if i["state"] == s) for s in ("done", "confirmed",
                                                                                            "open")}
    plain = run_wizard("checklist", "--answers", str(answers.path), "--no-checks")
    assert plain.returncode == 0
    assert "confirmed firewall.ports" in plain.stdout
    assert "open      tools.kubectl          kubectl is installed — not checked" in plain.stdout
    assert plain.stdout.strip().splitlines()[-1].endswith("open")


@pytest.mark.e2e
def test_cli_default_answers_file_and_unknown_confirmation(tmp_path):
    write_answers(tmp_path / "wizard-answers.yaml", dict(FULL_ANSWERS, checklist={"firewal.ports": True}))
    run_wizard("--answers", str(tmp_path / "wizard-answers.yaml"), check=True)
    proc = run_wizard("checklist", "--no-checks", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "note: checklist: firewal.ports in the answers file is not a checklist item" in proc.stdout


@pytest.mark.e2e
def test_cli_without_answers_reads_the_tree(tmp_path):
    run_wizard("init", str(tmp_path / "deployment"), check=True)
    proc = run_wizard("checklist", "--deployment", str(tmp_path / "deployment"), "--json", "--no-checks")
    items = {i["id"]: i for i in json.loads(proc.stdout)["items"]}
    assert items["secrets.generated"]["state"] == "open"
    assert items["final.check"]["state"] == "open"
    assert items["li.allowlist"]["state"] == "open"


# ---------------------------------------------------------------- the non-interactive asker

def test_configured_asker_uses_values_and_names_what_is_missing():
    from functools import partial

    from wizard.answers import parse_as
    from wizard.catalog.answers import DOMAIN

    q = Question("server_name", "Server name:", parse=partial(parse_as, DOMAIN))
    assert ConfiguredAsker({"server_name": "Acme-Corp.NET"}).ask(q) == "acme-corp.net"
    assert ConfiguredAsker().ask(q, "acme-corp.net") == "acme-corp.net"
    with pytest.raises(AnswersError) as exc:
        ConfiguredAsker().ask(q)
    assert exc.value.where == "server_name" and "no terminal" in exc.value.message
    with pytest.raises(AnswersError) as exc:
        ConfiguredAsker({"server_name": "not a domain"}).ask(q)
    assert exc.value.where == "server_name" and "not a valid domain name" in exc.value.message
    sel = Question("key_vault.rsa_bits", "bits", SELECT, choices=((2048, "2048"), (4096, "4096")))
    with pytest.raises(AnswersError, match="1024"):
        ConfiguredAsker({"key_vault.rsa_bits": 1024}).ask(sel)
    yes = Question("flow.write", "Write?", CONFIRM)
    with pytest.raises(AnswersError) as exc:
        ConfiguredAsker().ask(yes)
    assert exc.value.where == "flow.write"


# ---------------------------------------------------------------- layering and speed

@pytest.mark.e2e
def test_help_and_cli_import_neither_rich_nor_questionary():
    code = ("import sys, wizard.cli, wizard.checklist; wizard.cli.build_parser();"
            "print(sorted(m for m in ('rich', 'questionary', 'prompt_toolkit') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    proc = run_wizard("--help")
    assert proc.returncode == 0 and "checklist" in proc.stdout
