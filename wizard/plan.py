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
from wizard.edits import Edit
from wizard.errors import CannotCarry, SecretsError, TreeError, WizardError
from wizard.find import HELD_BACK, PREFLIGHT, Place, Problem
from wizard.index import TreeIndex
from wizard.survey import Found, Survey, TokenHit
from wizard.writers import Writer
from wizard.locate.resolve import Address, Tree
from wizard.store import SecretStore

PREFLIGHT_WORD = "CHANGEME"


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
        self.w = Writer(tree)
        self.edits = self.w.edits
        self.values: dict[str, str] = {}
        self.old_key_places: dict[str, list[Place]] = {}
        self._late: list = []  # edits waiting for a background computation (bcrypt)
        self.records = {r.id: r for r in C.RECORDS}
        self.survey = Survey(tree, answers, store, needed=self._needed)
        self.placeholders = self.survey.placeholders
        self.index, self.finder = self.survey.index, self.survey.finder
        self.places, self.token_places = self.survey.places, self.survey.token_places
        self.placed_places, self.blocked = self.survey.placed_places, self.survey.blocked
        self.problems = self.survey.problems
        self._active = self.survey._active

    # ---------------------------------------------------------------- entry point
    def run(self) -> Plan:
        if not self.survey.holds_deployment():
            raise WizardError(f"no deployment found in {self.tree.root} (no Kubernetes object and no homeserver "
                              "config in it)", hint="give the deployment folder with --deployment or deployment:")
        self.survey.run()
        self.plan.found = self.survey.found
        for step in (self._decide_all, self._check_values, self._write, self._structural):
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
        self.plan.replaced = self.w.replaced
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

    # ---------------------------------------------------------------- which records this run looks for
    def _needed(self, r: Record) -> bool:
        if not self._active(r):
            return False
        if r.kind == C.SETTING:  # a setting without a value is written nowhere, unless its absence is written
            return (self._setting_value(r) is not None or r.derive == "default_when_absent"
                    or any(loc.write == C.ISSUER for loc in r.locations))
        return True

    # ---------------------------------------------------------------- decide every secret's value
    def _decide_all(self) -> None:
        provided_ids = {r.id for r in C.RECORDS if r.kind == C.SECRET and r.answers_key
                        and self.answers.get(r.answers_key) is not None and self._active(r)}
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
            value = self.answers.get(r.answers_key)
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
        params = {k: self.answers.get(key) for k, key in r.form_params}
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
        user = self.answers.get(user_key)
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
        # a password drawn in this run matches no line written before: nothing to verify
        fresh = pw_id in self.plan.generated
        for candidate in [] if fresh else [stored, *sorted(tree_lines)]:
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
            if p.location.write == C.ADD:
                self.w.set_or_add(p, value, r.id)
            else:
                self.w.at(p, value, r.id)
        self._write_tokens(r, value)
        old = self.original.values.get(r.id)
        for p in self.placed_places.get(r.id, []):
            for sp in p.spans:
                if old and old != value and old in sp.value:
                    self.w.splice(r.id, sp, sp.value.replace(old, value))

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
                self.w.splice(r.id, first.whole, value)
                continue
            if not first.structured and not re.fullmatch(r"[A-Za-z0-9._@:/+=,-]*", value):
                raise CannotCarry(f"{r.id}: {first.token} sits in plain text of unknown format; only letters, digits "
                                  "and ._@:/+=,- can be written into it", where=f"{first.file}:{first.line(self.index)}")
            new = first.span.value
            for token in sorted({h.token for h in hits}, key=len, reverse=True):
                new = new.replace(token, value)
            self.w.splice(r.id, first.span, new)

    # ---------------------------------------------------------------- settings
    def _setting_value(self, r: Record):
        d = r.derive
        if d is None:
            return self.answers.get(r.answers_key) if r.answers_key else None
        if d == "issuer":
            mode = self.answers.get(r.answers_key)
            return None if mode == "manual" else mode
        if d == "selfsigned_document":
            return C.SELFSIGNED_DOC if self.answers.get(r.answers_key) == "selfsigned" else None
        if d == "comma_list":
            items = self.answers.get(r.answers_key) or []
            return ", ".join(items) if items else None
        if d.startswith("constant:"):
            return d.split(":", 1)[1]
        if d == "object-name":
            a = Address.parse(r.derived_from[0])
            hit = self.finder.find_object(a.file, *a.obj)
            return hit.obj.name if hit.obj is not None else a.obj[1]
        if d == "default_when_absent":
            return self.answers.get(r.answers_key)
        if d == "read":
            a = Address.parse(r.derived_from[0])
            p = self.finder.place(Location(r.derived_from[0]))
            if isinstance(p, Place) and p.spans and not C.has_token(p.spans[0].value):
                return p.spans[0].value
            return r.defaults[0] if r.defaults else None
        if d == "smtp_section":
            return C.smtp_section(self.answers.get(r.answers_key))
        raise WizardError(f"{r.id}: unknown derivation {d!r}")

    def _write_setting(self, r: Record) -> None:
        value = self._setting_value(r)
        for p in self.places.get(r.id, []):
            w = p.location.write
            if w == C.ISSUER:
                self.w.annotation(p, value, r.id)
            elif value is None and r.derive == "default_when_absent":
                if not p.spans:
                    self.w.add(p, r.defaults[0], r.id)
            elif value is None:
                continue
            elif w == C.ADD:
                self.w.set_or_add(p, value, r.id)
            elif w == C.CONF_LINE:
                self.w.conf_line(p, value, r.id)
            elif w == C.SECTION:
                if p.location.envsubst:
                    self._envsubst_safe(r, value)
                self.w.section(p, value, r.id, self._ref)
            elif w == C.DOCUMENT:
                self.w.document(p, value, r.id)
            else:
                if r.immutable:
                    for sp in p.spans:
                        if sp.value != value and not C.is_unset(r.id, sp.value):
                            raise WizardError(
                                f"{r.id} cannot change once a tree is configured (Synapse binds its data to it): the "
                                f"tree says {sp.value}, the answers say {value}", where=sp.where(),
                                hint=f"keep {r.id}: {sp.value} in the answers, or start a new deployment")
                self.w.at(p, str(value), r.id)

    def _envsubst_safe(self, r: Record, section: dict) -> None:
        """Text written into a config that envsubst renders: a `$NAME` in it would be replaced at pod start."""
        for k, v in section.items():
            if isinstance(v, str) and re.search(r"\$[A-Za-z_{]", v):
                raise CannotCarry("a `$` followed by a name would be replaced by envsubst in the homeserver config",
                                  where=f"{r.answers_key}.{C.SMTP_SECTION_KEYS.get(k, k)}")

    def _ref(self, ref, envsubst: bool) -> tuple[str, str]:
        """(id, text) of a secret inside a section: ${VAR} in a config rendered by envsubst (VAR: the key of
        the Secret the pod loads that holds it), the value itself in a plain copy."""
        if envsubst:
            for p in self.places.get(ref.id, []):
                segs = p.address.steps[-1].arg if p.address.steps else ()
                if segs:
                    return ref.id, "${" + str(segs[-1].arg) + "}"
            a = Address.parse(self.records[ref.id].locations[0].address)
            return ref.id, "${" + str(a.steps[-1].arg[-1].arg) + "}"
        return ref.id, self.values[ref.id]

    # ---------------------------------------------------------------- retired values kept verifiable
    def _structural(self) -> None:
        for r in C.RECORDS:
            if r.kind == C.SECRET and r.rotation.retire and r.id in self.values:
                for loc in r.rotation.keep_old:
                    res = self.finder.place(loc)
                    if isinstance(res, Place):
                        self.old_key_places.setdefault(r.id, []).append(res)
                        self.w.old_keys(res, self.store.old_signing_keys, r.id)

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
        index = TreeIndex.build(after) if self.plan.new_texts else self.index
        owned = self._owned_secret_keys()
        judged: set = set()
        seen: set = set()  # the workers of one instance render the same config from the same Secret
        for cfg in K.envsubst_configs(after, index):
            text = K.template_text(index, cfg)
            if text is None:
                continue
            env = dict(cfg.literal)
            env.update({v: K.STAND_IN for v in cfg.computed})
            suspects = []
            for var, sk in cfg.env.items():
                value = K.secret_value(index, sk)
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
