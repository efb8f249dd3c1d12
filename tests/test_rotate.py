"""Issue 4: rotation, judged by independent readers, Synapse's parser, signedjson and a real coturn."""
from __future__ import annotations

import json
import time

import pytest
import yaml

import treecheck as T
from helpers import FULL_ANSWERS, edit_secrets, run_wizard, snapshot, write_answers
from oracles import read_signing_key, synapse_config_check_inprocess, synapse_turn_credentials

pytestmark = pytest.mark.e2e  # rotations through the CLI

TURN_LOCATIONS = {"main-instance/01-synapse/secrets.yaml", "main-instance/06-coturn/deployment.yaml",
                  "config/synapse/homeserver.yaml"}


@pytest.fixture
def site(tmp_path):
    run_wizard("init", str(tmp_path / "deployment"), check=True)
    answers = write_answers(tmp_path / "prod.yaml", FULL_ANSWERS)
    run_wizard("--answers", str(answers), "--yes", check=True)
    return tmp_path, answers


def _secrets(tmp_path):
    return yaml.safe_load((tmp_path / "prod.secrets.yaml").read_text())


def test_rotate_turn_changes_exactly_the_three_locations(site):
    tmp, answers = site
    tree = tmp / "deployment"
    before = snapshot(tree)
    old = _secrets(tmp)["secrets"]["turn.shared_secret"]
    proc = run_wizard("rotate", "turn.shared_secret", "--answers", str(answers), "--yes", check=True)
    after = snapshot(tree)
    changed = {rel for rel in before if before[rel] != after[rel]}
    assert changed == TURN_LOCATIONS
    new = _secrets(tmp)["secrets"]["turn.shared_secret"]
    assert new != old
    groups = T.secret_groups(tree)
    assert set(groups["turn.shared_secret"]) == {new}
    # nothing but the TURN value changed in those files
    for rel in changed:
        assert before[rel].decode().replace(old, "X") == after[rel].decode().replace(new, "X")
    assert "kubectl -n matrix rollout restart daemonset/coturn" in proc.stdout
    assert "kubectl -n matrix rollout restart statefulset/synapse-main" in proc.stdout
    assert new not in proc.stdout + proc.stderr and old not in proc.stdout + proc.stderr


def test_rotated_turn_secret_works_against_real_coturn(site, coturn):
    tmp, answers = site
    tree = tmp / "deployment"
    old = T.sd(tree, "main-instance/01-synapse/secrets.yaml", "synapse-secrets")["TURN_SECRET"]
    run_wizard("rotate", "turn.shared_secret", "--answers", str(answers), "--yes", check=True)
    coturn_secret = T.sd(tree, "main-instance/06-coturn/deployment.yaml", "coturn-secrets")["TURN_SHARED_SECRET"]
    synapse_secret = T.sd(tree, "main-instance/01-synapse/secrets.yaml", "synapse-secrets")["TURN_SECRET"]
    realm = FULL_ANSWERS["domains"]["turn"]
    server = coturn(coturn_secret, realm)
    user, pw = synapse_turn_credentials(synapse_secret, "@alice:" + FULL_ANSWERS["server_name"])
    assert server.allocate(user, pw, realm)
    user, pw = synapse_turn_credentials(old, "@alice:" + FULL_ANSWERS["server_name"])
    assert not server.allocate(user, pw, realm)


def _homeservers(tree):
    main_env = T.sd(tree, T.MAIN_SEC, "synapse-secrets")
    li_env = T.sd(tree, T.LI_DEP, "synapse-li-secrets")
    return [
        (T.cm(tree, "main-instance/01-synapse/configmap.yaml", "synapse-config")["homeserver.yaml"], main_env),
        (T.read_text(tree / "config/synapse/homeserver.yaml"), {}),
        (T.cm(tree, T.LI_DEP, "synapse-li-config")["homeserver.yaml"], li_env),
        (T.read_text(tree / "li-instance/01-synapse-li/homeserver.yaml"), li_env),
    ]


def test_signing_key_rotation_keeps_old_keys_verifiable(site, tmp_path_factory):
    tmp, answers = site
    tree = tmp / "deployment"
    first = _secrets(tmp)["secrets"]["synapse.signing_key"]
    first_key = read_signing_key(first)
    t0 = int(time.time() * 1000)
    run_wizard("rotate", "synapse.signing_key", "--answers", str(answers), "--yes", check=True)
    second = _secrets(tmp)["secrets"]["synapse.signing_key"]
    assert second != first and second.split()[1] != first.split()[1]
    main = T.sd(tree, T.MAIN_SEC, "synapse-secrets")["signing.key"]
    li = T.sd(tree, T.LI_DEP, "synapse-li-secrets")["signing.key"]
    assert main == li and main.strip() == second
    from signedjson.key import encode_verify_key_base64, get_verify_key

    old_id = f"ed25519:{first.split()[1]}"
    old_pub = encode_verify_key_base64(get_verify_key(first_key))
    for i, (text, env) in enumerate(_homeservers(tree)):
        data = yaml.safe_load(text)
        entry = data["old_signing_keys"][old_id]
        assert entry["key"] == old_pub
        assert t0 <= entry["expired_ts"] <= int(time.time() * 1000)
        assert first.split()[2] not in text  # never private material
        d = tmp_path_factory.mktemp(f"hs{i}")
        env = {k: v for k, v in env.items() if "." not in k}
        env["__signing_key__"] = main
        synapse_config_check_inprocess(text, env, d)
    # a second rotation keeps both old keys
    run_wizard("rotate", "synapse.signing_key", "--answers", str(answers), "--yes", check=True)
    ids = [f"ed25519:{first.split()[1]}", f"ed25519:{second.split()[1]}"]
    for text, _ in _homeservers(tree):
        assert set(yaml.safe_load(text)["old_signing_keys"]) == set(ids)
    proc = run_wizard("check", "--answers", str(answers), "--json")
    assert json.loads(proc.stdout)["counts"]["error"] == 0


def test_revoke_expires_in_the_past(site):
    tmp, answers = site
    first = _secrets(tmp)["secrets"]["synapse.signing_key"]
    run_wizard("rotate", "synapse.signing_key", "--revoke", "--answers", str(answers), "--yes", check=True)
    entry = _secrets(tmp)["old_signing_keys"][f"ed25519:{first.split()[1]}"]
    assert entry["expired_ts"] < int(time.time() * 1000) - 86400_000


def test_rotate_all_then_check_clean_and_every_value_new(site):
    tmp, answers = site
    before = _secrets(tmp)["secrets"]
    proc = run_wizard("rotate", "--all", "--answers", str(answers), "--yes", "--json", check=True)
    data = json.loads(proc.stdout)
    after = _secrets(tmp)["secrets"]
    for cid in data["rotated"]:
        assert after[cid] != before[cid], cid
    assert "synapse.signing_key" not in data["rotated"] and "key_vault.rsa_private_key" not in data["rotated"]
    assert after["synapse.signing_key"] == before["synapse.signing_key"]
    assert after["li.admin_htpasswd"] != before["li.admin_htpasswd"]
    groups = T.secret_groups(tmp / "deployment")
    for cid, values in groups.items():
        assert len(set(values)) == 1 and values[0] == after[cid].rstrip("\n"), cid
    proc = run_wizard("check", "--answers", str(answers), "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["counts"]["error"] == 0
    out = proc.stdout
    for v in after.values():
        assert v not in out


def test_rotate_refuses_operator_values_and_unknown_ids(site):
    tmp, answers = site
    before = snapshot(tmp)
    for cid, word in (("push.apns.key", "provided"), ("smtp.password", "provided"), ("nope.secret", "unknown")):
        proc = run_wizard("rotate", cid, "--answers", str(answers), "--yes")
        assert proc.returncode == 2 and word in proc.stderr
    assert snapshot(tmp) == before


def test_rotate_refuses_a_broken_group_but_finishes_an_interrupted_rotation(site):
    tmp, answers = site
    tree = tmp / "deployment"
    s = _secrets(tmp)["secrets"]
    coturn = tree / "main-instance/06-coturn/deployment.yaml"
    text = coturn.read_text()
    coturn.write_text(text.replace(s["turn.shared_secret"], "SomethingElse123456789"))
    proc = run_wizard("rotate", "redis.password", "--answers", str(answers), "--yes")
    assert proc.returncode == 2 and "wizard check" in proc.stderr
    coturn.write_text(text)
    # An interrupted rotation: the secrets file holds the new value, one location still the old one.
    store_path = tmp / "prod.secrets.yaml"
    store = store_path.read_text()
    store = store.replace(s["turn.shared_secret"], "Newvalue0123456789abcdefghijklmnopqrstuvwxyzAB")
    store_path.write_text(store)
    for rel in ("main-instance/01-synapse/secrets.yaml", "config/synapse/homeserver.yaml"):
        p = tree / rel
        p.write_text(p.read_text().replace(s["turn.shared_secret"], "Newvalue0123456789abcdefghijklmnopqrstuvwxyzAB"))
    # without the rotation marked unfinished, the split is not explained
    proc = run_wizard("rotate", "turn.shared_secret", "--answers", str(answers), "--yes")
    assert proc.returncode == 2, proc.stdout
    edit_secrets(store_path, lambda data: data.update(
        rotating={"turn.shared_secret": "Newvalue0123456789abcdefghijklmnopqrstuvwxyzAB"}))
    proc = run_wizard("rotate", "turn.shared_secret", "--answers", str(answers), "--yes")
    assert proc.returncode == 0, proc.stderr
    assert "finished an interrupted rotation" in proc.stdout
    assert set(T.secret_groups(tree)["turn.shared_secret"]) == {"Newvalue0123456789abcdefghijklmnopqrstuvwxyzAB"}
    assert "rotating" not in _secrets(tmp)


def test_rotate_without_secrets_file_or_tree(tmp_path):
    answers = write_answers(tmp_path / "prod.yaml", FULL_ANSWERS)
    proc = run_wizard("rotate", "redis.password", "--answers", str(answers))
    assert proc.returncode == 2 and "no deployment at" in proc.stderr
    run_wizard("init", str(tmp_path / "deployment"), check=True)
    proc = run_wizard("rotate", "redis.password", "--answers", str(answers))
    assert proc.returncode == 2 and "no secrets file" in proc.stderr


def test_a_secret_whose_place_is_left_over_is_not_called_rotated(site):
    """The only file holding grafana.admin_password stops parsing: its new value cannot be placed whole, so it is
    written nowhere — the run says "not rotated", keeps the stored value and exits 1; the other id rotates."""
    tmp, answers = site
    values = tmp / "deployment" / "values" / "prometheus-stack-values.yaml"
    values.write_text(values.read_text() + "grafana:\n  enabled: false\n")
    before = _secrets(tmp)["secrets"]
    proc = run_wizard("rotate", "grafana.admin_password", "redis.password", "--answers", str(answers), "--yes")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "rotated: redis.password" in proc.stdout
    assert "not rotated: grafana.admin_password" in proc.stdout
    assert "values/prometheus-stack-values.yaml:" in proc.stdout and "duplicate key" in proc.stdout
    after = _secrets(tmp)["secrets"]
    assert after["grafana.admin_password"] == before["grafana.admin_password"]
    assert after["redis.password"] != before["redis.password"]
    as_json = json.loads(run_wizard("rotate", "grafana.admin_password", "--answers", str(answers), "--yes",
                                    "--json").stdout)
    assert as_json["rotated"] == [] and as_json["held_back"] == ["grafana.admin_password"]
    assert as_json["exit_code"] == 1 and "grafana.admin_password" not in as_json["locations"]
