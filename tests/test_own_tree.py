"""Acceptance: the wizard on the operator's own tree (PRODUCT.md "The operator's own tree").

Each seed of tests/treedrift.py gives a tree that differs from ours in structure (objects renamed,
files moved, split and merged, components removed and added, new tokens, the LI pod mounting main's
signing key, a broken file, a planted ambiguity…) and says what a correct wizard reports. The
wizard runs as a subprocess (``--answers prod.yaml --yes --json``); the configured tree is judged by
the independent readers of tests/treecheck.py and by the real tools (Synapse's parser, signedjson).

The JSON contract of apply (stdout with ``--json``, whatever the exit code):
  leftovers: [{kind, file, line, token, id, address, message, fix}]  (exit 1 when non-empty)
      kind: "unknown-token" | "token-conflict" | "parse" | "ambiguous" | "held-back" | …
      ambiguous: one per catalog object address ("FILE › Kind/name", the key of `locations:`)
      held-back: one per id whose new value was written nowhere; parse: one per broken file
  notes: [same shape]  — every line the tree's own pre-flight grep still finds is a note or a leftover
  found: [{id, address, location, how}] — every location found elsewhere than its catalog place
      (address: the catalog location; location: where it is now; how: "catalog" for rank 1 only)
"""
from __future__ import annotations

import collections
import copy
import difflib
import json
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

import treecheck as T
import treedrift
from helpers import FULL_ANSWERS, TEMPLATES, digest, run_wizard, snapshot, write_answers
from oracles import read_signing_key, synapse_config_check_inprocess

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("own-tree")]  # one worker builds the trees once

SEEDS = treedrift.E2E_SEEDS
A = FULL_ANSWERS
SEP = T.SEP
ENTRY_KEYS = {"kind", "file", "line", "token", "id", "address", "message", "fix"}
# The fields each kind of expected leftover is compared on.
FIELDS = {"unknown-token": ("kind", "file", "token"), "token-conflict": ("kind", "file", "token"),
          "parse": ("kind", "file"), "ambiguous": ("kind", "address"), "held-back": ("kind", "id")}
SYGNAL_SECRET = T.address("main-instance/07-sygnal/deployment.yaml", "Secret", "sygnal-secrets")


# ---------------------------------------------------------------- running the wizard on every seed


@dataclass
class Run:
    seed: int
    report: dict
    work: Path
    env: dict
    answers: dict
    before: dict = field(default_factory=dict)
    first: subprocess.CompletedProcess | None = None
    after1: Path | None = None            # a copy of the tree right after the first run
    secrets1: dict = field(default_factory=dict)
    check: subprocess.CompletedProcess | None = None
    second: subprocess.CompletedProcess | None = None
    secrets2: dict = field(default_factory=dict)
    third: subprocess.CompletedProcess | None = None
    digests: tuple = ()

    @property
    def tree(self) -> Path:
        return self.work / "deployment"

    @property
    def answers_path(self) -> Path:
        return self.work / "prod.yaml"

    @property
    def broken(self) -> set:
        return set(self.report["broken_files"])

    @property
    def layout(self) -> dict:
        return self.report["layout"]


def _json(proc: subprocess.CompletedProcess, what: str) -> dict:
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError(f"{what}: exit {proc.returncode}, stdout is not JSON:\n{proc.stdout[-3000:]}\n"
                             f"stderr:\n{proc.stderr[-3000:]}") from None
    assert isinstance(data, dict), f"{what}: JSON is not an object"
    return data


def _load_secrets(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) if path.exists() else {}


def _answers_for(report: dict) -> dict:
    answers = copy.deepcopy(A)
    if report["placeholders"]:
        answers["placeholders"] = copy.deepcopy(report["placeholders"])
    return answers


def _pipeline(run: Run) -> Run:
    """Everything that runs the wizard for one seed (in a worker thread: subprocesses only)."""
    apply = ("--answers", str(run.answers_path), "--yes", "--json")
    run.first = run_wizard(*apply, env=run.env)
    run.after1 = run.work / "after-first"
    shutil.copytree(run.tree, run.after1, symlinks=True)
    run.secrets1 = _load_secrets(run.work / "prod.secrets.yaml")
    if run.report["broken_files"]:
        run.check = run_wizard("check", "--answers", str(run.answers_path), "--json", env=run.env)
    if run.report["settle"]:
        answers = copy.deepcopy(run.answers)
        answers["locations"] = dict(run.report["settle"])
        write_answers(run.answers_path, answers)
        run.second = run_wizard(*apply, env=run.env)
        run.secrets2 = _load_secrets(run.work / "prod.secrets.yaml")
        before = digest(run.work)
        run.third = run_wizard(*apply, env=run.env)
        run.digests = (before, digest(run.work))
    return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[int, Run]:
    root = tmp_path_factory.mktemp("own-tree")
    futures = {}
    with ThreadPoolExecutor(max_workers=2) as pool:
        for seed in SEEDS:  # trees are drawn here while earlier seeds' wizard runs go on
            work = root / f"seed-{seed}"
            work.mkdir()
            report = treedrift.make_drift_tree(TEMPLATES, work / "deployment", seed)
            run = Run(seed, report, work, dict(report["env"]), _answers_for(report))
            write_answers(run.answers_path, run.answers)
            run.before = snapshot(run.tree)
            futures[seed] = pool.submit(_pipeline, run)
        return {seed: f.result() for seed, f in futures.items()}


@pytest.fixture(params=SEEDS, ids=lambda s: f"seed-{s}")
def run(request, runs) -> Run:
    return runs[request.param]


# ---------------------------------------------------------------- leftovers, notes, found


def _entries(data: dict, key: str, what: str) -> list[dict]:
    entries = data.get(key)
    assert isinstance(entries, list), f"{what}: no `{key}` list in the JSON output"
    for e in entries:
        assert isinstance(e, dict) and ENTRY_KEYS <= set(e), f"{what}: {key} entry lacks {ENTRY_KEYS - set(e)}: {e}"
    return entries


def _project(entries: list[dict]) -> collections.Counter:
    out = collections.Counter()
    for e in entries:
        fields = FIELDS.get(e["kind"], ("kind", "file", "token", "id", "address"))
        out[tuple((f, e.get(f)) for f in fields)] += 1
    return out


def _assert_leftovers(proc, expected: list[dict], what: str) -> list[dict]:
    data = _json(proc, what)
    leftovers = _entries(data, "leftovers", what)
    _entries(data, "notes", what)
    got, want = _project(leftovers), _project(expected)
    assert got == want, (f"{what}: leftovers differ from the expected ones\n  missing: {dict(want - got)}\n"
                         f"  extra: {dict(got - want)}\n  stderr: {proc.stderr[-1500:]}")
    assert proc.returncode == (1 if expected else 0), f"{what}: exit {proc.returncode}\n{proc.stderr[-2000:]}"
    for e in leftovers:
        assert isinstance(e["message"], str) and e["message"], f"{what}: leftover without a message: {e}"
        assert isinstance(e["fix"], str) and e["fix"], f"{what}: leftover without a fix: {e}"
        assert e["file"] is None or isinstance(e["line"], int), f"{what}: leftover with a file but no line: {e}"
    return leftovers


def test_exit_code_and_exactly_the_expected_leftovers(run):
    leftovers = _assert_leftovers(run.first, run.report["expected_leftovers"], f"seed {run.seed} apply")
    where = {(u["file"], u["line"], u["token"]) for u in run.report["unknown_tokens"]}
    for e in leftovers:
        if e["kind"] == "unknown-token":
            assert (e["file"], e["line"], e["token"]) in where, f"seed {run.seed}: wrong line in {e}"


def _matches(text: str, prefix: str) -> bool:
    return text == prefix or text.startswith(prefix + SEP) or text.startswith(prefix + " ")


def _moved(run: Run, *, settled: bool) -> list[tuple[str, str]]:
    """(catalog prefix, where it is now) for every catalog object and plain file the drift moved."""
    out = []
    for addr, now in run.layout["objects"].items():
        if now is None or now == addr or addr == SYGNAL_SECRET or now.split(SEP)[0] in run.broken:
            continue
        if addr in run.report["ambiguous"] and not settled:
            continue
        out.append((addr, now))
    for rel, now in run.layout["files"].items():
        if now is not None and now != rel:
            out.append((rel, now))
    return out


def _assert_found(proc, run: Run, *, settled: bool, what: str) -> None:
    data = _json(proc, what)
    found = data.get("found")
    assert isinstance(found, list), f"{what}: no `found` list"
    for f in found:
        assert isinstance(f, dict) and {"id", "address", "location", "how"} <= set(f), f"{what}: bad found entry {f}"
    for addr, now in _moved(run, settled=settled):
        hits = [f for f in found if _matches(f["address"], addr) and _matches(f["location"], now)]
        assert hits, f"{what}: `found` does not say that {addr} is at {now}"
        assert all(f["how"] != "catalog" for f in hits), f"{what}: {addr} at {now} reported as the catalog's place"


def test_found_names_every_moved_location(run):
    _assert_found(run.first, run, settled=False, what=f"seed {run.seed} apply")


# ---------------------------------------------------------------- the configured tree


def _secrets(store: dict, what: str) -> dict:
    secrets = (store or {}).get("secrets")
    assert isinstance(secrets, dict), f"{what}: no secrets file (or no `secrets:` in it) after the run"
    return secrets


def _held_back_token(run: Run, tok: str) -> bool:
    cid = T.TOKEN_IDS.get(tok)
    ids = set(cid) if isinstance(cid, tuple) else {cid}
    return bool(ids & set(run.report["held_back"]))


def _sygnal_files(run: Run) -> set:
    now = run.layout["objects"].get(SYGNAL_SECRET)
    return {now.split(SEP)[0]} if now else set()


def test_every_other_token_is_filled(run):
    left = collections.Counter(T.tokens_in_values(run.after1, run.broken))
    sygnal = _sygnal_files(run)
    rest = collections.Counter({(f, t): n for (f, t), n in left.items()
                                if f not in sygnal and not _held_back_token(run, t)})
    want = collections.Counter((e["file"], e["token"]) for e in run.report["expected_leftovers"]
                               if e["kind"] in ("unknown-token", "token-conflict"))
    assert rest == want, f"seed {run.seed}: tokens left in values: extra {dict(rest - want)}, filled {dict(want - rest)}"


def _placeholder_value(run: Run, key: str, secrets: dict) -> str:
    spec = run.report["placeholders"][key]
    if isinstance(spec, dict):
        value = secrets.get(f"placeholder.{key}")
        assert isinstance(value, str) and re.fullmatch(r"[A-Za-z][A-Za-z0-9]{20,}", value), \
            f"seed {run.seed}: secrets file lacks a generated placeholder.{key}"
        return value
    if spec.startswith("env:"):
        return run.env[spec[4:]]
    return spec


def test_placeholders_take_their_values(run):
    secrets = _secrets(run.secrets1, f"seed {run.seed}")
    placed = run.secrets1.get("placed") or {}
    for u in run.report["unknown_tokens"]:
        key = u["token"] if u["token"] != "CHANGEME" else f"CHANGEME@{u['file']}"
        if key not in run.report["placeholders"]:
            continue
        value = _placeholder_value(run, key, secrets)
        line = T.read_text(run.after1 / u["file"]).split("\n")[u["line"] - 1]
        assert u["token"] not in T.TOKEN_RE.findall(line), f"seed {run.seed}: {u} not replaced: {line!r}"
        assert value in line, f"seed {run.seed}: {u}: {key}'s value is not where the token was: {line!r}"
        if isinstance(run.report["placeholders"][key], dict):
            where = placed.get(f"placeholder.{key}")
            assert isinstance(where, list) and any(isinstance(w, str) and w.startswith(u["file"] + SEP)
                                                   for w in where), \
                f"seed {run.seed}: placed: does not record {u['file']} for placeholder.{key}: {where}"
    for a in run.report["anchors"]:
        if a["id"] in run.report["held_back"]:
            continue
        file = a["location"].split(SEP)[0]
        where = placed.get(a["id"]) or []
        assert any(isinstance(w, str) and w.startswith(file + SEP) for w in where), \
            f"seed {run.seed}: placed: does not record {a['location']} for {a['id']}: {where}"


def _assert_groups(tree: Path, run: Run, secrets: dict, held_back, what: str) -> None:
    groups = T.secret_groups(tree, run.layout, li_signing_key=run.report["li_signing_key"])
    for cid, values in groups.items():
        if not values:
            continue
        if cid in held_back:
            assert cid in secrets, f"{what}: held-back {cid} is not kept in the secrets file"
            for v in values:
                assert any(t in T.tokens_of(cid) for t in T.TOKEN_RE.findall(v)), \
                    f"{what}: held-back {cid} was written somewhere (a group split)"
            continue
        assert len(set(values)) == 1, f"{what}: {cid}: {len(set(values))} distinct values"
        assert values[0] == str(secrets.get(cid, "")).rstrip("\n"), f"{what}: {cid} differs from the secrets file"
    for li, main in (("li.macaroon_secret", "synapse.macaroon_secret"),
                     ("li.registration_secret", "synapse.registration_secret"), ("li.form_secret", "synapse.form_secret")):
        if li not in held_back and main not in held_back:
            assert groups[li][0] != groups[main][0], f"{what}: {li} equals {main}"
    for a in run.report["anchors"]:
        v = T.read_address(tree, a["location"])
        if a["id"] in held_back:
            assert any(t in T.tokens_of(a["id"]) for t in T.TOKEN_RE.findall(v)), f"{what}: {a} written though held back"
        else:
            assert v == str(secrets.get(a["id"])).rstrip("\n"), f"{what}: {a['location']} does not hold {a['id']}"


def test_one_id_one_value_everywhere(run):
    secrets = _secrets(run.secrets1, f"seed {run.seed}")
    _assert_groups(run.after1, run, secrets, set(run.report["held_back"]), f"seed {run.seed} apply")


def test_signing_key_valid_and_shared_with_li(run):
    hs = T.homeserver_configs(run.after1, run.layout, run.broken)
    secrets = _secrets(run.secrets1, f"seed {run.seed}")
    keys = {h.signing_key.rstrip("\n") for h in hs}
    assert keys == {secrets["synapse.signing_key"].rstrip("\n")}, f"seed {run.seed}: main and LI keys differ"
    key = read_signing_key(next(iter(keys)) + "\n")
    assert key.alg == "ed25519" and key.version == secrets["synapse.signing_key"].split()[1]
    if run.report["li_signing_key"] != "copy":
        lay = run.layout["objects"]
        main_secret = T.split_object_address(lay[T.address(T.MAIN_SEC, "Secret", "synapse-secrets")])[2]
        sts = T.fobj(run.after1, *T.split_object_address(lay[T.address(T.LI_DEP, "StatefulSet", "synapse-li")]))
        src = T.pod_signing_key(run.after1, sts, "/synapse/keys/signing.key", run.broken)
        assert src.secret == main_secret, f"seed {run.seed}: the LI pod no longer mounts main's key"


def test_synapse_accepts_every_homeserver_config(run, tmp_path):
    hs = T.homeserver_configs(run.after1, run.layout, run.broken)
    assert len(hs) >= 2
    for h in hs:
        env = {k: v for k, v in h.env.items() if "." not in k}
        env["__signing_key__"] = h.signing_key
        config = synapse_config_check_inprocess(h.text, env, tmp_path)
        assert config.server.server_name == A["server_name"], f"seed {run.seed}: {h.where}"


# ---------------------------------------------------------------- nothing else changed


_OLD_VALUE = re.compile(
    r"livekit\.CHANGE_TO_YOUR_DOMAIN|[\w.+-]+@example\.com|ed25519 a_XXXX \S+|admin:CHANGEME_GENERATE_HTPASSWD"
    r"|CHANGE_TO_[A-Z0-9_]+|CHANGE_?ME[A-Z0-9_]*|" + re.escape(treedrift.STRAY_LIVEKIT) +
    r"|[A-Za-z0-9.-]*example\.com|letsencrypt-prod|local-path|standard|synapse-s3-user"
    r'|(?<=: )""|(?<=: )\'\'|(?<=Class: )""')
ADDED_OK = re.compile(r"^\s*([\"']?)nginx\.ingress\.kubernetes\.io/(whitelist-source-range|auth-type|auth-secret"
                      r"|auth-realm)\1:.*$")


def _collapse(line: str) -> str:
    line = re.sub(r"([\"'])§\1", "§", line)
    return re.sub(r"(§\s*)+", "§", line)


def _normal_old(line: str) -> str:
    line = re.sub(r"username: ([\"']?)CHANGE_TO_COTURN_SHARED_SECRET\1", r"username: \1matrix\1", line)
    return _collapse(_OLD_VALUE.sub("§", line))


def _normal_new(line: str, values: list[str]) -> str:
    for v in values:
        line = line.replace(f'"{v}"', "§").replace(f"'{v}'", "§").replace(v, "§")
    line = re.sub(r"#\s*CHANGE_TO_[A-Z0-9_]+", "# §", line)
    return _collapse(line)


def _values(run: Run, secrets: dict) -> list[str]:
    vals = {*A["domains"].values(), A["server_name"], A["tls"]["acme_email"], "letsencrypt-staging", "fast-ssd",
            "media-writer", "lawful", *run.env.values()}
    for v in secrets.values():
        if isinstance(v, str):
            vals |= {x for x in [v, *v.split("\n")] if len(x) > 3}
    for v in run.report["placeholders"].values():
        if isinstance(v, str) and not v.startswith("env:"):
            vals.add(v)
    return sorted(vals, key=len, reverse=True)


def _assert_diff_is_only_values(before: dict, after: dict, values: list[str], what: str) -> None:
    assert set(after) == set(before), f"{what}: files added {set(after) - set(before)}, removed {set(before) - set(after)}"
    for rel, old_bytes in before.items():
        new_bytes = after[rel]
        if old_bytes == new_bytes:
            continue
        assert T.is_manifest(rel), f"{what}: {rel} is no manifest and was edited"
        assert old_bytes.startswith(b"\xef\xbb\xbf") == new_bytes.startswith(b"\xef\xbb\xbf"), f"{what}: {rel} BOM"
        assert (b"\r\n" in old_bytes) == (b"\r\n" in new_bytes), f"{what}: {rel} line ends"
        old = old_bytes.decode("utf-8-sig").replace("\r\n", "\n").split("\n")
        new = new_bytes.decode("utf-8-sig").replace("\r\n", "\n").split("\n")
        lost = {x.strip() for x in old if x.strip().startswith("#")} - {x.strip() for x in new if x.strip().startswith("#")}
        assert not lost, f"{what}: {rel}: comment lines lost: {sorted(lost)[:3]}"
        sm = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
        for op, i1, i2, j1, j2 in sm.get_opcodes():
            if op == "equal":
                continue
            olds, news = old[i1:i2], new[j1:j2]
            if op == "insert":
                bad = [x for x in news if not ADDED_OK.match(x)]
                assert not bad, f"{what}: {rel}: unexpected added lines {bad}"
                continue
            assert op == "replace", f"{what}: {rel}: lines removed: {olds}"
            if any("BEGIN RSA PRIVATE KEY" in x or re.fullmatch(r"\s*[A-Za-z0-9+/=]{16,}\s*", x) for x in news):
                assert any("CHANGEME_GENERATE_RSA_2048_BIT_PRIVATE_KEY" in x for x in old[max(0, i1 - 2):i2 + 2]), rel
                continue
            for line in news[len(olds):]:
                assert ADDED_OK.match(line), f"{what}: {rel}: unexpected added line {line!r}"
            assert len(news) >= len(olds), f"{what}: {rel}: lines removed: {olds[len(news):]}"
            for o, n in zip(olds, news):
                assert _normal_old(o) == _normal_new(n, values), \
                    f"{what}: {rel}: a change no value explains:\n- {o}\n+ {n}"


def test_diff_is_only_values(run):
    secrets = _secrets(run.secrets1, f"seed {run.seed}")
    _assert_diff_is_only_values(run.before, snapshot(run.after1), _values(run, secrets), f"seed {run.seed} apply")
    for s in run.report["stray"]["kept"]:
        assert s["text"] in T.read_text(run.after1 / s["file"]), f"seed {run.seed}: {s} was edited"


def _parses(rel: str, data: bytes) -> bool:
    if not rel.endswith((".yaml", ".yml", ".json")):
        return True
    try:
        T.strict_parse(data.decode("utf-8-sig").replace("\r\n", "\n"), json_file=rel.endswith(".json"))
    except (yaml.YAMLError, ValueError):
        return False
    return True


def test_no_file_that_parsed_fails_after(run):
    after = snapshot(run.after1)
    for rel, data in run.before.items():
        if after.get(rel) != data and _parses(rel, data):
            assert _parses(rel, after[rel]), f"seed {run.seed}: {rel} parsed before the wizard and not after"


def test_check_reports_each_broken_file_once(run):
    if not run.report["broken_files"]:
        return
    data = _json(run.check, f"seed {run.seed} check")
    findings = data.get("findings")
    assert isinstance(findings, list), f"seed {run.seed}: check --json has no findings list"
    parse = sorted(f["file"] for f in findings if f.get("rule") == "parse")
    assert parse == sorted(run.report["broken_files"]), f"seed {run.seed}: parse findings {parse}"
    for rel in run.report["broken_files"]:
        about = [f for f in findings if f.get("file") == rel]
        assert len(about) == 1, f"seed {run.seed}: {rel}: {len(about)} findings (a cascade): {about}"


# ---------------------------------------------------------------- settling the ambiguity


def test_settled_ambiguity_finishes_the_job(run):
    if not run.report["settle"]:
        return
    what = f"seed {run.seed} re-run with locations:"
    rest = [e for e in run.report["expected_leftovers"] if e["kind"] not in ("ambiguous", "held-back")]
    _assert_leftovers(run.second, rest, what)
    _assert_found(run.second, run, settled=True, what=what)
    store = run.secrets2
    secrets = _secrets(store, what)
    for cid in run.report["held_back"]:
        assert secrets.get(cid) == run.secrets1["secrets"].get(cid), f"{what}: {cid} regenerated instead of written"
    _assert_groups(run.tree, run, secrets, set(), what)
    assert isinstance(store.get("placed"), dict), f"{what}: the secrets file has no placed: map"
    generated = [k for k, v in run.report["placeholders"].items() if isinstance(v, dict)]
    for k in generated:
        assert store["placed"].get(f"placeholder.{k}"), f"{what}: placed: lacks placeholder.{k}"
    _assert_diff_is_only_values(run.before, snapshot(run.tree), _values(run, secrets), what)
    assert run.third.returncode == run.second.returncode, f"seed {run.seed} third run: exit {run.third.returncode}"
    assert run.digests[0] == run.digests[1], f"seed {run.seed}: a third run with the same answers changed bytes"


# ---------------------------------------------------------------- the tree's own pre-flight


def _preflight(tree: Path) -> list[tuple[str, int]]:
    proc = subprocess.run(["grep", "-rn", "CHANGEME", str(tree), "--exclude-dir=docs", "--exclude-dir=.git",
                           "--exclude=*.md", "--exclude=*.sh"], capture_output=True, text=True)
    assert proc.returncode in (0, 1), proc.stderr
    hits = []
    for line in proc.stdout.splitlines():
        path, n, _ = line.split(":", 2)
        hits.append((Path(path).relative_to(tree).as_posix(), int(n)))
    return hits


def _assert_preflight_named(tree: Path, data: dict, what: str) -> None:
    named = {(e.get("file"), e.get("line")) for key in ("notes", "leftovers") for e in data.get(key) or []}
    hits = _preflight(tree)
    missing = [h for h in hits if h not in named]
    assert not missing, f"{what}: lines the pre-flight grep finds that no note or leftover names: {missing[:10]}"


def test_preflight_hits_are_all_named(run):
    _assert_preflight_named(run.after1, _json(run.first, f"seed {run.seed}"), f"seed {run.seed}")


def test_preflight_hits_are_all_named_on_the_bundled_tree(tmp_path):
    shutil.copytree(TEMPLATES, tmp_path / "deployment")
    write_answers(tmp_path / "prod.yaml", A)
    proc = run_wizard("--answers", str(tmp_path / "prod.yaml"), "--yes", "--json")
    data = _json(proc, "bundled")
    assert proc.returncode == 0 and data.get("leftovers") == [], f"bundled: {data.get('leftovers')}\n{proc.stderr}"
    assert _preflight(tmp_path / "deployment"), "the bundled tree keeps no CHANGEME line: the test has no teeth"
    _assert_preflight_named(tmp_path / "deployment", data, "bundled")
