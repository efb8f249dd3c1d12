"""Write an answers file: commented YAML in the contract's key order, holding no secret.

Operator secrets appear only as references (`env:NAME`, `file:PATH`); generated secrets never
appear at all (they live in the secrets file). The text is written atomically.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from wizard.errors import AnswersError

# (key, comment, children): the contract's order. A comment may name {placeholders} from the data.
LAYOUT = (
    ("version", "schema version (required)", None),
    ("deployment", "the tree to configure, relative to this file", None),
    ("server_name", "required: user ids look like @alice:{server_name}", None),
    ("domains", "host names; each one is derived from server_name when absent", (
        ("matrix", "client/federation API (public_baseurl, haproxy, ingresses)", None),
        ("element", "Element web client", None),
        ("turn", "coturn (turn_uris, realm, certificate)", None),
        ("li_matrix", "lawful-intercept homeserver", None),
        ("li_element", "Element for the LI instance", None),
        ("li_admin", "Synapse Admin for the LI instance (basic auth)", None),
        ("livekit", "LiveKit SFU ingress", None),
    )),
    ("tls", "certificates", (
        ("mode", "letsencrypt-prod | letsencrypt-staging | selfsigned | manual", None),
        ("acme_email", "ACME account e-mail, written to both ClusterIssuers", None),
        ("secret_name", "manual mode only: the TLS Secret every Ingress uses", None),
    )),
    ("li", "the lawful-intercept instance", (
        ("allowed_cidrs", "who may reach the LI ingresses; [] leaves them open (an open checklist item)", None),
        ("admin_user", "basic-auth user of the LI admin UI", None),
        ("admin_password", "env:NAME or file:PATH; generated into the secrets file when absent", None),
        ("auth_realm", "text the browser shows in the login box", None),
    )),
    ("storage", "volumes", (
        ("class", "StorageClass for every volume claim and Helm value", None),
    )),
    ("turn", "coturn", (
        ("external_ip", "coturn's public IP; detected at start when absent", None),
    )),
    ("minio", "object storage", (
        ("s3_access_key", "S3 access key id used by Synapse, LI and the sync system", None),
    )),
    ("key_vault", "recovery-key vault", (
        ("rsa_bits", "2048, 3072 or 4096", None),
    )),
    ("smtp", "e-mail from Synapse (notifications, password resets)", (
        ("enabled", "false: Synapse sends no e-mail", None),
        ("host", "SMTP server", None),
        ("port", "587 (submission) by default", None),
        ("user", "SMTP login; empty for none", None),
        ("password", "env:NAME or file:PATH, never the password itself", None),
        ("from", "sender of notification mails", None),
        ("require_transport_security", "STARTTLS required", None),
    )),
    ("push", "push notifications through Sygnal", (
        ("enabled", "false: Sygnal keeps its placeholders", None),
        ("apns", "Apple Push Notification service", (
            ("key_file", ".p8 key file", None),
            ("key_id", "", None),
            ("team_id", "", None),
            ("topic", "the iOS app bundle id", None),
        )),
        ("fcm", "Firebase Cloud Messaging", (
            ("service_account_file", "service account JSON file", None),
        )),
    )),
    ("secrets_file", "generated secrets (mode 0600, git-ignored); default <this file>.secrets.yaml", None),
    ("well_known_dir", "where /.well-known/matrix/{{server,client}} are written (outside the tree)", None),
    ("checklist", "operator confirmations of manual checklist items: item id -> true", None),
)

# Shown as commented examples when the key is absent, so the file documents what it could say.
EXAMPLES = {
    "turn.external_ip": "198.51.100.7",
    "li.admin_password": "env:LI_ADMIN_PASSWORD",
    "secrets_file": "prod.secrets.yaml",
    "well_known_dir": "well-known",
}

# Keys that hold an operator secret: only a reference may be written.
SECRET_KEYS = ("li.admin_password", "smtp.password")
COMMENT_COLUMN = 36


def _is_reference(value) -> bool:
    return isinstance(value, str) and (value.startswith("env:") or value.startswith("file:")) and len(value) > 5


def _scalar(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    text = str(value)
    if re.fullmatch(r"[A-Za-z0-9_./@+-][A-Za-z0-9_./@+:-]*", text) and not text.endswith(":") \
            and yaml.safe_load(text) == text:
        return text
    # A JSON string is a YAML double-quoted scalar.
    return json.dumps(text, ensure_ascii=False)


def _line(indent: int, key: str, value: str | None, comment: str, commented: bool = False) -> str:
    head = " " * indent + ("# " if commented else "") + f"{key}:" + (f" {value}" if value is not None else "")
    if not comment:
        return head
    pad = max(COMMENT_COLUMN - len(head), 1)
    return head + " " * pad + "# " + comment


def check_no_secret(data: dict) -> None:
    """Refuse a value in clear where the contract wants a reference."""
    for dotted in SECRET_KEYS:
        node = data
        for part in dotted.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node not in (None, "") and not _is_reference(node):
            raise AnswersError("secrets are not written in clear into the answers file: use env:NAME or file:PATH",
                               where=dotted)


def render_answers(data: dict, *, header: str = "", checklist_titles: dict[str, str] | None = None) -> str:
    """The answers file text for `data` (keys of the contract only; no secret)."""
    if not isinstance(data, dict):
        raise AnswersError("the answers must be a mapping")
    check_no_secret(data)
    fmt = {"server_name": data.get("server_name", "SERVER_NAME")}
    out: list[str] = []
    for line in header.splitlines():
        out.append(f"# {line}".rstrip())

    after_section = [False]  # a blank line separates top-level sections from what follows

    def emit(layout, node: dict, indent: int, prefix: str) -> None:
        known = {k for k, _, _ in layout}
        unknown = sorted(set(map(str, node)) - known)
        if unknown:
            raise AnswersError(f"unknown key (allowed: {', '.join(sorted(known))})", where=prefix + unknown[0])
        for key, comment, children in layout:
            dotted = prefix + key
            comment = comment.format(**fmt)
            if indent == 0 and children is None and after_section[0] and (key in node or dotted in EXAMPLES):
                out.append("")
                after_section[0] = False
            if key not in node or node[key] is None:
                if dotted in EXAMPLES:
                    out.append(_line(indent, key, _scalar(EXAMPLES[dotted]), comment, commented=True))
                continue
            value = node[key]
            if dotted == "checklist":
                if not value:
                    out.append(_line(indent, key, "{}", comment))
                    continue
                out.append(_line(indent, key, None, comment))
                for item_id in sorted(value):
                    title = (checklist_titles or {}).get(item_id, "")
                    out.append(_line(indent + 2, _scalar(item_id), _scalar(value[item_id]), title))
                continue
            if children is not None:
                if not isinstance(value, dict):
                    raise AnswersError("expected a mapping", where=dotted)
                if indent == 0 and out and out[-1] != "":
                    out.append("")
                after_section[0] = indent == 0
                out.append(_line(indent, key, None, comment))
                emit(children, value, indent + 2, dotted + ".")
                continue
            if isinstance(value, dict):
                raise AnswersError("expected a single value, not a mapping", where=dotted)
            out.append(_line(indent, key, _scalar(value), comment))

    emit(LAYOUT, data, 0, "")
    text = "\n".join(out) + "\n"
    if normalise(yaml.safe_load(text)) != normalise(data):  # the text must say exactly what was asked
        raise AnswersError("internal error: the rendered answers file does not read back the same")
    return text


def normalise(node):
    if isinstance(node, dict):
        return {str(k): normalise(v) for k, v in node.items() if v is not None and not (isinstance(v, dict) and not v
                                                                                          and k != "checklist")}
    if isinstance(node, (list, tuple)):
        return [normalise(v) for v in node]
    return node


def save_answers(path: Path, data: dict, *, header: str = "", checklist_titles: dict[str, str] | None = None) -> str:
    """Render and write atomically; returns the text written."""
    from wizard.files import atomic_write

    text = render_answers(data, header=header, checklist_titles=checklist_titles)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, text.encode("utf-8"))
    return text
