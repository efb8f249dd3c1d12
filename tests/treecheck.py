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

from oracles import NoDuplicateKeys

TOKEN_RE = re.compile(r"CHANGE_TO_[A-Z0-9_]+|CHANGE_?ME[A-Z0-9_]*")
COMMENT_RE = re.compile(r"^\s*(#|--|//|;)")


def read_text(path: Path) -> str:
    return path.read_bytes().decode("utf-8-sig").replace("\r\n", "\n")


_FAST = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: PyYAML's safe reading, in C


def load_docs(path: Path) -> list:
    return [d for d in yaml.load_all(read_text(path), Loader=_FAST) if d is not None]


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


def _secret_groups_bundled(tree: Path) -> dict[str, list[str]]:
    """Every location of every generated secret of CATALOG §3 in the bundled layout, read independently."""
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
            for doc in yaml.load_all(text, Loader=_FAST):
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
            data = yaml.load(node, Loader=_FAST)
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


# ================================================================ layout-aware readers (drifted trees)
#
# A *layout* (tests/treedrift.py's report["layout"]) says where each catalog object and plain file
# lives in a tree whose structure differs from ours:
#   {"objects": {"<catalog file> › <Kind>/<name>": "<file> › <Kind>/<name>" | None},
#    "files": {"<catalog plain file>": "<file>" | None}}
# None means the object or file is absent (a removed component, a removed plain copy). Everything
# below follows the catalog by hand, then the layout; meanings (which Secret a pod loads, which
# Secret key a pod mounts for signing_key_path) are followed through the manifests themselves.

SEP = " › "

_DOCS: dict[str, list] = {}  # file text -> its documents (shared between callers: never mutate them)


def fast_docs(path: Path) -> list:
    """The documents of a YAML file (libyaml when there; cached by content, for trees read many times)."""
    text = read_text(path)
    hit = _DOCS.get(text)
    if hit is None:
        hit = [d for d in yaml.load_all(text, Loader=_FAST) if d is not None]
        if len(_DOCS) > 5000:
            _DOCS.clear()
        _DOCS[text] = hit
    return hit


def fobj(tree: Path, rel: str, kind: str, name: str) -> dict:
    """``obj`` through ``fast_docs``."""
    hits = [d for d in fast_docs(tree / rel) if isinstance(d, dict) and d.get("kind") == kind
            and (d.get("metadata") or {}).get("name") == name]
    assert len(hits) == 1, f"{rel}: expected one {kind}/{name}, found {len(hits)}"
    return hits[0]

# CATALOG §2, by hand: token -> id (a tuple where one token stands for two ids).
TOKEN_IDS: dict[str, object] = {
    "CHANGEME_GENERATE_USING_SYNAPSE_GENERATE_COMMAND": "synapse.signing_key",
    "CHANGEME_COPY_FROM_MAIN_SIGNING_KEY": "synapse.signing_key",
    "CHANGEME_SECURE_DB_PASSWORD": "postgres.synapse_password",
    "CHANGEME_DB_PASSWORD": "postgres.synapse_password",
    "CHANGEME_SECURE_LI_DB_PASSWORD": "postgres.li_password",
    "CHANGEME_REPLICATION_PASSWORD": "postgres.replication_password",
    "CHANGEME_SECURE_KEY_VAULT_DB_PASSWORD": "postgres.key_vault_password",
    "CHANGE_ME_GENERATE_SECURE_PASSWORD": "redis.password",
    "CHANGEME_SECURE_REDIS_PASSWORD": "redis.password",
    "CHANGEME_REDIS_PASSWORD": "redis.password",
    "CHANGE_ME_GENERATE_SECURE_PASSWORD_32_CHARS": "minio.root_password",
    "CHANGE_ME_GENERATE_SECURE_S3_PASSWORD": "minio.s3_secret_key",
    "CHANGEME_SECURE_S3_PASSWORD": "minio.s3_secret_key",
    "CHANGEME_S3_PASSWORD": "minio.s3_secret_key",
    "CHANGEME_SECURE_REPLICATION_SECRET": "synapse.replication_secret",
    "CHANGEME_REPLICATION_SECRET": "synapse.replication_secret",
    "CHANGEME_SECURE_MACAROON_SECRET": "synapse.macaroon_secret",
    "CHANGEME_MACAROON": "synapse.macaroon_secret",
    "CHANGEME_SECURE_REGISTRATION_SECRET": "synapse.registration_secret",
    "CHANGEME_REGISTRATION": "synapse.registration_secret",
    "CHANGEME_SECURE_FORM_SECRET": "synapse.form_secret",
    "CHANGEME_FORM": "synapse.form_secret",
    "CHANGEME_SECURE_LI_MACAROON_SECRET": "li.macaroon_secret",
    "CHANGEME_SECURE_LI_REGISTRATION_SECRET": "li.registration_secret",
    "CHANGEME_SECURE_LI_FORM_SECRET": "li.form_secret",
    "CHANGEME_SECURE_TURN_SECRET": "turn.shared_secret",
    "CHANGEME_TURN_SECRET": "turn.shared_secret",
    "CHANGEME_TURN_PASSWORD": "turn.static_password",
    "CHANGE_TO_COTURN_SHARED_SECRET": ("turn.static_password", "turn.username"),
    "CHANGEME_SECURE_KEY_VAULT_API_KEY": "key_vault.api_key",
    "CHANGEME_KEY_VAULT_API_KEY": "key_vault.api_key",
    "CHANGEME_DJANGO_SECRET_KEY_GENERATE_SECURE_RANDOM_STRING": "key_vault.django_secret_key",
    "CHANGEME_GENERATE_RSA_2048_BIT_PRIVATE_KEY": "key_vault.rsa_private_key",
    "CHANGEME_GENERATE_HTPASSWD": "li.admin_htpasswd",
    "CHANGEME_APNS_PRIVATE_KEY": "push.apns.key",
    "CHANGEME_APNS_KEY_ID": "push.apns.key_id",
    "CHANGEME_APNS_TEAM_ID": "push.apns.team_id",
    "CHANGEME_FCM_PROJECT_ID": "push.fcm.service_account",
    "CHANGEME_FCM_PRIVATE_KEY_ID": "push.fcm.service_account",
    "CHANGEME_FCM_PRIVATE_KEY": "push.fcm.service_account",
    "CHANGEME_FCM_CLIENT_EMAIL": "push.fcm.service_account",
    "CHANGEME_FCM_CLIENT_ID": "push.fcm.service_account",
    "CHANGE_TO_GENERATED_API_KEY": "livekit.api_key",
    "CHANGE_TO_GENERATED_API_SECRET": "livekit.api_secret",
    "CHANGE_TO_SECURE_PASSWORD": "grafana.admin_password",
    "CHANGE_TO_YOUR_DOMAIN": "domains.livekit",
    "CHANGE_TO_YOUR_STORAGE_CLASS": "storage.class",
}


def tokens_of(cid: str) -> set[str]:
    """The §2 tokens that stand for ``cid`` (alone or among others)."""
    return {t for t, i in TOKEN_IDS.items() if i == cid or (isinstance(i, tuple) and cid in i)}


REDIS_SECRET = "infrastructure/02-redis/redis-secret.yaml"
ADMIN_LI = "li-instance/03-synapse-admin-li/deployment.yaml"
MAIN_CM = "main-instance/01-synapse/configmap.yaml"
MAIN_STS = "main-instance/01-synapse/main-statefulset.yaml"
PLAIN_HS = "config/synapse/homeserver.yaml"
LI_PLAIN_HS = "li-instance/01-synapse-li/homeserver.yaml"
LIVEKIT = "values/livekit-values.yaml"
PROM = "values/prometheus-stack-values.yaml"


def address(file: str, kind: str | None = None, name: str | None = None) -> str:
    return f"{file}{SEP}{kind}/{name}" if kind else file


def split_object_address(addr: str) -> tuple[str, str, str]:
    """``"FILE › Kind/name"`` -> (file, kind, name)."""
    file, obj_ = addr.split(SEP)
    kind, name = obj_.split("/", 1)
    return file, kind, name


def where_now(layout: dict | None, file: str, kind: str | None = None, name: str | None = None):
    """Where a catalog object (or plain file) lives in a tree with this layout:
    (file, kind, name), or None when it is absent."""
    if layout is None:
        return (file, kind, name)
    if kind is None:
        new = layout["files"].get(file, file)
        return None if new is None else (new, None, None)
    new = layout["objects"].get(address(file, kind, name), address(file, kind, name))
    return None if new is None else split_object_address(new)


def _plain_at(tree: Path, rel: str):
    return fast_docs(tree / rel)[0]


def _dig(node, *path):
    for p in path:
        node = node[p]
    return node


def _strip(v):
    return v.rstrip("\n") if isinstance(v, str) else v


def _sd(key):
    return lambda o: _strip(o["stringData"][key])


def _cm_sql(key, phrase):
    return lambda o: sql_literal_after(o["data"][key], phrase)


def _conninfo(o):
    return conninfo_value(sql_literal_after(o["data"]["setup-subscription.sql"], "CONNECTION"), "password")


def _path(*path):
    return lambda d: _strip(_dig(d, *path))


# CATALOG §3, by hand: id -> [(catalog file, Kind | None, name | None, reader of the object / plain doc)]
# (a reader returning a list stands for several locations in one place).
SECRET_LOCATIONS: dict[str, list[tuple]] = {
    "synapse.signing_key": [(MAIN_SEC, "Secret", "synapse-secrets", _sd("signing.key")),
                            (LI_DEP, "Secret", "synapse-li-secrets", _sd("signing.key"))],
    "postgres.synapse_password": [(MAIN_SEC, "Secret", "synapse-secrets", _sd("DB_PASSWORD")),
                                  (MAIN_SEC, "Secret", "synapse-db-credentials", _sd("password")),
                                  (PLAIN_HS, None, None, _path("database", "args", "password"))],
    "postgres.li_password": [(LI_DEP, "Secret", "synapse-li-secrets", _sd("DB_PASSWORD")),
                             (SYNC, "Secret", "sync-system-secrets", _sd("LI_DB_PASSWORD"))],
    "postgres.replication_password": [
        (SYNC, "ConfigMap", "sync-system-config",
         _cm_sql("setup-replication.sql", "CREATE USER replication_user WITH REPLICATION PASSWORD")),
        (SYNC, "ConfigMap", "sync-system-config", _conninfo),
        (SYNC, "Secret", "sync-system-secrets", _sd("MAIN_DB_PASSWORD"))],
    "postgres.key_vault_password": [(KV, "Secret", "key-vault-secrets", _sd("DB_PASSWORD"))],
    "redis.password": [(REDIS_SECRET, "Secret", "redis-password", _sd("password")),
                       (MAIN_SEC, "Secret", "synapse-secrets", _sd("REDIS_PASSWORD")),
                       (LI_DEP, "Secret", "synapse-li-secrets", _sd("REDIS_PASSWORD")),
                       (PLAIN_HS, None, None, _path("redis", "password"))],
    "minio.root_password": [(MINIO, "Secret", "minio-config",
                             lambda o: shell_var(o["stringData"]["config.env"], "MINIO_ROOT_PASSWORD"))],
    "minio.s3_secret_key": [(MINIO, "Secret", "minio-credentials", _sd("CONSOLE_SECRET_KEY")),
                            (MINIO, "Secret", "minio-credentials", _sd("secret-key")),
                            (MAIN_SEC, "Secret", "synapse-secrets", _sd("S3_SECRET_KEY")),
                            (MAIN_SEC, "Secret", "synapse-s3-credentials", _sd("secret-key")),
                            (LI_DEP, "Secret", "synapse-li-secrets", _sd("S3_SECRET_KEY")),
                            (SYNC, "Secret", "sync-system-secrets", _sd("S3_SECRET_KEY")),
                            (PLAIN_HS, None, None, lambda d: d["media_storage_providers"][0]["config"]["secret_access_key"])],
    "synapse.replication_secret": [(MAIN_SEC, "Secret", "synapse-secrets", _sd("REPLICATION_SECRET")),
                                   (PLAIN_HS, None, None, _path("worker_replication_secret"))],
    "synapse.macaroon_secret": [(MAIN_SEC, "Secret", "synapse-secrets", _sd("MACAROON_SECRET")),
                                (PLAIN_HS, None, None, _path("macaroon_secret_key"))],
    "synapse.registration_secret": [(MAIN_SEC, "Secret", "synapse-secrets", _sd("REGISTRATION_SECRET")),
                                    (PLAIN_HS, None, None, _path("registration_shared_secret"))],
    "synapse.form_secret": [(MAIN_SEC, "Secret", "synapse-secrets", _sd("FORM_SECRET")),
                            (PLAIN_HS, None, None, _path("form_secret"))],
    "li.macaroon_secret": [(LI_DEP, "Secret", "synapse-li-secrets", _sd("MACAROON_SECRET"))],
    "li.registration_secret": [(LI_DEP, "Secret", "synapse-li-secrets", _sd("REGISTRATION_SECRET"))],
    "li.form_secret": [(LI_DEP, "Secret", "synapse-li-secrets", _sd("FORM_SECRET"))],
    "turn.shared_secret": [(MAIN_SEC, "Secret", "synapse-secrets", _sd("TURN_SECRET")),
                           (COTURN, "Secret", "coturn-secrets", _sd("TURN_SHARED_SECRET")),
                           (PLAIN_HS, None, None, _path("turn_shared_secret"))],
    "turn.static_password": [(COTURN, "Secret", "coturn-secrets", _sd("TURN_PASSWORD")),
                             (LIVEKIT, None, None, lambda d: [s["credential"] for s in d["livekit"]["turn"]["servers"]])],
    "key_vault.api_key": [(MAIN_SEC, "Secret", "synapse-secrets", _sd("KEY_VAULT_API_KEY")),
                          (KV, "Secret", "key-vault-secrets", _sd("API_KEY")),
                          (PLAIN_HS, None, None, lambda d: d["modules"][0]["config"]["api_key"])],
    "key_vault.django_secret_key": [(KV, "Secret", "key-vault-secrets", _sd("DJANGO_SECRET_KEY"))],
    "key_vault.rsa_private_key": [(KV, "Secret", "key-vault-secrets", _sd("RSA_PRIVATE_KEY"))],
    "li.admin_htpasswd": [(ADMIN_LI, "Secret", "synapse-admin-auth", _sd("auth"))],
    "livekit.api_key": [(LIVEKIT, None, None, _path("livekit", "apiKey"))],
    "livekit.api_secret": [(LIVEKIT, None, None, _path("livekit", "apiSecret"))],
    "grafana.admin_password": [(PROM, None, None, _path("grafana", "adminPassword"))],
}


def read_object(tree: Path, where: tuple) -> dict:
    file, kind, name = where
    if kind is None:
        return _plain_at(tree, file)
    return fobj(tree, file, kind, name)


def secret_groups_in(tree: Path, layout: dict | None = None, *, li_signing_key: str = "copy",
                     skip_ids=()) -> dict[str, list[str]]:
    """Every location of every generated secret of CATALOG §3, through ``layout``: absent objects and
    removed plain copies are skipped, and with ``li_signing_key`` other than "copy" the LI pod has no
    copy of the key (its location is the main one: see ``pod_signing_key``)."""
    cache: dict[tuple, dict] = {}
    out: dict[str, list[str]] = {}
    for cid, locs in SECRET_LOCATIONS.items():
        if cid in skip_ids:
            continue
        values: list[str] = []
        for file, kind, name, reader in locs:
            if cid == "synapse.signing_key" and name == "synapse-li-secrets" and li_signing_key != "copy":
                continue
            where = where_now(layout, file, kind, name)
            if where is None:
                continue
            if where not in cache:
                cache[where] = read_object(tree, where)
            v = reader(cache[where])
            values.extend(v if isinstance(v, list) else [v])
        out[cid] = values
    return out


def secret_groups(tree: Path, layout: dict | None = None, **kw) -> dict[str, list[str]]:
    """Every location of every generated secret of CATALOG §3, read independently (``layout``: where
    the catalog objects live in a drifted tree; None: the bundled layout)."""
    if layout is None and not kw:
        return _secret_groups_bundled(tree)
    return secret_groups_in(tree, layout, **kw)


# ---------------------------------------------------------------- objects anywhere, pods and their meanings

def parsed_objects(tree: Path, skip=()) -> list[tuple[str, dict]]:
    """(file, object) for every Kubernetes object of every YAML file that parses (files in ``skip``
    excluded)."""
    out = []
    for p in sorted(tree.rglob("*")):
        rel = p.relative_to(tree).as_posix()
        if not p.is_file() or not rel.endswith((".yaml", ".yml")) or rel in skip:
            continue
        try:
            docs = fast_docs(p)
        except yaml.YAMLError:
            continue
        out.extend((rel, d) for d in docs if isinstance(d, dict) and "kind" in d)
    return out


def find_by_name(tree: Path, kind: str, name: str, skip=()) -> tuple[str, dict]:
    hits = [(rel, d) for rel, d in parsed_objects(tree, skip) if d.get("kind") == kind
            and (d.get("metadata") or {}).get("name") == name]
    assert len(hits) == 1, f"expected one {kind}/{name} in the tree, found {[h[0] for h in hits]}"
    return hits[0]


def _pod_spec(workload: dict) -> dict:
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["spec"]


def pod_secret_names(workload: dict) -> list[str]:
    """The Secrets a workload's containers (init containers too) load whole with envFrom."""
    pod = _pod_spec(workload)
    names = []
    for c in (pod.get("initContainers") or []) + (pod.get("containers") or []):
        for ref in c.get("envFrom") or []:
            if "secretRef" in ref and ref["secretRef"]["name"] not in names:
                names.append(ref["secretRef"]["name"])
    return names


def pod_env(tree: Path, workload: dict, skip=()) -> dict[str, str]:
    """The environment envsubst sees in a workload: every Secret it loads with envFrom, merged."""
    env: dict[str, str] = {}
    for name in pod_secret_names(workload):
        _, sec = find_by_name(tree, "Secret", name, skip)
        env.update({k: str(v) for k, v in (sec.get("stringData") or {}).items()})
    return env


def pod_config_maps(workload: dict) -> list[str]:
    return [v["configMap"]["name"] for v in _pod_spec(workload).get("volumes") or [] if "configMap" in v]


@dataclass(frozen=True)
class KeySource:
    file: str          # where the Secret is
    secret: str        # its name
    key: str           # the Secret key mounted for signing_key_path
    value: str         # the key file's content
    via: str           # "mount" or "init-copy"


def _volume(pod: dict, name: str) -> dict:
    hits = [v for v in pod.get("volumes") or [] if v.get("name") == name]
    assert len(hits) == 1, f"volume {name}: {len(hits)} found"
    return hits[0]


def _secret_key_at(vol: dict, filename: str) -> tuple[str, str]:
    sec = vol["secret"]
    items = sec.get("items")
    if items:
        keys = [i["key"] for i in items if i.get("path") == filename]
        assert len(keys) == 1, f"no item of Secret/{sec['secretName']} is mounted as {filename}"
        return sec["secretName"], keys[0]
    return sec["secretName"], filename


def _mount_for(container: dict, path: str):
    """(volume name, path relative to the mount) for the longest mountPath holding ``path``."""
    best = None
    for m in container.get("volumeMounts") or []:
        mp = m["mountPath"].rstrip("/")
        if path == mp or path.startswith(mp + "/"):
            if best is None or len(mp) > len(best[2]):
                best = (m["name"], path[len(mp):].lstrip("/"), mp)
    return best


def pod_signing_key(tree: Path, workload: dict, signing_key_path: str, skip=()) -> KeySource:
    """The Secret key a Synapse pod mounts at ``signing_key_path``: through its volumeMounts, a Secret
    volume's items, or an emptyDir an init container fills by copying from a mounted Secret."""
    pod = _pod_spec(workload)
    main = [c for c in pod["containers"] if _mount_for(c, signing_key_path)]
    assert main, f"no container of {workload['metadata']['name']} mounts {signing_key_path}"
    vol_name, rest, _ = _mount_for(main[0], signing_key_path)
    vol = _volume(pod, vol_name)
    via = "mount"
    if "secret" not in vol:
        assert "emptyDir" in vol, f"volume {vol_name} is neither a Secret nor an emptyDir"
        for init in pod.get("initContainers") or []:
            m = _mount_for(init, signing_key_path)
            if not m or m[0] != vol_name:
                continue
            target = m[2] + "/" + m[1]
            script = " ".join(str(x) for x in (init.get("command") or []) + (init.get("args") or []))
            for src, dst in re.findall(r"\bcp\s+(?:-\S+\s+)*(\S+)\s+(\S+)", script):
                if dst.rstrip("/") in (target, m[2]) or dst == target:
                    src_mount = _mount_for(init, src)
                    assert src_mount, f"{init['name']} copies {src}, which it does not mount"
                    vol = _volume(pod, src_mount[0])
                    rest = src_mount[1]
                    via = "init-copy"
                    break
            if via == "init-copy":
                break
        assert via == "init-copy", f"nothing fills volume {vol_name} with the signing key"
    secret, key = _secret_key_at(vol, rest)
    file, sec = find_by_name(tree, "Secret", secret, skip)
    return KeySource(file, secret, key, str(sec["stringData"][key]), via)


@dataclass(frozen=True)
class Homeserver:
    where: str              # catalog address of the config
    file: str               # where it is now
    text: str               # the config (embedded: as in the ConfigMap, ${VAR} unsubstituted)
    env: dict               # what envsubst fills it from (plain copies: {})
    signing_key: str        # the key file the pod mounts (plain copies: their instance's)


def homeserver_configs(tree: Path, layout: dict | None = None, skip=()) -> list[Homeserver]:
    """Every homeserver config of the tree (embedded and plain, wherever it is now), with the
    environment its pod loads and the signing key its pod mounts."""
    out = []
    for inst, (cm_file, cm_name, sts_file, sts_name, plain_rel) in {
        "main": (MAIN_CM, "synapse-config", MAIN_STS, "synapse-main", PLAIN_HS),
        "li": (LI_DEP, "synapse-li-config", LI_DEP, "synapse-li", LI_PLAIN_HS),
    }.items():
        cm_at = where_now(layout, cm_file, "ConfigMap", cm_name)
        sts_at = where_now(layout, sts_file, "StatefulSet", sts_name)
        assert cm_at and sts_at, f"{inst}: homeserver ConfigMap or StatefulSet absent"
        sts = fobj(tree, *sts_at)
        assert cm_at[2] in pod_config_maps(sts), f"{sts_at} does not mount ConfigMap/{cm_at[2]}"
        text = fobj(tree, *cm_at)["data"]["homeserver.yaml"]
        env = pod_env(tree, sts, skip)
        key = pod_signing_key(tree, sts, yaml.safe_load(text)["signing_key_path"], skip).value
        out.append(Homeserver(address(cm_file, "ConfigMap", cm_name), cm_at[0], text, env, key))
        plain_at = where_now(layout, plain_rel)
        if plain_at is not None and (tree / plain_at[0]).exists():
            out.append(Homeserver(plain_rel, plain_at[0], read_text(tree / plain_at[0]),
                                  env if inst == "li" else {}, key))
    return out


def read_address(tree: Path, addr: str) -> str:
    """A simple location ``FILE › Kind/name › stringData.KEY`` (or ``data.KEY``; a quoted key may
    hold dots) read as text."""
    file, obj_, path = addr.split(SEP)
    kind, name = obj_.split("/", 1)
    section, key = path.split(".", 1)
    return _strip(str(fobj(tree, file, kind, name)[section][key.strip('"')]))


NOT_MANIFEST = (".sh", ".md")


def is_manifest(rel: str) -> bool:
    return not rel.endswith(NOT_MANIFEST) and not rel.startswith("docs/") and "/docs/" not in rel


def walk_manifest_values(tree: Path, skip=()):
    """walk_values over manifests only: no shell script, no Markdown, nothing under docs/, and none of
    the files in ``skip`` (e.g. files broken on purpose)."""
    for path in sorted(p for p in tree.rglob("*") if p.is_file()):
        rel = path.relative_to(tree).as_posix()
        if rel in skip or not is_manifest(rel):
            continue
        if rel.endswith((".yaml", ".yml")):
            for doc in fast_docs(path):
                name = f"{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}" if isinstance(doc, dict) \
                    and "kind" in doc else ""
                yield from _walk(rel, name, doc)
        elif rel.endswith(".json"):
            yield from _walk(rel, "", json.loads(read_text(path)))
        else:
            yield from _lines(rel, "", read_text(path))


def tokens_in_values(tree: Path, skip=()) -> list[tuple[str, str]]:
    """(file, token) for every placeholder token left in a manifest value (comments excluded)."""
    return [(v.file, m.group()) for v in walk_manifest_values(tree, skip) for m in TOKEN_RE.finditer(v.text)]


class _FastStrictLoader(NoDuplicateKeys, _FAST):
    """libyaml's parser, PyYAML's safe types, and a duplicate key is an error (oracles.DuplicateKeyError)."""


_FastStrictLoader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: str(node.value))
_STRICT_OK: set[str] = set()  # texts already read strictly without error (embedded files included)


def strict_parse(text: str, json_file: bool = False) -> None:
    """Raise unless ``text`` parses: JSON, or YAML read strictly (duplicate keys are errors), and every
    embedded ``*.yaml``/``*.json`` file in it too. Cached by content."""
    if text in _STRICT_OK:
        return
    if json_file:
        json.loads(text)
    else:
        for doc in yaml.load_all(text, Loader=_FastStrictLoader):
            parse_embedded(doc)
    if len(_STRICT_OK) > 5000:
        _STRICT_OK.clear()
    _STRICT_OK.add(text)


def parse_embedded(node, key: str = "") -> None:
    """Raise when a ``*.yaml``/``*.yml``/``*.json`` key of ``node`` holds a file that does not parse
    (YAML read strictly: a duplicate key is an error)."""
    if isinstance(node, dict):
        for k, v in node.items():
            parse_embedded(v, str(k))
    elif isinstance(node, list):
        for v in node:
            parse_embedded(v)
    elif isinstance(node, str) and "\n" in node:
        if key.endswith((".yaml", ".yml")):
            list(yaml.load_all(node, Loader=_FastStrictLoader))
        elif key.endswith(".json"):
            json.loads(node)
