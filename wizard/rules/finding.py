"""What a rule reports: one finding, `FILE:LINE: SEVERITY RULE: message (hint)`.

A finding names the catalog ids it is about (`ids`) and the placeholder token when there is one, so that
what reads findings (the checklist, --json consumers) never parses the message text. The rule's own
metadata (what it catches, how to fix it, its checklist section) is `finding.spec`.
"""
from __future__ import annotations

from dataclasses import dataclass

from wizard.rules.registry import ERROR, INFO, SEVERITY_ORDER, WARNING, rule_by_id

__all__ = ["ERROR", "WARNING", "INFO", "SEVERITY_ORDER", "Finding"]


@dataclass(frozen=True)
class Finding:
    file: str  # relative to the deployment root; a directory ends with "/"
    line: int  # 1-based; 0 when the finding is about a whole file or directory
    severity: str
    rule: str
    message: str
    hint: str = ""
    ids: tuple[str, ...] = ()  # the catalog ids it is about (a secrets-file id for a generated unknown token)
    token: str | None = None  # the placeholder token it is about

    def format(self) -> str:
        hint = f" ({self.hint})" if self.hint else ""
        return f"{self.file}:{self.line}: {self.severity} {self.rule}: {self.message}{hint}"

    @property
    def spec(self):
        """The rule's metadata (wizard.rules.registry.Rule): what it catches, how to fix it, its checklist section."""
        return rule_by_id(self.rule)

    def to_json(self) -> dict:
        return {"file": self.file, "line": self.line, "severity": self.severity, "rule": self.rule,
                "message": self.message, "hint": self.hint, "ids": list(self.ids), "token": self.token}
