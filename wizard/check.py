"""`wizard check`: read-only audit of a tree (and of the answers file and secrets file when given).

The catalog rules audit the survey of the tree (wizard.survey): the same discovery as apply — every record's
locations wherever they are in the operator's own tree, every placeholder token in a manifest value and the
id it stands for, the locations tokens were placed at before, and every problem met on the way. A file that
does not parse is one finding. What a rule needs to know about a value (which rule reports its locations
disagreeing, which rule judges the value itself, what it must differ from) is a field of its catalog
record. The tree rules (duplicate objects, schemas, Service and object references, Synapse's replication and
its own config parser, PDBs, empty directories, stray domains) live in wizard.rules and read the tree
parsed once.
"""
from __future__ import annotations

import re

from wizard import catalog as C
from wizard.rules.finding import ERROR, INFO, SEVERITY_ORDER, WARNING, Finding

__all__ = ["ERROR", "WARNING", "INFO", "Finding", "run_check", "summarize"]

_EXAMPLE_DOMAIN = re.compile(r"(?<![A-Za-z0-9-])(?:[A-Za-z0-9-]+\.)*example\.com(?![A-Za-z0-9-])", re.IGNORECASE)
_MARKER = re.compile(r"[ \t]*-?[ \t]*([^#\n]*?:)[ \t]*(\"\"|''|)[ \t]*#.*?(" + C.TOKEN_RE.pattern + ")")
RUN_AGAIN = "run wizard --answers FILE"


def run_check(tree, answers=None, store=None, *, rules=None, allow_domains=()) -> list[Finding]:
    """Every finding on the tree. `rules`: the rule ids to run (None: all; see wizard.rules.select);
    `allow_domains`: more public domains for stray-domain."""
    from wizard.rules import RunContext, all_rules, runner
    from wizard.rules.model import TreeModel
    from wizard.scan import value_texts
    from wizard.store import SecretStore
    from wizard.survey import Survey

    def wanted(rule_id: str) -> bool:
        return rules is None or rule_id in rules

    store = store if store is not None else SecretStore(None)
    survey = Survey(tree, answers, store, needed=lambda r: _needed(survey, r))
    survey.run()
    audit = _Audit(tree, answers, store, survey)

    lines, manifest_lines = [], []
    manifests = set(survey.index.manifests)
    for rel in survey.index.files:
        if rel in survey.index.broken:
            continue
        try:
            got = list(value_texts(tree, rel))
        except Exception:  # noqa: BLE001 - a file no rule can read as text (binary, unreadable): nothing to say
            continue
        lines.extend(got)
        if rel in manifests:
            manifest_lines.extend(got)

    findings = audit.findings(manifest_lines)
    model = TreeModel.build(tree, set(survey.index.broken))
    model.use_lines(lines)
    findings = _one_parse_finding_per_file(findings, [p for p in model.problems if p.rule == "parse"])
    ctx = RunContext(answers=answers, store=store, allow_domains=tuple(allow_domains), survey=survey,
                     secrets=audit.secret_values())
    for rule in all_rules():
        if rule.run is not None and wanted(rule.id):
            findings.extend(runner(rule)(model, ctx))

    findings = [f for f in findings if wanted(f.rule) or f.rule == "parse"]
    findings = _merge_drift_into_stray(findings)
    uniq = []
    seen = set()
    for f in findings:
        key = (f.file, f.line, f.rule, f.message)
        if key not in seen:
            seen.add(key)
            uniq.append(f)
    uniq.sort(key=lambda f: (SEVERITY_ORDER[f.severity], f.file, f.line, f.rule))
    return uniq


def _one_parse_finding_per_file(findings: list[Finding], embedded: list[Finding]) -> list[Finding]:
    """A file that does not parse is one finding. An embedded config that does not parse is said by the tree
    model in its words (which config, which key), with the ids the survey found it blocks."""
    ids: dict[str, tuple[str, ...]] = {}
    out = []
    for f in findings:
        if f.rule == "parse" and any(e.file == f.file for e in embedded):
            ids[f.file] = tuple(dict.fromkeys(ids.get(f.file, ()) + f.ids))
            continue
        out.append(f)
    seen = set()
    for e in embedded:
        if e.file not in seen:
            seen.add(e.file)
            out.append(Finding(e.file, e.line, e.severity, e.rule, e.message, e.hint, ids.get(e.file, ()), e.token))
    return out


def _needed(survey, r) -> bool:
    """The records check looks for — those apply looks for: the secrets and derived values of enabled components,
    and the settings the answers give (a setting without a value is written nowhere, so nothing is missing);
    and the values a rule compares or judges."""
    from wizard.survey import answer

    if not survey._active(r):
        return False
    if r.kind == C.SECRET or r.derive is not None or r.group_rule or r.value_rule:
        return True
    return bool(r.answers_key) and survey.answers is not None and answer(survey.answers, r.answers_key) is not None


def _merge_drift_into_stray(findings: list[Finding]) -> list[Finding]:
    """A foreign domain at a catalog location is both drift and stray-domain: say it once, as
    stray-domain, with drift's precise message and fix (the wizard rewrites catalog locations)."""
    drift = {(f.file, f.line): f for f in findings if f.rule == "drift"}
    stray = {(f.file, f.line) for f in findings if f.rule == "stray-domain"}
    out = []
    for f in findings:
        if f.rule == "drift" and (f.file, f.line) in stray:
            continue
        if f.rule == "stray-domain" and (f.file, f.line) in drift:
            d = drift[(f.file, f.line)]
            f = Finding(f.file, f.line, f.severity, f.rule, f"{f.message}; {d.message}", d.hint, d.ids, f.token)
        out.append(f)
    return out


def _split_where(where: str) -> tuple[str, int]:
    f, _, ln = where.rpartition(":")
    return (f, int(ln)) if f and ln.isdigit() else (where, 0)


class _Audit:
    """The catalog rules, on one survey of the tree."""

    def __init__(self, tree, answers, store, survey):
        from wizard import find as F

        self.F = F
        self.tree = tree
        self.answers = answers
        self.store = store
        self.survey = survey
        self.index = survey.index

    def findings(self, manifest_lines) -> list[Finding]:
        out: list[Finding] = []
        out += self.problems()
        out += self.placeholders()
        out += self.markers()
        out += self.example_domains(manifest_lines)
        out += self.groups()
        out += self.distinct()
        out += self.values()
        if self.answers is not None:
            out += self.drift()
        if getattr(self.store, "exists", False):
            out += self.secrets_file()
        return out

    # ---------------------------------------------------------------- what the survey saw
    def _spans(self, cid: str, placed: bool = True):
        """(place, span) of every location of `cid` found in this tree, each span once (two locations that are
        one value in this tree — the LI pod mounting main's key — give one span)."""
        places = list(self.survey.places.get(cid, []))
        if placed:
            places += self.survey.placed_places.get(cid, [])
        seen = set()
        for p in places:
            for sp in p.spans:
                key = (sp.file.rel, sp.file_span())
                if key not in seen:
                    seen.add(key)
                    yield p, sp

    def secret_values(self) -> dict[str, str]:
        """Every secret value the tree and the secrets file hold -> its id (masked in a tool's words)."""
        out = {}
        for r in C.RECORDS:
            if r.kind != C.SECRET:
                continue
            for _, sp in self._spans(r.id):
                if sp.value and not C.has_token(sp.value):
                    out.setdefault(sp.value, r.id)
        for source in (getattr(self.store, "values", {}), getattr(self.store, "rotating", {})):
            for cid, value in source.items():
                if value:
                    out.setdefault(value, cid)
        return out

    def _blocked_ids(self, match) -> tuple[str, ...]:
        return tuple(sorted(cid for cid, problems in self.survey.blocked.items() if any(match(p) for p in problems)))

    def problems(self) -> list[Finding]:
        F = self.F
        out = []
        broken = self.index.broken
        for rel in sorted(broken):
            exc = broken[rel]
            f, ln = _split_where(exc.where or rel)
            ids = self._blocked_ids(lambda p, rel=rel: p.kind == F.PARSE and p.file == rel)
            out.append(Finding(rel, ln if f == rel else 0, ERROR, "parse", f"does not parse: {exc.message}",
                               "fix it; the program that reads it will refuse it too, and a re-run of the wizard "
                               "configures what it holds", ids))
        seen = set()
        for p in self.survey.problems:
            if p.kind == F.PARSE:
                if p.file in broken or (p.kind, p.file) in seen:
                    continue  # one finding per file
                seen.add((p.kind, p.file))
                ids = self._blocked_ids(lambda q, f=p.file: q.kind == F.PARSE and q.file == f)
                out.append(Finding(p.file or ".", p.line, ERROR, "parse", p.message, p.fix, ids))
            elif p.kind in (F.UNKNOWN_TOKEN, F.TOKEN_CONFLICT):
                ids = tuple(C.AMBIGUOUS_TOKENS.get(p.token, ())) if p.kind == F.TOKEN_CONFLICT else ()
                out.append(Finding(p.file, p.line, ERROR, "placeholder", p.message, p.fix, ids, p.token))
            elif p.kind == F.DISABLED:
                out.append(Finding(p.file, p.line, INFO, "placeholder", p.message, p.fix,
                                   (p.id,) if p.id else (), p.token))
            elif p.kind in (F.AMBIGUOUS, F.NOT_FOUND):
                key = (p.kind, p.address or p.message)
                if key in seen:
                    continue  # one finding per catalog address
                seen.add(key)
                ids = self._blocked_ids(lambda q, p=p: q is p or (q.kind == p.kind and q.address == p.address))
                file, line = p.file, p.line
                if not file:
                    file, line = (p.address or ".").split(" › ")[0], 0
                out.append(Finding(file, line, ERROR, "location", p.message, p.fix, ids))
        return out

    def placeholders(self) -> list[Finding]:
        """Tokens at the catalog's locations (the location decides the id) and elsewhere (the token does)."""
        out = []
        for cid in self.survey.places:
            for _, sp in self._spans(cid, placed=False):
                for m in C.TOKEN_RE.finditer(sp.value):
                    out.append(Finding(sp.file.rel, _token_line(sp, m.start()), ERROR, "placeholder",
                                       f"placeholder {m.group()} left ({cid})", RUN_AGAIN, (cid,), m.group()))
        for cid, hits in self.survey.token_places.items():
            for hit in hits:
                if cid.startswith(C.PLACEHOLDER_PREFIX):
                    what = f"placeholder {hit.token} left (the answers' placeholders: give its value)"
                else:
                    what = f"placeholder {hit.token} left ({cid})"
                out.append(Finding(hit.file, hit.line(self.index), ERROR, "placeholder", what, RUN_AGAIN, (cid,),
                                   hit.token))
        return out

    def markers(self) -> list[Finding]:
        """`key: ""  # CHANGE_TO_…`: the value on the marked line must be set (a marker comment describes the
        value on its own line)."""
        out = []
        for rel in self.index.manifests:
            if rel in self.index.broken or not rel.endswith((".yaml", ".yml")):
                continue
            try:
                text = self.tree.file(rel).text
            except Exception:  # noqa: BLE001 - unreadable: the parse rule says so
                continue
            if "#" not in text or "CHANGE" not in text:
                continue
            for i, line in enumerate(text.split("\n"), 1):
                if "#" not in line or "CHANGE" not in line:
                    continue
                m = _MARKER.match(line)
                if m is None or not m.group(1).strip():
                    continue
                cid = C.TOKEN_IDS.get(m.group(3))
                out.append(Finding(rel, i, ERROR, "placeholder",
                                   f"value marked {m.group(3)} is empty ({cid or 'unknown'})", RUN_AGAIN,
                                   (cid,) if cid else (), m.group(3)))
        return out

    def _ids_by_line(self) -> dict[tuple[str, int], tuple[str, ...]]:
        out: dict[tuple[str, int], list[str]] = {}
        for cid in self.survey.places:
            for _, sp in self._spans(cid):
                key = (sp.file.rel, sp.view.line_of(sp.start))
                if cid not in out.setdefault(key, []):
                    out[key].append(cid)
        return {k: tuple(v) for k, v in out.items()}

    def example_domains(self, manifest_lines) -> list[Finding]:
        out = []
        ids = None
        for vt in manifest_lines:
            for m in _EXAMPLE_DOMAIN.finditer(vt.text):
                if ids is None:
                    ids = self._ids_by_line()
                out.append(Finding(vt.file, vt.line, ERROR, "example-domain", f"{m.group()} in a value",
                                   "set the real domain in the answers", ids.get((vt.file, vt.line), ())))
        return out

    # ---------------------------------------------------------------- one id, one value
    def groups(self) -> list[Finding]:
        out = []
        for r in C.RECORDS:
            rule = r.group_rule or ("equality-group" if r.kind == C.SECRET else None)
            if rule is None or r.id not in self.survey.places:
                continue
            values = [(sp.value, sp.where()) for _, sp in self._spans(r.id, placed=False) if not C.has_token(sp.value)]
            distinct = {v for v, _ in values}
            if len(distinct) == 1:  # where a token was placed before, the value sits inside the text there
                value = next(iter(distinct))
                values += [(sp.value, sp.where()) for p, sp in self._spans(r.id)
                           if p in self.survey.placed_places.get(r.id, ()) and not C.has_token(sp.value)
                           and not _holds(p, sp, value, self.survey)]
            if len({v for v, _ in values}) > 1:
                f, ln = _split_where(values[0][1])
                others = ", ".join(w for _, w in values[1:])
                out.append(Finding(f, ln, ERROR, rule,
                                   f"{r.id} differs between its locations ({len({v for v, _ in values})} different "
                                   f"values; also: {others})",
                                   "write the right value into the secrets file and run wizard --answers FILE",
                                   (r.id,)))
            out += self._one_by_construction(r, rule)
        return out

    def _one_by_construction(self, r, rule: str) -> list[Finding]:
        """Two locations that are one value in this tree (a pod mounting another's Secret key): nothing to
        compare, the rule holds by construction — said, not compared."""
        out = []
        first: dict = {}
        for p in self.survey.places.get(r.id, []):
            for sp in p.spans:
                key = (sp.file.rel, sp.file_span())
                if key in first and (p.how or first[key].how):
                    found, other = (p, first[key]) if p.how else (first[key], p)
                    out.append(Finding(sp.file.rel, sp.view.line_of(sp.start), INFO, rule,
                                       f"{r.id}: {found.location.address} is {found.how}: one value with "
                                       f"{other.location.address}, the same by construction (nothing to compare)",
                                       "nothing to do", (r.id,)))
                first.setdefault(key, p)
        return out

    def distinct(self) -> list[Finding]:
        out = []
        for r in C.RECORDS:
            if not r.distinct_from:
                continue
            mine = [(sp.value, sp.where()) for _, sp in self._spans(r.id) if not C.has_token(sp.value)]
            theirs = {sp.value for _, sp in self._spans(r.distinct_from) if not C.has_token(sp.value)}
            same = [w for v, w in mine if v in theirs]
            if same:
                f, ln = _split_where(same[0])
                out.append(Finding(f, ln, ERROR, "li-distinct-secret", f"{r.id} is the same as {r.distinct_from}",
                                   f"wizard rotate {r.id}", (r.id, r.distinct_from)))
        return out

    # ---------------------------------------------------------------- rules about a value itself
    def values(self) -> list[Finding]:
        out = []
        judges = {"signing-key": self._signing_key, "li-allowlist": self._allowlist}
        for r in C.RECORDS:
            judge = judges.get(r.value_rule)
            if judge is not None and (r.id in self.survey.places or r.rotation.keep_old):
                out += judge(r)
        return out

    def _signing_key(self, r) -> list[Finding]:
        from wizard import generate
        from wizard.find import Place
        from wizard.locate.yamlspan import to_data

        out = []
        current = None
        judged = set()
        for _, sp in self._spans(r.id, placed=False):
            if C.has_token(sp.value):
                continue
            current = current or sp.value
            if sp.value in judged:
                continue
            judged.add(sp.value)
            problem = generate.signing_key_problem(sp.value)
            if problem:
                f, ln = _split_where(sp.where())
                out.append(Finding(f, ln, ERROR, r.value_rule, f"{r.id} must not be used: {problem}",
                                   f"wizard rotate {r.id} --revoke", (r.id,)))
        # old_signing_keys of every homeserver config: ed25519:<id> entries holding public keys only
        for loc in r.rotation.keep_old:
            res = self.survey.finder.place(loc)
            if not isinstance(res, Place):
                continue
            for view, node, _ in res.found.nodes:
                if node.kind != "map":
                    continue
                for k, v in node.value:
                    bad = generate.old_key_problem(str(k.value), to_data(v), current)
                    if bad:
                        f, ln = _split_where(view.where(k.start))
                        out.append(Finding(f, ln, ERROR, r.value_rule, f"old_signing_keys: {bad}",
                                           "keep only ed25519:<id>: {key: <public verify key>, expired_ts: <ms>}",
                                           (r.id,)))
        return out

    def _allowlist(self, r) -> list[Finding]:
        """Each LI ingress, wherever it is now: no allowlist, or one that lets a whole address family in."""
        from wizard.answers import open_families
        from wizard.locate.yamlspan import map_get

        out = []
        for p in self.survey.places.get(r.id, []):
            a = p.address
            objs = self.index.in_file(a.file, *a.obj) if a.obj else []
            if not objs:
                continue
            obj = objs[0]
            name = map_get(map_get(obj.node, "metadata"), "name")
            line = obj.view.line_of((name or obj.node).start)
            value = p.spans[0].value if p.spans else ""
            if C.has_token(value):
                continue  # the placeholder rule's
            if not value.strip():
                out.append(Finding(a.file, line, WARNING, r.value_rule,
                                   f"{obj.kind}/{obj.name} is reachable from any address",
                                   f"set {r.answers_key} in the answers", (r.id,)))
                continue
            families = open_families(c for c in value.split(",") if c.strip())
            if families:  # 0.0.0.0/0, or blocks that together cover a whole family (0.0.0.0/1, 128.0.0.0/1)
                out.append(Finding(a.file, line, WARNING, r.value_rule,
                                   f"{obj.kind}/{obj.name} allows every {' and every '.join(families)} address "
                                   f"({value.strip()})", f"narrow {r.answers_key}", (r.id,)))
        return out

    # ---------------------------------------------------------------- against the answers and the secrets file
    def drift(self) -> list[Finding]:
        from wizard.survey import answer

        out = []
        for r in C.RECORDS:
            if r.kind != C.SETTING or not r.answers_key or r.derive is not None:
                continue
            value = answer(self.answers, r.answers_key)
            if not isinstance(value, str) or r.id not in self.survey.places:
                continue
            for _, sp in self._spans(r.id):
                if sp.value != value and not C.has_token(sp.value):
                    f, ln = _split_where(sp.where())
                    out.append(Finding(f, ln, WARNING, "drift", f"{r.id} is {sp.value!r}, the answers say {value!r}",
                                       RUN_AGAIN, (r.id,)))
        return out

    def secrets_file(self) -> list[Finding]:
        """A tree value that differs from the secrets file (a lost update, a hand edit): named by id and
        locations, never by value. A rotation in progress is said to be one."""
        out = []
        store = self.store
        for cid in sorted(set(store.values) | set(store.rotating)):
            want = store.rotating.get(cid) or store.values.get(cid)
            if want is None or C.record(cid) is None:
                continue
            differ = [sp.where() for p, sp in self._spans(cid) if not C.has_token(sp.value)
                      and not _holds(p, sp, want, self.survey)]
            if differ:
                f, ln = _split_where(differ[0])
                what = "a rotation in progress is not finished" if cid in store.rotating else \
                    "the tree differs from the secrets file"
                out.append(Finding(f, ln, ERROR, "secrets-file", f"{cid}: {what} at {', '.join(differ)}",
                                   "run wizard --answers FILE (it writes the secrets file's value everywhere)", (cid,)))
        return out


def _holds(place, sp, value: str, survey) -> bool:
    """The span holds `value`: as the whole value at a location, or inside the text where a token stood."""
    if sp.value == value:
        return True
    placed = any(place is p for places in survey.placed_places.values() for p in places)
    return placed and value in sp.value


def _token_line(sp, index: int) -> int:
    """The file line of the character at `index` of a span's value (a token inside a block value)."""
    if sp.view.text[sp.start:sp.end] == sp.value:
        return sp.view.line_of(sp.start + index)
    return sp.view.line_of(sp.start)


def summarize(findings: list[Finding]) -> dict[str, int]:
    out = {ERROR: 0, WARNING: 0, INFO: 0}
    for f in findings:
        out[f.severity] += 1
    return out
