"""What a rule reports: one finding, `FILE:LINE: SEVERITY RULE: message (hint)`."""
from __future__ import annotations

from dataclasses import asdict, dataclass

ERROR, WARNING, INFO = "error", "warning", "info"
SEVERITY_ORDER = {ERROR: 0, WARNING: 1, INFO: 2}


@dataclass(frozen=True)
class Finding:
    file: str  # relative to the deployment root; a directory ends with "/"
    line: int  # 1-based; 0 when the finding is about a whole file or directory
    severity: str
    rule: str
    message: str
    hint: str = ""

    def format(self) -> str:
        hint = f" ({self.hint})" if self.hint else ""
        return f"{self.file}:{self.line}: {self.severity} {self.rule}: {self.message}{hint}"

    def to_json(self) -> dict:
        return asdict(self)
