"""The answers file: load and validate it against the schema (wizard.catalog.answers), every problem of a
file in one run, each naming its dotted key; the Answers the rest of the wizard reads.

Nothing here knows a particular key: each key names its type in the schema, and this module has one small
parser per type, the derivations of defaults, and the checks of file contents.
"""
from __future__ import annotations

import ipaddress
import json
import os
import re
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from wizard.catalog import LINE_BREAKS
from wizard.catalog import answers as S
from wizard.errors import AnswersError

_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_DOMAIN_RE = re.compile(rf"{_LABEL}(?:\.{_LABEL})+")
_EMAIL_RE = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@" + _DOMAIN_RE.pattern)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def valid_domain(value: str) -> bool:
    return isinstance(value, str) and len(value) <= 253 and bool(_DOMAIN_RE.fullmatch(value)) \
        and not value.split(".")[-1].isdigit()


def valid_email(value: str) -> bool:
    return isinstance(value, str) and bool(_EMAIL_RE.fullmatch(value))


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


def parse_cidr(value: str) -> str:
    """Normalised CIDR text, or ValueError with the reason."""
    if not isinstance(value, str) or "/" not in value:
        raise ValueError("expected an address block such as 203.0.113.0/24")
    if "%" in value:
        raise ValueError("a zone id (%…) has no place in an allowlist")
    return str(ipaddress.ip_network(value, strict=True))


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


def base_of(server_name: str) -> str:
    """The server name without a leading `matrix.` label: what the derived hosts hang from."""
    return server_name[len("matrix."):] if server_name.startswith("matrix.") else server_name


# ---------------------------------------------------------------- derived values

def _derive_beside(arg: str, ctx: "_Context") -> Path | None:
    path = ctx.path
    if path is None:
        return None
    stem = path.name
    for suffix in (".yaml", ".yml"):
        if stem.endswith(suffix):
            stem = stem[:-len(suffix)]
            break
    return path.parent / f"{stem}{arg}"


_DERIVATIONS: dict[str, Callable] = {
    "host": lambda arg, server_name: f"{arg}.{base_of(server_name)}",
    "mailbox": lambda arg, server_name: f"{arg}@{base_of(server_name)}",
}


def derive(d: S.Derived, get: Callable[[str], Any], ctx: "_Context | None" = None):
    """The value of a derivation from resolved values (None when a source is unknown)."""
    if d.rule == "beside":
        return _derive_beside(d.arg, ctx) if ctx is not None else None
    sources = [get(s) for s in d.sources]
    if any(v is None for v in sources):
        return None
    return _DERIVATIONS[d.rule](d.arg, *sources)


# ---------------------------------------------------------------- errors

class AnswersErrors(AnswersError):
    """Every problem of an answers file, each naming its dotted key (or file:line)."""

    def __init__(self, problems: list[AnswersError]):
        self.problems = list(problems)
        first = self.problems[0]
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(first.message + more, where=first.where, hint=first.hint)

    def lines(self) -> list[str]:
        return [str(p) for p in self.problems]


class _Bad(Exception):
    """Problems of one value: (suffix of the key, message) each."""

    def __init__(self, *problems: tuple[str, str]):
        super().__init__(problems[0][1])
        self.problems = problems


# ---------------------------------------------------------------- the answers

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
class Placeholder:
    """The value the answers give an unknown token: text (not a secret), a reference to an operator secret
    (env:/file:, read already), or a form to generate (kept in the secrets file)."""

    value: str | None
    form: str | None = None
    secret: bool = False


class Section(dict):
    """A section's resolved values by key name; also readable as attributes (`smtp.host`, `smtp.from_`
    for the key `from`), as the planner reads a section today."""

    def __getattr__(self, name: str):
        for key in (name, name[:-1] if name.endswith("_") else name):
            if key in self:
                return self[key]
        raise AttributeError(name)


class Resolved:
    """Values resolved from an answers mapping, keyed by dotted key; `get` also answers for sections and
    for one entry of a mapping (`checklist.ITEM`)."""

    def __init__(self, values: dict[str, Any]):
        self._values = values

    def get(self, key: str):
        k = S.KEYS.get(key)
        if k is None:
            for m in S.SCHEMA:
                if m.type in S.MAPPINGS and key.startswith(m.key + "."):
                    return (self._values.get(m.key) or {}).get(key[len(m.key) + 1:])
            raise KeyError(f"{key} is not a key of the answers file")
        if k.type != S.SECTION:
            return self._values.get(key)
        if not _section_on(k, self._values.get):
            return None
        return Section({c.name: self.get(c.key) for c in S.children(key)})


def _section_on(k: S.Key, get) -> bool:
    if k.when is not None and not k.when.holds(get):
        return False
    return all(get(c.key) for c in S.children(k.key) if c.switch)


@dataclass(frozen=True)
class Answers:
    path: Path | None
    base_dir: Path
    deployment: Path
    server_name: str
    domains: dict = field(default_factory=dict)
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
    values: dict = field(default_factory=dict, repr=False)  # dotted key -> resolved value

    @property
    def issuer(self) -> str | None:
        return None if self.tls_mode == "manual" else self.tls_mode

    def get(self, key: str):
        """The resolved value the answers give for a schema key: defaults applied, env:/file: references
        read, a file-content key's file read; a section's values as a mapping; None when absent or off (a
        key under a switched-off section). KeyError for a key the schema does not have."""
        return Resolved(self.values).get(key)

    def provided_secrets(self) -> dict[str, str]:
        """Secret values the operator gave (references and files already read), by catalog id."""
        from wizard.catalog import secrets

        out = {}
        for r in secrets():
            if r.answers_key:
                value = self.get(r.answers_key)
                if isinstance(value, str):
                    out[r.id] = value
        return out


# ---------------------------------------------------------------- loading

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
        if not _ENV_NAME.fullmatch(name):
            raise AnswersError(f"bad environment variable name {name!r}", where=key)
        if name not in env:
            raise AnswersError(f"environment variable {name} is not set", where=key)
        return env[name]
    if ref.startswith("file:"):
        path = _path(ref[5:], base_dir)
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
    if data is None:  # an empty file: the required keys are named below
        data = {}
    return answers_from_dict(data, path=path, base_dir=path.parent.resolve() if path.parent else Path.cwd(),
                             deployment_override=deployment_override, env=env)


def answers_from_dict(data, *, path: Path | None, base_dir: Path, deployment_override: Path | None = None,
                      env: dict | None = None) -> Answers:
    """The Answers of an answers mapping; AnswersErrors naming every problem."""
    if not isinstance(data, dict):
        raise AnswersErrors([AnswersError("the answers file must be a mapping of keys",
                                          where=str(path) if path else None)])
    values, problems = resolve(data, path=path, base_dir=base_dir, env=env, deployment_override=deployment_override)
    if problems:
        raise AnswersErrors(problems)
    return _answers(values, data, path, base_dir)


@dataclass
class _Context:
    path: Path | None
    base_dir: Path
    env: Any
    values: dict

    def get(self, key: str):
        return self.values.get(key)


def resolve(data: dict, *, path: Path | None, base_dir: Path, env: dict | None = None,
            deployment_override: Path | None = None) -> tuple[dict[str, Any], list[AnswersError]]:
    """Every key's resolved value (None: absent, off, or wrong) and every problem, in one pass."""
    ctx = _Context(path, Path(base_dir), os.environ if env is None else env, {})
    problems: list[AnswersError] = []
    skipped: set[str] = set()  # keys not judged because what they depend on is wrong

    _unknown(data, None, "", problems, skipped)
    version = S.KEYS[S.VERSION_KEY]
    given = lookup(data, version.key)
    if given is not None and (isinstance(given, bool) or given not in version.choices):
        # another schema version: its keys mean something else, so nothing more is judged
        return {}, [AnswersError(f"unsupported {version.what} {given!r} (expected "
                                 f"{', '.join(map(str, version.choices))})", where=version.key)]

    for k in S.leaves():
        if k.key in skipped or (k.parent and k.parent in skipped):
            skipped.add(k.key)
            continue
        if k.key == S.DEPLOYMENT_KEY and deployment_override is not None:  # --deployment wins over the file
            ctx.values[k.key] = Path(deployment_override)
            continue
        raw = lookup(data, k.key)
        if raw == "" and k.type != S.CIDRS:
            raw = None
        depends = [k.when.key] + ([k.when.differs_from] if k.when.differs_from else []) if k.when else []
        if raw is None and isinstance(k.default, S.Derived):
            depends += list(k.default.sources)
        if any(d in skipped for d in depends):
            skipped.add(k.key)
            continue
        if k.when is not None and not k.when.holds(ctx.get):
            if raw is not None and k.only_when:
                problems.append(AnswersError(f"is only used {k.when.words}", where=k.key))
            ctx.values[k.key] = None
            continue
        if raw is None:
            if k.required or (k.required_when and k.when is not None):
                why = f" {k.when.words}" if k.required_when and k.when is not None else ""
                what = f" ({k.what})" if k.what and not why and k.type == S.INT else ""
                problems.append(AnswersError(f"is required{why}{what}", where=k.key))
                skipped.add(k.key)
                continue
            ctx.values[k.key] = _default(k, ctx)
            continue
        try:
            ctx.values[k.key] = PARSERS[k.type](k, raw, ctx)
        except _Bad as bad:
            for suffix, message in bad.problems:
                problems.append(AnswersError(message, where=k.key + suffix))
            skipped.add(k.key)
        except ValueError as exc:
            problems.append(AnswersError(str(exc), where=k.key))
            skipped.add(k.key)
    return ctx.values, problems


def _default(k: S.Key, ctx: _Context):
    if isinstance(k.default, S.Derived):
        return derive(k.default, ctx.get, ctx)
    if k.default is None:
        return None
    if k.type == S.PATH:
        return _path(k.default, ctx.base_dir)
    return _copy(k.default)


def _copy(value):
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def lookup(data, dotted: str, default=None):
    """The value at a dotted key of an answers mapping, or `default` where a part is missing or null."""
    node = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or node.get(part) is None:
            return default
        node = node[part]
    return node


def unknown_keys(data: dict) -> list[AnswersError]:
    """Keys the schema does not have (each with the allowed ones), and sections that are not mappings."""
    problems: list[AnswersError] = []
    _unknown(data, None, "", problems, set())
    return problems


def _unknown(node: dict, parent: str | None, prefix: str, problems: list, skipped: set) -> None:
    """Keys the schema does not have, and sections that are not mappings."""
    known = {k.name: k for k in S.children(parent)}
    for name, value in node.items():
        k = known.get(str(name))
        if k is None:
            allowed = ", ".join(sorted(known))
            where = f" in {parent}" if parent else ""
            problems.append(AnswersError(f"unknown key (allowed{where}: {allowed})", where=f"{prefix}{name}"))
            continue
        if k.type == S.SECTION and value is not None:
            if not isinstance(value, dict):
                problems.append(AnswersError("expected a mapping", where=k.key))
                skipped.add(k.key)
                for c in S.SCHEMA:
                    if c.key.startswith(k.key + "."):
                        skipped.add(c.key)
                continue
            _unknown(value, k.key, k.key + ".", problems, skipped)


def _path(text: str, base_dir: Path, expand: bool = True) -> Path:
    p = Path(text).expanduser() if expand else Path(text)
    return p if p.is_absolute() else Path(base_dir) / p


# ---------------------------------------------------------------- one parser per type (raw -> resolved)

def _one_line(k: S.Key, raw, ctx) -> str:
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
        raise ValueError(f"expected text, got {type(raw).__name__}")
    text = str(raw)
    if any(c in text for c in LINE_BREAKS):
        raise ValueError("expected one line of text")
    return text


def _bool(k: S.Key, raw, ctx) -> bool:
    if not isinstance(raw, bool):
        raise ValueError("expected true or false")
    return raw


def _int(k: S.Key, raw, ctx) -> int:
    if isinstance(raw, bool) or raw not in k.choices:
        raise ValueError(f"{raw!r} is not one of {', '.join(map(str, k.choices))}")
    return raw


def _port(k: S.Key, raw, ctx) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= 65535:
        raise ValueError(f"{raw!r} is not a valid port (1-65535)")
    return raw


def _text(raw) -> str:
    if not isinstance(raw, str):
        raise ValueError(f"expected text, got {type(raw).__name__}")
    return raw.strip()


def _domain(k: S.Key, raw, ctx) -> str:
    value = _text(raw)
    if not valid_domain(value):
        raise ValueError(f"{value!r} is not a valid domain name (lower-case labels joined by dots)")
    return value


def _host(k: S.Key, raw, ctx) -> str:
    value = _text(raw)
    if not (valid_domain(value) or is_ip(value)):
        raise ValueError(f"{value!r} is not a valid host name")
    return value


def _ip(k: S.Key, raw, ctx) -> str:
    value = _text(raw)
    if not is_ip(value):
        raise ValueError(f"{value!r} is not an IP address (without a zone id)")
    return value


def _email(k: S.Key, raw, ctx) -> str:
    value = _text(raw)
    if not valid_email(value):
        raise ValueError(f"{value!r} is not a valid e-mail address")
    return value


def _sender(k: S.Key, raw, ctx) -> str:
    value = _text(raw)
    if any(c in value for c in LINE_BREAKS) or not (
            valid_email(value) or re.fullmatch(r".*<" + _EMAIL_RE.pattern + ">", value)):
        raise ValueError(f"{value!r} is not a valid {k.what or 'e-mail address'}")
    return value


def _cidrs(k: S.Key, raw, ctx) -> list[str]:
    if isinstance(raw, str):
        raw = [c.strip() for c in raw.split(",") if c.strip()]
    if not isinstance(raw, list):
        raise ValueError("expected a list of address blocks")
    out, bad = [], []
    for i, c in enumerate(raw):
        try:
            out.append(parse_cidr(c))
        except ValueError as exc:
            bad.append((f"[{i}]", f"{c!r} is not a valid address block: {exc}"))
    if bad:
        raise _Bad(*bad)
    return out


def _enum(k: S.Key, raw, ctx) -> str:
    value = _text(raw)
    if value not in k.choices:
        raise ValueError(f"{value!r} is not one of {', '.join(k.choices)}")
    return value


def _name(k: S.Key, raw, ctx) -> str:
    value = _text(raw)
    if not re.fullmatch(k.pattern, value) or len(value) > 253:
        raise ValueError(f"{value!r} is not a valid {k.what or 'name'}")
    return value


def _path_value(k: S.Key, raw, ctx) -> Path:
    if not isinstance(raw, str):
        raise ValueError(f"expected a path, got {type(raw).__name__}")
    return _path(raw, ctx.base_dir, expand=False)


def _reference(k: S.Key, raw, ctx) -> str:
    try:
        value = read_reference(raw, k.key, ctx.base_dir, ctx.env)
    except AnswersError as exc:
        raise ValueError(exc.message) from None
    if not value or any(c in value for c in LINE_BREAKS):
        raise ValueError("the referenced value is empty or has a line break")
    return value


def _pem_private_key(content: str) -> None:
    if "PRIVATE KEY" not in content:
        raise ValueError("the file is not a PEM private key (.p8)")


def _json(content: str) -> None:
    try:
        json.loads(content)
    except ValueError:
        raise ValueError("the file is not valid JSON") from None


CONTENT_CHECKS: dict[str, Callable[[str], None]] = {"pem-private-key": _pem_private_key, "json": _json}


def _file(k: S.Key, raw, ctx) -> str:
    if not isinstance(raw, str):
        raise ValueError(f"expected a path, got {type(raw).__name__}")
    p = _path(raw, ctx.base_dir)
    try:
        content = p.read_text(encoding="utf-8").rstrip("\n")
    except OSError as exc:
        raise ValueError(f"cannot read {p}: {exc.strerror}") from None
    if k.content:
        CONTENT_CHECKS[k.content](content)
    return content


def _flags(k: S.Key, raw, ctx) -> dict:
    if not isinstance(raw, dict):
        raise ValueError("expected a mapping of item id to true/false")
    bad = [(f".{item}", "expected true or false") for item, v in raw.items() if not isinstance(v, bool)]
    if bad:
        raise _Bad(*bad)
    return {str(item): v for item, v in raw.items()}


_PLACEHOLDER_KEY = re.compile(r"(CHANGE_TO_[A-Z0-9_]+|CHANGE_?ME[A-Z0-9_]*)(@[^@\s]+)?")


def placeholder_entry(key, value, base_dir: Path, env=None) -> Placeholder:
    """One entry of `placeholders:`, or ValueError with the reason."""
    from wizard.generate import FORMS

    if not isinstance(key, str) or not _PLACEHOLDER_KEY.fullmatch(key):
        raise ValueError("a key is a placeholder token, optionally @FILE (relative to the deployment)")
    if isinstance(value, dict):
        if set(value) != {"generate"} or value["generate"] not in FORMS:
            raise ValueError(f"expected {{generate: FORM}} with a form of {', '.join(FORMS)}")
        return Placeholder(None, value["generate"], True)
    if isinstance(value, str) and value.startswith(("env:", "file:")):
        try:
            return Placeholder(read_reference(value, key, base_dir, env), None, True)
        except AnswersError as exc:
            raise ValueError(exc.message) from None
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return Placeholder(str(value), None, False)
    raise ValueError("expected text, env:NAME, file:PATH or {generate: FORM}")


def _placeholders(k: S.Key, raw, ctx) -> dict[str, Placeholder]:
    if not isinstance(raw, dict):
        raise ValueError("expected a mapping of token to value")
    out, bad = {}, []
    for key, value in raw.items():
        try:
            out[key] = placeholder_entry(key, value, ctx.base_dir, ctx.env)
        except ValueError as exc:
            bad.append((f".{key}", str(exc)))
    if bad:
        raise _Bad(*bad)
    return out


def _locations(k: S.Key, raw, ctx) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise ValueError('expected a mapping "<catalog address>": "<file> › <Kind>/<name>"')
    bad = [(f".{a}", 'expected "<catalog address>": "<file> › <Kind>/<name>"') for a, v in raw.items()
           if not isinstance(a, str) or not isinstance(v, str) or not v.strip()]
    if bad:
        raise _Bad(*bad)
    return dict(raw)


PARSERS: dict[str, Callable[[S.Key, Any, _Context], Any]] = {
    S.TEXT: _one_line, S.BOOL: _bool, S.INT: _int, S.PORT: _port, S.DOMAIN: _domain, S.HOST: _host, S.IP: _ip,
    S.EMAIL: _email, S.SENDER: _sender, S.CIDRS: _cidrs, S.ENUM: _enum, S.NAME: _name, S.PATH: _path_value,
    S.REFERENCE: _reference, S.FILE: _file, S.FLAGS: _flags, S.PLACEHOLDERS: _placeholders,
    S.LOCATIONS: _locations,
}


# ---------------------------------------------------------------- the Answers object

def _answers(values: dict, data: dict, path: Path | None, base_dir: Path) -> Answers:
    """Answers with every attribute the schema names (`attr`, `raw_attr`), groups (smtp, push, domains) built
    from their `group.field` attributes."""
    kwargs: dict[str, Any] = {}
    groups: dict[str, dict] = {}
    for k in S.leaves():
        for attr, value in ((k.attr, values.get(k.key)), (k.raw_attr, _raw_text(k, data, values))):
            if not attr or value is None:
                continue
            value = tuple(value) if isinstance(value, list) else value
            group, _, name = attr.rpartition(".")
            if group:
                groups.setdefault(group, {})[name] = value
            else:
                kwargs[attr] = value
    by_name = {f.name: f for f in fields(Answers)}
    for group, members in groups.items():
        make = by_name[group].default_factory
        if is_dataclass(make) and "values" in {f.name for f in fields(make)}:
            members["values"] = _provided_values(group, values)
        kwargs[group] = make(**members)
    return Answers(path=path, base_dir=base_dir, raw=data, values=values, **kwargs)


def _raw_text(k: S.Key, data: dict, values: dict) -> str | None:
    """A key's value as written (a reference, a path), while the key is given and on."""
    raw = lookup(data, k.key)
    return None if raw is None or values.get(k.key) is None else str(raw)


def _provided_values(group: str, values: dict) -> dict:
    """Catalog id -> value, for the operator's values under a group's section (read from the named files)."""
    from wizard.catalog import secrets

    out = {}
    for r in secrets():
        if r.provided and r.answers_key and r.answers_key.split(".")[0] == group:
            value = values.get(r.answers_key)
            if value is not None:
                out[r.id] = value if isinstance(value, str) else str(value)
    return out


# ---------------------------------------------------------------- one typed answer (guided setup)

def text_value(k: S.Key, text: str):
    """What a typed answer writes into the answers file for `k` (not yet checked): a number for a port,
    a list for address blocks, a mapping for a generated placeholder. ValueError when it cannot be one."""
    text = text.strip()
    if k.type in (S.DOMAIN, S.HOST):
        return text.lower().rstrip(".")
    if k.type in (S.PORT, S.INT):
        if not re.fullmatch(r"[0-9]+", text):
            raise ValueError(f"{text!r} is not a number" + (" (a port: 1-65535)" if k.type == S.PORT else ""))
        return int(text)
    if k.type == S.CIDRS:
        if k.ask is not None and k.ask.word and text.lower() == k.ask.word:
            return []
        items = [c for c in re.split(r"[,\s]+", text) if c]
        families = open_families(items)
        if families and k.ask is not None and k.ask.word:
            raise ValueError(f"{', '.join(items)} together let every {' and every '.join(families)} address in: "
                             f"narrow them, or type \"{k.ask.word}\" to leave it reachable from any address")
        return items
    if k.type == S.REFERENCE and not text.startswith(("env:", "file:")):
        raise ValueError("give a reference, env:NAME or file:PATH, not the secret itself "
                         "(the answers file is meant to be committed)")
    if k.type == S.PLACEHOLDERS:
        from wizard.generate import FORMS

        word, _, form = text.partition(" ")
        if word == "generate":
            form = form.strip() or FORMS[0]
            return {"generate": form}
    return text


def parse_as(type_: str, text: str):
    """A typed answer of a type, checked as the answers file checks it (keys that need no other answers)."""
    k = S.Key("", type_)
    return PARSERS[type_](k, text_value(k, text), None)


def check_value(k: S.Key, value, data: dict, *, path: Path | None, base_dir: Path, env: dict | None = None,
                entry: str | None = None):
    """Check one answer as the answers file would be checked, with the other answers `data` (and, for a
    typed answer, the question's own check); ValueError with the reason. `entry`: the key of a mapping's
    entry (a placeholder token)."""
    if value is None or value == "":
        return value
    if k.type == S.PLACEHOLDERS and entry is not None:
        placeholder_entry(entry, value, base_dir, env)
        return value
    values, _ = resolve(data, path=path, base_dir=base_dir, env=env)
    ctx = _Context(path, Path(base_dir), os.environ if env is None else env, values)
    try:
        resolved = PARSERS[k.type](k, value, ctx)
    except _Bad as bad:
        raise ValueError(bad.problems[0][1]) from None
    if k.ask is not None and k.ask.check:
        ASK_CHECKS[k.ask.check](resolved, ctx)
    return value


def _outside_tree(value: Path, ctx: _Context) -> None:
    tree = ctx.get(S.DEPLOYMENT_KEY)
    full = Path(value).expanduser().resolve()
    if tree is not None:
        tree = Path(tree).resolve()
        if full == tree or tree in full.parents:
            raise ValueError("it must be outside the deployment tree")
    if full.exists() and not full.is_dir():
        raise ValueError(f"{full} exists and is not a folder")


ASK_CHECKS: dict[str, Callable[[Any, _Context], None]] = {"outside-tree": _outside_tree}
