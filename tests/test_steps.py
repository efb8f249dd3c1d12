"""wizard/steps.py: the steps printed after a rotation or an apply, judged by running them.

The database step runs EXACTLY as printed (``bash -c TEXT``) from a folder that is not the answers
file's, with the real wizard CLI on PATH and a recording stand-in ``kubectl`` whose ``exec … -- psql``
runs the REAL psql against the session's throwaway PostgreSQL (tests/conftest.py). The stand-in
answers like a CloudNativePG cluster whose primary is instance 2, not 1, and refuses writes on a
replica (read-only, as a real standby would).
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import stat
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
import yaml

from helpers import ROOT, TEMPLATES
from wizard.steps import (COMMAND, PROSE, Step, alter_role_sql, command, deploy_steps, format_steps, prose,
                          rotation_steps, to_json)

DB_FILES = ["main-instance/01-synapse/secrets.yaml", "config/synapse/homeserver.yaml"]
DB_OBJECTS = {("Secret", "synapse-secrets"), ("Secret", "synapse-db-credentials")}
HOSTILE = "O'Brien \"q\" back\\slash \\' $HOME $(id) `id` ${X:-y} two  spaces\ttab é ü 日本 ;-- %s"

# A CloudNativePG cluster after a failover: instance 2 is the primary. The -rw Service selects
# the primary by its role label, as CloudNativePG defines it.
CLUSTER = {
    "pods": {
        "matrix-postgresql-1": {"cnpg.io/cluster": "matrix-postgresql", "cnpg.io/instanceRole": "replica",
                                "role": "replica"},
        "matrix-postgresql-2": {"cnpg.io/cluster": "matrix-postgresql", "cnpg.io/instanceRole": "primary",
                                "role": "primary"},
        "matrix-postgresql-3": {"cnpg.io/cluster": "matrix-postgresql", "cnpg.io/instanceRole": "replica",
                                "role": "replica"},
    },
    "services": {
        "matrix-postgresql-rw": {"cnpg.io/cluster": "matrix-postgresql", "cnpg.io/instanceRole": "primary"},
        "matrix-postgresql-ro": {"cnpg.io/cluster": "matrix-postgresql", "cnpg.io/instanceRole": "replica"},
        "matrix-postgresql-r": {"cnpg.io/cluster": "matrix-postgresql"},
    },
}

FAKE_KUBECTL = r'''
import json, os, subprocess, sys

args = sys.argv[1:]
cluster = json.loads(os.environ["FAKE_CLUSTER"])
rec = {"argv": args, "cwd": os.getcwd()}


def out(code):
    with open(os.environ["FAKE_KUBECTL_LOG"], "a") as f:
        f.write(json.dumps(rec) + "\n")
    sys.exit(code)


def matching(selector):
    return sorted(p for p, labels in cluster["pods"].items()
                  if all(labels.get(k) == v for k, v in selector.items()))


# global flags before the verb
ns, rest, i = None, [], 0
while i < len(args):
    a = args[i]
    if a in ("-n", "--namespace"):
        ns = args[i + 1]; i += 2; continue
    if a.startswith("--namespace="):
        ns = a.split("=", 1)[1]; i += 1; continue
    rest = args[i:]
    break
rec["namespace"] = ns
verb = rest[0] if rest else ""
rec["verb"] = verb

if verb == "exec":
    dash = rest.index("--")
    opts, cmd = rest[1:dash], rest[dash + 1:]
    stdin_on, target, container, j = False, None, None, 0
    while j < len(opts):
        o = opts[j]
        if o in ("-i", "--stdin"):
            stdin_on = True
        elif o in ("-c", "--container"):
            container = opts[j + 1]; j += 1
        elif o in ("-n", "--namespace"):
            rec["namespace"] = opts[j + 1]; j += 1
        elif not o.startswith("-"):
            target = o
        j += 1
    rec.update(target=target, container=container, stdin=stdin_on)
    if target and "/" in target:
        kind, name = target.split("/", 1)
        if kind in ("svc", "service", "services"):
            selector = cluster["services"].get(name)
            if selector is None:
                sys.stderr.write(f'Error from server (NotFound): services "{name}" not found\n'); out(1)
            rec["selector"] = selector
            pods = matching(selector)
            if not pods:
                sys.stderr.write("error: timed out waiting for the condition (no pod matches the selector)\n"); out(1)
            pod = pods[0]
        elif kind in ("pod", "pods", "po"):
            pod = name
        else:
            sys.stderr.write(f"error: unsupported type {kind}\n"); out(1)
    else:
        pod = target
    rec["pod"] = pod
    if pod not in cluster["pods"]:
        sys.stderr.write(f'Error from server (NotFound): pods "{pod}" not found\n'); out(1)
    data = sys.stdin.buffer.read() if stdin_on else b""
    rec["stdin_bytes"] = len(data)
    if cmd[:1] != ["psql"]:
        sys.stderr.write("the stand-in only runs psql\n"); out(1)
    psql_args = list(cmd[1:])
    if "-U" in psql_args:
        psql_args[psql_args.index("-U") + 1] = os.environ["FAKE_PG_USER"]
    rec["psql_argv"] = psql_args
    if cluster["pods"][pod].get("cnpg.io/instanceRole") != "primary" and data.strip():
        sys.stderr.write("ERROR:  cannot execute ALTER ROLE in a read-only transaction\n"); out(3)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(PGPASSWORD=os.environ["FAKE_PG_PASSWORD"], PGSSLMODE="disable", PGCONNECT_TIMEOUT="10")
    p = subprocess.run([os.environ["FAKE_PSQL"], "-X", "-h", os.environ["FAKE_PG_HOST"], "-p",
                        os.environ["FAKE_PG_PORT"], "-w", *psql_args], input=data, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    sys.stdout.buffer.write(p.stdout)
    sys.stderr.buffer.write(p.stderr)
    rec["psql_rc"] = p.returncode
    out(p.returncode)

if verb == "get":
    sel = None
    for j, a in enumerate(rest):
        if a in ("-l", "--selector"):
            sel = rest[j + 1]
        elif a.startswith(("-l=", "--selector=")):
            sel = a.split("=", 1)[1]
    selector = dict(kv.split("=", 1) for kv in sel.split(",")) if sel else {}
    rec["selector"] = selector
    for p in matching(selector):
        print(f"pod/{p}")
    out(0)

out(0)  # apply, rollout, …: recorded
'''


def _write_exe(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


@pytest.fixture
def bench(tmp_path, postgres):
    """tmp/site/{deployment,prod.yaml,prod.secrets.yaml}, tmp/bin/{kubectl,wizard}, logs, env."""
    site = tmp_path / "site"
    site.mkdir()
    shutil.copytree(TEMPLATES, site / "deployment")
    (site / "prod.yaml").write_text("version: 1\nserver_name: chat.example.org\ndeployment: deployment\n")
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    _write_exe(bin_ / "kubectl", f"#!{sys.executable}\n" + FAKE_KUBECTL)
    # the real CLI on PATH, nothing else (the argv log proves what ran)
    _write_exe(bin_ / "wizard", textwrap.dedent(f"""\
        #!/bin/sh
        printf '%s\\0' "$@" >> "$WIZARD_ARGV_LOG"
        exec {sys.executable} -m wizard "$@"
        """))
    psql = shutil.which("psql") or str(postgres.bindir / "psql")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(
        PATH=f"{bin_}{os.pathsep}{os.environ.get('PATH', '')}", PYTHONPATH=str(ROOT), NO_COLOR="1",
        FAKE_CLUSTER=json.dumps(CLUSTER), FAKE_KUBECTL_LOG=str(tmp_path / "kubectl.log"),
        WIZARD_ARGV_LOG=str(tmp_path / "wizard.argv"), FAKE_PSQL=psql, FAKE_PG_HOST=postgres.host,
        FAKE_PG_PORT=str(postgres.port), FAKE_PG_USER=postgres.superuser, FAKE_PG_PASSWORD=postgres.password,
    )
    (tmp_path / "kubectl.log").write_text("")
    (tmp_path / "wizard.argv").write_bytes(b"")

    class Bench:
        root = tmp_path
        tree = site / "deployment"
        answers = site / "prod.yaml"

        def set_secret(self, cid: str, value: str) -> None:
            path = site / "prod.secrets.yaml"
            path.write_text("# wizard secrets: never commit, never share\nversion: 2\nsecrets:\n"
                            f"  {cid}: {json.dumps(value, ensure_ascii=False)}\n# end of wizard secrets\n",
                            encoding="utf-8")
            path.chmod(0o600)

        def run(self, text: str, cwd: Path) -> subprocess.CompletedProcess:
            return subprocess.run(["bash", "-c", text], cwd=cwd, env=env, capture_output=True, timeout=120)

        def kubectl_calls(self) -> list[dict]:
            return [json.loads(line) for line in (tmp_path / "kubectl.log").read_text().splitlines() if line]

        def wizard_argv(self) -> list[str]:
            return [a.decode() for a in (tmp_path / "wizard.argv").read_bytes().split(b"\0") if a]

    return Bench()


def _role(postgres, old: str, *, quote: bool = True) -> str:
    from psycopg2 import sql

    name = f'rot"{uuid.uuid4().hex[:8]}' if quote else f"rot_{uuid.uuid4().hex[:8]}"
    conn = postgres.connect()
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD %s").format(sql.Identifier(name)), [old])
    conn.close()
    return name


def _logs_in(postgres, user: str, password: str) -> bool:
    import psycopg2

    try:
        postgres.connect(postgres.conninfo(user=user, password=password)).close()
        return True
    except psycopg2.OperationalError:
        return False


def _bash_n(steps: list[Step]) -> None:
    for s in steps:
        if s.kind == COMMAND:
            p = subprocess.run(["bash", "-n", "-c", s.text], capture_output=True, text=True)
            assert p.returncode == 0, (s.text, p.stderr)


def _db_steps(bench, role: str, cwd: Path, answers: Path | None = None) -> list[Step]:
    steps = rotation_steps(bench.tree, changed_files=DB_FILES, changed_objects=DB_OBJECTS,
                           db_roles=[("matrix-postgresql", role, "postgres.synapse_password")], manual_notes=[],
                           helm_values=[], answers_path=answers or bench.answers, deployment_path=bench.tree, cwd=cwd)
    _bash_n(steps)
    return steps


# ------------------------------------------------------------------------------ the database step

@pytest.mark.e2e
@pytest.mark.parametrize("where", ["parent", "elsewhere"])
def test_printed_steps_set_the_password_on_the_primary(bench, postgres, where):
    old, new = "Old-pass-123", HOSTILE
    role = _role(postgres, old)
    bench.set_secret("postgres.synapse_password", new)
    cwd = bench.root if where == "parent" else bench.root / "ops" / "elsewhere"
    cwd.mkdir(parents=True, exist_ok=True)
    assert cwd != bench.answers.parent
    steps = _db_steps(bench, role, cwd)
    db = [s for s in steps if "psql" in s.text]
    assert len(db) == 1 and db[0].kind == COMMAND
    text = db[0].text
    expected_answers = "site/prod.yaml" if where == "parent" else str(bench.answers)
    assert f"--answers {expected_answers} " in text
    assert "$(" not in text and "`" not in text and "postgresql-1" not in text

    for s in steps:  # every command, exactly as printed, in order
        if s.kind == COMMAND:
            p = bench.run(s.text, cwd)
            assert p.returncode == 0, (s.text, p.stdout.decode(), p.stderr.decode())

    assert _logs_in(postgres, role, new)
    assert not _logs_in(postgres, role, old)

    calls = bench.kubectl_calls()
    verbs = [c["verb"] for c in calls]
    first_exec = verbs.index("exec")
    assert set(verbs[:first_exec]) == {"apply"} and set(verbs[first_exec + 1:]) == {"rollout"}
    ex = calls[first_exec]
    # the primary, found through its role label: instance 2, not 1
    assert ex["target"] == "svc/matrix-postgresql-rw" and ex["container"] == "postgres" and ex["stdin"]
    assert ex["selector"].get("cnpg.io/instanceRole") == "primary"
    assert ex["pod"] == "matrix-postgresql-2"
    assert ex["namespace"] == "matrix" and ex["stdin_bytes"] > len(new.encode())
    # applied paths are right from cwd
    for c in calls:
        if c["verb"] == "apply":
            assert (cwd / c["argv"][c["argv"].index("-f") + 1]).is_file()

    # the secret is never printed nor a process argument
    everything = [s.text + s.why for s in steps] + bench.wizard_argv() + [
        a for c in calls for a in c["argv"] + c.get("psql_argv", [])]
    for fragment in (new, "O'Brien", "日本"):
        assert all(fragment not in x for x in everything)


@pytest.mark.e2e
def test_failing_inner_command_fails_the_step_and_changes_nothing(bench, postgres):
    old = "Old-pass-456"
    role = _role(postgres, old, quote=False)
    bench.set_secret("postgres.synapse_password", "New-pass-789")
    missing = bench.root / "site" / "no-such-answers.yaml"
    db = [s for s in _db_steps(bench, role, bench.root, answers=missing) if "psql" in s.text][0]
    p = bench.run(db.text, bench.root)
    assert p.returncode != 0
    assert b"no-such-answers.yaml" in p.stderr
    ex = [c for c in bench.kubectl_calls() if c["verb"] == "exec"]
    assert ex == [] or ex[0]["stdin_bytes"] == 0  # psql received no statement
    assert _logs_in(postgres, role, old) and not _logs_in(postgres, role, "New-pass-789")


@pytest.mark.e2e
def test_unknown_secret_id_and_missing_primary_fail_too(bench, postgres):
    old = "Old-pass-000"
    role = _role(postgres, old, quote=False)
    bench.set_secret("postgres.synapse_password", "New-pass-000")
    steps = rotation_steps(bench.tree, changed_files=[], changed_objects=set(),
                           db_roles=[("matrix-postgresql", role, "postgres.li_password")], manual_notes=[],
                           helm_values=[], answers_path=bench.answers, deployment_path=bench.tree, cwd=bench.root)
    assert bench.run(steps[0].text, bench.root).returncode != 0  # not in the secrets file
    # no pod carries the primary label (a failover in progress): kubectl fails, nothing is set
    steps = _db_steps(bench, role, bench.root)
    db = [s for s in steps if "psql" in s.text][0]
    no_primary = json.loads(json.dumps(CLUSTER))
    no_primary["pods"]["matrix-postgresql-2"]["cnpg.io/instanceRole"] = "replica"
    env_text = f"export FAKE_CLUSTER={shlex.quote(json.dumps(no_primary))}; {db.text}"
    assert bench.run(env_text, bench.root).returncode != 0
    assert _logs_in(postgres, role, old)


def test_alter_role_sql_quotes_and_refuses():
    assert alter_role_sql("synapse", "abc") == ("SET client_encoding TO 'UTF8';\n"
                                                "ALTER ROLE \"synapse\" WITH PASSWORD 'abc';")
    assert alter_role_sql('we"ird', "it's") .endswith("ALTER ROLE \"we\"\"ird\" WITH PASSWORD 'it''s';")
    assert alter_role_sql("r", "a\\b'c").endswith("PASSWORD E'a\\\\b''c';")
    for bad in ("", "a\0b"):
        with pytest.raises(ValueError):
            alter_role_sql("r", bad)
    with pytest.raises(ValueError):
        alter_role_sql("", "x")


@pytest.mark.e2e
def test_alter_role_sql_is_exact_in_real_postgres_whatever_the_string_setting(postgres):
    from psycopg2 import sql

    for conforming in ("on", "off"):
        role = _role(postgres, "Old-1", quote=True)
        for pw in (HOSTILE, "line\nbreak", "\\", "'", "tail\\"):
            setting = f"SET standard_conforming_strings = {conforming};\n"
            postgres.psql(setting + alter_role_sql(role, pw))
            assert _logs_in(postgres, role, pw), (conforming, pw)
        conn = postgres.connect()
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
        conn.close()


# ------------------------------------------------------------------------------------- ordering

def _tree(tmp_path) -> Path:
    dest = tmp_path / "deployment"
    shutil.copytree(TEMPLATES, dest)
    return dest


def _rot(tree: Path, files, objects, *, db=(), helm=(), notes=(), servers_first=(), cwd=None):
    steps = rotation_steps(tree, changed_files=list(files), changed_objects=set(objects), db_roles=list(db),
                           manual_notes=list(notes), helm_values=list(helm), answers_path=tree.parent / "prod.yaml",
                           deployment_path=tree, cwd=cwd or tree.parent, servers_first=servers_first)
    _bash_n(steps)
    return steps


def _index(steps, needle: str) -> int:
    hits = [i for i, s in enumerate(steps) if needle in s.text]
    assert hits, (needle, [s.text for s in steps])
    return hits[0]


REDIS = (["infrastructure/02-redis/redis-secret.yaml", "main-instance/01-synapse/secrets.yaml",
          "li-instance/01-synapse-li/deployment.yaml", "config/synapse/homeserver.yaml"],
         {("Secret", "redis-password"), ("Secret", "synapse-secrets"), ("Secret", "synapse-li-secrets")})
MINIO = (["infrastructure/03-minio/secrets.yaml", "main-instance/01-synapse/secrets.yaml",
          "li-instance/01-synapse-li/deployment.yaml", "li-instance/04-sync-system/deployment.yaml"],
         {("Secret", "minio-credentials"), ("Secret", "synapse-secrets"), ("Secret", "synapse-s3-credentials"),
          ("Secret", "synapse-li-secrets"), ("Secret", "sync-system-secrets")})


def test_apply_then_database_then_restarts(tmp_path):
    tree = _tree(tmp_path)
    steps = _rot(tree, DB_FILES + REDIS[0], DB_OBJECTS | REDIS[1],
                 db=[("matrix-postgresql", "synapse", "postgres.synapse_password")],
                 notes=["users log in again"], helm=["values/livekit-values.yaml"])
    kinds = [("apply" if "kubectl apply" in s.text else "db" if "psql" in s.text else
              "restart" if "rollout" in s.text or "delete pod" in s.text else "other") for s in steps]
    last_apply = max(i for i, k in enumerate(kinds) if k == "apply")
    db = kinds.index("db")
    first_restart = kinds.index("restart")
    assert last_apply < db < first_restart
    assert _index(steps, "users log in again") < first_restart
    assert _index(steps, "livekit-values.yaml") > max(i for i, k in enumerate(kinds) if k == "restart")
    # each changed manifest once, never a Helm values file or a plain copy
    applied = [s.text for s in steps if "kubectl apply" in s.text]
    assert len(applied) == len(set(applied)) == 3
    assert not any("values/" in a or "config/synapse" in a for a in applied)
    assert "config/synapse/homeserver.yaml" in steps[-1].text and steps[-1].kind == PROSE
    helm = steps[_index(steps, "livekit-values.yaml")]
    assert helm.kind == PROSE and "-f deployment/values/livekit-values.yaml" in helm.text


def test_redis_before_its_clients_on_delete_and_rolling(tmp_path):
    tree = _tree(tmp_path)
    steps = _rot(tree, *REDIS)
    redis = _index(steps, "redis-2")
    assert steps[redis].kind == PROSE and "OnDelete" in steps[redis].text  # rollout restart would do nothing
    assert "statefulset/redis" not in " ".join(s.text for s in steps)
    assert redis < _index(steps, "statefulset/synapse-main") and redis < _index(steps, "statefulset/synapse-li")
    # the same tree with a rolling Redis: restart, wait, then the clients
    sts = tree / "infrastructure/02-redis/redis-statefulset.yaml"
    sts.write_text(sts.read_text().replace("type: OnDelete", "type: RollingUpdate"))
    steps = _rot(tree, *REDIS)
    texts = [s.text for s in steps]
    r = texts.index("kubectl -n matrix rollout restart statefulset/redis")
    assert texts[r + 1] == "kubectl -n matrix rollout status statefulset/redis --timeout=10m"
    for client in ("statefulset/synapse-main", "statefulset/synapse-li", "deployment/synapse-synchrotron"):
        assert r + 1 < texts.index(f"kubectl -n matrix rollout restart {client}")
    # peers (Synapse's main process and workers name each other) are not waited for
    assert not any("rollout status" in t and "synapse" in t for t in texts)


def test_minio_pool_is_derived_from_the_tenant_and_restarts_first(tmp_path):
    tree = _tree(tmp_path)
    steps = _rot(tree, *MINIO)
    texts = [s.text for s in steps]
    pool = texts.index("kubectl -n matrix rollout restart statefulset/matrix-minio-pool-0")
    assert texts[pool + 1].startswith("kubectl -n matrix rollout status statefulset/matrix-minio-pool-0")
    assert pool < texts.index("kubectl -n matrix rollout restart statefulset/synapse-main")
    user = _index(steps, "mc admin user add")
    assert steps[user].kind == PROSE and "<alias>" in steps[user].text and user < pool
    assert "synapse-s3-user" in steps[user].text  # the access key, read from the tree
    # Jobs and CronJobs are prose
    for name in ("Job/sync-system-setup", "CronJob/sync-system-media"):
        assert steps[_index(steps, name)].kind == PROSE
    assert not any("sync-system" in t and "rollout" in t for t in texts)

    # rename the Tenant and its pool: the StatefulSet name follows
    tenant = tree / "infrastructure/03-minio/tenant.yaml"
    tenant.write_text(tenant.read_text().replace("  name: matrix-minio\n", "  name: minio-prod\n", 1)
                      .replace("- name: pool-0", "- name: fast"))
    assert yaml.safe_load(tenant.read_text())["metadata"]["name"] == "minio-prod"
    texts = [s.text for s in _rot(tree, *MINIO)]
    assert "kubectl -n matrix rollout restart statefulset/minio-prod-fast" in texts
    assert not any("pool-0" in t for t in texts)
    # the root password (the Tenant's configuration Secret) restarts the pool as well
    texts = [s.text for s in _rot(tree, ["infrastructure/03-minio/secrets.yaml"], {("Secret", "minio-config")})]
    assert texts[-1] == "kubectl -n matrix rollout restart statefulset/minio-prod-fast"


def test_servers_are_derived_generically_and_can_be_forced(tmp_path):
    """A tree with none of our names: app reads DB_HOST=dbp from its ConfigMap; Service dbp selects
    proxy's pods. proxy restarts and is waited for before app; forcing puts app first."""
    tree = tmp_path / "t"
    tree.mkdir()
    docs = [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "apps"},
         "stringData": {"k": "v"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app-env", "namespace": "apps"},
         "data": {"DB_HOST": "dbp"}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "dbp", "namespace": "apps"},
         "spec": {"selector": {"tier": "proxy"}}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "app", "namespace": "apps"},
         "spec": {"template": {"metadata": {"labels": {"tier": "app"}}, "spec": {"containers": [
             {"name": "a", "envFrom": [{"configMapRef": {"name": "app-env"}}, {"secretRef": {"name": "s"}}]}]}}}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "zz-proxy", "namespace": "apps"},
         "spec": {"template": {"metadata": {"labels": {"tier": "proxy"}}, "spec": {
             "containers": [{"name": "p"}], "volumes": [{"name": "x", "projected": {"sources": [
                 {"secret": {"name": "s"}}]}}]}}}},
    ]
    (tmp_path / "t" / "all.yaml").write_text(yaml.safe_dump_all(docs))
    steps = _rot(tree, ["all.yaml"], {("Secret", "s")})
    assert [s.text for s in steps] == [
        "kubectl apply -f t/all.yaml",
        "kubectl -n apps rollout restart deployment/zz-proxy",
        "kubectl -n apps rollout status deployment/zz-proxy --timeout=10m",
        "kubectl -n apps rollout restart deployment/app",
    ]
    forced = _rot(tree, ["all.yaml"], {("Secret", "s")}, servers_first=[("Deployment", "app")])
    assert [s.text for s in forced[1:]] == [
        "kubectl -n apps rollout restart deployment/app",
        "kubectl -n apps rollout status deployment/app --timeout=10m",
        "kubectl -n apps rollout restart deployment/zz-proxy",
    ]


@pytest.mark.e2e
def test_paths_are_quoted_and_run(tmp_path, bench):
    odd = bench.root / "my ops" / "-dash"
    shutil.copytree(TEMPLATES, odd / "deployment")
    steps = rotation_steps(odd / "deployment", changed_files=["main-instance/01-synapse/secrets.yaml"],
                           changed_objects={("Secret", "synapse-secrets")}, db_roles=[], manual_notes=[],
                           helm_values=[], answers_path=odd / "prod.yaml", deployment_path=odd / "deployment",
                           cwd=bench.root / "my ops")
    _bash_n(steps)
    assert steps[0].text == "kubectl apply -f ./-dash/deployment/main-instance/01-synapse/secrets.yaml"
    steps2 = rotation_steps(odd / "deployment", changed_files=["main-instance/01-synapse/secrets.yaml"],
                            changed_objects=set(), db_roles=[], manual_notes=[], helm_values=[],
                            answers_path=odd / "prod.yaml", deployment_path=odd / "deployment", cwd=bench.root)
    assert steps2[0].text == "kubectl apply -f 'my ops/-dash/deployment/main-instance/01-synapse/secrets.yaml'"
    for s, cwd in ((steps[0], bench.root / "my ops"), (steps2[0], bench.root)):
        assert bench.run(s.text, cwd).returncode == 0
        call = bench.kubectl_calls()[-1]
        assert (cwd / call["argv"][-1]).is_file()


def test_reading_skips_fifos_unparseable_files_and_links_out_of_the_tree(tmp_path):
    tree = _tree(tmp_path / "a")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "w.yaml").write_text(yaml.safe_dump({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "intruder", "namespace": "matrix"},
        "spec": {"template": {"spec": {"containers": [{"name": "x", "envFrom": [
            {"secretRef": {"name": "synapse-secrets"}}]}]}}}}))
    (tree / "linked-out").symlink_to(outside, target_is_directory=True)
    (tree / "loop").symlink_to(tree, target_is_directory=True)  # inside the tree, a cycle: read once
    os.mkfifo(tree / "main-instance" / "pipe.yaml")
    (tree / "main-instance" / "broken.yaml").write_text("kind: Deployment\n  bad: [\n")
    steps = _rot(tree, ["main-instance/01-synapse/secrets.yaml"], {("Secret", "synapse-secrets")})
    texts = " ".join(s.text for s in steps)
    assert "intruder" not in texts
    assert texts.count("statefulset/synapse-main") == 1
    assert stat.S_ISFIFO(os.stat(tree / "main-instance" / "pipe.yaml").st_mode)


# ------------------------------------------------------------------------------------ deploy_steps

def _commands(steps) -> list[str]:
    return [s.text for s in steps if s.kind == COMMAND]


@pytest.mark.e2e
def test_deploy_script_runs_from_where_it_expects(tmp_path, bench):
    tree = bench.tree
    (tree / "scripts").mkdir()
    script = tree / "scripts" / "deploy-all.sh"
    script.write_text(f'#!/bin/bash\nset -e\npwd > {json.dumps(str(bench.root / "ran-in"))}\n')
    steps = deploy_steps(tree, cwd=tree, blocking_lines=[])
    assert [(s.kind, s.text) for s in steps] == [(COMMAND, "bash scripts/deploy-all.sh")]
    # from the folder above: a script that does not locate itself runs from the tree's root
    steps = deploy_steps(tree, cwd=bench.root / "site", blocking_lines=[])
    assert _commands(steps) == ["(cd deployment && bash scripts/deploy-all.sh)"]
    for cwd, s in ((tree, "bash scripts/deploy-all.sh"), (bench.root / "site", steps[0].text)):
        assert bench.run(s, cwd).returncode == 0
        assert (bench.root / "ran-in").read_text().strip() == str(tree)
    # a script that changes to its own folder runs from anywhere
    script.write_text('#!/bin/bash\ncd "$(dirname "$0")/.."\npwd > ' + json.dumps(str(bench.root / "ran-in")) + "\n")
    steps = deploy_steps(tree, cwd=bench.root, blocking_lines=[])
    assert _commands(steps) == ["bash site/deployment/scripts/deploy-all.sh"]
    assert bench.run(steps[0].text, bench.root).returncode == 0


def test_blocking_lines_give_the_manual_order(tmp_path):
    tree = _tree(tmp_path)
    (tree / "scripts").mkdir()
    (tree / "scripts" / "deploy-all.sh").write_text("#!/bin/bash\ngrep -r CHANGEME . && exit 1\n")
    lines = [("README.md", 12, "set CHANGEME_X"), ("docs/a.md", 3, "CHANGEME"), ("scripts/deploy-all.sh", 2, "…"),
             ("docs/b.md", 9, "CHANGEME")]
    steps = deploy_steps(tree, cwd=tmp_path, blocking_lines=lines)
    _bash_n(steps)
    first = steps[0]
    assert first.kind == PROSE and "scripts/deploy-all.sh" in first.text and "4 lines" in first.text
    assert "README.md:12" in first.text and "docs/a.md:3" in first.text and "1 more" in first.text
    cmds = _commands(steps)
    assert cmds and all(c.startswith("kubectl apply ") for c in cmds)
    assert not any("bash" in c for c in cmds)


@pytest.mark.e2e
def test_manual_order_on_the_templates(tmp_path, bench):
    tree = bench.tree
    steps = deploy_steps(tree, cwd=bench.root, blocking_lines=[])
    _bash_n(steps)
    cmds = _commands(steps)
    assert cmds[0] == "kubectl apply -f site/deployment/namespace.yaml"
    folders = [c.split(" -f ")[1].split("site/deployment/")[1] for c in cmds[1:]]
    # the ingress namespace before its chart; then the folders
    assert folders[0] == "infrastructure/04-networking/ingress-install.yaml"
    tops = [f.split("/")[0] for f in folders[1:]]
    order = list(dict.fromkeys(tops))
    assert order[0] == "infrastructure"
    assert order.index("main-instance") < order.index("li-instance")
    assert set(order) == {"infrastructure", "main-instance", "li-instance", "monitoring", "antivirus"}
    infra = [f for f in folders[1:] if f.startswith("infrastructure/")]
    assert infra == ["infrastructure/01-postgresql", "infrastructure/02-redis", "infrastructure/03-minio",
                     "infrastructure/04-networking"]
    # plain copies beside manifests: the manifests only
    assert "main-instance/02-element-web/deployment.yaml" in folders
    assert "li-instance/01-synapse-li/deployment.yaml" in folders
    assert not any(f.startswith(("values", "config")) for f in folders)
    # operators (CRD providers, ingress class) before every folder, named by their values file
    first_folder = steps.index(next(s for s in steps if s.kind == COMMAND and "infrastructure/01-postgresql" in s.text))
    for values in ("cloudnativepg", "minio-operator", "cert-manager", "nginx-ingress", "prometheus-stack"):
        i = _index(steps, f"values/{values}-values.yaml")
        assert steps[i].kind == PROSE and i < first_folder, values
    for values in ("livekit", "loki", "redis-synapse"):
        assert _index(steps, f"values/{values}-values.yaml") > _index(steps, "monitoring/02-grafana")
    # every printed command runs from cwd and names paths that exist
    for c in cmds:
        assert bench.run(c, bench.root).returncode == 0
    for call in bench.kubectl_calls():
        for j, a in enumerate(call["argv"]):
            if a == "-f":
                assert (bench.root / call["argv"][j + 1]).exists()


def test_folder_order_follows_numeric_prefixes_and_dependencies(tmp_path):
    tree = _tree(tmp_path)
    infra = tree / "infrastructure"
    (infra / "01-postgresql").rename(infra / "05-postgresql")

    def order(t):
        return [c.split(" -f ")[1] for c in _commands(deploy_steps(t, cwd=t, blocking_lines=[]))]

    got = [f for f in order(tree) if f.startswith("infrastructure/")]
    assert got == ["infrastructure/04-networking/ingress-install.yaml",  # a Namespace: first
                   "infrastructure/02-redis", "infrastructure/03-minio", "infrastructure/04-networking",
                   "infrastructure/05-postgresql"]
    # a name without a number and later in the alphabet: still first, by what the others connect to
    tree.joinpath("infrastructure").rename(tree / "zz-backing")
    tops = list(dict.fromkeys(f.split("/")[0] for f in order(tree)[2:]))
    assert tops[0] == "zz-backing" and tops.index("main-instance") < tops.index("li-instance")
    # numbered top folders follow their numbers, whatever they connect to
    for n, name in ((30, "zz-backing"), (10, "monitoring"), (20, "li-instance"), (40, "main-instance"),
                    (50, "antivirus")):
        tree.joinpath(name).rename(tree / f"{n}-{name}")
    tops = list(dict.fromkeys(f.split("/")[0] for f in order(tree)[2:]))
    assert tops == ["10-monitoring", "20-li-instance", "30-zz-backing", "40-main-instance", "50-antivirus"]


def test_a_crd_no_values_file_provides_is_named(tmp_path):
    tree = _tree(tmp_path)
    (tree / "extras").mkdir()
    (tree / "extras" / "widget.yaml").write_text(yaml.safe_dump(
        {"apiVersion": "widgets.acme.example/v1", "kind": "Widget", "metadata": {"name": "w"}}))
    steps = deploy_steps(tree, cwd=tree, blocking_lines=[])
    i = _index(steps, "widgets.acme.example (Widget)")
    assert steps[i].kind == PROSE and i < _index(steps, "kubectl apply -f extras")


# ----------------------------------------------------------------------------------------- render

def test_step_rules_and_rendering():
    with pytest.raises(ValueError):
        command("mc admin user add <alias> x y")
    with pytest.raises(ValueError):
        Step("shell", "ls")
    steps = [command("kubectl apply -f a.yaml", "apply a.yaml"), prose("do <this> by hand", "why not")]
    lines = format_steps(steps)
    assert lines[0] == "1. apply a.yaml"
    assert lines[1].startswith(" ") and lines[1].strip() == "kubectl apply -f a.yaml"
    assert lines[2] == "2. [by hand] do <this> by hand"
    assert json.loads(json.dumps(to_json(steps))) == [
        {"n": 1, "kind": "command", "text": "kubectl apply -f a.yaml", "why": "apply a.yaml"},
        {"n": 2, "kind": "prose", "text": "do <this> by hand", "why": "why not"}]
