"""The answers file: load, default, validate (errors name the dotted key), save."""
from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from wizard.errors import AnswersError

SCHEMA_VERSION = 1
TLS_MODES = ("letsencrypt-prod", "letsencrypt-staging", "selfsigned", "manual")
DOMAIN_KEYS = ("matrix", "element", "turn", "li_matrix", "li_element", "li_admin", "livekit")

_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_DOMAIN_RE = re.compile(rf"{_LABEL}(?:\.{_LABEL})+")
_EMAIL_RE = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@" + _DOMAIN_RE.pattern)
_K8S_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")


def valid_domain(value: str) -> bool:
    return isinstance(value, str) and len(value) <= 253 and bool(_DOMAIN_RE.fullmatch(value)) \
        and not value.split(".")[-1].isdigit()


def valid_email(value: str) -> bool:
    return isinstance(value, str) and bool(_EMAIL_RE.fullmatch(value))


def parse_cidr(value: str) -> str:
    """Normalised CIDR text, or ValueError with the reason."""
    if not isinstance(value, str) or "/" not in value:
        raise ValueError("expected an address block such as 203.0.113.0/24")
    if "%" in value:
        raise ValueError("a zone id (%…) has no place in an allowlist")
    net = ipaddress.ip_network(value, strict=True)
    return str(net)


def open_families(cidrs) -> list[str]:
    """The address families ("IPv4", "IPv6") that these blocks cover whole: an allowlist that lets every
    address of a family in is no allowlist (0.0.0.0/0, or 0.0.0.0/1 with 128.0.0.0/1, …). Entries that
    are not address blocks are ignored (the caller reports them)."""
    nets: dict[int, list] = {4: [], 6: []}
    for c in cidrs:
        try:
            net = ipaddress.ip_network(str(c).strip(), strict=False)
        except ValueError:
            continue
        nets[net.version].append(net)
    out = []
    for version, label in ((4, "IPv4"), (6, "IPv6")):
        if any(n.prefixlen == 0 for n in ipaddress.collapse_addresses(nets[version])):
            out.append(label)
    return out


def derive_domains(server_name: str) -> dict[str, str]:
    base = server_name[len("matrix."):] if server_name.startswith("matrix.") else server_name
    return {
        "matrix": server_name if server_name.startswith("matrix.") else f"matrix.{base}",
        "element": f"element.{base}",
        "turn": f"turn.{base}",
        "li_matrix": f"matrix-li.{base}",
        "li_element": f"element-li.{base}",
        "li_admin": f"admin-li.{base}",
        "livekit": f"livekit.{base}",
    }


@dataclass(frozen=True)
class Smtp:
    enabled: bool = False
    host: str = ""
    port: int = 587
    user: str = ""
    password_ref: str = ""
    password: str | None = None
    from_: str = ""
    require_transport_security: bool = True


@dataclass(frozen=True)
class Push:
    enabled: bool = False
    apns_key_file: str = ""
    apns_key_id: str = ""
    apns_team_id: str = ""
    apns_topic: str = ""
    fcm_service_account_file: str = ""
    values: dict = field(default_factory=dict)  # catalog id -> value read from the named files


@dataclass(frozen=True)
class Answers:
    path: Path | None
    base_dir: Path
    deployment: Path
    server_name: str
    domains: dict
    tls_mode: str = "letsencrypt-prod"
    acme_email: str = ""
    tls_secret_name: str = ""
    allowed_cidrs: tuple[str, ...] = ()
    admin_user: str = "admin"
    admin_password_ref: str = ""
    admin_password: str | None = None
    auth_realm: str = ""
    storage_class: str = "standard"
    external_ip: str = ""
    s3_access_key: str = "synapse-s3-user"
    rsa_bits: int = 2048
    smtp: Smtp = field(default_factory=Smtp)
    push: Push = field(default_factory=Push)
    secrets_file: Path | None = None
    well_known_dir: Path | None = None
    checklist: dict = field(default_factory=dict)
    placeholders: dict = field(default_factory=dict)  # key as written -> Placeholder
    locations: dict = field(default_factory=dict)  # catalog address -> "FILE › Kind/name"
    raw: dict = field(default_factory=dict)

    @property
    def issuer(self) -> str | None:
        return None if self.tls_mode == "manual" else self.tls_mode

    def provided_secrets(self) -> dict[str, str]:
        """Secret values the operator gave (references already read)."""
        out = {}
        if self.admin_password is not None:
            out["li.admin_password"] = self.admin_password
        if self.smtp.enabled and self.smtp.password is not None:
            out["smtp.password"] = self.smtp.password
        if self.push.enabled:
            out.update(self.push.values)
        return out


@dataclass(frozen=True)
class Placeholder:
    """The value the answers give an unknown token: text (not a secret), a reference to an operator secret
    (env:/file:, read already), or a form to generate (kept in the secrets file)."""

    value: str | None
    form: str | None = None
    secret: bool = False


_PLACEHOLDER_KEY = re.compile(r"(CHANGE_TO_[A-Z0-9_]+|CHANGE_?ME[A-Z0-9_]*)(@[^@\s]+)?")


def _placeholders(raw, base_dir: Path, env) -> dict[str, Placeholder]:
    from wizard.generate import FORMS

    if raw in (None, {}):
        return {}
    if not isinstance(raw, dict):
        raise AnswersError("expected a mapping of token to value", where="placeholders")
    out = {}
    for key, value in raw.items():
        where = f"placeholders.{key}"
        if not isinstance(key, str) or not _PLACEHOLDER_KEY.fullmatch(key):
            raise AnswersError("a key is a placeholder token, optionally @FILE (relative to the deployment)",
                               where=where)
        if isinstance(value, dict):
            if set(value) != {"generate"} or value["generate"] not in FORMS:
                raise AnswersError(f"expected {{generate: FORM}} with a form of {', '.join(FORMS)}", where=where)
            out[key] = Placeholder(None, value["generate"], True)
        elif isinstance(value, str) and value.startswith(("env:", "file:")):
            out[key] = Placeholder(read_reference(value, where, base_dir, env), None, True)
        elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
            out[key] = Placeholder(str(value), None, False)
        else:
            raise AnswersError("expected text, env:NAME, file:PATH or {generate: FORM}", where=where)
    return out


def _locations(raw) -> dict[str, str]:
    if raw in (None, {}):
        return {}
    if not isinstance(raw, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
        raise AnswersError('expected a mapping "<catalog address>": "<file> › <Kind>/<name>"', where="locations")
    return dict(raw)


# ---------------------------------------------------------------- loading

_TOP = {"version", "deployment", "server_name", "domains", "tls", "li", "storage", "turn", "minio", "key_vault",
        "smtp", "push", "secrets_file", "well_known_dir", "checklist", "placeholders", "locations"}
_SECTIONS = {
    "domains": set(DOMAIN_KEYS),
    "tls": {"mode", "acme_email", "secret_name"},
    "li": {"allowed_cidrs", "admin_user", "admin_password", "auth_realm"},
    "storage": {"class"},
    "turn": {"external_ip"},
    "minio": {"s3_access_key"},
    "key_vault": {"rsa_bits"},
    "smtp": {"enabled", "host", "port", "user", "password", "from", "require_transport_security"},
    "push": {"enabled", "apns", "fcm"},
}


class _StrictLoader(yaml.SafeLoader):
    pass


def _no_dup_mapping(loader, node, deep=False):
    seen = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise AnswersError(f"duplicate key {key!r}", where=f"line {key_node.start_mark.line + 1}")
        seen[key] = True
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_dup_mapping)


def read_reference(ref: str, key: str, base_dir: Path, env: dict | None = None) -> str:
    """`env:NAME` or `file:PATH` → the value; a clear error naming the key otherwise."""
    env = os.environ if env is None else env
    if not isinstance(ref, str) or not ref:
        raise AnswersError("expected a reference env:NAME or file:PATH", where=key)
    if ref.startswith("env:"):
        name = ref[4:]
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise AnswersError(f"bad environment variable name {name!r}", where=key)
        if name not in env:
            raise AnswersError(f"environment variable {name} is not set", where=key)
        return env[name]
    if ref.startswith("file:"):
        path = Path(ref[5:]).expanduser()
        if not path.is_absolute():
            path = base_dir / path
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise AnswersError(f"cannot read {path}: {exc.strerror}", where=key) from None
        return text[:-1] if text.endswith("\n") and text.count("\n") == 1 else text
    raise AnswersError("secrets are not written in clear here: use env:NAME or file:PATH", where=key)


def load_answers(path: Path, *, deployment_override: Path | None = None, env: dict | None = None) -> Answers:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise AnswersError(f"answers file not found: {path}") from None
    except OSError as exc:
        raise AnswersError(f"cannot read answers file {path}: {exc.strerror}") from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except AnswersError as exc:
        exc.where = f"{path}:{exc.where.split()[-1]}" if exc.where else str(path)
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise AnswersError(f"not valid YAML: {exc.problem}",
                           where=f"{path}:{mark.line + 1}" if mark else str(path)) from None
    return answers_from_dict(data, path=path, base_dir=path.parent.resolve() if path.parent else Path.cwd(),
                             deployment_override=deployment_override, env=env)


def answers_from_dict(data, *, path: Path | None, base_dir: Path, deployment_override: Path | None = None,
                      env: dict | None = None) -> Answers:
    if not isinstance(data, dict):
        raise AnswersError("the answers file must be a mapping of keys", where=str(path) if path else None)
    unknown = sorted(set(map(str, data)) - _TOP)
    if unknown:
        raise AnswersError(f"unknown key (allowed: {', '.join(sorted(_TOP))})", where=unknown[0])
    for section, allowed in _SECTIONS.items():
        value = data.get(section)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise AnswersError("expected a mapping", where=section)
        extra = sorted(set(map(str, value)) - allowed)
        if extra:
            raise AnswersError(f"unknown key (allowed in {section}: {', '.join(sorted(allowed))})",
                               where=f"{section}.{extra[0]}")

    def get(dotted: str, default=None):
        node = data
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node or node[part] is None:
                return default
            node = node[part]
        return node

    def need_str(dotted: str, default=None) -> str:
        value = get(dotted, default)
        if value is None:
            raise AnswersError("is required", where=dotted)
        if not isinstance(value, str):
            raise AnswersError(f"expected text, got {type(value).__name__}", where=dotted)
        return value.strip()

    if "version" not in data:
        raise AnswersError("is required (the schema version, 1)", where="version")
    if data["version"] != SCHEMA_VERSION:
        raise AnswersError(f"unsupported schema version {data['version']!r} (expected {SCHEMA_VERSION})",
                           where="version")

    server_name = need_str("server_name")
    if not valid_domain(server_name):
        raise AnswersError(f"{server_name!r} is not a valid domain name (lower-case labels joined by dots)",
                           where="server_name")
    domains = derive_domains(server_name)
    for key in DOMAIN_KEYS:
        value = get(f"domains.{key}")
        if value is not None:
            if not isinstance(value, str) or not valid_domain(value.strip()):
                raise AnswersError(f"{value!r} is not a valid domain name", where=f"domains.{key}")
            domains[key] = value.strip()

    tls_mode = need_str("tls.mode", "letsencrypt-prod")
    if tls_mode not in TLS_MODES:
        raise AnswersError(f"{tls_mode!r} is not one of {', '.join(TLS_MODES)}", where="tls.mode")
    base = server_name[len("matrix."):] if server_name.startswith("matrix.") else server_name
    acme_email = need_str("tls.acme_email", f"admin@{base}")
    if not valid_email(acme_email):
        raise AnswersError(f"{acme_email!r} is not a valid e-mail address", where="tls.acme_email")
    secret_name = ""
    if tls_mode == "manual":
        secret_name = get("tls.secret_name")
        if not secret_name:
            raise AnswersError("is required when tls.mode is manual", where="tls.secret_name")
        if not isinstance(secret_name, str) or not _K8S_NAME.fullmatch(secret_name) or len(secret_name) > 253:
            raise AnswersError(f"{secret_name!r} is not a valid Secret name", where="tls.secret_name")
    elif get("tls.secret_name") is not None:
        raise AnswersError("is only used when tls.mode is manual", where="tls.secret_name")

    cidrs_raw = get("li.allowed_cidrs", [])
    if isinstance(cidrs_raw, str):
        cidrs_raw = [c.strip() for c in cidrs_raw.split(",") if c.strip()]
    if not isinstance(cidrs_raw, list):
        raise AnswersError("expected a list of address blocks", where="li.allowed_cidrs")
    cidrs = []
    for i, c in enumerate(cidrs_raw):
        try:
            cidrs.append(parse_cidr(c))
        except ValueError as exc:
            raise AnswersError(f"{c!r} is not a valid CIDR: {exc}", where=f"li.allowed_cidrs[{i}]") from None
    admin_user = need_str("li.admin_user", "admin")
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", admin_user):
        raise AnswersError(f"{admin_user!r} is not a valid user name ([A-Za-z0-9._-], no ':')", where="li.admin_user")
    admin_password_ref = get("li.admin_password", "")
    admin_password = None
    if admin_password_ref:
        admin_password = read_reference(admin_password_ref, "li.admin_password", base_dir, env)
        if not admin_password or "\n" in admin_password:
            raise AnswersError("the referenced password is empty or has a line break", where="li.admin_password")
    realm = get("li.auth_realm", "")
    if realm and (not isinstance(realm, str) or "\n" in realm):
        raise AnswersError("expected one line of text", where="li.auth_realm")

    storage_class = need_str("storage.class", "standard")
    if not _K8S_NAME.fullmatch(storage_class):
        raise AnswersError(f"{storage_class!r} is not a valid StorageClass name", where="storage.class")
    external_ip = get("turn.external_ip", "")
    if external_ip:
        if not is_ip(str(external_ip)):
            raise AnswersError(f"{external_ip!r} is not an IP address (without a zone id)",
                               where="turn.external_ip")
    s3_access_key = need_str("minio.s3_access_key", "synapse-s3-user")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{2,127}", s3_access_key):
        raise AnswersError(f"{s3_access_key!r} is not a valid S3 access key ([A-Za-z0-9._-], 3-128)",
                           where="minio.s3_access_key")
    rsa_bits = get("key_vault.rsa_bits", 2048)
    if rsa_bits not in (2048, 3072, 4096):
        raise AnswersError(f"{rsa_bits!r} is not one of 2048, 3072, 4096", where="key_vault.rsa_bits")

    smtp = _smtp(get, base_dir, env)
    push = _push(get, base_dir)

    deployment = deployment_override or Path(get("deployment", "deployment"))
    if not deployment.is_absolute() and deployment_override is None:
        deployment = base_dir / deployment
    secrets_file = get("secrets_file")
    if secrets_file:
        secrets_path = Path(secrets_file)
        if not secrets_path.is_absolute():
            secrets_path = base_dir / secrets_path
    elif path is not None:
        stem = path.name[:-5] if path.name.endswith(".yaml") else path.name[:-4] if path.name.endswith(".yml") else path.name
        secrets_path = path.parent / f"{stem}.secrets.yaml"
    else:
        secrets_path = None
    well_known = get("well_known_dir")
    well_known_path = None
    if well_known:
        well_known_path = Path(well_known)
        if not well_known_path.is_absolute():
            well_known_path = base_dir / well_known_path
    checklist = get("checklist", {}) or {}
    if not isinstance(checklist, dict) or not all(isinstance(v, bool) for v in checklist.values()):
        raise AnswersError("expected a mapping of item id to true/false", where="checklist")

    return Answers(path=path, base_dir=base_dir, deployment=deployment, server_name=server_name, domains=domains,
                   tls_mode=tls_mode, acme_email=acme_email, tls_secret_name=secret_name,
                   allowed_cidrs=tuple(cidrs), admin_user=admin_user, admin_password_ref=admin_password_ref or "",
                   admin_password=admin_password, auth_realm=realm or "", storage_class=storage_class,
                   external_ip=str(external_ip or ""), s3_access_key=s3_access_key, rsa_bits=rsa_bits, smtp=smtp,
                   push=push, secrets_file=secrets_path, well_known_dir=well_known_path,
                   checklist=dict(checklist), placeholders=_placeholders(data.get("placeholders"), base_dir, env),
                   locations=_locations(data.get("locations")), raw=data)


def _bool(get, key, default):
    value = get(key, default)
    if not isinstance(value, bool):
        raise AnswersError("expected true or false", where=key)
    return value


def _smtp(get, base_dir, env) -> Smtp:
    if not _bool(get, "smtp.enabled", False):
        return Smtp()
    host = get("smtp.host")
    if not host:
        raise AnswersError("is required when smtp.enabled is true", where="smtp.host")
    if not isinstance(host, str) or not (valid_domain(host) or is_ip(host)):
        raise AnswersError(f"{host!r} is not a valid host name", where="smtp.host")
    port = get("smtp.port", 587)
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise AnswersError(f"{port!r} is not a valid port (1-65535)", where="smtp.port")
    user = get("smtp.user", "")
    if not isinstance(user, str) or "\n" in user:
        raise AnswersError("expected one line of text", where="smtp.user")
    ref = get("smtp.password", "")
    password = read_reference(ref, "smtp.password", base_dir, env) if ref else None
    if password is not None and "\n" in password:
        raise AnswersError("the referenced password has a line break", where="smtp.password")
    sender = get("smtp.from")
    if not sender:
        raise AnswersError("is required when smtp.enabled is true", where="smtp.from")
    if not isinstance(sender, str) or "\n" in sender or not (
            valid_email(sender) or re.fullmatch(r".*<" + _EMAIL_RE.pattern + ">", sender)):
        raise AnswersError(f"{sender!r} is not a valid sender address", where="smtp.from")
    rts = _bool(get, "smtp.require_transport_security", True)
    return Smtp(True, host, port, user, ref, password, sender, rts)


def is_ip(text: str) -> bool:
    """An IPv4 or IPv6 address; a zone id (`fe80::1%eth0`) is refused: it is meaningless to other hosts and
    carries free text."""
    if not isinstance(text, str) or "%" in text:
        return False
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def _push(get, base_dir) -> Push:
    if not _bool(get, "push.enabled", False):
        return Push()
    apns = get("push.apns", {}) or {}
    fcm = get("push.fcm", {}) or {}
    for section, value, allowed in (("push.apns", apns, {"key_file", "key_id", "team_id", "topic"}),
                                    ("push.fcm", fcm, {"service_account_file"})):
        if not isinstance(value, dict):
            raise AnswersError("expected a mapping", where=section)
        extra = sorted(set(value) - allowed)
        if extra:
            raise AnswersError("unknown key", where=f"{section}.{extra[0]}")
    values = {}
    for key in ("key_file", "key_id", "team_id", "topic"):
        if not apns.get(key):
            raise AnswersError("is required when push.enabled is true", where=f"push.apns.{key}")
    if not fcm.get("service_account_file"):
        raise AnswersError("is required when push.enabled is true", where="push.fcm.service_account_file")

    def read(key, rel):
        p = Path(rel).expanduser()
        p = p if p.is_absolute() else base_dir / p
        try:
            return p.read_text(encoding="utf-8").rstrip("\n")
        except OSError as exc:
            raise AnswersError(f"cannot read {p}: {exc.strerror}", where=key) from None

    values["push.apns.key"] = read("push.apns.key_file", apns["key_file"])
    if "PRIVATE KEY" not in values["push.apns.key"]:
        raise AnswersError("the file is not a PEM private key (.p8)", where="push.apns.key_file")
    fcm_text = read("push.fcm.service_account_file", fcm["service_account_file"])
    import json

    try:
        json.loads(fcm_text)
    except ValueError:
        raise AnswersError("the file is not valid JSON", where="push.fcm.service_account_file") from None
    values["push.fcm.service_account"] = fcm_text
    for key, cid in (("key_id", "push.apns.key_id"), ("team_id", "push.apns.team_id"), ("topic", "push.apns.topic")):
        v = str(apns[key])
        if "\n" in v:
            raise AnswersError("expected one line of text", where=f"push.apns.{key}")
        values[cid] = v
    return Push(True, str(apns["key_file"]), values["push.apns.key_id"], values["push.apns.team_id"],
                values["push.apns.topic"], str(fcm["service_account_file"]), values)

