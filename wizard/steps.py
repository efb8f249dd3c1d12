"""What the operator runs next, as data.

A :class:`Step` is either a COMMAND that runs exactly as printed from the operator's current folder
(every path spelled out and shell-quoted, no command substitution, no ``<placeholder>``), or PROSE
that says what to do by hand (``<placeholders>`` marked as such). A command never has a hole in it:
whatever needs the operator's own names (an ``mc`` alias, a Helm release) is prose.

Public API
----------
- :func:`rotation_steps` -- after ``wizard rotate``: apply the changed manifests, change what lives
  outside the tree (database roles, MinIO users), restart the clients (servers first), Helm upgrades.
- :func:`deploy_steps` -- after a successful apply: the tree's own deploy script, or the manual order.
- :func:`alter_role_sql` -- the SQL ``wizard secrets show ID --as-sql-role ROLE`` prints for psql.
- :func:`format_steps`, :func:`to_json` -- render a list of steps.

This module knows Kubernetes and the operators the tree uses (CloudNativePG, the MinIO operator,
Helm), never the catalog: which secret belongs to which database role arrives as arguments.
"""
from __future__ import annotations

import base64
import binascii
import os
import re
import shlex
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

COMMAND = "command"
PROSE = "prose"

_PLACEHOLDER_RE = re.compile(r"<[A-Za-z][^<>\n]*>")


@dataclass(frozen=True)
class Step:
    """One thing to do. ``kind`` is ``"command"`` (``text`` runs as printed, one line) or ``"prose"``
    (``text`` says what to do by hand). ``why`` is a short reason, shown above a command."""

    kind: str
    text: str
    why: str = ""

    def __post_init__(self) -> None:
        if self.kind not in (COMMAND, PROSE):
            raise ValueError(f"a step is {COMMAND!r} or {PROSE!r}, not {self.kind!r}")
        if not self.text:
            raise ValueError("a step needs a text")
        if self.kind == COMMAND:
            if "\n" in self.text:
                raise ValueError("a command step is one line")
            hole = _PLACEHOLDER_RE.search(re.sub(r"'[^']*'", "", self.text))  # quoted text is literal
            if hole:
                raise ValueError(f"a command must run as printed; {hole.group(0)} is a hole: make it prose")


def command(text: str, why: str = "") -> Step:
    return Step(COMMAND, text, why)


def prose(text: str, why: str = "") -> Step:
    return Step(PROSE, text, why)


# ----------------------------------------------------------------------------------------- SQL

def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_literal(value: str) -> str:
    """PostgreSQL's own quote_literal(): ``'…'`` with quotes doubled, and ``E'…'`` with backslashes
    doubled when the value holds one -- right whatever ``standard_conforming_strings`` says."""
    body = value.replace("'", "''")
    if "\\" in value:
        return "E'" + body.replace("\\", "\\\\") + "'"
    return "'" + body + "'"


def alter_role_sql(role: str, password: str) -> str:
    """The SQL that sets ``role``'s password, for psql's standard input (no trailing newline)::

        SET client_encoding TO 'UTF8';
        ALTER ROLE "role" WITH PASSWORD '…';

    The role is a quoted identifier (exact case, ``"`` doubled); the password a literal quoted as
    PostgreSQL's ``quote_literal`` does, so quotes, backslashes, ``$``, spaces, newlines and
    non-ASCII text arrive byte for byte. The encoding line makes psql's input UTF-8 whatever the
    pod's locale. psql does not expand ``:variables`` or ``\\commands`` inside a quoted literal, and
    an output cut short leaves an unterminated literal that the server rejects: never a shorter
    password. An empty password, or a NUL character (PostgreSQL text cannot hold it), is refused
    with ValueError: a command that would set an empty password must fail, not succeed.
    """
    if not role or "\0" in role:
        raise ValueError("a role name must be non-empty text without NUL")
    if not password:
        raise ValueError("refusing to set an empty password")
    if "\0" in password:
        raise ValueError("a PostgreSQL password cannot hold a NUL character")
    return ("SET client_encoding TO 'UTF8';\n"
            f"ALTER ROLE {_quote_ident(role)} WITH PASSWORD {_quote_literal(password)};")


# ---------------------------------------------------------------------------------- the tree

_MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")  # what `kubectl apply -f DIR` reads
_WORKLOADS = ("StatefulSet", "DaemonSet", "Deployment")  # restarted with `kubectl rollout restart`
_RUN_TO_COMPLETION = ("Job", "CronJob", "Pod")
_LOOKS_LIKE_OBJECT = re.compile(r"(?m)^apiVersion:\s*\S")
_LOOKS_LIKE_KIND = re.compile(r"(?m)^kind:\s*\S")
_NOT_CLUSTER_OBJECTS = ("kustomize.config.k8s.io",)  # `kubectl apply -f` cannot apply these


@dataclass
class _File:
    rel: str
    text: str | None        # None: not a regular UTF-8 file
    docs: list | None       # None: does not parse

    @property
    def objects(self) -> list[dict]:
        return [d for d in self.docs or [] if _is_object(d)]

    @property
    def is_manifest(self) -> bool:
        """Holds a Kubernetes object (or does not parse but looks like it should: kubectl will say
        what is wrong rather than the file being skipped in silence)."""
        if self.docs is None:
            return bool(self.text and _LOOKS_LIKE_OBJECT.search(self.text) and _LOOKS_LIKE_KIND.search(self.text))
        return any(_group(o) not in _NOT_CLUSTER_OBJECTS for o in self.objects)


def _is_object(doc) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("kind"), str) and isinstance(doc.get("apiVersion"), str)


def _group(obj: dict) -> str:
    api = obj.get("apiVersion", "")
    return api.rsplit("/", 1)[0] if "/" in api else ""


def _is_custom_group(group: str) -> bool:
    """A group served by a CRD: built-in groups are "" (core), dot-less (apps, batch, policy, …)
    or end in .k8s.io."""
    return "." in group and not group.endswith(".k8s.io")


def _meta(obj: dict) -> dict:
    m = obj.get("metadata")
    return m if isinstance(m, dict) else {}


def _name(obj: dict) -> str:
    n = _meta(obj).get("name")
    return n if isinstance(n, str) else ""


def _dig(obj, *keys):
    for k in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(k)
    return obj


def _as_list(v) -> list:
    return v if isinstance(v, list) else []


def _walk_files(root: Path) -> Iterator[tuple[str, Path]]:
    """(rel, path) of the regular files under ``root``, sorted. Hidden names (``.git``, the wizard's
    temp files) are skipped; a symlink is followed only while its target stays inside the tree
    (each real folder once), and only regular files are read (never a FIFO or device)."""
    try:
        real_root = root.resolve(strict=True)
    except OSError:
        return
    seen: set[str] = set()

    def inside(p: Path) -> bool:
        try:
            real = p.resolve(strict=True)
        except (OSError, RuntimeError):
            return False
        return real == real_root or real_root in real.parents

    def walk(folder: Path, rel: str) -> Iterator[tuple[str, Path]]:
        try:
            real = str(folder.resolve(strict=True))
        except (OSError, RuntimeError):
            return
        if real in seen:
            return
        seen.add(real)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return
        for e in entries:
            if e.name.startswith("."):
                continue
            path = Path(e.path)
            sub = f"{rel}/{e.name}" if rel else e.name
            try:
                is_link = e.is_symlink()
                st = os.stat(path)  # follows links
            except OSError:
                continue
            if is_link and not inside(path):
                continue
            if stat.S_ISDIR(st.st_mode):
                yield from walk(path, sub)
            elif stat.S_ISREG(st.st_mode):
                yield sub, path

    yield from walk(root, "")


def _read(path: Path, rel: str) -> _File:
    import yaml

    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # never block on a swapped-in FIFO
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return _File(rel, None, None)
            with os.fdopen(fd, "rb", closefd=False) as f:
                data = f.read()
        finally:
            os.close(fd)
        text = data.decode("utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return _File(rel, None, None)
    try:
        # safe_load_all, with libyaml's safe loader when PyYAML has it (the same documents, faster)
        docs = list(yaml.load_all(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
    except (yaml.YAMLError, RecursionError, ValueError):
        docs = None
    return _File(rel, text, docs)


class _Tree:
    """The manifests of a tree, read once: files (by relative path) and their objects."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.files: dict[str, _File] = {}
        self._hosts: dict[tuple[int, bool], frozenset[str]] = {}  # by id: the objects live as long as the tree
        for rel, path in _walk_files(self.root):
            if rel.endswith(_MANIFEST_SUFFIXES):
                self.files[rel] = _read(path, rel)

    def host_names(self, obj: dict, *, bare: bool = True) -> set[str]:
        """_host_names of one of this tree's objects, worked out once (the ordering asks per folder level)."""
        key = (id(obj), bare)
        got = self._hosts.get(key)
        if got is None:
            got = self._hosts[key] = frozenset(_host_names(obj, bare=bare))
        return set(got)

    def objects(self) -> Iterator[tuple[str, dict]]:
        for rel, f in self.files.items():
            for obj in f.objects:
                yield rel, obj

    def find(self, kind: str, name: str) -> tuple[str, dict] | None:
        for rel, obj in self.objects():
            if obj.get("kind") == kind and _name(obj) == name:
                return rel, obj
        return None


def _pod_spec(obj: dict) -> dict:
    if obj.get("kind") == "CronJob":
        spec = _dig(obj, "spec", "jobTemplate", "spec", "template", "spec")
    elif obj.get("kind") == "Pod":
        spec = obj.get("spec")
    else:
        spec = _dig(obj, "spec", "template", "spec")
    return spec if isinstance(spec, dict) else {}


def _pod_labels(obj: dict) -> dict:
    if obj.get("kind") == "Pod":
        labels = _meta(obj).get("labels")
    elif obj.get("kind") == "CronJob":
        labels = _dig(obj, "spec", "jobTemplate", "spec", "template", "metadata", "labels")
    else:
        labels = _dig(obj, "spec", "template", "metadata", "labels")
    return labels if isinstance(labels, dict) else {}


def _pod_refs(obj: dict) -> set[tuple[str, str]]:
    """(Secret|ConfigMap, name) the pod spec reads: envFrom, env valueFrom, volumes, projected volumes
    (containers and init containers)."""
    pod = _pod_spec(obj)
    refs: set[tuple[str, str]] = set()

    def add(kind: str, name) -> None:
        if isinstance(name, str) and name:
            refs.add((kind, name))

    for c in _as_list(pod.get("containers")) + _as_list(pod.get("initContainers")):
        if not isinstance(c, dict):
            continue
        for ef in _as_list(c.get("envFrom")):
            add("Secret", _dig(ef, "secretRef", "name"))
            add("ConfigMap", _dig(ef, "configMapRef", "name"))
        for e in _as_list(c.get("env")):
            add("Secret", _dig(e, "valueFrom", "secretKeyRef", "name"))
            add("ConfigMap", _dig(e, "valueFrom", "configMapKeyRef", "name"))
    for v in _as_list(pod.get("volumes")):
        add("Secret", _dig(v, "secret", "secretName"))
        add("ConfigMap", _dig(v, "configMap", "name"))
        for src in _as_list(_dig(v, "projected", "sources")):
            add("Secret", _dig(src, "secret", "name"))
            add("ConfigMap", _dig(src, "configMap", "name"))
    return refs


def _is_tenant(obj: dict) -> bool:
    return obj.get("kind") == "Tenant" and _group(obj) == "minio.min.io"


def _tenant_secrets(obj: dict) -> set[tuple[str, str]]:
    refs = set()
    for name in [_dig(obj, "spec", "configuration", "name"), _dig(obj, "spec", "credsSecret", "name")] + [
            _dig(u, "name") for u in _as_list(_dig(obj, "spec", "users"))]:
        if isinstance(name, str) and name:
            refs.add(("Secret", name))
    return refs


def _tenant_pools(obj: dict) -> list[str]:
    """The StatefulSets the MinIO operator makes for a Tenant: ``<tenant>-<pool>`` (a pool without a
    name is called ``pool-<index>`` by the operator)."""
    out = []
    for i, pool in enumerate(_as_list(_dig(obj, "spec", "pools"))):
        pname = pool.get("name") if isinstance(pool, dict) else None
        out.append(f"{_name(obj)}-{pname if isinstance(pname, str) and pname else f'pool-{i}'}")
    return out


def _implied_services(obj: dict) -> list[str]:
    """Services an operator creates for a custom resource of the tree (other objects name them)."""
    if obj.get("kind") == "Cluster" and _group(obj) == "postgresql.cnpg.io":
        n = _name(obj)
        return [f"{n}-rw", f"{n}-ro", f"{n}-r"]
    if _is_tenant(obj):
        n = _name(obj)
        return ["minio", f"{n}-hl", f"{n}-console"]
    return []


# host names another object connects to: NAME.NS.svc…, scheme://NAME, NAME:PORT
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST_RES = (
    re.compile(rf"(?<![\w.-])({_LABEL})\.{_LABEL}\.svc\b"),
    re.compile(rf"://({_LABEL})(?=[:/]|$|[\s\"'])"),
    re.compile(rf"(?<![\w.:/-])({_LABEL}):\d{{2,5}}\b"),
)
_WHOLE_LABEL = re.compile(rf"^{_LABEL}$")


_NOT_CONNECTIONS = ("metadata", "labels", "selector", "matchLabels", "matchExpressions", "podSelector",
                    "namespaceSelector", "labelSelector")


def _strings(node) -> Iterator[str]:
    """Every string value (and key) of a node, except labels, selectors and metadata: those name
    pods, not what the object connects to."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for k, v in node.items():
            if k in _NOT_CONNECTIONS:
                continue
            if isinstance(k, str):
                yield k
            yield from _strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v)


def _config_values(obj: dict) -> Iterator[str]:
    """The values that configure a client: a Secret's or ConfigMap's data (decoded), a container's
    env values. A value that is one bare DNS label there (``REDIS_HOST: redis``) names a host."""
    kind = obj.get("kind")
    if kind in ("Secret", "ConfigMap"):
        for key in ("stringData", "data"):
            d = obj.get(key)
            if not isinstance(d, dict):
                continue
            for v in d.values():
                if not isinstance(v, str):
                    continue
                if kind == "Secret" and key == "data":
                    try:
                        v = base64.b64decode(v, validate=False).decode("utf-8")
                    except (binascii.Error, ValueError):
                        continue
                yield v
    elif kind in _WORKLOADS + _RUN_TO_COMPLETION:
        pod = _pod_spec(obj)
        for c in _as_list(pod.get("containers")) + _as_list(pod.get("initContainers")):
            for e in _as_list(_dig(c, "env")):
                v = _dig(e, "value")
                if isinstance(v, str):
                    yield v


def _host_names(obj: dict, *, bare: bool = True) -> set[str]:
    """The Service names an object connects to: ``NAME.NS.svc…``, ``scheme://NAME``, ``NAME:PORT``
    anywhere in its values (labels and selectors excepted); with ``bare``, also a config value that
    is one DNS label."""
    names: set[str] = set()
    texts = list(_strings(obj)) + list(_config_values(obj))
    for t in texts:
        for rx in _HOST_RES:
            names.update(m.group(1) for m in rx.finditer(t))
    if bare:
        names.update(t.strip() for t in _config_values(obj) if _WHOLE_LABEL.match(t.strip()))
    return names


# ------------------------------------------------------------------------------ path spelling

def _spell(path: Path, cwd: Path) -> str:
    """``path`` as the operator types it from ``cwd``: relative when under it, else absolute;
    shell-quoted; never starting with ``-``."""
    absolute = os.path.abspath(path)
    base = os.path.abspath(cwd)
    text = None
    for a, b in ((absolute, base), (os.path.realpath(absolute), os.path.realpath(base))):
        if a == b:
            text = "."
            break
        if a.startswith(b.rstrip(os.sep) + os.sep):
            text = os.path.relpath(a, b)
            break
    if text is None:
        text = absolute
    if text.startswith("-"):
        text = "./" + text
    return shlex.quote(text)


# ------------------------------------------------------------------------------- rotation

def rotation_steps(tree_root: Path, *, changed_files: list[str], changed_objects: set[tuple[str, str]],
                   db_roles: list[tuple[str, str, str]], manual_notes: list[str], helm_values: list[str],
                   answers_path: Path, deployment_path: Path, cwd: Path,
                   servers_first: Iterable[tuple[str, str]] = (), namespace: str = "matrix",
                   wizard: str = "wizard") -> list[Step]:
    """The steps after a rotation, in the order they must run.

    a. ``kubectl apply -f PATH`` per changed manifest (``changed_files``, relative to ``tree_root``).
       Helm values files and plain copies holding no Kubernetes object are not applied.
    b. What lives outside the tree: for each ``(cluster, role, secret_id)`` of ``db_roles``, one
       pipeline that sets the role's password on the CloudNativePG primary (see
       :func:`_db_role_step`); for each MinIO Tenant whose user Secret changed, the ``mc admin user
       add`` step as prose (the ``mc`` alias is the operator's); then ``manual_notes`` as prose, in
       the order given.
    c. ``kubectl rollout restart`` of every Deployment/StatefulSet/DaemonSet whose pod spec reads a
       changed Secret/ConfigMap, and of the pool StatefulSets of every MinIO Tenant whose Secrets
       changed (``<tenant>-<pool>``). Servers come before their clients, each followed by
       ``kubectl rollout status`` so that it is back before its clients restart: a restarted
       workload is a server of another when the other's values (or the Secrets/ConfigMaps it reads)
       name a Service that selects its pods (``redis.NS.svc…``, ``http://minio``, ``host:port``).
       ``servers_first`` (``(kind, name)``) forces workloads to the front. A workload with
       ``updateStrategy: OnDelete`` (rollout restart would replace nothing) and Jobs/CronJobs are
       prose.
    d. Helm values files that changed (``helm_values``): prose, ``helm upgrade`` with ``-f PATH``.
    Last, a note per changed plain copy that holds no Kubernetes object.

    Every path is spelled relative to ``cwd`` (absolute when not under it) and shell-quoted (a
    relative ``answers_path``/``deployment_path`` is taken from the process's current folder);
    ``namespace`` is used for objects whose manifest names none. ``wizard`` is how the operator
    runs the wizard. The secret itself is never in a step.

    For the caller: the MinIO user step and the pool restarts are derived here from the Tenant, so
    ``manual_notes`` should not repeat them (nor name a fixed ``statefulset/minio-pool-0``);
    ``servers_first`` also takes ``("Tenant", name)`` for a Tenant's pools.
    """
    tree = _Tree(Path(tree_root))
    steps: list[Step] = []
    changed = {(k, n) for k, n in changed_objects}
    helm = list(dict.fromkeys(helm_values))
    helm_set = set(helm)

    # a. apply
    plain: list[str] = []
    for rel in dict.fromkeys(changed_files):
        if rel in helm_set:
            continue
        f = tree.files.get(rel)
        if f is not None and f.docs is not None and not f.is_manifest:
            plain.append(rel)
            continue
        if f is None and not rel.endswith(_MANIFEST_SUFFIXES):
            plain.append(rel)
            continue
        objs = [f"{o['kind']}/{_name(o)}" for o in (f.objects if f else []) if (o["kind"], _name(o)) in changed]
        why = f"apply {rel}" + (f" ({', '.join(objs)} changed)" if objs else "")
        steps.append(command(f"kubectl apply -f {_spell(Path(tree_root) / rel, cwd)}", why))

    # b. outside the tree
    for cluster, role, secret_id in db_roles:
        steps.append(_db_role_step(tree, cluster, role, secret_id, answers_path=answers_path,
                                   deployment_path=deployment_path, cwd=cwd, namespace=namespace, wizard=wizard))
    tenants = [(rel, o) for rel, o in tree.objects() if _is_tenant(o)]
    for rel, t in tenants:
        for u in _as_list(_dig(t, "spec", "users")):
            uname = _dig(u, "name")
            if isinstance(uname, str) and ("Secret", uname) in changed:
                steps.append(_minio_user_step(tree, t, uname, namespace))
    for note in manual_notes:
        steps.append(prose(note))

    # c. restarts
    steps.extend(_restart_steps(tree, changed, [(k, n) for k, n in servers_first], namespace))

    # d. Helm
    for rel in helm:
        path = _spell(Path(tree_root) / rel, cwd)
        steps.append(prose(
            f"{rel} changed: upgrade the Helm release that uses it with these values -- "
            f"helm upgrade <release> <chart> -n <namespace> -f {path} "
            "(the release, chart and namespace are yours)",
            why="Helm values are not applied with kubectl"))
    for rel in plain:
        steps.append(prose(
            f"{rel} holds no Kubernetes object (a plain copy no workload mounts): nothing to apply; "
            "use it wherever you run that component outside these manifests"))
    return steps


def _object_namespace(obj: dict | None, default: str) -> str:
    ns = _meta(obj).get("namespace") if obj else None
    return ns if isinstance(ns, str) and ns else default


def _db_role_step(tree: _Tree, cluster: str, role: str, secret_id: str, *, answers_path: Path,
                  deployment_path: Path, cwd: Path, namespace: str, wizard: str) -> Step:
    """One pipeline, run in a subshell with pipefail so that it does not change the operator's
    shell and fails when either side fails::

        (set -o pipefail; wizard secrets show ID --answers FILE --deployment DIR --as-sql-role ROLE
          | kubectl -n NS exec -i svc/CLUSTER-rw -c postgres -- psql -U postgres -v ON_ERROR_STOP=1 -d postgres)

    The secret never appears in the printed text nor in any process's arguments: the wizard prints
    the SQL (:func:`alter_role_sql`) on its stdout, which psql reads on its stdin. Nothing can expand
    to nothing: no command substitution; a wizard that fails prints nothing, psql then runs no
    statement, and pipefail makes the whole command fail.

    The primary: ``kubectl exec`` takes ``TYPE/NAME`` of any object with a pod selector and runs in
    the first of its pods. CloudNativePG's ``<cluster>-rw`` Service is exactly that: its selector
    is the cluster label plus the primary role label (``cnpg.io/instanceRole: primary``; ``role:
    primary`` on older operators), which the operator moves at every failover or switchover. So the
    role label is followed by the operator's own definition, whatever its version, in one process
    that fails loudly (``kubectl`` errors out when no pod matches) -- never a guessed ``<cluster>-1``
    pod, and no ``$(kubectl get pod -l …)`` that could expand to nothing. ``-c postgres`` names the
    instance container, whatever sidecars a plugin adds.
    """
    found = tree.find("Cluster", cluster)
    ns = _object_namespace(found[1] if found else None, namespace)
    q = shlex.quote
    show = (f"{q(wizard)} secrets show {q(secret_id)} --answers {_spell(answers_path, cwd)} "
            f"--deployment {_spell(deployment_path, cwd)} --as-sql-role {q(role)}")
    psql = (f"kubectl -n {q(ns)} exec -i {q(f'svc/{cluster}-rw')} -c postgres -- "
            "psql -U postgres -v ON_ERROR_STOP=1 -d postgres")
    return command(f"(set -o pipefail; {show} | {psql})",
                   why=f"set the password of role {role} on the primary of Cluster/{cluster} ({secret_id}), "
                       "before its clients restart")


def _minio_user_step(tree: _Tree, tenant: dict, secret_name: str, namespace: str) -> Step:
    ns = _object_namespace(tenant, namespace)
    found = tree.find("Secret", secret_name)
    access = None
    if found:
        access = _dig(found[1], "stringData", "CONSOLE_ACCESS_KEY")
        if not isinstance(access, str) or not _WHOLE_ACCESS_KEY.match(access):
            access = None
    access = access or "<access key>"
    read = (f"kubectl -n {ns} get secret {secret_name} -o jsonpath='{{.data.CONSOLE_SECRET_KEY}}' | base64 -d")
    return prose(
        f"Tenant/{_name(tenant)}: MinIO keeps its users in its own store, and the operator created the user of "
        f"Secret/{secret_name} once; it does not change its secret key. Before restarting the clients below, set "
        f"it with your mc alias for this tenant in place of <alias>: "
        f"mc admin user add <alias> {access} <new secret key> "
        f"(the same access key; the new secret key is CONSOLE_SECRET_KEY of Secret/{secret_name}: {read}). "
        "The user keeps its policies.",
        why="the mc alias is yours")


_WHOLE_ACCESS_KEY = re.compile(r"^[A-Za-z0-9._@-]{3,128}$")


@dataclass
class _Workload:
    kind: str
    name: str
    namespace: str
    rel: str
    labels: dict
    reads: set[tuple[str, str]]
    connects: set[str]
    obj: dict | None = None
    tenant: str | None = None
    clients: set[int] = field(default_factory=set)


def _restart_steps(tree: _Tree, changed: set[tuple[str, str]], servers_first: list[tuple[str, str]],
                   namespace: str) -> list[Step]:
    configs = {(o.get("kind"), _name(o)): o for _, o in tree.objects() if o.get("kind") in ("Secret", "ConfigMap")}
    targets: list[_Workload] = []
    later: list[Step] = []
    for rel, o in tree.objects():
        kind = o.get("kind")
        if kind in _WORKLOADS + _RUN_TO_COMPLETION:
            reads = _pod_refs(o)
            if not reads & changed:
                continue
            if kind in _RUN_TO_COMPLETION:
                later.append(_run_to_completion_note(kind, _name(o), reads & changed))
                continue
            connects = tree.host_names(o)
            for ref in reads:
                if ref in configs:
                    connects |= tree.host_names(configs[ref])
            targets.append(_Workload(kind, _name(o), _object_namespace(o, namespace), rel, _pod_labels(o),
                                     reads, connects, o))
        elif _is_tenant(o):
            reads = _tenant_secrets(o)
            if not reads & changed:
                continue
            for sts in _tenant_pools(o):
                targets.append(_Workload("StatefulSet", sts, _object_namespace(o, namespace), rel,
                                         {"v1.min.io/tenant": _name(o)}, reads, set(), None, tenant=_name(o)))

    # who serves whom: a Service (or an operator's implied Service) that selects a target's pods,
    # named by another target
    services: list[tuple[str, str, dict | None, str | None]] = []  # (name, ns, selector, tenant)
    for _, o in tree.objects():
        if o.get("kind") == "Service" and isinstance(_dig(o, "spec", "selector"), dict):
            services.append((_name(o), _object_namespace(o, namespace), o["spec"]["selector"], None))
        elif _is_tenant(o):
            for s in _implied_services(o):
                services.append((s, _object_namespace(o, namespace), None, _name(o)))
    for i, w in enumerate(targets):
        for name, ns, selector, tenant in services:
            if ns != w.namespace:
                continue
            if tenant is not None:
                selects = w.tenant == tenant
            else:
                selects = bool(selector) and all(w.labels.get(k) == v for k, v in selector.items())
            if not selects:
                continue
            for j, c in enumerate(targets):
                if j != i and name in c.connects:
                    w.clients.add(j)

    # peers that name each other (Synapse's main process and its workers) are not servers of one
    # another: only edges between different strongly connected components count
    servers_of = {i: {j for j, s in enumerate(targets) if i in s.clients} for i in range(len(targets))}
    for comp in _sccs(list(range(len(targets))), servers_of, lambda i: i):
        for i in comp:
            targets[i].clients -= set(comp)

    forced = {key: n for n, key in enumerate(servers_first)}
    for i, w in enumerate(targets):
        if _forced_rank(w, forced) is not None:  # declared a server: of every workload not declared one
            w.clients |= {j for j, c in enumerate(targets) if _forced_rank(c, forced) is None}
    order = _server_order(targets, forced)
    steps: list[Step] = []
    position = {i: n for n, i in enumerate(order)}
    for i in order:
        w = targets[i]
        w.clients = {j for j in w.clients if position[j] > position[i]}  # only those still to restart
        kind_l = w.kind.lower()
        strategy = _dig(w.obj, "spec", "updateStrategy", "type") if w.obj else None
        what = f"{w.kind}/{w.name}"
        changed_reads = ", ".join(f"{k}/{n}" for k, n in sorted(w.reads & changed))
        clients = sorted(f"{targets[j].kind}/{targets[j].name}" for j in w.clients)
        serves = f"; it serves {', '.join(clients)}" if clients else ""
        src = f"the MinIO operator's pool of Tenant/{w.tenant}, {w.rel}" if w.tenant else w.rel
        if strategy == "OnDelete":
            steps.append(prose(_on_delete_text(w), why=f"reads {changed_reads}{serves}"))
            continue
        ns, obj = shlex.quote(w.namespace), shlex.quote(f"{kind_l}/{w.name}")
        steps.append(command(f"kubectl -n {ns} rollout restart {obj}",
                             why=f"restart {what} ({src}): it reads {changed_reads}{serves}"))
        if clients:
            steps.append(command(f"kubectl -n {ns} rollout status {obj} --timeout=10m",
                                 why=f"wait until {what} is back before restarting its clients"))
    return steps + later


def _on_delete_text(w: _Workload) -> str:
    ns = w.namespace
    if w.kind == "StatefulSet":
        replicas = _dig(w.obj, "spec", "replicas")
        n = replicas if isinstance(replicas, int) and replicas >= 0 else 1
        pods = ", then ".join(f"kubectl -n {ns} delete pod {w.name}-{k}" for k in reversed(range(n)))
        how = f"delete its pods one at a time, waiting for each to be Ready before the next: {pods}"
    else:
        sel = ",".join(f"{k}={v}" for k, v in sorted(w.labels.items()))
        how = (f"delete its pods one at a time (kubectl -n {ns} get pods -l {sel}), "
               "waiting for each to be Ready before the next")
    return (f"{w.kind}/{w.name} replaces its pods only when they are deleted (updateStrategy OnDelete), "
            f"so rollout restart would change nothing: {how}; then go on with its clients")


def _run_to_completion_note(kind: str, name: str, reads: set[tuple[str, str]]) -> Step:
    what = ", ".join(f"{k}/{n}" for k, n in sorted(reads))
    if kind == "Job":
        text = (f"Job/{name} reads the new value ({what}) on its next run; a Job that already ran does not run "
                "again by itself: delete and re-apply it if it must run now")
    elif kind == "CronJob":
        text = f"CronJob/{name} reads the new value ({what}) on its next scheduled run"
    else:
        text = f"Pod/{name} reads the new value ({what}) only when re-created: delete and re-apply it"
    return prose(text)


def _server_order(targets: list[_Workload], forced: dict[tuple[str, str], int]) -> list[int]:
    """Servers before their clients (a topological order; a cycle is cut at its tie-break), forced
    servers first; ties: StatefulSet, DaemonSet, Deployment, then name."""
    rank = {"StatefulSet": 0, "DaemonSet": 1, "Deployment": 2}

    def key(i: int):
        f = _forced_rank(targets[i], forced)
        return (0 if f is not None else 1, f or 0, rank.get(targets[i].kind, 9), targets[i].name)

    servers_of = {i: {j for j, s in enumerate(targets) if i in s.clients} for i in range(len(targets))}
    for i in servers_of:  # a forced server waits for no derived one
        if _forced_rank(targets[i], forced) is not None:
            servers_of[i] = {j for j in servers_of[i] if _forced_rank(targets[j], forced) is not None}
    return _topo(list(range(len(targets))), servers_of, key)


def _forced_rank(w: _Workload, forced: dict[tuple[str, str], int]) -> int | None:
    """Its place in ``servers_first``: by (kind, name), or for a MinIO pool by its Tenant."""
    if (w.kind, w.name) in forced:
        return forced[(w.kind, w.name)]
    if w.tenant and ("Tenant", w.tenant) in forced:
        return forced[("Tenant", w.tenant)]
    return None


def _sccs(nodes: list, deps: dict, key) -> list[list]:
    """Strongly connected components (Tarjan), each sorted by key."""
    index: dict = {}
    low: dict = {}
    stack: list = []
    on: set = set()
    comps: list[list] = []
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(deps.get(v, ()), key=key):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            comps.append(sorted(comp, key=key))

    for v in sorted(nodes, key=key):
        if v not in index:
            strong(v)
    return comps


def _topo(nodes: list, deps: dict, key) -> list:
    """Nodes after their dependencies; among the ready ones the smallest key first. Cycles are
    condensed and their members placed together, by key."""
    comps = _sccs(nodes, deps, key)
    comp_of = {v: n for n, c in enumerate(comps) for v in c}
    cdeps = {n: {comp_of[d] for v in c for d in deps.get(v, ()) if d in comp_of} - {n} for n, c in enumerate(comps)}
    done: set = set()
    out: list = []
    while len(done) < len(comps):
        ready = [n for n in range(len(comps)) if n not in done and cdeps[n] <= done]
        n = min(ready, key=lambda n: key(comps[n][0]))
        done.add(n)
        out.extend(comps[n])
    return out


# ---------------------------------------------------------------------------------- deploy

_PREFIX = re.compile(r"^(\d+)[-_.]")


def _prefix(name: str) -> int | None:
    m = _PREFIX.match(name)
    return int(m.group(1)) if m else None


@dataclass
class _Unit:
    """What one ``kubectl apply`` covers: a whole folder, or chosen files of it."""
    folder: str                      # rel, "" for the top
    files: list[str]                 # the manifests
    whole: bool                      # every file kubectl would read is a manifest: apply the folder


def deploy_steps(tree_root: Path, *, cwd: Path, blocking_lines: list[tuple[str, int, str]]) -> list[Step]:
    """The next steps after a successful apply, in the order they must run.

    When the tree ships its own deploy script (``deploy*.sh`` at the top or in ``scripts/``; of
    several, the one named ``…all…``) and ``blocking_lines`` is empty: run it. It is run from the
    tree's root unless that is where the operator is or the script changes to its own folder
    (``cd`` with ``dirname``/``BASH_SOURCE``): its pre-flight greps and relative paths assume it.
    When ``blocking_lines`` (the lines the script's ``grep -r CHANGEME`` would still find) remain,
    a prose step says the script would stop on them (count, first few ``file:line``), and the
    manual order follows.

    The manual order, derived from the tree and not from a list of our paths:

    1. Files holding a Namespace (and only built-in kinds), ``namespace.yaml`` first; then other
       manifests at the top of the tree.
    2. The Helm charts the manifests need, before them (prose: the release and chart are the
       operator's): a chart whose values file is in the tree is needed when it provides an API
       group the manifests use but Kubernetes does not serve (a CRD: ``cert-manager.io``,
       ``postgresql.cnpg.io``, ``minio.min.io``, ``monitoring.coreos.com``), or the ingress class
       the Ingresses name. Which values file provides what is judged from evidence, strongest
       first: a manifest using the group names the values file; the values file names the group,
       one of its kinds, or a file/folder using it (or defines the ingress class); their names share
       a label (``cert-manager`` / ``cert-manager.io``, ``minio-operator`` / ``minio.min.io``,
       ``nginx-ingress`` / class ``nginx``), a group label abbreviates a chart label (``cnpg`` /
       ``cloudnativepg``) or a chart label begins a kind (``prometheus`` / ``PrometheusRule``). A
       group no values file provides is named in prose. Charts are listed in the order of the first
       folder that needs them.
    3. ``kubectl apply -f DIR`` per folder holding manifests, depth first. Siblings with numeric
       prefixes (``01-postgresql``) follow their numbers; siblings without follow their
       dependencies -- a folder comes after the folders whose Services (or operator-made Services,
       e.g. CloudNativePG ``-rw``, MinIO ``minio``) its objects connect to and whose
       Secrets/ConfigMaps its pods read; a cycle is cut in favour of the folder more others depend
       on; ties by name. A folder holding plain copies beside its manifests (``config.json``, a
       plain ``homeserver.yaml``, which ``kubectl apply -f DIR`` would reject) gets its manifests
       listed file by file; folders holding no Kubernetes object (``values/``, ``config/``) are
       skipped.
    4. The other charts of the tree's Helm values files (``*values.yaml`` holding no object), if
       used.
    """
    tree = _Tree(Path(tree_root))
    root = Path(tree_root)
    steps: list[Step] = []
    script = _deploy_script(root)
    if isinstance(script, Path) and not blocking_lines:
        return [_run_script_step(root, script, cwd)]
    if isinstance(script, Path):
        rel = script.relative_to(root).as_posix()
        shown = ", ".join(f"{f}:{n}" for f, n, _ in blocking_lines[:3])
        more = f" and {len(blocking_lines) - 3} more" if len(blocking_lines) > 3 else ""
        steps.append(prose(
            f"the tree's own {rel} would stop before deploying: its pre-flight `grep -r CHANGEME` still finds "
            f"{len(blocking_lines)} line{'s' if len(blocking_lines) != 1 else ''} ({shown}{more}) -- comments, docs "
            "or scripts, which the wizard never edits. Remove those mentions and run the script, or deploy by hand "
            "in this order:"))
    elif script:
        steps.append(prose(
            f"the tree ships several deploy scripts ({', '.join(p.relative_to(root).as_posix() for p in script)}); "
            "run the one that fits, or deploy by hand in this order:"))
    steps.extend(_manual_order(tree, root, cwd))
    return steps


def _deploy_script(root: Path) -> Path | list[Path] | None:
    found = []
    for folder in (root, root / "scripts"):
        try:
            entries = sorted(folder.iterdir())
        except OSError:
            continue
        for p in entries:
            if re.fullmatch(r"deploy[\w.-]*\.sh", p.name) and p.is_file():
                try:
                    real = p.resolve(strict=True)
                except OSError:
                    continue
                if real == root.resolve() or root.resolve() in real.parents:
                    found.append(p)
    if not found:
        return None
    if len(found) == 1:
        return found[0]
    alls = [p for p in found if "all" in p.stem.lower()]
    return alls[0] if len(alls) == 1 else found


def _run_script_step(root: Path, script: Path, cwd: Path) -> Step:
    rel = script.relative_to(root).as_posix()
    why = f"the tree's own deploy script {rel}"
    if os.path.abspath(root) == os.path.abspath(cwd):
        return command(f"bash {shlex.quote(rel)}", why)
    try:
        text = script.read_text(errors="replace")
    except OSError:
        text = ""
    locates_itself = re.search(r"\bcd\b[^\n]*(dirname|BASH_SOURCE)", text) is not None
    if locates_itself:
        return command(f"bash {_spell(script, cwd)}", why)
    return command(f"(cd {_spell(root, cwd)} && bash {shlex.quote(rel)})", why + ", run from the tree's root")


def _manual_order(tree: _Tree, root: Path, cwd: Path) -> list[Step]:
    manifests = {rel for rel, f in tree.files.items() if f.is_manifest}
    steps: list[Step] = []

    # 1. namespaces, then other files at the top
    def builtin_only(rel: str) -> bool:
        return all(not _is_custom_group(_group(o)) for o in tree.files[rel].objects)

    ns_files = sorted((rel for rel in manifests if tree.files[rel].docs is not None and builtin_only(rel)
                       and any(o["kind"] == "Namespace" for o in tree.files[rel].objects)),
                      key=lambda r: (r.count("/"), r))
    early = list(ns_files) + sorted(r for r in manifests if "/" not in r and r not in ns_files
                                    and tree.files[r].docs is not None and builtin_only(r))
    for rel in early:
        kinds = ", ".join(f"{o['kind']}/{_name(o)}" for o in tree.files[rel].objects)
        steps.append(command(f"kubectl apply -f {_spell(root / rel, cwd)}", why=f"first: {kinds}" if kinds else ""))

    # 3 (computed before 2: charts are ordered by the first folder that needs them)
    units = _order_units(tree, manifests, "")
    unit_steps: list[tuple[_Unit, Step]] = []
    for u in units:
        if u.folder == "":  # the top's files not in `early` (they use a CRD, or do not parse)
            rest = [r for r in u.files if r not in early]
            if rest:
                unit_steps.append((_Unit("", rest, False), command(
                    "kubectl apply " + " ".join(f"-f {_spell(root / r, cwd)}" for r in rest),
                    "the manifests at the top of the tree")))
            continue
        if u.whole:
            text = f"kubectl apply -f {_spell(root / u.folder, cwd)}"
            why = f"{u.folder}/"
        else:
            text = "kubectl apply " + " ".join(f"-f {_spell(root / r, cwd)}" for r in u.files)
            why = f"{u.folder}/ (its manifests only: the other files are plain copies)"
        unit_steps.append((u, command(text, why)))

    # 2. charts the manifests need
    helm = sorted(rel for rel, f in tree.files.items()
                  if re.search(r"values\.ya?ml$", rel) and f.docs is not None and not f.is_manifest)
    needs = _custom_needs(tree, manifests)
    position = {}
    for n, (u, _) in enumerate(unit_steps):
        for r in u.files:
            position[r] = n
    providers: dict[str, list[str]] = {}  # values rel -> what it provides
    first_use: dict[str, int] = {}
    unmatched: list[str] = []
    for need in needs:
        best = _best_values(tree, helm, need)
        label = need.describe()
        users = sorted({r.rsplit("/", 1)[0] if "/" in r else r for r in need.files})
        if not best:
            unmatched.append(f"{label} (used in {', '.join(users)})")
            continue
        for v in best:
            providers.setdefault(v, []).append(label)
            first_use[v] = min([first_use.get(v, 10 ** 6)] + [position.get(r, -1) for r in need.files])
    for v in sorted(providers, key=lambda v: (first_use[v], v)):
        steps.append(prose(
            f"install the Helm chart configured by {v} -- it provides {'; '.join(providers[v])}, which the manifests "
            f"below need: helm upgrade --install <release> <chart> -n <namespace> --create-namespace --wait "
            f"-f {_spell(root / v, cwd)} (the release, chart and namespace are yours{_suggestion(tree, v)})",
            why="an operator before the manifests that use it"))
    for what in unmatched:
        steps.append(prose(f"install the operator that serves {what} first: no Helm values file in the tree "
                           "provides it", why="kubectl apply fails on a kind the cluster does not know"))
    steps.extend(s for _, s in unit_steps)

    # 4. the other charts
    for v in helm:
        if v in providers:
            continue
        steps.append(prose(
            f"if you use the chart configured by {v}: helm upgrade --install <release> <chart> -n <namespace> "
            f"-f {_spell(root / v, cwd)} (the release, chart and namespace are yours{_suggestion(tree, v)})"))
    return steps


def _suggestion(tree: _Tree, rel: str) -> str:
    """The `helm upgrade --install …` line a values file's own comments suggest, if any."""
    text = tree.files[rel].text or ""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"\s*#\s*(helm (?:upgrade --install|install) .*)$", line)
        if not m:
            continue
        cmd = m.group(1)
        j = i
        while cmd.endswith("\\") and j + 1 < len(lines):
            j += 1
            cmd = cmd[:-1].rstrip() + " " + re.sub(r"^\s*#\s*", "", lines[j]).strip()
        return f"; its comments suggest: {cmd.strip()}"
    return ""


def _order_units(tree: _Tree, manifests: set[str], folder: str) -> list[_Unit]:
    """Depth first: the folder's own files, then its sub-folders in order (see deploy_steps)."""
    prefix = f"{folder}/" if folder else ""
    own = sorted(r for r in manifests if r.startswith(prefix) and "/" not in r[len(prefix):])
    subs = sorted({r[len(prefix):].split("/", 1)[0] for r in manifests
                   if r.startswith(prefix) and "/" in r[len(prefix):]})
    out: list[_Unit] = []
    if own:
        readable = [r for r in tree.files if r.startswith(prefix) and "/" not in r[len(prefix):]]
        out.append(_Unit(folder, own, whole=set(readable) == set(own)))
    for sub in _order_siblings(tree, manifests, prefix, subs):
        out.extend(_order_units(tree, manifests, prefix + sub))
    return out


def _order_siblings(tree: _Tree, manifests: set[str], prefix: str, subs: list[str]) -> list[str]:
    provides: dict[str, set] = {}
    needs: dict[str, set] = {}
    for s in subs:
        p, n = set(), set()
        for rel in manifests:
            if not rel.startswith(f"{prefix}{s}/"):
                continue
            for o in tree.files[rel].objects:
                kind = o.get("kind")
                if kind == "Service":
                    p.add(("svc", _name(o)))
                for name in _implied_services(o):
                    p.add(("svc", name))
                if kind in ("Secret", "ConfigMap"):
                    p.add((kind, _name(o)))
                n |= {("svc", h) for h in tree.host_names(o, bare=False)}
                if kind in _WORKLOADS + _RUN_TO_COMPLETION:
                    n |= _pod_refs(o)
        provides[s], needs[s] = p, n
    prefixed = sorted((s for s in subs if _prefix(s) is not None), key=lambda s: (_prefix(s), s))
    deps: dict[str, set[str]] = {s: set() for s in subs}
    for a in subs:
        for b in subs:
            if a == b or (a in prefixed and b in prefixed):
                continue  # numbered siblings follow their numbers
            if needs[a] & provides[b]:
                deps[a].add(b)
    for before, after in zip(prefixed, prefixed[1:]):
        deps[after].add(before)
    dependents = {s: sum(1 for a in subs if s in deps[a]) for s in subs}

    def key(s: str):
        return (-dependents[s], _prefix(s) if _prefix(s) is not None else 10 ** 9, s)

    if len(prefixed) == len(subs):
        return prefixed
    return _topo(subs, deps, key)


@dataclass
class _Need:
    group: str | None                 # a CRD group, or None for an ingress class
    kinds: set[str]
    ingress_class: str | None
    files: set[str]

    def describe(self) -> str:
        if self.group:
            return f"{self.group} ({', '.join(sorted(self.kinds))})"
        return f"the ingress class {self.ingress_class}"


def _custom_needs(tree: _Tree, manifests: set[str]) -> list[_Need]:
    groups: dict[str, _Need] = {}
    classes: dict[str, _Need] = {}
    for rel in sorted(manifests):
        for o in tree.files[rel].objects:
            g = _group(o)
            if _is_custom_group(g):
                need = groups.setdefault(g, _Need(g, set(), None, set()))
                need.kinds.add(o["kind"])
                need.files.add(rel)
            for cls in _ingress_classes(o):
                need = classes.setdefault(cls, _Need(None, set(), cls, set()))
                need.files.add(rel)
    return [groups[g] for g in sorted(groups)] + [classes[c] for c in sorted(classes)]


def _ingress_classes(node) -> Iterator[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("ingressClassName", "kubernetes.io/ingress.class") and isinstance(v, str) and v:
                yield v
            else:
                yield from _ingress_classes(v)
    elif isinstance(node, list):
        for v in node:
            yield from _ingress_classes(v)


_GENERIC_LABELS = {"io", "com", "org", "net", "dev", "k8s", "x", "values", "value", "helm", "chart", "operator",
                   "stack", "install", "config", "the"}


def _labels(text: str) -> set[str]:
    return {t for t in re.split(r"[^a-z0-9]+", text.lower()) if t and t not in _GENERIC_LABELS}


def _abbreviates(short: str, long: str) -> bool:
    if len(short) < 3 or len(long) <= len(short) or short[0] != long[0]:
        return False
    it = iter(long)
    return all(ch in it for ch in short)


def _best_values(tree: _Tree, helm: list[str], need: _Need) -> list[str]:
    scores: dict[str, int] = {}
    for v in helm:
        f = tree.files[v]
        text = f.text or ""
        name = v.rsplit("/", 1)[-1]
        vlabels = _labels(re.sub(r"[-_.]?values\.ya?ml$", "", name))
        score = 0
        if any(name in (tree.files[r].text or "") for r in need.files):
            score += 3
        if need.group:
            if (need.group in text or any(re.search(rf"\b{re.escape(k)}", text) for k in need.kinds)
                    or any(_mentions_path(text, r) for r in need.files)):
                score += 2
            glabels = _labels(need.group)
            if vlabels & glabels:
                score += 2
            elif (any(_abbreviates(g, l) for g in glabels for l in vlabels)
                  or any(len(l) >= 4 and k.lower().startswith(l) for l in vlabels for k in need.kinds)):
                score += 1
        else:
            cls = need.ingress_class
            if _defines_ingress_class(f.docs, cls):
                score += 3
            if cls in vlabels and "ingress" in vlabels:
                score += 2
        if score:
            scores[v] = score
    if not scores:
        return []
    top = max(scores.values())
    if top < 2:
        return []
    return sorted(v for v, s in scores.items() if s == top)


def _mentions_path(text: str, rel: str) -> bool:
    parts = rel.split("/")
    for n in range(len(parts), 1, -1):
        if "/".join(parts[:n]) + ("" if n == len(parts) else "/") in text:
            return True
    return False


def _defines_ingress_class(docs, cls: str) -> bool:
    def walk(node) -> bool:
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "ingressClassResource" and isinstance(v, dict) and v.get("name") == cls:
                    return True
                if k == "ingressClass" and v == cls:
                    return True
                if walk(v):
                    return True
        elif isinstance(node, list):
            return any(walk(v) for v in node)
        return False

    return any(walk(d) for d in docs or [])


# --------------------------------------------------------------------------------- render

def format_steps(steps: list[Step]) -> list[str]:
    """Numbered lines: a command's reason on the numbered line and the command itself alone on the
    next, indented, so it can be copied; a prose step marked ``[by hand]``."""
    lines: list[str] = []
    width = len(str(len(steps)))
    indent = " " * (width + 2)
    for n, s in enumerate(steps, 1):
        head = f"{n:>{width}}. "
        if s.kind == COMMAND:
            lines.append(head + (s.why or "run"))
            lines.append(indent + "    " + s.text)
        else:
            body = s.text.splitlines() or [""]
            lines.append(head + "[by hand] " + body[0])
            lines.extend(indent + line for line in body[1:])
            if s.why:
                lines.append(indent + f"({s.why})")
    return lines


def to_json(steps: list[Step]) -> list[dict]:
    """The steps as JSON-ready data: ``[{"n": 1, "kind": "command", "text": …, "why": …}, …]``."""
    return [{"n": n, "kind": s.kind, "text": s.text, "why": s.why} for n, s in enumerate(steps, 1)]
