"""The variant-tree generator: other bytes, same meaning, same catalog locations.

Every check here is generic (it reads the source tree, whatever its bytes) so that it keeps
holding while templates/deployment is polished.
"""

from __future__ import annotations

import filecmp
import json
import re
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import LiteralScalarString

sys.path.insert(0, str(Path(__file__).resolve().parent))

from treegen import (  # noqa: E402
    EMAIL_HEAD_RE,
    EXTERNAL_IP_RE,
    KEPT_ANNOTATION_RE,
    TOKEN_RE,
    haproxy_directives,
    make_variant_tree,
    normalise,
)

SRC = Path(__file__).resolve().parent.parent / "templates" / "deployment"
SEEDS = (7, 20240611)
BOM = b"\xef\xbb\xbf"

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not SRC.is_dir(), reason="templates/deployment missing")]  # whole generated trees, rendered and parsed


# ----------------------------------------------------------------------------------------
# fixtures and helpers
# ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    """One variant tree per seed, made once for the module."""
    out = {}
    for seed in SEEDS:
        dest = tmp_path_factory.mktemp(f"variant-{seed}") / "deployment"
        out[seed] = (dest, make_variant_tree(SRC, dest, seed))
    return out


@pytest.fixture(params=SEEDS, ids=lambda s: f"seed{s}")
def variant(request, trees):
    seed = request.param
    dest, report = trees[seed]
    return seed, dest, report


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def _yaml_files(root: Path) -> list[str]:
    return [r for r in _files(root) if r.endswith((".yaml", ".yml"))]


def _text(path: Path) -> str:
    """Decoded with utf-8-sig, line ends normalised to LF."""
    return path.read_bytes().decode("utf-8-sig").replace("\r\n", "\n").replace("\r", "\n")


def _docs(path: Path) -> list:
    return [normalise(d) for d in yaml.safe_load_all(_text(path))]


def _canon(obj) -> str:
    return json.dumps(obj, sort_keys=True, default=repr)


def _comments(text: str) -> list[str]:
    """Comments of a YAML text (not the content of scalars), via PyYAML's scanner: whatever
    lies between tokens and starts with '#' is a comment."""
    spans = []
    for tok in yaml.scan(text):
        if tok.start_mark.index != tok.end_mark.index:
            spans.append((tok.start_mark.index, tok.end_mark.index))
    spans.sort()
    out = []
    pos = 0
    gaps = []
    for a, b in spans:
        if a > pos:
            gaps.append((pos, a))
        pos = max(pos, b)
    gaps.append((pos, len(text)))
    for a, b in gaps:
        for m in re.finditer(r"#[^\n]*", text[a:b]):
            out.append(m.group(0).rstrip())
    return out


def _embedded_texts(data, key=None):
    """Embedded YAML texts (values of *.yaml / *.yml keys) in raw loaded data."""
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _embedded_texts(v, k)
    elif isinstance(data, list):
        for v in data:
            yield from _embedded_texts(v)
    elif isinstance(data, str) and isinstance(key, str) and key.endswith((".yaml", ".yml")) and "\n" in data:
        yield data


def _all_comments(path: Path) -> list[str]:
    text = _text(path)
    out = _comments(text)
    for d in yaml.safe_load_all(text):
        for emb in _embedded_texts(d):
            out.extend(_comments(emb))
    return out


def _norm_ws(s: str) -> str:
    return " ".join(s.split())


def _uncomment_examples(text: str) -> str:
    """What the wizard does with the kept examples: turn them into real keys in place."""
    lines = text.split("\n")
    out = []
    i = 0
    while i < len(lines):
        line = lines[i]
        m = KEPT_ANNOTATION_RE.match(line)
        if m:
            indent = line[: len(line) - len(line.lstrip())]
            out.append(indent + line.strip()[1:].strip())
            i += 1
            continue
        m = EMAIL_HEAD_RE.match(line)
        if m:
            indent = m.group(1)
            out.append(indent + "email:")
            i += 1
            while i < len(lines):
                mm = re.match(r"^" + re.escape(indent) + r"# (\s+\S.*)$", lines[i])
                if not mm:
                    break
                out.append(indent + mm.group(1))
                i += 1
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


def _marker_keys(text: str) -> Counter:
    """Keys whose line carries a `# CHANGE_TO_...` end-of-line marker."""
    out = Counter()
    for line in text.split("\n"):
        m = re.match(r"^\s*(?:-\s+)?[\"']?([\w.-]+)[\"']?:\s+\S.*?\s#\s*(CHANGE_TO_[A-Z0-9_]+)\s*$", line)
        if m:
            out[(m.group(1), m.group(2))] += 1
    return out


def _literal_paths(node, path=()):
    if isinstance(node, CommentedMap):
        for k, v in node.items():
            yield from _literal_paths(v, path + (str(k),))
    elif isinstance(node, CommentedSeq):
        for i, v in enumerate(node):
            yield from _literal_paths(v, path + (i,))
    elif isinstance(node, LiteralScalarString):
        yield path


# ----------------------------------------------------------------------------------------
# the tree as a whole
# ----------------------------------------------------------------------------------------


def test_dest_must_not_exist(tmp_path):
    with pytest.raises(FileExistsError):
        make_variant_tree(SRC, tmp_path, 1)


def test_same_files(variant):
    _, dest, report = variant
    assert _files(dest) == _files(SRC)
    assert sorted(report["yaml_files"]) == _yaml_files(SRC)


def test_deterministic_per_seed(variant, tmp_path):
    seed, dest, report = variant
    again = tmp_path / "again"
    report2 = make_variant_tree(SRC, again, seed)
    assert report2 == report
    for rel in _files(dest):
        assert (dest / rel).read_bytes() == (again / rel).read_bytes(), rel


def test_seeds_differ(trees):
    (a, _), (b, _) = (trees[s] for s in SEEDS)
    same = [r for r in _yaml_files(SRC) if filecmp.cmp(a / r, b / r, shallow=False)]
    assert not same


# ----------------------------------------------------------------------------------------
# YAML: other bytes, same data
# ----------------------------------------------------------------------------------------


def test_every_yaml_file_differs_bytewise(variant):
    _, dest, _ = variant
    for rel in _yaml_files(SRC):
        assert (SRC / rel).read_bytes() != (dest / rel).read_bytes(), rel


def test_every_yaml_file_loads_to_the_same_data(variant):
    _, dest, report = variant
    for rel in _yaml_files(SRC):
        src_docs = _docs(SRC / rel)
        new_docs = _docs(dest / rel)
        assert len(new_docs) == len(src_docs), rel
        order = report["files"][rel]["order"]
        # document n of the variant is document order[n] of the source
        assert [_canon(d) for d in new_docs] == [_canon(src_docs[i]) for i in order], rel
        if rel not in report["shuffled"]:
            assert new_docs == src_docs, rel


def test_raw_bytes_read_the_same_too(variant):
    """PyYAML on the undecoded bytes (BOM, CRLF) gives the same data as on the clean text."""
    _, dest, _ = variant
    for rel in _yaml_files(SRC):
        raw = [normalise(d) for d in yaml.safe_load_all((dest / rel).read_bytes())]
        assert raw == _docs(dest / rel), rel


def test_crlf_and_bom_files_are_really_so(variant):
    _, dest, report = variant
    crlf, bom = set(report["crlf"]), set(report["bom"])
    assert len(crlf) == 3 and len(bom) == 2 and not crlf & bom
    for rel in _yaml_files(SRC):
        raw = (dest / rel).read_bytes()
        if rel in crlf:
            assert raw.count(b"\r\n") == raw.count(b"\n") > 0, rel
        else:
            assert b"\r" not in raw, rel
        assert raw.startswith(BOM) == (rel in bom), rel
        raw.decode("utf-8-sig")


def test_crlf_and_bom_counts_are_parameters(tmp_path):
    report = make_variant_tree(SRC, tmp_path / "t", 3, crlf_files=5, bom_files=0)
    assert len(report["crlf"]) == 5 and report["bom"] == []
    for rel in _yaml_files(SRC):
        assert not (tmp_path / "t" / rel).read_bytes().startswith(BOM)


def test_literal_blocks_stay_literal(variant):
    _, dest, report = variant
    rt = YAML(typ="rt")
    for rel in _yaml_files(SRC):
        src_docs = list(rt.load_all(_text(SRC / rel)))
        new_docs = list(rt.load_all(_text(dest / rel)))
        order = report["files"][rel]["order"]
        for n, i in enumerate(order):
            assert sorted(_literal_paths(new_docs[n]), key=str) == sorted(_literal_paths(src_docs[i]), key=str), (
                rel,
                n,
            )


def test_indentation_and_quoting_really_vary(variant):
    _, dest, report = variant
    files = [report["files"][r] for r in report["yaml_files"]]
    styles = {tuple(f["indent"].values()) for f in files}
    assert len(styles) >= 3
    assert sum(f["quotes_flipped"] for f in files) > 50
    assert sum(f["keys_flipped"] for f in files) > 0
    assert sum(f["comments_between_keys"] for f in files) > 20
    assert sum(f["eol_comments"] for f in files) > 5
    assert report["shuffled"]
    assert any(f["embedded_json"] for f in files) and any(f["embedded_yaml"] for f in files)


def test_embedded_blocks_reformatted_but_same(variant):
    _, dest, _ = variant
    changed_json = changed_yaml = 0
    for rel in _yaml_files(SRC):
        src_raw = list(yaml.safe_load_all(_text(SRC / rel)))
        new_raw = list(yaml.safe_load_all(_text(dest / rel)))

        def blocks(docs):
            out = {}
            for d in docs:
                if isinstance(d, dict) and d.get("kind") in ("ConfigMap", "Secret"):
                    name = d["metadata"]["name"]
                    for section in ("data", "stringData"):
                        for k, v in (d.get(section) or {}).items():
                            out[(d["kind"], name, section, str(k))] = v
            return out

        sb, nb = blocks(src_raw), blocks(new_raw)
        assert sb.keys() == nb.keys(), rel
        for key, sv in sb.items():
            nv = nb[key]
            k = key[3]
            if k.endswith(".json") and isinstance(sv, str) and "\n" in sv:
                assert json.loads(nv) == json.loads(sv), (rel, key)
                changed_json += nv != sv
            elif k.endswith((".yaml", ".yml")) and isinstance(sv, str) and "\n" in sv:
                assert yaml.safe_load(nv) == yaml.safe_load(sv), (rel, key)
                changed_yaml += nv != sv
            else:
                # SQL, haproxy.cfg, turnserver.conf, config.env, keys, scripts: as they were
                assert nv == sv, (rel, key)
    assert changed_json and changed_yaml


# ----------------------------------------------------------------------------------------
# comments: ours gone, new ones in, the examples the wizard needs kept and usable
# ----------------------------------------------------------------------------------------


def _kept_signature(text: str) -> Counter:
    c = Counter()
    for line in text.split("\n"):
        m = KEPT_ANNOTATION_RE.match(line)
        if m:
            c[("annotation", m.group(1))] += 1
        if EXTERNAL_IP_RE.match(line):
            c[("external-ip", line.strip())] += 1
        if EMAIL_HEAD_RE.match(line):
            c[("email",)] += 1
    return c


def test_commented_examples_are_kept(variant):
    _, dest, _ = variant
    total = Counter()
    for rel in _yaml_files(SRC):
        src_sig = _kept_signature(_text(SRC / rel))
        assert _kept_signature(_text(dest / rel)) == src_sig, rel
        total.update(k[0] for k in src_sig.elements())
    # the fresh tree has each kind at least once; a tree without them makes this test moot
    assert total["annotation"] >= 1 and total["email"] >= 1 and total["external-ip"] >= 1


def test_commented_examples_sit_where_they_can_be_uncommented(variant):
    """Uncommented in place, the examples become real keys of the right mapping."""
    _, dest, _ = variant

    def annotations(docs):
        out = {}
        for d in docs:
            if isinstance(d, dict) and d.get("kind") == "Ingress":
                out[d["metadata"]["name"]] = dict(d["metadata"].get("annotations") or {})
        return out

    def email_sections(docs):
        out = []
        for d in docs:
            if isinstance(d, dict) and "server_name" in d:
                out.append(d.get("email"))
            for emb in _embedded_texts(d):
                inner = yaml.safe_load(_uncomment_examples(emb))
                if isinstance(inner, dict) and "server_name" in inner:
                    out.append(inner.get("email"))
        return out

    seen = 0
    for rel in _yaml_files(SRC):
        src_text, new_text = _text(SRC / rel), _text(dest / rel)
        if not _kept_signature(src_text):
            continue
        src_docs = list(yaml.safe_load_all(_uncomment_examples(src_text)))
        new_docs = list(yaml.safe_load_all(_uncomment_examples(new_text)))
        assert annotations(new_docs) == annotations(src_docs), rel
        assert email_sections(new_docs) == email_sections(src_docs), rel
        seen += 1
    assert seen


def test_storage_class_markers_stay_on_their_lines(variant):
    _, dest, _ = variant
    n = 0
    for rel in _yaml_files(SRC):
        src = _marker_keys(_text(SRC / rel))
        assert _marker_keys(_text(dest / rel)) == src, rel
        n += sum(src.values())
    assert n


def test_our_comments_replaced_by_others(variant):
    _, dest, report = variant
    for rel in _yaml_files(SRC):
        src_c = {_norm_ws(c) for c in _all_comments(SRC / rel)}
        new_c = [_norm_ws(c) for c in _all_comments(dest / rel)]
        assert new_c, rel
        text = _text(dest / rel)
        lines = text.split("\n")
        # a header comment opens the file, above the first document marker if any
        assert next(line for line in lines if line.strip()).startswith("#"), rel
        if report["files"][rel]["explicit_start"]:
            head = [line for line in lines[: lines.index("---")] if line.strip()]
            assert head and all(line.startswith("#") for line in head), rel
        for c in new_c:
            if not re.search(r"[A-Za-z0-9]", c):
                continue  # rules like "####"
            if c in src_c:
                # only what the wizard needs survives
                assert (
                    KEPT_ANNOTATION_RE.match(c)
                    or TOKEN_RE.search(c)
                    or re.match(r"#\s*email:|#\s+[\w_]+:", c)
                ), (rel, c)


def test_tokens_and_hosts_stay_only_where_they_were(variant):
    """A comment holding a token or example.com is one the source had; values hold the
    same tokens (data equality); no new comment mentions either."""
    _, dest, _ = variant
    for rel in _yaml_files(SRC):
        src_c = Counter(_norm_ws(c) for c in _all_comments(SRC / rel))
        new_c = Counter(_norm_ws(c) for c in _all_comments(dest / rel))
        for c, n in new_c.items():
            if TOKEN_RE.search(c) or "example.com" in c:
                assert src_c[c] >= n, (rel, c)
        # every token occurrence of the variant's text is in a value or in a kept comment
        src_tokens = Counter(TOKEN_RE.findall(_text(SRC / rel)))
        new_tokens = Counter(TOKEN_RE.findall(_text(dest / rel)))
        for tok, n in new_tokens.items():
            assert src_tokens[tok] >= n, (rel, tok)


# ----------------------------------------------------------------------------------------
# non-YAML files
# ----------------------------------------------------------------------------------------


def test_json_files_reindented(variant):
    _, dest, report = variant
    jsons = [r for r in _files(SRC) if r.endswith(".json")]
    assert jsons and sorted(report["json_files"]) == jsons
    for rel in jsons:
        assert (dest / rel).read_bytes() != (SRC / rel).read_bytes(), rel
        assert json.loads(_text(dest / rel)) == json.loads(_text(SRC / rel)), rel
        # key order is kept
        assert list(json.loads(_text(dest / rel))) == list(json.loads(_text(SRC / rel)))


def test_haproxy_cfg_same_directives_other_layout(variant):
    _, dest, report = variant
    cfgs = [r for r in _files(SRC) if r.endswith("haproxy.cfg")]
    assert cfgs and sorted(report["haproxy_files"]) == cfgs
    for rel in cfgs:
        src, new = _text(SRC / rel), _text(dest / rel)
        assert new != src
        assert haproxy_directives(new) == haproxy_directives(src)
        assert new.count("Host:\\ ") == src.count("Host:\\ ") > 0
        assert re.findall(r"Host:\\ \S+", new) == re.findall(r"Host:\\ \S+", src)
        src_comments = {line.strip() for line in src.split("\n") if line.strip().startswith("#")}
        new_comments = {line.strip() for line in new.split("\n") if line.strip().startswith("#")}
        assert new_comments and not {c for c in new_comments & src_comments if re.search(r"\w", c)}
        src_ind = {line[: len(line) - len(line.lstrip())] for line in src.split("\n") if line[:1].isspace()}
        new_ind = {line[: len(line) - len(line.lstrip())] for line in new.split("\n") if line[:1].isspace()}
        assert new_ind != src_ind


# ----------------------------------------------------------------------------------------
# the generator on a tree it has never seen (not ours): tiny, hand-written, odd bytes
# ----------------------------------------------------------------------------------------


def test_generator_on_a_foreign_tree(tmp_path):
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    (src / "a" / "ing.yaml").write_bytes(
        (
            "apiVersion: networking.k8s.io/v1\r\n"
            "kind: Ingress\r\n"
            "metadata:\r\n"
            "    name: x\r\n"
            "    annotations:\r\n"
            "        a: 'b'\r\n"
            "        #nginx.ingress.kubernetes.io/whitelist-source-range: 10.0.0.0/8\r\n"
            "spec:\r\n"
            "    rules:\r\n"
            "    -   host: matrix.example.com\r\n"
            "---\r\n"
            "kind: ConfigMap\r\n"
            "metadata: {name: y}\r\n"
            "data:\r\n"
            '    mode: "0600"\r\n'
            "    flag: 'on'\r\n"
            "    nothing: 'null'\r\n"
            "    size: '10'\r\n"
        ).encode()
    )
    (src / "v.yaml").write_bytes(BOM + b"x:\n  storageClass: \"\"   # CHANGE_TO_YOUR_STORAGE_CLASS\n  l: |\n    a\n     b\n")
    (src / "notes.txt").write_text("hello\n")
    # an Ingress whose annotations are only commented out; a comment-only document; the
    # email example closing the file; a list at the root
    (src / "b.yml").write_text(
        "# notes only\n"
        "---\n"
        "kind: Ingress\n"
        "metadata:\n"
        "  name: only-comments\n"
        "  annotations:\n"
        "    # nginx.ingress.kubernetes.io/auth-type: basic\n"
        "    # nginx.ingress.kubernetes.io/auth-secret: s\n"
        "spec:\n"
        "  x: 1\n"
        "---\n"
        "# nothing here\n"
        "---\n"
        "kind: Ingress\n"
        "metadata:\n"
        "  name: last\n"
        "  annotations:\n"
        "    # nginx.ingress.kubernetes.io/whitelist-source-range: 10.0.0.0/8\n"
    )
    (src / "hs.yaml").write_text(
        "server_name: a.example.com\n"
        "listeners:\n"
        "  - port: 1\n"
        "# email:\n"
        "#   smtp_host: h\n"
        "#   smtp_port: 25\n"
    )
    (src / "list.yaml").write_text("- a\n- b: 1\n  c: 'yes'\n")
    for seed in range(5):
        dest = tmp_path / f"d{seed}"
        make_variant_tree(src, dest, seed, crlf_files=1, bom_files=1)
        assert (dest / "notes.txt").read_text() == "hello\n"
        for rel in ("a/ing.yaml", "v.yaml"):
            assert _docs(dest / rel) and sorted(map(_canon, _docs(dest / rel))) == sorted(
                map(_canon, _docs(src / rel))
            )
        cm = [d for d in _docs(dest / "a/ing.yaml") if d.get("kind") == "ConfigMap"][0]
        assert cm["data"] == {"mode": "0600", "flag": "on", "nothing": "null", "size": "10"}
        assert _kept_signature(_text(dest / "a/ing.yaml")) == _kept_signature(_text(src / "a/ing.yaml"))
        assert _marker_keys(_text(dest / "v.yaml")) == _marker_keys(_text(src / "v.yaml"))
        for rel in ("b.yml", "hs.yaml", "list.yaml"):
            assert _docs(dest / rel) == _docs(src / rel) or sorted(map(_canon, _docs(dest / rel))) == sorted(
                map(_canon, _docs(src / rel))
            ), rel
            src_text, new_text = _text(src / rel), _text(dest / rel)
            assert _kept_signature(new_text) == _kept_signature(src_text), rel
            src_un = list(yaml.safe_load_all(_uncomment_examples(src_text)))
            new_un = list(yaml.safe_load_all(_uncomment_examples(new_text)))
            assert sorted(map(_canon, new_un)) == sorted(map(_canon, src_un)), (rel, new_text)
