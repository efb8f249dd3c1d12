"""`wizard rotate`: new values for secrets, written everywhere they live, and what to restart."""
from __future__ import annotations

from pathlib import Path

from wizard import catalog as C
from wizard.errors import SecretsError, WizardError
from wizard.locate.resolve import Address, Tree, resolve

# Rotating these would make data already protected by them unreadable or unverifiable: only on request.
NOT_IN_ALL = ("synapse.signing_key", "key_vault.rsa_private_key")

# Manual steps Kubernetes cannot do (the role and cluster each password belongs to).
DB_ROLES = {
    "postgres.synapse_password": ("matrix-postgresql", "synapse"),
    "postgres.li_password": ("matrix-postgresql-li", "synapse"),
    "postgres.replication_password": ("matrix-postgresql", "replication_user"),
    "postgres.key_vault_password": ("matrix-postgresql", "key_vault"),
}
MANUAL = {
    "minio.root_password": [
        "MinIO reads the root password only at start: its pool restarts below come before its clients",
    ],
    "key_vault.rsa_private_key": [
        "recovery keys stored with the old RSA key can no longer be decrypted: re-encrypt them with the old key "
        "before rolling out, or accept their loss",
    ],
    "synapse.signing_key": [
        "remote servers fetch the new key from /_matrix/key/v2/server; the old verify key stays published "
        "under old_signing_keys",
    ],
    "li.admin_password": ["the LI admin UI asks for the new password at the next login"],
    "synapse.macaroon_secret": ["every access token issued by the main instance becomes invalid: users log in again"],
    "li.macaroon_secret": ["every access token issued by the LI instance becomes invalid"],
}

def changed_objects(locations: dict[str, list[str]]) -> set[tuple[str, str]]:
    return {Address.parse(loc).obj for locs in locations.values() for loc in locs if Address.parse(loc).obj}


def rotation_steps(tree_root: Path, ids: list[str], locations: dict[str, list[str]], changed_files: list[str], *,
                   answers) -> list:
    """The steps after rotating `ids`, in the order they must run (wizard.steps)."""
    from wizard.steps import rotation_steps as steps_for

    db_roles = [(*DB_ROLES[cid], cid) for cid in ids if cid in DB_ROLES]
    notes = [f"{cid}: {note}" for cid in ids for note in MANUAL.get(cid, [])]
    helm = [f for f in changed_files if f.startswith("values/")]
    return steps_for(Path(tree_root), changed_files=list(changed_files), changed_objects=changed_objects(locations),
                     db_roles=db_roles, manual_notes=notes, helm_values=helm,
                     answers_path=Path(answers.path), deployment_path=Path(answers.deployment), cwd=Path.cwd())


def split_groups(tree: Tree, store) -> tuple[list[str], list[str]]:
    """(unexplained, explained) ids whose locations disagree; explained = an interrupted rotation."""
    bad, explained = [], []
    for spec in C.SECRETS:
        if not spec.locations or spec.provided:
            continue
        values = []
        for loc in spec.locations:
            try:
                values.extend(sp.value for sp in resolve(tree, Address.parse(loc)).spans)
            except WizardError:
                continue
        distinct = {v for v in values if not C.has_token(v)}
        if len(distinct) <= 1:
            continue
        stored = store.values.get(spec.id)
        if spec.id in store.rotating and stored is not None and store.rotating[spec.id] in distinct \
                and len(distinct) == 2:
            explained.append(spec.id)
        else:
            bad.append(spec.id)
    return bad, explained


def select_ids(ns_ids: list[str], all_: bool, include_signing: bool, include_rsa: bool, store) -> list[str]:
    ids: list[str] = []
    if all_:
        ids = [i for i in C.ROTATABLE_IDS if i not in NOT_IN_ALL and i not in store.provided]
        if include_signing:
            ids.append("synapse.signing_key")
        if include_rsa:
            ids.append("key_vault.rsa_private_key")
    for cid in ns_ids:
        if cid == "li.admin_htpasswd":
            raise WizardError("li.admin_htpasswd is derived from li.admin_password: rotate li.admin_password")
        spec = C.SECRET_BY_ID.get(cid)
        if spec is None:
            raise WizardError(f"unknown secret id {cid!r}",
                              hint="rotatable: " + ", ".join(C.ROTATABLE_IDS))
        if spec.provided or cid in store.provided:
            raise SecretsError(f"{cid} is a value the operator provided; it is never rotated by the wizard",
                               hint="change it at its source and re-run wizard --answers")
        if cid not in ids:
            ids.append(cid)
    if not ids:
        raise WizardError("nothing to rotate: name ids or use --all", hint="wizard rotate --help")
    return ids


def rotation_locations(ids: list[str]) -> dict[str, list[str]]:
    """Every location a rotation of these ids rewrites (the htpasswd line for the LI admin password, the
    homeserver configs' old_signing_keys for the signing key)."""
    locations = {cid: list(C.SECRET_BY_ID[cid].locations) for cid in ids}
    if "li.admin_password" in ids:
        locations["li.admin_password"] = list(C.SECRET_BY_ID["li.admin_htpasswd"].locations)
    if "synapse.signing_key" in ids:
        locations["synapse.signing_key"] = locations["synapse.signing_key"] + [
            h[: -len(" › (yaml)")] if h.endswith("(yaml)") else h for h in C.HOMESERVERS]
    return locations
