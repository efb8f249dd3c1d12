"""The answers file the guided setup saves: commented, in the contract's order, read back exactly by
the loader, and never holding a secret."""
from __future__ import annotations

import os
import stat

import pytest
import yaml

from helpers import FULL_ANSWERS
from wizard import answers as A
from wizard.answers_file import render_answers, save_answers
from wizard.catalog import answers as S
from wizard.errors import AnswersError

FULL = dict(FULL_ANSWERS, turn={"external_ip": "198.51.100.7"}, key_vault={"rsa_bits": 4096},
            smtp={"enabled": True, "host": "smtp.acme-corp.net", "port": 2525, "user": "synapse",
                  "password": "env:SMTP_PW", "from": "Matrix <matrix@acme-corp.net>",
                  "require_transport_security": False},
            li=dict(FULL_ANSWERS["li"], admin_password="file:secrets/li-admin.txt", auth_realm="LI: staff # only"),
            secrets_file="prod.secrets.yaml", well_known_dir="../www",
            checklist={"firewall.ports": True, "li.legal_review": True})


# PRODUCT.md's key list ("The answers file"): the contract the schema keeps.
CONTRACT = {
    "version", "deployment", "server_name",
    *(f"domains.{k}" for k in ("matrix", "element", "turn", "li_matrix", "li_element", "li_admin", "livekit")),
    "tls.mode", "tls.acme_email", "tls.secret_name",
    "li.allowed_cidrs", "li.admin_user", "li.admin_password", "li.auth_realm",
    "storage.class", "turn.external_ip", "minio.s3_access_key", "key_vault.rsa_bits",
    "smtp.enabled", "smtp.host", "smtp.port", "smtp.user", "smtp.password", "smtp.from",
    "smtp.require_transport_security",
    "push.enabled", "push.apns.key_file", "push.apns.key_id", "push.apns.team_id", "push.apns.topic",
    "push.fcm.service_account_file",
    "secrets_file", "well_known_dir", "checklist", "placeholders", "locations",
}


def test_schema_is_the_contract():
    """Every key of PRODUCT's list, and no other, holds a value; the sections are exactly their parents."""
    assert {k.key for k in S.leaves()} == CONTRACT
    parents = {k.parent for k in S.SCHEMA if k.parent}
    assert {k.key for k in S.SCHEMA if k.type == S.SECTION} == parents
    assert set(S.required_keys()) == {"version", "server_name"}


@pytest.mark.parametrize("data", [
    {"version": 1, "server_name": "acme-corp.net"},
    dict(FULL_ANSWERS),
    FULL,
    dict(FULL_ANSWERS, li={"allowed_cidrs": [], "admin_user": "yes"}, storage={"class": "on"}),
], ids=["minimal", "full-answers", "everything", "yaml-words"])
def test_reads_back_exactly(tmp_path, data):
    text = render_answers(data, header="first line\nsecond line")
    assert text.startswith("# first line\n# second line\n")
    assert yaml.safe_load(text) == {k: v for k, v in data.items()}
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "li-admin.txt").write_text("pw-from-file\n")
    env = {"SMTP_PW": "smtp-pw"}
    path = tmp_path / "a.yaml"
    path.write_text(text)
    assert A.load_answers(path, env=env) == A.answers_from_dict(data, path=path, base_dir=tmp_path, env=env)


def test_every_key_is_commented():
    text = render_answers(FULL)
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#") and not line.startswith("  firewall") \
                and not line.startswith("  li.legal"):
            assert " # " in line, line


def test_absent_optional_keys_are_shown_as_commented_examples():
    text = render_answers({"version": 1, "server_name": "acme-corp.net", "turn": {}, "li": {"admin_user": "a"}})
    assert "  # external_ip: 198.51.100.7" in text
    assert "  # admin_password: env:LI_ADMIN_PASSWORD" in text
    assert "# well_known_dir: well-known" in text


@pytest.mark.parametrize("key, value", [("li", {"admin_password": "hunter2-clear"}),
                                        ("smtp", {"enabled": True, "password": "clear-text"})])
def test_refuses_a_secret_in_clear(key, value):
    with pytest.raises(AnswersError) as exc:
        render_answers({"version": 1, "server_name": "acme-corp.net", key: value})
    assert exc.value.where == f"{key}.{'admin_password' if key == 'li' else 'password'}"


def test_refuses_unknown_keys():
    with pytest.raises(AnswersError) as exc:
        render_answers({"version": 1, "server_name": "acme-corp.net", "domains": {"matrx": "x.acme-corp.net"}})
    assert exc.value.where == "domains.matrx"


def test_saved_atomically_keeping_mode(tmp_path):
    path = tmp_path / "wizard-answers.yaml"
    save_answers(path, {"version": 1, "server_name": "acme-corp.net"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    os.chmod(path, 0o640)
    save_answers(path, {"version": 1, "server_name": "acme-corp.org"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert yaml.safe_load(path.read_text())["server_name"] == "acme-corp.org"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wizard-answers.yaml"]  # no temp file left
