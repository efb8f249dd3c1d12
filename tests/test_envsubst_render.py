"""Issue 10 (8, 10): a value that a pod substitutes into a config with envsubst is judged where it is
consumed. Every envsubst'd config of the tree (the main and LI homeserver configs, Sygnal's) is rendered
with the REAL GNU envsubst from the Secret as written, the way its init container does, comments included,
and parsed with PyYAML (YAML 1.1, as Synapse and Sygnal read it):

- for every value the wizard accepts, the structure is what the template means and the substituted value
  reads back as exactly that string (`yes` stays the string `yes`);
- the wizard refuses a value exactly when the real rendering would not carry it (an oracle that does not
  use the wizard), and a list of awkward values that the formats can carry is accepted somewhere;
- the SMTP password holding U+2028 cannot end the comment that mentions ${SMTP_PASSWORD} and inject a key.
"""
from __future__ import annotations

import copy
import json
import re
import subprocess

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import treecheck as T
from helpers import FULL_ANSWERS
from oracles import need_tool
from wizard.answers import answers_from_dict
from wizard.errors import WizardError
from wizard.locate.resolve import Tree
from wizard.plan import make_plan
from wizard.store import load_store

pytestmark = pytest.mark.e2e  # drives the real GNU envsubst, many times

MAIN_CM = ("main-instance/01-synapse/configmap.yaml", "synapse-config", "homeserver.yaml")
MAIN_SECRET = (T.MAIN_SEC, "synapse-secrets")
LI_CM = (T.LI_DEP, "synapse-li-config", "homeserver.yaml")
LI_SECRET = (T.LI_DEP, "synapse-li-secrets")
SYGNAL = "main-instance/07-sygnal/deployment.yaml"
SYGNAL_FORMAT = "${APNS_KEY_ID} ${APNS_TEAM_ID} ${APNS_TOPIC} ${FCM_PROJECT_ID}"

# target -> (config, Secret, VAR, how the value is given: a secrets-file id, or an answers key)
TARGETS = {
    "postgres.synapse_password": (MAIN_CM, MAIN_SECRET, "DB_PASSWORD", "store"),
    "synapse.macaroon_secret": (MAIN_CM, MAIN_SECRET, "MACAROON_SECRET", "store"),
    "synapse.replication_secret": (MAIN_CM, MAIN_SECRET, "REPLICATION_SECRET", "store"),
    "minio.s3_secret_key": (MAIN_CM, MAIN_SECRET, "S3_SECRET_KEY", "store"),
    "key_vault.api_key": (MAIN_CM, MAIN_SECRET, "KEY_VAULT_API_KEY", "store"),
    "turn.shared_secret": (MAIN_CM, MAIN_SECRET, "TURN_SECRET", "store"),
    "postgres.li_password": (LI_CM, LI_SECRET, "DB_PASSWORD", "store"),
    "li.form_secret": (LI_CM, LI_SECRET, "FORM_SECRET", "store"),
    "smtp.password": (MAIN_CM, MAIN_SECRET, "SMTP_PASSWORD", "smtp.password"),
    "push.apns.key_id": ((SYGNAL, "sygnal-config", "sygnal.yaml"), (SYGNAL, "sygnal-secrets"), "APNS_KEY_ID",
                         "push.apns.key_id"),
    "push.apns.topic": ((SYGNAL, "sygnal-config", "sygnal.yaml"), (SYGNAL, "sygnal-secrets"), "APNS_TOPIC",
                        "push.apns.topic"),
}
LINE_BREAKS = ["\n", "\r", "\r\n", "\x85", "\u2028", "\u2029"]
AWKWARD = ['say "hi"', "it's", "a # b", "#lead", "key: value", "{a: b}", "[x]", "*alias", "&anchor", "@at", "%pct",
           " padded ", "trailing ", "ünïcödé", "Ωmega", "yes", "no", "null", "123", "0x1F", "~", "a\\b", "a,b",
           "!tag", "|pipe", ">gt", "-dash", "?q", "`tick`", "$dollar"]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A configured bundled tree with SMTP and push on; the Tree is parsed once and shared."""
    from wizard import app

    tmp = tmp_path_factory.mktemp("render")
    app.copy_templates(tmp / "deployment")
    (tmp / "AuthKey.p8").write_text("-----BEGIN PRIVATE KEY-----\nMIGTAgEA\n-----END PRIVATE KEY-----\n")
    (tmp / "fcm.json").write_text(json.dumps({"type": "service_account", "project_id": "acme-app"}))
    data = _answers_data({})
    answers = answers_from_dict(copy.deepcopy(data), path=tmp / "prod.yaml", base_dir=tmp,
                                env={"SMTP_PW": "Smtp-pw-1"})
    app.apply(answers)
    return tmp, Tree(tmp / "deployment"), load_store(tmp / "prod.secrets.yaml")


def _answers_data(push_overrides: dict) -> dict:
    data = copy.deepcopy(FULL_ANSWERS)
    data["smtp"] = {"enabled": True, "host": "smtp.acme-corp.net", "user": "mailer", "password": "env:SMTP_PW",
                    "from": "matrix@acme-corp.net"}
    apns = {"key_file": "AuthKey.p8", "key_id": "KEYID12345", "team_id": "TEAM123456", "topic": "net.acme.app"}
    apns.update(push_overrides)
    data["push"] = {"enabled": True, "apns": apns, "fcm": {"service_account_file": "fcm.json"}}
    return data


def _plan_with(site, target: str, value: str):
    tmp, tree, store = site
    how = TARGETS[target][3]
    store = store.copy()
    env = {"SMTP_PW": "Smtp-pw-1"}
    push = {}
    if how == "store":
        store.values[target] = value
    elif how == "smtp.password":
        env["SMTP_PW"] = value
    else:
        push[how.split(".")[-1]] = value
    answers = answers_from_dict(_answers_data(push), path=tmp / "prod.yaml", base_dir=tmp, env=env)
    return make_plan(tree, answers, store)


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # PyYAML's safe reading (YAML 1.1), in C


def _load(text: str):
    return yaml.load(text, Loader=_Loader)


def _objects(text: str) -> list[dict]:
    return [d for d in yaml.load_all(text, Loader=_Loader) if isinstance(d, dict)]


def _named(text: str, kind: str, name: str) -> dict:
    (hit,) = [d for d in _objects(text) if d.get("kind") == kind and d["metadata"]["name"] == name]
    return hit


def _texts(site, plan) -> dict[str, str]:
    tmp, tree, _ = site
    return lambda rel: plan.new_texts.get(rel) if rel in plan.new_texts else T.read_text(tree.root / rel)


def _env(read, target: str) -> tuple[dict[str, str], str | None]:
    (cm, secret, _, _) = TARGETS[target]
    sd = _named(read(secret[0]), "Secret", secret[1])["stringData"]
    if secret[1] == "sygnal-secrets":  # the init container maps three keys and reads project_id from the JSON
        env = {"APNS_KEY_ID": sd["apns-key-id"], "APNS_TEAM_ID": sd["apns-team-id"], "APNS_TOPIC": sd["apns-topic"],
               "FCM_PROJECT_ID": json.loads(sd["fcm-service-account.json"])["project_id"]}
        return env, SYGNAL_FORMAT
    return {k: str(v) for k, v in sd.items() if "." not in k}, None  # envFrom loads the keys that are names


def _template(read, target: str) -> str:
    cm = TARGETS[target][0]
    return _named(read(cm[0]), "ConfigMap", cm[1])["data"][cm[2]]


def gnu_envsubst(text: str, env: dict[str, str], shell_format: str | None) -> str:
    args = [need_tool("envsubst", "gettext-base")] + ([shell_format] if shell_format else [])
    proc = subprocess.run(args, input=text.encode("utf-8"), capture_output=True, env=env, check=True)
    return proc.stdout.decode("utf-8")


_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def _meant(node, env, only):
    """The template's structure with each reference replaced, as a string, by its value."""
    if isinstance(node, dict):
        return {_meant(k, env, only): _meant(v, env, only) for k, v in node.items()}
    if isinstance(node, list):
        return [_meant(x, env, only) for x in node]
    if isinstance(node, str):
        def sub(m):
            name = m.group(1) or m.group(2)
            return m.group(0) if only is not None and name not in only else env.get(name, "")
        return _REF.sub(sub, node)
    return node


def carried(template: str, env: dict[str, str], shell_format: str | None) -> bool:
    """The oracle: the real envsubst rendering parses to what the template means."""
    only = {a or b for a, b in _REF.findall(shell_format)} if shell_format else None
    try:
        rendered = _load(gnu_envsubst(template, env, shell_format))
    except yaml.YAMLError:
        return False
    return rendered == _meant(_load(template), env, only)


_REFERENCES: dict = {}


def _reference(site, target: str):
    """The target's template and environment as the wizard writes them with a plain value."""
    key = (id(site), target)
    if key not in _REFERENCES:
        read = _texts(site, _plan_with(site, target, "Plainvalue1"))
        env, fmt = _env(read, target)
        _REFERENCES[key] = (_template(read, target), env, fmt)
    return _REFERENCES[key]


def _judge(site, target: str, value: str) -> bool:
    """Run the wizard; compare its decision with the oracle; when it accepted, check the files it wrote.
    Returns whether it accepted."""
    var = TARGETS[target][2]
    try:
        plan = _plan_with(site, target, value)
    except WizardError as exc:
        accepted, message = False, str(exc)
    else:
        accepted, message = True, ""
    # the oracle renders the configured template with the value, independently of what the wizard wrote
    template, env, fmt = _reference(site, target)
    assert accepted == carried(template, {**env, var: value}, fmt), (target, value, message)
    if accepted:
        read = _texts(site, plan)
        env, fmt = _env(read, target)
        assert env[var] == value, (target, value)  # the Secret as written holds exactly the value
        template = _template(read, target)
        rendered = _load(gnu_envsubst(template, env, fmt))
        only = {a or b for a, b in _REF.findall(fmt)} if fmt else None
        assert rendered == _meant(_load(template), env, only)
    else:
        assert target in message
        assert len(value) < 6 or value not in message  # the refusal never quotes the secret
    return accepted


_PIECES = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=4),
    st.sampled_from(LINE_BREAKS + ['"', "'", "\\", "#", " #", ": ", "{", "}", "[", "*", "&", "!", "%", "@", "|",
                                   ">", "`", "$", "${X}", " ", "\t", "yes", "é"]),
)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(target=st.sampled_from(sorted(TARGETS)), value=st.lists(_PIECES, min_size=1, max_size=8).map("".join))
def test_every_accepted_value_renders_as_meant(site, target, value):
    _judge(site, target, value)


@pytest.mark.parametrize("brk", LINE_BREAKS, ids=lambda b: repr(b))
def test_every_line_break_is_judged(site, brk):
    """Judged like any value (decision = the real rendering's); an unquoted reference never carries one."""
    for target in sorted(TARGETS):
        accepted = _judge(site, target, f"abc{brk}enable_registration: true")
        if target in ("postgres.synapse_password", "minio.s3_secret_key", "push.apns.key_id"):
            assert not accepted, (target, brk)


# one of each kind of reference: unquoted, "quoted", the SMTP password the wizard writes, Sygnal's (SHELL-FORMAT)
KINDS = ("postgres.synapse_password", "synapse.macaroon_secret", "smtp.password", "push.apns.topic")


def test_awkward_values_the_formats_carry_are_accepted(site):
    accepted_somewhere = {v: [] for v in AWKWARD}
    for target in KINDS:
        for value in AWKWARD:
            if _judge(site, target, value):
                accepted_somewhere[value].append(target)
    # quoted references ("${MACAROON_SECRET}") carry almost all of them; refusing everything does not pass
    nowhere = [v for v, where in accepted_somewhere.items() if not where]
    assert nowhere == [], nowhere
    quoted = [v for v in AWKWARD if "synapse.macaroon_secret" in accepted_somewhere[v]]
    assert sorted(set(AWKWARD) - set(quoted)) == sorted(['say "hi"', "a\\b"])  # `"` and `\` end a "…" value


def test_the_smtp_password_cannot_escape_the_comment_that_names_it(site):
    """The configmap carries `# … written as ${SMTP_PASSWORD} once enabled`: U+2028 would end that comment
    for YAML and turn the rest into keys (enable_registration: true)."""
    value = "pw\u2028enable_registration: true"
    tmp, tree, _ = site
    template = _named(T.read_text(tree.root / MAIN_CM[0]), "ConfigMap", MAIN_CM[1])["data"][MAIN_CM[2]]
    assert "${SMTP_PASSWORD}" in "\n".join(ln for ln in template.split("\n") if ln.lstrip().startswith("#"))
    assert not _judge(site, "smtp.password", value)
