"""The rules of `wizard check` as data: each has an id, a severity, what it catches, how to fix it, and (a tree
rule) the function that runs it, named as "module:function" of wizard.rules so that this table imports none of
them. The rule tables of docs/check.md are generated from it (wizard.rules.docs); `--rule`/`--skip-rule` select
by it; a finding's `spec` is its rule's entry here."""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Iterable

from wizard.errors import WizardError

ERROR, WARNING, INFO = "error", "warning", "info"
SEVERITY_ORDER = {ERROR: 0, WARNING: 1, INFO: 2}

TREE, CATALOG = "tree", "catalog"


@dataclass(frozen=True)
class Also:
    """Findings of another severity a rule reports, with their own words."""

    severity: str
    catches: str
    fix: str = "—"


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str  # the most severe finding it reports
    catches: str
    fix: str
    run: str | None = None  # "module:function" of wizard.rules, (TreeModel, RunContext) -> findings; None: a catalog
    #                         rule (wizard.check)
    kind: str = TREE
    also: tuple[Also, ...] = ()  # findings of other severities
    section: str = ""  # the checklist section its findings about no catalog id belong to ("": final validation)


@dataclass(frozen=True)
class RunContext:
    answers: object = None
    store: object = None
    allow_domains: tuple[str, ...] = ()
    survey: object = None  # wizard.survey.Survey of the tree (run)
    secrets: dict | None = None  # secret value -> id: masked wherever a rule quotes a tool's words


TREE_RULES: tuple[Rule, ...] = (
    Rule("duplicate-object", ERROR,
         "the same (API group, kind, namespace, name) defined twice anywhere in the tree, e.g. a NetworkPolicy "
         "in two files. Reported at every definition after the first, naming the first: whichever `kubectl "
         "apply` sees last silently replaces the other",
         "keep one definition; delete or rename the other", "objects:duplicate_object"),
    Rule("schema", ERROR,
         "an object of a core kind (`v1`, `apps/v1`, `*.k8s.io`, …) that Kubernetes 1.30's **strict** schema "
         "(kubernetes-validate) refuses: an unknown field (a ConfigMap with `spec:` instead of `data:`, a key "
         "indented one level too deep), a wrong type, a missing required field, an apiVersion/kind Kubernetes "
         "1.30 does not serve; a document with only one of `apiVersion`/`kind` and a `metadata:`. Reported at "
         "the offending key",
         "fix the field name, indentation or value; `kubectl explain KIND.PATH` shows what is allowed",
         "schema:schema",
         also=(Also(INFO, "one line per custom-resource kind (CloudNativePG `Cluster`, MinIO `Tenant`, "
                          "cert-manager `ClusterIssuer`/`Certificate`, Prometheus `ServiceMonitor`, …): **not "
                          "schema-checked** — kubernetes-validate has no schema for them",
                    "`kubectl apply --dry-run=server` with the operator's CRDs installed validates them"),)),
    Rule("service-reference", ERROR,
         "an in-cluster host in any value or embedded config — `NAME.NAMESPACE.svc[.cluster.local]` (a pod of "
         "a headless Service may come first), or a bare `scheme://NAME:PORT` URL — that names no Service of the "
         "tree and none a declared operator creates (CloudNativePG `Cluster` X: `X-rw`, `X-ro`, `X-r`; MinIO "
         "`Tenant` X: `minio`, `X-hl`, `X-console`). A \"did you mean\" names the closest Service. A name that a "
         "file which does not parse may define is not reported (that file's `parse` finding says it)",
         "point it at an existing Service by its FQDN, or add the Service", "services:service_reference",
         also=(Also(WARNING, "a bare `http://NAME:PORT` naming an existing Service by its short name: it "
                             "resolves only from pods of the same namespace (not from other namespaces, not "
                             "from Helm-installed components elsewhere)",
                    "use the FQDN `NAME.NAMESPACE.svc.cluster.local` (the hint spells it)"),
               Also(INFO, "an FQDN in a namespace where the tree defines no Service (e.g. `…monitoring.svc`, "
                          "installed by a Helm chart): not checked"))),
    Rule("object-reference", ERROR,
         "a `secretKeyRef`, `configMapKeyRef`, `envFrom` `secretRef`/`configMapRef`, or a volume (`secret`, "
         "`configMap`, `projected` sources) naming a Secret/ConfigMap the tree does not define — or a key "
         "(`key:`, `items[].key`) the object does not have. Known creators count: cert-manager writes the TLS "
         "Secrets named by an Ingress `spec.tls[].secretName` or a Certificate `spec.secretName` (`tls.crt`, "
         "`tls.key`, `ca.crt`); CloudNativePG writes `<cluster>-app` and `<cluster>-superuser`. References "
         "marked `optional: true` are skipped, and so are names a file that does not parse may define",
         "fix the name or key, add the object (or key), or mark the reference optional",
         "objects:object_reference"),
    Rule("synapse-replication-listener", ERROR,
         "in a homeserver config (plain or embedded; a mapping with `server_name` and `listeners`/"
         "`instance_map`) that has workers — an `instance_map`, or worker Deployments/StatefulSets mounting its "
         "ConfigMap — a `replication` listener bound only to loopback (`127.0.0.1`, `::1`, `localhost`) while "
         "the workers connect over the network; `instance_map.main` with no replication listener, or on another "
         "port; an `instance_map` host that is loopback, or a short name that is no Service of the tree, or a "
         "name outside the cluster (FQDN `…svc` hosts are checked by `service-reference`)",
         "`bind_addresses: ['0.0.0.0']` (or `['::']`) on the replication listener; `instance_map` hosts are "
         "Service FQDNs on the listener's port", "services:synapse_replication_listener"),
    Rule("synapse-config", ERROR,
         "a homeserver config (embedded in a ConfigMap or a plain file, wherever it is) that Synapse's own "
         "config parser refuses, in Synapse's words (secret values masked), at that config's FILE:LINE — e.g. "
         "two instances named for a stream Synapse allows one writer for. Each config is rendered as its pod "
         "renders it (`${VAR}` from the Secret the pod loads) and prepared as CATALOG.md says "
         "(`signing_key_path`, `log_config`, `media_store_path`, `pid_file` pointed at temporary files; "
         "`modules` and `media_storage_providers` dropped), in a private temporary folder removed afterwards; "
         "a config rendered by several pods the same way is judged once",
         "fix the config where Synapse says", "synapse_parser:synapse_config",
         also=(Also(INFO, "the parser is not installed (one line: `pip install 'matrix-deploy-wizard[synapse]'` "
                          "enables it), or homeserver configs still hold placeholders and were not judged (one "
                          "line for all of them: configure the tree first)",
                    "`pip install 'matrix-deploy-wizard[synapse]'`; `wizard --answers FILE`"),)),
    Rule("pdb-coverage", WARNING,
         "a Deployment or StatefulSet with `replicas >= 2`, or an HPA targeting it with `minReplicas >= 2`, "
         "whose pods no PodDisruptionBudget of its namespace selects (matchLabels and matchExpressions are "
         "evaluated against the pod template's labels): a node drain may evict every replica at once",
         "add a `policy/v1` PodDisruptionBudget (`minAvailable: 1`) whose selector matches the pod labels",
         "objects:pdb_coverage"),
    Rule("empty-directory", WARNING,
         "a directory with no file in it (only `.gitkeep`/`.keep` counts as empty; reported once, at the "
         "top-most empty directory): a component that should be there is missing, and `kubectl apply -f DIR` "
         "fails on it", "add the manifests that belong there, or delete the directory", "layout:empty_directory"),
    Rule("stray-domain", WARNING,
         "a public domain in a host, URL or domain value — URLs (`https://…`, `wss://…`, `turn:`…), values of "
         "keys such as `host`, `hosts`, `hostname`, `domain`, `dnsNames`, `server_name`, `*_host`, "
         "`ALLOWED_HOSTS`, env entries named `…_HOST`, and `host=`/`realm=`/`Host:\\ ` lines of embedded text — "
         "that is none of: a configured domain (the answers' `server_name`, `domains.*`, the SMTP host) or a "
         "name in the zone of one (`*.example.org` for `matrix.example.org`); `example.com`/`example.org`/"
         "`example.net`; an allow-listed public service. Without an answers file only the example domains and "
         "the allowlist are known. In-cluster names (`.svc`, `.cluster.local`, `.local`, `.internal`, …) and IP "
         "addresses are never stray. At a catalog location (e.g. `values/livekit-values.yaml` `livekit.domain`) "
         "the finding also says what the answers want (and replaces the `drift` warning for that line)",
         "put your domain there (for a catalog location: `wizard --answers FILE` rewrites it); for a public "
         "service you use: `--allow-domain DOMAIN`", "domains:stray_domain"),
)


CATALOG_RULES: tuple[Rule, ...] = (
    Rule("parse", ERROR,
         "a manifest that is not valid YAML/JSON (duplicate keys included), or an embedded YAML/JSON config "
         "(ConfigMap `data` / Secret `stringData` entry named `*.yaml`/`*.yml`/`*.json`) that does not parse. One "
         "finding per file, never a cascade about the objects it would have defined; always reported, whatever "
         "`--rule` says: the other rules cannot read a broken file", "fix the syntax at FILE:LINE", kind=CATALOG),
    Rule("placeholder", ERROR,
         "a `CHANGEME…`/`CHANGE_TO_…` token left in a manifest value of an enabled component, at a catalog location "
         "or anywhere else (a token of CATALOG §2 stands for its id; one given in the answers' `placeholders:` is "
         "still unset in the tree), or an empty value marked by a `# CHANGE_TO_…` comment; an unknown token that "
         "the answers' `placeholders:` does not give; a token that stands for two ids outside its catalog "
         "locations. Shell scripts, docs and comments are never reported",
         "`wizard --answers FILE`; an unknown token: give it in the answers' `placeholders:`", kind=CATALOG,
         also=(Also(INFO, "a token left in a disabled component (Sygnal while `push.enabled` is false)",
                    "turn the component on in the answers to configure it"),)),
    Rule("example-domain", ERROR, "`example.com` (or a name under it) in a manifest value",
         "set the real domains in the answers", kind=CATALOG, section="domains"),
    Rule("location", ERROR,
         "a catalog object or key that cannot be placed in this tree: two candidates at the best rank of the "
         "search by meaning (never guessed), or not found at all (one finding per catalog address; a component "
         "absent from the tree is not one)",
         "say which in the answers file's `locations:` (`\"FILE › Kind/name\": \"FILE › Kind/name\"`), or add "
         "the object or key", kind=CATALOG),
    Rule("equality-group", ERROR,
         "a secret (or the S3 access key) whose locations (CATALOG §3, wherever they are in this tree, and the "
         "ones its token was placed at) hold different values; one finding per id, at its first location, naming "
         "the others — never a value. A location still holding its placeholder is the `placeholder` rule's",
         "write the right value into the secrets file, then `wizard --answers FILE`", kind=CATALOG),
    Rule("li-signing-key", ERROR,
         "main and LI signing keys differ (CATALOG rule 1)",
         "write the right key into the secrets file, then `wizard --answers FILE`", kind=CATALOG,
         also=(Also(INFO, "the LI pod mounts main's signing key (directly or through an init container that copies "
                          "it): one location, nothing to compare — the rule holds by construction, and check says "
                          "so"),)),
    Rule("li-server-name", ERROR, "main and LI `server_name` differ (rule 2), or any two of its locations do",
         "as `equality-group`", kind=CATALOG),
    Rule("li-distinct-secret", ERROR, "an LI macaroon/registration/form secret equal to main's",
         "`wizard rotate ID`", kind=CATALOG),
    Rule("signing-key", ERROR,
         "a signing key that is not a usable ed25519 key line, has a degenerate seed (a repeated or counting byte "
         "pattern), or is on the deny-list (bundled `wizard/denied_signing_keys.txt`, "
         "`~/.config/wizard/denied_signing_keys.txt`, or the file named by `WIZARD_SIGNING_KEY_DENYLIST`); an "
         "`old_signing_keys` entry (in every homeserver config, wherever it is) whose id is not `ed25519:<id>`, "
         "that is not a 32-byte public key, or that holds private material (a key-file line, the current key's "
         "seed)", "`wizard rotate synapse.signing_key --revoke`; fix the `old_signing_keys` entry", kind=CATALOG,
         section="signing_keys"),
    Rule("li-allowlist", WARNING,
         "an LI ingress (each of the three, wherever it is now) with no IP allowlist, or one that lets every IPv4 "
         "or every IPv6 address in: `0.0.0.0/0`, `::/0`, or blocks that together cover a whole family "
         "(`0.0.0.0/1, 128.0.0.0/1`). The checklist item `li.allowlist` stays open the same way",
         "set (or narrow) `li.allowed_cidrs` in the answers", kind=CATALOG, section="li"),
    Rule("drift", WARNING,
         "with answers: a setting the answers give (server_name, domains, ACME e-mail, storage class, S3 access key, "
         "TLS Secret, TURN IP) whose value at one of its locations differs from the answers",
         "`wizard --answers FILE`", kind=CATALOG),
    Rule("secrets-file", ERROR,
         "with a secrets file: a secret whose value in the tree differs from the secrets file (a lost update, a "
         "hand edit, a rotation not finished), named by id and locations, never by value",
         "`wizard --answers FILE` (it writes the secrets file's value everywhere)", kind=CATALOG),
)

ALWAYS_ON = {"parse"}  # a file that does not parse hides everything else in it


def all_rules() -> tuple[Rule, ...]:
    return CATALOG_RULES + TREE_RULES


def rule_by_id(rule_id: str) -> Rule | None:
    return next((r for r in all_rules() if r.id == rule_id), None)


def rule_ids() -> list[str]:
    return [r.id for r in all_rules()]


def runner(rule: Rule):
    """The function that runs a tree rule."""
    module, _, name = rule.run.partition(":")
    return getattr(importlib.import_module(f"wizard.rules.{module}"), name)


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
