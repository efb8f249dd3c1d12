"""The catalog's records: every secret and setting the wizard owns (CATALOG.md §2–§5), and the components
they belong to. Adding a generated secret is adding one record here."""
from __future__ import annotations

from wizard.catalog.model import (ADD, CONF_LINE, DOCUMENT, ISSUER, LINE_BREAKS, OLD_KEYS, SECRET, SECTION,
                                  SETTING, Component, Docs, Limits, Location, Record, Rotation, SecretRef)

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
MAIN_HS_VALUE = 'main-instance/01-synapse/configmap.yaml › ConfigMap/synapse-config › data."homeserver.yaml"'
MAIN_HS = f"{MAIN_HS_VALUE} › (yaml)"
LI_HS_VALUE = f'{LI_DEPLOY} › ConfigMap/synapse-li-config › data."homeserver.yaml"'
LI_HS = f"{LI_HS_VALUE} › (yaml)"
LI_PLAIN_HS = "li-instance/01-synapse-li/homeserver.yaml"
LIVEKIT = "values/livekit-values.yaml"
ELEMENT_MAIN = 'main-instance/02-element-web/deployment.yaml › ConfigMap/element-web-config › data."config.json" › (json)'
ELEMENT_PLAIN = "main-instance/02-element-web/config.json"
ELEMENT_LI = 'li-instance/02-element-web-li/deployment.yaml › ConfigMap/element-web-li-config › data."config.json" › (json)'
ADMIN_LI = "li-instance/03-synapse-admin-li/deployment.yaml"
ADMIN_CONFIG = f'{ADMIN_LI} › ConfigMap/synapse-admin-li-config › data."config.json" › (json)'
HAPROXY = "main-instance/03-haproxy/deployment.yaml"
HAPROXY_PLAIN = "main-instance/03-haproxy/haproxy.cfg"
ISSUERS = "infrastructure/04-networking/cert-manager-install.yaml"
SYGNAL = "main-instance/07-sygnal/deployment.yaml › Secret/sygnal-secrets › stringData"
PROMETHEUS_VALUES = "values/prometheus-stack-values.yaml"

INGRESS_MATRIX = (f"{HAPROXY} › Ingress/matrix-client", f"{HAPROXY} › Ingress/matrix-federation")
INGRESS_ELEMENT = "main-instance/02-element-web/deployment.yaml › Ingress/element-web"
INGRESS_LI = f"{LI_DEPLOY} › Ingress/synapse-li"
INGRESS_LI_ELEMENT = "li-instance/02-element-web-li/deployment.yaml › Ingress/element-web-li"
INGRESS_LI_ADMIN = f"{ADMIN_LI} › Ingress/synapse-admin-li"
INGRESSES = (*INGRESS_MATRIX, INGRESS_ELEMENT, INGRESS_LI, INGRESS_LI_ELEMENT, INGRESS_LI_ADMIN)
LI_INGRESSES = (INGRESS_LI, INGRESS_LI_ELEMENT, INGRESS_LI_ADMIN)

# The homeserver configs (the embedded ones by their value, the plain ones by their file), main first.
HOMESERVER_CONFIGS = (MAIN_HS_VALUE, PLAIN_HS, LI_HS_VALUE, LI_PLAIN_HS)
PLAIN_COPIES = (PLAIN_HS, LI_PLAIN_HS, ELEMENT_PLAIN, HAPROXY_PLAIN)


def L(address: str, **kw) -> Location:
    """A location; one in a plain copy no workload mounts is optional."""
    kw.setdefault("optional", address.split(" › ")[0] in PLAIN_COPIES)
    return Location(address, **kw)


def env(prefix: str, key: str, config: str) -> Location:
    """A key of the Secret a homeserver pod loads whole (envFrom) and its config reads as ${KEY}."""
    return L(f"{prefix}.{key}", meaning=f"env:{config}")


def _ingress_hosts(ingress: str) -> tuple[Location, ...]:
    return (L(f"{ingress} › spec.tls[*].hosts[*]"), L(f"{ingress} › spec.rules[*].host"))


def _json(prefix: str, *paths: str) -> tuple[Location, ...]:
    return tuple(L(f"{prefix} {p}") for p in paths)


_SERVER_NAME_JSON = ('default_server_config."m.homeserver".server_name', "default_server_name",
                     'room_directory.servers[=@default_server_config."m.homeserver".server_name]')
_BASE_URL = 'default_server_config."m.homeserver".base_url › (url) host'
_PRESENCE = 'enable_presence_by_hs_url.{@default_server_config."m.homeserver".base_url} › (url) host'


def _pw(id_: str, tokens, *locations: Location, docs: Docs, rotation: Rotation = Rotation(),
        distinct_from: str | None = None, what: str = "", limits: Limits = Limits()) -> Record:
    return Record(id_, SECRET, tuple(locations), tuple(tokens), form="password", docs=docs, rotation=rotation,
                  distinct_from=distinct_from, what=what, limits=limits)


_MAIN_RESTART = "synapse-main, workers"
_LI_NOTE = "LI users log in again (macaroon)"

SECRET_RECORDS: tuple[Record, ...] = (
    Record("synapse.signing_key", SECRET,
           (L(f'{MAIN_SECRETS}."signing.key"', meaning=f"signing-key:{MAIN_HS_VALUE}"),
            L(f'{LI_SECRETS}."signing.key"', meaning=f"signing-key:{LI_HS_VALUE}")),
           ("CHANGEME_GENERATE_USING_SYNAPSE_GENERATE_COMMAND", "CHANGEME_COPY_FROM_MAIN_SIGNING_KEY"),
           form="signing_key", block=True, what="the homeserver's federation signing key (main and LI share it)",
           group_rule="li-signing-key", value_rule="signing-key",
           rotation=Rotation(in_all=False, include_flag="include-signing-key", retire=True, notes=(
               "remote servers fetch the new key from /_matrix/key/v2/server; the old verify key stays published "
               "under old_signing_keys",),
               keep_old=tuple(L(f"{h} › (yaml) old_signing_keys" if "›" in h else f"{h} › old_signing_keys",
                                write=OLD_KEYS, after="signing_key_path") for h in HOMESERVER_CONFIGS)),
           docs=Docs("federation signatures of main **and** LI (one key, rule 1)",
                     "impersonation of the server to every federated server", "synapse-main, synapse-li, workers",
                     "none; the old verify key is published under `old_signing_keys` (see below)", "signing_keys")),
    _pw("postgres.synapse_password", ("CHANGEME_SECURE_DB_PASSWORD", "CHANGEME_DB_PASSWORD"),
        env(MAIN_SECRETS, "DB_PASSWORD", MAIN_HS_VALUE), L(f"{DB_CREDS}.password"),
        L(f"{PLAIN_HS} › database.args.password"), what="the main Synapse database role",
        rotation=Rotation(db_role=("matrix-postgresql", "synapse")),
        docs=Docs("main database role `synapse`", "full read/write of the main database", _MAIN_RESTART,
                  "`ALTER ROLE synapse` on matrix-postgresql **before** the restarts")),
    _pw("postgres.li_password", ("CHANGEME_SECURE_LI_DB_PASSWORD",),
        env(LI_SECRETS, "DB_PASSWORD", LI_HS_VALUE), L(f"{SYNC_SECRETS}.LI_DB_PASSWORD"),
        what="the LI Synapse database role", rotation=Rotation(db_role=("matrix-postgresql-li", "synapse")),
        docs=Docs("LI database role", "LI database; the sync job", "synapse-li, sync Job/CronJob (next run)",
                  "`ALTER ROLE synapse` on matrix-postgresql-li")),
    _pw("postgres.replication_password", ("CHANGEME_REPLICATION_PASSWORD",),
        L(f'{SYNC_CONFIG}."setup-replication.sql" › (sql) CREATE USER replication_user WITH REPLICATION PASSWORD'),
        L(f'{SYNC_CONFIG}."setup-subscription.sql" › (sql) CONNECTION › (conninfo) password'),
        L(f"{SYNC_SECRETS}.MAIN_DB_PASSWORD"), what="the logical-replication role main → LI",
        rotation=Rotation(db_role=("matrix-postgresql", "replication_user"), notes=(
            "the LI side reads the new password at the subscription's next connection: run "
            "`ALTER SUBSCRIPTION … CONNECTION '…'` on matrix-postgresql-li with the new password",)),
        docs=Docs("`replication_user` (logical replication main → LI)", "read of the replicated main tables",
                  "sync Job/CronJob (next run)",
                  "`ALTER ROLE replication_user` on matrix-postgresql; `ALTER SUBSCRIPTION … CONNECTION` on the "
                  "LI side")),
    _pw("postgres.key_vault_password", ("CHANGEME_SECURE_KEY_VAULT_DB_PASSWORD",), L(f"{KV_SECRETS}.DB_PASSWORD"),
        what="the key vault's database role", rotation=Rotation(db_role=("matrix-postgresql", "key_vault")),
        docs=Docs("key vault database role", "stored recovery keys (encrypted)", "key-vault",
                  "`ALTER ROLE key_vault` on matrix-postgresql")),
    _pw("redis.password", ("CHANGE_ME_GENERATE_SECURE_PASSWORD", "CHANGEME_SECURE_REDIS_PASSWORD",
                           "CHANGEME_REDIS_PASSWORD"),
        L("infrastructure/02-redis/redis-secret.yaml › Secret/redis-password › stringData.password"),
        env(MAIN_SECRETS, "REDIS_PASSWORD", MAIN_HS_VALUE), env(LI_SECRETS, "REDIS_PASSWORD", LI_HS_VALUE),
        L(f"{PLAIN_HS} › redis.password"), what="Redis (Synapse replication pub/sub)",
        limits=Limits("/&\\\"'`$" + LINE_BREAKS, "the Redis init container substitutes it into redis.conf with sed"),
        docs=Docs("Redis (replication pub/sub)", "injecting replication traffic",
                  "redis first, then synapse-main, synapse-li, workers", "none")),
    _pw("minio.root_password", ("CHANGE_ME_GENERATE_SECURE_PASSWORD_32_CHARS",),
        L(f'{MINIO} › Secret/minio-config › stringData."config.env" › (shell) MINIO_ROOT_PASSWORD'),
        what="the MinIO root user",
        rotation=Rotation(notes=("MinIO reads the root password only at start: its pool restarts below come "
                                 "before its clients",)),
        docs=Docs("MinIO root user", "every bucket", "the MinIO tenant, one pod at a time", "none")),
    _pw("minio.s3_secret_key", ("CHANGE_ME_GENERATE_SECURE_S3_PASSWORD", "CHANGEME_SECURE_S3_PASSWORD",
                                "CHANGEME_S3_PASSWORD"),
        L(f"{MINIO} › Secret/minio-credentials › stringData.CONSOLE_SECRET_KEY"),
        L(f'{MINIO} › Secret/minio-credentials › stringData."secret-key"'),
        env(MAIN_SECRETS, "S3_SECRET_KEY", MAIN_HS_VALUE), L(f'{S3_CREDS}."secret-key"'),
        env(LI_SECRETS, "S3_SECRET_KEY", LI_HS_VALUE), L(f"{SYNC_SECRETS}.S3_SECRET_KEY"),
        L(f"{PLAIN_HS} › media_storage_providers[0].config.secret_access_key"),
        what="the S3 secret key for media and backups",
        docs=Docs("S3 user for media, LI media, backups", "all media and database backups",
                  "synapse-main, synapse-li, workers, sync CronJob",
                  "update the MinIO user's secret (`mc admin user add` with the same access key) first")),
    _pw("synapse.replication_secret", ("CHANGEME_SECURE_REPLICATION_SECRET", "CHANGEME_REPLICATION_SECRET"),
        env(MAIN_SECRETS, "REPLICATION_SECRET", MAIN_HS_VALUE), L(f"{PLAIN_HS} › worker_replication_secret"),
        what="Synapse main ↔ worker replication",
        docs=Docs("main ↔ worker HTTP replication", "forging worker requests", _MAIN_RESTART, "none")),
    _pw("synapse.macaroon_secret", ("CHANGEME_SECURE_MACAROON_SECRET", "CHANGEME_MACAROON"),
        env(MAIN_SECRETS, "MACAROON_SECRET", MAIN_HS_VALUE), L(f"{PLAIN_HS} › macaroon_secret_key"),
        what="access-token macaroons",
        rotation=Rotation(notes=("every access token issued by the main instance becomes invalid: users log in "
                                 "again",)),
        docs=Docs("access tokens (main)", "forging access tokens", _MAIN_RESTART, "users log in again")),
    _pw("synapse.registration_secret", ("CHANGEME_SECURE_REGISTRATION_SECRET", "CHANGEME_REGISTRATION"),
        env(MAIN_SECRETS, "REGISTRATION_SECRET", MAIN_HS_VALUE), L(f"{PLAIN_HS} › registration_shared_secret"),
        what="shared-secret user registration",
        docs=Docs("shared-secret registration (main)", "creating admin users", _MAIN_RESTART, "none")),
    _pw("synapse.form_secret", ("CHANGEME_SECURE_FORM_SECRET", "CHANGEME_FORM"),
        env(MAIN_SECRETS, "FORM_SECRET", MAIN_HS_VALUE), L(f"{PLAIN_HS} › form_secret"), what="consent/CAPTCHA forms",
        docs=Docs("consent forms (main)", "forging form submissions", _MAIN_RESTART, "none")),
    _pw("li.macaroon_secret", ("CHANGEME_SECURE_LI_MACAROON_SECRET",),
        env(LI_SECRETS, "MACAROON_SECRET", LI_HS_VALUE), distinct_from="synapse.macaroon_secret",
        what="LI access-token macaroons",
        rotation=Rotation(notes=("every access token issued by the LI instance becomes invalid",)),
        docs=Docs("access tokens (LI; distinct from main)", "the LI instance", "synapse-li", _LI_NOTE)),
    _pw("li.registration_secret", ("CHANGEME_SECURE_LI_REGISTRATION_SECRET",),
        env(LI_SECRETS, "REGISTRATION_SECRET", LI_HS_VALUE), distinct_from="synapse.registration_secret",
        what="LI shared-secret registration",
        docs=Docs("shared-secret registration (LI; distinct from main)", "the LI instance", "synapse-li", "none")),
    _pw("li.form_secret", ("CHANGEME_SECURE_LI_FORM_SECRET",), env(LI_SECRETS, "FORM_SECRET", LI_HS_VALUE),
        distinct_from="synapse.form_secret", what="LI forms",
        docs=Docs("consent forms (LI; distinct from main)", "the LI instance", "synapse-li", "none")),
    _pw("turn.shared_secret", ("CHANGEME_SECURE_TURN_SECRET", "CHANGEME_TURN_SECRET"),
        env(MAIN_SECRETS, "TURN_SECRET", MAIN_HS_VALUE), L(f"{COTURN_SECRETS}.TURN_SHARED_SECRET"),
        L(f"{PLAIN_HS} › turn_shared_secret"), what="time-limited TURN credentials handed out by Synapse",
        docs=Docs("time-limited TURN credentials Synapse hands out", "using the TURN relay",
                  "synapse-main, workers, coturn", "none; calls in progress keep their allocation")),
    _pw("turn.static_password", ("CHANGEME_TURN_PASSWORD",),
        L(f"{COTURN_SECRETS}.TURN_PASSWORD"), L(f"{LIVEKIT} › livekit.turn.servers[*].credential"),
        what="the static TURN user LiveKit uses",
        docs=Docs("the static TURN user LiveKit uses", "using the TURN relay", "coturn",
                  "`helm upgrade` LiveKit with values/livekit-values.yaml")),
    _pw("key_vault.api_key", ("CHANGEME_SECURE_KEY_VAULT_API_KEY", "CHANGEME_KEY_VAULT_API_KEY"),
        env(MAIN_SECRETS, "KEY_VAULT_API_KEY", MAIN_HS_VALUE), L(f"{KV_SECRETS}.API_KEY"),
        L(f"{PLAIN_HS} › modules[0].config.api_key"), what="Synapse → key vault API calls",
        docs=Docs("Synapse → key vault API", "reading and writing recovery keys", "synapse-main, workers, key-vault",
                  "none")),
    Record("key_vault.django_secret_key", SECRET, (L(f"{KV_SECRETS}.DJANGO_SECRET_KEY"),),
           ("CHANGEME_DJANGO_SECRET_KEY_GENERATE_SECURE_RANDOM_STRING",), form="django_key",
           what="the key vault's Django sessions",
           docs=Docs("key vault sessions and signed data", "forging sessions", "key-vault", "none")),
    Record("key_vault.rsa_private_key", SECRET, (L(f"{KV_SECRETS}.RSA_PRIVATE_KEY"),),
           ("CHANGEME_GENERATE_RSA_2048_BIT_PRIVATE_KEY",), form="rsa_key", form_params=(("bits", "key_vault.rsa_bits"),),
           block=True, what="encryption of stored recovery keys",
           rotation=Rotation(in_all=False, include_flag="include-rsa-key", notes=(
               "recovery keys stored with the old RSA key can no longer be decrypted: re-encrypt them with the old "
               "key before rolling out, or accept their loss",)),
           docs=Docs("encryption of stored recovery keys", "decrypting every stored recovery key", "key-vault",
                     "keys stored under the old RSA key become unreadable: re-encrypt them first or accept the loss "
                     "(this is why `--all` skips it)")),
    Record("li.admin_password", SECRET, (), form="password", answers_key="li.admin_password",
           what="the LI admin UI basic-auth password (kept only in the secrets file)",
           limits=Limits(LINE_BREAKS, "a basic-auth password is one line", 72,
                         "bcrypt (the htpasswd line) reads at most 72 bytes"),
           rotation=Rotation(notes=("the LI admin UI asks for the new password at the next login",)),
           docs=Docs("basic auth of the LI admin UI (with its htpasswd line)", "LI admin access (with the allowlist)",
                     "ingress-nginx reads the Secret itself", "none", "li")),
    Record("li.admin_htpasswd", SECRET, (L(f"{ADMIN_LI} › Secret/synapse-admin-auth › stringData.auth"),),
           ("CHANGEME_GENERATE_HTPASSWD",), derive="htpasswd_line", derived_from=("li.admin_user", "li.admin_password"),
           block=True, what="the LI admin UI basic-auth line (from li.admin_password)",
           rotation=Rotation(rotatable=False, via="li.admin_password"),
           docs=Docs(section="li")),
    Record("livekit.api_key", SECRET, (L(f"{LIVEKIT} › livekit.apiKey"),), ("CHANGE_TO_GENERATED_API_KEY",),
           form="livekit_key", what="LiveKit API key",
           docs=Docs("LiveKit API", "creating rooms, joining calls", "—", "`helm upgrade` LiveKit", "external",
                     "livekit")),
    _pw("livekit.api_secret", ("CHANGE_TO_GENERATED_API_SECRET",), L(f"{LIVEKIT} › livekit.apiSecret"),
        what="LiveKit API secret",
        docs=Docs("LiveKit API", "creating rooms, joining calls", "—", "`helm upgrade` LiveKit", "external",
                  "livekit")),
    _pw("grafana.admin_password", ("CHANGE_TO_SECURE_PASSWORD",), L(f"{PROMETHEUS_VALUES} › grafana.adminPassword"),
        what="the Grafana admin user",
        docs=Docs("Grafana admin", "dashboards, data sources", "—", "`helm upgrade` kube-prometheus-stack")),
    # Operator-provided values (CATALOG §4): never generated, never rotated.
    Record("push.apns.key", SECRET, (L(f'{SYGNAL}."apns-key.p8"'),), ("CHANGEME_APNS_PRIVATE_KEY",),
           answers_key="push.apns.key_file", provided=True, block=True, component="push",
           rotation=Rotation(rotatable=False), docs=Docs(section="external", topic="push")),
    Record("push.apns.key_id", SECRET, (L(f"{SYGNAL}.apns-key-id"),), ("CHANGEME_APNS_KEY_ID",),
           answers_key="push.apns.key_id", provided=True, component="push", rotation=Rotation(rotatable=False),
           docs=Docs(section="external", topic="push")),
    Record("push.apns.team_id", SECRET, (L(f"{SYGNAL}.apns-team-id"),), ("CHANGEME_APNS_TEAM_ID",),
           answers_key="push.apns.team_id", provided=True, component="push", rotation=Rotation(rotatable=False),
           docs=Docs(section="external", topic="push")),
    Record("push.apns.topic", SECRET, (L(f"{SYGNAL}.apns-topic"),), (), answers_key="push.apns.topic", provided=True,
           component="push", rotation=Rotation(rotatable=False), docs=Docs(section="external", topic="push")),
    Record("push.fcm.service_account", SECRET, (L(f'{SYGNAL}."fcm-service-account.json"'),),
           ("CHANGEME_FCM_PROJECT_ID", "CHANGEME_FCM_PRIVATE_KEY_ID", "CHANGEME_FCM_PRIVATE_KEY",
            "CHANGEME_FCM_CLIENT_EMAIL", "CHANGEME_FCM_CLIENT_ID"),
           answers_key="push.fcm.service_account_file", provided=True, block=True, component="push",
           rotation=Rotation(rotatable=False), docs=Docs(section="external", topic="push")),
    Record("smtp.password", SECRET, (L(f"{MAIN_SECRETS}.SMTP_PASSWORD", write=ADD, meaning=f"env:{MAIN_HS_VALUE}"),),
           answers_key="smtp.password", provided=True, component="smtp", rotation=Rotation(rotatable=False),
           docs=Docs(section="external", topic="smtp")),
)


def _issuer_annotation(ingress: str) -> Location:
    return L(f'{ingress} › metadata.annotations."cert-manager.io/cluster-issuer"', write=ISSUER)


def _annotation(ingress: str, key: str) -> Location:
    return L(f'{ingress} › metadata.annotations."{key}"', write=ADD)


ALLOWLIST_KEY = "nginx.ingress.kubernetes.io/whitelist-source-range"
SELFSIGNED_DOC = ("apiVersion: cert-manager.io/v1\nkind: ClusterIssuer\nmetadata:\n  name: selfsigned\n"
                  "spec:\n  selfSigned: {}\n")
TURN_USERNAME_SOURCE = f"{COTURN_SECRETS}.TURN_USERNAME"

SETTING_RECORDS: tuple[Record, ...] = (
    Record("server_name", SETTING, (
        L(f"{MAIN_HS} server_name"), L(f"{PLAIN_HS} › server_name"), L(f"{LI_HS} server_name"),
        L(f"{LI_PLAIN_HS} › server_name"), *_json(ELEMENT_MAIN, *_SERVER_NAME_JSON),
        *_json(ELEMENT_PLAIN + " ›", *_SERVER_NAME_JSON), *_json(ELEMENT_LI, *_SERVER_NAME_JSON)),
        answers_key="server_name", defaults=("matrix.example.com",), immutable=True, group_rule="li-server-name",
        docs=Docs(section="domains")),
    Record("domains.matrix", SETTING, (
        L(f"{MAIN_HS} public_baseurl › (url) host"), L(f"{PLAIN_HS} › public_baseurl › (url) host"),
        *_ingress_hosts(INGRESS_MATRIX[0]), *_ingress_hosts(INGRESS_MATRIX[1]),
        L(f'{HAPROXY} › ConfigMap/haproxy-config › data."haproxy.cfg" › (haproxy) Host'),
        L(f"{HAPROXY_PLAIN} › (haproxy) Host"),
        *_json(ELEMENT_MAIN, _BASE_URL, _PRESENCE), *_json(ELEMENT_PLAIN + " ›", _BASE_URL, _PRESENCE)),
        answers_key="domains.matrix", defaults=("matrix.example.com",), docs=Docs(section="domains")),
    Record("domains.element", SETTING, (
        L(f"{MAIN_HS} web_client_location › (url) host"), L(f"{PLAIN_HS} › web_client_location › (url) host"),
        *_ingress_hosts(INGRESS_ELEMENT)),
        answers_key="domains.element", defaults=("element.matrix.example.com",), docs=Docs(section="domains")),
    Record("domains.turn", SETTING, (
        L(f"{MAIN_HS} turn_uris[*] › (url) host"), L(f"{PLAIN_HS} › turn_uris[*] › (url) host"),
        L(f"{COTURN_CONF} › (conf) realm"), L(f"{COTURN_CONF} › (conf) server-name"),
        L(f"{COTURN} › Certificate/coturn-tls › spec.dnsNames[*]")),
        answers_key="domains.turn", defaults=("turn.matrix.example.com",), docs=Docs(section="domains")),
    Record("domains.li_matrix", SETTING, (
        L(f"{LI_HS} public_baseurl › (url) host"), L(f"{LI_PLAIN_HS} › public_baseurl › (url) host"),
        *_ingress_hosts(INGRESS_LI), *_json(ELEMENT_LI, _BASE_URL, "permalink_prefix › (url) host", _PRESENCE),
        L(f"{ADMIN_CONFIG} restrictBaseUrl › (url) host", optional=True),
        L(f"{ADMIN_CONFIG} restrictBaseUrl[*] › (url) host", optional=True)),
        answers_key="domains.li_matrix", defaults=("matrix-li.example.com",), docs=Docs(section="domains")),
    Record("domains.li_element", SETTING, _ingress_hosts(INGRESS_LI_ELEMENT), answers_key="domains.li_element",
           defaults=("element-li.matrix.example.com",), docs=Docs(section="domains")),
    Record("domains.li_admin", SETTING, _ingress_hosts(INGRESS_LI_ADMIN), answers_key="domains.li_admin",
           defaults=("admin-li.matrix.example.com",), docs=Docs(section="domains")),
    Record("domains.livekit", SETTING, (
        L(f"{LIVEKIT} › ingress.hosts[*].host"), L(f"{LIVEKIT} › ingress.tls[*].hosts[*]"),
        L(f"{LIVEKIT} › livekit.domain")), ("CHANGE_TO_YOUR_DOMAIN",), answers_key="domains.livekit",
        docs=Docs(section="domains")),
    Record("tls.acme_email", SETTING, (
        L(f"{ISSUERS} › ClusterIssuer/letsencrypt-prod › spec.acme.email"),
        L(f"{ISSUERS} › ClusterIssuer/letsencrypt-staging › spec.acme.email")),
        answers_key="tls.acme_email", defaults=("admin@example.com",), docs=Docs(section="tls")),
    Record("tls.issuer", SETTING, (
        *(_issuer_annotation(i) for i in INGRESSES),
        L(f'{LIVEKIT} › ingress.annotations."cert-manager.io/cluster-issuer"', write=ISSUER),
        L(f"{COTURN} › Certificate/coturn-tls › spec.issuerRef.name")),
        answers_key="tls.mode", derive="issuer", defaults=("letsencrypt-prod",), docs=Docs(section="tls"),
        what="the cert-manager issuer (none in manual mode: the annotations are removed)"),
    Record("tls.secret_name", SETTING, tuple(L(f"{i} › spec.tls[*].secretName") for i in INGRESSES),
           answers_key="tls.secret_name", docs=Docs(section="tls"), what="manual TLS: the Secret every Ingress uses"),
    Record("tls.selfsigned_issuer", SETTING, (L(ISSUERS, write=DOCUMENT),), answers_key="tls.mode",
           derive="selfsigned_document", docs=Docs(section="tls"),
           what="the selfsigned ClusterIssuer, appended in selfsigned mode"),
    Record("storage.class", SETTING, tuple(L(a) for a in (
        "values/loki-values.yaml › loki.persistence.storageClassName",
        f"{PROMETHEUS_VALUES} › prometheus.prometheusSpec.storageSpec.volumeClaimTemplate.spec.storageClassName",
        f"{PROMETHEUS_VALUES} › grafana.persistence.storageClassName",
        "values/redis-livekit-values.yaml › master.persistence.storageClass",
        "values/redis-livekit-values.yaml › replica.persistence.storageClass",
        "values/redis-synapse-values.yaml › master.persistence.storageClass",
        "values/redis-synapse-values.yaml › replica.persistence.storageClass",
        "infrastructure/01-postgresql/main-cluster.yaml › Cluster/matrix-postgresql › spec.storage.storageClass",
        "infrastructure/01-postgresql/li-cluster.yaml › Cluster/matrix-postgresql-li › spec.storage.storageClass",
        "infrastructure/03-minio/tenant.yaml › Tenant/matrix-minio › spec.pools[*].volumeClaimTemplate.spec.storageClassName",
        "infrastructure/02-redis/redis-statefulset.yaml › StatefulSet/redis › spec.volumeClaimTemplates[*].spec.storageClassName",
        "main-instance/01-synapse/main-statefulset.yaml › StatefulSet/synapse-main › spec.volumeClaimTemplates[*].spec.storageClassName",
        f"{LI_DEPLOY} › StatefulSet/synapse-li › spec.volumeClaimTemplates[*].spec.storageClassName")),
        ("CHANGE_TO_YOUR_STORAGE_CLASS",), answers_key="storage.class", defaults=("standard", "local-path", ""),
        docs=Docs(section="storage")),
    Record("minio.s3_access_key", SETTING, (
        env(MAIN_SECRETS, "S3_ACCESS_KEY", MAIN_HS_VALUE), env(LI_SECRETS, "S3_ACCESS_KEY", LI_HS_VALUE),
        L(f"{SYNC_SECRETS}.S3_ACCESS_KEY"), L(f"{MINIO} › Secret/minio-credentials › stringData.CONSOLE_ACCESS_KEY"),
        L(f'{MINIO} › Secret/minio-credentials › stringData."access-key"'), L(f'{S3_CREDS}."access-key"'),
        L(f"{PLAIN_HS} › media_storage_providers[0].config.access_key_id")),
        answers_key="minio.s3_access_key", defaults=("synapse-s3-user",), group_rule="equality-group",
        docs=Docs(section="secrets")),
    Record("turn.username", SETTING, (L(f"{LIVEKIT} › livekit.turn.servers[*].username"),),
           derive="read", derived_from=(TURN_USERNAME_SOURCE,), defaults=("matrix",),
           docs=Docs(section="external", topic="turn"),
           what="the TURN user name LiveKit uses (coturn's TURN_USERNAME)"),
    Record("turn.external_ip", SETTING, (L(f"{COTURN_CONF} › (conf) external-ip", write=CONF_LINE),),
           answers_key="turn.external_ip", docs=Docs(section="external", topic="turn")),
    Record("li.allowed_cidrs", SETTING, tuple(_annotation(i, ALLOWLIST_KEY) for i in LI_INGRESSES),
           answers_key="li.allowed_cidrs", derive="comma_list", value_rule="li-allowlist",
           docs=Docs(section="li", topic="allowlist"),
           what="the LI ingresses' IP allowlist"),
    Record("li.admin_auth_type", SETTING, (_annotation(INGRESS_LI_ADMIN, "nginx.ingress.kubernetes.io/auth-type"),),
           derive="constant:basic", docs=Docs(section="li")),
    Record("li.admin_auth_secret", SETTING,
           (_annotation(INGRESS_LI_ADMIN, "nginx.ingress.kubernetes.io/auth-secret"),),
           derive="object-name", derived_from=(f"{ADMIN_LI} › Secret/synapse-admin-auth",), docs=Docs(section="li"),
           what="the Secret holding the htpasswd line, by the name it has in this tree"),
    Record("li.auth_realm", SETTING, (_annotation(INGRESS_LI_ADMIN, "nginx.ingress.kubernetes.io/auth-realm"),),
           answers_key="li.auth_realm", defaults=("LI administration",), derive="default_when_absent",
           docs=Docs(section="li")),
    Record("smtp.section", SETTING, (L(f"{MAIN_HS} email", write=SECTION, example="email:", envsubst=True),
                                     L(f"{PLAIN_HS} › email", write=SECTION, example="email:")),
           answers_key="smtp", derive="smtp_section", component="smtp", docs=Docs(section="external", topic="smtp"),
           what="the homeserver's email section"),
)

RECORDS: tuple[Record, ...] = SECRET_RECORDS + SETTING_RECORDS

# The homeserver's email section, from the answers' smtp: section; section key -> the answers key it comes from.
SMTP_SECTION_KEYS = {"smtp_host": "host", "smtp_port": "port", "require_transport_security":
                     "require_transport_security", "notif_from": "from", "smtp_user": "user", "smtp_pass": "password"}


def smtp_section(smtp: dict | None) -> dict | None:
    """The email section Synapse reads (None while SMTP is off); the password is the secret smtp.password."""
    if not smtp or not smtp.get("enabled"):
        return None
    out = {"smtp_host": smtp["host"], "smtp_port": smtp["port"],
           "require_transport_security": smtp["require_transport_security"], "notif_from": smtp["from"],
           "enable_notifs": True}
    if smtp.get("user"):
        out["smtp_user"] = smtp["user"]
    if smtp.get("password") is not None:
        out["smtp_pass"] = SecretRef("smtp.password")
    return out

COMPONENTS: tuple[Component, ...] = (
    Component("push", ("main-instance/07-sygnal/deployment.yaml › Secret/sygnal-secrets",
                       "main-instance/07-sygnal/deployment.yaml › Deployment/sygnal"), switch="push.enabled"),
    Component("smtp", (MAIN_HS_VALUE,), switch="smtp.enabled"),
    Component("livekit", (LIVEKIT,)),
    Component("monitoring", (PROMETHEUS_VALUES,)),
    Component("loki", ("values/loki-values.yaml",)),
    Component("redis-livekit", ("values/redis-livekit-values.yaml",)),
    Component("redis-synapse", ("values/redis-synapse-values.yaml",)),
    Component("key-vault", ("main-instance/08-key-vault/deployment.yaml › Secret/key-vault-secrets",
                            "main-instance/08-key-vault/deployment.yaml › Deployment/key-vault")),
    Component("sync-system", (f"{SYNC} › Secret/sync-system-secrets", f"{SYNC} › ConfigMap/sync-system-config")),
    Component("coturn", (f"{COTURN} › Secret/coturn-secrets", f"{COTURN} › ConfigMap/coturn-config")),
    Component("admin-li", (f"{ADMIN_LI} › Secret/synapse-admin-auth", INGRESS_LI_ADMIN)),
)


def well_known_documents(host: str) -> dict[str, dict]:
    """/.well-known/matrix/{server,client}: the documents that delegate a server name to the Matrix host."""
    return {"server": {"m.server": f"{host}:443"}, "client": {"m.homeserver": {"base_url": f"https://{host}"}}}

