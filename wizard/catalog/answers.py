"""The answers file's schema: every key once, as data (PRODUCT.md, "The answers file").

One entry per key, in the order the file is written. From these entries come the loader's validation
(wizard.answers: every problem of a file in one run, each naming its dotted key), the Answers object and
its `get`, the answers-file writer and answers.example.yaml (wizard.answers_file), and guided setup's
questions (wizard.ui.guided). A key names its type; wizard.answers has one small parser per type, as
wizard.generate has one generator per secret form. Conditions (`When`) and derived defaults (`Derived`)
name only keys that come earlier in the schema.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SCHEMA_VERSION = 1
VERSION_KEY = "version"  # checked first: another schema version's keys mean something else
DEPLOYMENT_KEY = "deployment"  # the tree: `--deployment` wins over it

# ---------------------------------------------------------------- value types (parsers: wizard.answers)
TEXT = "text"                  # one line of text (a number is taken as its text)
BOOL = "bool"                  # true or false
INT = "int"                    # a whole number, one of `choices`
PORT = "port"                  # 1-65535
DOMAIN = "domain"              # a DNS name
HOST = "host"                  # a DNS name or an IP address
IP = "ip"                      # an IPv4 or IPv6 address, without a zone id
EMAIL = "email"                # an e-mail address
SENDER = "sender"              # an e-mail address, or `Name <address>`
CIDRS = "cidrs"                # a list of address blocks (or one comma-separated line)
ENUM = "enum"                  # one of `choices`
NAME = "name"                  # text matching `pattern` (a Kubernetes name, a user name, an access key)
PATH = "path"                  # a path, relative to the answers file's folder
REFERENCE = "reference"        # env:NAME or file:PATH: an operator secret, read when loading, never in clear
FILE = "file"                  # a path whose content is the value (checked by `content`)
FLAGS = "flags"                # a mapping: checklist item id -> true/false
PLACEHOLDERS = "placeholders"  # a mapping: TOKEN[@FILE] -> text | env:NAME | file:PATH | {generate: FORM}
LOCATIONS = "locations"        # a mapping: catalog address -> "FILE › Kind/name" (or a file)
SECTION = "section"            # a mapping of the keys below it

MAPPINGS = (FLAGS, PLACEHOLDERS, LOCATIONS)  # free-form keys below them, each entry checked by the type

# ---------------------------------------------------------------- how guided setup asks
ASK_TEXT, ASK_CONFIRM, ASK_SELECT = "text", "confirm", "select"
TABLE = "table"    # a section whose keys are proposed together as a table, then asked one by one if refused
OPT_IN = "opt-in"  # a yes/no question first (`confirm`); the key is asked only on yes, else left out
UNSETTLED = "unsettled"  # asked per leftover of the plan (unknown tokens, ambiguous locations), not in a section

K8S_NAME = r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?"
TLS_MODES = ("letsencrypt-prod", "letsencrypt-staging", "selfsigned", "manual")
EXAMPLE_SERVER = "matrix.example" + ".org"  # the example file's server name (its hosts are derived from it)


@dataclass(frozen=True)
class When:
    """A condition on values resolved earlier: `key` equals `equals`, or (with `differs_from`) differs
    from that other key's value."""

    key: str
    equals: Any = True
    differs_from: str | None = None

    def holds(self, get) -> bool:
        """`get`: dotted key -> resolved value."""
        if self.differs_from is not None:
            return get(self.key) != get(self.differs_from)
        return get(self.key) == self.equals

    @property
    def words(self) -> str:
        if self.differs_from is not None:
            return f"when {self.key} differs from {self.differs_from}"
        value = {True: "true", False: "false"}.get(self.equals, self.equals) if isinstance(self.equals, bool) \
            else self.equals
        return f"when {self.key} is {value}"


@dataclass(frozen=True)
class Derived:
    """A value computed from others: `rule` is a derivation of wizard.answers (`host`: ARG.<base>,
    `mailbox`: ARG@<base>, where <base> is the server name without a leading `matrix.` label; `beside`:
    the answers file's name with ARG in place of its .yaml suffix)."""

    rule: str
    arg: str = ""
    sources: tuple[str, ...] = ()
    words: str = ""  # the derivation in the operator's words


@dataclass(frozen=True)
class Ask:
    """Guided setup's question for a key. Templates may name resolved values ({server_name},
    {domains.matrix}) and {label}, {answers_dir}, {answers_file}, {token}, {where}, {address}, {value}."""

    text: str
    help: str = ""
    kind: str = ASK_TEXT  # text | confirm | select (bool keys: confirm; keys with choices: select)
    labels: tuple[str, ...] = ()  # select: one label per choice
    suggest: Any = None  # the proposed answer when the file has none (a value or a Derived); else the default
    when: When | None = None  # asked only when this holds (otherwise left out of the answers)
    flow: str | None = None  # TABLE, OPT_IN, UNSETTLED: more than one question
    confirm: str = ""  # OPT_IN: the yes/no question; TABLE: the question that accepts the table
    confirm_help: str = ""
    declined: str = ""  # OPT_IN: what the operator must do instead, said on no
    word: str = ""  # a word that stands for the empty value ([]), typed explicitly ("open")
    insist: str = ""  # on a terminal an empty answer asks again with this reason (the word is the choice)
    word_means: str = ""  # said at the end while the value is the word's
    check: str | None = None  # a check of typed answers only (wizard.answers: `outside-tree`)
    after: str = ""  # a step for the operator's "next" list while the key is set


@dataclass(frozen=True)
class Key:
    key: str  # dotted
    type: str
    comment: str = ""  # the answers file's comment ({server_name} is replaced); "\n" continues it
    default: Any = None  # a value, or a Derived
    choices: tuple = ()  # ENUM, INT
    pattern: str = ""  # NAME
    what: str = ""  # what a valid value is called in messages ("StorageClass name")
    content: str | None = None  # FILE: what the file must hold (`pem-private-key`, `json`)
    required: bool = False
    when: When | None = None  # used only when this holds; otherwise its value is None (off)
    required_when: bool = False  # required whenever `when` holds
    only_when: bool = False  # giving it while `when` does not hold is an error
    switch: bool = False  # turns its section on and off
    secret: bool = False  # holds a reference (env:/file:), never a value in clear
    example: Any = None  # shown commented out when absent (a value or a Derived)
    in_example: bool = False  # set (not commented out) in answers.example.yaml
    belongs_to_file: bool = False  # a fact about this answers file: not carried over by `--from FILE`
    label: str = ""  # the setting in the operator's words (tables, summary)
    section: str | None = None  # the checklist section that asks it
    ask: Ask | None = None
    attr: str | None = None  # the Answers attribute holding the resolved value ("group.field" in a group)
    raw_attr: str | None = None  # the Answers attribute holding the value as written (reference, path)

    @property
    def parent(self) -> str | None:
        return self.key.rpartition(".")[0] or None

    @property
    def name(self) -> str:
        return self.key.rpartition(".")[2]


def _host(label: str) -> Derived:
    return Derived("host", label, ("server_name",), f"{label}.<base>")


def _domain(name: str, label: str, comment: str, host: str) -> Key:
    return Key(f"domains.{name}", DOMAIN, comment, default=_host(host), what="domain name", in_example=True,
               label=label, section="domains", ask=Ask("{label} host:"), attr=f"domains.{name}")


SMTP_ON = When("smtp.enabled")
PUSH_ON = When("push.enabled")
MANUAL_TLS = When("tls.mode", "manual")
OPEN = "open"

SCHEMA: tuple[Key, ...] = (
    Key(VERSION_KEY, INT, "schema version (required)", choices=(SCHEMA_VERSION,), required=True,
        what="schema version", in_example=True, example=SCHEMA_VERSION),
    Key(DEPLOYMENT_KEY, PATH, "the tree to configure, relative to this file", default="deployment",
        in_example=True, example="deployment", attr="deployment"),
    Key("server_name", DOMAIN, "required: user ids look like @alice:{server_name}; fixed once configured",
        required=True, what="domain name", example=EXAMPLE_SERVER, in_example=True, label="server name",
        section="domains", attr="server_name",
        ask=Ask("Server name:", help="User ids will look like @alice:SERVER_NAME. It cannot be changed later.\n"
                "Use your organisation's domain (example.org) or a matrix host (matrix.example.org).")),
    Key("domains", SECTION, "host names; each one is derived from server_name when absent\n"
        "(<base> is server_name without a leading matrix. label)", section="domains",
        ask=Ask("", flow=TABLE, confirm="Use these host names?")),
    _domain("matrix", "Matrix API (client and federation)",
            "client/federation API (public_baseurl, haproxy, ingresses); matrix.<base>", "matrix"),
    _domain("element", "Element web", "Element web client; element.<base>", "element"),
    _domain("turn", "TURN relay", "coturn (turn_uris, realm, certificate); turn.<base>", "turn"),
    _domain("li_matrix", "LI homeserver", "lawful-intercept homeserver; matrix-li.<base>", "matrix-li"),
    _domain("li_element", "LI Element web", "Element for the LI instance; element-li.<base>", "element-li"),
    _domain("li_admin", "LI admin UI", "Synapse Admin for the LI instance (basic auth); admin-li.<base>",
            "admin-li"),
    _domain("livekit", "LiveKit (video calls)", "LiveKit SFU ingress; livekit.<base>", "livekit"),
    Key("tls", SECTION, "certificates", section="tls"),
    Key("tls.mode", ENUM, "letsencrypt-prod (default) | letsencrypt-staging | selfsigned | manual",
        default="letsencrypt-prod", choices=TLS_MODES, in_example=True, label="certificates", section="tls",
        attr="tls_mode",
        ask=Ask("Certificates:", kind=ASK_SELECT, labels=(
            "letsencrypt-prod     Let's Encrypt, trusted certificates (needs public DNS)",
            "letsencrypt-staging  Let's Encrypt staging, for a trial run (untrusted)",
            "selfsigned           cert-manager's self-signed issuer (labs only)",
            "manual               your own TLS Secret, no cert-manager issuer"))),
    Key("tls.acme_email", EMAIL, "ACME account e-mail, written to both ClusterIssuers; default admin@<base>",
        default=Derived("mailbox", "admin", ("server_name",), "admin@<base>"), example="ops@example" + ".org",
        in_example=True, label="ACME e-mail", section="tls", attr="acme_email",
        ask=Ask("ACME account e-mail (Let's Encrypt expiry notices):")),
    Key("tls.secret_name", NAME, "manual mode only: the TLS Secret every Ingress uses", pattern=K8S_NAME,
        what="Secret name", when=MANUAL_TLS, required_when=True, only_when=True, example="matrix-tls",
        label="TLS Secret", section="tls", attr="tls_secret_name",
        ask=Ask("Name of your TLS Secret (namespace matrix):", suggest="matrix-tls")),
    Key("li", SECTION, "the lawful-intercept instance", section="li"),
    Key("li.allowed_cidrs", CIDRS, "who may reach the LI ingresses; [] leaves them open\n"
        "(a warning of wizard check, and an open checklist item)", default=[], example=["203.0.113.0/24"],
        in_example=True, label="allowlist", section="li", attr="allowed_cidrs",
        ask=Ask(f"Networks allowed to reach the LI instance (CIDRs, comma-separated; {OPEN} = any address):",
                help="Only these address blocks reach the LI homeserver, Element and admin UI (nginx allowlist).\n"
                     f"To leave them reachable from any address, type \"{OPEN}\" (an open checklist item).",
                word=OPEN, insist=f"an allowlist is required: give the networks, or type \"{OPEN}\" to leave the "
                                  "LI instance reachable from any address",
                word_means="the LI allowlist is open: anyone can reach the LI ingresses until li.allowed_cidrs "
                           "is set")),
    Key("li.admin_user", NAME, "basic-auth user of the LI admin UI", default="admin",
        pattern=r"[A-Za-z0-9._-]{1,64}", what="user name ([A-Za-z0-9._-], no ':')", in_example=True,
        label="basic auth user", section="li", attr="admin_user", ask=Ask("LI admin UI user name:")),
    Key("li.admin_password", REFERENCE, "env:NAME or file:PATH; generated into the secrets file when absent",
        secret=True, example="env:LI_ADMIN_PASSWORD", label="password", section="li", attr="admin_password",
        raw_attr="admin_password_ref",
        ask=Ask("LI admin UI password reference (env:NAME or file:PATH; empty = generate):",
                help="Empty: a strong password is generated into the secrets file "
                     "(shown with `wizard secrets show li.admin_password --answers {answers_file}`).")),
    Key("li.auth_realm", TEXT, "text the browser shows in the login box", example="LI access only",
        in_example=True, label="login box", section="li", attr="auth_realm",
        ask=Ask("Text of the browser's login box:", suggest="LI administration")),
    Key("storage", SECTION, "volumes", section="storage"),
    Key("storage.class", NAME, "StorageClass for every volume claim and Helm value", default="standard",
        pattern=K8S_NAME, what="StorageClass name", in_example=True, label="StorageClass", section="storage",
        attr="storage_class",
        ask=Ask("StorageClass for every volume:", help="kubectl get storageclass lists the ones your cluster has.")),
    Key("turn", SECTION, "coturn", section="external"),
    Key("turn.external_ip", IP, "coturn's public IP; detected at start when absent", example="198.51.100.7",
        label="TURN public IP", section="external", attr="external_ip",
        ask=Ask("TURN public IP address (empty = coturn detects it):")),
    Key("minio", SECTION, "object storage", section="secrets"),
    Key("minio.s3_access_key", NAME, "S3 access key id used by Synapse, LI and the sync system",
        default="synapse-s3-user", pattern=r"[A-Za-z0-9][A-Za-z0-9._-]{2,127}",
        what="S3 access key ([A-Za-z0-9._-], 3-128)", in_example=True, label="S3 access key", section="secrets",
        attr="s3_access_key", ask=Ask("S3 access key id (MinIO user for media and backups):")),
    Key("key_vault", SECTION, "recovery-key vault", section="secrets"),
    Key("key_vault.rsa_bits", INT, "2048 (default), 3072 or 4096", default=2048, choices=(2048, 3072, 4096),
        in_example=True, label="RSA key", section="secrets", attr="rsa_bits",
        ask=Ask("RSA key size of the recovery-key vault:", kind=ASK_SELECT,
                labels=("2048 bits", "3072 bits", "4096 bits"))),
    Key("smtp", SECTION, "e-mail from Synapse (notifications, password resets)", section="external"),
    Key("smtp.enabled", BOOL, "false: Synapse sends no e-mail", default=False, switch=True, in_example=True,
        label="SMTP", section="external", attr="smtp.enabled",
        ask=Ask("Send e-mail (notifications, password resets) through SMTP?", kind=ASK_CONFIRM)),
    Key("smtp.host", HOST, "SMTP server", what="host name", when=SMTP_ON, required_when=True,
        example=_host("smtp"), label="server", section="external", attr="smtp.host",
        ask=Ask("SMTP server host:", suggest=_host("smtp"))),
    Key("smtp.port", PORT, "587 (submission) by default; 465: implicit TLS", default=587, when=SMTP_ON,
        example=587, label="port", section="external", attr="smtp.port", ask=Ask("SMTP port:")),
    Key("smtp.user", TEXT, "SMTP login; absent for none", when=SMTP_ON, example="synapse", label="user",
        section="external", attr="smtp.user", ask=Ask("SMTP user (empty for none):")),
    Key("smtp.password", REFERENCE, "env:NAME or file:PATH, never the password itself", when=SMTP_ON,
        secret=True, example="env:SMTP_PASSWORD", label="password", section="external", attr="smtp.password",
        raw_attr="smtp.password_ref",
        ask=Ask("SMTP password reference (env:NAME or file:PATH; empty for none):")),
    Key("smtp.from", SENDER, "sender of notification mails (an address, or Name <address>)", when=SMTP_ON,
        required_when=True, what="sender address",
        example=Derived("mailbox", "noreply", ("server_name",), "noreply@<base>"), label="from",
        section="external", attr="smtp.from_",
        ask=Ask("Sender address:", suggest=Derived("mailbox", "noreply", ("server_name",)))),
    Key("smtp.require_transport_security", BOOL, "STARTTLS required (default true)", default=True, when=SMTP_ON,
        example=True, label="STARTTLS required", section="external", attr="smtp.require_transport_security",
        ask=Ask("Require STARTTLS?", kind=ASK_CONFIRM)),
    Key("push", SECTION, "push notifications through Sygnal", section="external"),
    Key("push.enabled", BOOL, "false: Sygnal keeps its placeholders", default=False, switch=True, in_example=True,
        label="push", section="external", attr="push.enabled",
        ask=Ask("Configure push notifications (Sygnal: APNs and FCM)?", kind=ASK_CONFIRM,
                help="Needs your app's APNs key (.p8) and an FCM service account; "
                     "without them Sygnal keeps its placeholders.")),
    Key("push.apns", SECTION, "Apple Push Notification service", when=PUSH_ON, section="external"),
    Key("push.apns.key_file", FILE, ".p8 key file (its content goes into Sygnal's Secret)",
        content="pem-private-key", when=PUSH_ON, required_when=True, example="AuthKey.p8", label="APNs key file",
        section="external", raw_attr="push.apns_key_file", ask=Ask("APNs key file (.p8):")),
    Key("push.apns.key_id", TEXT, "the key's id", when=PUSH_ON, required_when=True, example="ABC123DEFG",
        label="APNs key id", section="external", attr="push.apns_key_id", ask=Ask("APNs key id:")),
    Key("push.apns.team_id", TEXT, "the Apple developer team id", when=PUSH_ON, required_when=True,
        example="DEF123GHIJ", label="Apple team id", section="external", attr="push.apns_team_id",
        ask=Ask("Apple team id:")),
    Key("push.apns.topic", TEXT, "the iOS app bundle id", when=PUSH_ON, required_when=True,
        example="org.example.Chat", label="APNs topic", section="external", attr="push.apns_topic",
        ask=Ask("APNs topic (the app's bundle id):")),
    Key("push.fcm", SECTION, "Firebase Cloud Messaging", when=PUSH_ON, section="external"),
    Key("push.fcm.service_account_file", FILE, "service account JSON file (its content goes into Sygnal's Secret)",
        content="json", when=PUSH_ON, required_when=True, example="fcm-service-account.json",
        label="FCM service account", section="external", raw_attr="push.fcm_service_account_file",
        ask=Ask("FCM service account JSON file:")),
    Key("secrets_file", PATH, "generated secrets (mode 0600, git-ignored); default <this file>.secrets.yaml",
        default=Derived("beside", ".secrets.yaml", (), "<this file's name>.secrets.yaml beside it"),
        example="prod.secrets.yaml", belongs_to_file=True, attr="secrets_file"),
    Key("well_known_dir", PATH, "where /.well-known/matrix/{server,client} are written (outside the tree)",
        example="well-known", label=".well-known files in", section="domains", attr="well_known_dir",
        ask=Ask("Folder for them (relative to {answers_dir}):", suggest="well-known", flow=OPT_IN,
                when=When("server_name", differs_from="domains.matrix"), check="outside-tree",
                confirm="Write the .well-known delegation files?",
                confirm_help="{server_name} is not the Matrix host ({domains.matrix}): clients and servers find "
                             "it through\nhttps://{server_name}/.well-known/matrix/server and …/client. The wizard "
                             "can write both files\ninto a folder outside the tree, for your web server to serve.",
                declined="then serve https://{server_name}/.well-known/matrix/server yourself (an open checklist "
                         "item until it is there)",
                after="serve {value}/.well-known at https://{server_name}/")),
    Key("checklist", FLAGS, "operator confirmations of manual checklist items: item id -> true", default={},
        in_example=True, example={}, attr="checklist"),
    Key("placeholders", PLACEHOLDERS, "tokens in no row of the catalog: TOKEN (or TOKEN@FILE) -> text,\n"
        "env:NAME, file:PATH or {generate: FORM}; the same value at every occurrence", default={},
        example={"CHANGEME_KUBE_DNS_IP": "10.96.0.10", "CHANGEME_CONTENT_SCANNER_PICKLE_KEY": {"generate": "password"}},
        attr="placeholders",
        ask=Ask("Value of {token} ({where}):", flow=UNSETTLED,
                help="A placeholder the catalog does not know. Type its value as text (written into the answers "
                     "file: not for a secret),\nenv:NAME or file:PATH for a secret you keep, or \"generate\" "
                     "(a password; \"generate FORM\" for another form: {forms}) for a secret the wizard keeps.")),
    Key("locations", LOCATIONS, "ambiguous catalog addresses settled: address -> \"FILE › Kind/name\"", default={},
        example={"main-instance/06-coturn/deployment.yaml › Secret/coturn-secrets":
                 "main-instance/06-coturn/deployment.yaml › Secret/coturn-secrets-east"},
        attr="locations",
        ask=Ask("Which one is {address}?", flow=UNSETTLED, kind=ASK_SELECT,
                help="More than one object of your tree could be the catalog's {address}; the wizard never "
                     "guesses.\nThe choice is kept in the answers file's locations:.")),
)

KEYS: dict[str, Key] = {k.key: k for k in SCHEMA}


def children(parent: str | None) -> tuple[Key, ...]:
    """The keys right below `parent` (None: the top level), in the file's order."""
    return tuple(k for k in SCHEMA if k.parent == parent)


def leaves() -> tuple[Key, ...]:
    """Every key that holds a value (not a section)."""
    return tuple(k for k in SCHEMA if k.type != SECTION)


def of_type(type_: str) -> Key:
    """The one key of a type (FLAGS, PLACEHOLDERS, LOCATIONS)."""
    found = [k for k in SCHEMA if k.type == type_]
    assert len(found) == 1, type_
    return found[0]


def in_section(section_id: str) -> tuple[Key, ...]:
    """The keys a checklist section asks, in the file's order."""
    return tuple(k for k in SCHEMA if k.section == section_id)


def required_keys() -> tuple[str, ...]:
    return tuple(k.key for k in SCHEMA if k.required)
