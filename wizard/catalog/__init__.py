"""The catalog: one record per secret and setting (wizard.catalog.records), and questions about them."""
from __future__ import annotations

from wizard.catalog import records as _R
from wizard.catalog.model import (ADD, CONF_LINE, DOCUMENT, ISSUER, LINE_BREAKS, OLD_KEYS, SECRET, SECTION, SET,
                                  SETTING, TOKEN_RE, Component, Docs, Limits, Location, Record, Rotation, SecretRef,
                                  has_token)
from wizard.catalog.records import (COMPONENTS, HOMESERVER_CONFIGS, INGRESSES, LI_INGRESSES, PLAIN_COPIES, RECORDS,
                                    SELFSIGNED_DOC, SMTP_SECTION_KEYS, TURN_USERNAME_SOURCE, smtp_section,
                                    well_known_documents)

RECORD_BY_ID: dict[str, Record] = {r.id: r for r in RECORDS}
PLACEHOLDER_PREFIX = "placeholder."
COMPONENT_BY_NAME: dict[str, Component] = {c.name: c for c in COMPONENTS}


def record(cid: str) -> Record | None:
    """The record of an id; a generated unknown token (`placeholder.TOKEN`) gets one made at run time."""
    got = RECORD_BY_ID.get(cid)
    if got is not None:
        return got
    if cid.startswith(PLACEHOLDER_PREFIX) and len(cid) > len(PLACEHOLDER_PREFIX):
        return Record(cid, SECRET, form="password", what=f"the value of the unknown token {placeholder_key(cid)}")
    return None


def placeholder_id(key: str) -> str:
    """The secrets-file id of a generated unknown token, `key` as written in `placeholders:`."""
    return PLACEHOLDER_PREFIX + key


def placeholder_key(cid: str) -> str:
    return cid[len(PLACEHOLDER_PREFIX):]


def placeholder_record(key: str, form: str) -> Record:
    return Record(placeholder_id(key), SECRET, form=form, what=f"the value of the unknown token {key}")


def is_known_id(cid: str) -> bool:
    """An id the secrets file may hold: a catalog secret, or a generated unknown token (placeholder.TOKEN)."""
    r = record(cid)
    return r is not None and r.kind == SECRET


def is_block_id(cid: str) -> bool:
    r = RECORD_BY_ID.get(cid)
    return r is not None and r.block


def secrets() -> tuple[Record, ...]:
    return tuple(r for r in RECORDS if r.kind == SECRET)


def generated_ids() -> tuple[str, ...]:
    """The ids the wizard makes itself: generated in a form, or derived from generated ones."""
    return tuple(r.id for r in RECORDS if r.kind == SECRET and not r.provided)


def required_store_ids() -> tuple[str, ...]:
    """The ids every secrets file written by a complete first run holds (judging a version 1 file)."""
    return generated_ids()


def rotatable_ids() -> tuple[str, ...]:
    return tuple(r.id for r in RECORDS if r.kind == SECRET and not r.provided and r.rotation.rotatable)


def token_ids() -> dict[str, str]:
    """Token → the id it stands for (CATALOG §2); a token that stands for two ids is in `ambiguous_tokens`."""
    out: dict[str, str] = {}
    for r in RECORDS:
        for t in r.tokens:
            out.setdefault(t, r.id)
    return out


TOKEN_IDS = token_ids()
# A token that stands for two ids (a TURN user name and its password in LiveKit's values): a leftover
# anywhere but at its catalog locations.
AMBIGUOUS_TOKENS = {"CHANGE_TO_COTURN_SHARED_SECRET": ("turn.username", "turn.static_password")}


def is_unset(cid: str, value: str) -> bool:
    """A value the wizard may set without asking: a placeholder, empty, or the fresh tree's default."""
    if not value or has_token(value):
        return True
    r = record(cid)
    if r is not None and value in r.defaults:
        return True
    from wizard import generate

    return r is not None and r.form is not None and generate.is_form_placeholder(r.form, value)
