"""In-cluster names: every Service a value talks to exists; Synapse replication is reachable."""
from __future__ import annotations

import difflib
import ipaddress
import re
from dataclasses import dataclass, field
from typing import Iterator

from wizard.answers import is_ip
from wizard.locate.jsonspan import JNode
from wizard.locate.yamlspan import map_get, scalar
from wizard.rules.finding import ERROR, INFO, WARNING, Finding
from wizard.rules.model import ConfigDoc, TreeModel, containers, dig, pod_spec

# Services that an operator creates for a custom resource declared in the tree:
# (API group, kind) -> Service names, `{name}` being the resource's name.
OPERATOR_SERVICES: dict[tuple[str, str], tuple[str, ...]] = {
    ("postgresql.cnpg.io", "Cluster"): ("{name}-rw", "{name}-ro", "{name}-r"),
    ("minio.min.io", "Tenant"): ("minio", "{name}-hl", "{name}-console"),
}

# NAME.NAMESPACE.svc[.cluster.local] (a pod of a headless Service may come first: pod.NAME.NAMESPACE.svc)
_FQDN = re.compile(r"(?<![A-Za-z0-9_.-])((?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+)svc(?:\.cluster\.local)?(?![A-Za-z0-9_-])",
                   re.IGNORECASE)
# scheme://NAME:PORT with a one-label host: resolved through the pod's search domains
_SHORT_URL = re.compile(r"(?<![A-Za-z0-9+.-])([a-z][a-z0-9+.-]*)://(?:[^@/\s'\"]*@)?([a-z0-9](?:[a-z0-9-]*[a-z0-9])?)"
                        r":(\d{1,5})(?![A-Za-z0-9_.-])", re.IGNORECASE)
_LOCAL_NAMES = {"localhost", "localhost.localdomain"}


@dataclass
class ServiceIndex:
    """Services the cluster will have: defined in the tree, or created by a declared operator."""

    by_ns: dict[str, dict[str, str]] = field(default_factory=dict)  # namespace -> name -> where it comes from
    unnamespaced: dict[str, str] = field(default_factory=dict)

    def add(self, ns: str, name: str, origin: str) -> None:
        (self.by_ns.setdefault(ns, {}) if ns else self.unnamespaced).setdefault(name, origin)

    def managed(self, ns: str) -> bool:
        """Does the tree define Services in `ns`? (Otherwise they are someone else's: a Helm chart's.)"""
        return ns in self.by_ns or bool(self.unnamespaced)

    def has(self, ns: str | None, name: str) -> bool:
        if name in self.unnamespaced:
            return True
        if ns:
            return name in self.by_ns.get(ns, {})
        return any(name in names for names in self.by_ns.values())

    def names(self, ns: str | None = None) -> list[str]:
        out = set(self.unnamespaced)
        for n, names in self.by_ns.items():
            if ns is None or n == ns:
                out.update(names)
        return sorted(out)


def service_index(model: TreeModel) -> ServiceIndex:
    idx = ServiceIndex()
    for obj in model.objects:
        if obj.kind == "Service" and obj.group == "":
            idx.add(obj.namespace, obj.name, f"{obj.file}:{obj.line()}")
        names = OPERATOR_SERVICES.get((obj.group, obj.kind))
        if names:
            for pattern in names:
                idx.add(obj.namespace, pattern.format(name=obj.name), f"created by {obj.ident} ({obj.file})")
    return idx


def _did_you_mean(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


def service_reference(model: TreeModel, ctx) -> Iterator[Finding]:
    idx = service_index(model)
    for vt in model.lines():
        for m in _FQDN.finditer(vt.text):
            labels = m.group(1).rstrip(".").lower().split(".")
            if len(labels) < 2:
                continue
            name, ns = labels[-2], labels[-1]
            host = m.group(0)
            if idx.has(ns, name) or model.maybe_defined(name):
                continue
            if not idx.managed(ns):
                yield Finding(vt.file, vt.line, INFO, "service-reference",
                              f"{host}: Service {name} in namespace {ns}, which the tree defines no Service in: "
                              f"not checked", "it comes from outside the tree (a Helm chart?): make sure that is installed")
                continue
            yield Finding(vt.file, vt.line, ERROR, "service-reference",
                          f"{host} names Service {name} in namespace {ns}, which the tree does not define"
                          + _did_you_mean(name, idx.names(ns)),
                          "point it at an existing Service (kubectl get svc -n " + ns + ") or add the Service")
        for m in _SHORT_URL.finditer(vt.text):
            name = m.group(2).lower()
            if name in _LOCAL_NAMES or is_ip(name) or (not idx.has(None, name) and model.maybe_defined(name)):
                continue
            url = f"{m.group(1)}://{m.group(2)}:{m.group(3)}"  # without any user:password@
            if idx.has(None, name):
                ns = next((n for n, names in idx.by_ns.items() if name in names), "NAMESPACE")
                yield Finding(vt.file, vt.line, WARNING, "service-reference",
                              f"{url} uses the short name of Service {name}: it resolves only from pods of "
                              f"the same namespace, and not at all from other namespaces or outside Kubernetes' DNS",
                              f"use the FQDN {name}.{ns}.svc.cluster.local")
            else:
                yield Finding(vt.file, vt.line, ERROR, "service-reference",
                              f"{url}: no Service {name} is defined in the tree" + _did_you_mean(name, idx.names()),
                              "point it at an existing Service, by its FQDN NAME.NAMESPACE.svc.cluster.local")


def _is_loopback(addr: str) -> bool:
    addr = addr.strip().strip("[]")
    if addr.lower() in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(addr).is_loopback
    except ValueError:
        return False


# ---- Synapse: the replication listener and instance_map

def homeserver_configs(model: TreeModel) -> Iterator[ConfigDoc]:
    """Synapse configs, plain or embedded: a mapping with `listeners` and `server_name`."""
    for doc in model.configs:
        if doc.fmt == "yaml" and doc.node.kind == "map" and map_get(doc.node, "server_name") is not None \
                and (map_get(doc.node, "listeners") is not None or map_get(doc.node, "instance_map") is not None):
            yield doc


def _worker_workloads(model: TreeModel) -> dict[str, set[str]]:
    """Synapse worker Deployments/StatefulSets -> the ConfigMaps they mount (their homeserver config)."""
    out: dict[str, set[str]] = {}
    for obj in model.of_kind("Deployment", "StatefulSet"):
        for _, c in containers(obj):
            words = " ".join(str(x) for key in ("command", "args") if isinstance(c.get(key), list) for x in c[key])
            if "generic_worker" in words or "worker_app" in words or ("synapse.app." in words
                                                                       and "synapse.app.homeserver" not in words):
                ps = pod_spec(obj)
                volumes = (ps[1].get("volumes") or []) if ps else []
                mounted = set()
                for vol in volumes if isinstance(volumes, list) else []:
                    if not isinstance(vol, dict):
                        continue
                    sources = [vol] + [s for s in (dig(vol, ("projected", "sources")) or []) if isinstance(s, dict)]
                    mounted.update(str(dig(s, ("configMap", "name"))) for s in sources if dig(s, ("configMap", "name")))
                out[obj.ident] = mounted
                break
    return out


def _replication_listeners(doc: ConfigDoc) -> Iterator[JNode]:
    listeners = map_get(doc.node, "listeners")
    if listeners is None or listeners.kind != "seq":
        return
    for lst in listeners.value:
        if lst.kind != "map":
            continue
        if scalar(map_get(lst, "type")) == "http":
            resources = map_get(lst, "resources")
            names = []
            for res in (resources.value if resources is not None and resources.kind == "seq" else []):
                ns = map_get(res, "names")
                if ns is not None and ns.kind == "seq":
                    names += [scalar(n) for n in ns.value]
            if "replication" in names:
                yield lst


def synapse_replication_listener(model: TreeModel, ctx) -> Iterator[Finding]:
    all_workers = _worker_workloads(model)
    idx = service_index(model)
    for doc in homeserver_configs(model):
        imap = map_get(doc.node, "instance_map")
        entries = [(k, v) for k, v in imap.value if v.kind == "map"] if imap is not None and imap.kind == "map" else []
        # the workers that read this config: those mounting its ConfigMap (a plain file: instance_map says)
        workers = sorted(w for w, cms in all_workers.items() if doc.owner is not None and doc.owner.name in cms)
        if not entries and not workers:
            continue  # a single-process homeserver: replication is not used
        listeners = list(_replication_listeners(doc))
        for lst in listeners:
            binds = map_get(lst, "bind_addresses")
            addrs: list[tuple[str, JNode]] = []
            if binds is not None and binds.kind == "seq":
                addrs = [(str(b.value), b) for b in binds.value if b.kind == "scalar"]
            elif binds is not None and binds.kind == "scalar":
                addrs = [(str(binds.value), binds)]
            single = map_get(lst, "bind_address")
            if single is not None and single.kind == "scalar":
                addrs.append((str(single.value), single))
            if addrs and all(_is_loopback(a) for a, _ in addrs):
                who = ", ".join(workers) if workers else "the workers of instance_map"
                yield Finding(doc.file, doc.line(binds if binds is not None else single), ERROR,
                              "synapse-replication-listener",
                              f"{doc.label}: the replication listener (port {scalar(map_get(lst, 'port'))}) binds only "
                              f"to loopback ({', '.join(a for a, _ in addrs)}) while {who} connect over the network",
                              "bind it to the pod address: bind_addresses: ['0.0.0.0'] (or ['::'])")
        main = next((v for k, v in entries if k.value == "main"), None)
        if main is not None and map_get(doc.node, "worker_app") is None:
            port = scalar(map_get(main, "port"))
            ports = {scalar(map_get(lst, "port")) for lst in listeners}
            if not listeners:
                yield Finding(doc.file, doc.line(main), ERROR, "synapse-replication-listener",
                              f"{doc.label}: instance_map.main expects HTTP replication on port {port}, but no "
                              f"listener serves the replication resource",
                              "add an http listener with resources: [{names: [replication]}] on that port")
            elif port is not None and port not in ports:
                yield Finding(doc.file, doc.line(map_get(main, "port")), ERROR, "synapse-replication-listener",
                              f"{doc.label}: instance_map.main says port {port}, the replication listener is on "
                              f"{', '.join(sorted(p for p in ports if p))}",
                              "make instance_map.main.port the replication listener's port")
        for name, entry in entries:
            hnode = map_get(entry, "host")
            host = scalar(hnode)
            if not host:
                continue
            h = host.lower().rstrip(".")
            if _is_loopback(h):
                yield Finding(doc.file, doc.line(hnode), ERROR, "synapse-replication-listener",
                              f"{doc.label}: instance_map.{name.value}.host is {host}: other pods cannot reach "
                              f"a loopback address", "use the Service of that instance: NAME.NAMESPACE.svc.cluster.local")
            elif _FQDN.fullmatch(h):
                continue  # checked by service-reference
            elif "." not in h:
                if not idx.has(None, h) and not model.maybe_defined(h):
                    yield Finding(doc.file, doc.line(hnode), ERROR, "synapse-replication-listener",
                                  f"{doc.label}: instance_map.{name.value}.host {host} is not a Service of the tree"
                                  + _did_you_mean(h, idx.names()),
                                  "use the Service of that instance: NAME.NAMESPACE.svc.cluster.local")
            elif not is_ip(h):
                yield Finding(doc.file, doc.line(hnode), ERROR, "synapse-replication-listener",
                              f"{doc.label}: instance_map.{name.value}.host {host} is not an in-cluster Service name",
                              "use the Service of that instance: NAME.NAMESPACE.svc.cluster.local")
