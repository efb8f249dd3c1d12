"""Objects and the objects they name: no duplicates, no dangling Secret/ConfigMap, PDBs for HA workloads."""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Iterator

from wizard.rules.finding import ERROR, WARNING, Finding
from wizard.rules.model import KubeObject, TreeModel, containers, dig, pod_spec, same_namespace

# Secrets created outside the tree by a known mechanism, for a resource declared in it.
# (API group, kind) -> [(name pattern, keys or None when the keys are the operator's business)]
OPERATOR_SECRETS: dict[tuple[str, str], tuple[tuple[str, tuple[str, ...] | None], ...]] = {
    ("postgresql.cnpg.io", "Cluster"): (("{name}-app", None), ("{name}-superuser", None)),
}
TLS_SECRET_KEYS = ("tls.crt", "tls.key", "ca.crt")  # what cert-manager writes


# ------------------------------------------------------------------ duplicate-object

def duplicate_object(model: TreeModel, ctx) -> Iterator[Finding]:
    first: dict[tuple[str, str, str, str], KubeObject] = {}
    for obj in model.objects:
        if not obj.name:
            continue
        key = (obj.group, obj.kind, obj.namespace, obj.name)
        seen = first.get(key)
        if seen is None:
            first[key] = obj
            continue
        where = f" in namespace {obj.namespace}" if obj.namespace else ""
        yield Finding(obj.file, obj.line(), ERROR, "duplicate-object",
                      f"{obj.ident}{where} is already defined at {seen.file}:{seen.line()}: "
                      f"whichever kubectl applies last silently replaces the other",
                      "keep one definition and delete or rename the other")


# ------------------------------------------------------------------ object-reference

@dataclass(frozen=True)
class Known:
    origin: str
    keys: frozenset[str] | None  # None: any key (made by an operator)


def object_index(model: TreeModel) -> dict[str, list[tuple[str, str, Known]]]:
    """kind ("Secret"/"ConfigMap") -> [(namespace, name, Known)]."""
    out: dict[str, list[tuple[str, str, Known]]] = {"Secret": [], "ConfigMap": []}
    for obj in model.objects:
        if obj.group == "" and obj.kind in ("Secret", "ConfigMap"):
            holders = ("data", "stringData") if obj.kind == "Secret" else ("data", "binaryData")
            keys = set()
            for h in holders:
                v = obj.data.get(h)
                if isinstance(v, dict):
                    keys.update(str(k) for k in v)
            out[obj.kind].append((obj.namespace, obj.name, Known(f"{obj.file}:{obj.line()}", frozenset(keys))))
        if obj.kind == "Ingress" and obj.group == "networking.k8s.io":
            for tls in dig(obj.data, ("spec", "tls")) or []:
                name = tls.get("secretName") if isinstance(tls, dict) else None
                if isinstance(name, str) and name:
                    out["Secret"].append((obj.namespace, name, Known(
                        f"the TLS Secret of {obj.ident} (cert-manager)", frozenset(TLS_SECRET_KEYS))))
        if obj.kind == "Certificate" and obj.group == "cert-manager.io":
            name = dig(obj.data, ("spec", "secretName"))
            if isinstance(name, str) and name:
                out["Secret"].append((obj.namespace, name, Known(f"written by {obj.ident} (cert-manager)",
                                                                 frozenset(TLS_SECRET_KEYS))))
        for pattern, keys in OPERATOR_SECRETS.get((obj.group, obj.kind), ()):
            out["Secret"].append((obj.namespace, pattern.format(name=obj.name),
                                  Known(f"created by {obj.ident}", frozenset(keys) if keys else None)))
    return out


@dataclass(frozen=True)
class Ref:
    kind: str  # "Secret" | "ConfigMap"
    name: str
    name_path: tuple
    what: str
    keys: tuple[tuple[str, tuple], ...] = ()  # (key, path of the key's node)
    optional: bool = False


def _refs(obj: KubeObject) -> Iterator[Ref]:
    for cpath, c in containers(obj):
        cname = c.get("name", "?")
        for i, env in enumerate(c.get("env") or []):
            if not isinstance(env, dict):
                continue
            for field, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
                ref = dig(env, ("valueFrom", field))
                if isinstance(ref, dict) and isinstance(ref.get("name"), str):
                    base = cpath + ("env", i, "valueFrom", field)
                    key = ref.get("key")
                    yield Ref(kind, ref["name"], base + ("name",),
                              f"env {env.get('name')} of container {cname}",
                              ((str(key), base + ("key",)),) if key is not None else (), bool(ref.get("optional")))
        for i, src in enumerate(c.get("envFrom") or []):
            if not isinstance(src, dict):
                continue
            for field, kind in (("secretRef", "Secret"), ("configMapRef", "ConfigMap")):
                ref = src.get(field)
                if isinstance(ref, dict) and isinstance(ref.get("name"), str):
                    yield Ref(kind, ref["name"], cpath + ("envFrom", i, field, "name"),
                              f"envFrom of container {cname}", (), bool(ref.get("optional")))
    ps = pod_spec(obj)
    if ps is None:
        return
    path, spec = ps
    for i, vol in enumerate(spec.get("volumes") or []):
        if not isinstance(vol, dict):
            continue
        vpath = path + ("volumes", i)
        what = f"volume {vol.get('name')}"
        sources = [(vol, vpath, ("secret", "secretName"), ("configMap", "name"))]
        for j, s in enumerate(dig(vol, ("projected", "sources")) or []):
            if isinstance(s, dict):
                sources.append((s, vpath + ("projected", "sources", j), ("secret", "name"), ("configMap", "name")))
        for holder, hpath, (sfield, sname), (cfield, cname) in sources:
            for field, namekey, kind in ((sfield, sname, "Secret"), (cfield, cname, "ConfigMap")):
                ref = holder.get(field)
                if not isinstance(ref, dict) or not isinstance(ref.get(namekey), str):
                    continue
                keys = tuple((str(item.get("key")), hpath + (field, "items", k, "key"))
                             for k, item in enumerate(ref.get("items") or [])
                             if isinstance(item, dict) and item.get("key") is not None)
                yield Ref(kind, ref[namekey], hpath + (field, namekey), what, keys, bool(ref.get("optional")))


def object_reference(model: TreeModel, ctx) -> Iterator[Finding]:
    index = object_index(model)
    for obj in model.objects:
        for ref in _refs(obj):
            if ref.optional:
                continue
            hits = [k for ns, name, k in index[ref.kind] if name == ref.name and same_namespace(ns, obj.namespace)]
            if not hits and model.maybe_defined(ref.name):
                continue  # defined, perhaps, in a file that does not parse (reported as such)
            if not hits:
                names = sorted({name for ns, name, _ in index[ref.kind] if same_namespace(ns, obj.namespace)})
                close = difflib.get_close_matches(ref.name, names, n=1, cutoff=0.6)
                where = f" in namespace {obj.namespace}" if obj.namespace else ""
                yield Finding(obj.file, obj.line(ref.name_path), ERROR, "object-reference",
                              f"{obj.ident} ({ref.what}) needs {ref.kind}/{ref.name}{where}, which the tree does not "
                              f"define and nothing it declares creates" + (f"; did you mean {close[0]}?" if close else ""),
                              f"fix the name, add the {ref.kind}, or mark the reference optional: true")
                continue
            if any(k.keys is None for k in hits):
                continue
            available = set().union(*(k.keys for k in hits))
            for key, kpath in ref.keys:
                if key not in available:
                    yield Finding(obj.file, obj.line(kpath), ERROR, "object-reference",
                                  f"{obj.ident} ({ref.what}) needs key {key} of {ref.kind}/{ref.name} "
                                  f"({hits[0].origin}), which has no such key "
                                  f"(it has: {', '.join(sorted(available)) or 'none'})",
                                  f"fix the key name or add the key to {ref.kind}/{ref.name}")


# ------------------------------------------------------------------ pdb-coverage

def selector_matches(selector, labels: dict) -> bool:
    """A Kubernetes label selector (matchLabels + matchExpressions) against a pod's labels."""
    if not isinstance(selector, dict):
        return False
    for k, v in (selector.get("matchLabels") or {}).items():
        if str(labels.get(k)) != str(v) or k not in labels:
            return False
    for expr in selector.get("matchExpressions") or []:
        if not isinstance(expr, dict):
            return False
        key, op, values = expr.get("key"), expr.get("operator"), [str(x) for x in expr.get("values") or []]
        if op == "In" and not (key in labels and str(labels[key]) in values):
            return False
        if op == "NotIn" and key in labels and str(labels[key]) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def pdb_coverage(model: TreeModel, ctx) -> Iterator[Finding]:
    pdbs = [o for o in model.of_kind("PodDisruptionBudget")]
    hpas = [o for o in model.of_kind("HorizontalPodAutoscaler")]
    for obj in model.of_kind("Deployment", "StatefulSet"):
        replicas = dig(obj.data, ("spec", "replicas"))
        replicas = replicas if isinstance(replicas, int) else 1
        hpa_min = 0
        for h in hpas:
            target = dig(h.data, ("spec", "scaleTargetRef")) or {}
            if isinstance(target, dict) and target.get("kind") == obj.kind and target.get("name") == obj.name \
                    and same_namespace(h.namespace, obj.namespace):
                m = dig(h.data, ("spec", "minReplicas"))
                hpa_min = max(hpa_min, m if isinstance(m, int) else 1)
        if replicas < 2 and hpa_min < 2:
            continue
        if model.broken_mentions("PodDisruptionBudget", obj.name):
            continue  # its budget may be in a file that does not parse (reported as such)
        labels = dig(obj.data, ("spec", "template", "metadata", "labels"))
        labels = labels if isinstance(labels, dict) else {}
        if any(same_namespace(p.namespace, obj.namespace) and selector_matches(dig(p.data, ("spec", "selector")), labels)
               for p in pdbs):
            continue
        why = f"{replicas} replicas" if replicas >= 2 else f"an HPA with minReplicas {hpa_min}"
        yield Finding(obj.file, obj.line(), WARNING, "pdb-coverage",
                      f"{obj.ident} runs {why} but no PodDisruptionBudget selects its pods: a node drain may "
                      f"evict all of them at once",
                      "add a policy/v1 PodDisruptionBudget (minAvailable: 1) whose selector matches the pod labels")
