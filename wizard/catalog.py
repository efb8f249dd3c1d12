"""The catalog as data: every secret and setting the wizard owns, and where each one lives.

Addresses follow CATALOG.md's notation (see wizard.locate.resolve). A new location is one more
string in a tuple; a new secret is one more entry. No other module knows which file holds what.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

TOKEN_RE = re.compile(r"CHANGE_TO_[A-Z0-9_]+|CHANGE_?ME[A-Z0-9_]*")

# Files, objects and keys that recur (short names keep the tables readable).
MAIN_SECRETS = "main-instance/01-synapse/secrets.yaml › Secret/synapse-secrets › stringData"
DB_CREDS = "main-instance/01-synapse/secrets.yaml › Secret/synapse-db-credentials › stringData"
S3_CREDS = "main-instance/01-synapse/secrets.yaml › Secret/synapse-s3-credentials › stringData"
LI_DEPLOY = "li-instance/01-synapse-li/deployment.yaml"
LI_SECRETS = f"{LI_DEPLOY} › Secret/synapse-li-secrets › stringData"
SYNC = "li-instance/04-sync-system/deployment.yaml"
SYNC_SECRETS = f"{SYNC} › Secret/sync-system-secrets › stringData"
SYNC_CONFIG = f"{SYNC} › ConfigMap/sync-system-config › data"
KV_SECRETS = "main-instance/08-key-vault/deployment.yaml › Secret/key-vault-secrets › stringData"
COTURN = "main-instance/06-coturn/deployment.yaml"
COTURN_SECRETS = f"{COTURN} › Secret/coturn-secrets › stringData"
COTURN_CONF = f'{COTURN} › ConfigMap/coturn-config › data."turnserver.conf"'
MINIO = "infrastructure/03-minio/secrets.yaml"
PLAIN_HS = "config/synapse/homeserver.yaml"
MAIN_HS = 'main-instance/01-synapse/configmap.yaml › ConfigMap/synapse-config › data."homeserver.yaml" › (yaml)'
LI_HS = f'{LI_DEPLOY} › ConfigMap/synapse-li-config › data."homeserver.yaml" › (yaml)'
LI_PLAIN_HS = "li-instance/01-synapse-li/homeserver.yaml"
LIVEKIT = "values/livekit-values.yaml"
ELEMENT_MAIN = 'main-instance/02-element-web/deployment.yaml › ConfigMap/element-web-config › data."config.json" › (json)'
ELEMENT_PLAIN = "main-instance/02-element-web/config.json"
ELEMENT_LI = 'li-instance/02-element-web-li/deployment.yaml › ConfigMap/element-web-li-config › data."config.json" › (json)'
ADMIN_LI = "li-instance/03-synapse-admin-li/deployment.yaml"
HAPROXY = "main-instance/03-haproxy/deployment.yaml"
ISSUERS = "infrastructure/04-networking/cert-manager-install.yaml"
SYGNAL = "main-instance/07-sygnal/deployment.yaml › Secret/sygnal-secrets › stringData"

# Every homeserver config, with how its address starts (for old_signing_keys and checks).
HOMESERVERS = (MAIN_HS, PLAIN_HS, LI_HS, LI_PLAIN_HS)

# Ingresses by the domain they serve.
INGRESSES = {
    "domains.matrix": (f"{HAPROXY} › Ingress/matrix-client", f"{HAPROXY} › Ingress/matrix-federation"),
    "domains.element": ("main-instance/02-element-web/deployment.yaml › Ingress/element-web",),
    "domains.li_matrix": (f"{LI_DEPLOY} › Ingress/synapse-li",),
    "domains.li_element": ("li-instance/02-element-web-li/deployment.yaml › Ingress/element-web-li",),
    "domains.li_admin": (f"{ADMIN_LI} › Ingress/synapse-admin-li",),
}
ALL_INGRESSES = tuple(i for group in INGRESSES.values() for i in group)
LI_INGRESSES = INGRESSES["domains.li_matrix"] + INGRESSES["domains.li_element"] + INGRESSES["domains.li_admin"]


def _ingress_hosts(ingress: str) -> tuple[str, ...]:
    return (f"{ingress} › spec.tls[*].hosts[*]", f"{ingress} › spec.rules[*].host")


@dataclass(frozen=True)
class Secret:
    """A generated (or operator-provided) secret: one value, byte-identical in every location."""

    id: str
    form: str  # generator name in wizard.generate
    locations: tuple[str, ...]
    tokens: tuple[str, ...] = ()
    provided: bool = False  # operator input, never generated nor rotated
    distinct_from: str | None = None
    what: str = ""  # what it protects, in the operator's words
    block: bool = False  # a whole block value (key file, PEM, htpasswd line): kept without its final line break


@dataclass(frozen=True)
class Setting:
    """A non-secret value from the answers, written to every location."""

    id: str
    locations: tuple[str, ...]
    tokens: tuple[str, ...] = ()


def _pw(id_: str, tokens, *locations, what="", distinct_from=None) -> Secret:
    return Secret(id_, "password", tuple(locations), tuple(tokens), what=what, distinct_from=distinct_from)


SECRETS: tuple[Secret, ...] = (
    Secret("synapse.signing_key", "signing_key",
           (f'{MAIN_SECRETS}."signing.key"', f'{LI_SECRETS}."signing.key"'),
           ("CHANGEME_GENERATE_USING_SYNAPSE_GENERATE_COMMAND", "CHANGEME_COPY_FROM_MAIN_SIGNING_KEY"),
           what="the homeserver's federation signing key (main and LI share it)", block=True),
    _pw("postgres.synapse_password", ("CHANGEME_SECURE_DB_PASSWORD", "CHANGEME_DB_PASSWORD"),
        f"{MAIN_SECRETS}.DB_PASSWORD", f"{DB_CREDS}.password", f"{PLAIN_HS} › database.args.password",
        what="the main Synapse database role"),
    _pw("postgres.li_password", ("CHANGEME_SECURE_LI_DB_PASSWORD",),
        f"{LI_SECRETS}.DB_PASSWORD", f"{SYNC_SECRETS}.LI_DB_PASSWORD", what="the LI Synapse database role"),
    _pw("postgres.replication_password", ("CHANGEME_REPLICATION_PASSWORD",),
        f'{SYNC_CONFIG}."setup-replication.sql" › (sql) CREATE USER replication_user WITH REPLICATION PASSWORD',
        f'{SYNC_CONFIG}."setup-subscription.sql" › (sql) CONNECTION › (conninfo) password',
        f"{SYNC_SECRETS}.MAIN_DB_PASSWORD", what="the logical-replication role main → LI"),
    _pw("postgres.key_vault_password", ("CHANGEME_SECURE_KEY_VAULT_DB_PASSWORD",),
        f"{KV_SECRETS}.DB_PASSWORD", what="the key vault's database role"),
    _pw("redis.password", ("CHANGE_ME_GENERATE_SECURE_PASSWORD", "CHANGEME_SECURE_REDIS_PASSWORD",
                           "CHANGEME_REDIS_PASSWORD"),
        "infrastructure/02-redis/redis-secret.yaml › Secret/redis-password › stringData.password",
        f"{MAIN_SECRETS}.REDIS_PASSWORD", f"{LI_SECRETS}.REDIS_PASSWORD", f"{PLAIN_HS} › redis.password",
        what="Redis (Synapse replication pub/sub)"),
    _pw("minio.root_password", ("CHANGE_ME_GENERATE_SECURE_PASSWORD_32_CHARS",),
        f'{MINIO} › Secret/minio-config › stringData."config.env" › (shell) MINIO_ROOT_PASSWORD',
        what="the MinIO root user"),
    _pw("minio.s3_secret_key", ("CHANGE_ME_GENERATE_SECURE_S3_PASSWORD", "CHANGEME_SECURE_S3_PASSWORD",
                                "CHANGEME_S3_PASSWORD"),
        f"{MINIO} › Secret/minio-credentials › stringData.CONSOLE_SECRET_KEY",
        f'{MINIO} › Secret/minio-credentials › stringData."secret-key"',
        f"{MAIN_SECRETS}.S3_SECRET_KEY", f'{S3_CREDS}."secret-key"', f"{LI_SECRETS}.S3_SECRET_KEY",
        f"{SYNC_SECRETS}.S3_SECRET_KEY", f"{PLAIN_HS} › media_storage_providers[0].config.secret_access_key",
        what="the S3 secret key for media and backups"),
    _pw("synapse.replication_secret", ("CHANGEME_SECURE_REPLICATION_SECRET", "CHANGEME_REPLICATION_SECRET"),
        f"{MAIN_SECRETS}.REPLICATION_SECRET", f"{PLAIN_HS} › worker_replication_secret",
        what="Synapse main ↔ worker replication"),
    _pw("synapse.macaroon_secret", ("CHANGEME_SECURE_MACAROON_SECRET", "CHANGEME_MACAROON"),
        f"{MAIN_SECRETS}.MACAROON_SECRET", f"{PLAIN_HS} › macaroon_secret_key", what="access-token macaroons"),
    _pw("synapse.registration_secret", ("CHANGEME_SECURE_REGISTRATION_SECRET", "CHANGEME_REGISTRATION"),
        f"{MAIN_SECRETS}.REGISTRATION_SECRET", f"{PLAIN_HS} › registration_shared_secret",
        what="shared-secret user registration"),
    _pw("synapse.form_secret", ("CHANGEME_SECURE_FORM_SECRET", "CHANGEME_FORM"),
        f"{MAIN_SECRETS}.FORM_SECRET", f"{PLAIN_HS} › form_secret", what="consent/CAPTCHA forms"),
    _pw("li.macaroon_secret", ("CHANGEME_SECURE_LI_MACAROON_SECRET",), f"{LI_SECRETS}.MACAROON_SECRET",
        distinct_from="synapse.macaroon_secret", what="LI access-token macaroons"),
    _pw("li.registration_secret", ("CHANGEME_SECURE_LI_REGISTRATION_SECRET",), f"{LI_SECRETS}.REGISTRATION_SECRET",
        distinct_from="synapse.registration_secret", what="LI shared-secret registration"),
    _pw("li.form_secret", ("CHANGEME_SECURE_LI_FORM_SECRET",), f"{LI_SECRETS}.FORM_SECRET",
        distinct_from="synapse.form_secret", what="LI forms"),
    _pw("turn.shared_secret", ("CHANGEME_SECURE_TURN_SECRET", "CHANGEME_TURN_SECRET"),
        f"{MAIN_SECRETS}.TURN_SECRET", f"{COTURN_SECRETS}.TURN_SHARED_SECRET", f"{PLAIN_HS} › turn_shared_secret",
        what="time-limited TURN credentials handed out by Synapse"),
    _pw("turn.static_password", ("CHANGEME_TURN_PASSWORD",),
        f"{COTURN_SECRETS}.TURN_PASSWORD", f"{LIVEKIT} › livekit.turn.servers[*].credential",
        what="the static TURN user LiveKit uses"),
    _pw("key_vault.api_key", ("CHANGEME_SECURE_KEY_VAULT_API_KEY", "CHANGEME_KEY_VAULT_API_KEY"),
        f"{MAIN_SECRETS}.KEY_VAULT_API_KEY", f"{KV_SECRETS}.API_KEY", f"{PLAIN_HS} › modules[0].config.api_key",
        what="Synapse → key vault API calls"),
    Secret("key_vault.django_secret_key", "django_key", (f"{KV_SECRETS}.DJANGO_SECRET_KEY",),
           ("CHANGEME_DJANGO_SECRET_KEY_GENERATE_SECURE_RANDOM_STRING",), what="the key vault's Django sessions"),
    Secret("key_vault.rsa_private_key", "rsa_key", (f"{KV_SECRETS}.RSA_PRIVATE_KEY",),
           ("CHANGEME_GENERATE_RSA_2048_BIT_PRIVATE_KEY",), what="encryption of stored recovery keys", block=True),
    Secret("li.admin_password", "password", (), what="the LI admin UI basic-auth password (kept only here)"),
    Secret("li.admin_htpasswd", "htpasswd", (f"{ADMIN_LI} › Secret/synapse-admin-auth › stringData.auth",),
           ("CHANGEME_GENERATE_HTPASSWD",), what="the LI admin UI basic-auth line (from li.admin_password)",
           block=True),
    Secret("livekit.api_key", "livekit_key", (f"{LIVEKIT} › livekit.apiKey",), ("CHANGE_TO_GENERATED_API_KEY",),
           what="LiveKit API key"),
    _pw("livekit.api_secret", ("CHANGE_TO_GENERATED_API_SECRET",), f"{LIVEKIT} › livekit.apiSecret",
        what="LiveKit API secret"),
    _pw("grafana.admin_password", ("CHANGE_TO_SECURE_PASSWORD",),
        "values/prometheus-stack-values.yaml › grafana.adminPassword", what="the Grafana admin user"),
    # Operator-provided push credentials (CATALOG §4): never generated, never rotated.
    Secret("push.apns.key", "provided", (f'{SYGNAL}."apns-key.p8"',), ("CHANGEME_APNS_PRIVATE_KEY",), provided=True,
           block=True),
    Secret("push.apns.key_id", "provided", (f"{SYGNAL}.apns-key-id",), ("CHANGEME_APNS_KEY_ID",), provided=True),
    Secret("push.apns.team_id", "provided", (f"{SYGNAL}.apns-team-id",), ("CHANGEME_APNS_TEAM_ID",), provided=True),
    Secret("push.apns.topic", "provided", (f"{SYGNAL}.apns-topic",), (), provided=True),
    Secret("push.fcm.service_account", "provided", (f'{SYGNAL}."fcm-service-account.json"',),
           ("CHANGEME_FCM_PROJECT_ID", "CHANGEME_FCM_PRIVATE_KEY_ID", "CHANGEME_FCM_PRIVATE_KEY",
            "CHANGEME_FCM_CLIENT_EMAIL", "CHANGEME_FCM_CLIENT_ID"), provided=True, block=True),
    Secret("smtp.password", "provided", (f"{MAIN_SECRETS}.SMTP_PASSWORD", f"{PLAIN_HS} › email.smtp_pass"),
           provided=True),
)

SECRET_BY_ID = {s.id: s for s in SECRETS}
GENERATED_IDS = tuple(s.id for s in SECRETS if not s.provided)
PLACEHOLDER_PREFIX = "placeholder."


def is_known_id(cid: str) -> bool:
    """An id the secrets file may hold: a catalog secret, or a generated unknown token (placeholder.TOKEN)."""
    return cid in SECRET_BY_ID or (cid.startswith(PLACEHOLDER_PREFIX) and len(cid) > len(PLACEHOLDER_PREFIX))


def is_block_id(cid: str) -> bool:
    spec = SECRET_BY_ID.get(cid)
    return spec is not None and spec.block


def required_store_ids() -> tuple[str, ...]:
    """The ids every secrets file written by a complete first run holds (judging a version 1 file)."""
    return GENERATED_IDS
ROTATABLE_IDS = tuple(i for i in GENERATED_IDS if i != "li.admin_htpasswd")


def _element(prefix: str, *paths: str) -> tuple[str, ...]:
    return tuple(f"{prefix} › {p}" if not prefix.endswith("(json)") else f"{prefix} {p}" for p in paths)


_SERVER_NAME_JSON = ('default_server_config."m.homeserver".server_name', "default_server_name",
                     'room_directory.servers[=@default_server_config."m.homeserver".server_name]')
_BASE_URL = 'default_server_config."m.homeserver".base_url › (url) host'
_PRESENCE = 'enable_presence_by_hs_url.{@default_server_config."m.homeserver".base_url} › (url) host'

SETTINGS: tuple[Setting, ...] = (
    Setting("server_name", (
        f"{MAIN_HS} server_name", f"{PLAIN_HS} › server_name", f"{LI_HS} server_name", f"{LI_PLAIN_HS} › server_name",
        *_element(ELEMENT_MAIN, *_SERVER_NAME_JSON), *_element(ELEMENT_PLAIN, *_SERVER_NAME_JSON),
        *_element(ELEMENT_LI, *_SERVER_NAME_JSON))),
    Setting("domains.matrix", (
        f"{MAIN_HS} public_baseurl › (url) host", f"{PLAIN_HS} › public_baseurl › (url) host",
        *_ingress_hosts(INGRESSES["domains.matrix"][0]), *_ingress_hosts(INGRESSES["domains.matrix"][1]),
        f'{HAPROXY} › ConfigMap/haproxy-config › data."haproxy.cfg" › (haproxy) Host',
        "main-instance/03-haproxy/haproxy.cfg › (haproxy) Host",
        *_element(ELEMENT_MAIN, _BASE_URL, _PRESENCE), *_element(ELEMENT_PLAIN, _BASE_URL, _PRESENCE))),
    Setting("domains.element", (
        f"{MAIN_HS} web_client_location › (url) host", f"{PLAIN_HS} › web_client_location › (url) host",
        *_ingress_hosts(INGRESSES["domains.element"][0]))),
    Setting("domains.turn", (
        f"{MAIN_HS} turn_uris[*] › (url) host", f"{PLAIN_HS} › turn_uris[*] › (url) host",
        f"{COTURN_CONF} › (conf) realm", f"{COTURN_CONF} › (conf) server-name",
        f"{COTURN} › Certificate/coturn-tls › spec.dnsNames[*]")),
    Setting("domains.li_matrix", (
        f"{LI_HS} public_baseurl › (url) host", f"{LI_PLAIN_HS} › public_baseurl › (url) host",
        *_ingress_hosts(INGRESSES["domains.li_matrix"][0]),
        *_element(ELEMENT_LI, _BASE_URL, "permalink_prefix › (url) host", _PRESENCE),
        f'{ADMIN_LI} › ConfigMap/synapse-admin-li-config › data."config.json" › (json) restrictBaseUrl › (url) host',
        f'{ADMIN_LI} › ConfigMap/synapse-admin-li-config › data."config.json" › (json) restrictBaseUrl[*] › (url) host')),
    Setting("domains.li_element", _ingress_hosts(INGRESSES["domains.li_element"][0])),
    Setting("domains.li_admin", _ingress_hosts(INGRESSES["domains.li_admin"][0])),
    Setting("domains.livekit", (
        f"{LIVEKIT} › ingress.hosts[*].host", f"{LIVEKIT} › ingress.tls[*].hosts[*]", f"{LIVEKIT} › livekit.domain"),
        ("CHANGE_TO_YOUR_DOMAIN",)),
    Setting("tls.acme_email", (f"{ISSUERS} › ClusterIssuer/letsencrypt-prod › spec.acme.email",
                               f"{ISSUERS} › ClusterIssuer/letsencrypt-staging › spec.acme.email")),
    Setting("tls.issuer", (
        *(f'{i} › metadata.annotations."cert-manager.io/cluster-issuer"' for i in ALL_INGRESSES),
        f'{LIVEKIT} › ingress.annotations."cert-manager.io/cluster-issuer"',
        f"{COTURN} › Certificate/coturn-tls › spec.issuerRef.name")),
    Setting("storage.class", (
        "values/loki-values.yaml › loki.persistence.storageClassName",
        "values/prometheus-stack-values.yaml › prometheus.prometheusSpec.storageSpec.volumeClaimTemplate.spec.storageClassName",
        "values/prometheus-stack-values.yaml › grafana.persistence.storageClassName",
        "values/redis-livekit-values.yaml › master.persistence.storageClass",
        "values/redis-livekit-values.yaml › replica.persistence.storageClass",
        "values/redis-synapse-values.yaml › master.persistence.storageClass",
        "values/redis-synapse-values.yaml › replica.persistence.storageClass",
        "infrastructure/01-postgresql/main-cluster.yaml › Cluster/matrix-postgresql › spec.storage.storageClass",
        "infrastructure/01-postgresql/li-cluster.yaml › Cluster/matrix-postgresql-li › spec.storage.storageClass",
        "infrastructure/03-minio/tenant.yaml › Tenant/minio › spec.pools[*].volumeClaimTemplate.spec.storageClassName",
        "infrastructure/02-redis/redis-statefulset.yaml › StatefulSet/redis › spec.volumeClaimTemplates[*].spec.storageClassName",
        "main-instance/01-synapse/main-statefulset.yaml › StatefulSet/synapse-main › spec.volumeClaimTemplates[*].spec.storageClassName",
        f"{LI_DEPLOY} › StatefulSet/synapse-li › spec.volumeClaimTemplates[*].spec.storageClassName"),
        ("CHANGE_TO_YOUR_STORAGE_CLASS",)),
    Setting("minio.s3_access_key", (
        f"{MAIN_SECRETS}.S3_ACCESS_KEY", f"{LI_SECRETS}.S3_ACCESS_KEY", f"{SYNC_SECRETS}.S3_ACCESS_KEY",
        f"{MINIO} › Secret/minio-credentials › stringData.CONSOLE_ACCESS_KEY",
        f'{MINIO} › Secret/minio-credentials › stringData."access-key"', f'{S3_CREDS}."access-key"',
        f"{PLAIN_HS} › media_storage_providers[0].config.access_key_id")),
    Setting("turn.username", (f"{LIVEKIT} › livekit.turn.servers[*].username",), ("CHANGE_TO_COTURN_SHARED_SECRET",)),
)
SETTING_BY_ID = {s.id: s for s in SETTINGS}

# Where the TURN user name is read from (LiveKit must use the same one).
TURN_USERNAME_SOURCE = f"{COTURN_SECRETS}.TURN_USERNAME"

# Keys the wizard adds where a fresh tree has only a commented example.
ALLOWLIST_ANNOTATION = "nginx.ingress.kubernetes.io/whitelist-source-range"
AUTH_ANNOTATIONS = ("nginx.ingress.kubernetes.io/auth-type", "nginx.ingress.kubernetes.io/auth-secret",
                    "nginx.ingress.kubernetes.io/auth-realm")
ISSUER_ANNOTATION = "cert-manager.io/cluster-issuer"
ADMIN_INGRESS = INGRESSES["domains.li_admin"][0]
ADMIN_AUTH_SECRET = "synapse-admin-auth"
EXTERNAL_IP = (COTURN_CONF, "external-ip")
SMTP_PASSWORD_KEY = (MAIN_SECRETS, "SMTP_PASSWORD")
SELFSIGNED_ISSUER_FILE = ISSUERS

# Components that may keep their placeholders while disabled.
DISABLED_WHEN = {"push": ("main-instance/07-sygnal/",)}


def token_ids() -> dict[str, str]:
    """Token → catalog id, from the tables above (CATALOG §2)."""
    out: dict[str, str] = {}
    for s in SECRETS:
        for t in s.tokens:
            out.setdefault(t, s.id)
    for s in SETTINGS:
        for t in s.tokens:
            out.setdefault(t, s.id)
    out.setdefault("CHANGE_TO_COTURN_SHARED_SECRET", "turn.static_password")
    return out


TOKEN_IDS = token_ids()


def has_token(value: str) -> bool:
    return TOKEN_RE.search(value) is not None

# Secrets that reach a homeserver config through envsubst: (config address, Secret the pod loads whole).
ENVSUBST_TARGETS = ((MAIN_HS[: -len(" › (yaml)")], MAIN_SECRETS), (LI_HS[: -len(" › (yaml)")], LI_SECRETS))

# Characters a location's consumer cannot take, beyond what the file format escapes.
LINE_BREAKS = "\n\r\x85\u2028\u2029"
VALUE_LIMITS = {
    "redis.password": ("/&\\\"'`$" + LINE_BREAKS, "the Redis init container substitutes it into redis.conf with sed"),
    "li.admin_password": (LINE_BREAKS, "a basic-auth password is one line"),
}
BCRYPT_MAX_BYTES = 72
# Settings a configured tree never changes (Synapse binds its data to the server name).
IMMUTABLE_ONCE_SET = ("server_name",)

# Values a fresh tree holds before the wizard sets them (CATALOG §5); replacing anything else asks first.
FRESH_DEFAULTS = {
    "server_name": ("matrix.example.com",),
    "domains.matrix": ("matrix.example.com",),
    "domains.element": ("element.matrix.example.com",),
    "domains.turn": ("turn.matrix.example.com",),
    "domains.li_matrix": ("matrix-li.example.com",),
    "domains.li_element": ("element-li.matrix.example.com",),
    "domains.li_admin": ("admin-li.matrix.example.com",),
    "tls.acme_email": ("admin@example.com",),
    "tls.issuer": ("letsencrypt-prod",),
    "tls.mode": ("letsencrypt-prod",),
    "storage.class": ("standard", "local-path", ""),
    "minio.s3_access_key": ("synapse-s3-user",),
    "turn.username": ("matrix",),
}


def is_unset(cid: str, value: str) -> bool:
    """A value the wizard may set without asking: a placeholder, empty, or the fresh tree's default."""
    if not value or has_token(value) or value in FRESH_DEFAULTS.get(cid, ()):
        return True
    return cid == "synapse.signing_key" and value.split()[1:2] == ["a_XXXX"]


def secret_key_ids() -> dict[tuple[str, str], str]:
    """(Secret name, key) -> the id whose location it is."""
    from wizard.locate.resolve import Address

    out = {}
    for s in SECRETS:
        for loc in s.locations:
            addr = Address.parse(loc)
            if addr.obj and addr.obj[0] == "Secret" and len(addr.steps) == 1 and addr.steps[0].fmt == "path":
                segs = addr.steps[0].arg
                if len(segs) == 2 and segs[0].arg in ("stringData", "data"):
                    out[(addr.obj[1], str(segs[1].arg))] = s.id
    return out


def env_var_ids(secret_prefix: str) -> dict[str, str]:
    """VAR → catalog id for the keys of a Secret (from the locations above)."""
    out = {}
    for s in SECRETS:
        for loc in s.locations:
            if loc.startswith(secret_prefix + "."):
                out[loc[len(secret_prefix) + 1:]] = s.id
    return out
