"""`wizard rotate`: which ids a rotation takes, whether the tree allows it, where the new values go and
what the operator runs next. Every fact about an id comes from its catalog record."""
from __future__ import annotations

from pathlib import Path

from wizard import catalog as C
from wizard.errors import SecretsError, WizardError
from wizard.locate.resolve import Address, Tree


def select_ids(ns_ids: list[str], all_: bool, includes: dict[str, bool], store) -> list[str]:
    """The ids to rotate: those named, or --all (every rotatable id that is not the operator's, and the ones
    kept out of --all when their --include-… flag is given; generated unknown tokens included)."""
    ids: list[str] = []
    if all_:
        for r in C.RECORDS:
            if r.kind != C.SECRET or r.provided or not r.rotation.rotatable or r.id in store.provided:
                continue
            if r.rotation.in_all or includes.get(r.rotation.include_flag):
                ids.append(r.id)
        ids += sorted(cid for cid in store.values if cid.startswith(C.PLACEHOLDER_PREFIX)
                      and cid not in store.provided)
    for cid in ns_ids:
        r = C.record(cid)
        if r is None or (cid.startswith(C.PLACEHOLDER_PREFIX) and cid not in store.values):
            raise WizardError(f"unknown secret id {cid!r}", hint="rotatable: " + ", ".join(C.rotatable_ids()))
        if r.rotation.via:
            raise WizardError(f"{cid} is derived from {r.rotation.via}: rotate {r.rotation.via}")
        if r.provided or cid in store.provided:
            raise SecretsError(f"{cid} is a value the operator provided; it is never rotated by the wizard",
                               hint="change it at its source and re-run wizard --answers")
        if cid not in ids:
            ids.append(cid)
    if not ids:
        raise WizardError("nothing to rotate: name ids or use --all", hint="wizard rotate --help")
    return ids


def split_groups(tree: Tree, store, settle: dict | None = None) -> tuple[list[str], list[str]]:
    """(unexplained, explained) ids whose locations in this tree disagree; explained: a rotation in progress."""
    from wizard.find import Finder, Place
    from wizard.index import TreeIndex

    index = TreeIndex.build(tree)
    objects = {f"{a.file} › {a.obj[0]}/{a.obj[1]}" for r in C.RECORDS for loc in r.locations
               for a in [Address.parse(loc.address)] if a.obj}
    finder = Finder(index, objects, settle=settle)
    bad, explained = [], []
    for r in C.RECORDS:
        if r.kind != C.SECRET or r.provided or not r.locations:
            continue
        values = set()
        for loc in r.locations:
            place = finder.place(loc)
            if isinstance(place, Place):
                values.update(sp.value for sp in place.spans if not C.has_token(sp.value))
        if len(values) <= 1:
            continue
        if r.id in store.rotating and store.rotating[r.id] in values and len(values) == 2:
            explained.append(r.id)
        else:
            bad.append(r.id)
    return bad, explained


def rotation_locations(ids: list[str], where: dict[str, list[str]]) -> dict[str, list[str]]:
    """Every location a rotation of these ids rewrites, as found in this tree (`where`, from the plan), with
    those of the values derived from them (an htpasswd line)."""
    out = {}
    for cid in ids:
        locs = list(where.get(cid, []))
        for other in C.RECORDS:
            if other.rotation.via == cid:
                locs += where.get(other.id, [])
        out[cid] = list(dict.fromkeys(locs))
    return out


def changed_objects(locations: dict[str, list[str]]) -> set[tuple[str, str]]:
    return {Address.parse(loc).obj for locs in locations.values() for loc in locs if Address.parse(loc).obj}


def rotation_steps(tree_root: Path, ids: list[str], locations: dict[str, list[str]], changed_files: list[str], *,
                   answers, kube_files: set[str]) -> list:
    """The steps after rotating `ids`, in the order they must run (wizard.steps). A changed YAML file that
    holds no Kubernetes object and is no plain copy of a config is a Helm values file."""
    from wizard.steps import rotation_steps as steps_for

    db_roles = [(*C.record(cid).rotation.db_role, cid) for cid in ids if C.record(cid).rotation.db_role]
    notes = [f"{cid}: {note}" for cid in ids for note in C.record(cid).rotation.notes]
    helm = [f for f in changed_files if f.endswith((".yaml", ".yml")) and f not in kube_files
            and f not in C.PLAIN_COPIES]
    return steps_for(Path(tree_root), changed_files=list(changed_files), changed_objects=changed_objects(locations),
                     db_roles=db_roles, manual_notes=notes, helm_values=helm,
                     answers_path=Path(answers.path), deployment_path=Path(answers.deployment), cwd=Path.cwd())
