"""plan(tree, answers, secrets) → every edit, and what is left: the tree as it will be, or the reasons it
cannot be (bad input: exit 2, nothing written).

Pure: it reads the tree and never writes; randomness (the generators), the clock and the signing-key
deny-list come in as arguments. Every fact about a secret or setting comes from its catalog record; the
steps below know how to find, decide and write a value, not which file holds which one:

  locate    every record's locations, in the operator's own tree (wizard.find)
  tokens    every placeholder token in a manifest value: at a catalog location the location decides the
            id, elsewhere the token does; unknown tokens take the answers' `placeholders:`
  decide    each secret's value: a rotation in progress, a rotation, the operator's, the secrets file's,
            the tree's (all its locations agreeing), or a new one
  write     each value where it lives — never splitting a group: a new value with a location that cannot
            be placed is stored, written nowhere, and left over
  judge     the configs pods render with envsubst, as they will render them
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from wizard import catalog as C
from wizard import generate
from wizard.catalog import Location, Record
from wizard.edits import (Edit, FlowMap, column, insert_entry, insert_nested, remove_entry_lines, render_entry,
                          yaml_scalar)
from wizard.errors import CannotCarry, SecretsError, TreeError, WizardError
from wizard.find import (AMBIGUOUS, COMMENT, DISABLED, HELD_BACK, NOT_FOUND, OUTSIDE, PREFLIGHT, TOKEN_CONFLICT,
                         UNKNOWN_TOKEN, ABSENT, Finder, Place, Problem)
from wizard.index import TreeIndex
from wizard.locate import views as V
from wizard.locate.resolve import Address, Tree, encode_conf, resolve, span_of
from wizard.locate.yamlspan import map_get, map_key, object_id, parse_yaml_single, parse_yaml_stream, to_data
from wizard.store import SecretStore

PREFLIGHT_WORD = "CHANGEME"


@dataclass
class Found:
    id: str
    address: str  # the catalog location
    location: str  # where it is in this tree
    how: str

    def to_json(self) -> dict:
        return {"id": self.id, "address": self.address, "location": self.location, "how": self.how}


@dataclass
class Plan:
    edits: list[Edit] = field(default_factory=list)
    store: SecretStore | None = None
    store_changed: bool = False
    generated: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    secret_values: dict[str, str] = field(default_factory=dict)  # value -> id, masked in output
    old_texts: dict[str, str] = field(default_factory=dict)
    new_texts: dict[str, str] = field(default_factory=dict)
    files: dict = field(default_factory=dict)  # rel -> SourceFile
    replaced: list[tuple[str, str]] = field(default_factory=list)  # (id, file:line) of set values replaced
    outside: dict = field(default_factory=dict)  # path -> (current bytes or None, new bytes): .well-known files
    found: list[Found] = field(default_factory=list)  # locations found elsewhere than the catalog says
    where: dict[str, list[str]] = field(default_factory=dict)  # id -> every address it is written to here
    kube_files: set[str] = field(default_factory=set)  # files holding Kubernetes objects
    leftovers: list[Problem] = field(default_factory=list)
    notes: list[Problem] = field(default_factory=list)

    @property
    def changed_files(self) -> list[str]:
        return sorted(rel for rel, text in self.new_texts.items() if text != self.old_texts[rel])


class PlanErrors(WizardError):
    def __init__(self, errors: list[WizardError]):
        self.errors = errors
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(first.message + more, where=first.where, hint=first.hint)

    def lines(self) -> list[str]:
        return [str(e) for e in self.errors]


# ---------------------------------------------------------------- what the answers say

def answer(answers, key: str):
    """The value an answers key gives (references read), None when absent."""
    getter = getattr(answers, "get", None)
    if callable(getter):
        return getter(key)
    return _ANSWER_ATTRS.get(key, lambda a: None)(answers)


_ANSWER_ATTRS = {
    "server_name": lambda a: a.server_name,
    "tls.acme_email": lambda a: a.acme_email,
    "tls.mode": lambda a: a.tls_mode,
    "tls.secret_name": lambda a: a.tls_secret_name or None,
    "li.allowed_cidrs": lambda a: list(a.allowed_cidrs),
    "li.admin_user": lambda a: a.admin_user,
    "li.admin_password": lambda a: a.admin_password,
    "li.auth_realm": lambda a: a.auth_realm or None,
    "storage.class": lambda a: a.storage_class,
    "turn.external_ip": lambda a: a.external_ip or None,
    "minio.s3_access_key": lambda a: a.s3_access_key,
    "key_vault.rsa_bits": lambda a: a.rsa_bits,
    "smtp": lambda a: a.smtp if a.smtp.enabled else None,
    "smtp.enabled": lambda a: a.smtp.enabled,
    "smtp.password": lambda a: a.smtp.password if a.smtp.enabled else None,
    "push.enabled": lambda a: a.push.enabled,
    "push.apns.key_file": lambda a: a.push.values.get("push.apns.key"),
    "push.apns.key_id": lambda a: a.push.values.get("push.apns.key_id"),
    "push.apns.team_id": lambda a: a.push.values.get("push.apns.team_id"),
    "push.apns.topic": lambda a: a.push.values.get("push.apns.topic"),
    "push.fcm.service_account_file": lambda a: a.push.values.get("push.fcm.service_account"),
    **{f"domains.{k}": (lambda k: lambda a: a.domains[k])(k)
       for k in ("matrix", "element", "turn", "li_matrix", "li_element", "li_admin", "livekit")},
}


# ---------------------------------------------------------------- a token in a value

@dataclass
class TokenHit:
    file: str
    start: int  # file index of the token
    end: int
    token: str
    span: V.Span  # what is replaced: the whole YAML/JSON value, or the token itself in plain text
    whole: V.Span  # the whole value holding it (a block value is replaced whole by a key or a PEM)
    address: str | None  # an address that resolves to that value (for `placed:`), when one can be written
    obj: str | None  # "file › Kind/name" of the object holding it
    structured: bool  # the value sits in YAML/JSON (escaped by its format); else plain text in a block

    def line(self, index: TreeIndex) -> int:
        return self.span.file.line_of(self.start)


class Planner:
    def __init__(self, tree: Tree, answers, store: SecretStore, *, rotate=(), revoke: bool = False,
                 now_ms: int = 0, gen: generate.Generators, denylist: frozenset[str] = frozenset()):
        self.tree = tree
        self.answers = answers
        self.original = store
        self.store = store.copy()
        self.rotate = set(rotate)
        self.revoke = revoke
        self.now_ms = now_ms
        self.gen = gen
        self.denylist = denylist
        self.plan = Plan()
        self.errors: list[WizardError] = []
        self.edits: list[Edit] = []
        self.values: dict[str, str] = {}
        self.places: dict[str, list[Place]] = {}
        self.token_places: dict[str, list[TokenHit]] = {}
        self.placed_places: dict[str, list[Place]] = {}
        self.old_key_places: dict[str, list[Place]] = {}
        self.blocked: dict[str, list[Problem]] = {}
        self.problems: list[Problem] = []
        self._late: list = []  # edits waiting for a background computation (bcrypt)
        self.placeholders = dict(getattr(answers, "placeholders", None) or {})
        self.records = {r.id: r for r in C.RECORDS}
        self.index = TreeIndex.build(tree, extra_manifests=[f for f in C.PLAIN_COPIES if not f.endswith(
            (".yaml", ".yml", ".json"))])
        catalog_objects = {f"{Address.parse(loc.address).file} › {'/'.join(Address.parse(loc.address).obj)}"
                           for r in C.RECORDS for loc in r.locations if Address.parse(loc.address).obj}
        catalog_objects |= {a for c in C.COMPONENTS for a in c.anchors if "/" in a.split(" › ")[-1]}
        self.finder = Finder(self.index, catalog_objects, settle=getattr(answers, "locations", None) or {})
        self.present, self.enabled = self._components()

    # ---------------------------------------------------------------- entry point
    def run(self) -> Plan:
        if not self.index.objects and not any(map_get(doc, "server_name") is not None
                                              for _, _, doc in self.index.plain_docs):
            raise WizardError(f"no deployment found in {self.tree.root} (no Kubernetes object and no homeserver "
                              "config in it)", hint="give the deployment folder with --deployment or deployment:")
        self._parse_problems()
        for step in (self._locate, self._tokens, self._placed, self._decide_all, self._check_values, self._write,
                     self._structural):
            try:
                step()
            except WizardError as exc:
                self.errors.append(exc)
            if self.errors:
                break
        for finish in self._late:
            try:
                finish()
            except WizardError as exc:
                self.errors.append(exc)
        if self.errors:
            raise PlanErrors(self.errors)
        self._assemble()
        self._judge_consumers()
        if self.errors:
            raise PlanErrors(self.errors)
        self._record_placed()
        self._record_where()
        self.plan.store = self.store
        self.plan.store_changed = self.store.dump().encode() != (self.store.raw if self.store.exists else b"")
        for source in (self.original.values, self.original.rotating, self.store.values, self.store.rotating):
            for cid, value in source.items():
                if not self._plain_text(cid):
                    self.plan.secret_values.setdefault(value, cid)
        for cid, places in self.places.items():  # what the tree held before, adopted or replaced
            r = self.records.get(cid)
            if r is not None and r.kind == C.SECRET:
                for p in places:
                    for sp in p.spans:
                        if sp.value and not C.has_token(sp.value):
                            self.plan.secret_values.setdefault(sp.value, cid)
        self._sort_problems()
        return self.plan

    # ---------------------------------------------------------------- components and parse problems
    def _components(self):
        present, enabled = {}, {}
        for comp in C.COMPONENTS:
            here = False
            for anchor in comp.anchors:
                a = Address.parse(anchor)
                hit = (self.finder.find_object(a.file, *a.obj) if a.obj else
                       self.finder.find_file(a.file, [], False))
                if hit.obj is not None or hit.file is not None or (hit.problem and hit.problem.kind in ("parse",
                                                                                                        AMBIGUOUS)):
                    here = True
            present[comp.name] = here
            on = here
            if comp.switch is not None:
                on = here and bool(answer(self.answers, comp.switch))
            enabled[comp.name] = on
        return present, enabled

    def _component_of(self, loc: Location) -> str | None:
        a = Address.parse(loc.address)
        obj = f"{a.file} › {a.obj[0]}/{a.obj[1]}" if a.obj else a.file
        for comp in C.COMPONENTS:
            if obj in comp.anchors or (a.obj is None and a.file in comp.anchors):
                return comp.name
        return None

    def _active(self, r: Record) -> bool:
        return r.component is None or self.enabled.get(r.component, True)

    def _parse_problems(self) -> None:
        for rel in self.index.broken:
            self.problems.append(self.finder._parse_problem(rel))

    # ---------------------------------------------------------------- locate
    def _needed(self, r: Record) -> bool:
        if not self._active(r):
            return False
        if r.kind == C.SETTING:  # a setting without a value is written nowhere, unless its absence is written
            return (self._setting_value(r) is not None or r.derive == "default_when_absent"
                    or any(loc.write == C.ISSUER for loc in r.locations))
        return True

    def _locate(self) -> None:
        absent_noted = set()
        for r in C.RECORDS:
            if not self._needed(r):
                continue
            for loc in r.locations:
                comp = self._component_of(loc)
                if comp is not None and not self.present.get(comp, True):
                    if comp not in absent_noted:
                        absent_noted.add(comp)
                        self.problems.append(Problem(ABSENT, None, 0, f"component {comp} is not in this tree: its "
                                                     "values are written nowhere", note=True, address=loc.file))
                    continue
                res = self.finder.place(loc)
                if isinstance(res, Problem):
                    if res.note:
                        self.problems.append(res)
                    else:
                        self.blocked.setdefault(r.id, []).append(res)
                        self.problems.append(res)
                    continue
                if not res.spans and res.found.missing and loc.write == C.SET and not loc.optional \
                        and not res.found.nodes:
                    m = res.found.missing[0]
                    keys = ".".join(str(s.arg) for s in m.rest)
                    where = m.view.where(m.node.start) if m.node is not None else m.view.file.rel
                    f, _, ln = where.rpartition(":")
                    p = Problem(NOT_FOUND, f, int(ln) if ln.isdigit() else 0,
                                f"{keys} is not in {res.obj} ({r.id})", "add the key, or run with a tree that has it",
                                id=r.id, address=loc.address)
                    self.blocked.setdefault(r.id, []).append(p)
                    self.problems.append(p)
                    continue
                self.places.setdefault(r.id, []).append(res)
                if res.how:
                    self.plan.found.append(Found(r.id, loc.address, res.address.text, res.how))

    # ---------------------------------------------------------------- tokens
    def _covered(self) -> list[tuple[str, int, int]]:
        out = []
        for places in self.places.values():
            for p in places:
                for sp in p.spans:
                    s, e = sp.file_span()
                    out.append((sp.file.rel, s, e))
        return out

    def _tokens(self) -> None:
        covered = self._covered()
        disabled_objs = set()
        for comp in C.COMPONENTS:
            if self.present.get(comp.name) and not self.enabled.get(comp.name):
                for anchor in comp.anchors:
                    a = Address.parse(anchor)
                    if a.obj:
                        hit = self.finder.find_object(a.file, *a.obj)
                        if hit.obj is not None:
                            disabled_objs.add((hit.obj.address, comp.name))
        disabled = dict(disabled_objs)
        in_values: dict[str, set[int]] = {}
        for hit in _token_hits(self.index):
            in_values.setdefault(hit.file, set()).add(hit.start)
            if any(f == hit.file and s <= hit.start < e for f, s, e in covered):
                continue  # at a catalog location: the location decides the id
            line = hit.line(self.index)
            if hit.obj in disabled:
                self.problems.append(Problem(DISABLED, hit.file, line, f"{hit.token} stays: component "
                                             f"{disabled[hit.obj]} is disabled", f"turn it on in the answers "
                                             f"({C.COMPONENT_BY_NAME[disabled[hit.obj]].switch}) to configure it",
                                             token=hit.token, note=True))
                continue
            if hit.token in C.AMBIGUOUS_TOKENS:
                ids = " or ".join(C.AMBIGUOUS_TOKENS[hit.token])
                self.problems.append(Problem(TOKEN_CONFLICT, hit.file, line, f"{hit.token} stands for {ids} here",
                                             "set this value by hand (it is not a catalog location)",
                                             token=hit.token))
                continue
            cid = C.TOKEN_IDS.get(hit.token)
            if cid is not None:
                r = self.records[cid]
                if not self._active(r):
                    self.problems.append(Problem(DISABLED, hit.file, line, f"{hit.token} ({cid}) stays: component "
                                                 f"{r.component} is off", f"turn it on in the answers to configure it",
                                                 token=hit.token, id=cid, note=True))
                    continue
                self.token_places.setdefault(cid, []).append(hit)
                continue
            key = self._placeholder_key(hit.token, hit.file)
            if key is None:
                self.problems.append(Problem(UNKNOWN_TOKEN, hit.file, line, f"unknown placeholder {hit.token} (in no "
                                             "row of the catalog)", f"give it a value in the answers file: "
                                             f"placeholders: {{{hit.token}: …}}", token=hit.token))
                continue
            self.token_places.setdefault(C.placeholder_id(key), []).append(hit)
        for rel, line, text, token in _tokens_outside_values(self.index, in_values):
            kind = COMMENT if rel in self.index.manifests else OUTSIDE
            what = "a comment" if kind == COMMENT else "not a manifest (never edited)"
            self.problems.append(Problem(kind, rel, line, f"{token} in {what}: a hint, not a value",
                                         "nothing to do" if kind == COMMENT else "edit it yourself if it matters",
                                         token=token, note=True))

    def _placeholder_key(self, token: str, rel: str) -> str | None:
        for key in (f"{token}@{rel}", token):
            if key in self.placeholders:
                return key
        return None

    # ---------------------------------------------------------------- placed: locations found by a token before
    def _placed(self) -> None:
        for cid, addresses in self.store.placed.items():
            r = C.record(cid)
            if r is None or (cid in self.records and not self._active(self.records[cid])):
                continue
            for text in addresses:
                try:
                    addr = Address.parse(text)
                    found = resolve(self.tree, addr)
                except (TreeError, ValueError):
                    continue
                if found.spans:
                    self.placed_places.setdefault(cid, []).append(Place(Location(text), addr, found, addr.file))

    # ---------------------------------------------------------------- decide every secret's value
    def _decide_all(self) -> None:
        provided_ids = {r.id for r in C.RECORDS if r.kind == C.SECRET and r.answers_key
                        and answer(self.answers, r.answers_key) is not None and self._active(r)}
        for cid in sorted(self.rotate):
            r = C.record(cid)
            if cid.startswith(C.PLACEHOLDER_PREFIX) and C.placeholder_key(cid) in self.placeholders:
                r = self._placeholder_record(C.placeholder_key(cid))
            if r is None or r.provided or cid in provided_ids or cid in self.store.provided:
                raise SecretsError(f"{cid} is a value the operator provided; change it in its source, not by rotation")
        order = [r for r in C.RECORDS if r.kind == C.SECRET and not r.derive]
        order += [self._placeholder_record(k) for k in self.placeholders
                  if any(C.placeholder_id(k) in where for where in (self.token_places, self.placed_places))]
        for r in order:
            if r is None or not self._active(r):
                continue
            located = self.places.get(r.id) or self.token_places.get(r.id) or self.placed_places.get(r.id)
            kept = (r.id in self.rotate or r.id in self.store.rotating or r.id in self.store.values
                    or self._provided(r) is not None)
            if not located and not (not r.locations and kept):
                continue  # a value kept only in the secrets file is decided when something needs it
            self.values[r.id] = self._decide(r)
            self._limits(r.id, self.values[r.id])
        for r in C.RECORDS:
            if r.kind == C.SECRET and r.derive and self._active(r):
                self._derive(r)

    def _placeholder_record(self, key: str) -> Record | None:
        entry = self.placeholders[key]
        if entry.form is not None:
            return C.placeholder_record(key, entry.form)
        return Record(C.placeholder_id(key), C.SECRET, provided=True, what=f"the value of {key}")

    def _plain_text(self, cid: str) -> bool:
        """A placeholder given as plain text in the answers: not a secret (the answers file holds it)."""
        if not cid.startswith(C.PLACEHOLDER_PREFIX):
            return False
        entry = self.placeholders.get(C.placeholder_key(cid))
        return entry is not None and not entry.secret

    def _spans_of(self, cid: str) -> list:
        return [(p.location.address, sp) for p in self.places.get(cid, []) for sp in p.spans]

    def _provided(self, r: Record) -> str | None:
        if r.id.startswith(C.PLACEHOLDER_PREFIX):
            entry = self.placeholders.get(C.placeholder_key(r.id))
            return entry.value if entry is not None and entry.form is None else None
        if r.answers_key:
            value = answer(self.answers, r.answers_key)
            return value if isinstance(value, str) else None
        return None

    def _decide(self, r: Record) -> str:
        cid = r.id
        if cid in self.store.rotating:  # a rotation in progress: finished with its value, whatever the tree holds
            value = self.store.rotating[cid]
            self.store.values[cid] = value
            return value
        if cid in self.rotate:
            old = self.store.values.get(cid) or next(
                (sp.value for _, sp in self._spans_of(cid) if not C.has_token(sp.value)), None)
            if r.rotation.retire and old:
                self._retire(old)
            value = self._generate(r)
            self.store.values[cid] = value
            self.store.rotating[cid] = value
            self.plan.generated.append(cid)
            return value
        given = self._provided(r)
        if given is not None:
            self.store.provided.add(cid)
            self.store.values[cid] = given
            return given
        if cid in self.store.values:
            return self.store.values[cid]
        current: dict[str, list[str]] = {}
        for _, sp in self._spans_of(cid):
            if sp.value and not C.has_token(sp.value) and not (r.form and generate.is_form_placeholder(r.form,
                                                                                                        sp.value)):
                current.setdefault(sp.value, []).append(sp.where())
        if len(current) > 1:
            places = "; ".join(", ".join(w) for w in current.values())
            raise SecretsError(f"{cid} has different values in the tree: {places}",
                               hint="write the right value into the secrets file under `secrets:` and re-run")
        if current:
            value = next(iter(current))
            if r.form == "signing_key":
                try:
                    generate.signing_key_parts(value)
                except ValueError as exc:
                    raise SecretsError(f"the signing key in the tree is not usable: {exc}",
                                       where=next(iter(current.values()))[0]) from None
            self.store.values[cid] = value
            self.plan.adopted.append(cid)
            return value
        if r.form is None:
            raise SecretsError(f"{cid} has no value: give it in the answers file")
        value = self._generate(r)
        self.store.values[cid] = value
        self.plan.generated.append(cid)
        return value

    def _generate(self, r: Record) -> str:
        params = {k: answer(self.answers, key) for k, key in r.form_params}
        value = self.gen.new(r.form, **{k: v for k, v in params.items() if v is not None})
        self.plan.secret_values[value] = r.id
        return value

    def _retire(self, old_line: str) -> None:
        try:
            kid, pub = generate.verify_key_b64(old_line)
        except ValueError:
            return
        expired = self.now_ms if not self.revoke else 0
        entry = self.store.old_signing_keys.get(kid)
        if entry is None or entry.get("key") != pub:
            self.store.old_signing_keys[kid] = {"key": pub, "expired_ts": expired}

    def _derive(self, r: Record) -> None:
        """A secret computed from others (an htpasswd line from the user and password)."""
        if r.derive != "htpasswd_line":
            raise WizardError(f"{r.id}: unknown derivation {r.derive!r}")
        user_key, pw_id = r.derived_from
        user = answer(self.answers, user_key)
        pw = self.values.get(pw_id)
        spans = self._spans_of(r.id)
        tree_lines = {sp.value for _, sp in spans if sp.value and not C.has_token(sp.value)}
        stored = self.store.rotating.get(r.id) or self.store.values.get(r.id)
        if pw_id in self.store.rotating and r.id not in self.store.rotating and pw_id not in self.rotate:
            stored = None  # the password is being rotated: its old line no longer verifies
        if pw is None:
            if stored or tree_lines:
                if len(tree_lines) > 1 and not stored:
                    raise SecretsError(f"{r.id} has different values in the tree",
                                       hint="write the right value into the secrets file")
                self._set_derived(r, stored or next(iter(tree_lines)), None, user)
                return
            pw = self.values[pw_id] = self._generate(self.records[pw_id])
            self.store.values[pw_id] = pw
            self.plan.generated.append(pw_id)
        self._limits(pw_id, pw)
        # bcrypt at cost 12 takes a quarter second: a fingerprint of (user, password, line) kept in the
        # secrets file says the stored line was verified already
        if stored and self.store.verified.get(r.id) == _fingerprint(user, pw, stored):
            self._set_derived(r, stored, pw, user)
            return
        for candidate in [stored, *sorted(tree_lines)]:
            if candidate and generate.htpasswd_verifies(candidate, user, pw):
                self._set_derived(r, candidate, pw, user)
                return
        if pw_id not in self.plan.generated:
            self.plan.generated.append(r.id)
        result = self.gen.htpasswd(user, pw)
        self._late.append(lambda: self._set_derived(r, result(), pw, user, write=True))

    def _set_derived(self, r: Record, line: str, pw: str | None, user: str, *, write: bool = False) -> None:
        self.store.values[r.id] = line
        if any(d in self.store.rotating for d in r.derived_from):
            self.store.rotating[r.id] = line
        if pw is not None:
            self.store.verified[r.id] = _fingerprint(user, pw, line)
        self.plan.secret_values[line] = r.id
        self.values[r.id] = line
        if write:
            self._write_secret(r)

    # ---------------------------------------------------------------- judge the values
    def _limits(self, cid: str, value: str) -> None:
        """What the value's consumers cannot carry beyond the file formats (sed, bcrypt): refused by name."""
        r = C.record(cid)
        lim = r.limits if r is not None else None
        if lim is not None and lim.chars and any(ch in value for ch in lim.chars):
            bad = ", ".join(repr(c) for c in lim.chars if c in value)
            raise CannotCarry(f"{cid}: the value holds a character ({bad}) that breaks it: {lim.why}",
                              hint="use letters and digits")
        if lim is not None and lim.max_bytes and len(value.encode("utf-8")) > lim.max_bytes:
            raise CannotCarry(f"{cid} is {len(value.encode('utf-8'))} bytes long: {lim.max_bytes_why}",
                              hint=f"choose a value of at most {lim.max_bytes} bytes")

    def _check_values(self) -> None:
        for cid, value in self.values.items():
            r = C.record(cid)
            if r is not None and r.form == "signing_key":
                problem = generate.signing_key_problem(value, self.denylist)
                if problem:
                    raise SecretsError(f"{cid} cannot be used: {problem}", hint=f"wizard rotate {cid} --revoke")
                for kid, entry in self.store.old_signing_keys.items():
                    bad = generate.old_key_problem(kid, entry, value)
                    if bad:
                        raise SecretsError(f"old_signing_keys in the secrets file: {bad}")
        for cid in self.values:
            r = self.records.get(cid)
            if r is not None and r.distinct_from and self.values.get(r.distinct_from) == self.values[cid]:
                raise SecretsError(f"{cid} equals {r.distinct_from}; the LI instance must not share it",
                                   hint=f"wizard rotate {cid}")

    # ---------------------------------------------------------------- write
    def _held_back(self, r: Record) -> bool:
        """A value new in this run whose group cannot be placed whole is written nowhere (never split)."""
        new = r.id in self.plan.generated or r.id in self.rotate
        return new and bool(self.blocked.get(r.id))

    def _write(self) -> None:
        for r in C.RECORDS:
            if r.kind == C.SECRET and r.id in self.values:
                self._write_secret(r)
        for cid in self.values:
            if cid.startswith(C.PLACEHOLDER_PREFIX):
                self._write_secret(self._placeholder_record(C.placeholder_key(cid)))
        for r in C.RECORDS:
            if r.kind == C.SETTING and self._needed(r):
                self._write_setting(r)

    def _write_secret(self, r: Record) -> None:
        value = self.values[r.id]
        if self._held_back(r):
            where = "; ".join(p.format() for p in self.blocked[r.id])
            self.problems.append(Problem(HELD_BACK, None, 0, f"{r.id}: its new value is kept in the secrets file and "
                                         f"written nowhere until every location can be placed ({where})",
                                         "fix what blocks it and re-run", id=r.id))
            return
        for p in self.places.get(r.id, []):
            if p.location.write == C.ADD and not p.spans:
                self._add(p, value, r.id)
            else:
                self._write_spans(r.id, [(p.location.address, sp) for sp in p.spans], value)
        self._write_tokens(r, value)
        old = self.original.values.get(r.id)
        for p in self.placed_places.get(r.id, []):
            for sp in p.spans:
                if old and old != value and old in sp.value:
                    self._splice(r.id, sp, sp.value.replace(old, value))

    def _write_tokens(self, r: Record, value: str) -> None:
        """At a location found by its token: a block value (key, PEM) is replaced whole; a YAML/JSON value
        keeps the rest of its text around the token; plain text in a block takes only safe characters."""
        by_span: dict[tuple, list[TokenHit]] = {}
        for hit in self.token_places.get(r.id, []):
            sp = hit.whole if r.block else hit.span
            by_span.setdefault((hit.file, sp.file_span()), []).append(hit)
        for hits in by_span.values():
            first = hits[0]
            if r.block:
                self._splice(r.id, first.whole, value)
                continue
            if not first.structured and not re.fullmatch(r"[A-Za-z0-9._@:/+=,-]*", value):
                raise CannotCarry(f"{r.id}: {first.token} sits in plain text of unknown format; only letters, digits "
                                  "and ._@:/+=,- can be written into it", where=f"{first.file}:{first.line(self.index)}")
            new = first.span.value
            for token in sorted({h.token for h in hits}, key=len, reverse=True):
                new = new.replace(token, value)
            self._splice(r.id, first.span, new)

    def _splice(self, cid: str, sp: V.Span, new_value: str) -> None:
        if sp.value == new_value:
            return
        try:
            text = sp.render(new_value, cid)
        except CannotCarry as exc:
            exc.where = exc.where or sp.where()
            raise
        start, end = sp.file_span()
        self.edits.append(Edit(sp.file.rel, start, end, text, (cid,), f"set {cid}"))

    def _write_spans(self, cid: str, spans, value: str) -> None:
        for loc, sp in spans:
            if sp.value == value:
                continue
            if not C.is_unset(cid, sp.value):
                self.plan.replaced.append((cid, sp.where()))
            try:
                text = sp.render(value, cid)
            except CannotCarry as exc:
                exc.where = exc.where or sp.where()
                exc.message = f"{exc.message} [{loc}]"
                raise
            start, end = sp.file_span()
            self.edits.append(Edit(sp.file.rel, start, end, text, (cid,), f"set {cid}"))

    # ---------------------------------------------------------------- settings
    def _setting_value(self, r: Record):
        d = r.derive
        if d is None:
            return answer(self.answers, r.answers_key) if r.answers_key else None
        if d == "issuer":
            mode = answer(self.answers, r.answers_key)
            return None if mode == "manual" else mode
        if d == "selfsigned_document":
            return C.SELFSIGNED_DOC if answer(self.answers, r.answers_key) == "selfsigned" else None
        if d == "comma_list":
            items = answer(self.answers, r.answers_key) or []
            return ", ".join(items) if items else None
        if d.startswith("constant:"):
            return d.split(":", 1)[1]
        if d == "object-name":
            a = Address.parse(r.derived_from[0])
            hit = self.finder.find_object(a.file, *a.obj)
            return hit.obj.name if hit.obj is not None else a.obj[1]
        if d == "default_when_absent":
            return answer(self.answers, r.answers_key)
        if d == "read":
            a = Address.parse(r.derived_from[0])
            p = self.finder.place(Location(r.derived_from[0]))
            if isinstance(p, Place) and p.spans and not C.has_token(p.spans[0].value):
                return p.spans[0].value
            return r.defaults[0] if r.defaults else None
        if d == "smtp_section":
            return answer(self.answers, r.answers_key)
        raise WizardError(f"{r.id}: unknown derivation {d!r}")

    def _write_setting(self, r: Record) -> None:
        value = self._setting_value(r)
        for p in self.places.get(r.id, []):
            w = p.location.write
            if w == C.ISSUER:
                self._issuer(p, value, r.id)
            elif value is None and r.derive == "default_when_absent":
                if not p.spans:
                    self._add(p, r.defaults[0], r.id)
            elif value is None:
                continue
            elif w == C.ADD:
                if p.spans:
                    self._set_typed(p, value, r.id)
                else:
                    self._add(p, value, r.id)
            elif w == C.CONF_LINE:
                self._conf_line(p, value, r.id)
            elif w == C.SECTION:
                self._section(p, value, r.id)
            elif w == C.DOCUMENT:
                self._document(p, value, r.id)
            else:
                if r.immutable:
                    for sp in p.spans:
                        if sp.value != value and not C.is_unset(r.id, sp.value):
                            raise WizardError(
                                f"{r.id} cannot change once a tree is configured (Synapse binds its data to it): the "
                                f"tree says {sp.value}, the answers say {value}", where=sp.where(),
                                hint=f"keep {r.id}: {sp.value} in the answers, or start a new deployment")
                self._write_spans(r.id, [(p.location.address, sp) for sp in p.spans], str(value))

    def _set_typed(self, p: Place, value, cid: str) -> None:
        if isinstance(value, str):
            self._write_spans(cid, [(p.location.address, sp) for sp in p.spans], value)
            return
        text = yaml_scalar(value)
        for sp in p.spans:
            if sp.value != text:
                start, end = sp.file_span()
                self.edits.append(Edit(sp.file.rel, start, end, sp.view.encode(text, cid), (cid,), f"set {cid}"))

    def _add(self, p: Place, value, cid: str) -> None:
        """Add the key a location names where it is absent (after its commented example)."""
        if not p.found.missing:
            return
        m = p.found.missing[0]
        keys = tuple(str(s.arg) for s in m.rest)
        example = p.location.example or keys[-1]
        if m.node is None:
            raise TreeError(f"cannot add {'.'.join(keys)}: no document", where=p.address.file)
        if len(keys) == 1:
            self.edits.append(insert_entry(m.view, m.node, keys[0], value, example=example, ids=(cid,),
                                           what=f"add {keys[0]}"))
        else:
            self.edits.append(insert_nested(m.view, m.node, keys, value, ids=(cid,), what=f"add {'.'.join(keys)}"))

    def _issuer(self, p: Place, issuer: str | None, cid: str) -> None:
        """Set, add (back) or — in manual TLS mode — remove the cert-manager issuer annotation."""
        if issuer is not None:
            if p.spans:
                self._write_spans(cid, [(p.location.address, sp) for sp in p.spans], issuer)
            else:
                self._add(p, issuer, cid)
            return
        key = str(p.address.steps[-1].arg[-1].arg)
        parent = _parent(p.address)
        for view, node, _ in resolve(self.tree, parent, want_nodes=True).nodes:
            k = map_key(node, key)
            if k is not None:
                if not C.is_unset(cid, str(map_get(node, key).value)):
                    self.plan.replaced.append((cid, view.where(k.start)))
                self.edits.append(remove_entry_lines(view, k, map_get(node, key), ids=(cid,),
                                                     what="remove issuer annotation"))

    def _conf_line(self, p: Place, value: str, cid: str) -> None:
        if p.spans:
            self._write_spans(cid, [(p.location.address, sp) for sp in p.spans], value)
            return
        # no real line: add one after its commented example, or at the end of the file
        key = str(p.address.steps[-1].arg)
        conf_addr = Address(p.address.text.rpartition(" › ")[0], p.address.file, p.address.obj, p.address.steps[:-1])
        whole = resolve(self.tree, conf_addr)
        if not whole.spans:
            return
        view = whole.spans[0].opener()
        text = view.text
        m = None
        for m in re.finditer(r"^[ \t]*#[ \t]*" + re.escape(key) + r"[ \t]*=.*$", text, re.MULTILINE):
            pass
        anchor = m.end() if m else len(text.rstrip("\n"))
        new = f"\n{key}={encode_conf(value, cid)}"
        self.edits.append(Edit(view.file.rel, view.to_file(anchor), view.to_file(anchor), view.encode(new, cid),
                               (cid,), f"add {key}"))

    def _document(self, p: Place, doc_text: str, cid: str) -> None:
        view, docs = self.tree.yaml_docs(p.address.file)
        want = parse_yaml_single(V.FileView(V.SourceFile.from_bytes("doc", doc_text.encode())))
        want_id = object_id(want)
        if any(object_id(d) is not None and object_id(d)[1:] == want_id[1:] for d in docs):
            return
        text = view.text
        sep = "" if text.endswith("\n") or not text else "\n"
        self.edits.append(Edit(view.file.rel, len(text), len(text), view.encode(sep + "---\n" + doc_text, cid),
                               (cid,), f"add {want_id[1]}/{want_id[2]}"))

    def _section(self, p: Place, smtp, cid: str) -> None:
        """The homeserver's email section, key by key (or whole, after its commented example). A config that
        pods render with envsubst reads the password as ${VAR} from the Secret; a plain copy holds it."""
        password_id = self.records[cid].derived_from[0]
        section = {"smtp_host": smtp.host, "smtp_port": smtp.port,
                   "require_transport_security": smtp.require_transport_security, "notif_from": smtp.from_,
                   "enable_notifs": True}
        if smtp.user:
            section["smtp_user"] = smtp.user
        if p.location.envsubst:
            for k, v in section.items():  # a `$NAME` would be replaced by envsubst
                if isinstance(v, str) and re.search(r"\$[A-Za-z_{]", v):
                    raise CannotCarry("a `$` followed by a name would be replaced by envsubst in the homeserver "
                                      "config", where=f"{self.records[cid].answers_key}.{_SMTP_ANSWER_KEYS.get(k, k)}")
        if smtp.password is not None:
            if p.location.envsubst:
                section["smtp_pass"] = "${" + (self._secret_key_var(password_id) or "SMTP_PASSWORD") + "}"
            else:
                section["smtp_pass"] = smtp.password
        mapping = p.found.nodes[0][1] if p.found.nodes and p.found.nodes[0][1].kind == "map" else None
        if mapping is None:
            if p.found.missing:
                m = p.found.missing[0]
                self.edits.append(insert_entry(m.view, m.node, "email", section, example=p.location.example or "email:",
                                               ids=(cid,), what="add email section"))
            return
        for k, v in section.items():
            sub = _child(p.address, k)
            found = resolve(self.tree, sub, want_nodes=True)
            key_cid = password_id if k == "smtp_pass" else cid
            if found.spans:
                self._set_typed(Place(Location(sub.text), sub, found), v, key_cid)
            elif found.missing:
                m = found.missing[0]
                self.edits.append(insert_entry(m.view, m.node, k, v, example=k, ids=(key_cid,), what=f"add {k}"))

    def _secret_key_var(self, cid: str) -> str | None:
        for p in self.places.get(cid, []):
            segs = p.address.steps[-1].arg if p.address.steps else ()
            if segs:
                return str(segs[-1].arg)
        return None

    # ---------------------------------------------------------------- structural: old signing keys
    def _structural(self) -> None:
        for r in C.RECORDS:
            if r.kind == C.SECRET and r.rotation.retire and r.id in self.values:
                self._old_signing_keys(r)

    def _old_signing_keys(self, r: Record) -> None:
        wanted = self.store.old_signing_keys
        for text in r.rotation.also:
            loc = Location(text)
            res = self.finder.place(loc)
            if isinstance(res, Problem):
                continue
            self.old_key_places.setdefault(r.id, []).append(res)
            parent_nodes = self._parent_of(res)
            if parent_nodes is None:
                continue
            view, doc = parent_nodes
            key = map_key(doc, "old_signing_keys")
            current = to_data(map_get(doc, "old_signing_keys")) if key is not None else None
            if key is None and not wanted:
                continue
            merged = dict(current or {}) if isinstance(current, dict) else {}
            merged.update(wanted)
            if current == merged:
                continue
            lines_value = {kid: FlowMap([("key", e["key"]), ("expired_ts", int(e["expired_ts"]))])
                           for kid, e in sorted(merged.items())}
            if key is not None:
                self.edits.append(remove_entry_lines(view, key, map_get(doc, "old_signing_keys"), ids=(r.id,),
                                                     what="replace old_signing_keys"))
                self.edits.append(_insert_before_line(view, key, "old_signing_keys", lines_value, r.id))
            else:
                after = "signing_key_path" if map_key(doc, "signing_key_path") is not None else None
                self.edits.append(insert_entry(view, doc, "old_signing_keys", lines_value, after_key=after,
                                               ids=(r.id,), what="add old_signing_keys"))

    def _parent_of(self, p: Place):
        """(view, mapping) holding the key a place names (the homeserver config's root for old_signing_keys)."""
        for view, node, _ in resolve(self.tree, _parent(p.address), want_nodes=True).nodes:
            if node.kind == "map":
                return view, node
        return None

    # ---------------------------------------------------------------- assemble per-file texts
    def _assemble(self) -> None:
        by_file: dict[str, list[Edit]] = {}
        for e in self.edits:
            by_file.setdefault(e.file, []).append(e)
        for rel, edits in by_file.items():
            f = self.tree.file(rel)
            text = f.text
            edits.sort(key=lambda e: (e.start, e.end))
            dedup: list[Edit] = []
            for e in edits:
                if dedup and (e.start, e.end, e.text) == (dedup[-1].start, dedup[-1].end, dedup[-1].text):
                    continue
                if dedup and e.start < dedup[-1].end:
                    raise TreeError("two edits overlap (the same value is claimed by two catalog entries)",
                                    where=f.where(e.start))
                dedup.append(e)
            out = []
            pos = 0
            for e in dedup:
                out.append(text[pos:e.start])
                out.append(e.text)
                pos = e.end
            out.append(text[pos:])
            self.plan.old_texts[rel] = text
            self.plan.new_texts[rel] = "".join(out)
            self.plan.files[rel] = f
            self.plan.edits.extend(dedup)

    def _judge_consumers(self) -> None:
        """Every envsubst'd config, rendered as its pod will render it from the values about to be
        written: a value of ours that changes the structure cannot be carried (exit 2 naming it)."""
        from wizard import consumers as K

        after = self.tree.with_texts({rel: self.plan.files[rel].to_bytes(text)
                                      for rel, text in self.plan.new_texts.items()})
        owned = self._owned_secret_keys()
        judged: set = set()
        seen: set = set()  # the workers of one instance render the same config from the same Secret
        for cfg in K.envsubst_configs(after):
            text = K.template_text(after, cfg)
            if text is None:
                continue
            env = dict(cfg.literal)
            env.update({v: K.STAND_IN for v in cfg.computed})
            suspects = []
            for var, sk in cfg.env.items():
                value = K.secret_value(after, sk)
                if value is None:
                    continue
                env[var] = value
                if (sk.file, sk.name, sk.key) in owned:
                    suspects.append(var)
            key = (text, tuple(sorted(env.items())), cfg.only, tuple(sorted(suspects)))
            if key in seen:
                continue
            seen.add(key)
            if K.renders_as_meant(text, env, cfg.only):
                continue
            for var in K.culprits(text, env, cfg.only, suspects):
                sk = cfg.env[var]
                cid = owned[(sk.file, sk.name, sk.key)]
                if (cid, cfg.file, cfg.configmap, cfg.key) in judged:
                    continue
                judged.add((cid, cfg.file, cfg.configmap, cfg.key))
                self.errors.append(CannotCarry(
                    f"{cid}: {cfg.workload} renders ConfigMap/{cfg.configmap} {cfg.key} with envsubst, and this "
                    f"value as ${{{var}}} would change the config's structure or read back as something else",
                    where=cfg.file, hint="use letters and digits, or quote the reference in the config"))

    def _owned_secret_keys(self) -> dict[tuple[str, str, str], str]:
        """(file, Secret name, key) -> the id written there, as found in this tree."""
        out = {}
        for cid, places in self.places.items():
            if self.records.get(cid) is None or self.records[cid].kind != C.SECRET:
                continue
            for p in places:
                if p.address.obj and p.address.obj[0] == "Secret" and p.address.steps:
                    segs = p.address.steps[-1].arg
                    if p.address.steps[-1].fmt == "path" and len(segs) == 2:
                        out[(p.address.file, p.address.obj[1], str(segs[-1].arg))] = cid
        return out

    # ---------------------------------------------------------------- placed, problems
    def _record_where(self) -> None:
        where = self.plan.where
        for cid, places in [*self.places.items(), *self.placed_places.items(), *self.old_key_places.items()]:
            where.setdefault(cid, []).extend(p.address.text for p in places)
        for cid, hits in self.token_places.items():
            where.setdefault(cid, []).extend(h.address or f"{h.file}:{h.line(self.index)}" for h in hits)
        for cid in where:
            where[cid] = list(dict.fromkeys(where[cid]))
        self.plan.kube_files = {o.file for o in self.index.objects}

    def _record_placed(self) -> None:
        for cid, hits in self.token_places.items():
            if cid not in self.values or (self.records.get(cid) and self._held_back(self.records[cid])):
                continue
            addresses = self.store.placed.setdefault(cid, [])
            for h in hits:
                if h.address and h.address not in addresses:
                    addresses.append(h.address)
        self.store.placed = {k: v for k, v in self.store.placed.items() if v}

    def _sort_problems(self) -> None:
        seen = set()
        mapper = _LineMapper(self.plan)
        for p in self.problems:
            if p.file and p.line and p.file in self.plan.new_texts:
                p.line = mapper.new_line(p.file, p.line)
            key = (p.kind, p.file, p.line, p.token, p.id, p.address if p.kind != "parse" else None)
            if key in seen:
                continue
            seen.add(key)
            (self.plan.notes if p.note else self.plan.leftovers).append(p)
        named = {(p.file, p.line) for p in self.plan.leftovers + self.plan.notes if p.file}
        for rel, line, text in _preflight(self.index, self.plan):
            if (rel, line) not in named:
                self.plan.notes.append(Problem(PREFLIGHT, rel, line, "still holds CHANGEME (not a value the wizard "
                                               "owns)", "the tree's own pre-flight grep finds this line: edit it by "
                                               "hand or leave the deploy script out", note=True))
        order = lambda p: (p.file or "", p.line, p.kind)  # noqa: E731
        self.plan.leftovers.sort(key=order)
        self.plan.notes.sort(key=order)


# ---------------------------------------------------------------- tokens in the tree

_SAFE_KEY = re.compile(r"[A-Za-z0-9_-]+")
EMBEDDED = {".yaml": "yaml", ".yml": "yaml", ".json": "json"}


_SMTP_ANSWER_KEYS = {"smtp_host": "host", "smtp_user": "user", "notif_from": "from"}


def _child(addr: Address, key: str) -> Address:
    """The address of `key` inside the mapping `addr` names."""
    from wizard.locate.resolve import Seg, Step

    last = addr.steps[-1]
    return Address(f'{addr.text}."{key}"', addr.file, addr.obj, (*addr.steps[:-1], Step(last.fmt, (*last.arg,
                                                                                                    Seg("key", key)))))


def _parent(addr: Address) -> Address:
    """The address of the mapping that holds the last key of `addr`."""
    from wizard.locate.resolve import Step

    last = addr.steps[-1]
    return Address(addr.text.rpartition(" ")[0], addr.file, addr.obj, (*addr.steps[:-1], Step(last.fmt,
                                                                                               tuple(last.arg[:-1]))))


def _path_text(path: list) -> str:
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            k = str(p)
            piece = k if _SAFE_KEY.fullmatch(k) else '"' + k.replace("\\", "\\\\").replace('"', '\\"') + '"'
            out += ("." if out else "") + piece
    return out


def _token_hits(index: TreeIndex):
    """Every token in a manifest value (embedded YAML/JSON files included), with the value holding it."""
    tree = index.tree
    for rel in index.manifests:
        if rel in index.broken:
            continue
        if rel.endswith((".yaml", ".yml")):
            view, docs = tree.yaml_docs(rel)
            plain_seen = False
            for doc in docs:
                if doc is None:
                    continue
                oid = object_id(doc)
                if oid is not None:
                    base = obj = f"{rel} › {oid[1]}/{oid[2]}"
                else:  # a plain YAML file: its first document is addressed by the file
                    base, obj = (rel if not plain_seen else None), rel
                    plain_seen = True
                yield from _walk_tokens(rel, view, doc, [], base, obj, "yaml", oid)
        elif rel.endswith(".json"):
            view, doc = tree.json_doc(rel)
            yield from _walk_tokens(rel, view, doc, [], rel, rel, "json", None)
        else:  # a plain text manifest (haproxy.cfg): the token itself, outside comment lines
            f = tree.file(rel)
            view = V.FileView(f)
            for m in C.TOKEN_RE.finditer(f.text):
                if _comment_line(f.text, m.start()):
                    continue
                sp = V.Span(view, m.start(), m.end(), m.group(), _as_is)
                yield TokenHit(rel, m.start(), m.end(), m.group(), sp, sp, None, rel, False)


def _as_is(value: str, what: str) -> str:
    return value


def _walk_tokens(rel, view, node, path, base, obj, fmt, oid):
    if node.kind == "map":
        for k, v in node.value:
            yield from _walk_tokens(rel, view, v, path + [k.value], base, obj, fmt, oid)
        return
    if node.kind == "seq":
        for i, x in enumerate(node.value):
            yield from _walk_tokens(rel, view, x, path + [i], base, obj, fmt, oid)
        return
    if not isinstance(node.value, str) or not C.TOKEN_RE.search(node.value):
        return
    whole = span_of(view, node, fmt)
    address = f"{base} › {_path_text(path)}" if base and path else None
    opener = getattr(whole, "opener", None)
    # a YAML/JSON file inside a ConfigMap/Secret value: its own values, with their own escaping
    last = str(path[-1]) if path else ""
    inner_fmt = EMBEDDED.get("." + last.rsplit(".", 1)[-1].lower()) if "." in last else None
    if inner_fmt and oid and oid[1] in ("ConfigMap", "Secret") and opener is not None:
        try:
            inner = opener()
            doc = parse_yaml_single(inner) if inner_fmt == "yaml" else _json_doc(inner)
        except TreeError:
            doc = None
        if doc is not None:
            inner_base = f"{address} › ({inner_fmt})" if address else None
            yield from _walk_tokens(rel, inner, doc, [], inner_base, obj, inner_fmt, None)
            return
    if opener is None:  # a folded block: no way to write inside it
        return
    decoded = opener()
    block = node.style in ("|", ">")
    for m in C.TOKEN_RE.finditer(decoded.text):
        if block and _comment_line(decoded.text, m.start()):
            continue  # a comment line inside a block (a script, a config): a hint, reported as a comment
        start, end = decoded.to_file(m.start()), decoded.to_file(m.end())
        if block:  # plain text in a block: the token itself is replaced, escaped for the block
            sp = V.Span(decoded, m.start(), m.end(), m.group(), _as_is)
        else:
            sp = whole
        yield TokenHit(rel, start, end, m.group(), sp, whole, address, obj, structured=not block)


def _comment_line(text: str, index: int) -> bool:
    ls = text.rfind("\n", 0, index) + 1
    return text[ls:index].lstrip().startswith(("#", "--", "//", ";"))


def _json_doc(view):
    from wizard.locate.resolve import parse_json_view

    return parse_json_view(view)


def _tokens_outside_values(index: TreeIndex, in_values: dict[str, set[int]]):
    """Tokens in comments of manifests and anywhere in other files: (file, line, text, token)."""
    tree = index.tree
    for rel in index.files:
        if rel in index.broken:
            continue
        try:
            f = tree.file(rel)
        except TreeError:
            continue
        starts = in_values.get(rel, set())
        for m in C.TOKEN_RE.finditer(f.text):
            if m.start() in starts:
                continue
            if rel in index.manifests and not _in_comment_or_nonvalue(f.text, m.start()):
                continue
            yield rel, f.line_of(m.start()), "", m.group()


def _in_comment_or_nonvalue(text: str, index: int) -> bool:
    ls = text.rfind("\n", 0, index) + 1
    return "#" in text[ls:index]


def _preflight(index: TreeIndex, plan: Plan):
    """The lines the tree's own pre-flight (`grep -rn CHANGEME`, docs/, *.md, *.sh left out) finds after
    this plan is written."""
    for rel in index.files:
        parts = rel.split("/")
        if "docs" in parts[:-1] or ".git" in parts[:-1] or rel.endswith((".md", ".sh")):
            continue
        if (index.tree.root / rel).is_symlink():  # grep -r does not follow links below its folder
            continue
        if rel in plan.new_texts:
            text = plan.new_texts[rel]
        else:
            try:
                text = index.tree.file(rel).text
            except TreeError:
                continue
        if PREFLIGHT_WORD not in text:
            continue
        for i, line in enumerate(text.split("\n"), 1):
            if PREFLIGHT_WORD in line:
                yield rel, i, line


class _LineMapper:
    """Old file line -> the line it is on once the plan's edits are applied."""

    def __init__(self, plan: Plan):
        self.plan = plan

    def new_line(self, rel: str, line: int) -> int:
        old = self.plan.old_texts[rel]
        # index of the line start in the old text
        pos = 0
        for _ in range(line - 1):
            nl = old.find("\n", pos)
            if nl < 0:
                break
            pos = nl + 1
        shift = 0
        for e in self.plan.edits:
            if e.file == rel and e.end <= pos:
                shift += len(e.text) - (e.end - e.start)
        return self.plan.new_texts[rel].count("\n", 0, pos + shift) + 1


def _fingerprint(user: str, password: str, line: str) -> str:
    return hashlib.sha256(f"{user}\0{password}\0{line}".encode()).hexdigest()


def _insert_before_line(view, key_node, key: str, value, cid: str) -> Edit:
    from wizard.locate.views import LiteralBlockView

    text = view.text
    col = column(text, key_node.start)
    ls = text.rfind("\n", 0, key_node.start) + 1
    lines = render_entry(key, value, col)
    if isinstance(view, LiteralBlockView):
        # whole lines inserted at the start of a block line: each carries the block's indentation
        pad = " " * view.indent
        new = "".join(pad + ln + "\n" for ln in lines)
        at = view.line_start_in_parent(ls)
        return Edit(view.file.rel, at, at, view.parent.encode(new, key), (cid,), "write old_signing_keys")
    new = "".join(ln + "\n" for ln in lines)
    return Edit(view.file.rel, ls, ls, view.encode(new, key), (cid,), "write old_signing_keys")


def make_plan(tree: Tree, answers, store: SecretStore, *, rotate=(), revoke: bool = False, now_ms: int | None = None,
              gen: generate.Generators | None = None, denylist: frozenset[str] | None = None) -> Plan:
    import time

    own = gen is None
    gen = gen or generate.Generators()
    try:
        planner = Planner(tree, answers, store, rotate=rotate, revoke=revoke,
                          now_ms=now_ms if now_ms is not None else int(time.time() * 1000), gen=gen,
                          denylist=generate.load_denylist() if denylist is None else denylist)
        return planner.run()
    finally:
        if own:
            gen.close()
