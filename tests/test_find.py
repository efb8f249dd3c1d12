"""Finding a catalog location in the operator's own tree (wizard.find), in-process on small trees:
the three ranks, objects claimed by other addresses, ambiguity never guessed, the `locations:` map, plain
files by name and by key path, optional plain copies, and the two meanings (the signing key a pod mounts,
the Secret a pod loads for ${VAR})."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from wizard.catalog import Location
from wizard.find import AMBIGUOUS, NOT_FOUND, OPTIONAL, PARSE, Finder, Place, Problem, labels_run
from wizard.index import TreeIndex
from wizard.locate.resolve import Tree


def _tree(tmp_path: Path, files: dict[str, str]) -> TreeIndex:
    for rel, text in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))
    return TreeIndex.build(Tree(tmp_path))


def _secret(name: str, **data) -> str:
    body = "".join(f"  {k}: {v}\n" for k, v in data.items())
    return f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\nstringData:\n{body}"


def _finder(index, *catalog, settle=None) -> Finder:
    return Finder(index, catalog, settle=settle)


@pytest.mark.parametrize("wanted,name,ok", [
    ("minio", "matrix-minio", True), ("minio", "minio-prod", True), ("minio", "minio", True),
    ("synapse-secrets", "prod-synapse-secrets", True), ("synapse-secrets", "synapse-secrets-v2", True),
    ("synapse-secrets", "synapse-li-secrets", False), ("minio", "miniox", False), ("coturn-secrets", "coturn", False),
])
def test_labels_run(wanted, name, ok):
    assert labels_run(wanted, name) is ok


def test_rank_1_2_3_and_claims(tmp_path):
    index = _tree(tmp_path, {
        "a/secrets.yaml": _secret("synapse-secrets", DB_PASSWORD="x") + "---\n" + _secret("synapse-li-secrets",
                                                                                           DB_PASSWORD="y"),
        "moved/turn.yaml": _secret("turn-credentials", TURN_SHARED_SECRET="t"),
        "moved/redis.yaml": _secret("matrix-redis-password", password="r"),
    })
    f = _finder(index, "a/secrets.yaml › Secret/synapse-secrets", "a/secrets.yaml › Secret/synapse-li-secrets")
    p = f.place(Location("a/secrets.yaml › Secret/synapse-secrets › stringData.DB_PASSWORD"))
    assert isinstance(p, Place) and p.how == "" and [s.value for s in p.spans] == ["x"]
    p = f.place(Location("r/secret.yaml › Secret/redis-password › stringData.password"))
    assert isinstance(p, Place) and "Secret/matrix-redis-password in moved/redis.yaml" in p.how
    p = f.place(Location("c/turn.yaml › Secret/coturn-secrets › stringData.TURN_SHARED_SECRET"))
    assert isinstance(p, Place) and "the only Secret with stringData.TURN_SHARED_SECRET" in p.how
    assert [s.value for s in p.spans] == ["t"]
    # synapse-li-secrets is claimed at rank 1 by its own address: never a candidate for another one
    p = f.place(Location("gone.yaml › Secret/other-secrets › stringData.DB_PASSWORD"))
    assert isinstance(p, Problem) and p.kind == NOT_FOUND


def test_two_candidates_are_never_guessed_and_locations_settles(tmp_path):
    index = _tree(tmp_path, {
        "east.yaml": _secret("coturn-secrets-east", TURN_PASSWORD="a"),
        "west.yaml": _secret("coturn-secrets-west", TURN_PASSWORD="b"),
    })
    loc = Location("c.yaml › Secret/coturn-secrets › stringData.TURN_PASSWORD")
    p = _finder(index).place(loc)
    assert isinstance(p, Problem) and p.kind == AMBIGUOUS and p.address == "c.yaml › Secret/coturn-secrets"
    assert "east.yaml › Secret/coturn-secrets-east" in p.message and "locations:" in p.fix
    p = _finder(index, settle={"c.yaml › Secret/coturn-secrets": "west.yaml › Secret/coturn-secrets-west"}).place(loc)
    assert isinstance(p, Place) and [s.value for s in p.spans] == ["b"] and "locations:" in p.how
    p = _finder(index, settle={"c.yaml › Secret/coturn-secrets": "west.yaml › Secret/nope"}).place(loc)
    assert isinstance(p, Problem) and p.kind == NOT_FOUND


def test_a_broken_file_blocks_only_its_own_locations(tmp_path):
    index = _tree(tmp_path, {"a.yaml": _secret("s", K="v") + "  K: dup\n", "b.yaml": _secret("t", K="w")})
    assert set(index.broken) == {"a.yaml"}
    p = _finder(index).place(Location("a.yaml › Secret/s › stringData.K"))
    assert isinstance(p, Problem) and p.kind == PARSE and p.file == "a.yaml" and p.line == 7
    p = _finder(index).place(Location("b.yaml › Secret/t › stringData.K"))
    assert isinstance(p, Place) and p.spans[0].value == "w"


def test_plain_files_by_name_then_key_path_and_optional_copies(tmp_path):
    index = _tree(tmp_path, {
        "helm/livekit-values.yaml": "livekit:\n  apiKey: k\n",
        "other/grafana.yaml": "grafana:\n  adminPassword: g\n",
    })
    f = _finder(index)
    p = f.place(Location("values/livekit-values.yaml › livekit.apiKey"))
    assert isinstance(p, Place) and p.spans[0].value == "k" and "helm/livekit-values.yaml" in p.how
    p = f.place(Location("values/prometheus-stack-values.yaml › grafana.adminPassword"))
    assert isinstance(p, Place) and p.spans[0].value == "g"
    p = f.place(Location("config/synapse/homeserver.yaml › server_name", optional=True))
    assert isinstance(p, Problem) and p.kind == OPTIONAL and p.note


HS = """\
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: {cm}
    data:
      homeserver.yaml: |
        server_name: example.org
        signing_key_path: /synapse/keys/signing.key
        database:
          args:
            password: ${{DB_PASSWORD}}
    """


def _pod(name: str, cm: str, env_secret: str, key_volume: str, *, init_copy: bool = False) -> str:
    """A StatefulSet rendering the config from `cm` with envsubst and mounting the signing key from Secret
    `key_volume` — directly, or into a template path an init container copies it from."""
    import yaml

    script = "envsubst < /config-template/homeserver.yaml > /synapse/config/homeserver.yaml\n"
    init_mounts = [{"name": "config-template", "mountPath": "/config-template"}]
    if init_copy:
        script += "cp /key-template/signing.key /synapse/keys/signing.key\n"
        init_mounts += [{"name": "keys", "mountPath": "/key-template"}, {"name": "keydir", "mountPath": "/synapse/keys"}]
    pod = {
        "initContainers": [{"name": "render", "image": "x", "command": ["/bin/sh", "-c"], "args": [script],
                            "envFrom": [{"secretRef": {"name": env_secret}}], "volumeMounts": init_mounts}],
        "containers": [{"name": "synapse", "image": "x", "volumeMounts": [
            {"name": "keydir" if init_copy else "keys", "mountPath": "/synapse/keys"}]}],
        "volumes": [{"name": "config-template", "configMap": {"name": cm}},
                    {"name": "keys", "secret": {"secretName": key_volume,
                                                "items": [{"key": "signing.key", "path": "signing.key"}]}},
                    {"name": "keydir", "emptyDir": {}}],
    }
    return yaml.safe_dump({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name},
                           "spec": {"template": {"spec": pod}}}, sort_keys=False)


@pytest.mark.parametrize("init_copy", [False, True])
def test_the_signing_key_is_the_secret_key_the_pod_mounts(tmp_path, init_copy):
    index = _tree(tmp_path, {
        "main.yaml": textwrap.dedent(HS.format(cm="synapse-config")) + "---\n"
        + _secret("synapse-secrets", DB_PASSWORD="m", **{'"signing.key"': "ed25519 a_k m"}),
        "li.yaml": textwrap.dedent(HS.format(cm="synapse-li-config")) + "---\n" + _secret("synapse-li-secrets",
                                                                                            DB_PASSWORD="l"),
        "sts.yaml": _pod("synapse-main", "synapse-config", "synapse-secrets", "synapse-secrets") + "---\n"
        + _pod("synapse-li", "synapse-li-config", "synapse-li-secrets", "synapse-secrets", init_copy=init_copy),
    })
    f = _finder(index, "main.yaml › Secret/synapse-secrets", "li.yaml › Secret/synapse-li-secrets",
                "main.yaml › ConfigMap/synapse-config", "li.yaml › ConfigMap/synapse-li-config")
    li = f.place(Location('li.yaml › Secret/synapse-li-secrets › stringData."signing.key"',
                          meaning='signing-key:li.yaml › ConfigMap/synapse-li-config › data."homeserver.yaml"'))
    main = f.place(Location('main.yaml › Secret/synapse-secrets › stringData."signing.key"',
                            meaning='signing-key:main.yaml › ConfigMap/synapse-config › data."homeserver.yaml"'))
    assert isinstance(li, Place) and isinstance(main, Place)
    assert li.address.obj == ("Secret", "synapse-secrets") and "mounted for signing_key_path" in li.how
    assert main.how == "" and main.spans[0].file_span() == li.spans[0].file_span()  # one location: the LI rule


def test_a_var_is_the_key_of_the_secret_the_pod_loads(tmp_path):
    index = _tree(tmp_path, {
        "cm.yaml": textwrap.dedent(HS.format(cm="synapse-config")),
        "s.yaml": _secret("main-env", DB_PASSWORD="p") + "---\n" + _secret("key-vault", DB_PASSWORD="q"),
        "sts.yaml": _pod("synapse-main", "synapse-config", "main-env", "main-env"),
    })
    f = _finder(index)
    p = f.place(Location("x.yaml › Secret/synapse-secrets › stringData.DB_PASSWORD",
                         meaning='env:cm.yaml › ConfigMap/synapse-config › data."homeserver.yaml"'))
    assert isinstance(p, Place) and p.address.obj == ("Secret", "main-env") and p.spans[0].value == "p"
    assert "loaded by the pod" in p.how
    # a key that is not there yet: the Secret the pod loads whole, to add it to
    p = f.place(Location("x.yaml › Secret/synapse-secrets › stringData.SMTP_PASSWORD",
                         meaning='env:cm.yaml › ConfigMap/synapse-config › data."homeserver.yaml"'))
    assert isinstance(p, Place) and p.address.obj == ("Secret", "main-env") and not p.spans and p.found.missing
