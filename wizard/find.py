"""Find a catalog location in the operator's own tree (PRODUCT.md, "The operator's own tree").

A location's object is looked for in this order, and the first rank that yields any candidate decides
(exactly one: found; more: ambiguous, never guessed):
  1. the catalog's file and object;
  2. an object of the same kind whose name holds the catalog name's `-`-separated labels as one unbroken
     run, with labels added before or after (`matrix-minio`, `minio-prod` for `minio`), in any file;
  3. the only object of that kind that also has the address's key path.
An object found at rank 1 by another catalog address is never a candidate for a different one. The
answers file's `locations:` map settles an address for good. Two meanings are followed, not searched:
a homeserver's signing key is the Secret key its pod mounts for `signing_key_path` (also through an
init container that copies it), and a `${VAR}` of an envsubst'd config is that key of the Secret its pod
loads. A plain file (Helm values) is looked for by its name, then by its key path; a plain copy no
workload mounts is optional and never searched for.
"""
from __future__ import annotations

import posixpath
import re
import shlex
from dataclasses import dataclass

from wizard.catalog import Location
from wizard.errors import TreeError
from wizard.index import Obj, TreeIndex
from wizard.locate import resolve as R
from wizard.locate.resolve import Address
from wizard.locate.yamlspan import map_get, parse_yaml_single

# what a Problem is: leftovers make the exit code 1, notes do not
PARSE, UNKNOWN_TOKEN, AMBIGUOUS, NOT_FOUND, HELD_BACK, TOKEN_CONFLICT = (
    "parse", "unknown-token", "ambiguous", "not-found", "held-back", "token-conflict")
ABSENT, OPTIONAL, DISABLED, COMMENT, OUTSIDE, PREFLIGHT = (
    "absent-component", "optional-missing", "disabled-component", "comment", "not-a-manifest", "preflight")


@dataclass
class Problem:
    kind: str
    file: str | None
    line: int
    message: str
    fix: str = ""
    id: str | None = None
    token: str | None = None
    address: str | None = None
    note: bool = False

    def format(self) -> str:
        where = f"{self.file}:{self.line}" if self.file else (self.address or "?")
        return f"{where}: {self.message}" + (f" ({self.fix})" if self.fix else "")

    def to_json(self) -> dict:
        return {"kind": self.kind, "file": self.file, "line": self.line, "id": self.id, "token": self.token,
                "address": self.address, "message": self.message, "fix": self.fix}


@dataclass
class Place:
    """A location found: the address as resolved in this tree, and how it was found."""

    location: Location
    address: Address
    found: R.Found
    obj: str | None = None  # "file › Kind/name" where it is
    how: str = ""  # "" at the catalog's own place

    @property
    def spans(self):
        return self.found.spans


@dataclass
class _ObjHit:
    obj: Obj | None = None
    file: str | None = None  # a plain file
    how: str = ""
    problem: Problem | None = None


def object_address(address: str) -> tuple[str, tuple[str, str] | None]:
    a = Address.parse(address)
    return a.file, a.obj


def labels_run(wanted: str, name: str) -> bool:
    """`name`'s `-`-separated labels hold `wanted`'s as one unbroken run."""
    w, n = wanted.split("-"), name.split("-")
    return any(n[i:i + len(w)] == w for i in range(len(n) - len(w) + 1))


def _key_path(addr: Address) -> list[str]:
    """The leading plain keys of the address's first path step (what rank 3 compares)."""
    if not addr.steps or addr.steps[0].fmt != "path":
        return []
    out = []
    for seg in addr.steps[0].arg:
        if seg.op != "key":
            break
        out.append(str(seg.arg))
    return out


def _has_path(node, keys: list[str]) -> bool:
    for k in keys:
        node = map_get(node, k)
        if node is None:
            return False
    return bool(keys)


class Finder:
    def __init__(self, index: TreeIndex, catalog_objects, settle: dict[str, str] | None = None):
        self.index = index
        self.settle = dict(settle or {})
        self._objects: dict[tuple, _ObjHit] = {}
        self.claimed: dict[tuple, str] = {}
        for addr in catalog_objects:
            file, obj = object_address(addr)
            if obj is None:
                continue
            hits = index.in_file(file, *obj)
            if len(hits) == 1:
                self.claimed[hits[0].key] = f"{file} › {obj[0]}/{obj[1]}"
        self._envsubst = None

    # ---------------------------------------------------------------- objects and files

    def find_object(self, file: str, kind: str, name: str, key_path=()) -> _ObjHit:
        key = (file, kind, name, tuple(key_path))
        if key not in self._objects:
            self._objects[key] = self._search(file, kind, name, list(key_path))
        return self._objects[key]

    def _search(self, file: str, kind: str, name: str, key_path: list[str]) -> _ObjHit:
        me = f"{file} › {kind}/{name}"
        settled = self.settle.get(me)
        if settled:
            sfile, sobj = object_address(settled)
            hits = self.index.in_file(sfile, *sobj) if sobj else []
            if len(hits) == 1:
                return _ObjHit(hits[0], how=f"{sobj[0]}/{sobj[1]} in {sfile}, as `locations:` says")
            return _ObjHit(problem=Problem(NOT_FOUND, None, 0, f"`locations:` says {settled} for {me}, and there is "
                                           "no such object", "fix the entry in the answers file's locations:",
                                           address=me))
        if file in self.index.broken:
            return _ObjHit(problem=self._parse_problem(file))
        hits = self.index.in_file(file, kind, name)
        if len(hits) == 1:
            return _ObjHit(hits[0])
        if len(hits) > 1:
            return _ObjHit(problem=self._ambiguous(me, hits))

        def free(o: Obj) -> bool:
            return self.claimed.get(o.key) in (None, me)

        rank2 = [o for o in self.index.of_kind(kind) if labels_run(name, o.name) and free(o)]
        if len(rank2) == 1:
            o = rank2[0]
            how = f"{kind}/{o.name} in {o.file} for {kind}/{name}" if o.name != name else f"{kind}/{name} in {o.file}"
            return _ObjHit(o, how=how)
        if len(rank2) > 1:
            return _ObjHit(problem=self._ambiguous(me, rank2))
        rank3 = [o for o in self.index.of_kind(kind) if free(o) and _has_path(o.node, key_path)]
        if len(rank3) == 1:
            o = rank3[0]
            return _ObjHit(o, how=f"{kind}/{o.name} in {o.file} for {kind}/{name} (the only {kind} with "
                                  f"{'.'.join(key_path)})")
        if len(rank3) > 1:
            return _ObjHit(problem=self._ambiguous(me, rank3))
        return _ObjHit(problem=Problem(NOT_FOUND, None, 0, f"{kind}/{name} is not in this tree (looked for it in "
                                       f"{file}, by name and by its keys)", "add it, or say where it is in the "
                                       "answers file's locations:", address=me))

    def _ambiguous(self, me: str, hits: list[Obj]) -> Problem:
        first = hits[0]
        return Problem(AMBIGUOUS, first.file, first.line(),
                       f"{me.split(' › ')[1]} could be any of " + ", ".join(f"{o.file} › {o.kind}/{o.name}"
                                                                            for o in hits),
                       f'say which in the answers file: locations: {{"{me}": "{first.file} › {first.kind}/'
                       f'{first.name}"}}', address=me)

    def _parse_problem(self, rel: str) -> Problem:
        exc = self.index.broken[rel]
        where = exc.where or rel
        f, _, ln = where.rpartition(":")
        line = int(ln) if ln.isdigit() else 0
        return Problem(PARSE, rel, line, f"does not parse: {exc.message}", "fix it; a re-run configures it")

    def find_file(self, file: str, key_path: list[str], optional: bool) -> _ObjHit:
        if file in self.index.broken:
            return _ObjHit(problem=self._parse_problem(file))
        if file in self.index.files:
            return _ObjHit(file=file)
        if optional:
            return _ObjHit(problem=Problem(OPTIONAL, file, 0, "a plain copy no workload mounts is absent: nothing "
                                           "to write there", note=True, address=file))
        base = posixpath.basename(file)
        same = [f for f in self.index.manifests if posixpath.basename(f) == base]
        if len(same) == 1:
            if same[0] in self.index.broken:
                return _ObjHit(problem=self._parse_problem(same[0]))
            return _ObjHit(file=same[0], how=f"{same[0]} for {file}")
        if len(same) > 1:
            return _ObjHit(problem=Problem(AMBIGUOUS, same[0], 0, f"{file} could be any of {', '.join(same)}",
                                           f'say which in the answers file: locations: {{"{file}": "{same[0]}"}}',
                                           address=file))
        docs = [(rel, doc) for rel, _, doc in self.index.plain_docs if _has_path(doc, key_path)]
        if len(docs) == 1:
            return _ObjHit(file=docs[0][0], how=f"{docs[0][0]} for {file} (the only file with "
                                                f"{'.'.join(key_path)})")
        return _ObjHit(problem=Problem(NOT_FOUND, None, 0, f"{file} is not in this tree", "add it, or say where it "
                                       "is in the answers file's locations:", address=file))

    # ---------------------------------------------------------------- locations

    def place(self, loc: Location) -> Place | Problem:
        addr = Address.parse(loc.address)
        if loc.meaning:
            got = self._by_meaning(loc, addr)
            if got is not None:
                return got
        settled_file = self.settle.get(addr.file) if addr.obj is None else None
        if settled_file:
            hit = _ObjHit(file=settled_file, how=f"{settled_file}, as `locations:` says")
        elif addr.obj is None:
            hit = self.find_file(addr.file, _key_path(addr), loc.optional)
        else:
            hit = self.find_object(addr.file, *addr.obj, key_path=tuple(_key_path(addr)))
        if hit.problem is not None:
            return hit.problem
        if hit.obj is not None:
            o = hit.obj
            text = loc.address.replace(f"{addr.file} › {addr.obj[0]}/{addr.obj[1]}", o.address, 1)
            new = Address(text, o.file, (o.kind, o.name), addr.steps)
            obj_addr = o.address
        else:
            text = hit.file + loc.address[len(addr.file):]
            new = Address(text, hit.file, None, addr.steps)
            obj_addr = hit.file
        return self._resolve(loc, new, obj_addr, hit.how)

    def _resolve(self, loc: Location, addr: Address, obj_addr: str, how: str) -> Place | Problem:
        try:
            found = R.resolve(self.index.tree, addr, want_nodes=True)
        except TreeError as exc:
            f, _, ln = (exc.where or addr.file).rpartition(":")
            return Problem(PARSE, f or addr.file, int(ln) if ln.isdigit() else 0, f"cannot be read: {exc.message}",
                           "fix it; a re-run configures it", address=loc.address)
        return Place(loc, addr, found, obj_addr, how)

    # ---------------------------------------------------------------- meanings

    def _config(self, value_address: str):
        """(ConfigMap Obj, parsed homeserver config) of a homeserver config value address."""
        a = Address.parse(value_address)
        if a.obj is None:
            return None
        hit = self.find_object(a.file, *a.obj, key_path=tuple(_key_path(a)))
        if hit.obj is None:
            return None
        return hit.obj

    def _by_meaning(self, loc: Location, addr: Address) -> Place | Problem | None:
        kind, _, config = loc.meaning.partition(":")
        cm = self._config(config)
        if cm is None:
            return None
        if kind == "env":
            found = self._env_secret(cm, addr)
        elif kind == "signing-key":
            found = self._mounted_key(cm, config)
        else:
            return None
        if found is None:
            return None
        secret, key = found
        quoted = key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else '"' + key.replace('"', '\\"') + '"'
        steps = (R.Step("path", R.parse_path(f"stringData.{quoted}")),)
        text = f"{secret.address} › stringData.{quoted}"
        new = Address(text, secret.file, ("Secret", secret.name), steps)
        catalog = f"{addr.file} › {addr.obj[0]}/{addr.obj[1]}" if addr.obj else addr.file
        same = secret.address == catalog and _key_path(addr)[-1:] == [key]
        how = "" if same else (f"Secret/{secret.name} in {secret.file} › {key}, "
                               + ("mounted for signing_key_path" if kind == "signing-key" else
                                  "loaded by the pod that renders the config"))
        return self._resolve(loc, new, secret.address, how)

    def _envsubst_configs(self):
        if self._envsubst is None:
            from wizard.consumers import envsubst_configs

            self._envsubst = envsubst_configs(self.index.tree, self.index)
        return self._envsubst

    def _secret_obj(self, file: str, name: str) -> Obj | None:
        hits = self.index.in_file(file, "Secret", name) or self.index.named("Secret", name)
        return hits[0] if len(hits) == 1 else None

    def _env_secret(self, cm: Obj, addr: Address) -> tuple[Obj, str] | None:
        keys = _key_path(addr)
        if not keys:
            return None
        var = keys[-1]
        cfgs = [c for c in self._envsubst_configs() if c.configmap == cm.name and c.file == cm.file]
        found = {(c.env[var].file, c.env[var].name) for c in cfgs if var in c.env}
        if len(found) == 1:
            f, n = found.pop()
            obj = self._secret_obj(f, n)
            return (obj, var) if obj is not None else None
        if not found:  # the key is not there yet: the Secret the pod loads whole (a key to add)
            loaded = {s for c in cfgs for s in c.env_from}
            if len(loaded) == 1:
                f, n = loaded.pop()
                obj = self._secret_obj(f, n)
                return (obj, var) if obj is not None else None
        return None

    def _mounted_key(self, cm: Obj, config_address: str) -> tuple[Obj, str] | None:
        """The Secret key a pod mounting this homeserver config's ConfigMap mounts for its signing_key_path."""
        a = Address.parse(config_address)
        try:
            found = R.resolve(self.index.tree, Address(config_address, cm.file, (cm.kind, cm.name), a.steps))
        except TreeError:
            return None
        if not found.spans:
            return None
        try:
            doc = parse_yaml_single(found.spans[0].opener())
        except (TreeError, AttributeError, TypeError):
            return None
        path = map_get(doc, "signing_key_path")
        if path is None or not isinstance(path.value, str):
            return None
        results = set()
        for w in self.index.objects:
            pod = _pod(w)
            if pod is None or not _mounts_configmap(pod, cm.name):
                continue
            got = _secret_for_path(pod, path.value)
            if got is not None:
                results.add(got)
        if len(results) != 1:
            return None
        name, key = results.pop()
        obj = self._secret_obj(cm.file, name)
        return (obj, key) if obj is not None else None


# ---------------------------------------------------------------- pods

def _pod(o: Obj) -> dict | None:
    from wizard.consumers import WORKLOAD_KINDS, pod_spec

    if o.kind not in WORKLOAD_KINDS:
        return None
    return pod_spec(o.data)


def _volumes(pod: dict) -> dict[str, dict]:
    return {v.get("name"): v for v in pod.get("volumes") or [] if isinstance(v, dict)}


def _mounts_configmap(pod: dict, name: str) -> bool:
    return any(isinstance(v.get("configMap"), dict) and v["configMap"].get("name") == name
               or any(isinstance(s, dict) and (s.get("configMap") or {}).get("name") == name
                      for s in ((v.get("projected") or {}).get("sources") or []))
               for v in _volumes(pod).values())


def _containers(pod: dict) -> list[dict]:
    return [c for c in list(pod.get("initContainers") or []) + list(pod.get("containers") or []) if isinstance(c, dict)]


def _mount_for(container: dict, path: str):
    best = None
    for vm in container.get("volumeMounts") or []:
        if not isinstance(vm, dict) or not isinstance(vm.get("mountPath"), str):
            continue
        mount = vm["mountPath"].rstrip("/") or "/"
        if (path == mount or path.startswith(mount.rstrip("/") + "/")) and (best is None or len(mount) > len(best[0])):
            best = (mount, vm)
    return best


def _secret_item(volume: dict, rel: str) -> tuple[str, str] | None:
    sec = volume.get("secret") if isinstance(volume.get("secret"), dict) else None
    if sec is None or not sec.get("secretName"):
        return None
    for item in sec.get("items") or []:
        if isinstance(item, dict) and item.get("path") == rel:
            return sec["secretName"], str(item.get("key"))
    return (sec["secretName"], rel) if not sec.get("items") else None


_CP = re.compile(r"\b(?:cp|install)\b([^;&|\n]*)")


def _secret_for_path(pod: dict, path: str, depth: int = 0) -> tuple[str, str] | None:
    """Follow `path` to the Secret key behind it: a secret volume mounted there, or a file an init container
    copies there from one."""
    volumes = _volumes(pod)
    for c in _containers(pod):
        hit = _mount_for(c, path)
        if hit is None:
            continue
        mount, vm = hit
        rel = posixpath.relpath(path, mount) if path != mount else ""
        if vm.get("subPath"):
            rel = posixpath.join(vm["subPath"], rel) if rel else vm["subPath"]
        vol = volumes.get(vm.get("name")) or {}
        got = _secret_item(vol, rel)
        if got is not None:
            return got
    if depth > 2:
        return None
    for c in pod.get("initContainers") or []:  # an init container that copies the key into place
        if not isinstance(c, dict):
            continue
        script = " ".join(str(x) for k in ("command", "args") for x in (c.get(k) or []))
        for m in _CP.finditer(script):
            try:
                words = [w for w in shlex.split(m.group(1)) if not w.startswith("-")]
            except ValueError:
                continue
            if len(words) < 2:
                continue
            src, dst = words[-2], words[-1]
            if dst == path or (posixpath.basename(src) == posixpath.basename(path)
                               and posixpath.dirname(path).rstrip("/") == dst.rstrip("/")):
                got = _secret_for_path({**pod, "initContainers": [c], "containers": []}, src, depth + 1)
                if got is not None:
                    return got
    return None
