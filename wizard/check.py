"""`wizard check`: read-only audit of a tree (and of the answers file when given)."""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from wizard import catalog as C
from wizard import generate
from wizard.errors import TreeError, WizardError
from wizard.locate.resolve import Address, Tree, resolve
from wizard.scan import all_value_texts, tree_files

ERROR, WARNING, INFO = "error", "warning", "info"
_EXAMPLE_DOMAIN = re.compile(r"(?<![A-Za-z0-9-])(?:[A-Za-z0-9-]+\.)*example\.com(?![A-Za-z0-9-])", re.IGNORECASE)


@dataclass(frozen=True)
class Finding:
    file: str
    line: int
    severity: str
    rule: str
    message: str
    hint: str = ""

    def format(self) -> str:
        hint = f" ({self.hint})" if self.hint else ""
        return f"{self.file}:{self.line}: {self.severity} {self.rule}: {self.message}{hint}"

    def to_json(self) -> dict:
        return asdict(self)


def _split_where(where: str) -> tuple[str, int]:
    if ":" in where:
        f, _, ln = where.rpartition(":")
        if ln.isdigit():
            return f, int(ln)
    return where, 0


def run_check(tree: Tree, answers=None, store=None) -> list[Finding]:
    findings: list[Finding] = []
    parse_errors: list[WizardError] = []
    push_enabled = bool(answers and answers.push.enabled)
    disabled_prefixes = () if push_enabled else C.DISABLED_WHEN["push"]

    # Values everywhere: placeholders, example.com.
    for vt in all_value_texts(tree, parse_errors):
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
    uniq = []
    seen = set()
    for f in findings:
        key = (f.file, f.line, f.rule, f.message)
        if key not in seen:
            seen.add(key)
            uniq.append(f)
    uniq.sort(key=lambda f: ({ERROR: 0, WARNING: 1, INFO: 2}[f.severity], f.file, f.line))
    return uniq


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
    for sp in _spans(tree, C.SECRET_BY_ID["synapse.signing_key"].locations[0]):
        if not C.has_token(sp.value):
            try:
                _, _, seed = generate.signing_key_parts(sp.value)
                if len(set(seed)) <= 1:
                    raise ValueError("the key seed is degenerate (one repeated byte)")
            except ValueError as exc:
                f, ln = _split_where(sp.where())
                out.append(Finding(f, ln, ERROR, "signing-key", f"synapse.signing_key is not usable: {exc}",
                                   "wizard rotate synapse.signing_key"))
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
        elif any(c.strip() in ("0.0.0.0/0", "::/0") for c in found.spans[0].value.split(",")):
            out.append(Finding(f, ln, WARNING, "li-allowlist",
                               f"{ingress.split(' › ')[1]} allows every address (0.0.0.0/0)",
                               "narrow li.allowed_cidrs"))
    return out


def _marker_findings(tree: Tree, broken: set[str]) -> list[Finding]:
    """`key: ""  # CHANGE_TO_…`: the value on the marked line must be set."""
    out = []
    marker = re.compile(r"^(\s*-?\s*[^#\n]*?:)\s*(\"\"|''|)\s*#.*?(" + C.TOKEN_RE.pattern + ")", re.MULTILINE)
    for rel in tree_files(tree):
        if not rel.endswith((".yaml", ".yml")) or rel in broken:
            continue
        try:
            text = tree.file(rel).text
        except TreeError:
            continue
        for m in marker.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            stripped = text[m.start():m.end()].lstrip()
            if stripped.startswith("#"):
                continue
            out.append(Finding(rel, line, ERROR, "placeholder",
                               f"value marked {m.group(3)} is empty ({C.TOKEN_IDS.get(m.group(3), 'unknown')})",
                               "run wizard --answers FILE"))
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
