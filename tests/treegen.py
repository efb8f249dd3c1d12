"""Make a "never-seen" deployment tree: the same manifests in other bytes.

``make_variant_tree(src, dest, seed)`` copies a deployment tree and rewrites every file the
way an operator's own copy could plausibly differ from ours, while keeping what the wizard
reads (CATALOG §3–§5) where it was:

* YAML is re-emitted (ruamel.yaml round-trip) with another indentation style (mapping
  indent, sequence indent, dash offset), no line wrapping, literal blocks kept literal;
* our comments are dropped and others written: a header above the first ``---``, comments
  between keys and after documents' ``---``, a few end-of-line comments on lines that hold
  no placeholder. Kept (the wizard relies on them): the commented-out ingress annotations
  (``nginx.ingress.kubernetes.io/whitelist-source-range`` / ``auth-type`` / ``auth-secret`` /
  ``auth-realm``), the commented ``email:`` section of homeserver configs (re-indented to
  the new style), and every end-of-line comment that holds a token (the
  ``# CHANGE_TO_YOUR_STORAGE_CLASS`` markers) on the key it was on;
* quoting: some plain scalars (values and keys) become single/double quoted, some quoted
  ones become plain or change quote kind, only where YAML 1.1 (PyYAML) *and* YAML 1.2
  (ruamel) read them back as the same string;
* some flow sequences become block sequences and some short block sequences of plain
  words become flow sequences (never one that holds a token or a host);
* embedded YAML blocks (``*.yaml``/``*.yml`` keys) are re-indented and get their comments
  rewritten the same way (no quote flips inside: they go through envsubst); embedded JSON
  blocks (``*.json`` keys) are re-dumped with another indent, key order kept; every other
  embedded file (SQL, haproxy.cfg, turnserver.conf, config.env, keys, scripts) is kept
  byte for byte;
* multi-document files may have their documents shuffled;
* ``crlf_files`` YAML files get CRLF line ends, ``bom_files`` others a UTF-8 BOM;
* ``*.json`` files are re-indented; ``haproxy.cfg`` files get other comments and another
  indentation of directives (``Host:\\ HOST`` health checks untouched);
* anything else is copied as it is.

Everything is drawn from ``random.Random`` seeded from ``seed`` (and the file's path), so a
seed always gives the same tree. New comments never contain a placeholder token,
``example.com`` or one of the kept examples' keys: tokens and hosts stay only where they
were. Each rewritten YAML file is checked before it is written: PyYAML reads it (BOM and
CRLF included) to the same data as the source (embedded JSON/YAML compared parsed; shuffled
documents compared as a multiset) and it has as many literal block scalars.
"""

from __future__ import annotations

import io
import json
import random
import re
import shutil
from pathlib import Path
from typing import Any

import yaml as pyyaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import (
    DoubleQuotedScalarString,
    FoldedScalarString,
    LiteralScalarString,
    ScalarString,
    SingleQuotedScalarString,
)

__all__ = [
    "make_variant_tree",
    "normalise",
    "TOKEN_RE",
    "KEPT_ANNOTATION_RE",
    "EMAIL_HEAD_RE",
    "EXTERNAL_IP_RE",
    "haproxy_directives",
]

TOKEN_RE = re.compile(r"CHANGE_?ME[A-Z0-9_]*|CHANGE_TO_[A-Z0-9_]+")
KEPT_ANNOTATION_RE = re.compile(
    r"^\s*#\s*(nginx\.ingress\.kubernetes\.io/(?:whitelist-source-range|auth-type|auth-secret|auth-realm))\s*:"
)
EMAIL_HEAD_RE = re.compile(r"^(\s*)#(\s*)email:\s*$")
EXTERNAL_IP_RE = re.compile(r"^\s*#\s*external-ip=")
# What a comment we write must never contain.
_FORBIDDEN_IN_NEW_COMMENT = re.compile(
    r"CHANGE_?ME|CHANGE_TO_|example\.com|whitelist-source-range|auth-type|auth-secret|auth-realm"
    r"|external-ip|email\s*:|\$\{",
    re.IGNORECASE,
)

YAML_SUFFIXES = (".yaml", ".yml")
_FastLoader = getattr(pyyaml, "CSafeLoader", pyyaml.SafeLoader)
# (mapping indent, sequence indent, dash offset); ours is (2, 4, 2).
INDENT_STYLES = [(2, 2, 0), (4, 4, 2), (4, 6, 4), (4, 2, 0), (3, 3, 1), (4, 4, 0)]

# ----------------------------------------------------------------------------------------
# comment texts (ASCII and not: operators write in their own language)
# ----------------------------------------------------------------------------------------

_HEADER_LINES = [
    "Managed by the platform team - open a change request before editing.",
    "Imported into the ops repository from the vendor bundle.",
    "Production copy; staging overrides live in a separate branch.",
    "Reviewed during the quarterly configuration audit.",
    "Do not apply by hand: the release pipeline applies this directory.",
    "Local modifications are tracked in CHANGELOG.ops.",
    "Geprüft vom Betriebsteam, Änderungen nur per Merge-Request.",
    "Fichier révisé par l'équipe d'exploitation.",
    "Owner: infra-oncall. Escalation: see the runbook, chapter 4.",
    "Keep this file in sync with the cluster inventory spreadsheet.",
]
_HEADER_RULES = ["#" * 78, "# " + "-" * 76, "# " + "=" * 40, "#", "####", None]
_KEY_COMMENTS = [
    "{key} - kept as upstream ships it",
    "{key} reviewed in the last audit",
    "site-specific setting, see runbook section {n}",
    "do not change without a maintenance window",
    "value agreed with the security team",
    "override per environment if needed",
    "tuned after load test #{n}",
    "Betriebsvorgabe, nicht ändern",
    "paramètre validé par l'exploitation",
    "---- {key} ----",
    "{key}",
    "TODO(ops-{n}): revisit after the next upgrade",
]
_EOL_COMMENTS = [
    "ops default",
    "tuned",
    "see runbook",
    "per cluster",
    "do not lower",
    "checked {n}/2024",
    "upstream value",
    "geprüft",
    "vérifié",
    "keep",
]
_DOC_COMMENTS = [
    "{kind} {name}",
    "--- {kind}/{name} ---",
    "{kind}: {name} (managed)",
    "object {n}: {kind}",
    "Ressource {name}",
]
_PLAIN_DOC_COMMENTS = [
    "site values",
    "settings for this cluster",
    "Werte für diesen Cluster",
    "overrides start here",
]
_EXAMPLE_PROSE = {
    "annotation": [
        "Optional annotations, disabled for now:",
        "Uncomment to enable:",
        "ingress-nginx extras (off):",
        "Zugriffsbeschränkung - bei Bedarf aktivieren",
    ],
    "email": [
        "Outgoing mail - disabled until the relay is set up",
        "Uncomment the block below to send notification mails",
        "Mail settings (off)",
    ],
}


def _safe_comment(text: str) -> bool:
    return not _FORBIDDEN_IN_NEW_COMMENT.search(text)


def _pick_comment(rng: random.Random, pool: list[str], **fmt: Any) -> str:
    for _ in range(20):
        text = rng.choice(pool).format(n=rng.randint(2, 97), **fmt)
        if _safe_comment(text):
            return text
    return "ops"


# ----------------------------------------------------------------------------------------
# normalisation shared with the tests: parsed data, embedded JSON/YAML parsed too
# ----------------------------------------------------------------------------------------


def normalise(data: Any, key: Any = None) -> Any:
    """Data as the wizard means it: string values under ``*.json``/``*.yaml`` keys parsed."""
    if isinstance(data, dict):
        return {k: normalise(v, k) for k, v in data.items()}
    if isinstance(data, list):
        return [normalise(v) for v in data]
    if isinstance(data, str) and isinstance(key, str) and "\n" in data:
        low = key.lower()
        try:
            if low.endswith(".json"):
                return ("json", json.loads(data))
            if low.endswith(YAML_SUFFIXES):
                return ("yaml", normalise(pyyaml.safe_load(data)))
        except (ValueError, pyyaml.YAMLError):
            return data
    return data


def _canon(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=repr)


# ----------------------------------------------------------------------------------------
# ruamel helpers
# ----------------------------------------------------------------------------------------


def _rt_loader() -> YAML:
    y = YAML(typ="rt")
    y.preserve_quotes = True
    return y


def _rt_dumper(style: tuple[int, int, int]) -> YAML:
    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 100000
    m, s, o = style
    y.indent(mapping=m, sequence=s, offset=o)
    return y


def _is_flow(node: Any) -> bool:
    try:
        return bool(node.fa.flow_style())
    except AttributeError:
        return False


def _walk_maps(node: Any, out: list) -> None:
    if isinstance(node, CommentedMap):
        out.append(node)
        for v in node.values():
            _walk_maps(v, out)
    elif isinstance(node, CommentedSeq):
        for v in node:
            _walk_maps(v, out)


def _walk_collections(node: Any, out: list) -> None:
    if isinstance(node, (CommentedMap, CommentedSeq)):
        out.append(node)
        for v in node.values() if isinstance(node, CommentedMap) else node:
            _walk_collections(v, out)


def _strip_comments(node: Any) -> None:
    if isinstance(node, (CommentedMap, CommentedSeq)):
        node.ca.comment = None
        node.ca.items.clear()
        node.ca.end = []
        if node.ca.pre is not None:
            node.ca.pre = []
        children = list(node.values()) if isinstance(node, CommentedMap) else list(node)
        for child in children:
            _strip_comments(child)
        if isinstance(node, CommentedMap):
            for k in node:
                if isinstance(k, ScalarString) and getattr(k, "comment", None) is not None:
                    k.comment = None
    elif isinstance(node, ScalarString):
        try:
            if getattr(node, "comment", None) is not None:
                node.comment = None
        except AttributeError:
            pass


def _count_literals(text: str) -> int:
    """How many literal block scalars (``|``) the YAML text holds."""
    count = 0
    for ev in pyyaml.parse(text, Loader=_FastLoader):
        if isinstance(ev, pyyaml.ScalarEvent) and ev.style == "|":
            count += 1
    return count


def _str_style(s: Any) -> str | None:
    if isinstance(s, DoubleQuotedScalarString):
        return "double"
    if isinstance(s, SingleQuotedScalarString):
        return "single"
    if isinstance(s, (LiteralScalarString, FoldedScalarString)):
        return None
    if isinstance(s, str):
        return "plain"
    return None


_RUAMEL_SAFE = YAML(typ="safe", pure=True)


def _plain_ok(s: str) -> bool:
    """True when ``s`` written plain reads back as the same string in YAML 1.1 and 1.2,
    as a value, as a key and inside a flow sequence."""
    if not s or s != s.strip() or "\n" in s or "\t" in s:
        return False
    if any(c in s for c in ",[]{}#\"'`"):
        return False
    try:
        for doc, want in ((f"k: {s}\n", {"k": s}), (f"{s}: v\n", {s: "v"}), (f"[{s}]\n", [s])):
            if pyyaml.safe_load(doc) != want:
                return False
            if _RUAMEL_SAFE.load(doc) != want:
                return False
    except Exception:
        return False
    return True


def _restyle(s: str, style: str) -> str:
    if style == "double":
        return DoubleQuotedScalarString(s)
    if style == "single":
        return SingleQuotedScalarString(s)
    return str(s)


def _flip_target(rng: random.Random, s: str, current: str) -> str | None:
    options = [x for x in ("plain", "double", "single") if x != current]
    if not _plain_ok(str(s)):
        options = [x for x in options if x != "plain"]
    if current != "plain" and "plain" in options and rng.random() < 0.5:
        return "plain"  # favour unquoting of quoted scalars a little
    return rng.choice(options) if options else None


# ----------------------------------------------------------------------------------------
# block-scalar spans and the kept commented-out examples (found in the source text)
# ----------------------------------------------------------------------------------------

_BLOCK_INDICATOR_RE = re.compile(r"(?:^|[\s:-])[|>][-+0-9]*\s*(?:#.*)?$")


def _block_scalar_lines(lines: list[str]) -> set[int]:
    """0-based numbers of the lines that are content of a block scalar (``|`` / ``>``)."""
    inside: set[int] = set()
    i = 0
    n = len(lines)
    while i < n:
        line = lines[i]
        stripped = line.lstrip()
        if stripped.startswith("#") or not _BLOCK_INDICATOR_RE.search(line):
            i += 1
            continue
        parent_indent = len(line) - len(stripped)
        j = i + 1
        content_indent = None
        while j < n:
            body = lines[j]
            if body.strip() == "":
                j += 1
                continue
            ind = len(body) - len(body.lstrip())
            if content_indent is None:
                if ind <= parent_indent:
                    break
                content_indent = ind
            if ind < content_indent:
                break
            j += 1
        # trailing blank lines belong to the scalar (clip/strip) or are separators: either
        # way they are not comments
        for k in range(i + 1, j):
            inside.add(k)
        i = j if j > i + 1 else i + 1
    return inside


def _kept_comment_groups(lines: list[str], skip: set[int]) -> list[dict]:
    """The commented-out examples to keep: each {'kind', 'line', 'col', 'lines'}."""
    groups: list[dict] = []
    i = 0
    n = len(lines)
    while i < n:
        if i in skip:
            i += 1
            continue
        line = lines[i]
        col = len(line) - len(line.lstrip())
        if KEPT_ANNOTATION_RE.match(line):
            body_lines = []
            j = i
            while j < n and j not in skip and KEPT_ANNOTATION_RE.match(lines[j]):
                body_lines.append(lines[j].strip()[1:].strip())
                j += 1
            groups.append({"kind": "annotation", "line": i, "col": col, "lines": body_lines})
            i = j
            continue
        m = EMAIL_HEAD_RE.match(line)
        if m:
            head_gap = len(m.group(2))
            body_lines = [(0, "email:")]
            j = i + 1
            while j < n and j not in skip:
                mm = re.match(r"^(\s*)#(\s*)(\S.*)$", lines[j])
                if not mm or len(mm.group(1)) != col or len(mm.group(2)) <= head_gap:
                    break
                body_lines.append((len(mm.group(2)) - head_gap, mm.group(3).rstrip()))
                j += 1
            groups.append({"kind": "email", "line": i, "col": col, "lines": body_lines})
            i = j
            continue
        i += 1
    return groups


def _key_positions(docs: list[Any]) -> list[tuple[int, int, CommentedMap, Any, int]]:
    """(line, col, map, key, document index) of every key of every mapping, in line order."""
    out = []
    for di, d in enumerate(docs):
        maps: list = []
        _walk_maps(d, maps)
        for mp in maps:
            for k in mp:
                try:
                    line, col = mp.lc.key(k)
                except Exception:
                    continue
                out.append((line, col, mp, k, di))
    out.sort(key=lambda t: (t[0], t[1]))
    return out


def _doc_of_line(lines: list[str], skip: set[int], line: int) -> int:
    """Index of the document that source line ``line`` belongs to."""
    markers = [i for i, t in enumerate(lines) if i not in skip and re.match(r"^---(\s|$)", t)]
    if not markers:
        return 0
    first_explicit = not any(
        t.strip() and not t.lstrip().startswith(("#", "%")) for t in lines[: markers[0]]
    )
    return sum(1 for i in markers if i < line) - (1 if first_explicit else 0)


def _resolve_target(pos: list, line: int, col: int, doc: int) -> tuple | None:
    """Where a comment at (line, col) of document ``doc`` sits.

    ``("map", map, next_key_or_None)``: among the keys of ``map`` (same column);
    ``("child", parent_map, parent_key, next_map_or_None, next_key_or_None)``: under
    ``parent_key`` whose value has no key at that column (an ``annotations:`` holding
    only comments), before ``next_key`` (the first key after it in the document) or at
    the end of the document.
    """
    same = [p for p in pos if p[4] == doc]
    nxt = next((p for p in same if p[0] > line and p[1] == col), None)
    if nxt is not None and not any(line < p[0] < nxt[0] and p[1] < col for p in same):
        return ("map", nxt[2], nxt[3])
    prev = None
    for p in same:
        if p[0] >= line:
            break
        if p[1] == col:
            prev = p
    if prev is not None and not any(prev[0] < p[0] < line and p[1] < col for p in same):
        return ("map", prev[2], None)
    parent = None
    for p in same:
        if p[0] >= line:
            break
        if p[1] < col:
            parent = p
    if parent is None:
        return None
    after = next((p for p in same if p[0] > line), None)
    return ("child", parent[2], parent[3], after[2] if after else None, after[3] if after else None)


# ----------------------------------------------------------------------------------------
# the YAML rewriter
# ----------------------------------------------------------------------------------------


class _Rewrite:
    def __init__(self, rng: random.Random, *, embedded: bool, style: tuple[int, int, int]):
        self.rng = rng
        self.embedded = embedded
        self.style = style
        # how often a scalar's quoting changes: some files a little, some a lot
        self.flip_p = rng.choice([0.08, 0.15, 0.25])
        self.stats = {
            "quotes_flipped": 0,
            "keys_flipped": 0,
            "flow_to_block": 0,
            "block_to_flow": 0,
            "comments_between_keys": 0,
            "eol_comments": 0,
            "kept_examples": 0,
            "kept_markers": 0,
            "embedded_json": [],
            "embedded_yaml": [],
        }
        # (id(map), key) -> [(indent spec, comment lines)] to put before that key
        self.before: dict[tuple[int, Any], list] = {}
        # id(map) -> [(indent spec, comment lines)] to put at the end of its document
        self.tails: dict[int, list] = {}
        # (id(map), key) -> eol comment text (marker)
        self.markers: dict[tuple[int, Any], str] = {}
        self.map_by_id: dict[int, CommentedMap] = {}

    # -- quoting / flow ------------------------------------------------------------------

    def vary_scalars(self, node: Any) -> None:
        rng = self.rng
        if not isinstance(node, (CommentedMap, CommentedSeq)):
            return
        slots = list(node.keys()) if isinstance(node, CommentedMap) else range(len(node))
        for k in slots:
            v = node[k]
            if isinstance(v, (CommentedMap, CommentedSeq)):
                self.vary_scalars(v)
                continue
            st = _str_style(v)
            if st and not self.embedded and rng.random() < self.flip_p:
                tgt = _flip_target(rng, v, st)
                if tgt:
                    node[k] = _restyle(v, tgt)
                    self.stats["quotes_flipped"] += 1
        if self.embedded:
            return
        if isinstance(node, CommentedMap):
            if not _is_flow(node):
                self._vary_keys(node)
        else:
            self._vary_flow(node)

    def _vary_keys(self, mp: CommentedMap) -> None:
        rng = self.rng
        changes = {}
        for k in mp:
            st = _str_style(k)
            if not st:
                continue
            p = 0.5 if st != "plain" else 0.02
            if rng.random() < p:
                tgt = _flip_target(rng, k, st)
                if tgt:
                    changes[k] = _restyle(k, tgt)
        if not changes:
            return
        items = list(mp.items())
        lc = dict(mp.lc.data) if hasattr(mp, "lc") else {}
        for k, _ in items:
            del mp[k]
        for k, v in items:
            mp[changes.get(k, k)] = v
        if lc:
            for k, v in lc.items():
                mp.lc.data[k] = v
        self.stats["keys_flipped"] += len(changes)

    def _vary_flow(self, seq: CommentedSeq) -> None:
        rng = self.rng
        scalars_only = all(isinstance(x, str) or isinstance(x, (int, float)) for x in seq)
        if _is_flow(seq):
            if seq and rng.random() < 0.5:
                seq.fa.set_block_style()
                self.stats["flow_to_block"] += 1
            return
        if (
            scalars_only
            and 1 <= len(seq) <= 4
            and not any(isinstance(x, (LiteralScalarString, FoldedScalarString)) for x in seq)
            and not any(
                isinstance(x, str) and (TOKEN_RE.search(x) or "example.com" in x or "\n" in x or len(x) > 40)
                for x in seq
            )
            and rng.random() < 0.15
        ):
            seq.fa.set_flow_style()
            self.stats["block_to_flow"] += 1

    # -- embedded files ------------------------------------------------------------------

    def vary_embedded(self, node: Any, label: str) -> None:
        if isinstance(node, CommentedMap):
            for k in list(node.keys()):
                v = node[k]
                if isinstance(v, (CommentedMap, CommentedSeq)):
                    self.vary_embedded(v, label)
                elif isinstance(v, LiteralScalarString) and isinstance(k, str):
                    new = self._vary_block(str(k), str(v), label)
                    if new is not None and new != str(v):
                        node[k] = LiteralScalarString(new)
        elif isinstance(node, CommentedSeq):
            for v in node:
                self.vary_embedded(v, label)

    def _vary_block(self, key: str, text: str, label: str) -> str | None:
        low = key.lower()
        rng = self.rng
        if low.endswith(".json"):
            try:
                data = json.loads(text)
            except ValueError:
                return None
            current = _json_indent(text)
            indent = rng.choice([i for i in (2, 4, 3) if i != current] or [4])
            out = json.dumps(data, indent=indent, ensure_ascii=False)
            if text.endswith("\n"):
                out += "\n"
            self.stats["embedded_json"].append(key)
            return out
        if low.endswith(YAML_SUFFIXES):
            try:
                out, _info = _vary_yaml_text(text, rng, embedded=True, label=f"{label}:{key}")
            except Exception:
                return None
            if not text.endswith("\n"):
                out = out.rstrip("\n")
            self.stats["embedded_yaml"].append(key)
            self.stats["kept_examples"] += _info["kept_examples"]
            return out
        return None

    # -- comments ------------------------------------------------------------------------

    def add_comments(self, node: Any, col: int, in_seq_item: bool = False) -> None:
        """Decide comments for ``node`` whose keys (if a map) sit at column ``col``."""
        m, s, o = self.style
        rng = self.rng
        if isinstance(node, CommentedMap):
            self.map_by_id[id(node)] = node
            node._treegen_col = col  # type: ignore[attr-defined]
            if _is_flow(node):
                return
            keys = list(node.keys())
            for idx, k in enumerate(keys):
                v = node[k]
                first_in_item = idx == 0 and in_seq_item
                if idx > 0 and not first_in_item and rng.random() < (0.06 if self.embedded else 0.1):
                    text = _pick_comment(rng, _KEY_COMMENTS, key=str(k))
                    lines = ([""] if rng.random() < 0.4 else []) + [text]
                    self.before.setdefault((id(node), k), []).append((("map", id(node)), lines))
                    self.stats["comments_between_keys"] += 1
                if isinstance(v, CommentedMap):
                    self.add_comments(v, col + m)
                elif isinstance(v, CommentedSeq):
                    self.add_comments(v, col + o)
                elif (
                    (id(node), k) not in self.markers
                    and isinstance(v, (str, int, float, bool))
                    and not isinstance(v, (LiteralScalarString, FoldedScalarString))
                    and not (isinstance(v, str) and ("\n" in v or TOKEN_RE.search(v)))
                    and not TOKEN_RE.search(str(k))
                    and rng.random() < 0.04
                ):
                    node.yaml_add_eol_comment(
                        "# " + _pick_comment(rng, _EOL_COMMENTS),
                        k,
                        column=rng.choice([0, 0, col + 40, 48, 60]),
                    )
                    self.stats["eol_comments"] += 1
        elif isinstance(node, CommentedSeq):
            if _is_flow(node):
                return
            # ``col`` is the dash column; item content sits (s - o) further right
            for v in node:
                if isinstance(v, CommentedMap):
                    self.add_comments(v, col + (s - o), in_seq_item=True)
                elif isinstance(v, CommentedSeq):
                    self.add_comments(v, col + (s - o))

    def _kept_lines(self, gs: list[dict]) -> list[str]:
        rng = self.rng
        m = self.style[0]
        lines: list[str] = []
        for g in gs:
            if g["kind"] == "annotation":
                if rng.random() < 0.5:
                    lines.append(_pick_comment(rng, _EXAMPLE_PROSE["annotation"]))
                lines.extend(g["lines"])
            else:
                lines.append(_pick_comment(rng, _EXAMPLE_PROSE["email"]))
                levels = sorted({lvl for lvl, _ in g["lines"] if lvl > 0})
                for lvl, body in g["lines"]:
                    depth = levels.index(lvl) + 1 if lvl > 0 else 0
                    lines.append(" " * (m * depth) + body if depth else body)
            self.stats["kept_examples"] += 1
        return lines

    def attach_kept(self, groups: list[dict], targets: list[tuple]) -> None:
        """Put the kept examples back: among the keys of their mapping (before one of them,
        the one they stood before more often than not), or under their parent key."""
        rng = self.rng
        placed: dict[Any, list] = {}
        for g, t in zip(groups, targets):
            if t[0] == "map":
                placed.setdefault(("map", id(t[1])), [t, []])[1].append(g)
            else:
                placed.setdefault(("child", id(t[1]), t[2]), [t, []])[1].append(g)
        for (mode, *_), (t, gs) in placed.items():
            lines = [""] + self._kept_lines(gs)
            if mode == "map":
                _, mp, nxt = t
                keys = list(mp.keys())
                # before the first key of a sequence item ruamel writes "-" on a line of
                # its own: valid, but only when there is no other choice
                candidates = keys[1:] if getattr(mp, "_treegen_in_item", False) else keys
                candidates = candidates or keys
                anchor = nxt if nxt in candidates and rng.random() < 0.6 else rng.choice(candidates)
                self.before.setdefault((id(mp), anchor), []).insert(0, (("map", id(mp)), lines))
                continue
            _, parent, _pkey, after_map, after_key = t
            spec = ("child", id(parent))
            if after_map is not None:
                self.before.setdefault((id(after_map), after_key), []).insert(0, (spec, lines))
            else:
                self.tails.setdefault(id(parent), []).append((spec, lines))

    def _indent(self, spec: tuple) -> int:
        kind, mid = spec
        col = getattr(self.map_by_id.get(mid), "_treegen_col", 0)
        return col + self.style[0] if kind == "child" else col

    def apply_comments(self) -> None:
        for (mid, key), entries in self.before.items():
            mp = self.map_by_id[mid]
            for spec, lines in entries:
                # ruamel writes "# " + line; a blank entry becomes an empty line
                mp.yaml_set_comment_before_after_key(key, before="\n".join(lines), indent=self._indent(spec))
        for (mid, key), text in self.markers.items():
            mp = self.map_by_id.get(mid)
            if mp is None:
                continue
            mp.yaml_add_eol_comment(text if text.startswith("#") else "# " + text, key, column=0)
            self.stats["kept_markers"] += 1

    def tail_text(self, doc: Any) -> list[str]:
        """Kept comments that close document ``doc`` (raw lines)."""
        out = []
        maps: list = []
        _walk_maps(doc, maps)
        for mp in maps:
            for spec, lines in self.tails.get(id(mp), []):
                ind = " " * self._indent(spec)
                out.extend(ind + "# " + line if line else "" for line in lines)
        return out


def _mark_seq_items(node: Any) -> None:
    if isinstance(node, CommentedMap):
        for v in node.values():
            _mark_seq_items(v)
    elif isinstance(node, CommentedSeq):
        for v in node:
            if isinstance(v, CommentedMap):
                v._treegen_in_item = True  # type: ignore[attr-defined]
            _mark_seq_items(v)


def _collect_markers(docs: list[Any]) -> dict[tuple[int, Any], str]:
    """End-of-line comments holding a token (``# CHANGE_TO_YOUR_STORAGE_CLASS``)."""
    out = {}
    maps: list = []
    for d in docs:
        _walk_maps(d, maps)
    for mp in maps:
        for k, entry in mp.ca.items.items():
            if not entry or len(entry) < 3 or entry[2] is None:
                continue
            if isinstance(mp.get(k), (CommentedMap, CommentedSeq)):
                continue
            first = entry[2].value.split("\n")[0].strip()
            if first.startswith("#") and TOKEN_RE.search(first):
                out[(id(mp), k)] = first
    return out


def _json_indent(text: str) -> int | None:
    for line in text.splitlines()[1:]:
        if line.strip():
            return len(line) - len(line.lstrip(" "))
    return None


def _doc_label(doc: Any) -> tuple[str, str] | None:
    """(kind, name) of a Kubernetes object; None for anything else (values, configs)."""
    if isinstance(doc, dict) and isinstance(doc.get("kind"), str):
        meta = doc.get("metadata")
        name = str(meta.get("name", "")) if isinstance(meta, dict) else ""
        return doc["kind"], name
    return None


def _vary_yaml_text(text: str, rng: random.Random, *, embedded: bool, label: str) -> tuple[str, dict]:
    text = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
    lines = text.split("\n")
    docs = list(_rt_loader().load_all(text))
    source_literals = _count_literals(text)

    style = rng.choice(INDENT_STYLES)
    rw = _Rewrite(rng, embedded=embedded, style=style)

    # 1. read what must survive, while positions are still the source's
    skip = _block_scalar_lines(lines)
    groups = _kept_comment_groups(lines, skip)
    pos = _key_positions(docs)
    rw.markers = _collect_markers(docs)
    # placement needs the maps' identities only; resolve now, attach after the walk
    targets = [_resolve_target(pos, g["line"], g["col"], _doc_of_line(lines, skip, g["line"])) for g in groups]
    for g, t in zip(groups, targets):
        if t is None:
            raise ValueError(f"{label}: cannot place kept comment at line {g['line'] + 1}")

    # 2. drop every comment
    for d in docs:
        _strip_comments(d)

    # 3. embedded files, quoting, flow style
    for d in docs:
        rw.vary_embedded(d, label)
        rw.vary_scalars(d)

    # key flips replaced some keys: re-point markers / targets by equality (same str)
    def _live_key(mp: CommentedMap, k: Any) -> Any:
        for kk in mp:
            if kk == k:
                return kk
        return k

    maps: list = []
    for d in docs:
        _walk_maps(d, maps)
    by_id = {id(mp): mp for mp in maps}
    rw.markers = {(mid, _live_key(by_id[mid], k)): v for (mid, k), v in rw.markers.items() if mid in by_id}
    targets = [
        (t[0], t[1], _live_key(t[1], t[2]) if t[2] is not None else None)
        if t[0] == "map"
        else (t[0], t[1], t[2], t[3], _live_key(t[3], t[4]) if t[3] is not None else None)
        for t in targets
    ]

    # 4. new comments
    for d in docs:
        _mark_seq_items(d)
        rw.add_comments(d, 0)
    rw.attach_kept(groups, targets)
    rw.apply_comments()

    # 5. document order
    order = list(range(len(docs)))
    if not embedded and len(docs) > 1 and rng.random() < 0.4:
        while order == list(range(len(docs))):
            rng.shuffle(order)
    shuffled = order != list(range(len(docs)))

    # 6. emit
    dumper = _rt_dumper(style)
    out: list[str] = []
    header_n = rng.randint(1, 3) if not embedded else (1 if rng.random() < 0.5 else 0)
    if header_n:
        rule = rng.choice(_HEADER_RULES) if not embedded else None
        if rule:
            out.append(rule)
        for line in rng.sample(_HEADER_LINES, header_n):
            out.append("# " + line)
        if rule and rng.random() < 0.5:
            out.append(rule)
        if rng.random() < 0.6:
            out.append("")
    multi = len(docs) > 1
    explicit_first = (rng.random() < 0.85) if multi else (rng.random() < 0.5)
    if embedded:
        explicit_first = False
    for n, i in enumerate(order):
        doc = docs[i]
        if n > 0 or explicit_first:
            out.append("---")
        if not embedded and rng.random() < 0.45:
            label_ = _doc_label(doc)
            if label_ is None:
                out.append("# " + _pick_comment(rng, _PLAIN_DOC_COMMENTS))
            else:
                kind, name = label_
                out.append("# " + _pick_comment(rng, _DOC_COMMENTS, kind=kind, name=name or kind))
        if doc is None:
            if not (n > 0 or explicit_first):
                out.append("---")  # an empty document exists only by its marker
            continue
        buf = io.StringIO()
        dumper.dump(doc, buf)
        body = buf.getvalue()
        if body.endswith("...\n") and not isinstance(doc, (CommentedMap, CommentedSeq)):
            body = body[: -len("...\n")]
        out.append(body.rstrip("\n"))
        out.extend(rw.tail_text(doc))
        if n < len(order) - 1 and rng.random() < 0.7:
            out.append("")
    result = "\n".join(out).rstrip("\n") + "\n"
    # no trailing blanks on any line (a literal block could not hold them anyway)
    result = "\n".join(line.rstrip(" ") if line.lstrip().startswith("#") or not line.strip() else line
                       for line in result.split("\n"))

    # 7. check: same data, literal blocks still literal
    src_data = [normalise(d) for d in pyyaml.load_all(text, Loader=_FastLoader)]
    new_data = [normalise(d) for d in pyyaml.load_all(result, Loader=_FastLoader)]
    if shuffled:
        ok = sorted(map(_canon, src_data)) == sorted(map(_canon, new_data))
    else:
        ok = src_data == new_data
    if not ok:
        raise AssertionError(f"{label}: variant does not read back to the same data")
    new_literals = _count_literals(result)
    if new_literals != source_literals:
        raise AssertionError(f"{label}: {source_literals} literal blocks became {new_literals}")

    info = dict(rw.stats)
    info.update(
        indent={"mapping": style[0], "sequence": style[1], "offset": style[2]},
        documents=len(docs),
        order=order,
        shuffled=shuffled,
        explicit_start=explicit_first,
        header_lines=header_n,
    )
    return result, info


# ----------------------------------------------------------------------------------------
# JSON and haproxy files
# ----------------------------------------------------------------------------------------


def _vary_json_text(text: str, rng: random.Random) -> tuple[str, dict]:
    text = text.lstrip("\ufeff")
    data = json.loads(text)
    current = _json_indent(text)
    indent: Any = rng.choice([i for i in (2, 4, 3, "\t") if i != current])
    out = json.dumps(data, indent=indent, ensure_ascii=False)
    if rng.random() < 0.7:
        out += "\n"
    if out == text:
        out = out + "\n" if not out.endswith("\n") else out.rstrip("\n")
    return out, {"indent": indent}


_HAPROXY_SECTIONS = ("global", "defaults", "frontend", "backend", "listen", "resolvers", "peers",
                     "userlist", "mailers", "cache", "program", "http-errors", "ring")
_HAPROXY_HEADER = [
    "HAProxy router - site copy",
    "Managed by the platform team; reload with 'kill -USR2' after edits",
    "Routing table reviewed with the application owners",
    "Lastverteiler-Konfiguration (Betrieb)",
]
_HAPROXY_SECTION_COMMENTS = [
    "section: {name}",
    "{name} - see runbook",
    "--- {name} ---",
    "{name}",
    "Abschnitt {name}",
]
_HAPROXY_EOL = ["ops", "tuned", "keep", "see runbook", "per site"]


def _strip_haproxy_comment(line: str) -> str:
    """The line without its comment (haproxy: ``#`` outside quotes, not escaped)."""
    quote = None
    prev = ""
    for i, ch in enumerate(line):
        if quote:
            if ch == quote and prev != "\\":
                quote = None
        elif ch in "\"'" and prev != "\\":
            quote = ch
        elif ch == "#" and prev != "\\" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip()
        prev = ch
    return line.rstrip()


def haproxy_directives(text: str) -> list[str]:
    """Non-comment lines of a haproxy config, whitespace-normalised (for comparisons)."""
    out = []
    for line in text.replace("\r\n", "\n").split("\n"):
        body = _strip_haproxy_comment(line).strip()
        if body:
            out.append(" ".join(body.split()))
    return out


def _vary_haproxy_text(text: str, rng: random.Random) -> tuple[str, dict]:
    text = text.replace("\r\n", "\n").lstrip("\ufeff")
    indent = rng.choice(["  ", "\t", "        ", "   ", "\t  "])
    out = []
    rule = rng.choice(["#" * 70, "# " + "~" * 60, "#"])
    out.append(rule)
    for line in rng.sample(_HAPROXY_HEADER, rng.randint(1, 2)):
        out.append("# " + line)
    out.append(rule)
    first = True
    eol = 0
    for raw in text.split("\n"):
        body = _strip_haproxy_comment(raw)
        if not body.strip():
            continue
        word = body.split()[0]
        if not raw[:1].isspace() and word in _HAPROXY_SECTIONS:
            out.append("")
            if rng.random() < 0.6:
                out.append("# " + _pick_comment(rng, _HAPROXY_SECTION_COMMENTS, name=body.strip()))
            out.append(body.strip())
            first = False
            continue
        line = (indent if not first else "") + body.strip()
        if "Host:" not in line and "example.com" not in line and rng.random() < 0.05:
            line += "    # " + rng.choice(_HAPROXY_EOL)
            eol += 1
        out.append(line)
    result = "\n".join(out) + "\n"
    assert haproxy_directives(result) == haproxy_directives(text)
    return result, {"indent": indent, "eol_comments": eol}


# ----------------------------------------------------------------------------------------
# the tree
# ----------------------------------------------------------------------------------------


def _file_rng(seed: int, rel: str) -> random.Random:
    return random.Random(f"treegen:{seed}:{rel}")


def make_variant_tree(src: Path, dest: Path, seed: int, *, crlf_files: int = 3, bom_files: int = 2) -> dict:
    """Copy the tree at ``src`` to ``dest`` (which must not exist) in other bytes, same meaning.

    Returns a report: ``{"seed", "yaml_files", "json_files", "haproxy_files", "copied",
    "crlf", "bom", "shuffled", "files": {rel: details}}`` (paths relative, POSIX style).
    """
    src = Path(src)
    dest = Path(dest)
    if dest.exists():
        raise FileExistsError(f"{dest} exists")
    if not src.is_dir():
        raise NotADirectoryError(f"{src} is not a directory")
    rng = random.Random(f"treegen:{seed}")

    all_files = sorted(p for p in src.rglob("*") if p.is_file() and not p.is_symlink())
    rels = [p.relative_to(src).as_posix() for p in all_files]
    yaml_rels = [r for r in rels if r.lower().endswith(YAML_SUFFIXES)]
    crlf = sorted(rng.sample(yaml_rels, min(max(crlf_files, 0), len(yaml_rels))))
    rest = [r for r in yaml_rels if r not in crlf]
    bom = sorted(rng.sample(rest, min(max(bom_files, 0), len(rest))))

    report: dict[str, Any] = {
        "seed": seed,
        "yaml_files": yaml_rels,
        "json_files": [],
        "haproxy_files": [],
        "copied": [],
        "crlf": crlf,
        "bom": bom,
        "shuffled": [],
        "files": {},
    }

    dest.mkdir(parents=True)
    for d in sorted(p for p in src.rglob("*") if p.is_dir()):
        (dest / d.relative_to(src)).mkdir(parents=True, exist_ok=True)

    for path, rel in zip(all_files, rels):
        target = dest / rel
        frng = _file_rng(seed, rel)
        low = rel.lower()
        if low.endswith(YAML_SUFFIXES):
            text = path.read_bytes().decode("utf-8-sig")
            new, info = _vary_yaml_text(text, frng, embedded=False, label=rel)
            info["crlf"] = rel in crlf
            info["bom"] = rel in bom
            if info["shuffled"]:
                report["shuffled"].append(rel)
            if rel in crlf:
                new = new.replace("\n", "\r\n")
            data = new.encode("utf-8")
            if rel in bom:
                data = b"\xef\xbb\xbf" + data
            target.write_bytes(data)
            report["files"][rel] = {"kind": "yaml", **info}
        elif low.endswith(".json"):
            text = path.read_bytes().decode("utf-8-sig")
            try:
                new, info = _vary_json_text(text, frng)
            except ValueError:
                shutil.copy2(path, target)
                report["copied"].append(rel)
                continue
            target.write_text(new, encoding="utf-8", newline="\n")
            report["json_files"].append(rel)
            report["files"][rel] = {"kind": "json", **info}
        elif Path(low).name == "haproxy.cfg" or low.endswith(".cfg") and "haproxy" in low:
            text = path.read_bytes().decode("utf-8-sig")
            new, info = _vary_haproxy_text(text, frng)
            target.write_text(new, encoding="utf-8", newline="\n")
            report["haproxy_files"].append(rel)
            report["files"][rel] = {"kind": "haproxy", **info}
        else:
            shutil.copy2(path, target)
            report["copied"].append(rel)
            report["files"][rel] = {"kind": "copied"}
            continue
        shutil.copymode(path, target)
    return report
