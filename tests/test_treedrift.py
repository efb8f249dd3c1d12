"""Self-tests of the structural-drift generator (tests/treedrift.py) and of the layout-aware readers
of tests/treecheck.py: the drifted trees are what they claim to be. No wizard involved."""
from __future__ import annotations

import collections
import json
import re
from pathlib import Path

import pytest
import yaml

import treecheck as T
import treedrift
from helpers import TEMPLATES, snapshot
from oracles import DuplicateKeyError, ToolError, synapse_config_check_inprocess, yaml_load_all_strict

pytestmark = pytest.mark.e2e  # whole drifted trees, built and parsed

# The operations of the brief (1-11), each of which must occur at least twice over the e2e seeds.
REQUIRED_OPS = ("rename-labels", "rename-unrelated", "move-file", "split-file", "merge-files", "remove-component",
                "add-component", "known-token-elsewhere", "li-mounts-main", "remove-plain-copy", "break-file",
                "deploy-script-and-docs", "stray-domain", "ambiguous-object", "format-variant")


@pytest.fixture(scope="module")
def drifted(tmp_path_factory):
    root = tmp_path_factory.mktemp("drift")
    out = {}
    for seed in treedrift.E2E_SEEDS:
        dest = root / f"seed-{seed}"
        out[seed] = (dest, treedrift.make_drift_tree(TEMPLATES, dest, seed))
    return out


def _trees(drifted):
    return [(seed, dest, rep) for seed, (dest, rep) in sorted(drifted.items())]


# ---------------------------------------------------------------- determinism


def test_same_seed_same_tree_and_report(tmp_path):
    a = treedrift.make_drift_tree(TEMPLATES, tmp_path / "a", 6, memo=False)
    b = treedrift.make_drift_tree(TEMPLATES, tmp_path / "b", 6, memo=False)
    assert a == b
    assert snapshot(tmp_path / "a") == snapshot(tmp_path / "b")


def test_seeds_differ(drifted):
    digests = {}
    for seed, dest, rep in _trees(drifted):
        digests[json.dumps(sorted((k, v.hex()) for k, v in snapshot(dest).items()))] = seed
    assert len(digests) == len(drifted)


def test_report_is_json(drifted):
    for seed, dest, rep in _trees(drifted):
        assert json.loads(json.dumps(rep)) == rep
        assert set(rep) >= {"seed", "ops", "layout", "li_signing_key", "broken_files", "placeholders", "env",
                            "expected_leftovers", "settle"}


# ---------------------------------------------------------------- coverage over the e2e seeds


def test_every_operation_occurs_at_least_twice(drifted):
    counts = collections.Counter(op for _, _, rep in _trees(drifted) for op in rep["ops"])
    missing = {op: counts[op] for op in REQUIRED_OPS if counts[op] < 2}
    assert not missing, f"operations drawn fewer than twice: {missing} (all: {dict(counts)})"
    li = collections.Counter(rep["li_signing_key"] for _, _, rep in _trees(drifted))
    assert li["copy"] >= 2 and li["mounts-main"] >= 2 and li["mounts-main-init"] >= 2, li
    reps = [rep for _, _, rep in _trees(drifted)]
    assert sum(1 for r in reps if not r["expected_leftovers"]) >= 2, "fewer than two clean trees (exit 0)"
    assert sum(1 for r in reps if any(e["kind"] == "unknown-token" for e in r["expected_leftovers"])) >= 2
    assert sum(1 for r in reps if r["settle"]) >= 2
    removed = collections.Counter(c for r in reps for c in r["removed_components"])
    assert removed["sygnal"] >= 1 and removed["livekit"] >= 2, removed
    kinds = collections.Counter(how for r in reps for how in r["broken_files"].values())
    assert kinds["duplicate-key"] >= 1 and kinds["not-yaml"] >= 1, kinds
    assert sum(1 for r in reps if r["stray"]["overwritten"]) >= 2
    assert sum(1 for r in reps if r["omitted_placeholders"]) >= 2
    assert sum(1 for r in reps if any("@" in k for k in r["placeholders"])) >= 2
    assert sum(1 for r in reps if r["env"]) >= 2


# ---------------------------------------------------------------- the trees parse (except on purpose)


def test_every_file_parses_but_the_broken_ones(drifted):
    checked: set[tuple[str, str]] = set()  # a text read strictly once (most files are the same in every tree)
    for seed, dest, rep in _trees(drifted):
        broken = rep["broken_files"]
        for path in sorted(p for p in dest.rglob("*") if p.is_file()):
            rel = path.relative_to(dest).as_posix()
            text = T.read_text(path)
            if rel in broken or (rel[-5:], text) in checked:
                continue
            checked.add((rel[-5:], text))
            if rel.endswith((".yaml", ".yml")):
                for doc in yaml_load_all_strict(text):  # PyYAML's own strict reader, as in oracles
                    T.parse_embedded(doc)
            elif rel.endswith(".json"):
                json.loads(text)


def test_broken_files_fail_as_intended(drifted):
    seen = 0
    for seed, dest, rep in _trees(drifted):
        for rel, how in rep["broken_files"].items():
            text = T.read_text(dest / rel)
            assert "CHANGEME" not in text and not T.TOKEN_RE.search(text), f"seed {seed}: {rel} holds a token"
            if how == "duplicate-key":
                list(yaml.safe_load_all(text))  # a lenient reader takes it (the later key wins) ...
                with pytest.raises(DuplicateKeyError):  # ... a strict one does not
                    yaml_load_all_strict(text)
            else:
                with pytest.raises(yaml.YAMLError):
                    list(yaml.safe_load_all(text))
            seen += 1
    assert seen >= 2


# ---------------------------------------------------------------- references follow renames


def _pod_specs(d: dict):
    spec = d.get("spec") or {}
    if d.get("kind") == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    tpl = spec.get("template") if isinstance(spec, dict) else None
    if isinstance(tpl, dict) and isinstance(tpl.get("spec"), dict):
        yield tpl["spec"]


def _refs(tree: Path, skip=()) -> list[tuple[str, str, str]]:
    """(file, kind, name) of every Secret/ConfigMap a workload refers to."""
    out = []
    for rel, d in T.parsed_objects(tree, skip):
        for pod in _pod_specs(d):
            for c in (pod.get("initContainers") or []) + (pod.get("containers") or []):
                for ref in c.get("envFrom") or []:
                    for key, kind in (("secretRef", "Secret"), ("configMapRef", "ConfigMap")):
                        if key in ref:
                            out.append((rel, kind, ref[key]["name"]))
                for e in c.get("env") or []:
                    vf = e.get("valueFrom") or {}
                    for key, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
                        if key in vf:
                            out.append((rel, kind, vf[key]["name"]))
            for v in pod.get("volumes") or []:
                if "secret" in v:
                    out.append((rel, "Secret", v["secret"]["secretName"]))
                if "configMap" in v:
                    out.append((rel, "ConfigMap", v["configMap"]["name"]))
    return out


def test_references_name_objects_of_the_tree(drifted):
    def names(tree, skip=()):
        return {(d["kind"], d["metadata"]["name"]) for _, d in T.parsed_objects(tree, skip)}

    bundled = names(TEMPLATES)
    dangling_in_bundled = {(k, n) for _, k, n in _refs(TEMPLATES) if (k, n) not in bundled}
    assert dangling_in_bundled  # e.g. the TLS Secret cert-manager makes: the check below has teeth
    for seed, dest, rep in _trees(drifted):
        skip = set(rep["broken_files"])
        have = names(dest, skip)
        bad = [(f, k, n) for f, k, n in _refs(dest, skip) if (k, n) not in have and (k, n) not in dangling_in_bundled]
        assert bad == [], f"seed {seed}: references to nothing: {bad}"


# ---------------------------------------------------------------- the layout map is true


def test_layout_names_each_object_where_it_is(drifted):
    for seed, dest, rep in _trees(drifted):
        skip = set(rep["broken_files"])
        objs = T.parsed_objects(dest, skip)
        for addr, now in rep["layout"]["objects"].items():
            file, kind, name = T.split_object_address(addr)
            if now is None:
                assert not [1 for f, d in objs if f == file and d["kind"] == kind and d["metadata"]["name"] == name]
                continue
            nfile, nkind, nname = T.split_object_address(now)
            if nfile in skip:
                assert nfile == file, f"seed {seed}: {addr} in a broken file moved?"
                continue
            assert nkind == kind
            hits = [f for f, d in objs if d["kind"] == kind and d["metadata"]["name"] == nname]
            assert hits == [nfile], f"seed {seed}: {addr} -> {now}: found in {hits}"
        for rel, now in rep["layout"]["files"].items():
            if now is None:
                assert not (dest / rel).exists(), f"seed {seed}: {rel} said removed"
            else:
                assert (dest / now).is_file(), f"seed {seed}: {rel} -> {now} missing"
                if now != rel:
                    assert not (dest / rel).exists()


def test_independent_finder_agrees_with_the_layout(drifted):
    for seed, dest, rep in _trees(drifted):
        m = treedrift.Model.load(dest)
        m.broken = set(rep["broken_files"])
        found = treedrift.find_all(m)
        for addr, now in rep["layout"]["objects"].items():
            got = found[addr]
            if addr in rep["ambiguous"]:
                assert got[0] == "ambiguous" and rep["settle"][addr] in got[1], (seed, addr, got)
            elif now is None:
                assert got == ("absent",), (seed, addr, got)
            elif got == ("broken",):
                assert T.split_object_address(now)[0] in rep["broken_files"]
            else:
                assert got[:2] == ("found", now), (seed, addr, got)
        if "rename-unrelated" in rep["ops"]:
            assert any(g[0] == "found" and g[2] == "key" for g in found.values()), f"seed {seed}: no rank-3 find"


def test_labels_run_rule():
    run = treedrift._labels_run
    assert run("synapse-secrets", "matrix-synapse-secrets") and run("synapse-secrets", "synapse-secrets-prod")
    assert run("minio", "matrix-minio") and run("minio", "minio")
    assert not run("synapse-secrets", "synapse-li-secrets")
    assert not run("synapse-config", "synapse-li-config")


def test_catalog_locations_hold_their_ids_tokens(drifted):
    """Before any wizard: every location the layout-aware reader finds holds a token of its id."""
    for seed, dest, rep in _trees(drifted):
        groups = T.secret_groups(dest, rep["layout"], li_signing_key=rep["li_signing_key"])
        for cid, values in groups.items():
            for v in values:
                toks = T.TOKEN_RE.findall(v)
                assert toks, f"seed {seed}: {cid}: {v!r} holds no token"
                assert all(t in T.tokens_of(cid) for t in toks), (seed, cid, v)
        assert groups["synapse.signing_key"], seed
        if rep["li_signing_key"] == "copy":
            assert len(groups["synapse.signing_key"]) == 2
        for a in rep["anchors"]:
            v = T.read_address(dest, a["location"])
            assert any(t in T.tokens_of(a["id"]) for t in T.TOKEN_RE.findall(v)), (seed, a, v)


def test_signing_key_meaning_follows_the_pods(drifted):
    for seed, dest, rep in _trees(drifted):
        lay = rep["layout"]["objects"]
        skip = set(rep["broken_files"])
        main_secret = T.split_object_address(lay[T.address(T.MAIN_SEC, "Secret", "synapse-secrets")])
        li_secret = T.split_object_address(lay[T.address(T.LI_DEP, "Secret", "synapse-li-secrets")])
        hs = {h.where: h for h in T.homeserver_configs(dest, rep["layout"], skip)}
        li_sts = T.fobj(dest, *T.split_object_address(lay[T.address(T.LI_DEP, "StatefulSet", "synapse-li")]))
        src = T.pod_signing_key(dest, li_sts, "/synapse/keys/signing.key", skip)
        if rep["li_signing_key"] == "copy":
            assert (src.secret, src.via) == (li_secret[2], "mount")
            assert "signing.key" in T.fobj(dest, *li_secret)["stringData"]
        else:
            assert src.secret == main_secret[2] and src.key == "signing.key"
            assert src.via == ("mount" if rep["li_signing_key"] == "mounts-main" else "init-copy")
            assert "signing.key" not in T.fobj(dest, *li_secret)["stringData"]
        main_hs = hs[T.address(T.MAIN_CM, "ConfigMap", "synapse-config")]
        assert "CHANGEME_GENERATE_USING_SYNAPSE_GENERATE_COMMAND" in main_hs.signing_key
        assert {"DB_PASSWORD", "MACAROON_SECRET", "signing.key"} <= set(main_hs.env)
        expected = 2 + sum(1 for f in (T.PLAIN_HS, T.LI_PLAIN_HS) if rep["layout"]["files"][f] is not None)
        assert len(hs) == expected, (seed, sorted(hs))


# ---------------------------------------------------------------- expectations agree with the tree


def test_expected_leftovers_agree_with_the_tree(drifted):
    for seed, dest, rep in _trees(drifted):
        exp = rep["expected_leftovers"]
        assert {k for e in exp for k in e} <= {"kind", "file", "token", "id", "address"}
        per_kind = collections.Counter(e["kind"] for e in exp)
        assert per_kind["parse"] == len(rep["broken_files"])
        assert {e["file"] for e in exp if e["kind"] == "parse"} == set(rep["broken_files"])
        assert {e["address"] for e in exp if e["kind"] == "ambiguous"} == set(rep["settle"]) == set(rep["ambiguous"])
        assert sorted(e["id"] for e in exp if e["kind"] == "held-back") == rep["held_back"]
        if rep["ambiguous"]:
            assert rep["held_back"]
        # every unknown-token expectation is a real occurrence, and each occurrence of an omitted key is one
        in_values = collections.Counter(T.tokens_in_values(dest, set(rep["broken_files"])))
        want = collections.Counter((e["file"], e["token"]) for e in exp if e["kind"] in ("unknown-token", "token-conflict"))
        for (f, tok), n in want.items():
            assert in_values[(f, tok)] == n, (seed, f, tok, n, in_values[(f, tok)])
        occurrences = collections.Counter((u["file"], u["token"]) for u in rep["unknown_tokens"])
        for (f, tok), n in occurrences.items():
            assert in_values[(f, tok)] == n, (seed, f, tok)
            key = tok if tok != "CHANGEME" else f"CHANGEME@{f}"
            given = key in rep["placeholders"]
            assert given != (key in rep["omitted_placeholders"])
            assert want[(f, tok)] == (0 if given else n)
        # no other token of no §2 row is in a value, anywhere
        unknown_left = {(f, t) for (f, t) in in_values if t not in T.TOKEN_IDS}
        assert unknown_left <= set(occurrences), (seed, unknown_left - set(occurrences))
        for k, v in rep["placeholders"].items():
            if isinstance(v, str) and v.startswith("env:"):
                assert v[4:] in rep["env"]
        for s in rep["stray"]["kept"]:
            assert s["text"] in T.read_text(dest / s["file"])
        for s in rep["stray"]["overwritten"]:
            assert T.plain(dest, s["file"])["livekit"]["domain"] == s["text"]


def test_scripts_and_docs_grep_for_the_placeholders(drifted):
    for seed, dest, rep in _trees(drifted):
        if "deploy-script-and-docs" not in rep["ops"]:
            continue
        script = dest / "scripts/deploy-all.sh"
        assert script.stat().st_mode & 0o111
        assert "grep -rn CHANGEME . --exclude-dir=docs --exclude='*.md' --exclude='*.sh'" in script.read_text()
        assert T.TOKEN_RE.search((dest / "README.md").read_text())
        assert T.TOKEN_RE.search((dest / "docs/upgrade.md").read_text())
        return
    pytest.fail("no seed adds the deploy script")


def test_format_variant_seeds_differ_in_bytes_from_ours(drifted):
    fmt = [(dest, rep) for _, dest, rep in _trees(drifted) if "format-variant" in rep["ops"]]
    assert fmt
    for dest, rep in fmt:
        same = [rel for rel, data in snapshot(dest).items()
                if (TEMPLATES / rel).is_file() and (TEMPLATES / rel).read_bytes() == data and rel.endswith(".yaml")]
        assert len(same) < 5, same


# ---------------------------------------------------------------- the in-process Synapse oracle


def test_synapse_config_check_inprocess_accepts_and_refuses(tmp_path):
    text = (TEMPLATES / "li-instance/01-synapse-li/homeserver.yaml").read_text()
    env = {k: "x" + k.lower() for k in ("DB_PASSWORD", "REDIS_PASSWORD", "S3_ACCESS_KEY", "S3_SECRET_KEY",
                                         "MACAROON_SECRET", "REGISTRATION_SECRET", "FORM_SECRET")}
    config = synapse_config_check_inprocess(text, env, tmp_path)
    assert config.server.server_name == "matrix.example.com"
    with pytest.raises(ToolError, match="port"):
        synapse_config_check_inprocess(re.sub(r"port: 8008", "port: not-a-port", text), env, tmp_path)
    with pytest.raises(AssertionError, match="DB_PASSWORD"):
        synapse_config_check_inprocess(text, {k: v for k, v in env.items() if k != "DB_PASSWORD"}, tmp_path)
    with pytest.raises(ToolError):
        synapse_config_check_inprocess(text.replace("server_name:", "server_name: [a, b]\nx_server_name:", 1),
                                       env, tmp_path)
