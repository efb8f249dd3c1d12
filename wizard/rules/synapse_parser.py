"""synapse-config: Synapse's own config parser, in this process, on every homeserver config of the tree.

A homeserver config is a YAML mapping with `server_name` (and listeners, a database, a signing key path or
a public base URL), embedded in a ConfigMap or a plain file, wherever it is. Each is judged as its pod will
read it: rendered with the Secret values its pod loads when a pod renders it with envsubst (wizard.consumers;
a plain copy no pod renders takes the environment of the rendered config it resembles most), then prepared as
CATALOG.md says — `signing_key_path`, `log_config`, `media_store_path` and `pid_file` pointed at temporary files,
`modules` and `media_storage_providers` dropped (their modules are not installable here), nothing else.
A config the workers of one instance render the same way is judged once.

Secrets are on disk only in 0600 files inside a private (0700) temporary folder, removed afterwards; the
signing key Synapse reads is a throwaway one (the tree's own key is judged by the signing-key rule). What
Synapse says is reported in its words, every secret value masked, at the config's FILE:LINE (the key
Synapse names, when it names one).

Without Synapse installed: one info line saying how to enable the check. Configs that still hold
placeholders (a tree not configured yet) are not judged: one info line names them all.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from typing import Iterator

from wizard.rules.finding import ERROR, INFO, Finding
from wizard.rules.model import ConfigDoc, TreeModel, node_at

INSTALL = "pip install 'matrix-deploy-wizard[synapse]'"
PATH_KEYS = ("signing_key_path", "log_config", "media_store_path", "pid_file")
DROPPED_KEYS = ("modules", "media_storage_providers")
_HOMESERVER_KEYS = ("listeners", "database", "signing_key_path", "public_baseurl")
_NAMED = re.compile(r"`([^`\s]+)`|'([^'\s]+)'|\"([^\"\s]+)\"")
_LOG_CONFIG = """\
version: 1
formatters:
  precise:
    format: '%(asctime)s - %(name)s - %(levelname)s - %(message)s'
handlers:
  console:
    class: logging.StreamHandler
    formatter: precise
root:
  level: WARNING
  handlers: [console]
disable_existing_loggers: false
"""


class ParserMissing(ImportError):
    pass


def load_parser():
    """(HomeServerConfig, ConfigError) from Synapse, or ParserMissing when Synapse is not importable."""
    try:
        import synapse  # noqa: F401 - the package itself first: a blocked or absent Synapse stops here
        from synapse.config._base import ConfigError
        from synapse.config.homeserver import HomeServerConfig
    except ImportError as exc:
        raise ParserMissing(str(exc)) from None
    return HomeServerConfig, ConfigError


@dataclass
class Rendering:
    doc: ConfigDoc
    text: str  # the config as its pod reads it
    secrets: dict[str, str] = field(default_factory=dict)  # secret value -> what it is (masked in messages)

    @property
    def label(self) -> str:
        return self.doc.label

    def line(self, node=None) -> int:
        return self.doc.line(node if node is not None else self.doc.node)


def homeserver_docs(model: TreeModel) -> list[ConfigDoc]:
    from wizard.locate.yamlspan import map_get

    return [doc for doc in model.configs
            if doc.fmt == "yaml" and doc.node.kind == "map" and map_get(doc.node, "server_name") is not None
            and any(map_get(doc.node, k) is not None for k in _HOMESERVER_KEYS)]


def synapse_config(model: TreeModel, ctx) -> Iterator[Finding]:
    docs = homeserver_docs(model)
    first = docs[0] if docs else None
    where = (first.file, first.line(first.node)) if first else (".", 0)
    try:
        parser = load_parser()
    except ParserMissing:
        yield Finding(*where, INFO, "synapse-config",
                      f"Synapse's config parser is not installed: {len(docs)} homeserver config(s) not judged by it",
                      f"to enable the check: {INSTALL}")
        return
    known = dict(getattr(ctx, "secrets", None) or {})
    pending: list[Rendering] = []
    judged = []
    survey = getattr(ctx, "survey", None)
    for r in renderings(model, docs, survey.index if survey is not None else None):
        if _holds_token(r.text):
            pending.append(r)
        else:
            judged.append(r)
    if pending:
        labels = ", ".join(dict.fromkeys(f"{r.doc.file} ({r.label})" if r.doc.owner else r.doc.file
                                         for r in pending))
        p = pending[0]
        yield Finding(p.doc.file, p.line(), INFO, "synapse-config",
                      f"{len(pending)} homeserver config(s) still hold placeholders and were not judged by Synapse's "
                      f"parser: {labels}", "configure the tree first: wizard --answers FILE")
    if not judged:
        return
    from wizard.ui.render import Masker

    folder = tempfile.mkdtemp(prefix="wizard-synapse-")  # mode 0700
    try:
        for i, r in enumerate(judged):
            problem = _judge(r, parser, os.path.join(folder, str(i)))
            if problem is None:
                continue
            message, path = problem
            mask = Masker({**r.secrets, **known})  # named by catalog id where the value is one
            yield Finding(r.doc.file, _line_for(r, message, path), ERROR, "synapse-config",
                          f"Synapse refuses {r.label}: {mask(message)}",
                          "fix the config where Synapse says (Synapse's own parser, as the pod will read it)")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------- each config as its pod reads it

def renderings(model: TreeModel, docs: list[ConfigDoc], index=None) -> list[Rendering]:
    """Each homeserver config as the pods that read it render it (`index`: the tree's TreeIndex, when built)."""
    from wizard import consumers as K
    from wizard.index import TreeIndex

    tree = model.tree
    index = index if index is not None else TreeIndex.build(tree)
    configs = K.envsubst_configs(tree, index)
    secret_cache: dict[tuple, str | None] = {}

    def environment(cfg) -> tuple[dict[str, str], dict[str, str]]:
        env = dict(cfg.literal)
        env.update({v: K.STAND_IN for v in cfg.computed})
        secrets = {}
        for var, sk in cfg.env.items():
            key = (sk.file, sk.name, sk.key)
            if key not in secret_cache:
                secret_cache[key] = K.secret_value(index, sk)
            value = secret_cache[key]
            if value is not None:
                env[var] = value
                secrets[value] = f"Secret/{sk.name} {sk.key}"
        return env, secrets

    rendered: list[Rendering] = []
    by_template: list[tuple[str, object]] = []  # (template, envsubst config) of every rendered config
    seen: set = set()

    def add(doc, text, secrets):
        key = (doc.file, doc.label, text)
        if key not in seen:
            seen.add(key)
            rendered.append(Rendering(doc, text, secrets))

    plain = []
    for doc in docs:
        template = doc.view.text if doc.owner is not None else _doc_text(doc)
        if doc.owner is None:
            plain.append((doc, template))
            continue
        key = doc.key.split(".", 1)[1] if "." in doc.key else doc.key
        cfgs = [c for c in configs if c.file == doc.owner.file and c.configmap == doc.owner.name and c.key == key]
        if not cfgs:
            add(doc, template, {})
            continue
        for cfg in cfgs:
            env, secrets = environment(cfg)
            add(doc, K.envsubst(template, env, cfg.only), secrets)
            by_template.append((template, cfg))
    for doc, text in plain:
        refs = K._REF.search(_content(text)) is not None
        if not refs or not by_template:
            add(doc, text, {})
            continue
        template, cfg = max(by_template, key=lambda tc: _resemblance(text, tc[0]))
        env, secrets = environment(cfg)
        add(doc, K.envsubst(text, env, cfg.only), secrets)
    return rendered


def _doc_text(doc: ConfigDoc) -> str:
    """The text of one YAML document of a plain file (the whole file when it holds one)."""
    text = doc.view.text
    return text[doc.node.start:doc.node.end] if text.count("\n---") else text


def _content(text: str) -> str:
    return "\n".join(line for line in text.split("\n") if not line.lstrip().startswith("#"))


def _resemblance(a: str, b: str) -> float:
    la, lb = set(a.split("\n")), set(b.split("\n"))
    return len(la & lb) / max(1, len(la | lb))


def _holds_token(text: str) -> bool:
    from wizard.catalog import TOKEN_RE

    return TOKEN_RE.search(_content(text)) is not None


# ---------------------------------------------------------------- Synapse's judgement

def _write_private(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


def _judge(r: Rendering, parser, workdir: str) -> tuple[str, list] | None:
    """None when Synapse accepts the config; else (Synapse's message, the key path it names)."""
    import yaml

    from wizard import generate

    HomeServerConfig, ConfigError = parser
    try:
        config = yaml.safe_load(r.text)
    except yaml.YAMLError as exc:
        return f"the config as its pod renders it is not valid YAML: {exc}", []
    if not isinstance(config, dict):
        return "the config as its pod renders it is not a mapping", []
    os.mkdir(workdir, 0o700)
    key_file = os.path.join(workdir, "signing.key")
    _write_private(key_file, generate.signing_key() + "\n")
    log_file = os.path.join(workdir, "log.yaml")
    _write_private(log_file, _LOG_CONFIG)
    media = os.path.join(workdir, "media_store")
    os.mkdir(media, 0o700)
    prepared = dict(config)
    prepared.update({"signing_key_path": key_file, "log_config": log_file, "media_store_path": media,
                     "pid_file": os.path.join(workdir, "homeserver.pid")})
    for k in DROPPED_KEYS:
        prepared.pop(k, None)
    path = os.path.join(workdir, "homeserver.yaml")
    _write_private(path, yaml.safe_dump(prepared, sort_keys=False))
    out = io.StringIO()
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            HomeServerConfig.load_config("", ["-c", path])
    except ConfigError as exc:
        return str(getattr(exc, "msg", None) or exc), list(getattr(exc, "path", None) or [])
    except SystemExit:  # argparse's way of refusing
        said = " ".join(out.getvalue().split())[-500:]
        return said or "Synapse's parser stopped", []
    except Exception as exc:  # noqa: BLE001 - a section that breaks on the value is a refusal too
        return f"{type(exc).__name__}: {exc}", []
    finally:
        logging.disable(previous)
    return None


def _line_for(r: Rendering, message: str, path: list) -> int:
    """The line of the key Synapse names: its path, else a key it quotes (`typing`), else the config's top."""
    doc = r.doc
    if path:
        _, deepest = node_at(doc.node, [p for p in path])
        if deepest is not None and deepest is not doc.node:
            return doc.line(deepest)
    names = [a or b or c for a, b, c in _NAMED.findall(message)]
    for name in names:
        node = _find_key(doc.node, name)
        if node is not None:
            return doc.line(node)
    return r.line()


def _find_key(node, name: str):
    """The first mapping key `name` in the tree of `node` (breadth first: the shallowest)."""
    queue = [node]
    while queue:
        n = queue.pop(0)
        if n.kind == "map":
            for k, v in n.value:
                if str(k.value) == name:
                    return k
                queue.append(v)
        elif n.kind == "seq":
            queue.extend(n.value)
    return None
