"""Independent readers of a configured tree, for tests.

Nothing here imports the wizard: values are read with PyYAML, json, psycopg2's conninfo parser and
bash, following CATALOG.md by hand, so that a wrong locator in the wizard cannot hide itself.
"""
from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

TOKEN_RE = re.compile(r"CHANGE_TO_[A-Z0-9_]+|CHANGE_?ME[A-Z0-9_]*")
COMMENT_RE = re.compile(r"^\s*(#|--|//|;)")


def read_text(path: Path) -> str:
    return path.read_bytes().decode("utf-8-sig").replace("\r\n", "\n")


def load_docs(path: Path) -> list:
    return [d for d in yaml.safe_load_all(read_text(path)) if d is not None]


def obj(tree: Path, rel: str, kind: str, name: str) -> dict:
    hits = [d for d in load_docs(tree / rel) if isinstance(d, dict) and d.get("kind") == kind
            and (d.get("metadata") or {}).get("name") == name]
    assert len(hits) == 1, f"{rel}: expected one {kind}/{name}, found {len(hits)}"
    return hits[0]


def plain(tree: Path, rel: str) -> dict:
    docs = load_docs(tree / rel)
    return docs[0]


def sd(tree: Path, rel: str, name: str) -> dict:
    return obj(tree, rel, "Secret", name)["stringData"]


def cm(tree: Path, rel: str, name: str) -> dict:
    return obj(tree, rel, "ConfigMap", name)["data"]


def shell_var(script: str, name: str) -> str:
    out = subprocess.run(["bash", "-c", f'set -e; source /dev/stdin; printf %s "${{{name}}}"'], input=script,
                         capture_output=True, text=True, check=True)
    return out.stdout


def conninfo_value(conninfo: str, key: str) -> str:
    from psycopg2.extensions import parse_dsn

    return parse_dsn(conninfo)[key]


def sql_literal_after(sql: str, phrase: str) -> str:
    words = r"\s+".join(re.escape(w) for w in phrase.split())
    m = re.search(words + r"\s*'((?:[^']|'')*)'", sql, re.IGNORECASE)
    assert m, f"no literal after {phrase!r}"
    return m.group(1).replace("''", "'")


MAIN_SEC = "main-instance/01-synapse/secrets.yaml"
LI_DEP = "li-instance/01-synapse-li/deployment.yaml"
SYNC = "li-instance/04-sync-system/deployment.yaml"
KV = "main-instance/08-key-vault/deployment.yaml"
COTURN = "main-instance/06-coturn/deployment.yaml"
MINIO = "infrastructure/03-minio/secrets.yaml"


def secret_groups(tree: Path) -> dict[str, list[str]]:
    """Every location of every generated secret of CATALOG §3, read independently."""
    main = sd(tree, MAIN_SEC, "synapse-secrets")
    li = sd(tree, LI_DEP, "synapse-li-secrets")
    sync = sd(tree, SYNC, "sync-system-secrets")
    sync_cm = cm(tree, SYNC, "sync-system-config")
    kv = sd(tree, KV, "key-vault-secrets")
    coturn = sd(tree, COTURN, "coturn-secrets")
    minio_creds = sd(tree, MINIO, "minio-credentials")
    hs = plain(tree, "config/synapse/homeserver.yaml")
    livekit = plain(tree, "values/livekit-values.yaml")
    sub_sql = sync_cm["setup-subscription.sql"]
    conn = sql_literal_after(sub_sql, "CONNECTION")
    return {
        "synapse.signing_key": [main["signing.key"].rstrip("\n"), li["signing.key"].rstrip("\n")],
        "postgres.synapse_password": [main["DB_PASSWORD"], sd(tree, MAIN_SEC, "synapse-db-credentials")["password"],
                                      hs["database"]["args"]["password"]],
        "postgres.li_password": [li["DB_PASSWORD"], sync["LI_DB_PASSWORD"]],
        "postgres.replication_password": [
            sql_literal_after(sync_cm["setup-replication.sql"], "CREATE USER replication_user WITH REPLICATION PASSWORD"),
            conninfo_value(conn, "password"), sync["MAIN_DB_PASSWORD"]],
        "postgres.key_vault_password": [kv["DB_PASSWORD"]],
        "redis.password": [sd(tree, "infrastructure/02-redis/redis-secret.yaml", "redis-password")["password"],
                           main["REDIS_PASSWORD"], li["REDIS_PASSWORD"], hs["redis"]["password"]],
        "minio.root_password": [shell_var(sd(tree, MINIO, "minio-config")["config.env"], "MINIO_ROOT_PASSWORD")],
        "minio.s3_secret_key": [minio_creds["CONSOLE_SECRET_KEY"], minio_creds["secret-key"], main["S3_SECRET_KEY"],
                                sd(tree, MAIN_SEC, "synapse-s3-credentials")["secret-key"], li["S3_SECRET_KEY"],
                                sync["S3_SECRET_KEY"], hs["media_storage_providers"][0]["config"]["secret_access_key"]],
        "synapse.replication_secret": [main["REPLICATION_SECRET"], hs["worker_replication_secret"]],
        "synapse.macaroon_secret": [main["MACAROON_SECRET"], hs["macaroon_secret_key"]],
        "synapse.registration_secret": [main["REGISTRATION_SECRET"], hs["registration_shared_secret"]],
        "synapse.form_secret": [main["FORM_SECRET"], hs["form_secret"]],
        "li.macaroon_secret": [li["MACAROON_SECRET"]],
        "li.registration_secret": [li["REGISTRATION_SECRET"]],
        "li.form_secret": [li["FORM_SECRET"]],
        "turn.shared_secret": [main["TURN_SECRET"], coturn["TURN_SHARED_SECRET"], hs["turn_shared_secret"]],
        "turn.static_password": [coturn["TURN_PASSWORD"]] + [s["credential"] for s in livekit["livekit"]["turn"]["servers"]],
        "key_vault.api_key": [main["KEY_VAULT_API_KEY"], kv["API_KEY"], hs["modules"][0]["config"]["api_key"]],
        "key_vault.django_secret_key": [kv["DJANGO_SECRET_KEY"]],
        "key_vault.rsa_private_key": [kv["RSA_PRIVATE_KEY"].rstrip("\n")],
        "li.admin_htpasswd": [sd(tree, "li-instance/03-synapse-admin-li/deployment.yaml", "synapse-admin-auth")["auth"].rstrip("\n")],
        "livekit.api_key": [livekit["livekit"]["apiKey"]],
        "livekit.api_secret": [livekit["livekit"]["apiSecret"]],
        "grafana.admin_password": [plain(tree, "values/prometheus-stack-values.yaml")["grafana"]["adminPassword"]],
    }


@dataclass(frozen=True)
class Value:
    file: str
    where: str  # object and key path, with `>` entering an embedded file
    text: str


def walk_values(tree: Path):
    """Every value string in the tree (comments excluded), descending into embedded files."""
    for path in sorted(p for p in tree.rglob("*") if p.is_file()):
        rel = path.relative_to(tree).as_posix()
        text = read_text(path)
        if rel.endswith((".yaml", ".yml")):
            for doc in yaml.safe_load_all(text):
                if doc is None:
                    continue
                name = f"{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}" if isinstance(doc, dict) \
                    and "kind" in doc else ""
                yield from _walk(rel, name, doc)
        elif rel.endswith(".json"):
            yield from _walk(rel, "", json.loads(text))
        else:
            yield from _lines(rel, "", text)


def _walk(rel, where, node, key=""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield Value(rel, f"{where}.{{key}}", str(k))
            yield from _walk(rel, f"{where}.{k}", v, str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(rel, f"{where}[{i}]", v)
    elif isinstance(node, str):
        if "\n" in node and key.endswith((".yaml", ".yml")):
            data = yaml.safe_load(node)
            yield from _walk(rel, f"{where}>", data)
        elif "\n" in node and key.endswith(".json"):
            yield from _walk(rel, f"{where}>", json.loads(node))
        elif "\n" in node:
            yield from _lines(rel, f"{where}>", node)
        else:
            yield Value(rel, where, node)
    elif node is not None:
        yield Value(rel, where, str(node))


def _lines(rel, where, text):
    for i, line in enumerate(text.split("\n"), 1):
        if line.strip() and not COMMENT_RE.match(line):
            yield Value(rel, f"{where}line", re.sub(r"\s#.*$", "", line))


def host_re(host: str) -> re.Pattern:
    return re.compile(r"(?<![A-Za-z0-9.-])" + re.escape(host) + r"(?![A-Za-z0-9-]|\.[A-Za-z0-9])")
