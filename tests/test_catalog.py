"""The catalog's records (issue 12): every fact about a secret or setting lives in its record — no module
outside wizard/catalog names an id, the import graph has no cycle, the docs' tables are generated from
the records — and the records agree with CATALOG.md's tables."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from wizard import catalog as C
from wizard import generate
from wizard.catalog import docs
from wizard.locate.resolve import Address

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "wizard"


def _modules() -> dict[str, Path]:
    return {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
            for p in sorted(PACKAGE.rglob("*.py"))}


def test_no_module_outside_the_catalog_names_an_id():
    """Dotted ids (and answers keys, which share their names) appear as string literals only in wizard/catalog."""
    ids = {r.id for r in C.RECORDS if "." in r.id}
    ids |= {r.answers_key for r in C.RECORDS if r.answers_key and "." in r.answers_key}
    found = {}
    for name, path in _modules().items():
        if "catalog" in path.relative_to(PACKAGE).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in ids:
                found.setdefault(name, set()).add(node.value)
    assert found == {}


def test_the_import_graph_has_no_cycle():
    modules = _modules()
    deps: dict[str, set[str]] = {}
    for name, path in modules.items():
        out = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                    and node.module.split(".")[0] == "wizard":
                out.add(node.module)
                out.update(f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in modules)
            elif isinstance(node, ast.Import):
                out.update(a.name for a in node.names if a.name.split(".")[0] == "wizard")
        deps[name] = {d for d in out if d in modules and d != name}
    # a package imports its own submodules to re-export them: not a cycle of use
    state: dict[str, int] = {}
    cycles = []

    def visit(v, stack):
        state[v] = 1
        for w in deps[v]:
            if state.get(w) == 1:
                cycles.append(stack[stack.index(w):] + [w])
            elif w not in state:
                visit(w, stack + [w])
        state[v] = 2

    for v in deps:
        if v not in state:
            visit(v, [v])
    assert cycles == []


def test_the_docs_tables_are_generated_from_the_records():
    assert docs.stale(ROOT) == [], "run: python -m wizard.catalog.docs"


# ---------------------------------------------------------------- the records against CATALOG.md

CATALOG_TOKENS = {  # CATALOG §2, written here by hand
    "CHANGEME_GENERATE_USING_SYNAPSE_GENERATE_COMMAND": "synapse.signing_key",
    "CHANGEME_COPY_FROM_MAIN_SIGNING_KEY": "synapse.signing_key",
    "CHANGEME_SECURE_DB_PASSWORD": "postgres.synapse_password", "CHANGEME_DB_PASSWORD": "postgres.synapse_password",
    "CHANGEME_SECURE_LI_DB_PASSWORD": "postgres.li_password",
    "CHANGEME_REPLICATION_PASSWORD": "postgres.replication_password",
    "CHANGEME_SECURE_KEY_VAULT_DB_PASSWORD": "postgres.key_vault_password",
    "CHANGE_ME_GENERATE_SECURE_PASSWORD": "redis.password", "CHANGEME_SECURE_REDIS_PASSWORD": "redis.password",
    "CHANGEME_REDIS_PASSWORD": "redis.password",
    "CHANGE_ME_GENERATE_SECURE_PASSWORD_32_CHARS": "minio.root_password",
    "CHANGE_ME_GENERATE_SECURE_S3_PASSWORD": "minio.s3_secret_key", "CHANGEME_SECURE_S3_PASSWORD": "minio.s3_secret_key",
    "CHANGEME_S3_PASSWORD": "minio.s3_secret_key",
    "CHANGEME_SECURE_REPLICATION_SECRET": "synapse.replication_secret",
    "CHANGEME_REPLICATION_SECRET": "synapse.replication_secret",
    "CHANGEME_SECURE_MACAROON_SECRET": "synapse.macaroon_secret", "CHANGEME_MACAROON": "synapse.macaroon_secret",
    "CHANGEME_SECURE_REGISTRATION_SECRET": "synapse.registration_secret",
    "CHANGEME_REGISTRATION": "synapse.registration_secret",
    "CHANGEME_SECURE_FORM_SECRET": "synapse.form_secret", "CHANGEME_FORM": "synapse.form_secret",
    "CHANGEME_SECURE_LI_MACAROON_SECRET": "li.macaroon_secret",
    "CHANGEME_SECURE_LI_REGISTRATION_SECRET": "li.registration_secret",
    "CHANGEME_SECURE_LI_FORM_SECRET": "li.form_secret",
    "CHANGEME_SECURE_TURN_SECRET": "turn.shared_secret", "CHANGEME_TURN_SECRET": "turn.shared_secret",
    "CHANGEME_TURN_PASSWORD": "turn.static_password",
    "CHANGEME_SECURE_KEY_VAULT_API_KEY": "key_vault.api_key", "CHANGEME_KEY_VAULT_API_KEY": "key_vault.api_key",
    "CHANGEME_DJANGO_SECRET_KEY_GENERATE_SECURE_RANDOM_STRING": "key_vault.django_secret_key",
    "CHANGEME_GENERATE_RSA_2048_BIT_PRIVATE_KEY": "key_vault.rsa_private_key",
    "CHANGEME_GENERATE_HTPASSWD": "li.admin_htpasswd",
    "CHANGE_TO_GENERATED_API_KEY": "livekit.api_key", "CHANGE_TO_GENERATED_API_SECRET": "livekit.api_secret",
    "CHANGE_TO_SECURE_PASSWORD": "grafana.admin_password", "CHANGE_TO_YOUR_DOMAIN": "domains.livekit",
    "CHANGE_TO_YOUR_STORAGE_CLASS": "storage.class",
}


def test_every_token_of_catalog_section_2_stands_for_its_id():
    for token, cid in CATALOG_TOKENS.items():
        assert C.TOKEN_IDS.get(token) == cid, token
    assert set(C.AMBIGUOUS_TOKENS) == {"CHANGE_TO_COTURN_SHARED_SECRET"}
    for token in C.TOKEN_IDS:
        assert C.TOKEN_RE.fullmatch(token), token


def test_every_record_is_whole():
    seen = set()
    for r in C.RECORDS:
        assert r.id not in seen, r.id
        seen.add(r.id)
        for loc in r.locations + r.rotation.keep_old:
            Address.parse(loc.address)  # every address parses
        if r.kind == C.SECRET and not r.provided and not r.derive:
            assert r.form in generate.GENERATORS, r.id
        if r.kind == C.SECRET and not r.provided and r.rotation.rotatable:
            assert r.docs.protects and r.docs.leaked and r.docs.restart and r.docs.by_hand, r.id
        if r.distinct_from:
            assert C.record(r.distinct_from) is not None
        if r.rotation.via:
            assert C.record(r.rotation.via).rotation.rotatable
    for comp in C.COMPONENTS:
        for anchor in comp.anchors:
            Address.parse(anchor)


@pytest.mark.parametrize("form", sorted(generate.GENERATORS))
def test_every_form_generates_from_the_csprng_and_differs_between_runs(form):
    if form == "rsa_key":
        a, b = generate.rsa_key(2048), generate.rsa_key(2048)
        assert a.startswith("-----BEGIN RSA PRIVATE KEY-----") and a != b
        return
    values = {generate.GENERATORS[form]() for _ in range(20)}
    assert len(values) == 20
    for v in values:
        if form == "password":
            assert re.fullmatch(r"[A-Za-z][A-Za-z0-9]{47}", v)
        elif form == "django_key":
            assert re.fullmatch(r"[A-Za-z][A-Za-z0-9]{49}", v)
        elif form == "livekit_key":
            assert re.fullmatch(r"API[A-Za-z0-9]{12}", v)
        elif form == "signing_key":
            assert re.fullmatch(r"ed25519 a_[A-Za-z0-9]{4} [A-Za-z0-9+/]{43}", v)
            assert generate.signing_key_problem(v, frozenset()) is None


def test_the_readme_layout_names_every_module():
    """README's layout section matches the tree: every module and subpackage of wizard/ is named there,
    and nothing it names under wizard/ is missing."""
    text = (ROOT / "README.md").read_text()
    layout = text[text.index("## Layout"):]
    layout = layout[:layout.index("```", layout.index("```") + 3)]
    named = set(re.findall(r"\b([a-z_]+(?:\.py|/))", layout))
    actual = {p.name for p in PACKAGE.glob("*.py") if not p.name.startswith("__")}
    actual |= {p.name + "/" for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert actual - named == set(), "modules missing from README's layout"
    package_part = layout[:layout.index("\ntemplates/")]  # the lines about wizard/, before templates/ tests/ bench/
    top = {n for n in re.findall(r"\b([a-z_]+\.py)", package_part)}
    nested = {p.name for p in PACKAGE.rglob("*.py")}
    assert top - actual - nested == set(), "README's layout names modules that do not exist"
