"""plan(tree, answers, secrets) → every edit, or errors. Reads only; writes nothing."""
from __future__ import annotations

import re
import time

import yaml
from dataclasses import dataclass, field

from wizard import catalog as C
from wizard import generate
from wizard.answers import Answers
from wizard.edits import (Edit, FlowMap, insert_entry, insert_nested, remove_entry_lines, render_entry,
                          yaml_scalar)
from wizard.errors import CannotCarry, SecretsError, TreeError, WizardError
from wizard.locate.resolve import Address, Found, Tree, resolve
from wizard.locate.yamlspan import map_get, map_key, parse_yaml_single, to_data
from wizard.store import SecretStore

# SMTP keys of the homeserver's email section → their answers key (for error messages).
_SMTP_ANSWER_KEYS = {"smtp_host": "host", "smtp_user": "user", "notif_from": "from"}

SELFSIGNED_DOC = ("apiVersion: cert-manager.io/v1\nkind: ClusterIssuer\nmetadata:\n  name: selfsigned\n"
                  "spec:\n  selfSigned: {}\n")


@dataclass
class Plan:
    edits: list[Edit] = field(default_factory=list)
    store: SecretStore | None = None
    store_changed: bool = False
    generated: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    secret_values: dict[str, str] = field(default_factory=dict)  # value -> id, masked in output
    old_texts: dict[str, str] = field(default_factory=dict)
    new_texts: dict[str, str] = field(default_factory=dict)
    files: dict = field(default_factory=dict)  # rel -> SourceFile
    replaced: list[tuple[str, str]] = field(default_factory=list)  # (id, file:line) of set values replaced
    outside: dict = field(default_factory=dict)  # path -> (current bytes or None, new bytes): .well-known files

    @property
    def changed_files(self) -> list[str]:
        return sorted(rel for rel, text in self.new_texts.items() if text != self.old_texts[rel])


class PlanErrors(WizardError):
    def __init__(self, errors: list[WizardError]):
        self.errors = errors
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(first.message + more, where=first.where, hint=first.hint)

    def lines(self) -> list[str]:
        return [str(e) for e in self.errors]


def _find(tree: Tree, loc: str, *, optional: bool = False) -> Found:
    found = resolve(tree, Address.parse(loc))
    if not found.spans and not optional and not found.missing:
        raise TreeError(f"value not found: {loc} (is this the expected deployment layout?)", where=loc.split(" › ")[0])
    if not found.spans and not optional and found.missing:
        m = found.missing[0]
        where = m.view.where(m.node.start) if m.node is not None else m.view.file.rel
        keys = ".".join(str(s.arg) for s in m.rest)
        raise TreeError(f"key {keys!r} not found ({loc})", where=where)
    return found


def _optional(loc: str) -> bool:
    return "restrictBaseUrl" in loc


class Planner:
    def __init__(self, tree: Tree, answers: Answers, store: SecretStore, *, rotate: tuple[str, ...] = (),
                 revoke: bool = False, now_ms: int | None = None):
        self.tree = tree
        self.answers = answers
        self.original = store
        self.store = store.copy()
        self.rotate = set(rotate)
        self.revoke = revoke
        self.now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
        self.plan = Plan()
        self.errors: list[WizardError] = []
        self.edits: list[Edit] = []
        self.values: dict[str, str] = {}
        self._late: list = []  # edits that wait for a background computation (bcrypt)
        self._pool = None
        self._rsa = None
        if "key_vault.rsa_private_key" not in self.store.values or "key_vault.rsa_private_key" in self.rotate:
            # RSA and bcrypt run in C without the GIL: start them while the tree is parsed
            self._rsa = self._background(generate.rsa_key, answers.rsa_bits)

    def _background(self, fn, *args):
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="wizard-gen")
        return self._pool.submit(fn, *args)

    # -------------------------------------------------------------- entry point
    def run(self) -> Plan:
        try:
            self._secrets()
        except WizardError as exc:
            self.errors.append(exc)
        if not self.errors:
            for step in (self._settings, self._allowlist, self._admin_auth, self._external_ip, self._tls,
                         self._old_signing_keys, self._smtp):
                try:
                    step()
                except WizardError as exc:
                    self.errors.append(exc)
        for finish in self._late:
            try:
                finish()
            except WizardError as exc:
                self.errors.append(exc)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        if not self.errors:
            try:
                from wizard.scan import unknown_tokens

                for where, token in unknown_tokens(self.tree):
                    self.errors.append(TreeError(f"unknown placeholder {token} (in no row of the catalog)", where=where,
                                                 hint="set the value by hand or report the token"))
            except WizardError as exc:
                self.errors.append(exc)
        if self.errors:
            raise PlanErrors(self.errors)
        self._assemble()
        self._judge_consumers()
        if self.errors:
            raise PlanErrors(self.errors)
        self.plan.store = self.store
        # every secret value is masked in every output, whatever its source (generated, stored, adopted, given)
        for source in (self.original.values, self.original.rotating, self.store.values, self.store.rotating):
            for cid, value in source.items():
                self.plan.secret_values.setdefault(value, cid)
        return self.plan

    def _judge_consumers(self) -> None:
        """Every envsubst'd config, rendered as its pod will render it from the values about to be
        written: a value of ours that changes the structure cannot be carried (exit 2 naming it)."""
        from wizard import consumers as K

        after = self.tree.with_texts({rel: self.plan.files[rel].to_bytes(text)
                                      for rel, text in self.plan.new_texts.items()})
        owned = C.secret_key_ids()
        judged: set = set()
        seen: set = set()  # the workers of one instance render the same config from the same Secret
        for cfg in K.envsubst_configs(after):
            text = K.template_text(after, cfg)
            if text is None:
                continue
            env = dict(cfg.literal)
            env.update({v: K.STAND_IN for v in cfg.computed})
            suspects = []
            for var, sk in cfg.env.items():
                value = K.secret_value(after, sk)
                if value is None:
                    continue
                env[var] = value
                if (sk.name, sk.key) in owned:
                    suspects.append(var)
            key = (text, tuple(sorted(env.items())), cfg.only, tuple(sorted(suspects)))
            if key in seen:
                continue
            seen.add(key)
            if K.renders_as_meant(text, env, cfg.only):
                continue
            for var in K.culprits(text, env, cfg.only, suspects):
                cid = owned[(cfg.env[var].name, cfg.env[var].key)]
                if (cid, cfg.file, cfg.configmap, cfg.key) in judged:  # workers render the main config too
                    continue
                judged.add((cid, cfg.file, cfg.configmap, cfg.key))
                self.errors.append(CannotCarry(
                    f"{cid}: {cfg.workload} renders ConfigMap/{cfg.configmap} {cfg.key} with envsubst, and this "
                    f"value as ${{{var}}} would change the config's structure or read back as something else",
                    where=cfg.file, hint="use letters and digits, or quote the reference in the config"))

    # -------------------------------------------------------------- secrets
    def _secrets(self) -> None:
        a = self.answers
        provided = a.provided_secrets()
        for cid in self.rotate:
            spec = C.SECRET_BY_ID.get(cid)
            if spec is None or spec.provided or cid in provided or cid in self.store.provided:
                raise SecretsError(f"{cid} is a value the operator provided; change it in its source, not by rotation")
        for spec in C.SECRETS:
            if spec.id in ("li.admin_password", "li.admin_htpasswd", "smtp.password"):
                continue
            if spec.provided and not (a.push.enabled and spec.id.startswith("push.")):
                continue
            spans = []
            for loc in spec.locations:
                for sp in _find(self.tree, loc).spans:
                    spans.append((loc, sp))
            for _, sp in spans:
                if not C.has_token(sp.value):
                    self.plan.secret_values[sp.value] = spec.id
            value = self._decide(spec, spans, provided)
            if spec.id == "synapse.signing_key":
                problem = generate.signing_key_problem(value)
                if problem:
                    raise SecretsError(f"synapse.signing_key cannot be used: {problem}",
                                       hint="wizard rotate synapse.signing_key --revoke")
                for kid, entry in self.store.old_signing_keys.items():
                    bad = generate.old_key_problem(kid, entry, value)
                    if bad:
                        raise SecretsError(f"old_signing_keys in the secrets file: {bad}")
            self.values[spec.id] = value
            self._write_spans(spec.id, spans, value)
        self._admin()
        self._value_limits()
        for spec in C.SECRETS:
            if spec.distinct_from and spec.id in self.values and \
                    self.values[spec.id] == self.values.get(spec.distinct_from):
                raise SecretsError(f"{spec.id} equals {spec.distinct_from}; the LI instance must not share it",
                                   hint=f"wizard rotate {spec.id}")

    def _decide(self, spec: C.Secret, spans, provided: dict[str, str]) -> str:
        sid = spec.id
        if sid in self.store.rotating:  # a rotation in progress: finished with its value, whatever the tree holds
            value = self.store.rotating[sid]
            self.store.values[sid] = value
            return value
        if sid in self.rotate:
            old = self.store.values.get(sid) or next((sp.value for _, sp in spans if not C.has_token(sp.value)), None)
            if sid == "synapse.signing_key" and old:
                self._retire(old)
            value = self._generate(spec)
            self.store.values[sid] = value
            self.store.rotating[sid] = value
            self.plan.generated.append(sid)
            return value
        if sid in provided:
            value = provided[sid]
            self.store.provided.add(sid)
            if self.store.values.get(sid) != value:
                self.store.values[sid] = value
            return value
        if sid in self.store.values:
            return self.store.values[sid]
        current = {}
        for loc, sp in spans:
            if sp.value and not C.has_token(sp.value) and not (sid == "synapse.signing_key" and _xxxx(sp.value)):
                current.setdefault(sp.value, []).append(sp.where())
        if len(current) > 1:
            places = "; ".join(", ".join(w) for w in current.values())
            raise SecretsError(f"{sid} has different values in the tree: {places}",
                               hint="write the right value into the secrets file under `secrets:` and re-run")
        if current:
            value = next(iter(current))
            if sid == "synapse.signing_key":
                try:
                    generate.signing_key_parts(value)
                except ValueError as exc:
                    raise SecretsError(f"the signing key in the tree is not usable: {exc}",
                                       where=spans[0][1].where()) from None
            self.store.values[sid] = value
            self.plan.adopted.append(sid)
            return value
        value = self._generate(spec)
        self.store.values[sid] = value
        self.plan.generated.append(sid)
        return value

    def _value_limits(self) -> None:
        """Values that pass through a consumer after the file (envsubst, sed) must survive it."""
        for cid, (bad, why) in C.VALUE_LIMITS.items():
            value = self.values.get(cid) if cid != "li.admin_password" else self.store.values.get(cid)
            if value and any(ch in value for ch in bad):
                raise CannotCarry(f"{cid}: the value holds a character ({', '.join(repr(c) for c in bad if c in value)}) "
                                  f"that breaks it: {why}", hint="use letters and digits")

    def _generate(self, spec: C.Secret) -> str:
        if spec.form == "rsa_key":
            value = self._rsa.result() if self._rsa is not None else generate.rsa_key(self.answers.rsa_bits)
            self._rsa = None
        else:
            value = generate.GENERATORS[spec.form]()
        self.plan.secret_values[value] = spec.id
        return value

    def _retire(self, old_line: str) -> None:
        try:
            kid, pub = generate.verify_key_b64(old_line)
        except ValueError:
            return
        expired = self.now_ms if not self.revoke else 0
        entry = self.store.old_signing_keys.get(kid)
        if entry is None or entry.get("key") != pub:
            self.store.old_signing_keys[kid] = {"key": pub, "expired_ts": expired}

    def _admin(self) -> None:
        a = self.answers
        spec = C.SECRET_BY_ID["li.admin_htpasswd"]
        spans = [(loc, sp) for loc in spec.locations for sp in _find(self.tree, loc).spans]
        for _, sp in spans:
            if not C.has_token(sp.value):
                self.plan.secret_values[sp.value] = spec.id
        pw = None
        if a.admin_password is not None:
            pw = a.admin_password
            self.store.provided.add("li.admin_password")
            self.store.values["li.admin_password"] = pw
        elif "li.admin_password" in self.store.rotating:
            pw = self.store.rotating["li.admin_password"]
            self.store.values["li.admin_password"] = pw
        elif "li.admin_password" in self.rotate:
            pw = generate.password()
            self.store.values["li.admin_password"] = pw
            self.store.rotating["li.admin_password"] = pw
            self.plan.generated.append("li.admin_password")
        else:
            pw = self.store.values.get("li.admin_password")
        tree_lines = {sp.value for _, sp in spans if sp.value and not C.has_token(sp.value)}
        stored = self.store.rotating.get("li.admin_htpasswd") or self.store.values.get("li.admin_htpasswd")
        line = None
        if pw is None:
            if stored or tree_lines:  # a line we cannot re-derive: keep it
                line = stored or next(iter(tree_lines))
                if len(tree_lines) > 1 and not stored:
                    raise SecretsError("li.admin_htpasswd has different values in the tree",
                                       hint="write the right value into the secrets file")
            else:
                pw = generate.password()
                self.store.values["li.admin_password"] = pw
                self.plan.generated.append("li.admin_password")
        if pw is not None:
            self.plan.secret_values[pw] = "li.admin_password"
            self._admin_password_limits(pw)
            # bcrypt at cost 12 takes a quarter second: a fingerprint of (user, password, line) kept in the
            # secrets file says the stored line was verified already
            if stored and self.store.verified.get(spec.id) == _fingerprint(a.admin_user, pw, stored):
                line = stored
            else:
                for candidate in [stored, *sorted(tree_lines)]:
                    if candidate and generate.htpasswd_verifies(candidate, a.admin_user, pw):
                        line = candidate
                        break
            if line is None:
                if "li.admin_password" not in self.plan.generated:
                    self.plan.generated.append("li.admin_htpasswd")
                job = self._background(generate.htpasswd_line, a.admin_user, pw)

                def finish(job=job, pw=pw):
                    self._set_htpasswd(job.result(), pw, spans)

                self._late.append(finish)
                return
        self._set_htpasswd(line, pw, spans)

    def _admin_password_limits(self, pw: str) -> None:
        for cid, (bad, why) in C.VALUE_LIMITS.items():
            if cid == "li.admin_password" and any(ch in pw for ch in bad):
                raise CannotCarry(f"{cid}: the value holds a character that breaks it: {why}",
                                  hint="choose a password without line breaks")
        if len(pw.encode("utf-8")) > C.BCRYPT_MAX_BYTES:
            raise CannotCarry(f"li.admin_password is {len(pw.encode('utf-8'))} bytes long: bcrypt (the htpasswd "
                              f"line) reads at most {C.BCRYPT_MAX_BYTES} bytes",
                              hint=f"choose a password of at most {C.BCRYPT_MAX_BYTES} bytes")

    def _set_htpasswd(self, line: str, pw: str | None, spans) -> None:
        cid = "li.admin_htpasswd"
        self.store.values[cid] = line
        if "li.admin_password" in self.store.rotating:
            self.store.rotating[cid] = line
        if pw is not None:
            self.store.verified[cid] = _fingerprint(self.answers.admin_user, pw, line)
        self.plan.secret_values[line] = cid
        self.values[cid] = line
        self._write_spans(cid, spans, line)

    def _write_spans(self, cid: str, spans, value: str) -> None:
        for loc, sp in spans:
            if sp.value == value:
                continue
            if not C.is_unset(cid, sp.value):
                self.plan.replaced.append((cid, sp.where()))
            try:
                text = sp.render(value, cid)
            except CannotCarry as exc:
                exc.where = exc.where or sp.where()
                exc.message = f"{exc.message} [{loc}]"
                raise
            start, end = sp.file_span()
            self.edits.append(Edit(sp.file.rel, start, end, text, (cid,), f"set {cid}"))

    # -------------------------------------------------------------- settings
    def _settings(self) -> None:
        a = self.answers
        turn_user = _find(self.tree, C.TURN_USERNAME_SOURCE, optional=True).spans
        wanted = {
            "server_name": a.server_name,
            "tls.acme_email": a.acme_email,
            "storage.class": a.storage_class,
            "minio.s3_access_key": a.s3_access_key,
            "turn.username": turn_user[0].value if turn_user else "matrix",
            "tls.issuer": a.issuer,
        }
        for key, value in a.domains.items():
            wanted[f"domains.{key}"] = value
        for setting in C.SETTINGS:
            value = wanted[setting.id]
            for loc in setting.locations:
                if setting.id == "tls.issuer" and ".annotations." in loc:
                    self._issuer_annotation(loc, value)
                    continue
                if value is None:  # manual TLS: Certificate/coturn-tls stays the operator's
                    continue
                found = _find(self.tree, loc, optional=_optional(loc))
                if setting.id in C.IMMUTABLE_ONCE_SET:
                    for sp in found.spans:
                        if sp.value != value and not C.is_unset(setting.id, sp.value):
                            raise WizardError(
                                f"{setting.id} cannot change once a tree is configured (Synapse binds its data to "
                                f"it): the tree says {sp.value}, the answers say {value}", where=sp.where(),
                                hint=f"keep {setting.id}: {sp.value} in the answers, or start a new deployment")
                self._write_spans(setting.id, [(loc, sp) for sp in found.spans], value)

    def _issuer_annotation(self, loc: str, issuer: str | None) -> None:
        """Set, add (back) or — in manual TLS mode — remove the cert-manager issuer annotation."""
        parent, _, _ = loc.rpartition('."')
        if issuer is not None:
            self._set_or_add(parent, C.ISSUER_ANNOTATION, issuer, "tls.mode")
            return
        found = resolve(self.tree, Address.parse(parent), want_nodes=True)
        for view, node, _ in found.nodes:
            key = map_key(node, C.ISSUER_ANNOTATION)
            if key is not None:
                self.edits.append(remove_entry_lines(view, key, map_get(node, C.ISSUER_ANNOTATION),
                                                     ids=("tls.mode",), what="remove issuer annotation"))

    # -------------------------------------------------------------- structural additions
    def _annotation(self, ingress: str, key: str, value: str, cid: str, *, example: str | None = None,
                    overwrite: bool = True) -> None:
        self._set_or_add(f"{ingress} › metadata.annotations", key, value, cid, example=example,
                         overwrite=overwrite)

    def _set_or_add(self, parent: str, key: str, value, cid: str, *, example: str | None = None,
                    overwrite: bool = True) -> None:
        """Set `parent.key` (a mapping entry) to `value`, or add the entry — after its commented
        example when there is one. Non-text values (ports, booleans) are written as YAML scalars."""
        loc = f'{parent}."{key}"'
        found = resolve(self.tree, Address.parse(loc))
        if found.spans:
            if not overwrite:
                return
            if isinstance(value, str):
                self._write_spans(cid, [(loc, sp) for sp in found.spans], value)
                return
            text = yaml_scalar(value)
            for sp in found.spans:
                if sp.value != text:
                    start, end = sp.file_span()
                    self.edits.append(Edit(sp.file.rel, start, end, sp.view.encode(text, key), (cid,),
                                           f"set {key}"))
            return
        if not found.missing:
            raise TreeError(f"cannot place {key} ({loc})", where=parent.split(" › ")[0])
        m = found.missing[0]
        keys = tuple(s.arg for s in m.rest)
        if len(keys) == 1:
            self.edits.append(insert_entry(m.view, m.node, key, value, example=example or key, ids=(cid,),
                                           what=f"add {key}"))
        else:
            self.edits.append(insert_nested(m.view, m.node, keys, value, ids=(cid,), what=f"add {'.'.join(keys)}"))

    def _allowlist(self) -> None:
        cidrs = self.answers.allowed_cidrs
        if not cidrs:
            return
        value = ", ".join(cidrs)
        for ingress in C.LI_INGRESSES:
            self._annotation(ingress, C.ALLOWLIST_ANNOTATION, value, "li.allowed_cidrs")

    def _admin_auth(self) -> None:
        a = self.answers
        type_key, secret_key, realm_key = C.AUTH_ANNOTATIONS
        self._annotation(C.ADMIN_INGRESS, type_key, "basic", "li.admin_user")
        self._annotation(C.ADMIN_INGRESS, secret_key, C.ADMIN_AUTH_SECRET, "li.admin_user")
        if a.auth_realm:
            self._annotation(C.ADMIN_INGRESS, realm_key, a.auth_realm, "li.auth_realm")
        else:
            self._annotation(C.ADMIN_INGRESS, realm_key, "LI administration", "li.auth_realm", overwrite=False)

    def _external_ip(self) -> None:
        ip = self.answers.external_ip
        if not ip:
            return
        conf, key = C.EXTERNAL_IP
        found = resolve(self.tree, Address.parse(f"{conf} › (conf) {key}"))
        if found.spans:
            self._write_spans("turn.external_ip", [(conf, sp) for sp in found.spans], ip)
            return
        # No real line: add one after the commented example, or at the end of the file.
        whole = resolve(self.tree, Address.parse(conf))
        span = whole.spans[0]
        view = span.opener()
        text = view.text
        m = None
        for m in re.finditer(r"^[ \t]*#[ \t]*" + re.escape(key) + r"[ \t]*=.*$", text, re.MULTILINE):
            pass
        anchor = m.end() if m else len(text.rstrip("\n"))
        from wizard.locate.resolve import encode_conf

        new = f"\n{key}={encode_conf(ip, 'turn.external_ip')}"
        self.edits.append(Edit(view.file.rel, view.to_file(anchor), view.to_file(anchor),
                               view.encode(new, "turn.external_ip"), ("turn.external_ip",),
                               "add external-ip"))

    def _tls(self) -> None:
        a = self.answers
        if a.tls_mode == "manual":
            for ingress in C.ALL_INGRESSES:
                loc = f"{ingress} › spec.tls[*].secretName"
                found = resolve(self.tree, Address.parse(loc))
                self._write_spans("tls.secret_name", [(loc, sp) for sp in found.spans], a.tls_secret_name)
        if a.tls_mode == "selfsigned":
            view, docs = self.tree.yaml_docs(C.SELFSIGNED_ISSUER_FILE)
            from wizard.locate.yamlspan import object_id

            if not any((object_id(d) or ("", "", ""))[1:] == ("ClusterIssuer", "selfsigned") for d in docs):
                text = view.text
                sep = "" if text.endswith("\n") or not text else "\n"
                add = sep + "---\n" + SELFSIGNED_DOC
                self.edits.append(Edit(view.file.rel, len(text), len(text), view.encode(add, "tls.mode"),
                                       ("tls.mode",), "add ClusterIssuer/selfsigned"))

    def _homeserver(self, hs: str):
        """(view, root mapping) of a homeserver config, plain or embedded in a ConfigMap."""
        if hs.endswith("(yaml)"):
            view = _find(self.tree, hs[: -len(" › (yaml)")]).spans[0].opener()
            doc = parse_yaml_single(view)
        else:
            view, docs = self.tree.yaml_docs(hs)
            doc = next((d for d in docs if d is not None), None)
        if doc is None or doc.kind != "map":
            raise TreeError("the homeserver config is not a mapping", where=view.file.rel)
        return view, doc

    def _old_signing_keys(self) -> None:
        wanted = self.store.old_signing_keys
        for hs in C.HOMESERVERS:
            view, doc = self._homeserver(hs)
            key = map_key(doc, "old_signing_keys")
            current = to_data(map_get(doc, "old_signing_keys")) if key is not None else None
            if key is None and not wanted:
                continue
            merged = dict(current or {})
            if isinstance(current, dict):
                for kid, entry in wanted.items():
                    merged[kid] = entry
            else:
                merged = dict(wanted)
            if current == merged:
                continue
            lines_value = {kid: FlowMap([("key", e["key"]), ("expired_ts", int(e["expired_ts"]))])
                           for kid, e in sorted(merged.items())}
            if key is not None:
                self.edits.append(remove_entry_lines(view, key, map_get(doc, "old_signing_keys"),
                                                     ids=("synapse.signing_key",), what="replace old_signing_keys"))
                self.edits.append(_insert_before_line(view, key, "old_signing_keys", lines_value))
            else:
                after = "signing_key_path" if map_key(doc, "signing_key_path") is not None else None
                self.edits.append(insert_entry(view, doc, "old_signing_keys", lines_value, after_key=after,
                                               ids=("synapse.signing_key",), what="add old_signing_keys"))

    def _smtp(self) -> None:
        s = self.answers.smtp
        if not s.enabled:
            return
        section_env = {"smtp_host": s.host, "smtp_port": s.port, "require_transport_security": s.require_transport_security,
                       "notif_from": s.from_, "enable_notifs": True}
        if s.user:
            section_env["smtp_user"] = s.user
        for k, v in section_env.items():  # the main config goes through envsubst: `$NAME` would vanish
            if isinstance(v, str) and re.search(r"\$[A-Za-z_{]", v):
                raise CannotCarry("a `$` followed by a name would be replaced by envsubst in the homeserver config",
                                  where=f"smtp.{_SMTP_ANSWER_KEYS.get(k, k)}")
        section_plain = dict(section_env)
        if s.password is not None:
            try:
                carried = yaml.safe_load('"' + s.password + '"') == s.password
            except yaml.YAMLError:
                carried = False
            if not carried:
                raise CannotCarry("envsubst puts it inside double quotes in the homeserver config "
                                  "(smtp_pass: \"${SMTP_PASSWORD}\"), where quotes, backslashes and control "
                                  "characters would change the YAML", where="smtp.password",
                                  hint="choose an SMTP password without \" and \\")
            section_env["smtp_pass"] = "${SMTP_PASSWORD}"
            section_plain["smtp_pass"] = s.password
            self.plan.secret_values[s.password] = "smtp.password"
            self.store.values["smtp.password"] = s.password
            self.store.provided.add("smtp.password")
            main_secrets, key = C.SMTP_PASSWORD_KEY
            self._set_or_add(main_secrets, key, s.password, "smtp.password")
        for hs, section in ((C.MAIN_HS, section_env), (C.PLAIN_HS, section_plain)):
            view, doc = self._homeserver(hs)
            email = map_get(doc, "email")
            if email is not None and email.kind == "map":
                parent = f"{hs} email" if hs.endswith("(yaml)") else f"{hs} › email"
                for k, v in section.items():
                    self._set_or_add(parent, k, v, "smtp")
            else:
                self.edits.append(insert_entry(view, doc, "email", section, example="email:", ids=("smtp",), what="add email section"))

    # -------------------------------------------------------------- assemble per-file texts
    def _assemble(self) -> None:
        by_file: dict[str, list[Edit]] = {}
        for e in self.edits:
            by_file.setdefault(e.file, []).append(e)
        for rel, edits in by_file.items():
            f = self.tree.file(rel)
            text = f.text
            edits.sort(key=lambda e: (e.start, e.end))
            dedup: list[Edit] = []
            for e in edits:
                if dedup and (e.start, e.end, e.text) == (dedup[-1].start, dedup[-1].end, dedup[-1].text):
                    continue
                if dedup and e.start < dedup[-1].end:
                    raise TreeError("two edits overlap (the same value is claimed by two catalog entries)",
                                    where=f.where(e.start))
                dedup.append(e)
            out = []
            pos = 0
            for e in dedup:
                out.append(text[pos:e.start])
                out.append(e.text)
                pos = e.end
            out.append(text[pos:])
            self.plan.old_texts[rel] = text
            self.plan.new_texts[rel] = "".join(out)
            self.plan.files[rel] = f
            self.plan.edits.extend(dedup)
        self.plan.store_changed = self.store.dump().encode() != (self.store.raw if self.store.exists else b"")


def _xxxx(value: str) -> bool:
    return " a_XXXX " in f" {value} " or value.split()[1:2] == ["a_XXXX"]


def _fingerprint(user: str, password: str, line: str) -> str:
    import hashlib

    return hashlib.sha256(f"{user}\0{password}\0{line}".encode()).hexdigest()


def _scalars(node):
    if node is None:
        return
    if node.kind == "map":
        for k, v in node.value:
            yield from _scalars(v)
    elif node.kind == "seq":
        for x in node.value:
            yield from _scalars(x)
    elif isinstance(node.value, str) and node.style in ("", "'", '"'):
        yield node


def _insert_before_line(view, key_node, key: str, value) -> Edit:
    from wizard.edits import column
    from wizard.locate.views import LiteralBlockView

    text = view.text
    col = column(text, key_node.start)
    ls = text.rfind("\n", 0, key_node.start) + 1
    lines = render_entry(key, value, col)
    if isinstance(view, LiteralBlockView):
        # whole lines inserted at the start of a block line: each carries the block's indentation
        pad = " " * view.indent
        new = "".join(pad + ln + "\n" for ln in lines)
        at = view.line_start_in_parent(ls)
        return Edit(view.file.rel, at, at, view.parent.encode(new, key), ("synapse.signing_key",),
                    "write old_signing_keys")
    new = "".join(ln + "\n" for ln in lines)
    return Edit(view.file.rel, ls, ls, view.encode(new, key), ("synapse.signing_key",), "write old_signing_keys")


def make_plan(tree: Tree, answers: Answers, store: SecretStore, **kw) -> Plan:
    return Planner(tree, answers, store, **kw).run()
