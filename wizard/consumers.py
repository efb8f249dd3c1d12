"""Where a value is consumed after the file: configs that a pod renders with envsubst at start.

A workload whose container runs `envsubst [SHELL-FORMAT] < SRC` reads SRC from a mounted ConfigMap key,
and fills `${VAR}`/`$VAR` from its environment: the Secrets it loads whole (envFrom), the Secret keys
it maps (env valueFrom) and literal values. Found by meaning, whatever the objects are called.

A value is judged where it is consumed: the whole config (comments included — envsubst knows no
comments) is rendered as GNU envsubst would, parsed, and compared with what was meant: the template's
structure with each reference replaced by its value as a string. A value that changes the structure or
reads back as something else (`yes` as a boolean) cannot be carried there.
"""
from __future__ import annotations

import posixpath
import re
import shlex
from dataclasses import dataclass, field

import yaml

from wizard.locate.yamlspan import map_get

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod", "ReplicaSet")
_REF = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
_ENVSUBST = re.compile(r"envsubst((?:\s+(?:'[^']*'|\"[^\"]*\"|[^\s<>|;&]+))*)\s*<\s*(\"[^\"]+\"|'[^']+'|[^\s;&|]+)")
_ASSIGN = re.compile(r"(?:^|[\s;])(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=")
STAND_IN = "x"  # the value of a variable the script computes itself (unknown here)
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the same YAML 1.1 reading as PyYAML's safe_load, in C


def _load(text: str):
    return yaml.load(text, Loader=_Loader)


@dataclass(frozen=True)
class SecretKey:
    file: str
    name: str
    key: str


@dataclass
class EnvsubstConfig:
    workload: str  # Kind/name
    file: str  # where the ConfigMap is
    configmap: str
    key: str  # the ConfigMap key holding the template
    env: dict[str, SecretKey] = field(default_factory=dict)  # VAR -> the Secret key it comes from
    literal: dict[str, str] = field(default_factory=dict)  # VAR -> a value written in the manifest
    computed: set[str] = field(default_factory=set)  # VARs the script sets itself
    env_from: list[tuple[str, str]] = field(default_factory=list)  # (file, name) of the Secrets loaded whole
    only: frozenset[str] | None = None  # SHELL-FORMAT: only these are substituted; None: every reference


def pod_spec(doc: dict) -> dict | None:
    kind = doc.get("kind")
    spec = doc.get("spec") if isinstance(doc.get("spec"), dict) else {}
    if kind == "Pod":
        return spec
    if kind == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    tpl = spec.get("template") if isinstance(spec, dict) else None
    pod = (tpl or {}).get("spec") if isinstance(tpl, dict) else None
    return pod if isinstance(pod, dict) else None


class _Objects:
    """The tree's Kubernetes objects by kind and name; the data of workloads only (the rest by their nodes)."""

    def __init__(self, tree, index=None):
        from wizard.index import TreeIndex

        self.index = index if index is not None else TreeIndex.build(tree)

    def workloads(self):
        return [(o.file, o.data) for o in self.index.objects if o.kind in WORKLOAD_KINDS]

    def named(self, kind: str, name: str):
        return [o for o in self.index.of_kind(kind) if o.name == name]


def _keys(obj, holder: str) -> list[str]:
    node = map_get(obj.node, holder)
    if node is None or node.kind != "map":
        return []
    return [str(k.value) for k, _ in node.value]


def _script(container: dict) -> str:
    parts = []
    for key in ("command", "args"):
        v = container.get(key)
        if isinstance(v, list):
            parts.extend(str(x) for x in v)
        elif isinstance(v, str):
            parts.append(v)
    return "\n".join(parts)


def envsubst_configs(tree, index=None) -> list[EnvsubstConfig]:
    objs = _Objects(tree, index)
    out: list[EnvsubstConfig] = []
    for _, doc in objs.workloads():
        pod = pod_spec(doc)
        if pod is None:
            continue
        volumes = {v.get("name"): v for v in pod.get("volumes") or [] if isinstance(v, dict)}
        for c in list(pod.get("initContainers") or []) + list(pod.get("containers") or []):
            if not isinstance(c, dict):
                continue
            script = _script(c)
            if "envsubst" not in script:
                continue
            for m in _ENVSUBST.finditer(script):
                only = _shell_format(m.group(1))
                src = m.group(2).strip("'\"")
                found = _mounted_configmap(c, volumes, src)
                if found is None:
                    continue
                cm_name, key = found
                hits = objs.named("ConfigMap", cm_name)
                if len(hits) != 1:
                    continue
                cfg = EnvsubstConfig(f"{doc['kind']}/{(doc.get('metadata') or {}).get('name')}", hits[0].file,
                                     cm_name, key, only=only)
                _environment(c, objs, cfg)
                cfg.computed = {a for a in _ASSIGN.findall(script)} - set(cfg.env) - set(cfg.literal)
                out.append(cfg)
    return out


def _shell_format(text: str) -> frozenset[str] | None:
    try:
        words = shlex.split(text or "")
    except ValueError:
        return None
    fmt = [w for w in words if not w.startswith("-")]
    if not fmt:
        return None
    return frozenset(a or b for w in fmt for a, b in _REF.findall(w))


def _mounted_configmap(container: dict, volumes: dict, src: str) -> tuple[str, str] | None:
    best = None
    for vm in container.get("volumeMounts") or []:
        if not isinstance(vm, dict) or not isinstance(vm.get("mountPath"), str):
            continue
        mount = vm["mountPath"].rstrip("/")
        if src.startswith(mount + "/") and (best is None or len(mount) > len(best[0])):
            best = (mount, vm)
    if best is None:
        return None
    mount, vm = best
    vol = volumes.get(vm.get("name")) or {}
    cm = vol.get("configMap") if isinstance(vol.get("configMap"), dict) else None
    if cm is None or not cm.get("name"):
        return None
    rel = posixpath.relpath(src, mount)
    if vm.get("subPath"):
        rel = posixpath.join(vm["subPath"], rel)
    for item in cm.get("items") or []:
        if isinstance(item, dict) and item.get("path") == rel:
            return cm["name"], str(item.get("key"))
    return cm["name"], rel


def _environment(container: dict, objs: _Objects, cfg: EnvsubstConfig) -> None:
    for ef in container.get("envFrom") or []:
        ref = (ef or {}).get("secretRef") or {}
        prefix = (ef or {}).get("prefix") or ""
        for secret in objs.named("Secret", ref.get("name")) if ref.get("name") else []:
            cfg.env_from.append((secret.file, ref["name"]))
            for holder in ("stringData", "data"):
                for key in _keys(secret, holder):
                    cfg.env[prefix + key] = SecretKey(secret.file, ref["name"], key)
    for e in container.get("env") or []:
        if not isinstance(e, dict) or not e.get("name"):
            continue
        if "value" in e:
            cfg.literal[e["name"]] = str(e["value"])
            continue
        skr = ((e.get("valueFrom") or {}).get("secretKeyRef") or {})
        if skr.get("name") and skr.get("key"):
            hits = objs.named("Secret", skr["name"])
            if hits:
                cfg.env[e["name"]] = SecretKey(hits[0].file, skr["name"], str(skr["key"]))


def _value(obj, holder: str, key: str):
    node = map_get(map_get(obj.node, holder), key)
    return node.value if node is not None and node.kind == "scalar" and isinstance(node.value, str) else None


def secret_value(index, sk: SecretKey) -> str | None:
    """The value a Secret key holds (stringData as written, data decoded from base64)."""
    import base64

    for o in index.named("Secret", sk.name):
        if o.file != sk.file:
            continue
        value = _value(o, "stringData", sk.key)
        if value is not None:
            return value
        data = _value(o, "data", sk.key)
        if data is not None:
            try:
                return base64.b64decode(data).decode("utf-8")
            except ValueError:
                return None
    return None


def template_text(index, cfg: EnvsubstConfig) -> str | None:
    for o in index.named("ConfigMap", cfg.configmap):
        if o.file == cfg.file:
            return _value(o, "data", cfg.key)
    return None


# ---------------------------------------------------------------- GNU envsubst, and what was meant

def envsubst(text: str, env: dict[str, str], only: frozenset[str] | None) -> str:
    """GNU envsubst: `$NAME` and `${NAME}` replaced by the value (unset: empty); with a SHELL-FORMAT,
    only the names it lists."""
    def sub(m):
        name = m.group(1) or m.group(2)
        if only is not None and name not in only:
            return m.group(0)
        return env.get(name, "")
    return _REF.sub(sub, text)


def _meant(data, env, only):
    if isinstance(data, dict):
        return {_meant(k, env, only): _meant(v, env, only) for k, v in data.items()}
    if isinstance(data, list):
        return [_meant(x, env, only) for x in data]
    if isinstance(data, str):
        return envsubst(data, env, only)
    return data


def renders_as_meant(text: str, env: dict[str, str], only: frozenset[str] | None) -> bool:
    try:
        template = _load(text)
    except yaml.YAMLError:
        return True  # the template itself does not parse: reported as such elsewhere, not a value's fault
    try:
        rendered = _load(envsubst(text, env, only))
    except yaml.YAMLError:
        return False
    return rendered == _meant(template, env, only)


def culprits(text: str, env: dict[str, str], only: frozenset[str] | None, suspects) -> list[str]:
    """The variables whose own value breaks the rendering (each tried alone, the others at a stand-in)."""
    safe = {k: STAND_IN for k in env}
    out = []
    for var in suspects:
        if not renders_as_meant(text, {**safe, var: env[var]}, only):
            out.append(var)
    return out
