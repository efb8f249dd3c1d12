"""The shape of the catalog: one record per secret or setting, holding every fact about it.

A record says where the value comes from (generated in a form, given in the answers, derived from
other values, or read from the tree), every location it is written to (CATALOG.md's address notation,
with how to find it elsewhere), the limits its consumers put on it, how it is rotated, and the words the
docs and the checklist use for it. Code elsewhere knows how to resolve an address, splice a format and
generate a form; it never knows which file holds the Redis password.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

TOKEN_RE = re.compile(r"CHANGE_TO_[A-Z0-9_]+|CHANGE_?ME[A-Z0-9_]*")
LINE_BREAKS = "\n\r\x85\u2028\u2029"

SECRET, SETTING = "secret", "setting"

# How a location is written (Location.write):
SET = "set"            # the value at the spans the address resolves to
ADD = "add"            # set, or add the key when absent (after its commented example)
ISSUER = "issuer"      # an issuer annotation: set, added back, or removed when the value is None
CONF_LINE = "conf"     # a `key=value` line of a conf file: set, or added after its commented example
SECTION = "section"    # a mapping (YAML section) set key by key, or added whole after its commented example
OLD_KEYS = "old-keys"  # old_signing_keys of a homeserver config, from the secrets file
DOCUMENT = "document"  # a YAML document appended to the file when absent


@dataclass(frozen=True)
class Location:
    """Where a value lives. `address` follows CATALOG.md; `meaning` says how to find it when the address
    misses, other than by searching: `signing-key:ADDR` (the Secret key the pod of the homeserver config
    at ADDR mounts for its signing_key_path) or `env:ADDR` (the key of the Secret the pod rendering the
    config at ADDR loads, named like the last step of this address)."""

    address: str
    write: str = SET
    optional: bool = False  # a plain copy no workload mounts: when its file is absent, a note
    meaning: str | None = None
    example: str | None = None  # the commented example an added key goes after (default: the key)
    after: str | None = None  # the key an added key goes after, when there is no commented example
    envsubst: bool = False  # a config rendered by envsubst: secrets in a section are written as ${VAR}

    @property
    def file(self) -> str:
        return self.address.split(" › ")[0]


@dataclass(frozen=True)
class Limits:
    """What a value's consumers cannot carry, beyond what the file formats escape."""

    chars: str = ""
    why: str = ""
    max_bytes: int | None = None
    max_bytes_why: str = ""


@dataclass(frozen=True)
class Rotation:
    rotatable: bool = True  # `wizard rotate ID` (False: derived from another id, or the operator's)
    in_all: bool = True  # included in `rotate --all` (else only on request: --include-FLAG)
    include_flag: str = ""  # the --all option that adds it (`include-signing-key`)
    retire: bool = False  # the old value is kept verifiable (old_signing_keys) when it is replaced
    db_role: tuple[str, str] | None = None  # (CloudNativePG Cluster, role) whose password it is
    notes: tuple[str, ...] = ()  # steps by hand, in the operator's words
    via: str | None = None  # rotated by rotating this id instead
    keep_old: tuple[Location, ...] = ()  # where replaced values stay verifiable (old_signing_keys)


@dataclass(frozen=True)
class Docs:
    protects: str = ""
    leaked: str = ""  # what a leak exposes
    restart: str = ""  # what restarts after a rotation, in words
    by_hand: str = ""  # the manual step, in words
    section: str = "secrets"  # the checklist section it belongs to
    topic: str = ""  # the checklist item of its section it belongs to, where the section has several (an item
    #                  naming this topic; default: the section's first item the wizard does)


@dataclass(frozen=True)
class Record:
    id: str
    kind: str  # SECRET | SETTING
    locations: tuple[Location, ...] = ()
    tokens: tuple[str, ...] = ()
    form: str | None = None  # generator (SECRET); None: given or derived
    form_params: tuple[tuple[str, str], ...] = ()  # generator argument -> answers key (rsa bits)
    answers_key: str | None = None  # where the answers give it (a setting's value, a provided secret)
    provided: bool = False  # only the operator gives it: never generated, never rotated
    derive: str | None = None  # how it is computed from `derived_from` (a function of wizard.generate)
    derived_from: tuple[str, ...] = ()  # ids or answers keys it is computed from
    distinct_from: str | None = None
    limits: Limits = field(default_factory=Limits)
    block: bool = False  # a whole block value (key file, PEM, htpasswd): kept without its last line break
    defaults: tuple[str, ...] = ()  # values a fresh tree holds (CATALOG §5): replacing others asks first
    immutable: bool = False  # never changes once set in a configured tree
    component: str | None = None  # a component the answers turn on and off (its placeholders are notes)
    store: bool = True  # a SECRET kept in the secrets file
    rotation: Rotation = field(default_factory=Rotation)
    docs: Docs = field(default_factory=Docs)
    what: str = ""
    group_rule: str | None = None  # the check rule that reports its locations disagreeing (None: equality-group
    #                                for a secret; a setting's locations are compared only when it names a rule)
    value_rule: str | None = None  # a check rule that judges the value itself (usable key, open allowlist)

    @property
    def secret(self) -> bool:
        return self.kind == SECRET

    @property
    def generated(self) -> bool:
        return self.kind == SECRET and self.form is not None and not self.provided


@dataclass(frozen=True)
class Component:
    """Objects that come and go together. Present when any of its anchors is found in the tree; `switch`
    is the answers key that enables it (else it is on whenever present)."""

    name: str
    anchors: tuple[str, ...]  # object addresses (FILE › Kind/name) or plain files
    switch: str | None = None


@dataclass(frozen=True)
class SecretRef:
    """A secret inside a section value: `${VAR}` where the config is rendered by envsubst (VAR: the key of
    the Secret the pod loads that holds the id), the value itself in a plain copy."""

    id: str


def has_token(value: str) -> bool:
    return TOKEN_RE.search(value) is not None
