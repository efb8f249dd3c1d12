"""stray-domain: a public domain in a host, URL or `domain` value that is not one of ours.

A tree copied from another deployment keeps that deployment's hosts in places the wizard does
not own (a Helm values file, an embedded config). Ours are the configured ones (answers:
server_name, domains.*, the SMTP host) and the zone they live in; the documentation domains
example.com/.org/.net (example.com has its own rule); and the public services below. Extend the
list for one run with `wizard check --allow-domain DOMAIN`, or for good in PUBLIC_SERVICE_DOMAINS.
"""
from __future__ import annotations

import re
from typing import Iterable, Iterator

from wizard.locate.jsonspan import JNode
from wizard.rules.finding import WARNING, Finding
from wizard.rules.model import TreeModel

# Public services a deployment legitimately names (a domain matches itself and its subdomains).
PUBLIC_SERVICE_DOMAINS: tuple[str, ...] = (
    # container registries
    "docker.io", "docker.com", "ghcr.io", "quay.io", "gcr.io", "pkg.dev", "registry.k8s.io", "k8s.gcr.io",
    "public.ecr.aws", "mcr.microsoft.com", "registry.gitlab.com",
    # ACME certificate authorities
    "letsencrypt.org", "zerossl.com", "buypass.com", "pki.goog",
    # Matrix / Element public infrastructure
    "matrix.org", "vector.im", "element.io", "riot.im",
    # push notification services (Sygnal)
    "push.apple.com", "googleapis.com", "google.com",
    # chart repositories, docs and code hosts named in comments-turned-values
    "github.com", "github.io", "githubusercontent.com", "jetstack.io", "min.io", "livekit.io",
    "cloudnative-pg.io", "kubernetes.io", "k8s.io", "grafana.com", "prometheus.io",
)
# Documentation domains (RFC 2606): placeholders, never anyone's real host.
EXAMPLE_DOMAINS: tuple[str, ...] = ("example.com", "example.org", "example.net")
# Names that never leave the cluster or the machine.
PRIVATE_SUFFIXES = ("svc", "local", "internal", "localhost", "localdomain", "test", "invalid", "example", "lan",
                    "arpa", "cluster")
# Last labels that are file extensions, not top-level domains, in host-like values.
_FILE_EXTENSIONS = {"yaml", "yml", "json", "conf", "cfg", "key", "crt", "pem", "csr", "txt", "log", "sql", "env",
                    "ini", "toml", "html", "js", "css", "sh", "py", "md", "stdout", "stderr", "sock", "pid", "db"}

_DOMAIN = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")
_URL = re.compile(r"(?<![A-Za-z0-9+.-])(?:https?|wss?|rediss?|postgres(?:ql)?|mysql|amqps?|mqtts?|s3|ldaps?|smtps?|"
                  r"sftp|ftps?|grpcs?)://(?:[^@/\s'\"]*@)?([A-Za-z0-9.-]+)", re.IGNORECASE)
_TURN = re.compile(r"(?<![A-Za-z0-9+.-])(?:turns?|stuns?):(?!//)([A-Za-z0-9.-]+)", re.IGNORECASE)
# `host=x`, `realm = x`, `server-name=x`, `Host:\ x` (haproxy), `smtp_host: x` inside text and embedded files
_HOST_ASSIGN = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]*(?:host|hostname|domain|realm|server[-_]?name)"
                          r"\s*(?:=|:\\ |:)\s*[\"']?([A-Za-z0-9.-]+)(?![\w\[(.-])", re.IGNORECASE)
_HOST_KEY_SUFFIXES = ("host", "hosts", "hostname", "hostnames", "domain", "domains", "dnsnames", "servername",
                      "servernames", "servers", "realm")


def is_host_key(key: str) -> bool:
    k = re.sub(r"[-_.\s]", "", str(key)).lower()
    return k.endswith(_HOST_KEY_SUFFIXES)


def looks_public(host: str) -> bool:
    host = host.lower().rstrip(".")
    if not _DOMAIN.fullmatch(host):
        return False
    last = host.rsplit(".", 1)[-1]
    return last not in _FILE_EXTENSIONS and last not in PRIVATE_SUFFIXES and not host.endswith(".cluster.local")


def _under(host: str, domains: Iterable[str]) -> bool:
    return any(host == d or host.endswith("." + d) for d in domains)


class DomainPolicy:
    def __init__(self, answers=None, extra: Iterable[str] = ()):
        self.configured: set[str] = set()
        self.zones: set[str] = set()
        if answers is not None:
            self.configured.add(answers.server_name)
            self.configured.update(v for v in (answers.domains or {}).values() if v)
            smtp = getattr(answers, "smtp", None)
            if smtp is not None and smtp.enabled and smtp.host:
                self.configured.add(smtp.host)
            base = answers.server_name[len("matrix."):] if answers.server_name.startswith("matrix.") \
                else answers.server_name
            self.zones.add(base)
            for d in self.configured:  # the zone of a configured host: hs.acme.net -> acme.net
                labels = d.split(".")
                if len(labels) >= 3:
                    self.zones.add(".".join(labels[1:]))
        self.extra = tuple(d.lower().strip(".") for d in extra if d)
        self.has_answers = answers is not None

    def allowed(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return (host in self.configured or _under(host, self.zones) or _under(host, EXAMPLE_DOMAINS)
                or _under(host, PUBLIC_SERVICE_DOMAINS) or _under(host, self.extra))


def _walk(node: JNode, key: str, parent: JNode | None) -> Iterator[tuple[str, JNode]]:
    """(key the scalar sits under, scalar) for every string scalar; list items take their list's key;
    an env-style {name: X_HOST, value: …} gives its value the key X_HOST."""
    if node.kind == "map":
        name = next((v.value for k, v in node.value if k.value == "name" and v.kind == "scalar"), None)
        for k, v in node.value:
            sub = str(k.value)
            if sub == "value" and isinstance(name, str) and is_host_key(name):
                sub = name
            yield from _walk(v, sub, node)
    elif node.kind == "seq":
        for x in node.value:
            yield from _walk(x, key, node)
    elif isinstance(node.value, str):
        yield key, node


def _candidates(model: TreeModel) -> Iterator[tuple[str, int, str]]:
    """(file, line, host) of every host-like thing in a value."""
    for doc in list(model.objects) + list(model.configs):
        for key, node in _walk(doc.node, "", None):
            if is_host_key(key):
                for part in re.split(r"[\s,;]+", node.value):
                    part = part.strip("'\"").removeprefix("*.")
                    if part:
                        yield doc.file, doc.view.line_of(node.start), part
    for vt in model.lines():
        for rx in (_URL, _TURN, _HOST_ASSIGN):
            for m in rx.finditer(vt.text):
                yield vt.file, vt.line, m.group(1)


def stray_domain(model: TreeModel, ctx) -> Iterator[Finding]:
    policy = DomainPolicy(getattr(ctx, "answers", None), getattr(ctx, "allow_domains", ()))
    seen = set()
    for file, line, host in _candidates(model):
        host = host.lower().rstrip(".")
        if (file, line, host) in seen or not looks_public(host) or policy.allowed(host):
            continue
        seen.add((file, line, host))
        known = "not server_name or a domains.* of the answers" if policy.has_answers \
            else "no answers file: only example.com/example.org and public services are known"
        yield Finding(file, line, WARNING, "stray-domain",
                      f"{host} is not one of this deployment's domains ({known})",
                      f"replace it with one of your domains, or if it is a public service: "
                      f"wizard check --allow-domain {'.'.join(host.split('.')[-2:])}")
