"""Issue 7 acceptance: `wizard check` catches the deployment-blocking mistakes.

The bundled templates are configured with answers.example.yaml (the real CLI, as an operator
would). Each test copies that tree, injects one bug class by editing the text the way a person
would, runs `wizard check --json`, and asserts that exactly the expected rule newly fires, at
the file:line where the bug is. The clean configured tree has no error and no warning.
"""
from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from helpers import ROOT, run_wizard

pytestmark = pytest.mark.e2e  # check through the CLI on configured trees

TREE_RULES = ["duplicate-object", "schema", "service-reference", "object-reference", "synapse-replication-listener",
              "pdb-coverage", "empty-directory", "stray-domain"]
LINE_FORMAT = re.compile(r"^[^\s:][^:]*:\d+: (error|warning|info) [a-z][a-z-]*: .+$")


@pytest.fixture(scope="module")
def configured(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("check-rules")
    shutil.copy(ROOT / "answers.example.yaml", work / "answers.example.yaml")
    # the deployment folder does not exist: apply creates it from the bundled templates
    proc = run_wizard("--answers", "answers.example.yaml", "--deployment", "deployment", "--yes", cwd=work,
                      check=True)
    assert "bundled templates" in proc.stdout or (work / "deployment" / "namespace.yaml").exists()
    return work


def run_check(work: Path, *extra: str, env: dict | None = None):
    proc = run_wizard("check", "--answers", str(work / "answers.example.yaml"), "--deployment",
                      str(work / "deployment"), "--json", *extra, env=env)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


@pytest.fixture(scope="module")
def baseline(configured):
    code, data = run_check(configured)
    return code, data


@dataclass
class Site:
    work: Path
    baseline: list[dict]

    @property
    def tree(self) -> Path:
        return self.work / "deployment"

    def text(self, rel: str) -> str:
        return (self.tree / rel).read_text()

    def write(self, rel: str, text: str) -> None:
        (self.tree / rel).write_text(text)

    def replace_once(self, rel: str, old: str, new: str, start: int = 0) -> int:
        """Replace the first `old` at or after index `start`; return the 1-based line it was on."""
        text = self.text(rel)
        i = text.index(old, start)
        self.write(rel, text[:i] + new + text[i + len(old):])
        return text.count("\n", 0, i) + 1

    def new_findings(self, *extra: str) -> tuple[int, list[dict]]:
        code, data = run_check(self.work, *extra)
        before = [_key(f) for f in self.baseline]
        new = []
        for f in data["findings"]:
            k = _key(f)
            if k in before:
                before.remove(k)
            else:
                new.append(f)
        return code, new


def _key(f: dict) -> tuple:
    # lines of unrelated findings may shift when a bug adds or removes lines: compare without them
    return f["rule"], f["severity"], f["file"], f["message"]


@pytest.fixture
def site(configured, baseline, tmp_path) -> Site:
    dest = tmp_path / "site"
    shutil.copytree(configured, dest)  # copy2 keeps the secrets file's 0600
    return Site(dest, baseline[1]["findings"])


def _only(new: list[dict], rule: str, severity: str, file: str, line: int) -> dict:
    assert new, "no new finding"
    assert {f["rule"] for f in new} == {rule}, json.dumps(new, indent=1)
    hits = [f for f in new if f["file"] == file and f["line"] == line]
    assert hits, f"expected {file}:{line}, got " + ", ".join(f"{f['file']}:{f['line']}" for f in new)
    assert hits[0]["severity"] == severity, hits[0]
    assert hits[0]["hint"], "every finding carries a fix hint"
    return hits[0]


def _line(text: str, needle: str, last: bool = False) -> int:
    i = text.rindex(needle) if last else text.index(needle)
    return text.count("\n", 0, i) + 1


def _docs(text: str) -> list[str]:
    return re.split(r"(?m)^---[ \t]*\n", text)


# ------------------------------------------------------------------ the clean tree

def test_configured_templates_have_no_error_and_no_warning(baseline):
    code, data = baseline
    bad = [f for f in data["findings"] if f["severity"] in ("error", "warning")]
    assert bad == [] and code == 0, json.dumps(bad, indent=1)
    assert set(TREE_RULES) <= set(data["rules"])
    # custom resources are said to be unchecked, not passed silently
    infos = [f for f in data["findings"] if f["rule"] == "schema"]
    kinds = {re.match(r"(\w+) \(", f["message"]).group(1) for f in infos}
    assert {"Cluster", "Tenant", "ClusterIssuer", "Certificate", "ServiceMonitor"} <= kinds
    assert all(f["severity"] == "info" and "not schema-checked" in f["message"] for f in infos)


def test_text_output_is_one_line_per_finding(configured):
    proc = run_wizard("check", "--answers", str(configured / "answers.example.yaml"), "--deployment",
                      str(configured / "deployment"))
    lines = proc.stdout.strip().split("\n")
    assert lines[-1].startswith("0 errors, 0 warnings")
    assert lines[:-1] and all(LINE_FORMAT.match(x) for x in lines[:-1]), lines
    assert "\x1b[" not in proc.stdout


def test_terminal_colour_and_no_color(configured):
    args = ("check", "--answers", str(configured / "answers.example.yaml"), "--deployment",
            str(configured / "deployment"))
    coloured = run_wizard(*args, env={"NO_COLOR": "", "FORCE_COLOR": "1", "TERM": "xterm-256color"})
    assert "\x1b[" in coloured.stdout and "info (" in coloured.stdout
    plain = run_wizard(*args, env={"NO_COLOR": "1", "FORCE_COLOR": "1", "TERM": "xterm-256color"})
    assert "\x1b[" not in plain.stdout
    dumb = run_wizard(*args, env={"NO_COLOR": "", "FORCE_COLOR": "1", "TERM": "dumb"})  # a terminal without escapes
    assert "\x1b[" not in dumb.stdout and dumb.stdout.splitlines()[-1] == plain.stdout.splitlines()[-1]


# ------------------------------------------------------------------ one test per bug class

def test_duplicate_object(site):
    src, dest = "infrastructure/04-networking/networkpolicies.yaml", \
        "infrastructure/04-networking/sync-system-networkpolicy.yaml"
    doc = next(d for d in _docs(site.text(src)) if re.search(r"(?m)^kind: NetworkPolicy", d))
    name = yaml.safe_load(doc)["metadata"]["name"]
    text = site.text(dest)
    site.write(dest, text + ("" if text.endswith("\n") else "\n") + "---\n" + doc)
    code, new = site.new_findings()
    f = _only(new, "duplicate-object", "error", dest, _line(site.text(dest), f"name: {name}", last=True))
    assert src in f["message"] and f"NetworkPolicy/{name}" in f["message"]
    assert code == 1


def test_schema_configmap_with_spec_instead_of_data(site):
    rel = "monitoring/02-grafana/dashboards-configmap.yaml"
    line = site.replace_once(rel, "\ndata:\n", "\nspec:\n") + 1
    code, new = site.new_findings()
    f = _only(new, "schema", "error", rel, line)
    assert "unknown field spec" in f["message"] and code == 1


def test_synapse_replication_listener_on_loopback(site):
    rel = "main-instance/01-synapse/configmap.yaml"
    text = site.text(rel)
    at = text.rindex("bind_addresses: ['0.0.0.0']", 0, text.index("names: [replication]"))
    line = site.replace_once(rel, "bind_addresses: ['0.0.0.0']", "bind_addresses: ['127.0.0.1']", at)
    code, new = site.new_findings()
    f = _only(new, "synapse-replication-listener", "error", rel, line)
    assert "127.0.0.1" in f["message"] and code == 1


_IN_CLUSTER_URL = re.compile(r"http://([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local:(\d+)")


def test_service_reference_short_name_is_a_warning(site):
    rel = "antivirus/02-scan-workers/deployment.yaml"
    m = list(_IN_CLUSTER_URL.finditer(site.text(rel)))[-1]
    line = site.replace_once(rel, m.group(0), f"http://{m.group(1)}:{m.group(3)}", m.start())
    code, new = site.new_findings()
    f = _only(new, "service-reference", "warning", rel, line)
    assert f"{m.group(1)}.{m.group(2)}.svc.cluster.local" in f["hint"]
    assert code == 0


def test_service_reference_to_a_service_that_does_not_exist(site):
    rel = "antivirus/02-scan-workers/deployment.yaml"
    m = _IN_CLUSTER_URL.search(site.text(rel))
    line = site.replace_once(rel, m.group(0), m.group(0).replace(m.group(1), m.group(1) + "-svc", 1), m.start())
    code, new = site.new_findings()
    f = _only(new, "service-reference", "error", rel, line)
    assert f"{m.group(1)}-svc" in f["message"] and code == 1


def test_object_reference_to_a_missing_secret(site):
    rel = "main-instance/08-key-vault/deployment.yaml"
    text = site.text(rel)
    at = text.index("secretKeyRef:")
    name = re.compile(r"name: (\S+)").search(text, at).group(1)
    line = site.replace_once(rel, f"name: {name}", f"name: {name}-old", at)
    code, new = site.new_findings()
    f = _only(new, "object-reference", "error", rel, line)
    assert f"Secret/{name}-old" in f["message"] and code == 1


def test_object_reference_to_a_missing_key(site):
    rel = "main-instance/08-key-vault/deployment.yaml"
    text = site.text(rel)
    at = text.index("secretKeyRef:")
    key = re.compile(r"key: (\S+)").search(text, at).group(1)
    line = site.replace_once(rel, f"key: {key}", f"key: {key}_TYPO", at)
    code, new = site.new_findings()
    f = _only(new, "object-reference", "error", rel, line)
    assert f"{key}_TYPO" in f["message"] and code == 1


def test_pdb_coverage(site):
    rel = "main-instance/02-workers/synchrotron-deployment.yaml"
    docs = _docs(site.text(rel))
    kept = [d for d in docs if not re.search(r"(?m)^kind: PodDisruptionBudget", d)]
    assert len(kept) == len(docs) - 1
    site.write(rel, "---\n".join(kept))
    deployment = next(d for d in kept if re.search(r"(?m)^kind: Deployment", d))
    name = yaml.safe_load(deployment)["metadata"]["name"]
    code, new = site.new_findings()
    f = _only(new, "pdb-coverage", "warning", rel, _line(site.text(rel), f"name: {name}"))
    assert f"Deployment/{name}" in f["message"] and code == 0
    code, _ = site.new_findings("--strict")
    assert code == 1


def test_empty_directory(site):
    (site.tree / "main-instance" / "05-bridges" / "mautrix").mkdir(parents=True)
    (site.tree / "monitoring" / "03-alerts").mkdir()
    (site.tree / "monitoring" / "03-alerts" / ".gitkeep").write_text("")
    code, new = site.new_findings()
    assert sorted((f["file"], f["line"]) for f in new) == [("main-instance/05-bridges/", 0), ("monitoring/03-alerts/", 0)]
    _only(new, "empty-directory", "warning", "main-instance/05-bridges/", 0)


def test_stray_domain_in_livekit_domain(site):
    rel = "values/livekit-values.yaml"
    text = site.text(rel)
    current = yaml.safe_load(text)["livekit"]["domain"]
    line = site.replace_once(rel, f"domain: {current}", "domain: livekit.nordwind-chat.de")
    code, new = site.new_findings()
    f = _only(new, "stray-domain", "warning", rel, line)
    assert "livekit.nordwind-chat.de" in f["message"] and current in f["message"]  # what the answers say
    # a public service the operator vouches for is not stray (drift still says it is not the answers' value)
    code, new = site.new_findings("--allow-domain", "nordwind-chat.de")
    assert {f["rule"] for f in new} == {"drift"}


def test_stray_domain_in_an_embedded_config(site):
    rel = "main-instance/01-synapse/configmap.yaml"
    line = site.replace_once(rel, "server_name: \"matrix.org\"", "server_name: \"keys.nordwind-chat.de\"")
    code, new = site.new_findings()
    _only(new, "stray-domain", "warning", rel, line)


# ------------------------------------------------------------------ selecting rules

def test_rule_and_skip_rule(site):
    rel = "monitoring/02-grafana/dashboards-configmap.yaml"
    site.replace_once(rel, "\ndata:\n", "\nspec:\n")
    code, data = run_check(site.work, "--rule", "schema")
    assert {f["rule"] for f in data["findings"]} == {"schema"} and code == 1
    code, data = run_check(site.work, "--skip-rule", "schema,placeholder")
    assert not {f["rule"] for f in data["findings"]} & {"schema", "placeholder"} and code == 0
    proc = run_wizard("check", "--deployment", str(site.tree), "--rule", "no-such-rule")
    assert proc.returncode == 2 and "stray-domain" in proc.stderr


def test_parse_errors_are_reported_even_when_rules_are_selected(site):
    rel = "main-instance/02-element-web/deployment.yaml"
    text = site.text(rel)
    line = site.replace_once(rel, '"default_server_config": {', '"default_server_config": {{', )
    code, data = run_check(site.work, "--rule", "pdb-coverage")
    hits = [f for f in data["findings"] if f["rule"] == "parse"]
    assert hits and hits[0]["file"] == rel and hits[0]["line"] == line and code == 1
    assert text != site.text(rel)
