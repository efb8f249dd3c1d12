"""`wizard rotate`: new values for secrets, written everywhere they live, and what to restart."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from wizard import catalog as C
from wizard.errors import SecretsError, WizardError
from wizard.locate.resolve import Address, Tree, resolve

# Rotating these would make data already protected by them unreadable or unverifiable: only on request.
NOT_IN_ALL = ("synapse.signing_key", "key_vault.rsa_private_key")

# Manual steps Kubernetes cannot do (the role and cluster each password belongs to).
DB_ROLES = {
    "postgres.synapse_password": ("matrix-postgresql", "synapse"),
    "postgres.li_password": ("matrix-postgresql-li", "synapse"),
    "postgres.replication_password": ("matrix-postgresql", "replication_user"),
    "postgres.key_vault_password": ("matrix-postgresql", "key_vault"),
}
MANUAL = {
    "minio.root_password": [
        "MinIO reads the root password only at start: restart the tenant's pods one at a time "
        "(kubectl -n matrix rollout restart statefulset/minio-pool-0), waiting for each to be Ready, "
        "before the clients below",
    ],
    "minio.s3_secret_key": [
        "update the MinIO user first: mc admin user add <alias> \"$ACCESS_KEY\" "
        "\"$(wizard secrets show minio.s3_secret_key)\" (same access key, new secret), then restart the clients",
    ],
    "redis.password": ["restart Redis first (its init container writes the password into redis.conf), then Synapse"],
    "key_vault.rsa_private_key": [
        "recovery keys stored with the old RSA key can no longer be decrypted: re-encrypt them with the old key "
        "before rolling out, or accept their loss",
    ],
    "synapse.signing_key": [
        "remote servers fetch the new key from /_matrix/key/v2/server; the old verify key stays published "
        "under old_signing_keys",
    ],
    "li.admin_password": ["the LI admin UI asks for the new password at the next login"],
    "synapse.macaroon_secret": ["every access token issued by the main instance becomes invalid: users log in again"],
    "li.macaroon_secret": ["every access token issued by the LI instance becomes invalid"],
    "livekit.api_key": ["helm upgrade the LiveKit release with values/livekit-values.yaml"],
    "livekit.api_secret": ["helm upgrade the LiveKit release with values/livekit-values.yaml"],
    "grafana.admin_password": ["helm upgrade the kube-prometheus-stack release with values/prometheus-stack-values.yaml"],
}

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")


@dataclass
class RestartPlan:
    restarts: list[str] = field(default_factory=list)  # kubectl commands
    manual: list[str] = field(default_factory=list)
    objects: list[str] = field(default_factory=list)  # Secret/x, ConfigMap/y touched


def workload_refs(tree_root: Path) -> list[tuple[str, str, set[tuple[str, str]]]]:
    """(kind, name, {(Secret|ConfigMap, name)}) for every workload of the tree."""
    import yaml

    out = []
    for path in sorted(Path(tree_root).rglob("*.y*ml")):
        try:
            docs = list(yaml.safe_load_all(path.read_bytes().decode("utf-8-sig")))
        except (yaml.YAMLError, UnicodeDecodeError):
            continue
        for doc in docs:
            if not isinstance(doc, dict) or doc.get("kind") not in WORKLOAD_KINDS:
                continue
            spec = doc.get("spec") or {}
            if doc["kind"] == "CronJob":
                spec = ((spec.get("jobTemplate") or {}).get("spec") or {})
            pod = ((spec.get("template") or {}).get("spec") or {})
            refs: set[tuple[str, str]] = set()
            for c in (pod.get("containers") or []) + (pod.get("initContainers") or []):
                for ef in c.get("envFrom") or []:
                    if (ef.get("secretRef") or {}).get("name"):
                        refs.add(("Secret", ef["secretRef"]["name"]))
                    if (ef.get("configMapRef") or {}).get("name"):
                        refs.add(("ConfigMap", ef["configMapRef"]["name"]))
                for e in c.get("env") or []:
                    vf = e.get("valueFrom") or {}
                    if (vf.get("secretKeyRef") or {}).get("name"):
                        refs.add(("Secret", vf["secretKeyRef"]["name"]))
                    if (vf.get("configMapKeyRef") or {}).get("name"):
                        refs.add(("ConfigMap", vf["configMapKeyRef"]["name"]))
            for v in pod.get("volumes") or []:
                if (v.get("secret") or {}).get("secretName"):
                    refs.add(("Secret", v["secret"]["secretName"]))
                if (v.get("configMap") or {}).get("name"):
                    refs.add(("ConfigMap", v["configMap"]["name"]))
                for src in ((v.get("projected") or {}).get("sources") or []):
                    if (src.get("secret") or {}).get("name"):
                        refs.add(("Secret", src["secret"]["name"]))
                    if (src.get("configMap") or {}).get("name"):
                        refs.add(("ConfigMap", src["configMap"]["name"]))
            name = (doc.get("metadata") or {}).get("name", "?")
            out.append((doc["kind"], name, refs))
    return out


def restart_plan(tree_root: Path, ids: list[str], locations: dict[str, list[str]]) -> RestartPlan:
    plan = RestartPlan()
    objects: set[tuple[str, str]] = set()
    helm: set[str] = set()
    plain: set[str] = set()
    for cid in ids:
        for loc in locations.get(cid, []):
            addr = Address.parse(loc)
            if addr.obj:
                objects.add(addr.obj)
            elif addr.file.startswith("values/"):
                helm.add(addr.file)
            else:
                plain.add(addr.file)
    plan.objects = sorted(f"{k}/{n}" for k, n in objects)
    restarts = []
    order = {"StatefulSet": 0, "DaemonSet": 1, "Deployment": 2, "Job": 3, "CronJob": 4}
    for kind, name, refs in sorted(workload_refs(tree_root), key=lambda w: (order[w[0]], w[1])):
        if refs & objects:
            if kind in ("Job", "CronJob"):
                plan.manual.append(f"{kind}/{name} reads the new value on its next run"
                                   + (" (re-create the Job to run it now)" if kind == "Job" else ""))
            else:
                restarts.append(f"kubectl -n matrix rollout restart {kind.lower()}/{name}")
    # Redis and MinIO must come back before their clients.
    restarts.sort(key=lambda c: (0 if "/redis" in c or "/minio" in c else 1))
    plan.restarts = restarts
    for cid in ids:
        if cid in DB_ROLES:
            cluster, role = DB_ROLES[cid]
            plan.manual.append(
                f"{cid}: set the role's password on the database before restarting its clients: "
                f"kubectl -n matrix exec -i {cluster}-1 -- psql -U postgres -c "
                f"\"ALTER ROLE {role} WITH PASSWORD '$(wizard secrets show {cid})'\"")
        for note in MANUAL.get(cid, []):
            plan.manual.append(f"{cid}: {note}")
    for f in sorted(helm):
        plan.manual.append(f"{f}: helm upgrade the release that uses it (-f {f})")
    for f in sorted(plain):
        plan.manual.append(f"{f}: a plain copy no workload mounts; update wherever you use it")
    return plan


def split_groups(tree: Tree, store) -> tuple[list[str], list[str]]:
    """(unexplained, explained) ids whose locations disagree; explained = an interrupted rotation."""
    bad, explained = [], []
    for spec in C.SECRETS:
        if not spec.locations or spec.provided:
            continue
        values = []
        for loc in spec.locations:
            try:
                values.extend(sp.value for sp in resolve(tree, Address.parse(loc)).spans)
            except WizardError:
                continue
        distinct = {v for v in values if not C.has_token(v)}
        if len(distinct) <= 1:
            continue
        stored = store.values.get(spec.id)
        if spec.id in store.rotating and stored is not None and store.rotating[spec.id] in distinct \
                and len(distinct) == 2:
            explained.append(spec.id)
        else:
            bad.append(spec.id)
    return bad, explained


def select_ids(ns_ids: list[str], all_: bool, include_signing: bool, include_rsa: bool, store) -> list[str]:
    ids: list[str] = []
    if all_:
        ids = [i for i in C.ROTATABLE_IDS if i not in NOT_IN_ALL and i not in store.provided]
        if include_signing:
            ids.append("synapse.signing_key")
        if include_rsa:
            ids.append("key_vault.rsa_private_key")
    for cid in ns_ids:
        if cid == "li.admin_htpasswd":
            raise WizardError("li.admin_htpasswd is derived from li.admin_password: rotate li.admin_password")
        spec = C.SECRET_BY_ID.get(cid)
        if spec is None:
            raise WizardError(f"unknown secret id {cid!r}",
                              hint="rotatable: " + ", ".join(C.ROTATABLE_IDS))
        if spec.provided or cid in store.provided:
            raise SecretsError(f"{cid} is a value the operator provided; it is never rotated by the wizard",
                               hint="change it at its source and re-run wizard --answers")
        if cid not in ids:
            ids.append(cid)
    if not ids:
        raise WizardError("nothing to rotate: name ids or use --all", hint="wizard rotate --help")
    return ids


def rotation_locations(ids: list[str]) -> dict[str, list[str]]:
    """Every location a rotation of these ids rewrites (the htpasswd line for the LI admin password, the
    homeserver configs' old_signing_keys for the signing key)."""
    locations = {cid: list(C.SECRET_BY_ID[cid].locations) for cid in ids}
    if "li.admin_password" in ids:
        locations["li.admin_password"] = list(C.SECRET_BY_ID["li.admin_htpasswd"].locations)
    if "synapse.signing_key" in ids:
        locations["synapse.signing_key"] = locations["synapse.signing_key"] + [
            h[: -len(" › (yaml)")] if h.endswith("(yaml)") else h for h in C.HOMESERVERS]
    return locations
