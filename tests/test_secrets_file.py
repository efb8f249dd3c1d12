"""The secrets file (PRODUCT.md, "The secrets file"): whole or refused — never taken as "no secrets" —,
version 2 ending with its end line, a version 1 file upgraded once, links written through, and never
written over a change made since it was read."""
from __future__ import annotations

import os
import stat

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from wizard import catalog as C
from wizard.errors import SecretsError
from wizard.store import END_LINE, SecretStore, load_store, write_store

from helpers import FULL_ANSWERS, run_wizard, snapshot, write_answers

KEY = "ed25519 a_Abcd " + "A" * 43


def _value(cid: str) -> str:
    if cid == "synapse.signing_key":
        return KEY
    return "Val" + cid.replace(".", "X").replace("_", "Y")


def _full(path) -> SecretStore:
    s = SecretStore(path)
    for cid in C.required_store_ids():
        s.values[cid] = _value(cid)
    s.values["placeholder.CHANGEME_KUBE_DNS_PICKLE"] = "Zz9"
    s.provided = {"li.admin_password"}
    s.old_signing_keys = {"ed25519:a_Old1": {"key": "B" * 43, "expired_ts": 1764158400000}}
    s.rotating = {"turn.shared_secret": s.values["turn.shared_secret"]}
    s.verified = {"li.admin_htpasswd": "f" * 64}
    s.placed = {"placeholder.CHANGEME_KUBE_DNS_PICKLE": ["a.yaml › Secret/x › stringData.K"]}
    return s


def _write(path, store) -> bytes:
    write_store(store)
    return path.read_bytes()


def test_round_trip_and_the_end_line(tmp_path):
    path = tmp_path / "prod.secrets.yaml"
    store = _full(path)
    data = _write(path, store)
    assert data.decode().rstrip("\n").split("\n")[-1] == END_LINE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert yaml.safe_load(data)["version"] == 2
    back = load_store(path)
    assert (back.values, back.provided, back.old_signing_keys, back.rotating, back.verified, back.placed) == \
        (store.values, store.provided, store.old_signing_keys, store.rotating, store.verified, store.placed)
    assert back.upgraded_from is None


@st.composite
def _hostile_text(draw):
    alphabet = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
    extra = st.sampled_from(["\n", "\r", "\x85", "\u2028", "\u2029", "\t", '"', "'", "\\", "#", ": ", "{", "}",
                             "*", "&", "!", "%", "@", "`", "|", ">", "-", "?", " "])
    parts = draw(st.lists(st.one_of(st.text(alphabet, max_size=6), extra), min_size=1, max_size=12))
    text = "".join(parts)
    return text or "x"


@settings(max_examples=150, deadline=None)
@given(value=_hostile_text())
def test_any_text_round_trips(tmp_path_factory, value):
    path = tmp_path_factory.mktemp("rt") / "s.secrets.yaml"
    store = SecretStore(path)
    store.values["smtp.password"] = value
    store.rotating["redis.password"] = value
    write_store(store)
    back = load_store(path)
    assert back.values["smtp.password"] == value
    assert back.rotating["redis.password"] == value


def test_every_cut_at_a_line_boundary_is_refused(tmp_path):
    path = tmp_path / "prod.secrets.yaml"
    lines = _write(path, _full(path)).decode().split("\n")
    assert lines[-1] == ""  # the file ends with a line break
    for i in range(1, len(lines) - 1):
        path.write_text("\n".join(lines[:i]) + "\n")
        with pytest.raises(SecretsError) as exc:
            load_store(path)
        assert str(path) in str(exc.value), i


def test_cuts_inside_a_line_are_refused(tmp_path):
    path = tmp_path / "prod.secrets.yaml"
    data = _write(path, _full(path))
    for cut in range(5, len(data) - 1, 37):
        path.write_bytes(data[:cut])
        with pytest.raises(SecretsError):
            load_store(path)


@pytest.mark.parametrize("text", ["", "\n", "   \n\n"])
def test_an_empty_file_is_not_no_secrets(tmp_path, text):
    path = tmp_path / "prod.secrets.yaml"
    path.write_text(text)
    path.chmod(0o600)
    with pytest.raises(SecretsError, match="empty"):
        load_store(path)


@pytest.mark.parametrize("change", [
    lambda t: t.replace("secrets:\n", f"secrets:\n  synapse.signing_key: \"{KEY}\"\n", 1),
    lambda t: t.replace(f"\n{END_LINE}", f"\nsecrets:\n  redis.password: \"x\"\n{END_LINE}"),
    lambda t: t.replace("placed:", "verified:\n  a.b: \"x\"\nplaced:"),
], ids=["signing-key-twice", "second-secrets-block", "second-verified-block"])
def test_duplicate_keys_are_refused(tmp_path, change):
    path = tmp_path / "prod.secrets.yaml"
    text = _write(path, _full(path)).decode()
    path.write_text(change(text))
    with pytest.raises(SecretsError, match="duplicate key"):
        load_store(path)


def test_a_dangling_link_is_refused_and_a_link_is_written_through(tmp_path):
    path = tmp_path / "prod.secrets.yaml"
    path.symlink_to(tmp_path / "gone.yaml")
    with pytest.raises(SecretsError, match="points nowhere"):
        load_store(path)
    path.unlink()
    real = tmp_path / "vault" / "real.yaml"
    real.parent.mkdir()
    _write(real, _full(real))
    path.symlink_to(real)
    store = load_store(path)
    store.values["redis.password"] = "NewRedis1"
    write_store(store)
    assert path.is_symlink() and os.readlink(path) == str(real)
    assert load_store(real).values["redis.password"] == "NewRedis1"
    assert stat.S_IMODE(real.stat().st_mode) == 0o600


def test_not_a_regular_file_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "fifo.secrets.yaml"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(SecretsError, match="not a regular file"):
        load_store(fifo)
    folder = tmp_path / "dir.secrets.yaml"
    folder.mkdir(mode=0o700)
    with pytest.raises(SecretsError, match="not a regular file"):
        load_store(folder)


def _v1_text(store: SecretStore, rotating: list[str]) -> str:
    lines = ["# wizard secrets: never commit, never share", "version: 1", "secrets:"]
    lines += [f"  {k}: {yaml.safe_dump(v, default_style=chr(34)).strip()}" for k, v in sorted(store.values.items())]
    if rotating:
        lines.append("rotating: [" + ", ".join(rotating) + "]")
    return "\n".join(lines) + "\n"


def test_version_1_is_upgraded_once_when_complete(tmp_path):
    path = tmp_path / "prod.secrets.yaml"
    full = _full(path)
    path.write_text(_v1_text(full, ["turn.shared_secret"]))
    path.chmod(0o600)
    store = load_store(path)
    assert store.upgraded_from == 1
    assert store.rotating == {"turn.shared_secret": full.values["turn.shared_secret"]}
    write_store(store)
    again = load_store(path)
    assert again.upgraded_from is None and again.values == store.values
    assert path.read_text().rstrip("\n").endswith(END_LINE)


def test_version_1_missing_an_id_may_be_cut_short(tmp_path):
    path = tmp_path / "prod.secrets.yaml"
    full = _full(path)
    del full.values["turn.static_password"]
    path.write_text(_v1_text(full, []))
    path.chmod(0o600)
    with pytest.raises(SecretsError, match="cut short"):
        load_store(path)


def test_never_written_over_a_change_made_since_it_was_read(tmp_path):
    path = tmp_path / "prod.secrets.yaml"
    _write(path, _full(path))
    store = load_store(path)
    other = load_store(path)
    other.values["redis.password"] = "Other1"
    write_store(other)
    store.values["redis.password"] = "Mine2"
    with pytest.raises(SecretsError, match="changed since it was read"):
        write_store(store)
    assert load_store(path).values["redis.password"] == "Other1"
    fresh = SecretStore(tmp_path / "new.secrets.yaml")
    (tmp_path / "new.secrets.yaml").write_text("x")
    fresh.values["redis.password"] = "Mine3"
    with pytest.raises(SecretsError, match="appeared"):
        write_store(fresh)


# ---------------------------------------------------------------- through the command line

@pytest.fixture
def site(tmp_path):
    run_wizard("init", str(tmp_path / "deployment"), check=True)
    answers = write_answers(tmp_path / "prod.yaml", FULL_ANSWERS)
    return tmp_path, answers


@pytest.mark.e2e
@pytest.mark.parametrize("damage", ["cut", "empty", "duplicate", "dangling"])
def test_a_damaged_secrets_file_never_generates_a_new_signing_key(site, damage):
    tmp, answers = site
    run_wizard("--answers", str(answers), "--yes", check=True)
    sf = tmp / "prod.secrets.yaml"
    text = sf.read_text()
    # a fresh tree again: a silent "no secrets" would now generate a new identity
    import shutil

    shutil.rmtree(tmp / "deployment")
    run_wizard("init", str(tmp / "deployment"), check=True)
    if damage == "cut":
        sf.write_text("\n".join(text.split("\n")[:6]) + "\n")
    elif damage == "empty":
        sf.write_text("")
    elif damage == "duplicate":
        key = yaml.safe_load(text)["secrets"]["synapse.signing_key"]
        sf.write_text(text.replace("secrets:\n", f"secrets:\n  synapse.signing_key: \"{key[:-2]}xy\"\n", 1))
    else:
        sf.unlink()
        sf.symlink_to(tmp / "moved-away.yaml")
    before = snapshot(tmp)
    proc = run_wizard("--answers", str(answers), "--yes")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "prod.secrets.yaml" in proc.stderr
    assert snapshot(tmp) == before
    for cmd in (["check"], ["rotate", "turn.shared_secret", "--yes"], ["secrets", "show", "redis.password"]):
        proc = run_wizard(*cmd, "--answers", str(answers))
        assert proc.returncode == 2, (cmd, proc.stdout, proc.stderr)
    assert snapshot(tmp) == before


@pytest.mark.e2e
def test_a_version_1_file_is_rewritten_as_version_2_with_a_warning(site):
    tmp, answers = site
    run_wizard("--answers", str(answers), "--yes", check=True)
    sf = tmp / "prod.secrets.yaml"
    store = load_store(sf)
    sf.write_text(_v1_text(store, []))
    sf.chmod(0o600)
    proc = run_wizard("--answers", str(answers), "--yes")
    assert proc.returncode == 0, proc.stderr
    assert "version 1" in proc.stderr
    assert load_store(sf).values == store.values
    assert sf.read_text().rstrip("\n").endswith(END_LINE)
