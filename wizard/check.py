"""`wizard check`: read-only audit of a tree (and of the answers file when given).

The catalog rules (placeholders, example.com, equality groups, LI rules, drift) live here; the
tree rules (duplicate objects, schemas, Service and object references, Synapse replication,
PDBs, empty directories, stray domains) live in wizard.rules and read the tree parsed once.
"""
from __future__ import annotations

import re

from wizard import catalog as C
from wizard import generate
from wizard.answers import open_families
from wizard.errors import TreeError, WizardError
from wizard.locate.resolve import Address, Tree, resolve
from wizard.locate.yamlspan import to_data
from wizard.rules.finding import ERROR, INFO, SEVERITY_ORDER, WARNING, Finding
from wizard.scan import all_value_texts, tree_files

__all__ = ["ERROR", "WARNING", "INFO", "Finding", "run_check", "summarize"]

_EXAMPLE_DOMAIN = re.compile(r"(?<![A-Za-z0-9-])(?:[A-Za-z0-9-]+\.)*example\.com(?![A-Za-z0-9-])", re.IGNORECASE)


def _split_where(where: str) -> tuple[str, int]:
    if ":" in where:
        f, _, ln = where.rpartition(":")
        if ln.isdigit():
            return f, int(ln)
    return where, 0


def run_check(tree: Tree, answers=None, store=None, *, rules=None, allow_domains=()) -> list[Finding]:
    """Every finding on the tree. `rules`: the rule ids to run (None: all; see wizard.rules.select);
    `allow_domains`: more public domains for stray-domain."""
    from wizard.rules import RunContext, all_rules
    from wizard.rules.model import TreeModel

    def wanted(rule_id: str) -> bool:
        return rules is None or rule_id in rules

    findings: list[Finding] = []
    parse_errors: list[WizardError] = []
    push_enabled = bool(answers and answers.push.enabled)
    disabled_prefixes = () if push_enabled else C.DISABLED_WHEN["push"]

    # Values everywhere: placeholders, example.com.
    value_lines = []
    for vt in all_value_texts(tree, parse_errors):
        value_lines.append(vt)
        for m in C.TOKEN_RE.finditer(vt.text):
            tok = m.group()
            cid = C.TOKEN_IDS.get(tok)
            if cid is None:
                findings.append(Finding(vt.file, vt.line, ERROR, "placeholder",
                                        f"unknown placeholder {tok}", "set this value by hand"))
            elif vt.file.startswith(disabled_prefixes):
                findings.append(Finding(vt.file, vt.line, INFO, "placeholder",
                                        f"{tok} ({cid}) left in a disabled component",
                                        "set push.enabled in the answers to configure it"))
            else:
                findings.append(Finding(vt.file, vt.line, ERROR, "placeholder", f"placeholder {tok} left ({cid})",
                                        "run wizard --answers FILE"))
        for m in _EXAMPLE_DOMAIN.finditer(vt.text):
            findings.append(Finding(vt.file, vt.line, ERROR, "example-domain",
                                    f"{m.group()} in a value", "set the real domain in the answers"))
    for exc in parse_errors:
        f, ln = _split_where(exc.where or "")
        findings.append(Finding(f, ln, ERROR, "parse", exc.message))
    broken = {f.file for f in findings if f.rule == "parse"}

    findings.extend(_marker_findings(tree, broken))
    findings.extend(_groups(tree, broken, push_enabled))
    findings.extend(_li_rules(tree, broken))
    if answers is not None:
        findings.extend(_drift(tree, answers, broken))
    if store is not None and getattr(store, "exists", False):
        findings.extend(_secrets_drift(tree, store, broken))

    # The tree rules, on the tree parsed once.
    model = TreeModel.build(tree, broken)
    model.use_lines([vt for vt in value_lines if vt.file not in model.broken])
    findings.extend(p for p in model.problems if p.rule == "parse")
    ctx = RunContext(answers=answers, store=store, allow_domains=tuple(allow_domains))
    for rule in all_rules():
        if rule.run is not None and wanted(rule.id):
            findings.extend(rule.run(model, ctx))

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
            f = Finding(f.file, f.line, f.severity, f.rule, f"{f.message}; {d.message}", d.hint)
        out.append(f)
    return out


def _spans(tree: Tree, loc: str):
    try:
        return resolve(tree, Address.parse(loc)).spans
    except TreeError:
        return []


def _groups(tree: Tree, broken: set[str], push_enabled: bool) -> list[Finding]:
    out = []
    groups = [(s.id, s.locations) for s in C.SECRETS if s.locations and (not s.provided or push_enabled)
              and s.id != "smtp.password"]
    groups.append(("server_name", C.SETTING_BY_ID["server_name"].locations))
    groups.append(("minio.s3_access_key", C.SETTING_BY_ID["minio.s3_access_key"].locations))
    for cid, locs in groups:
        values = []
        for loc in locs:
            if loc.split(" › ")[0] in broken:
                continue
            for sp in _spans(tree, loc):
                if cid == "server_name" and sp.value == "matrix.org":
                    continue
                values.append((sp.value, sp.where()))
        distinct = {v for v, _ in values if not C.has_token(v)}
        if len(distinct) > 1 or (distinct and any(C.has_token(v) for v, _ in values)):
            first = values[0][1]
            others = ", ".join(w for _, w in values[1:])
            f, ln = _split_where(first)
            rule = "li-signing-key" if cid == "synapse.signing_key" else "li-server-name" if cid == "server_name" \
                else "equality-group"
            out.append(Finding(f, ln, ERROR, rule,
                               f"{cid} differs between its locations (also: {others})",
                               "write the right value into the secrets file and run wizard --answers FILE"))
    return out


def _li_rules(tree: Tree, broken: set[str]) -> list[Finding]:
    out = []
    values = {}
    for spec in C.SECRETS:
        if spec.distinct_from:
            for sid in (spec.id, spec.distinct_from):
                sp = next(iter(_spans(tree, C.SECRET_BY_ID[sid].locations[0])), None)
                if sp is not None:
                    values[sid] = sp
            a, b = values.get(spec.id), values.get(spec.distinct_from)
            if a and b and a.value == b.value and not C.has_token(a.value):
                f, ln = _split_where(a.where())
                out.append(Finding(f, ln, ERROR, "li-distinct-secret",
                                   f"{spec.id} is the same as {spec.distinct_from}", f"wizard rotate {spec.id}"))
    current = None
    for sp in _spans(tree, C.SECRET_BY_ID["synapse.signing_key"].locations[0]):
        if not C.has_token(sp.value):
            current = sp.value
            problem = generate.signing_key_problem(sp.value)
            if problem:
                f, ln = _split_where(sp.where())
                out.append(Finding(f, ln, ERROR, "signing-key", f"synapse.signing_key must not be used: {problem}",
                                   "wizard rotate synapse.signing_key --revoke"))
    # old_signing_keys of every homeserver config: ed25519:<id> entries holding public keys only.
    for hs in C.HOMESERVERS:
        loc = (hs + " old_signing_keys") if hs.endswith("(yaml)") else f"{hs} › old_signing_keys"
        if loc.split(" › ")[0] in broken:
            continue
        try:
            found = resolve(tree, Address.parse(loc), want_nodes=True)
        except TreeError:
            continue
        for view, node, _ in found.nodes:
            if node.kind != "map":
                continue
            for k, v in node.value:
                bad = generate.old_key_problem(str(k.value), to_data(v), current)
                if bad:
                    f, ln = _split_where(view.where(k.start))
                    out.append(Finding(f, ln, ERROR, "signing-key", f"old_signing_keys: {bad}",
                                       "keep only ed25519:<id>: {key: <public verify key>, expired_ts: <ms>}"))
    # LI allowlist: open (no annotation) is a warning.
    for ingress in C.LI_INGRESSES:
        loc = f'{ingress} › metadata.annotations."{C.ALLOWLIST_ANNOTATION}"'
        if loc.split(" › ")[0] in broken:
            continue
        try:
            found = resolve(tree, Address.parse(loc))
            obj = resolve(tree, Address.parse(f"{ingress} › metadata.name")).spans
        except TreeError:
            continue
        where = obj[0].where() if obj else ingress.split(" › ")[0]
        f, ln = _split_where(where)
        if not found.spans or not found.spans[0].value.strip():
            out.append(Finding(f, ln, WARNING, "li-allowlist",
                               f"{ingress.split(' › ')[1]} is reachable from any address",
                               "set li.allowed_cidrs in the answers"))
        else:
            value = found.spans[0].value
            families = open_families(c for c in value.split(",") if c.strip())
            if families:  # 0.0.0.0/0, or blocks that together cover a whole family (0.0.0.0/1, 128.0.0.0/1)
                out.append(Finding(f, ln, WARNING, "li-allowlist",
                                   f"{ingress.split(' › ')[1]} allows every {' and every '.join(families)} "
                                   f"address ({value.strip()})", "narrow li.allowed_cidrs"))
    return out


def _marker_findings(tree: Tree, broken: set[str]) -> list[Finding]:
    """`key: ""  # CHANGE_TO_…`: the value on the marked line must be set (one line: a marker
    comment describes the value on its own line)."""
    out = []
    marker = re.compile(r"[ \t]*-?[ \t]*([^#\n]*?:)[ \t]*(\"\"|''|)[ \t]*#.*?(" + C.TOKEN_RE.pattern + ")")
    for rel in tree_files(tree):
        if not rel.endswith((".yaml", ".yml")) or rel in broken:
            continue
        try:
            text = tree.file(rel).text
        except TreeError:
            continue
        if "#" not in text:
            continue
        for i, line in enumerate(text.split("\n"), 1):
            if "#" not in line or "CHANGE" not in line:
                continue
            m = marker.match(line)
            if m is None or not m.group(1).strip():
                continue
            out.append(Finding(rel, i, ERROR, "placeholder",
                               f"value marked {m.group(3)} is empty ({C.TOKEN_IDS.get(m.group(3), 'unknown')})",
                               "run wizard --answers FILE"))
    return out


def _secrets_drift(tree: Tree, store, broken: set[str]) -> list[Finding]:
    """A tree value that differs from the secrets file (a lost update, a hand edit): named by id and
    locations, never by value. A rotation in progress is reported as such."""
    out = []
    for spec in C.SECRETS:
        want = store.rotating.get(spec.id) or store.values.get(spec.id)
        if want is None or not spec.locations:
            continue
        differ = []
        for loc in spec.locations:
            if loc.split(" › ")[0] in broken:
                continue
            for sp in _spans(tree, loc):
                if sp.value != want and not C.has_token(sp.value):
                    differ.append(sp.where())
        if differ:
            f, ln = _split_where(differ[0])
            what = "a rotation in progress is not finished" if spec.id in store.rotating else \
                "the tree differs from the secrets file"
            out.append(Finding(f, ln, ERROR, "secrets-file",
                               f"{spec.id}: {what} at {', '.join(differ)}",
                               "run wizard --answers FILE (it writes the secrets file's value everywhere)"))
    return out


def _drift(tree: Tree, answers, broken: set[str]) -> list[Finding]:
    out = []
    wanted = {"server_name": answers.server_name, "tls.acme_email": answers.acme_email,
              "storage.class": answers.storage_class, "minio.s3_access_key": answers.s3_access_key}
    for k, v in answers.domains.items():
        wanted[f"domains.{k}"] = v
    for cid, value in wanted.items():
        for loc in C.SETTING_BY_ID[cid].locations:
            if loc.split(" › ")[0] in broken:
                continue
            for sp in _spans(tree, loc):
                if sp.value != value and not (cid == "server_name" and sp.value == "matrix.org"):
                    f, ln = _split_where(sp.where())
                    out.append(Finding(f, ln, WARNING, "drift", f"{cid} is {sp.value!r}, the answers say {value!r}",
                                       "run wizard --answers FILE"))
    return out


def summarize(findings: list[Finding]) -> dict[str, int]:
    out = {ERROR: 0, WARNING: 0, INFO: 0}
    for f in findings:
        out[f.severity] += 1
    return out
