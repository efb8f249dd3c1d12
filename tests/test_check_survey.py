"""`wizard check` on the survey (the same discovery as apply), in process.

- on drifted trees (tests/treedrift.py): each broken file is one `parse` finding and nothing else is said
  about it; renamed, moved and merged objects are found (no false placeholder or equality errors after an
  apply; a value changed in a renamed object is reported there); the LI pod mounting main's key is
  confirmed, not compared;
- findings carry the catalog ids and the token they are about (the checklist reads those, not the text);
- the secrets file against the tree: named by id and location, never by value;
- the rule tables of docs/check.md are generated from the rules' metadata;
- Synapse's own parser on every homeserver config: a configured tree passes, a refusal is an error at the
  key Synapse names in Synapse's words with secrets masked, each config is judged once, in a private folder
  removed afterwards; without Synapse: one info line.
"""
from __future__ import annotations

import copy
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import treedrift
from helpers import FULL_ANSWERS, ROOT, TEMPLATES, write_answers
from oracles import unavailable
from wizard import app
from wizard.answers import load_answers
from wizard.check import run_check
from wizard.locate.resolve import Tree
from wizard.store import load_store

# broken files (not YAML; a duplicate key), an ambiguity, LI mounting main's key (directly; through an init
# container), objects renamed (labels added; an unrelated name found by its keys), moved, split and merged
DRIFT_SEEDS = (1, 2, 7)
CATALOG_VALUE_RULES = {"equality-group", "li-signing-key", "li-server-name", "li-distinct-secret", "signing-key",
                       "secrets-file", "example-domain", "drift"}
INSTALL = "pip install 'matrix-deploy-wizard[synapse]'"
CATALOG_RULES = {"parse", "placeholder", "example-domain", "location", "equality-group", "li-signing-key",
                 "li-server-name", "li-distinct-secret", "signing-key", "li-allowlist", "drift", "secrets-file"}


def _apply(work: Path) -> None:
    result = app.apply(load_answers(work / "prod.yaml"))
    assert result.written is not None


def _check(work: Path, rules=None):
    answers = load_answers(work / "prod.yaml")
    return app.check(app.Where(answers, Path(answers.deployment)), rules=rules)


def _copy(work: Path, dest: Path) -> Path:
    shutil.copytree(work, dest, symlinks=True)  # copy2: the secrets file keeps its 0600
    return dest


def _secrets(work: Path) -> dict[str, str]:
    return dict(load_store(work / "prod.secrets.yaml").values)


# ---------------------------------------------------------------- the bundled tree, configured


@pytest.fixture(scope="module")
def configured(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("configured")
    shutil.copytree(TEMPLATES, work / "deployment")
    write_answers(work / "prod.yaml", FULL_ANSWERS)
    _apply(work)
    return work


@pytest.fixture(scope="module")
def configured_findings(configured) -> list:
    return _check(configured)


@pytest.fixture
def site(configured, tmp_path) -> Path:
    return _copy(configured, tmp_path / "site")


def test_configured_tree_has_no_error_and_no_warning(configured_findings):
    findings = configured_findings
    bad = [f.format() for f in findings if f.severity != "info"]
    assert bad == []
    # Sygnal's tokens while push is off: info, with the token they are about
    infos = [f for f in findings if f.rule == "placeholder"]
    assert infos and all(f.severity == "info" and f.token for f in infos)


def test_findings_carry_ids_and_token(site):
    secrets = _secrets(site)
    value = secrets["redis.password"]
    rel = "infrastructure/02-redis/redis-secret.yaml"
    p = site / "deployment" / rel
    text = p.read_text()
    assert text.count(value) == 1
    p.write_text(text.replace(value, "Tampered0value0not0stored"))
    findings = _check(site, rules=CATALOG_RULES)
    group = [f for f in findings if f.rule == "equality-group"]
    assert [f.ids for f in group] == [("redis.password",)]
    stored = [f for f in findings if f.rule == "secrets-file"]
    assert [f.ids for f in stored] == [("redis.password",)] and f"{rel}:" in stored[0].message
    assert stored[0].file == rel and stored[0].severity == "error"
    for f in findings:  # never a value, neither the stored one nor the one in the tree
        assert value not in f.format() and "Tampered0value0not0stored" not in f.format()
    as_json = stored[0].to_json()
    assert as_json["ids"] == ["redis.password"] and as_json["token"] is None
    json.dumps([f.to_json() for f in findings])

    p.write_text(text.replace(value, "CHANGEME_SECURE_REDIS_PASSWORD"))
    findings = _check(site, rules=CATALOG_RULES)
    left = [f for f in findings if f.rule == "placeholder" and f.severity == "error"]
    assert [(f.file, f.ids, f.token) for f in left] == [(rel, ("redis.password",), "CHANGEME_SECURE_REDIS_PASSWORD")]
    # a location still holding its placeholder is the placeholder rule's, not a broken group
    assert not [f for f in findings if f.rule in ("equality-group", "secrets-file")]


def test_unknown_token_is_an_error_with_its_token_and_no_id(site):
    rel = "values/metallb-values.yaml"
    p = site / "deployment" / rel
    text = p.read_text()
    p.write_text(text + "extra:\n  region: CHANGE_TO_YOUR_REGION\n")
    findings = [f for f in _check(site, rules={"placeholder"}) if f.rule == "placeholder" and f.severity == "error"]
    assert [(f.file, f.line, f.token, f.ids) for f in findings] == \
        [(rel, text.count("\n") + 2, "CHANGE_TO_YOUR_REGION", ())]
    assert "placeholders:" in findings[0].hint


def test_the_li_pods_own_copy_of_the_signing_key_differing_is_li_signing_key(site):
    key = _secrets(site)["synapse.signing_key"]
    p = site / "deployment/li-instance/01-synapse-li/deployment.yaml"
    other = key.split()[0] + " " + key.split()[1] + " " + "B" * 43
    p.write_text(p.read_text().replace(key, other))
    findings = _check(site, rules={"li-signing-key", "equality-group"})
    assert [(f.rule, f.ids) for f in findings] == [("li-signing-key", ("synapse.signing_key",))]
    assert "li-instance/01-synapse-li/deployment.yaml:" in findings[0].message
    assert key not in findings[0].format() and other not in findings[0].format()


# ---------------------------------------------------------------- drifted trees


@pytest.fixture(scope="module")
def drifted(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("drift")
    out = {}
    for seed in DRIFT_SEEDS:
        work = root / f"seed-{seed}"
        work.mkdir()
        report = treedrift.make_drift_tree(TEMPLATES, work / "deployment", seed)
        answers = copy.deepcopy(FULL_ANSWERS)
        if report["placeholders"]:
            answers["placeholders"] = copy.deepcopy(report["placeholders"])
        write_answers(work / "prod.yaml", answers)
        saved = {k: os.environ.get(k) for k in report["env"]}
        os.environ.update(report["env"])
        try:
            _apply(work)
            findings = _check(work)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        out[seed] = (work, report, findings)
    return out


@pytest.fixture(params=DRIFT_SEEDS, ids=lambda s: f"seed-{s}")
def drift(request, drifted):
    return drifted[request.param]


def test_drifted_tree_each_broken_file_is_one_parse_finding(drift):
    work, report, findings = drift
    parse = sorted(f.file for f in findings if f.rule == "parse")
    assert parse == sorted(report["broken_files"])
    for rel in report["broken_files"]:
        about = [f.format() for f in findings if f.file == rel]
        assert len(about) == 1, about


def _defined_names(text: str) -> set[str]:
    return set(re.findall(r"(?m)^[ \t-]*name:[ \t]*[\"']?([A-Za-z0-9][A-Za-z0-9._-]*)", text))


def test_drifted_tree_after_apply_has_only_the_expected_errors(drift):
    work, report, findings = drift
    errors = [f for f in findings if f.severity == "error"]
    held = set(report["held_back"])
    expected_tokens = {(e["file"], e["token"]) for e in report["expected_leftovers"]
                       if e["kind"] in ("unknown-token", "token-conflict")}
    broken_names = set()
    for rel in report["broken_files"]:
        broken_names |= _defined_names((work / "deployment" / rel).read_text())
    for f in errors:
        assert f.rule not in CATALOG_VALUE_RULES, f.format()
        if f.rule == "placeholder":
            assert (f.ids and set(f.ids) <= held) or (f.file, f.token) in expected_tokens, f.format()
        elif f.rule == "service-reference":  # a Service the drift removed with its component, never a cascade
            assert not any(re.search(rf"\b{re.escape(n)}\b", f.message) for n in broken_names), f.format()
        else:
            assert f.rule in ("parse", "location"), f.format()
    locations = [f for f in errors if f.rule == "location"]
    assert len(locations) == len(report["ambiguous"])
    for f in locations:
        assert "locations:" in f.hint and f.ids
    unknown = [f for f in errors if f.rule == "placeholder" and not f.ids]
    assert sorted((f.file, f.token) for f in unknown) == sorted(
        (e["file"], e["token"]) for e in report["expected_leftovers"] if e["kind"] == "unknown-token")


def test_drifted_tree_li_mount_is_confirmed_not_compared(drifted):
    for seed in DRIFT_SEEDS:
        _, report, findings = drifted[seed]
        li = [f for f in findings if f.rule == "li-signing-key"]
        if report["li_signing_key"] == "copy":
            assert li == []
        else:
            assert [(f.severity, f.ids) for f in li] == [("info", ("synapse.signing_key",))], seed
            assert "by construction" in li[0].message


@pytest.mark.parametrize("seed, obj", [(7, "Secret/matrix-redis-password"), (2, "Secret/li-replication-env")])
def test_a_value_changed_in_a_renamed_object_is_reported_where_it_is(drifted, tmp_path, monkeypatch, seed, obj):
    work, report, _ = drifted[seed]
    site = _copy(work, tmp_path / "site")
    now = next(v for v in report["layout"]["objects"].values() if v and v.endswith(obj))
    rel = now.split(" › ")[0]
    p = site / "deployment" / rel
    text = p.read_text()
    secrets = _secrets(site)
    cid = next(c for c, v in secrets.items() if len(v) > 8 and text.count(v) == 1 and "\n" not in v
               and text.index(v) > text.index(obj.split("/")[1]))
    p.write_text(text.replace(secrets[cid], "Tampered0value0not0stored"))
    for k, v in report["env"].items():
        monkeypatch.setenv(k, v)
    findings = _check(site, rules=CATALOG_RULES)
    group = [f for f in findings if f.rule == "equality-group"]
    assert [f.ids for f in group] == [(cid,)] and rel in f"{group[0].file} {group[0].message}"
    stored = [f for f in findings if f.rule == "secrets-file"]
    assert [(f.file, f.ids) for f in stored] == [(rel, (cid,))]
    assert all(secrets[cid] not in f.format() for f in findings)


def test_li_allowlist_is_judged_on_each_ingress_wherever_it_is(drifted, tmp_path, monkeypatch):
    work, report, _ = drifted[2]
    for k, v in report["env"].items():
        monkeypatch.setenv(k, v)
    site = _copy(work, tmp_path / "site")
    li = {"Ingress/synapse-li", "Ingress/element-web-li", "Ingress/synapse-admin-li"}
    now = {k: v for k, v in report["layout"]["objects"].items() if k.split(" › ")[1] in li}
    assert len(now) == 3 and all(now.values()) and any(k != v for k, v in now.items())
    moved = list(now.values())
    files = sorted({m.split(" › ")[0] for m in moved})
    for rel in files:
        p = site / "deployment" / rel
        p.write_text("\n".join(ln for ln in p.read_text().split("\n") if "whitelist-source-range" not in ln))
    findings = [f for f in _check(site, rules={"li-allowlist"}) if f.rule == "li-allowlist"]
    assert sorted(f.file for f in findings) == sorted(m.split(" › ")[0] for m in moved)
    assert all(f.severity == "warning" and "reachable from any address" in f.message for f in findings)


# ---------------------------------------------------------------- the rules' metadata and docs/check.md


def test_docs_rule_tables_are_generated_from_the_metadata():
    from wizard.rules import docs_table
    from wizard.rules.docs import BEGIN, END, render

    committed = (ROOT / "docs" / "check.md").read_text()
    assert BEGIN in committed and END in committed
    assert render(committed, docs_table()) == committed, \
        "docs/check.md is stale: run python -m wizard.rules.docs"


def test_every_rule_has_its_metadata_and_every_finding_names_one(configured_findings, drifted):
    from wizard.rules import all_rules, rule_by_id

    rules = all_rules()
    assert len({r.id for r in rules}) == len(rules)
    for r in rules:
        assert r.id and r.severity in ("error", "warning", "info") and r.catches and r.fix, r
        assert (r.run is None) == (r.kind == "catalog"), r.id
    seen = {f.rule for f in configured_findings}
    for _, _, findings in drifted.values():
        seen |= {f.rule for f in findings}
    for rule in seen:
        assert rule_by_id(rule) is not None, rule
    f = next(f for f in configured_findings if f.rule == "placeholder")
    assert f.spec.id == "placeholder" and f.spec.fix


# ---------------------------------------------------------------- Synapse's own parser


@pytest.fixture
def synapse_parser():
    try:
        import synapse.config.homeserver  # noqa: F401
    except ImportError:
        unavailable("matrix-synapse is not installed (the test extra installs it)")


@pytest.mark.e2e
def test_synapse_accepts_the_configured_tree_judging_each_config_once(configured, monkeypatch, synapse_parser):
    from synapse.config.homeserver import HomeServerConfig

    calls = []
    real = HomeServerConfig.load_config.__func__

    def counting(cls, description, argv):
        path = Path(argv[-1])
        calls.append(path)
        # secrets only in 0600 files inside a private folder
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o700
        for name in ("signing.key", "log.yaml"):
            assert stat.S_IMODE((path.parent / name).stat().st_mode) == 0o600
        return real(cls, description, argv)

    monkeypatch.setattr(HomeServerConfig, "load_config", classmethod(counting))
    findings = _check(configured, rules={"synapse-config"})
    assert [f.format() for f in findings] == []
    # main embedded (the five workers render it the same way: once), its plain copy, LI embedded, LI plain
    assert len(calls) == 4
    assert not any(p.exists() or p.parent.parent.exists() for p in calls), "the temporary folder is removed"


def _embedded_hs(site: Path) -> Path:
    return site / "deployment/main-instance/01-synapse/configmap.yaml"


@pytest.mark.e2e
def test_synapse_refusal_is_an_error_at_the_key_in_synapses_words(site, synapse_parser):
    p = _embedded_hs(site)
    text = p.read_text()
    old = "      events:\n        - event-persister\n"
    assert text.count(old) == 1
    p.write_text(text.replace(old, old + "      typing:\n        - synchrotron\n        - generic-worker\n"))
    line = p.read_text().split("\n").index("      typing:") + 1
    findings = _check(site, rules={"synapse-config"})
    assert [(f.file, f.line, f.severity) for f in findings] == \
        [("main-instance/01-synapse/configmap.yaml", line, "error")]
    assert "Must only specify one instance to handle `typing` messages" in findings[0].message
    out = "\n".join(f.format() for f in findings)
    for value in _secrets(site).values():
        assert value not in out


@pytest.mark.e2e
def test_secret_values_are_masked_in_synapses_words(site, synapse_parser):
    p = _embedded_hs(site)
    text = p.read_text()
    assert "    server_name:" in text
    p.write_text(text.replace("    server_name:", "    ip_range_blacklist: ['${REDIS_PASSWORD}']\n    server_name:", 1))
    findings = _check(site, rules={"synapse-config"})
    assert len(findings) == 1 and findings[0].severity == "error"
    value = _secrets(site)["redis.password"]
    assert value not in findings[0].format()
    assert "•••• (redis.password)" in findings[0].message


def test_configs_holding_placeholders_are_one_info_line(synapse_parser):
    findings = run_check(Tree(TEMPLATES), rules={"synapse-config"})
    assert [(f.rule, f.severity) for f in findings if f.rule == "synapse-config"] == [("synapse-config", "info")]
    assert "placeholders" in findings[0].message


def test_without_synapse_one_info_line(configured, monkeypatch):
    monkeypatch.setitem(sys.modules, "synapse", None)  # `import synapse` now fails as when it is not installed
    findings = _check(configured, rules={"synapse-config"})
    assert [(f.rule, f.severity) for f in findings] == [("synapse-config", "info")]
    assert INSTALL in findings[0].hint and "not installed" in findings[0].message


_BLOCK_SYNAPSE = """\
import sys

class _NoSynapse:
    def find_spec(self, name, path=None, target=None):
        if name == "synapse" or name.startswith("synapse."):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None

sys.meta_path.insert(0, _NoSynapse())
"""


@pytest.mark.e2e
def test_without_synapse_installed_the_cli_says_how_to_enable_it(configured, tmp_path):
    site = tmp_path / "sitecustomize"
    site.mkdir()
    (site / "sitecustomize.py").write_text(_BLOCK_SYNAPSE)
    env = {"PYTHONPATH": os.pathsep.join([str(site), str(ROOT)] + ([os.environ["PYTHONPATH"]]
                                                                   if os.environ.get("PYTHONPATH") else [])),
           "NO_COLOR": "1"}
    # a new interpreter (not the suite's fork server, which has imported everything already)
    proc = subprocess.run([sys.executable, "-m", "wizard", "check", "--answers", str(configured / "prod.yaml"),
                           "--json", "--rule", "synapse-config"], env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    findings = json.loads(proc.stdout)["findings"]
    assert [(f["rule"], f["severity"]) for f in findings] == [("synapse-config", "info")]
    assert INSTALL in findings[0]["hint"]
    blocked = subprocess.run([sys.executable, "-c", "import synapse"], env={**os.environ, **env},
                             capture_output=True, text=True)
    assert blocked.returncode != 0  # the block works: the test has teeth
