"""Oracles: thin wrappers around the REAL tools that judge what the wizard writes.

Nothing here is a mock.  Every helper either returns useful data or raises
``AssertionError`` carrying the real tool's output, so a failing test shows
what Synapse / signedjson / htpasswd / kubernetes-validate / coturn said.

Helpers:

* ``synapse_config_check``   - Synapse's own config parser (``python -m synapse.config``)
* ``read_signing_key``       - signedjson's key-file reader
* ``htpasswd_verify``        - ``htpasswd -vb`` from apache2-utils
* ``kube_validate``          - kubernetes-validate (strict schemas, as a library)
* ``yaml_load_all_strict``   - PyYAML ``load_all`` that rejects duplicate keys
* ``turn_allocate``          - a real TURN Allocate (RFC 5766) over UDP, long-term credentials
* ``synapse_turn_credentials`` - TURN REST credentials computed the way Synapse does
* ``sql_literal`` / ``libpq_quote`` / ``libpq_conninfo`` - quoting helpers for PostgreSQL tests
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import io
import os
import re
import secrets
import socket
import string
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping

import yaml

__all__ = [
    "ToolError",
    "SYNAPSE_PATH_KEYS",
    "SYNAPSE_DROPPED_KEYS",
    "envsubst_strict",
    "prepare_synapse_config",
    "synapse_config_check",
    "synapse_config_check_inprocess",
    "generate_signing_key_line",
    "read_signing_key",
    "htpasswd_verify",
    "KubeValidation",
    "kube_validate",
    "DuplicateKeyError",
    "yaml_load_all_strict",
    "TurnResult",
    "StunTimeout",
    "turn_allocate",
    "turn_allocate_detail",
    "stun_binding",
    "synapse_turn_credentials",
    "sql_literal",
    "libpq_quote",
    "libpq_conninfo",
]


class ToolError(AssertionError):
    """A real tool refused its input.  ``output`` is what the tool printed (exit code, stdout, stderr)."""

    def __init__(self, message: str, output: str = ""):
        super().__init__(message)
        self.output = output


def tools_required() -> bool:
    """Under CI (CI=true) or WIZARD_TESTS_REQUIRE_TOOLS=1 a missing real tool fails the test."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes") or os.environ.get(
        "WIZARD_TESTS_REQUIRE_TOOLS", "") not in ("", "0")


def unavailable(reason: str) -> None:
    """Skip (locally) or fail (in CI) because a real tool is missing."""
    import pytest

    if tools_required():
        pytest.fail(f"required tool unavailable in CI: {reason} (scripts/test.sh should have installed it)")
    pytest.skip(reason)


def need_tool(name: str, package: str) -> str:
    """The path of a real tool; a missing one skips locally and fails under CI."""
    import shutil

    path = shutil.which(name)
    if path is None:
        unavailable(f"{name} not installed (Debian package {package})")
    return path


def _run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess:
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    kw.setdefault("text", True)
    kw.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run(cmd, **kw)


def _output(proc: subprocess.CompletedProcess) -> str:
    return f"exit code {proc.returncode}\n--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"


# --------------------------------------------------------------------------------------
# YAML: duplicate keys are errors
# --------------------------------------------------------------------------------------


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping holds the same key twice.  ``line`` is 1-based (the second occurrence)."""

    def __init__(self, key: Any, first_mark: yaml.Mark, mark: yaml.Mark):
        self.key = key
        self.line = mark.line + 1
        self.first_line = first_mark.line + 1
        super().__init__(
            "while constructing a mapping",
            first_mark,
            f"found duplicate key {key!r} (first defined on line {self.first_line})",
            mark,
        )


class NoDuplicateKeys:
    """Mixin for a PyYAML loader (pure Python or libyaml): a duplicate mapping key is a DuplicateKeyError."""

    def construct_mapping(self, node, deep=False):  # type: ignore[override]
        if isinstance(node, yaml.MappingNode):
            # Only keys written in this mapping count: a key may override one merged in by `<<`.
            seen: dict[Any, yaml.Mark] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    hash(key)
                except TypeError:
                    continue  # SafeLoader reports unhashable keys itself
                if key in seen:
                    raise DuplicateKeyError(key, seen[key], key_node.start_mark)
                seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


class _StrictLoader(NoDuplicateKeys, yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys."""


def _construct_value(loader: yaml.Loader, node: yaml.Node) -> str:
    # A bare `=` is the YAML 1.1 "value" type; treat it as a string like Kubernetes does.
    return str(node.value)


_StrictLoader.add_constructor("tag:yaml.org,2002:value", _construct_value)


class _KubeLoader(_StrictLoader):
    """Strict loader for manifests: timestamps stay strings (sigs.k8s.io/yaml turns YAML into JSON)."""


_KubeLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _StrictLoader.yaml_implicit_resolvers.items()
}


def yaml_load_all_strict(text: str) -> list[Any]:
    """All documents of ``text`` (PyYAML safe types); raises ``DuplicateKeyError`` on a duplicate key.

    The error's message contains ``line N`` and it has ``.line`` (1-based) and ``.key``.
    """
    return list(yaml.load_all(text, Loader=_StrictLoader))


def _kube_load_all(text: str) -> list[Any]:
    return list(yaml.load_all(text, Loader=_KubeLoader))


# --------------------------------------------------------------------------------------
# Synapse's own config parser
# --------------------------------------------------------------------------------------

#: keys that are pointed at temporary files/dirs before Synapse parses the config
SYNAPSE_PATH_KEYS = ("signing_key_path", "log_config", "media_store_path", "pid_file")
#: keys that are dropped (their third-party modules are not installable here)
SYNAPSE_DROPPED_KEYS = ("modules", "media_storage_providers")

# envsubst (gettext) replaces both $VAR and ${VAR}
_ENV_REF = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")

_MINIMAL_LOG_CONFIG = """\
version: 1
formatters:
  precise:
    format: '%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(request)s - %(message)s'
handlers:
  console:
    class: logging.StreamHandler
    formatter: precise
root:
  level: WARNING
  handlers: [console]
disable_existing_loggers: false
"""


def envsubst_strict(text: str, env: Mapping[str, str]) -> str:
    """Substitute ``$VAR``/``${VAR}`` like envsubst, but fail when a referenced VAR is not in ``env``."""
    # A reference on a YAML comment line is substituted too (envsubst knows no comments) but cannot
    # break the config, so only references in content must be present in the Secret.
    content = "\n".join(line for line in text.split("\n") if not line.lstrip().startswith("#"))
    missing = sorted({m.group(1) or m.group(2) for m in _ENV_REF.finditer(content)} - set(env))
    if missing:
        raise AssertionError(
            f"config references variables missing from the environment/Secret: {', '.join(missing)}"
        )
    return _ENV_REF.sub(lambda m: str(env.get(m.group(1) or m.group(2), "")), text)


def generate_signing_key_line(version: str | None = None) -> str:
    """A real Synapse signing key file (one line + newline) generated by signedjson."""
    import signedjson.key

    if version is None:
        alphabet = string.ascii_letters + string.digits
        version = "a_" + "".join(secrets.choice(alphabet) for _ in range(4))
    key = signedjson.key.generate_signing_key(version)
    buf = io.StringIO()
    signedjson.key.write_signing_keys(buf, [key])
    return buf.getvalue()


def prepare_synapse_config(
    homeserver_yaml_text: str,
    env: Mapping[str, str],
    workdir: str | os.PathLike,
    log_config_text: str | None = None,
) -> Path:
    """Write the config as CATALOG §1 says and return its path (see ``synapse_config_check``)."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    text = envsubst_strict(homeserver_yaml_text, {k: v for k, v in env.items() if not k.startswith("__")})
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise AssertionError(f"homeserver config is not valid YAML after envsubst: {e}\n{text}") from e
    if not isinstance(config, dict):
        raise AssertionError(f"homeserver config is not a mapping after envsubst: {config!r}")

    key_file = workdir / "signing.key"
    key_text = env.get("__signing_key__")
    key_file.write_text(key_text if key_text is not None else generate_signing_key_line())
    log_file = workdir / "log.yaml"
    log_file.write_text(log_config_text if log_config_text is not None else _MINIMAL_LOG_CONFIG)
    media = workdir / "media_store"
    media.mkdir(exist_ok=True)

    config["signing_key_path"] = str(key_file)
    config["log_config"] = str(log_file)
    config["media_store_path"] = str(media)
    config["pid_file"] = str(workdir / "homeserver.pid")
    for k in SYNAPSE_DROPPED_KEYS:
        config.pop(k, None)

    path = workdir / "homeserver.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def synapse_config_check(
    homeserver_yaml_text: str,
    env: Mapping[str, str],
    tmp_path: str | os.PathLike,
    *,
    log_config_text: str | None = None,
    timeout: float = 300,
) -> str:
    """Judge a homeserver.yaml with Synapse's own parser; raise AssertionError with its output if it refuses.

    ``env`` fills ``${VAR}`` (a referenced VAR missing from it is a failure).  ``env['__signing_key__']``,
    if given, is written as the signing key file; otherwise signedjson generates a real key.
    ``signing_key_path``, ``log_config``, ``media_store_path`` and ``pid_file`` are pointed at temp
    files, ``modules`` and ``media_storage_providers`` are dropped - nothing else is changed.
    Runs ``<sys.executable> -m synapse.config read server.server_name -c FILE`` (which loads the full
    HomeServerConfig).  Returns the parser's stdout.
    """
    workdir = Path(tempfile.mkdtemp(prefix="synapse-config-", dir=str(tmp_path)))
    path = prepare_synapse_config(homeserver_yaml_text, env, workdir, log_config_text)
    proc = _run(
        [sys.executable, "-m", "synapse.config", "read", "server.server_name", "-c", str(path)],
        cwd=str(workdir),
        timeout=timeout,
    )
    if proc.returncode != 0 or "Config parses OK!" not in proc.stdout:
        raise ToolError(
            f"Synapse refused the config {path}:\n{_output(proc)}\n--- config as parsed ---\n{path.read_text()}",
            _output(proc),
        )
    return proc.stdout


def synapse_config_check_inprocess(
    homeserver_yaml_text: str,
    env: Mapping[str, str],
    tmp_path: str | os.PathLike,
    log_config_text: str | None = None,
):
    """``synapse_config_check`` without the subprocess: the same preparation (``prepare_synapse_config``),
    then Synapse's own ``HomeServerConfig.load_config`` (what ``python -m synapse.config`` calls) in this
    process. Returns the loaded ``HomeServerConfig``; raises ``ToolError`` with Synapse's message and the
    config as parsed when Synapse refuses it."""
    from synapse.config._base import ConfigError
    from synapse.config.homeserver import HomeServerConfig

    workdir = Path(tempfile.mkdtemp(prefix="synapse-config-", dir=str(tmp_path)))
    path = prepare_synapse_config(homeserver_yaml_text, env, workdir, log_config_text)
    try:
        return HomeServerConfig.load_config("", ["-c", str(path)])
    except (ConfigError, SystemExit, Exception) as e:  # argparse exits; sections raise ConfigError or worse
        where = ".".join(str(p) for p in getattr(e, "path", None) or [])
        what = f"{e} (at {where})" if where else str(e)
        raise ToolError(f"Synapse refused the config {path}: {type(e).__name__}: {what}\n"
                        f"--- config as parsed ---\n{path.read_text()}", str(e)) from e


# --------------------------------------------------------------------------------------
# signedjson
# --------------------------------------------------------------------------------------


def read_signing_key(line: str):
    """Parse a Synapse key-file line with signedjson; return the SigningKey.

    The key has ``.alg``, ``.version`` and ``.verify_key``; ``signedjson.key.get_verify_key(key)``
    and ``signedjson.key.encode_verify_key_base64(...)`` work on it.  Anything signedjson cannot
    read, or a text that is not exactly one key, raises AssertionError.
    """
    import signedjson.key

    try:
        keys = signedjson.key.read_signing_keys(io.StringIO(line))
    except Exception as e:  # signedjson raises ValueError/Exception subclasses of several kinds
        raise AssertionError(f"signedjson cannot read signing key {line!r}: {type(e).__name__}: {e}") from e
    if len(keys) != 1:
        raise AssertionError(f"expected exactly one signing key in {line!r}, signedjson read {len(keys)}")
    return keys[0]


# --------------------------------------------------------------------------------------
# htpasswd (apache2-utils)
# --------------------------------------------------------------------------------------


def htpasswd_verify(line: str, password: str) -> bool:
    """True if ``htpasswd -vb`` accepts ``password`` for the ``USER:HASH`` line, False if it says the
    password does not match.  Any other htpasswd error (user not found, bad file...) raises."""
    line = line.strip("\n")
    if ":" not in line:
        raise AssertionError(f"not an htpasswd line (no ':'): {line!r}")
    user = line.split(":", 1)[0]
    with tempfile.TemporaryDirectory(prefix="htpasswd-") as d:
        f = Path(d) / "htpasswd"
        f.write_text(line + "\n")
        proc = _run([need_tool("htpasswd", "apache2-utils"), "-vb", str(f), user, password])
    if proc.returncode == 0:
        return True
    if proc.returncode == 3:  # "password verification failed"
        return False
    raise ToolError(f"htpasswd -vb failed on {line!r}:\n{_output(proc)}", _output(proc))


# --------------------------------------------------------------------------------------
# kubernetes-validate
# --------------------------------------------------------------------------------------


@dataclasses.dataclass
class KubeValidation:
    """``errors``: one line per problem in a core Kubernetes object (empty means valid).
    ``unchecked``: objects of kinds kubernetes-validate has no schema for (CRDs), not judged.
    ``checked``: objects that were validated."""

    errors: list[str] = dataclasses.field(default_factory=list)
    unchecked: list[str] = dataclasses.field(default_factory=list)
    checked: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def __bool__(self) -> bool:  # truthy when valid
        return self.ok


def _is_core_group(api_version: str) -> bool:
    """Groups served by Kubernetes itself: "v1", "apps/v1", "*.k8s.io/..."."""
    if "/" not in api_version:
        return True
    group = api_version.split("/", 1)[0]
    return "." not in group or group.endswith(".k8s.io")


def _schema_errors(data: dict, version: str, strict: bool) -> list[Any]:
    """Every jsonschema error (kubernetes_validate.validate stops at the first one)."""
    import jsonschema
    import kubernetes_validate
    from kubernetes_validate import utils

    try:
        # same schema lookup/registry as kubernetes_validate.validate, but collect all errors
        v = version[1:] if version.startswith("v") else version
        versions = [x for x in utils.all_versions() if utils.major_minor(x) <= utils.major_minor(v)]
        if not versions or utils.major_minor(v) > utils.latest_version():
            raise utils.VersionNotSupportedError(v)
        schema_dir = "v%s-local" % versions[-1] + ("-strict" if strict else "")
        api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", data["apiVersion"])
        try:
            schema = utils.schema_contents(
                "kubernetes-json-schema/%s/%s-%s.json" % (schema_dir, data["kind"].lower(), api), v
            )
        except FileNotFoundError:
            raise utils.SchemaNotFoundError(version=utils.major_minor(v), kind=data["kind"],
                                            api_version=data["apiVersion"])
        defs = utils.schema_contents(f"kubernetes-json-schema/{schema_dir}/_definitions.json", v)
        from referencing import Registry, Resource

        registry = Resource.from_contents(schema) @ Registry()
        registry = Resource.from_contents(defs) @ registry
        validator = jsonschema.validators.Draft202012Validator(schema, registry=registry)
        return sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    except (AttributeError, TypeError, ImportError):
        # library internals changed: fall back to the public API (first error only)
        try:
            kubernetes_validate.validate(data, version, strict)
            return []
        except kubernetes_validate.ValidationError as e:
            return [e]


def _validate_object(obj: Any, where: str, version: str, strict: bool, result: KubeValidation) -> None:
    from kubernetes_validate import utils

    if not isinstance(obj, dict):
        result.errors.append(f"{where}: document is not a mapping: {obj!r:.80}")
        return
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    name = (obj.get("metadata") or {}).get("name", "?") if isinstance(obj.get("metadata"), dict) else "?"
    if not isinstance(api_version, str) or not isinstance(kind, str):
        result.errors.append(f"{where}: object without apiVersion/kind (name {name!r})")
        return
    ident = f"{where}: {api_version} {kind}/{name}"
    try:
        errs = _schema_errors(obj, version, strict)
    except utils.SchemaNotFoundError as e:
        if _is_core_group(api_version):
            result.errors.append(f"{ident}: no such core kind/apiVersion in Kubernetes {version}: {e.message}")
        else:
            result.unchecked.append(ident)
        return
    except utils.VersionNotSupportedError as e:
        raise AssertionError(f"kubernetes-validate does not support Kubernetes {e.version}") from e
    except utils.InvalidSchemaError as e:
        raise AssertionError(f"kubernetes-validate schema problem for {ident}: {e.message}") from e
    if errs:
        for e in errs:
            path = ".".join(str(p) for p in e.absolute_path) or "(root)"
            result.errors.append(f"{ident}: {path}: {e.message}")
    else:
        result.checked.append(ident)


def kube_validate(path: str | os.PathLike, k8s_version: str = "1.30.0", strict: bool = True) -> KubeValidation:
    """Validate every object in a manifest file (or every *.yaml/*.yml under a folder) with
    kubernetes-validate's strict schemas for ``k8s_version``.

    Returns ``KubeValidation(errors, unchecked, checked)``: errors for core kinds (including
    unknown fields, wrong types, unknown core apiVersions, YAML errors such as duplicate keys);
    objects of non-core groups without a schema (CRDs: CNPG, MinIO, cert-manager, Prometheus...)
    go to ``unchecked``.
    """
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.suffix in (".yaml", ".yml") and f.is_file())
    elif p.is_file():
        files = [p]
    else:
        raise AssertionError(f"kube_validate: no such file or folder: {p}")
    result = KubeValidation()
    for f in files:
        try:
            docs = _kube_load_all(f.read_text())
        except yaml.YAMLError as e:
            result.errors.append(f"{f}: YAML error: {e}")
            continue
        for i, doc in enumerate(docs):
            if doc is None:
                continue
            where = f"{f}[{i}]"
            if isinstance(doc, dict) and doc.get("kind") == "List" and isinstance(doc.get("items"), list):
                for j, item in enumerate(doc["items"]):
                    _validate_object(item, f"{where}.items[{j}]", k8s_version, strict, result)
            else:
                _validate_object(doc, where, k8s_version, strict, result)
    return result


# --------------------------------------------------------------------------------------
# TURN (coturn): STUN/TURN encoding with the standard library
# --------------------------------------------------------------------------------------

_MAGIC = 0x2112A442
_BINDING_REQUEST = 0x0001
_BINDING_SUCCESS = 0x0101
_ALLOCATE_REQUEST = 0x0003
_ALLOCATE_SUCCESS = 0x0103
_ALLOCATE_ERROR = 0x0113
_REFRESH_REQUEST = 0x0004

_ATTR_USERNAME = 0x0006
_ATTR_MESSAGE_INTEGRITY = 0x0008
_ATTR_ERROR_CODE = 0x0009
_ATTR_LIFETIME = 0x000D
_ATTR_REALM = 0x0014
_ATTR_NONCE = 0x0015
_ATTR_XOR_RELAYED_ADDRESS = 0x0016
_ATTR_REQUESTED_TRANSPORT = 0x0019
_ATTR_XOR_MAPPED_ADDRESS = 0x0020


def _attr(atype: int, value: bytes) -> bytes:
    pad = (-len(value)) % 4
    return struct.pack("!HH", atype, len(value)) + value + b"\x00" * pad


def _stun_message(mtype: int, txid: bytes, attrs: list[tuple[int, bytes]], key: bytes | None = None) -> bytes:
    body = b"".join(_attr(t, v) for t, v in attrs)
    if key is None:
        return struct.pack("!HHI", mtype, len(body), _MAGIC) + txid + body
    # MESSAGE-INTEGRITY: HMAC-SHA1 over the message up to the attribute, with the header length
    # already counting the 24-byte MESSAGE-INTEGRITY attribute (RFC 5389 §15.4).
    header = struct.pack("!HHI", mtype, len(body) + 24, _MAGIC) + txid
    mac = hmac.new(key, header + body, hashlib.sha1).digest()
    return header + body + _attr(_ATTR_MESSAGE_INTEGRITY, mac)


def _parse_stun(data: bytes) -> tuple[int, bytes, list[tuple[int, bytes, int]]]:
    """(type, txid, [(attr type, value, offset of the attribute)])"""
    if len(data) < 20:
        raise ValueError("short STUN message")
    mtype, length, magic = struct.unpack("!HHI", data[:8])
    if magic != _MAGIC or len(data) < 20 + length:
        raise ValueError("not a STUN message")
    txid = data[8:20]
    attrs = []
    off = 20
    while off + 4 <= 20 + length:
        atype, alen = struct.unpack("!HH", data[off : off + 4])
        attrs.append((atype, data[off + 4 : off + 4 + alen], off))
        off += 4 + alen + ((-alen) % 4)
    return mtype, txid, attrs


def _attr_value(attrs: list[tuple[int, bytes, int]], atype: int) -> bytes | None:
    for t, v, _ in attrs:
        if t == atype:
            return v
    return None


def _check_integrity(data: bytes, attrs: list[tuple[int, bytes, int]], key: bytes) -> bool:
    for t, v, off in attrs:
        if t == _ATTR_MESSAGE_INTEGRITY:
            header = data[:2] + struct.pack("!H", off + 24 - 20) + data[4:20]
            return hmac.compare_digest(hmac.new(key, header + data[20:off], hashlib.sha1).digest(), v)
    return False


def _xor_address(value: bytes, txid: bytes) -> tuple[str, int]:
    family = value[1]
    port = struct.unpack("!H", value[2:4])[0] ^ (_MAGIC >> 16)
    if family == 0x01:
        ip = struct.unpack("!I", value[4:8])[0] ^ _MAGIC
        return socket.inet_ntoa(struct.pack("!I", ip)), port
    xor = struct.pack("!I", _MAGIC) + txid
    raw = bytes(a ^ b for a, b in zip(value[4:20], xor))
    return socket.inet_ntop(socket.AF_INET6, raw), port


class StunTimeout(AssertionError):
    """The STUN/TURN server did not answer (it is down, or not listening where we think)."""


def _transact(sock: socket.socket, msg: bytes, txid: bytes, timeout: float, tries: int) -> bytes:
    """Send a request over UDP, retransmitting, until a response with the same transaction id."""
    refused = False
    for _ in range(tries):
        deadline = time.monotonic() + timeout
        try:
            sock.send(msg)
        except ConnectionRefusedError:  # ICMP port unreachable from an earlier datagram
            refused = True
            time.sleep(max(0.0, deadline - time.monotonic()))
            continue
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            sock.settimeout(left)
            try:
                data = sock.recv(65535)
            except socket.timeout:
                break
            except ConnectionRefusedError:
                refused = True
                time.sleep(max(0.0, deadline - time.monotonic()))
                break
            try:
                _, rtx, _ = _parse_stun(data)
            except ValueError:
                continue
            if rtx == txid:
                return data
    why = " (port unreachable: nothing listens there)" if refused else ""
    raise StunTimeout(f"no STUN response from {sock.getpeername()} after {tries} tries{why}")


@dataclasses.dataclass
class TurnResult:
    ok: bool
    error_code: int | None = None
    reason: str = ""
    server_realm: str | None = None
    relayed_address: tuple[str, int] | None = None
    mapped_address: tuple[str, int] | None = None


def _error_code(attrs) -> tuple[int | None, str]:
    v = _attr_value(attrs, _ATTR_ERROR_CODE)
    if v is None or len(v) < 4:
        return None, ""
    return (v[2] & 0x07) * 100 + v[3], v[4:].decode("utf-8", "replace")


def stun_binding(host: str, port: int, timeout: float = 1.0, tries: int = 5) -> tuple[str, int]:
    """A STUN Binding request over UDP; returns the XOR-MAPPED-ADDRESS (raises if no answer)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((host, port))
        txid = secrets.token_bytes(12)
        data = _transact(s, _stun_message(_BINDING_REQUEST, txid, []), txid, timeout, tries)
    mtype, _, attrs = _parse_stun(data)
    if mtype != _BINDING_SUCCESS:
        raise AssertionError(f"STUN Binding to {host}:{port} failed: type {mtype:#06x} {_error_code(attrs)}")
    v = _attr_value(attrs, _ATTR_XOR_MAPPED_ADDRESS)
    if v is None:
        raise AssertionError("STUN Binding response without XOR-MAPPED-ADDRESS")
    return _xor_address(v, txid)


def turn_allocate_detail(
    host: str, port: int, username: str, password: str, realm: str, *, timeout: float = 1.0, tries: int = 5
) -> TurnResult:
    """Real TURN Allocate over UDP with long-term credentials (RFC 5766 / RFC 5389 §10.2).

    1. Allocate without credentials -> expect 401 with REALM and NONCE.
    2. Allocate with USERNAME, REALM, NONCE and MESSAGE-INTEGRITY keyed by MD5(username:realm:password);
       a 438 Stale Nonce is retried once with the fresh nonce.
    On success the allocation is released again (Refresh with LIFETIME 0).
    ``realm`` is the realm the caller expects; if the server announces another one, the result is
    a failure (the credentials cannot be for this server).  Raises StunTimeout (an AssertionError)
    if the server does not answer: silence is never taken for a refusal.
    """
    transport = b"\x11\x00\x00\x00"  # REQUESTED-TRANSPORT: UDP (17)
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((host, port))
        txid = secrets.token_bytes(12)
        data = _transact(s, _stun_message(_ALLOCATE_REQUEST, txid, [(_ATTR_REQUESTED_TRANSPORT, transport)]),
                         txid, timeout, tries)
        mtype, _, attrs = _parse_stun(data)
        if mtype == _ALLOCATE_SUCCESS:
            return TurnResult(False, None, "server allocated without authentication (auth is off?)")
        code, reason = _error_code(attrs)
        srealm_b, nonce = _attr_value(attrs, _ATTR_REALM), _attr_value(attrs, _ATTR_NONCE)
        srealm = srealm_b.decode("utf-8", "replace") if srealm_b is not None else None
        if code != 401 or srealm_b is None or nonce is None:
            return TurnResult(False, code, f"unexpected answer to unauthenticated Allocate: {reason}", srealm)
        if srealm != realm:
            return TurnResult(False, code, f"server realm {srealm!r} is not {realm!r}", srealm)

        key = hashlib.md5(f"{username}:{realm}:{password}".encode("utf-8")).digest()
        for _attempt in range(2):
            txid = secrets.token_bytes(12)
            msg = _stun_message(
                _ALLOCATE_REQUEST,
                txid,
                [
                    (_ATTR_REQUESTED_TRANSPORT, transport),
                    (_ATTR_USERNAME, username.encode("utf-8")),
                    (_ATTR_REALM, srealm_b),
                    (_ATTR_NONCE, nonce),
                ],
                key,
            )
            data = _transact(s, msg, txid, timeout, tries)
            mtype, _, attrs = _parse_stun(data)
            if mtype == _ALLOCATE_SUCCESS:
                if not _check_integrity(data, attrs, key):
                    return TurnResult(False, None, "success response with bad MESSAGE-INTEGRITY", srealm)
                relayed = _attr_value(attrs, _ATTR_XOR_RELAYED_ADDRESS)
                mapped = _attr_value(attrs, _ATTR_XOR_MAPPED_ADDRESS)
                result = TurnResult(
                    True, None, "allocated", srealm,
                    _xor_address(relayed, txid) if relayed else None,
                    _xor_address(mapped, txid) if mapped else None,
                )
                # release the allocation (best effort)
                rtx = secrets.token_bytes(12)
                refresh = _stun_message(
                    _REFRESH_REQUEST, rtx,
                    [(_ATTR_LIFETIME, struct.pack("!I", 0)), (_ATTR_USERNAME, username.encode("utf-8")),
                     (_ATTR_REALM, srealm_b), (_ATTR_NONCE, nonce)],
                    key,
                )
                try:
                    _transact(s, refresh, rtx, timeout, 2)
                except StunTimeout:
                    pass
                return result
            code, reason = _error_code(attrs)
            new_nonce = _attr_value(attrs, _ATTR_NONCE)
            if code == 438 and new_nonce is not None:  # Stale Nonce
                nonce = new_nonce
                continue
            return TurnResult(False, code, reason, srealm)
        return TurnResult(False, code, reason, srealm)


def turn_allocate(host: str, port: int, username: str, password: str, realm: str) -> bool:
    """True if the TURN server grants an Allocate for these long-term credentials, False on 401/error.
    Raises StunTimeout (AssertionError) if the server does not answer at all."""
    return turn_allocate_detail(host, port, username, password, realm).ok


def synapse_turn_credentials(shared_secret: str, user_id: str, ttl: int = 86400,
                             now: float | None = None) -> tuple[str, str]:
    """TURN REST credentials as Synapse's /voip/turnServer computes them (synapse/rest/client/voip.py):
    username ``"%d:%s" % (expiry_seconds, user_id)``, password base64(HMAC-SHA1(secret, username))."""
    expiry = (time.time() if now is None else now) + ttl
    username = "%d:%s" % (expiry, user_id)
    mac = hmac.new(shared_secret.encode(), msg=username.encode(), digestmod=hashlib.sha1)
    return username, base64.b64encode(mac.digest()).decode("ascii")


# --------------------------------------------------------------------------------------
# PostgreSQL quoting
# --------------------------------------------------------------------------------------


def sql_literal(value: str) -> str:
    """A standard SQL string literal (standard_conforming_strings=on, PostgreSQL's default)."""
    if "\x00" in value:
        raise ValueError("NUL cannot appear in a PostgreSQL string")
    return "'" + value.replace("'", "''") + "'"


def libpq_quote(value: str) -> str:
    """A libpq conninfo value: single-quoted, with backslash and single quote backslash-escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def libpq_conninfo(**params: Any) -> str:
    """``key='value' ...`` for libpq/psycopg2 (None values are left out)."""
    return " ".join(f"{k}={libpq_quote(str(v))}" for k, v in params.items() if v is not None)
