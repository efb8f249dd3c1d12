"""The planner in-process (issue 12, 3): a pure function of the tree, the answers, the secrets file and what it is
handed — the generators (the only randomness), the clock and the deny-list. It writes nothing, and the same inputs
give the same plan, byte for byte.
"""
from __future__ import annotations

import shutil
from collections import defaultdict
from pathlib import Path

import bcrypt
import pytest

from helpers import FULL_ANSWERS, snapshot, write_answers
from wizard import generate
from wizard.answers import load_answers
from wizard.locate.resolve import Tree
from wizard.plan import PlanErrors, make_plan
from wizard.store import SecretStore

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "deployment"


class Recording(generate.Generators):
    """The real CSPRNG generators, each value drawn recorded in order."""

    def __init__(self):
        super().__init__()
        self.drawn: list[tuple[str, str]] = []
        self.htpasswd_users: list[str] = []

    def new(self, form, **params):
        value = super().new(form, **params)
        self.drawn.append((form, value))
        return value

    def htpasswd(self, user, pw):
        self.htpasswd_users.append(user)
        line = super().htpasswd(user, pw)()  # bcrypt draws its salt: recorded like any value
        self.drawn.append(("htpasswd", line))
        return lambda: line


class Replaying(Recording):
    """Hands out again, form by form and in order, what a Recording drew (no randomness of its own)."""

    def __init__(self, drawn, substitute=None):
        super().__init__()
        self.queue = defaultdict(list)
        for form, value in drawn:
            self.queue[form].append(value)
        self.substitute = substitute or {}

    def new(self, form, **params):
        value = self.queue[form].pop(0)
        value = self.substitute.get(value, value)
        self.drawn.append((form, value))
        return value

    def htpasswd(self, user, pw):
        self.htpasswd_users.append(user)
        line = self.queue["htpasswd"].pop(0)
        self.drawn.append(("htpasswd", line))
        return lambda: line


@pytest.fixture
def site(tmp_path, monkeypatch):
    shutil.copytree(TEMPLATES, tmp_path / "deployment")
    write_answers(tmp_path / "prod.yaml", FULL_ANSWERS)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _plan(site: Path, gen, *, store=None, now_ms=1_000, denylist=frozenset(), rotate=()):
    return make_plan(Tree(site / "deployment"), load_answers(site / "prod.yaml"), store or SecretStore(None),
                     gen=gen, now_ms=now_ms, denylist=denylist, rotate=rotate)


def test_every_secret_comes_from_the_generators_it_is_handed(site):
    gen = Recording()
    plan = _plan(site, gen)
    drawn = [v for form, v in gen.drawn if form != "htpasswd"]
    assert len(drawn) == len(set(drawn)) >= 20
    derived = set(plan.store.values) - set(plan.generated)
    for cid in plan.generated:
        assert plan.store.values[cid] in drawn, cid
    # the one value not drawn is derived from drawn ones: an htpasswd line for the LI admin's password
    assert len(derived) == 1 and gen.htpasswd_users == [FULL_ANSWERS["li"]["admin_user"]]
    (line,) = (plan.store.values[cid] for cid in derived)
    user, _, digest = line.partition(":")
    assert user == FULL_ANSWERS["li"]["admin_user"]
    assert bcrypt.checkpw(plan.store.values["li.admin_password"].encode(), digest.encode())


def test_planning_writes_nothing(site):
    before = snapshot(site)
    plan = _plan(site, Recording())
    assert plan.changed_files and plan.store_changed
    assert snapshot(site) == before
    assert not (site / "prod.secrets.yaml").exists()


def test_the_same_inputs_give_the_same_plan(site):
    first = Recording()
    a = _plan(site, first)
    b = _plan(site, Replaying(first.drawn))
    assert a.new_texts == b.new_texts and a.changed_files == b.changed_files
    assert a.store.values == b.store.values and sorted(a.generated) == sorted(b.generated)
    # other values drawn: another plan (nothing hidden chose them)
    c = _plan(site, Recording())
    assert c.new_texts != a.new_texts and set(c.store.values.values()).isdisjoint(
        v for k, v in a.store.values.items() if k in a.generated)


def test_the_clock_is_the_one_handed_in(site):
    first = _plan(site, Recording())
    store = first.store
    old_line = store.values["synapse.signing_key"]
    kid, pub = generate.verify_key_b64(old_line)
    again = _plan(site, Recording(), store=store, now_ms=1_234_567, rotate=("synapse.signing_key",))
    assert again.store.values["synapse.signing_key"] != old_line
    assert again.store.old_signing_keys[kid] == {"key": pub, "expired_ts": 1_234_567}


def test_the_deny_list_is_the_one_handed_in(site):
    first = Recording()
    plan = _plan(site, first)
    line = plan.store.values["synapse.signing_key"]
    _, pub = generate.verify_key_b64(line)
    # the same key drawn again, now on the deny-list it is handed: refused by name, nothing else decides
    with pytest.raises(PlanErrors) as exc:
        _plan(site, Replaying(first.drawn), denylist=frozenset({pub}))
    assert "synapse.signing_key" in str(exc.value) and "deny-list" in str(exc.value)
    assert line not in str(exc.value)
    assert _plan(site, Replaying(first.drawn), denylist=frozenset({"someone-else"})).store.values[
        "synapse.signing_key"] == line


def test_a_degenerate_key_from_the_generators_is_refused_too(site):
    first = Recording()
    _plan(site, first)
    real = next(v for f, v in first.drawn if f == "signing_key")
    kid = real.split()[1]
    zeros = f"ed25519 {kid} " + "A" * 43
    with pytest.raises(PlanErrors) as exc:
        _plan(site, Replaying(first.drawn, substitute={real: zeros}))
    assert "synapse.signing_key" in str(exc.value) and "degenerate" in str(exc.value)
