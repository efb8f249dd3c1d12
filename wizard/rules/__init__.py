"""The rules of `wizard check`: each has an id, a severity, what it catches and how to fix it.

The catalog rules (placeholders, equality groups, LI rules, drift) run in wizard.check; the tree
rules here read a TreeModel (the tree parsed once) and yield Findings. docs/check.md describes
every rule; `wizard check --rule ID` / `--skip-rule ID` select them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from wizard.errors import WizardError
from wizard.rules.finding import ERROR, INFO, WARNING, Finding


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str  # the most severe finding it reports
    catches: str
    fix: str
    run: Callable | None = None  # (TreeModel, RunContext) -> Iterable[Finding]; None: a catalog rule


@dataclass(frozen=True)
class RunContext:
    answers: object = None
    store: object = None
    allow_domains: tuple[str, ...] = ()


def _tree_rules() -> tuple[Rule, ...]:
    from wizard.rules import domains, layout, objects, schema, services

    return (
        Rule("duplicate-object", ERROR, "the same (API group, kind, namespace, name) defined twice in the tree",
             "keep one definition", objects.duplicate_object),
        Rule("schema", ERROR, "an object of a core kind that Kubernetes 1.30's strict schema refuses "
             "(unknown field, wrong type, missing required field, unknown apiVersion); custom resources "
             "are listed as not schema-checked (info)", "fix the field; kubectl explain KIND.FIELD", schema.schema),
        Rule("service-reference", ERROR, "an in-cluster host (NAME.NAMESPACE.svc[.cluster.local], or a "
             "short http://NAME:PORT) that names no Service of the tree or of a declared operator; a short "
             "name of an existing Service is a warning", "use an existing Service by its FQDN",
             services.service_reference),
        Rule("object-reference", ERROR, "a secretKeyRef, configMapKeyRef, envFrom or secret/configMap volume "
             "naming a Secret/ConfigMap (or key) that nothing defines or creates",
             "fix the name or key, or add the object", objects.object_reference),
        Rule("synapse-replication-listener", ERROR, "a homeserver config with workers whose replication "
             "listener binds only to loopback, or whose instance_map does not lead to a Service",
             "bind_addresses: ['0.0.0.0']; instance_map hosts are Service FQDNs",
             services.synapse_replication_listener),
        Rule("pdb-coverage", WARNING, "a Deployment/StatefulSet with replicas >= 2 (or an HPA minReplicas >= 2) "
             "that no PodDisruptionBudget selects", "add a PodDisruptionBudget", objects.pdb_coverage),
        Rule("empty-directory", WARNING, "a directory of the tree without any file",
             "add its manifests or delete it", layout.empty_directory),
        Rule("stray-domain", WARNING, "a public domain in a host, URL or domain value that is not configured "
             "(answers), not example.com/.org/.net and not a known public service",
             "use your domain, or --allow-domain", domains.stray_domain),
    )


CATALOG_RULES: tuple[Rule, ...] = (
    Rule("parse", ERROR, "a file, or an embedded YAML/JSON file, that does not parse (duplicate keys included)",
         "fix the syntax at FILE:LINE"),
    Rule("placeholder", ERROR, "a CHANGEME/CHANGE_TO_ token left in a value (info in a disabled component)",
         "run wizard --answers FILE"),
    Rule("example-domain", ERROR, "example.com in a value", "set the real domain in the answers"),
    Rule("equality-group", ERROR, "a secret whose locations disagree", "write the right value into the secrets "
         "file and run wizard --answers FILE"),
    Rule("li-signing-key", ERROR, "main and LI signing keys differ", "as equality-group"),
    Rule("li-server-name", ERROR, "main and LI server_name differ", "as equality-group"),
    Rule("li-distinct-secret", ERROR, "an LI secret equal to main's", "wizard rotate ID"),
    Rule("signing-key", ERROR, "a signing key that is not usable", "wizard rotate synapse.signing_key"),
    Rule("li-allowlist", WARNING, "an LI ingress reachable from any address", "set li.allowed_cidrs"),
    Rule("drift", WARNING, "a catalog value that differs from the answers", "run wizard --answers FILE"),
    Rule("secrets-file", ERROR, "a secret in the tree that differs from the secrets file (named by id and "
         "locations, never by value)", "run wizard --answers FILE"),
)

ALWAYS_ON = {"parse"}  # a file that does not parse hides everything else in it


def all_rules() -> tuple[Rule, ...]:
    return CATALOG_RULES + _tree_rules()


def rule_ids() -> list[str]:
    return [r.id for r in all_rules()]


def select(only: Iterable[str] | None = None, skip: Iterable[str] = ()) -> set[str]:
    """The rule ids to run. Ids may be given comma-separated; an unknown id is bad input."""
    known = rule_ids()

    def split(values) -> list[str]:
        return [v.strip() for value in values or () for v in str(value).split(",") if v.strip()]

    only_ids, skip_ids = split(only), split(skip)
    unknown = [i for i in only_ids + skip_ids if i not in known]
    if unknown:
        raise WizardError(f"unknown rule {', '.join(unknown)}", hint="rules: " + ", ".join(known))
    chosen = set(only_ids) if only_ids else set(known)
    return (chosen - set(skip_ids)) | ALWAYS_ON


__all__ = ["ERROR", "WARNING", "INFO", "Finding", "Rule", "RunContext", "all_rules", "rule_ids", "select"]
