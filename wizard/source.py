"""A file of the tree as text, keeping its BOM and line ends for the way back to bytes."""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from pathlib import Path

from wizard.errors import TreeError

BOM = b"\xef\xbb\xbf"


@dataclass
class SourceFile:
    rel: str
    raw: bytes
    text: str
    bom: bool
    eol: str
    _line_starts: list[int] | None = field(default=None, repr=False)

    @classmethod
    def from_bytes(cls, rel: str, raw: bytes) -> "SourceFile":
        bom = raw.startswith(BOM)
        body = raw[len(BOM):] if bom else raw
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = body[: exc.start].count(b"\n") + 1
            raise TreeError("not UTF-8 text", where=f"{rel}:{line}") from None
        eol = "\r\n" if "\r\n" in text else "\n"
        return cls(rel=rel, raw=raw, text=text, bom=bom, eol=eol)

    @classmethod
    def read(cls, root: Path, rel: str) -> "SourceFile":
        try:
            raw = (root / rel).read_bytes()
        except OSError as exc:
            raise TreeError(f"cannot read: {exc.strerror}", where=rel) from None
        return cls.from_bytes(rel, raw)

    def to_bytes(self, text: str) -> bytes:
        return (BOM if self.bom else b"") + text.encode("utf-8")

    def line_of(self, index: int) -> int:
        """1-based line number of a character index."""
        if self._line_starts is None:
            starts = [0]
            find = self.text.find
            pos = find("\n")
            while pos != -1:
                starts.append(pos + 1)
                pos = find("\n", pos + 1)
            self._line_starts = starts
        return bisect.bisect_right(self._line_starts, index)

    def where(self, index: int) -> str:
        return f"{self.rel}:{self.line_of(index)}"
