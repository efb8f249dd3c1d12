"""Make a deployment tree that differs from ours in STRUCTURE, as later versions of it do.

``make_drift_tree(src, dest, seed)`` copies a deployment tree laid out as CATALOG.md says (the
bundled templates; on some seeds first re-formatted by ``treegen.make_variant_tree``) and applies a
seeded random subset of the structural changes seen between versions of this deployment
(CATALOG §7, PRODUCT.md "The operator's own tree"):

* ``rename-labels``: objects renamed with labels added (``matrix-`` before, ``-prod``/``-v2``/
  ``-eu1`` after); every reference (envFrom, volumes, secretKeyRef, CNPG/MinIO Secret names…)
  follows;
* ``rename-unrelated``: an object renamed to an unrelated name while it stays the only object of
  its kind holding the catalog key paths (found at rank 3);
* ``move-file``, ``split-file``, ``merge-files``: files move between folders, a multi-document
  file becomes one file per object, two files become one;
* ``remove-component``: Sygnal, the antivirus, monitoring, or values/livekit-values.yaml go away;
* ``add-component``: an LI Redis, an LI key vault, an LI nginx, a content-scanner pickle key, Velero
  values, a coturn egress policy, with tokens in no row of CATALOG §2 (bare ``CHANGEME`` in two
  files that need different values included);
* ``known-token-elsewhere``: §2 tokens in new Secrets of new files (tokens are anchors);
* ``token-conflict``: ``CHANGE_TO_COTURN_SHARED_SECRET`` outside its catalog locations;
* ``li-mounts-main``: the LI pod mounts main's signing key (directly, or through an init container
  that copies it from a template mount path) and Secret/synapse-li-secrets holds no copy;
* ``remove-plain-copy``: the optional plain copies go away;
* ``break-file``: one file that holds no placeholder and no secret location gets a duplicate key or
  a script pasted into a block scalar without indentation;
* ``deploy-script-and-docs``: scripts/deploy-all.sh (greps the tree for CHANGEME) and Markdown
  files that mention tokens;
* ``stray-domain``: a host of the tree's author in a value (at livekit.domain, which the wizard
  overwrites; and in a value no catalog location names, which stays);
* ``ambiguous-object``: a catalog object replaced by two rank-2 candidates (the answers file's
  ``locations:`` settles it);
* ``format-variant``: the source first went through treegen.

The tree stays consistent (references renamed with their objects) and every catalog object stays
findable by the rules of PRODUCT.md — checked here by an independent finder before the tree is
returned; a draw that would make a location ambiguous by accident is drawn again (deterministically).
The returned report (JSON-serialisable) says what was done and what a correct wizard reports:

* ``seed``, ``ops`` (names above), ``log`` (one line per change), ``draws``;
* ``layout``: ``{"objects": {"<catalog file> › <Kind>/<name>": "<file> › <Kind>/<name>" | None},
  "files": {"<catalog plain file>" | "<moved catalog file>": "<path>" | None}}`` — every catalog
  object and plain file, None when removed; an object in a file broken on purpose stays at its
  catalog address; a planted ambiguous object maps to the candidate ``settle`` names;
* ``li_signing_key``: "copy" | "mounts-main" | "mounts-main-init";
* ``broken_files``: {path: "duplicate-key" | "not-yaml"};
* ``placeholders`` (the answers file's ``placeholders:`` map) and ``env`` (the variables its
  ``env:`` values name), ``omitted_placeholders`` (keys left out on purpose);
* ``unknown_tokens``: every occurrence of a token in no §2 row in a manifest value
  ({file, line, token});
* ``expected_leftovers``: [{kind, and only the fields to compare}] — ``unknown-token`` {file, token}
  per occurrence without a placeholder, ``token-conflict`` {file, token} per occurrence,
  ``parse`` {file} per broken file, ``ambiguous`` {address} per planted ambiguity, ``held-back``
  {id} per generated id with a location in it;
* ``settle``: the ``locations:`` entries that resolve the planted ambiguity; ``ambiguous``;
  ``held_back``;
* ``anchors``: [{location, id}] — §2 tokens in new places (their id's value must land there);
* ``stray``: {"overwritten": [...], "kept": [{file, text}]} — the author's hosts;
* ``removed_components``, ``added_components``.

Nothing here imports the wizard.
"""
from __future__ import annotations

import copy
import json
import random
import re
import string
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from treecheck import SEP, TOKEN_IDS, TOKEN_RE

_FAST = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# ---------------------------------------------------------------------------------------------
# the catalog, by hand: every object an address of CATALOG §3–§5 names, with the key paths there
# ---------------------------------------------------------------------------------------------

MAIN_SEC = "main-instance/01-synapse/secrets.yaml"
MAIN_CM = "main-instance/01-synapse/configmap.yaml"
MAIN_STS = "main-instance/01-synapse/main-statefulset.yaml"
LI_DEP = "li-instance/01-synapse-li/deployment.yaml"
SYNC = "li-instance/04-sync-system/deployment.yaml"
KV = "main-instance/08-key-vault/deployment.yaml"
COTURN = "main-instance/06-coturn/deployment.yaml"
SYGNAL = "main-instance/07-sygnal/deployment.yaml"
MINIO = "infrastructure/03-minio/secrets.yaml"
REDIS_SECRET = "infrastructure/02-redis/redis-secret.yaml"
REDIS_STS = "infrastructure/02-redis/redis-statefulset.yaml"
ELEMENT = "main-instance/02-element-web/deployment.yaml"
ELEMENT_LI = "li-instance/02-element-web-li/deployment.yaml"
ADMIN_LI = "li-instance/03-synapse-admin-li/deployment.yaml"
HAPROXY = "main-instance/03-haproxy/deployment.yaml"
ISSUERS = "infrastructure/04-networking/cert-manager-install.yaml"
SCAN = "antivirus/02-scan-workers/deployment.yaml"

_INGRESS = ["spec.rules[*].host", "spec.tls[*].hosts[*]", 'metadata.annotations."cert-manager.io/cluster-issuer"']
_VCT = ["spec.volumeClaimTemplates[*].spec.storageClassName"]


def _sd(*keys):
    return [f'stringData."{k}"' if "." in k or "-" in k else f"stringData.{k}" for k in keys]


# address -> key paths (for rank 3), component
CATALOG_OBJECTS: dict[str, dict] = {}


def _obj(file, kind, name, keys, component="core"):
    CATALOG_OBJECTS[f"{file}{SEP}{kind}/{name}"] = {"file": file, "kind": kind, "name": name, "keys": keys,
                                                    "component": component}


_obj(MAIN_SEC, "Secret", "synapse-secrets", _sd("DB_PASSWORD", "REDIS_PASSWORD", "REPLICATION_SECRET", "S3_ACCESS_KEY",
                                                "S3_SECRET_KEY", "KEY_VAULT_API_KEY", "MACAROON_SECRET",
                                                "REGISTRATION_SECRET", "FORM_SECRET", "TURN_SECRET", "signing.key"))
_obj(MAIN_SEC, "Secret", "synapse-db-credentials", _sd("password"))
_obj(MAIN_SEC, "Secret", "synapse-s3-credentials", _sd("access-key", "secret-key"))
_obj(MAIN_CM, "ConfigMap", "synapse-config", ['data."homeserver.yaml"'])
_obj(MAIN_STS, "StatefulSet", "synapse-main", _VCT)
_obj(LI_DEP, "ConfigMap", "synapse-li-config", ['data."homeserver.yaml"'])
_obj(LI_DEP, "Secret", "synapse-li-secrets", _sd("DB_PASSWORD", "REDIS_PASSWORD", "S3_ACCESS_KEY", "S3_SECRET_KEY",
                                                  "MACAROON_SECRET", "REGISTRATION_SECRET", "FORM_SECRET"))
_obj(LI_DEP, "StatefulSet", "synapse-li", _VCT)
_obj(LI_DEP, "Ingress", "synapse-li", _INGRESS)
_obj(SYNC, "Secret", "sync-system-secrets", _sd("LI_DB_PASSWORD", "MAIN_DB_PASSWORD", "S3_ACCESS_KEY", "S3_SECRET_KEY"))
_obj(SYNC, "ConfigMap", "sync-system-config", ['data."setup-replication.sql"', 'data."setup-subscription.sql"'])
_obj(KV, "Secret", "key-vault-secrets", _sd("DB_PASSWORD", "API_KEY", "DJANGO_SECRET_KEY", "RSA_PRIVATE_KEY"))
_obj(COTURN, "Secret", "coturn-secrets", _sd("TURN_SHARED_SECRET", "TURN_PASSWORD", "TURN_USERNAME"))
_obj(COTURN, "ConfigMap", "coturn-config", ['data."turnserver.conf"'])
_obj(COTURN, "Certificate", "coturn-tls", ["spec.dnsNames[*]", "spec.issuerRef.name"])
_obj(SYGNAL, "Secret", "sygnal-secrets", _sd("apns-key.p8", "apns-key-id", "apns-team-id", "apns-topic",
                                             "fcm-service-account.json"), component="push")
_obj(MINIO, "Secret", "minio-config", _sd("config.env"))
_obj(MINIO, "Secret", "minio-credentials", _sd("CONSOLE_SECRET_KEY", "secret-key", "CONSOLE_ACCESS_KEY", "access-key"))
_obj("infrastructure/03-minio/tenant.yaml", "Tenant", "matrix-minio",
     ["spec.pools[*].volumeClaimTemplate.spec.storageClassName"])
_obj(REDIS_SECRET, "Secret", "redis-password", _sd("password"))
_obj(REDIS_STS, "StatefulSet", "redis", _VCT)
_obj("infrastructure/01-postgresql/main-cluster.yaml", "Cluster", "matrix-postgresql", ["spec.storage.storageClass"])
_obj("infrastructure/01-postgresql/li-cluster.yaml", "Cluster", "matrix-postgresql-li", ["spec.storage.storageClass"])
_obj(ELEMENT, "ConfigMap", "element-web-config", ['data."config.json"'])
_obj(ELEMENT, "Ingress", "element-web", _INGRESS)
_obj(ELEMENT_LI, "ConfigMap", "element-web-li-config", ['data."config.json"'])
_obj(ELEMENT_LI, "Ingress", "element-web-li", _INGRESS)
_obj(ADMIN_LI, "ConfigMap", "synapse-admin-li-config", ['data."config.json"'])
_obj(ADMIN_LI, "Ingress", "synapse-admin-li", _INGRESS)
_obj(ADMIN_LI, "Secret", "synapse-admin-auth", _sd("auth"))
_obj(HAPROXY, "ConfigMap", "haproxy-config", ['data."haproxy.cfg"'])
_obj(HAPROXY, "Ingress", "matrix-client", _INGRESS)
_obj(HAPROXY, "Ingress", "matrix-federation", _INGRESS)
_obj(ISSUERS, "ClusterIssuer", "letsencrypt-prod", ["spec.acme.email"])
_obj(ISSUERS, "ClusterIssuer", "letsencrypt-staging", ["spec.acme.email"])

PLAIN_HS = "config/synapse/homeserver.yaml"
ELEMENT_PLAIN = "main-instance/02-element-web/config.json"
HAPROXY_PLAIN = "main-instance/03-haproxy/haproxy.cfg"
LIVEKIT = "values/livekit-values.yaml"
# Plain files (no Kind/name) that hold catalog locations; the first three are optional copies.
OPTIONAL_PLAIN = (PLAIN_HS, ELEMENT_PLAIN, HAPROXY_PLAIN)
PLAIN_FILES = OPTIONAL_PLAIN + ("li-instance/01-synapse-li/homeserver.yaml", LIVEKIT, "values/loki-values.yaml",
                                "values/prometheus-stack-values.yaml", "values/redis-livekit-values.yaml",
                                "values/redis-synapse-values.yaml")

OPS = ("format-variant", "rename-labels", "rename-unrelated", "move-file", "split-file", "merge-files",
       "remove-component", "add-component", "known-token-elsewhere", "token-conflict", "li-mounts-main",
       "remove-plain-copy", "break-file", "deploy-script-and-docs", "stray-domain", "ambiguous-object")


def obj_addr(file: str, kind: str, name: str) -> str:
    return f"{file}{SEP}{kind}/{name}"


# ---------------------------------------------------------------------------------------------
# the tree in memory: text per file ("\n" line ends inside; CRLF and BOM restored on write)
# ---------------------------------------------------------------------------------------------

@dataclass
class FileText:
    text: str
    crlf: bool = False
    bom: bool = False
    mode: int = 0o644


_MARKER = re.compile(r"^---(?:[ \t].*)?$")


def split_chunks(text: str) -> list[str]:
    """A YAML stream cut into one chunk per document (each after the first starts at its ``---``);
    comment-only stretches stay with the document that follows them (the last one with the one before)."""
    lines = text.splitlines(keepends=True)
    raw: list[list[str]] = [[]]
    for ln in lines:
        if _MARKER.match(ln.rstrip("\n")) and raw[-1]:
            raw.append([])
        raw[-1].append(ln)
    chunks = ["".join(c) for c in raw if c]
    out: list[str] = []
    pending = ""
    for c in chunks:
        if all(not ln.strip() or ln.lstrip().startswith("#") or _MARKER.match(ln) for ln in c.split("\n")):
            pending += c
            continue
        out.append(pending + c)
        pending = ""
    if pending:
        if out:
            out[-1] += pending
        else:
            out.append(pending)
    return out


def chunk_doc(chunk: str):
    docs = [d for d in yaml.load_all(chunk, Loader=_FAST) if d is not None]
    return docs[0] if docs else None


def _with_marker(chunk: str) -> str:
    """The chunk, starting with a ``---`` line when its document has none (comments may precede it)."""
    for ln in chunk.splitlines():
        s = ln.strip()
        if not s or s.startswith("#"):
            continue
        return chunk if _MARKER.match(ln) else "---\n" + chunk
    return chunk


def doc_only(chunk: str) -> str:
    """The chunk without the comment lines above its document (for a copy of the document)."""
    lines = chunk.splitlines(keepends=True)
    i = 0
    while i < len(lines) and (not lines[i].strip() or lines[i].lstrip().startswith("#")
                              or _MARKER.match(lines[i].rstrip("\n"))):
        i += 1
    return "---\n" + "".join(lines[i:])


def join_chunks(chunks: list[str]) -> str:
    out = ""
    for i, c in enumerate(chunks):
        if i:
            if not out.endswith("\n"):
                out += "\n"
            c = _with_marker(c)
        out += c
    return out


class Model:
    def __init__(self, files: dict[str, FileText]):
        self.files = files
        self.broken: set[str] = set()
        self._parsed: dict[str, tuple] = {}  # rel -> (text it was parsed from, chunks, docs)

    def parsed(self, rel: str) -> tuple[list[str], list]:
        text = self.files[rel].text
        hit = self._parsed.get(rel)
        if hit is None or hit[0] is not text:
            chunks = split_chunks(text)
            hit = (text, chunks, [chunk_doc(c) for c in chunks])
            self._parsed[rel] = hit
        return hit[1], hit[2]

    def copy(self) -> "Model":
        m = Model(copy.deepcopy(self.files))
        m.broken = set(self.broken)
        m._parsed = dict(self._parsed)  # keyed by the very text object parsed: safe to share
        return m

    @classmethod
    def load(cls, root: Path) -> "Model":
        files = {}
        for p in sorted(root.rglob("*")):
            if not p.is_file():
                continue
            raw = p.read_bytes()
            bom = raw.startswith(b"\xef\xbb\xbf")
            text = raw.decode("utf-8-sig")
            crlf = "\r\n" in text
            files[p.relative_to(root).as_posix()] = FileText(text.replace("\r\n", "\n"), crlf, bom,
                                                             p.stat().st_mode & 0o777)
        return cls(files)

    def write(self, dest: Path) -> None:
        dest.mkdir(parents=True)
        for rel, f in sorted(self.files.items()):
            path = dest / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            text = f.text.replace("\n", "\r\n") if f.crlf else f.text
            path.write_bytes((b"\xef\xbb\xbf" if f.bom else b"") + text.encode("utf-8"))
            path.chmod(f.mode)

    # -- objects
    def yaml_files(self) -> list[str]:
        return [r for r in sorted(self.files) if r.endswith((".yaml", ".yml")) and r not in self.broken]

    def objects(self) -> list[tuple[str, int, str, str, dict]]:
        """(file, chunk index, kind, name, data) of every Kubernetes object."""
        out = []
        for rel in self.yaml_files():
            for i, d in enumerate(self.parsed(rel)[1]):
                if isinstance(d, dict) and "kind" in d:
                    out.append((rel, i, d["kind"], (d.get("metadata") or {}).get("name"), d))
        return out

    def where(self, kind: str, name: str) -> tuple[str, int]:
        hits = [(rel, i) for rel, i, k, n, _ in self.objects() if k == kind and n == name]
        if len(hits) != 1:
            raise AssertionError(f"{kind}/{name}: {len(hits)} objects")
        return hits[0]

    def chunks(self, rel: str) -> list[str]:
        return list(self.parsed(rel)[0])

    def set_chunks(self, rel: str, chunks: list[str]) -> None:
        self.files[rel].text = join_chunks(chunks)

    def edit_object(self, kind: str, name: str, fn) -> None:
        rel, i = self.where(kind, name)
        ch = self.chunks(rel)
        ch[i] = fn(ch[i])
        self.set_chunks(rel, ch)

    def add(self, rel: str, text: str, mode: int = 0o644) -> None:
        assert rel not in self.files, rel
        self.files[rel] = FileText(text, mode=mode)

    def move(self, rel: str, new: str) -> None:
        assert new not in self.files, new
        self.files[new] = self.files.pop(rel)


# ---------------------------------------------------------------------------------------------
# surgical edits of one document's text, by PyYAML node positions
# ---------------------------------------------------------------------------------------------

def _node(text: str):
    nodes = [n for n in yaml.compose_all(text, Loader=yaml.SafeLoader) if n is not None]
    return nodes[0]


def _pair(node, key):
    for k, v in node.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return k, v
    return None


def _get(node, *path):
    for p in path:
        if node is None:
            return None
        if isinstance(p, int):
            node = node.value[p] if isinstance(node, yaml.SequenceNode) and p < len(node.value) else None
        else:
            kv = _pair(node, p) if isinstance(node, yaml.MappingNode) else None
            node = kv[1] if kv else None
    return node


def _set_scalar(text: str, node, value: str) -> str:
    s, e = node.start_mark.index, node.end_mark.index
    q = node.style if node.style in ("'", '"') else ""
    return text[:s] + q + value + q + text[e:]


def _line_start(text: str, idx: int) -> int:
    return text.rfind("\n", 0, idx) + 1


def _walk_scalars(node, path=()):
    """(path of keys, value node) for every scalar that is a mapping value or a sequence item."""
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = k.value if isinstance(k, yaml.ScalarNode) else "?"
            if isinstance(v, yaml.ScalarNode):
                yield path + (key,), v
            else:
                yield from _walk_scalars(v, path + (key,))
    elif isinstance(node, yaml.SequenceNode):
        for v in node.value:
            if isinstance(v, yaml.ScalarNode):
                yield path + ("-",), v
            else:
                yield from _walk_scalars(v, path + ("-",))


def _set_all(text: str, pred) -> tuple[str, int]:
    """Set every scalar for which ``pred(path, value)`` returns a new value (last first: positions hold)."""
    hits = [(n, new) for path, n in _walk_scalars(_node(text)) if (new := pred(path, n.value)) is not None]
    for n, new in sorted(hits, key=lambda h: -h[0].start_mark.index):
        text = _set_scalar(text, n, new)
    return text, len(hits)


def _rename_doc(text: str, new: str) -> str:
    return _set_scalar(text, _get(_node(text), "metadata", "name"), new)


def _delete_pair(text: str, mapping, key: str) -> str:
    k, v = _pair(mapping, key)
    start = _line_start(text, k.start_mark.index)
    indent = text[start:k.start_mark.index]
    while start > 0:  # the comment lines just above the key go with it
        prev = _line_start(text, start - 1)
        if not text[prev:start].startswith(indent + "#"):
            break
        start = prev
    end = v.end_mark.index
    body = text[start:end].rstrip("\n ")
    end = start + len(body)
    end = text.find("\n", end) + 1 if text.find("\n", end) >= 0 else len(text)
    return text[:start] + text[end:]


def _insert_first_item(text: str, seq, lines: list[str]) -> str:
    """A new first item of a block sequence, laid out like the sequence's first item."""
    first = seq.value[0]
    start = _line_start(text, first.start_mark.index)
    prefix = text[start:first.start_mark.index]
    assert prefix.strip() == "-", f"unexpected sequence layout {prefix!r}"
    pad = " " * len(prefix)
    new = prefix + lines[0] + "\n" + "".join(pad + ln + "\n" for ln in lines[1:])
    return text[:start] + new + text[start:]


# ---------------------------------------------------------------------------------------------
# an independent finder: PRODUCT.md "Find by meaning", ranks 1-3 (plain files: path, basename)
# ---------------------------------------------------------------------------------------------

def _labels_run(catalog_name: str, name: str) -> bool:
    want, have = catalog_name.split("-"), name.split("-")
    return any(have[i:i + len(want)] == want for i in range(len(have) - len(want) + 1))


def _path_parts(path: str) -> list[str]:
    return [p.strip('"') for p in re.findall(r'"[^"]*"|\[\*\]|[^.\[\]]+', path)]


def has_path(data, path: str) -> bool:
    nodes = [data]
    for part in _path_parts(path):
        nxt = []
        for n in nodes:
            if part == "[*]":
                if isinstance(n, list):
                    nxt.extend(n)
            elif isinstance(n, dict) and part in n:
                nxt.append(n[part])
        nodes = nxt
        if not nodes:
            return False
    return True


def find_all(model: Model) -> dict[str, tuple]:
    """catalog object address -> ("found", "file › Kind/name", how) | ("ambiguous", [locations]) | ("absent",);
    catalog plain file -> ("found", file, how) | ("absent",)."""
    objs = model.objects()
    loc = {id(o[4]): obj_addr(o[0], o[2], o[3]) for o in objs}
    rank1: dict[str, dict] = {}
    for addr, c in CATALOG_OBJECTS.items():
        hits = [o for o in objs if o[0] == c["file"] and o[2] == c["kind"] and o[3] == c["name"]]
        if len(hits) == 1:
            rank1[addr] = hits[0][4]
    taken = {id(d) for d in rank1.values()}
    out: dict[str, tuple] = {}
    for addr, c in CATALOG_OBJECTS.items():
        if addr in rank1:
            out[addr] = ("found", addr, "catalog")
            continue
        if c["file"] in model.broken:
            out[addr] = ("broken",)
            continue
        same = [o for o in objs if o[2] == c["kind"] and id(o[4]) not in taken]
        r2 = [o for o in same if _labels_run(c["name"], o[3] or "")]
        if len(r2) == 1:
            out[addr] = ("found", loc[id(r2[0][4])], "name")
            continue
        if len(r2) > 1:
            out[addr] = ("ambiguous", sorted(loc[id(o[4])] for o in r2))
            continue
        found: set[str] = set()
        ambiguous = False
        for path in c["keys"]:
            r3 = [o for o in same if has_path(o[4], path)]
            if len(r3) == 1:
                found.add(loc[id(r3[0][4])])
            elif len(r3) > 1:
                ambiguous = True
        if ambiguous or len(found) > 1:
            out[addr] = ("ambiguous", sorted(found))
        elif found:
            out[addr] = ("found", found.pop(), "key")
        else:
            out[addr] = ("absent",)
    for rel in PLAIN_FILES:
        if rel in model.files:
            out[rel] = ("found", rel, "catalog")
        elif rel in OPTIONAL_PLAIN:
            out[rel] = ("absent",)
        else:
            same = [r for r in model.files if r.rsplit("/", 1)[-1] == rel.rsplit("/", 1)[-1]]
            out[rel] = ("found", same[0], "basename") if len(same) == 1 else ("absent",)
    return out


# ---------------------------------------------------------------------------------------------
# what a drift can do
# ---------------------------------------------------------------------------------------------

# (address, label renames allowed: "prefix" and/or "suffix")
RENAMABLE = [
    (obj_addr(MAIN_SEC, "Secret", "synapse-secrets"), "ps"),
    (obj_addr(MAIN_SEC, "Secret", "synapse-db-credentials"), "ps"),
    (obj_addr(MAIN_SEC, "Secret", "synapse-s3-credentials"), "ps"),
    (obj_addr(LI_DEP, "Secret", "synapse-li-secrets"), "ps"),
    (obj_addr(SYNC, "Secret", "sync-system-secrets"), "ps"),
    (obj_addr(KV, "Secret", "key-vault-secrets"), "ps"),
    (obj_addr(COTURN, "Secret", "coturn-secrets"), "ps"),
    (obj_addr(MINIO, "Secret", "minio-credentials"), "ps"),
    (obj_addr(MINIO, "Secret", "minio-config"), "ps"),
    (obj_addr(REDIS_SECRET, "Secret", "redis-password"), "ps"),
    (obj_addr(MAIN_CM, "ConfigMap", "synapse-config"), "ps"),
    (obj_addr(LI_DEP, "ConfigMap", "synapse-li-config"), "ps"),
    (obj_addr(ELEMENT, "ConfigMap", "element-web-config"), "ps"),
    (obj_addr(ELEMENT_LI, "ConfigMap", "element-web-li-config"), "ps"),
    (obj_addr(HAPROXY, "ConfigMap", "haproxy-config"), "ps"),
    (obj_addr(COTURN, "ConfigMap", "coturn-config"), "ps"),
    (obj_addr(SYNC, "ConfigMap", "sync-system-config"), "ps"),
    (obj_addr("infrastructure/03-minio/tenant.yaml", "Tenant", "matrix-minio"), "ps"),
    (obj_addr(MAIN_STS, "StatefulSet", "synapse-main"), "ps"),
    (obj_addr(LI_DEP, "StatefulSet", "synapse-li"), "ps"),
    (obj_addr(REDIS_STS, "StatefulSet", "redis"), "s"),
    (obj_addr(ELEMENT_LI, "Ingress", "element-web-li"), "s"),
    (obj_addr(LI_DEP, "Ingress", "synapse-li"), "ps"),
    (obj_addr(HAPROXY, "Ingress", "matrix-client"), "s"),
    (obj_addr(COTURN, "Certificate", "coturn-tls"), "ps"),
]
SUFFIXES = ("-prod", "-v2", "-eu1")
UNRELATED = [
    (obj_addr(COTURN, "Secret", "coturn-secrets"), "turn-credentials"),
    (obj_addr(KV, "Secret", "key-vault-secrets"), "recovery-vault-env"),
    (obj_addr(SYNC, "Secret", "sync-system-secrets"), "li-replication-env"),
    (obj_addr(COTURN, "ConfigMap", "coturn-config"), "turnserver-conf"),
    (obj_addr(MINIO, "Secret", "minio-config"), "object-store-root-env"),
    (obj_addr(ADMIN_LI, "ConfigMap", "synapse-admin-li-config"), "li-admin-ui"),
]
MOVES = [
    (COTURN, "components/turn/coturn.yaml"),
    ("values/loki-values.yaml", "charts/loki/loki-values.yaml"),
    ("values/prometheus-stack-values.yaml", "charts/monitoring/prometheus-stack-values.yaml"),
    (KV, "main-instance/09-key-vault/key-vault.yaml"),
    (SYNC, "li-instance/07-sync-system/sync-system.yaml"),
    (REDIS_SECRET, "infrastructure/redis/secret.yaml"),
    (ADMIN_LI, "li-instance/03-admin/synapse-admin.yaml"),
    (LIVEKIT, "values/rtc/livekit-values.yaml"),
    (MAIN_CM, "main-instance/synapse/config.yaml"),
]
SPLITS = [MAIN_SEC, LI_DEP, MINIO, COTURN]
MERGES = [
    ((REDIS_SECRET, REDIS_STS), "infrastructure/02-redis/redis.yaml"),
    ((ELEMENT_LI, ADMIN_LI), "li-instance/02-web-li/deployment.yaml"),
    ((MAIN_CM, MAIN_STS), "main-instance/01-synapse/synapse-main.yaml"),
]
# Files that hold no placeholder and no secret location: what may be broken, and how.
BREAKABLE = [
    ("infrastructure/01-postgresql/li-cluster.yaml", "duplicate-key"),
    ("infrastructure/01-postgresql/scheduled-backup.yaml", "duplicate-key"),
    ("main-instance/02-workers/generic-worker-deployment.yaml", "duplicate-key"),
    ("antivirus/01-clamav/deployment.yaml", "not-yaml"),
    ("monitoring/02-grafana/dashboards-configmap.yaml", "not-yaml"),
    ("main-instance/02-workers/event-persister-deployment.yaml", "not-yaml"),
]
COMPONENTS = {
    "sygnal": ("main-instance/07-sygnal/",),
    "antivirus": ("antivirus/",),
    "monitoring": ("monitoring/",),
    "livekit": (LIVEKIT,),
}

AUTHOR_DOMAIN = "author-corp.io"
STRAY_LIVEKIT = f"rtc.{AUTHOR_DOMAIN}"
STRAY_KEPT = f"k8s-prod.{AUTHOR_DOMAIN}"

# Tokens in no row of CATALOG §2, the file each lives in, and how the answers file fills it.
UNKNOWN = {
    "CHANGEME_LI_REDIS_PASSWORD": ("redis-li", {"generate": "password"}),
    "CHANGEME_KEY_VAULT_IMAGE": ("key-vault-li", "registry.acme-corp.net/key-vault:2.1.0"),
    "CHANGEME@li-instance/05-key-vault/deployment.yaml": ("key-vault-li", "env:DRIFT_KV_LI_SYNC_TOKEN"),
    "CHANGEME@li-instance/05-key-vault/secrets.yaml": ("key-vault-li", {"generate": "password"}),
    "CHANGEME_KUBE_DNS_IP": ("nginx-li", "10.96.0.10"),
    "CHANGE_TO_YOUR_IP_RANGE": ("nginx-li", "203.0.113.0/24"),
    "CHANGEME_CONTENT_SCANNER_PICKLE_KEY": ("pickle", {"generate": "password"}),
    "CHANGE_TO_YOUR_REGION": ("velero", "eu-central-1"),
    "CHANGE_TO_YOUR_COTURN_IPS": ("coturn-egress", "198.51.100.7/32"),
}

# ---------------------------------------------------------------------------------------------
# new files
# ---------------------------------------------------------------------------------------------

REDIS_LI = """\
# Redis of the LI instance: a password of its own, never main's.
---
apiVersion: v1
kind: Secret
metadata:
  name: redis-li-auth
  namespace: matrix
  labels:
    app: redis-li
type: Opaque
stringData:
  password: CHANGEME_LI_REDIS_PASSWORD
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: redis-li
  namespace: matrix
  labels:
    app: redis-li
spec:
  serviceName: redis-li
  replicas: 1
  selector:
    matchLabels:
      app: redis-li
  template:
    metadata:
      labels:
        app: redis-li
    spec:
      containers:
        - name: redis
          image: docker.io/library/redis:7.4-alpine
          args: ["--requirepass", "$(REDIS_PASSWORD)"]
          env:
            - name: REDIS_PASSWORD
              valueFrom:
                secretKeyRef:
                  name: redis-li-auth
                  key: password
          ports:
            - containerPort: 6379
          volumeMounts:
            - name: data
              mountPath: /data
      volumes:
        - name: data
          emptyDir: {}
---
apiVersion: v1
kind: Service
metadata:
  name: redis-li
  namespace: matrix
spec:
  selector:
    app: redis-li
  ports:
    - port: 6379
      targetPort: 6379
"""

KV_LI_DEPLOYMENT = """\
# Key vault of the LI instance: reads the recovery keys replicated from main.
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: key-vault-li
  namespace: matrix
  labels:
    app: key-vault-li
spec:
  replicas: 1
  selector:
    matchLabels:
      app: key-vault-li
  template:
    metadata:
      labels:
        app: key-vault-li
    spec:
      containers:
        - name: key-vault
          image: CHANGEME_KEY_VAULT_IMAGE
          envFrom:
            - secretRef:
                name: key-vault-li-secrets
          env:
            - name: SYNC_API_TOKEN
              value: CHANGEME
          ports:
            - containerPort: 8000
"""

KV_LI_SECRETS = """\
apiVersion: v1
kind: Secret
metadata:
  name: key-vault-li-secrets
  namespace: matrix
  labels:
    app: key-vault-li
type: Opaque
stringData:
  DB_HOST: matrix-postgresql-li-rw.matrix.svc.cluster.local
  DB_PASSWORD: CHANGEME
"""

KV_LI_README = """\
# LI key vault

Set `image:` (CHANGEME_KEY_VAULT_IMAGE) to the key-vault build in your registry, and give the two
`CHANGEME` values their own secrets: they are not the same value.
"""

NGINX_LI = """\
# nginx in front of the LI instance.
# Set CHANGEME_KUBE_DNS_IP to the cluster DNS Service address (kubectl -n kube-system get svc kube-dns).
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: nginx-li-config
  namespace: matrix
  labels:
    app: nginx-li
data:
  nginx.conf: |
    events {}
    http {
      resolver CHANGEME_KUBE_DNS_IP valid=30s;
      server {
        listen 8080;
        allow CHANGE_TO_YOUR_IP_RANGE;
        deny all;
        location / {
          proxy_pass http://synapse-li-client.matrix.svc.cluster.local:8008;
        }
      }
    }
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx-li
  namespace: matrix
  labels:
    app: nginx-li
spec:
  replicas: 1
  selector:
    matchLabels:
      app: nginx-li
  template:
    metadata:
      labels:
        app: nginx-li
    spec:
      containers:
        - name: nginx
          image: docker.io/library/nginx:1.27-alpine
          volumeMounts:
            - name: config
              mountPath: /etc/nginx/nginx.conf
              subPath: nginx.conf
      volumes:
        - name: config
          configMap:
            name: nginx-li-config
"""

PICKLE_SECRET = """\
---
apiVersion: v1
kind: Secret
metadata:
  name: content-scanner
  namespace: matrix
  labels:
    app: content-scanner
type: Opaque
stringData:
  PICKLE_KEY: CHANGEME_CONTENT_SCANNER_PICKLE_KEY
"""

VELERO = """\
# Velero (cluster backups to the in-cluster MinIO)
configuration:
  backupStorageLocation:
    - name: default
      provider: aws
      bucket: cluster-backups
      config:
        region: CHANGE_TO_YOUR_REGION
        s3Url: http://minio.matrix.svc.cluster.local
snapshotsEnabled: false
"""

COTURN_EGRESS = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: livekit-to-coturn
  namespace: matrix
spec:
  podSelector:
    matchLabels:
      app.kubernetes.io/name: livekit-server
  policyTypes: ["Egress"]
  egress:
    - to:
        - ipBlock:
            cidr: CHANGE_TO_YOUR_COTURN_IPS
      ports:
        - protocol: UDP
          port: 3478
"""

REDIS_EXPORTER = """\
# Prometheus exporter for the Synapse Redis; logs in with the same password.
---
apiVersion: v1
kind: Secret
metadata:
  name: redis-exporter-auth
  namespace: matrix
type: Opaque
stringData:
  REDIS_PASSWORD: CHANGEME_SECURE_REDIS_PASSWORD
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: redis-exporter
  namespace: matrix
spec:
  replicas: 1
  selector:
    matchLabels:
      app: redis-exporter
  template:
    metadata:
      labels:
        app: redis-exporter
    spec:
      containers:
        - name: exporter
          image: docker.io/oliver006/redis_exporter:v1.62.0
          env:
            - name: REDIS_ADDR
              value: redis://redis.matrix.svc.cluster.local:6379
            - name: REDIS_PASSWORD
              valueFrom:
                secretKeyRef:
                  name: redis-exporter-auth
                  key: REDIS_PASSWORD
"""

MEDIA_BACKUP = """\
# Nightly copy of the media bucket.
---
apiVersion: v1
kind: Secret
metadata:
  name: media-backup-s3
  namespace: matrix
type: Opaque
stringData:
  AWS_ACCESS_KEY_ID: synapse-s3-user
  AWS_SECRET_ACCESS_KEY: "CHANGEME_SECURE_S3_PASSWORD"
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: media-backup
  namespace: matrix
spec:
  schedule: "30 2 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
            - name: rclone
              image: docker.io/rclone/rclone:1.68
              args: ["sync", "minio:synapse-media", "/backup/media"]
              envFrom:
                - secretRef:
                    name: media-backup-s3
"""

ELEMENT_CALL = """\
# Element Call JWT service (lk-jwt-service)
jwt:
  livekitUrl: wss://livekit.internal.svc
turnUser: CHANGE_TO_COTURN_SHARED_SECRET
"""

EXTERNAL_DNS = f"""\
apiVersion: v1
kind: ConfigMap
metadata:
  name: external-dns-settings
  namespace: matrix
data:
  domainFilter: {AUTHOR_DOMAIN}
  txtOwnerId: {STRAY_KEPT}
"""

DEPLOY_ALL = """\
#!/usr/bin/env bash
# Deploy the whole tree. Refuses while a placeholder is left.
set -euo pipefail
cd "$(dirname "$0")/.."
if grep -rn CHANGEME . --exclude-dir=docs --exclude='*.md' --exclude='*.sh'; then
  echo "placeholders left (above): fill CHANGEME_SECURE_DB_PASSWORD and friends first" >&2
  exit 1
fi
kubectl apply -f namespace.yaml
kubectl apply -R -f infrastructure/
kubectl apply -R -f main-instance/
kubectl apply -R -f li-instance/
"""

README = """\
# Matrix deployment

Fill every `CHANGEME_*` value (e.g. `CHANGEME_SECURE_DB_PASSWORD`, `CHANGEME_SECURE_REDIS_PASSWORD`)
and `livekit.CHANGE_TO_YOUR_DOMAIN`, then run `scripts/deploy-all.sh`.
"""

UPGRADE_DOC = """\
# Upgrading

New in this version: the LI Redis has its own password (`CHANGEME_LI_REDIS_PASSWORD`), and the LI
instance mounts the main signing key (no more `CHANGEME_COPY_FROM_MAIN_SIGNING_KEY`).

    kubectl -n matrix get secret synapse-secrets -o yaml | grep CHANGEME
"""

NOT_YAML_SCRIPT = """\
#!/bin/sh
set -eu
echo "pasted: $(date)"
for f in /etc/extra/*.sh; do sh "$f"; done
"""


def _rand_text(rng: random.Random, n: int = 40) -> str:
    return rng.choice(string.ascii_letters) + "".join(rng.choice(string.ascii_letters + string.digits)
                                                      for _ in range(n - 1))


# ---------------------------------------------------------------------------------------------
# the drift
# ---------------------------------------------------------------------------------------------

class _Redraw(Exception):
    pass


@dataclass
class _State:
    rng: random.Random
    m: Model
    seed: int = 0
    current: dict = field(default_factory=dict)    # catalog object address -> (kind, current name) or None
    ops: set = field(default_factory=set)
    log: list = field(default_factory=list)
    touched: set = field(default_factory=set)      # catalog addresses renamed or split
    origin: dict = field(default_factory=dict)     # original path -> current path (None: gone)
    anchors: list = field(default_factory=list)    # (kind, name, key, id) of §2 tokens outside the catalog
    unknown_files: set = field(default_factory=set)
    conflict_files: set = field(default_factory=set)
    ambiguous: dict = field(default_factory=dict)  # catalog address -> (kind, settle name, [candidate names])
    held_back: list = field(default_factory=list)
    li_signing_key: str = "copy"
    broken: dict = field(default_factory=dict)     # current path -> how
    stray_kept: list = field(default_factory=list)
    stray_overwritten: list = field(default_factory=list)
    components: set = field(default_factory=set)   # added ones
    removed: list = field(default_factory=list)


def _rename(st: _State, addr: str, new: str, why: str) -> None:
    kind, old = st.current[addr]
    st.m.edit_object(kind, old, lambda t: _rename_doc(t, new))
    refs = 0
    if kind in ("Secret", "ConfigMap"):
        for rel in st.m.yaml_files():
            ch = st.m.chunks(rel)
            changed = False
            for i, c in enumerate(ch):
                if old not in c:
                    continue
                def pred(path, value):
                    if value != old or path[-1] not in ("name", "secretName") or path == ("metadata", "name"):
                        return None
                    return new

                c2, n = _set_all(c, pred)
                if n:
                    ch[i], changed, refs = c2, True, refs + n
            if changed:
                st.m.set_chunks(rel, ch)
    st.current[addr] = (kind, new)
    st.touched.add(addr)
    st.log.append(f"{why}: {kind}/{old} -> {new} ({refs} references)")


def _remove_components(st: _State) -> None:
    rng = st.rng
    names = [c for c in COMPONENTS if rng.random() < 0.2]
    if st.ambiguous.get("want") == "coturn" and "livekit" not in names:
        names.append("livekit")  # LiveKit's TURN user name comes from coturn-secrets: keep that unambiguous
    for comp in sorted(names):
        gone = [r for r in list(st.m.files) if any(r == p or r.startswith(p) for p in COMPONENTS[comp])]
        for r in gone:
            del st.m.files[r]
            st.origin[r] = None
        for addr, c in CATALOG_OBJECTS.items():
            if any(c["file"].startswith(p) for p in COMPONENTS[comp]):
                st.current[addr] = None
        st.removed.append(comp)
        st.log.append(f"remove-component: {comp} ({len(gone)} files)")
    if names:
        st.ops.add("remove-component")
    plain = [p for p in OPTIONAL_PLAIN if rng.random() < 0.35]
    for rel in plain:
        del st.m.files[rel]
        st.origin[rel] = None
        st.log.append(f"remove-plain-copy: {rel}")
    if plain:
        st.ops.add("remove-plain-copy")


def _ambiguity(st: _State) -> None:
    want = st.ambiguous.pop("want", None)
    if want is None:
        return
    if want == "coturn":
        addr = obj_addr(COTURN, "Secret", "coturn-secrets")
        rel, i = st.m.where("Secret", "coturn-secrets")
        ch = st.m.chunks(rel)
        east, west = _rename_doc(ch[i], "coturn-secrets-east"), _rename_doc(doc_only(ch[i]), "coturn-secrets-west")
        ch[i:i + 1] = [east, west]
        st.m.set_chunks(rel, ch)
        rel, j = st.m.where("DaemonSet", "coturn")
        ch = st.m.chunks(rel)
        copies = []
        for side in ("east", "west"):
            t = _rename_doc(ch[j] if side == "east" else doc_only(ch[j]), f"coturn-{side}")
            t, n = _set_all(t, lambda p, v, s=side: f"coturn-secrets-{s}" if v == "coturn-secrets" else None)
            assert n == 3
            copies.append(t)
        ch[j:j + 1] = copies
        st.m.set_chunks(rel, ch)
        st.ambiguous[addr] = ("Secret", "coturn-secrets-east", ["coturn-secrets-east", "coturn-secrets-west"])
        st.held_back += ["turn.shared_secret", "turn.static_password"]
        st.anchors += [("Secret", "coturn-secrets-west", "TURN_SHARED_SECRET", "turn.shared_secret"),
                       ("Secret", "coturn-secrets-west", "TURN_PASSWORD", "turn.static_password")]
        st.current[addr] = ("Secret", "coturn-secrets-east")
    else:
        addr = obj_addr(MAIN_SEC, "Secret", "synapse-s3-credentials")
        rel, i = st.m.where("Secret", "synapse-s3-credentials")
        ch = st.m.chunks(rel)
        a = _rename_doc(ch[i], "synapse-s3-credentials-media")
        b = _rename_doc(doc_only(ch[i]), "synapse-s3-credentials-backup")
        ch[i:i + 1] = [a, b]
        st.m.set_chunks(rel, ch)
        st.ambiguous[addr] = ("Secret", "synapse-s3-credentials-media",
                              ["synapse-s3-credentials-backup", "synapse-s3-credentials-media"])
        st.held_back += ["minio.s3_secret_key"]
        st.anchors += [("Secret", "synapse-s3-credentials-backup", "secret-key", "minio.s3_secret_key")]
        st.current[addr] = ("Secret", "synapse-s3-credentials-media")
    st.touched.add(addr)
    st.ops.add("ambiguous-object")
    st.log.append(f"ambiguous-object: {addr} -> {st.ambiguous[addr][2]}")


def _renames(st: _State) -> None:
    rng = st.rng
    if rng.random() < 0.75:
        pool = [(a, how) for a, how in RENAMABLE if st.current.get(a) and a not in st.touched]
        for addr, how in rng.sample(pool, min(len(pool), rng.randint(1, 4))):
            kind, name = st.current[addr]
            if "p" in how and not name.startswith("matrix-") and rng.random() < 0.5:
                new = "matrix-" + name
            else:
                new = name + rng.choice(SUFFIXES)
            _rename(st, addr, new, "rename-labels")
            st.ops.add("rename-labels")
    if rng.random() < 0.45:
        pool = [(a, n) for a, n in UNRELATED if st.current.get(a) and a not in st.touched]
        if pool:
            addr, new = rng.choice(pool)
            _rename(st, addr, new, "rename-unrelated")
            st.ops.add("rename-unrelated")


def _li_signing(st: _State) -> None:
    r = st.rng.random()
    st.li_signing_key = "copy" if r < 0.4 else ("mounts-main" if r < 0.7 else "mounts-main-init")
    if st.li_signing_key == "copy":
        return
    main_secret = st.current[obj_addr(MAIN_SEC, "Secret", "synapse-secrets")][1]
    li_secret = st.current[obj_addr(LI_DEP, "Secret", "synapse-li-secrets")][1]
    li_sts = st.current[obj_addr(LI_DEP, "StatefulSet", "synapse-li")][1]
    st.m.edit_object("Secret", li_secret, lambda t: _delete_pair(t, _get(_node(t), "stringData"), "signing.key"))

    def mount(text: str) -> str:
        pod = _get(_node(text), "spec", "template", "spec")
        vols = _get(pod, "volumes")
        idx = [i for i, v in enumerate(vols.value) if _get(v, "secret", "secretName") is not None
               and _get(v, "secret", "secretName").value == li_secret]
        assert len(idx) == 1
        text = _set_scalar(text, _get(_node(text), "spec", "template", "spec", "volumes", idx[0], "secret",
                                      "secretName"), main_secret)
        if st.li_signing_key == "mounts-main":
            return text
        vol_name = _get(_node(text), "spec", "template", "spec", "volumes", idx[0], "name").value
        keys_dir = None
        for c in _get(_node(text), "spec", "template", "spec", "containers").value:
            for m in _get(c, "volumeMounts").value:
                if _get(m, "name").value == vol_name:
                    keys_dir = _get(m, "mountPath").value
        assert keys_dir
        text = _set_scalar(text, _get(_node(text), "spec", "template", "spec", "volumes", idx[0], "name"),
                           "signing-key-template")
        text = _insert_first_item(text, _get(_node(text), "spec", "template", "spec", "volumes"),
                                  [f"name: {vol_name}", "emptyDir:", "  medium: Memory", "  sizeLimit: 1Mi"])
        script = (f"cp /signing-key-template/signing.key {keys_dir}/signing.key"
                  f" && chmod 0400 {keys_dir}/signing.key")
        text = _insert_first_item(text, _get(_node(text), "spec", "template", "spec", "initContainers"), [
            "name: copy-signing-key", "image: docker.io/library/busybox:1.36",
            'command: ["/bin/sh", "-c"]', "args:", f"  - {script}", "volumeMounts:",
            "  - name: signing-key-template", "    mountPath: /signing-key-template", "    readOnly: true",
            f"  - name: {vol_name}", f"    mountPath: {keys_dir}"])
        return text

    st.m.edit_object("StatefulSet", li_sts, mount)
    st.ops.add("li-mounts-main")
    st.log.append(f"li-mounts-main: {st.li_signing_key} (Secret/{main_secret})")


def _stray(st: _State) -> None:
    if st.rng.random() >= 0.5:
        return
    st.m.add("infrastructure/04-networking/external-dns.yaml", EXTERNAL_DNS)
    st.stray_kept.append({"file": "infrastructure/04-networking/external-dns.yaml", "text": STRAY_KEPT})
    if LIVEKIT in st.m.files:
        f = st.m.files[LIVEKIT]
        t, n = _set_all(f.text, lambda p, v: STRAY_LIVEKIT if p == ("livekit", "domain") else None)
        assert n == 1
        f.text = t
        st.stray_overwritten.append({"file": LIVEKIT, "text": STRAY_LIVEKIT})
    st.ops.add("stray-domain")
    st.log.append("stray-domain")


def _additions(st: _State) -> None:
    rng = st.rng
    m = st.m
    if rng.random() < 0.7:
        pool = ["redis-li", "key-vault-li", "nginx-li", "velero", "coturn-egress"]
        if SCAN in m.files:
            pool.append("pickle")
        chosen = sorted(rng.sample(pool, rng.randint(1, len(pool))))
        for comp in chosen:
            if comp == "redis-li":
                m.add("li-instance/00-redis-li/redis-li.yaml", REDIS_LI)
                st.unknown_files.add("li-instance/00-redis-li/redis-li.yaml")
            elif comp == "key-vault-li":
                m.add("li-instance/05-key-vault/deployment.yaml", KV_LI_DEPLOYMENT)
                m.add("li-instance/05-key-vault/secrets.yaml", KV_LI_SECRETS)
                m.add("li-instance/05-key-vault/README.md", KV_LI_README)
                st.unknown_files |= {"li-instance/05-key-vault/deployment.yaml", "li-instance/05-key-vault/secrets.yaml"}
            elif comp == "nginx-li":
                m.add("li-instance/06-nginx-li/nginx.yaml", NGINX_LI)
                st.unknown_files.add("li-instance/06-nginx-li/nginx.yaml")
            elif comp == "velero":
                m.add("values/velero-values.yaml", VELERO)
                st.unknown_files.add("values/velero-values.yaml")
            elif comp == "coturn-egress":
                m.add("infrastructure/04-networking/coturn-egress.yaml", COTURN_EGRESS)
                st.unknown_files.add("infrastructure/04-networking/coturn-egress.yaml")
            elif comp == "pickle":
                f = m.files[SCAN]
                f.text = f.text.rstrip("\n") + "\n" + PICKLE_SECRET
                st.unknown_files.add(SCAN)
            st.components.add(comp)
        st.ops.add("add-component")
        st.log.append(f"add-component: {', '.join(chosen)}")
    if rng.random() < 0.5:
        pool = ["redis-exporter", "media-backup"]
        for k in sorted(rng.sample(pool, rng.randint(1, 2))):
            if k == "redis-exporter":
                m.add("infrastructure/02-redis/redis-exporter.yaml", REDIS_EXPORTER)
                st.anchors.append(("Secret", "redis-exporter-auth", "REDIS_PASSWORD", "redis.password"))
            else:
                m.add("backup/media-backup.yaml", MEDIA_BACKUP)
                st.anchors.append(("Secret", "media-backup-s3", "AWS_SECRET_ACCESS_KEY", "minio.s3_secret_key"))
            st.log.append(f"known-token-elsewhere: {k}")
        st.ops.add("known-token-elsewhere")
    if rng.random() < 0.2:
        m.add("values/element-call-values.yaml", ELEMENT_CALL)
        st.conflict_files.add("values/element-call-values.yaml")
        st.ops.add("token-conflict")
        st.log.append("token-conflict: values/element-call-values.yaml")
    if rng.random() < 0.5:
        m.add("scripts/deploy-all.sh", DEPLOY_ALL, mode=0o755)
        m.add("README.md", README)
        m.add("docs/upgrade.md", UPGRADE_DOC)
        st.ops.add("deploy-script-and-docs")
        st.log.append("deploy-script-and-docs")


def _relayout(st: _State, fixed: set) -> None:
    """Moves, splits and merges of files nobody else touches."""
    rng = st.rng
    m = st.m
    busy = set(fixed)

    def free(*rels):
        return all(r in m.files and r not in busy for r in rels)

    if rng.random() < 0.6:
        pool = [mv for mv in MOVES if free(mv[0])]
        for src, dst in rng.sample(pool, min(len(pool), rng.randint(1, 3))):
            m.move(src, dst)
            st.origin[src] = dst
            busy |= {src, dst}
            st.log.append(f"move-file: {src} -> {dst}")
            st.ops.add("move-file")
    if rng.random() < 0.4:
        pool = [s for s in SPLITS if free(s)]
        if pool:
            rel = rng.choice(pool)
            stem = rel.rsplit(".", 1)[0]
            text = m.files[rel].text
            chunks = split_chunks(text)
            f = m.files.pop(rel)
            names = []
            for c in chunks:
                d = chunk_doc(c)
                new = f"{stem}/{d['kind'].lower()}-{d['metadata']['name']}.yaml"
                m.files[new] = FileText(c, f.crlf, False, f.mode)
                names.append(new)
            st.origin[rel] = None
            busy.add(rel)
            st.log.append(f"split-file: {rel} -> {', '.join(names)}")
            st.ops.add("split-file")
    if rng.random() < 0.4:
        pool = [mg for mg in MERGES if free(*mg[0])]
        if pool:
            (a, b), dst = rng.choice(pool)
            fa, fb = m.files.pop(a), m.files.pop(b)
            text = fa.text.rstrip("\n") + "\n" + _with_marker(fb.text)
            m.files[dst] = FileText(text, fa.crlf, fa.bom, fa.mode)
            st.origin[a] = st.origin[b] = dst
            busy |= {a, b}
            st.log.append(f"merge-files: {a} + {b} -> {dst}")
            st.ops.add("merge-files")


def _break(st: _State) -> None:
    if st.rng.random() >= 0.5:
        return
    pool = [(rel, how) for rel, how in BREAKABLE if rel in st.m.files and "CHANGEME" not in st.m.files[rel].text]
    rel, how = st.rng.choice(pool)
    f = st.m.files[rel]
    if how == "duplicate-key":
        ch = split_chunks(f.text)
        for i, c in enumerate(ch):
            hit = None
            for path, n in _walk_scalars(_node(c)):
                if path[-1] in ("podAntiAffinityType", "replicas", "schedule") and "-" not in path:
                    hit = n
                    break
            if hit is None:
                continue
            s = _line_start(c, hit.start_mark.index)
            e = c.find("\n", hit.end_mark.index) + 1
            line = c[s:e]
            ch[i] = c[:e] + line + c[e:]
            break
        else:
            raise AssertionError(f"{rel}: no key to duplicate")
        f.text = join_chunks(ch)
    else:
        ch = split_chunks(f.text)
        for i, c in enumerate(ch):
            blocks = [n for _, n in _walk_scalars(_node(c)) if n.style == "|" and n.value.count("\n") > 2]
            if not blocks:
                continue
            n = blocks[0]
            first_line_end = c.find("\n", c.find("\n", n.start_mark.index) + 1) + 1
            ch[i] = c[:first_line_end] + NOT_YAML_SCRIPT + c[first_line_end:]
            break
        else:
            raise AssertionError(f"{rel}: no block scalar")
        f.text = join_chunks(ch)
    st.m.broken.add(rel)
    st.broken[rel] = how
    st.ops.add("break-file")
    st.log.append(f"break-file: {rel} ({how})")


def _settle_files(st: _State) -> dict:
    """Where each object is now, from the current names (objects are unique by kind and name)."""
    objects = {}
    for addr, c in CATALOG_OBJECTS.items():
        cur = st.current.get(addr, (c["kind"], c["name"]))
        if cur is None:
            objects[addr] = None
            continue
        if c["file"] in st.m.broken:
            objects[addr] = addr
            continue
        kind, name = cur
        rel, _ = st.m.where(kind, name)
        objects[addr] = obj_addr(rel, kind, name)
    files = {}
    for rel in PLAIN_FILES:
        new = st.origin.get(rel, rel)
        files[rel] = new if new is not None and new in st.m.files else None
    catalog_files = {c["file"] for c in CATALOG_OBJECTS.values()}
    for rel, new in sorted(st.origin.items()):  # whole-file moves and merges of files holding catalog objects
        if rel in catalog_files and new is not None and new != rel:
            files[rel] = new
    return {"objects": objects, "files": files}


def _value_lines(text: str):
    """(line number, line) of the lines that may hold a value (comment lines excluded)."""
    for n, line in enumerate(text.split("\n"), 1):
        s = line.strip()
        if s and not s.startswith("#"):
            yield n, line


def _draw(st: _State) -> None:
    rng = st.rng
    st.ambiguous = {"want": ("coturn", "s3")[st.seed % 2]} if rng.random() < 0.25 else {}
    _remove_components(st)
    _ambiguity(st)
    _renames(st)
    _li_signing(st)
    _stray(st)
    _additions(st)
    fixed = set(st.unknown_files) | set(st.conflict_files)
    _relayout(st, fixed)
    _break(st)


def _check_findable(st: _State, layout: dict) -> None:
    found = find_all(st.m)
    for addr, want in layout["objects"].items():
        got = found[addr]
        if addr in st.ambiguous:
            file = want.split(SEP)[0]
            cands = sorted(obj_addr(file, "Secret", n) for n in st.ambiguous[addr][2])
            if got != ("ambiguous", cands):
                raise _Redraw(f"{addr}: {got}, planted {cands}")
        elif want is None:
            if got[0] != "absent":
                raise _Redraw(f"{addr}: removed, but found {got}")
        elif CATALOG_OBJECTS[addr]["file"] in st.m.broken:
            continue
        elif got[0] != "found" or got[1] != want:
            raise _Redraw(f"{addr}: {got}, expected {want}")
    for rel in PLAIN_FILES:
        want, got = layout["files"][rel], found[rel]
        if want is None and got[0] != "absent" or want is not None and got[:2] != ("found", want):
            raise _Redraw(f"{rel}: {got}, expected {want}")
    if layout["files"][LIVEKIT] is None:  # nothing else may look like LiveKit's values
        for rel, f in st.m.files.items():
            if rel.endswith((".yaml", ".yml")) and rel not in st.m.broken:
                for d in yaml.load_all(f.text, Loader=_FAST):
                    if isinstance(d, dict) and "kind" not in d and ("livekit" in d or "ingress" in d):
                        raise _Redraw(f"{rel} looks like LiveKit's values")


def _expectations(st: _State, seed: int) -> dict:
    rng = random.Random(f"treedrift-answers:{seed}")
    # every occurrence of a token in no §2 row, in a manifest value
    unknown = []
    for rel in sorted(st.unknown_files):
        for n, line in _value_lines(st.m.files[rel].text):
            for mt in TOKEN_RE.finditer(line):
                if mt.group() not in TOKEN_IDS:
                    unknown.append({"file": rel, "line": n, "token": mt.group()})
    keys_needed = sorted({u["token"] if u["token"] != "CHANGEME" else f"CHANGEME@{u['file']}" for u in unknown})
    omit: set[str] = set()
    if keys_needed and rng.random() < 0.45:
        omit = set(rng.sample(keys_needed, min(len(keys_needed), rng.randint(1, 2))))
    placeholders, env = {}, {}
    for k in keys_needed:
        if k in omit:
            continue
        v = UNKNOWN[k][1]
        placeholders[k] = copy.deepcopy(v)
        if isinstance(v, str) and v.startswith("env:"):
            env[v[4:]] = _rand_text(rng)
    expected = []
    for u in unknown:
        key = u["token"] if u["token"] != "CHANGEME" else f"CHANGEME@{u['file']}"
        if key in omit:
            expected.append({"kind": "unknown-token", "file": u["file"], "token": u["token"]})
    for rel in sorted(st.conflict_files):
        for n, line in _value_lines(st.m.files[rel].text):
            for mt in TOKEN_RE.finditer(line):
                if mt.group() == "CHANGE_TO_COTURN_SHARED_SECRET":
                    expected.append({"kind": "token-conflict", "file": rel, "token": mt.group()})
    for rel in sorted(st.broken):
        expected.append({"kind": "parse", "file": rel})
    for addr in sorted(st.ambiguous):
        expected.append({"kind": "ambiguous", "address": addr})
    for cid in sorted(st.held_back):
        expected.append({"kind": "held-back", "id": cid})
    return {"unknown": unknown, "placeholders": placeholders, "env": env, "expected": expected,
            "omitted": sorted(omit)}


# The seeds tests/test_own_tree.py runs (tests/test_treedrift.py checks what they cover).
E2E_SEEDS = tuple(range(1, 23))

_MEMO: dict[tuple, tuple[Model, dict]] = {}
_BASE: dict[tuple, Model] = {}


def _fingerprint(src: Path) -> tuple:
    return tuple((p.relative_to(src).as_posix(), p.stat().st_size, p.stat().st_mtime_ns)
                 for p in sorted(src.rglob("*")) if p.is_file())


def make_drift_tree(src: Path, dest: Path, seed: int, *, memo: bool = True) -> dict:
    """Copy the deployment tree at ``src`` to ``dest`` (which must not exist) with structural drift
    drawn from ``seed``; return the report (see the module docstring). The same (src, seed) always
    gives the same tree; within one process it is drawn once (``memo=False`` draws it again)."""
    src, dest = Path(src), Path(dest)
    if dest.exists():
        raise FileExistsError(f"{dest} exists")
    key = (str(src.resolve()), seed, _fingerprint(src))
    if memo and key in _MEMO:
        model, report = _MEMO[key]
        model.write(dest)
        return copy.deepcopy(report)
    model, report = _generate(src, seed)
    if memo:
        _MEMO[key] = (model, report)
    model.write(dest)
    return copy.deepcopy(report)


def _generate(src: Path, seed: int) -> tuple[Model, dict]:
    fmt = seed % 10 == 4
    if fmt:
        import treegen

        with tempfile.TemporaryDirectory() as tmp:
            treegen.make_variant_tree(src, Path(tmp) / "t", seed)
            base = Model.load(Path(tmp) / "t")
    else:
        key = (str(src.resolve()), _fingerprint(src))
        if key not in _BASE:
            _BASE.clear()
            _BASE[key] = Model.load(src)
            _BASE[key].objects()  # parse once: copies share the parsed documents
        base = _BASE[key]
    rng = random.Random(f"treedrift:{seed}")
    why = []
    for _attempt in range(40):
        st = _State(rng, base.copy(), seed)
        st.current = {a: (c["kind"], c["name"]) for a, c in CATALOG_OBJECTS.items()}
        if fmt:
            st.ops.add("format-variant")
        try:
            _draw(st)
            layout = _settle_files(st)
            _check_findable(st, layout)
        except _Redraw as e:
            why.append(str(e))
            continue
        break
    else:
        raise AssertionError(f"seed {seed}: no consistent drift in 40 draws: {why[-3:]}")
    exp = _expectations(st, seed)
    settle = {}
    for addr, (kind, name, _) in st.ambiguous.items():
        settle[addr] = layout["objects"][addr]
    anchors = []
    for kind, name, key, cid in st.anchors:
        rel, _ = st.m.where(kind, name)
        k = f'"{key}"' if "-" in key or "." in key else key
        anchors.append({"location": f"{rel}{SEP}{kind}/{name}{SEP}stringData.{k}", "id": cid})
    report = {
        "seed": seed,
        "ops": sorted(st.ops),
        "log": st.log,
        "draws": len(why) + 1,
        "layout": layout,
        "li_signing_key": st.li_signing_key,
        "broken_files": dict(sorted(st.broken.items())),
        "removed_components": sorted(st.removed),
        "added_components": sorted(st.components),
        "placeholders": exp["placeholders"],
        "env": exp["env"],
        "omitted_placeholders": exp["omitted"],
        "unknown_tokens": exp["unknown"],
        "expected_leftovers": exp["expected"],
        "settle": settle,
        "ambiguous": sorted(st.ambiguous),
        "held_back": sorted(st.held_back),
        "anchors": anchors,
        "stray": {"overwritten": st.stray_overwritten, "kept": st.stray_kept},
    }
    json.dumps(report)  # JSON-serialisable, always
    return st.m, report
