"""Every object of a core kind validates against Kubernetes' own schema (kubernetes-validate, strict).

Strict schemas refuse unknown fields, so a ConfigMap with `spec:` instead of `data:` or a key
indented one level too deep is an error here, not a silently dropped field at apply time.
Kinds of other API groups (CRDs: CloudNativePG, MinIO, cert-manager, Prometheus…) have no
schema here: they are reported once per kind as "not schema-checked".
"""
from __future__ import annotations

import functools
import re
from typing import Iterator

from wizard.rules.finding import ERROR, INFO, WARNING, Finding
from wizard.rules.model import KubeObject, TreeModel

KUBERNETES_VERSION = "1.30"


def is_core_group(api_version: str) -> bool:
    """Served by Kubernetes itself: "v1", "apps/v1", "*.k8s.io/…"."""
    if "/" not in api_version:
        return True
    group = api_version.split("/", 1)[0]
    return "." not in group or group.endswith(".k8s.io")


@functools.lru_cache(maxsize=None)
def _schema_dir(version: str) -> str:
    from kubernetes_validate import utils

    have = [v for v in utils.all_versions() if utils.major_minor(v) == version]
    if not have:
        raise utils.VersionNotSupportedError(version)
    return f"kubernetes-json-schema/v{have[-1]}-local-strict"


@functools.lru_cache(maxsize=None)
def _registry(version: str):
    from kubernetes_validate import utils
    from referencing import Registry, Resource

    defs = utils.schema_contents(f"{_schema_dir(version)}/_definitions.json", version)
    return Resource.from_contents(defs) @ Registry()


@functools.lru_cache(maxsize=None)
def validator_for(version: str, api_version: str, kind: str):
    """A cached jsonschema validator for (apiVersion, kind), or None when there is no schema."""
    import jsonschema
    from kubernetes_validate import utils

    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = utils.schema_contents(f"{_schema_dir(version)}/{kind.lower()}-{api}.json", version)
    except FileNotFoundError:
        return None
    return jsonschema.validators.Draft202012Validator(schema, registry=_registry(version))


def _path_text(path) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


_KINDS = ((bool, "boolean"), (int, "number"), (float, "number"), (str, "string"), (dict, "mapping"), (list, "list"))


def _kind_of(value) -> str:
    if value is None:
        return "null"
    return next((name for t, name in _KINDS if isinstance(value, t)), type(value).__name__)


def _describe(err) -> str:
    """jsonschema's message without the offending value itself: it may be a secret."""
    if err.validator == "type":
        want = err.validator_value if isinstance(err.validator_value, str) else " or ".join(
            str(v) for v in err.validator_value if v != "null")
        return f"is a {_kind_of(err.instance)}, expected {want}"
    message = err.message
    shown = repr(err.instance)
    if message.startswith(shown):
        message = f"the {_kind_of(err.instance)}" + message[len(shown):]
    return _short(message)


def _object_errors(obj: KubeObject, validator) -> Iterator[Finding]:
    explain = f"kubectl explain {obj.kind.lower()}"
    for err in validator.iter_errors(obj.data):
        path = tuple(err.absolute_path)
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            allowed = set((err.schema or {}).get("properties", {}))
            extras = [k for k in err.instance if k not in allowed] or ["?"]
            for key in extras:
                field = _path_text(path + (key,))
                yield Finding(obj.file, obj.key_line(path, key), ERROR, "schema",
                              f"{obj.ident}: unknown field {field} (Kubernetes would reject or drop it)",
                              f"check the field name and its indentation: {explain}"
                              + (f".{_path_text(tuple(p for p in path if not isinstance(p, int)))}" if path else ""))
            continue
        yield Finding(obj.file, obj.path_line(path), ERROR, "schema",
                      f"{obj.ident}: {_path_text(path)}: {_describe(err)}",
                      f"fix the value to match the schema: {explain}"
                      + (f".{_path_text(tuple(p for p in path if not isinstance(p, int)))}" if path else ""))


def schema(model: TreeModel, ctx) -> Iterator[Finding]:
    yield from (p for p in model.problems if p.rule == "schema")
    try:
        import jsonschema  # noqa: F401
        import kubernetes_validate  # noqa: F401
    except ImportError as exc:
        yield Finding(".", 0, WARNING, "schema", f"objects not schema-checked: {exc.name} is not installed",
                      "pip install kubernetes-validate")
        return
    unchecked: dict[tuple[str, str], list[KubeObject]] = {}
    for obj in model.objects:
        validator = validator_for(KUBERNETES_VERSION, obj.api_version, obj.kind)
        if validator is None:
            if is_core_group(obj.api_version):
                yield Finding(obj.file, obj.line(("kind",)), ERROR, "schema",
                              f"{obj.ident}: Kubernetes {KUBERNETES_VERSION} has no kind {obj.kind} in "
                              f"apiVersion {obj.api_version}",
                              "use the current apiVersion for this kind (kubectl api-resources)")
            else:
                unchecked.setdefault((obj.api_version, obj.kind), []).append(obj)
            continue
        if not obj.data:
            continue
        yield from _object_errors(obj, validator)
    for (api_version, kind), objs in unchecked.items():
        first = objs[0]
        elsewhere = sorted({o.file for o in objs} - {first.file})
        count = f"{len(objs)} objects" if len(objs) > 1 else "1 object"
        yield Finding(first.file, first.line(("kind",)), INFO, "schema",
                      f"{kind} ({api_version}) is a custom resource: {count} not schema-checked"
                      + (f" (also in {', '.join(elsewhere)})" if elsewhere else ""),
                      "its operator's CRD validates it: kubectl apply --dry-run=server")
