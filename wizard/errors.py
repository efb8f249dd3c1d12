"""Errors that end a command with a clear message and an exit code."""
from __future__ import annotations


class WizardError(Exception):
    """Bad input of any kind: exit 2, nothing written."""

    exit_code = 2

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.where = where
        self.hint = hint

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.hint:
            text += f" ({self.hint})"
        return text


class AnswersError(WizardError):
    """The answers file is invalid; `where` names the dotted key."""


class TreeError(WizardError):
    """The deployment tree cannot be read or edited; `where` is file:line."""


class OutsideTree(TreeError):
    """A manifest path that leaves the tree (through a link): refused outright, exit 2."""


class SecretsError(WizardError):
    """The secrets file is unusable (permissions, format, disagreement)."""


class CannotCarry(WizardError):
    """A value cannot be represented in the format of one of its locations."""



class PartialWrite(WizardError):
    """A write failed part-way (disk full, a file made read-only meanwhile): exit 3, naming what was
    written and what was not; a re-run finishes."""

    exit_code = 3

    def __init__(self, written: list[str], not_written: list[str], cause: BaseException, *,
                 secrets_written: bool = False):
        reason = getattr(cause, "strerror", None) or getattr(cause, "message", None) or type(cause).__name__
        super().__init__(f"a write failed part-way ({reason})",
                         hint="fix the cause and re-run the same command: it finishes the job")
        self.written = list(written)
        self.not_written = list(not_written)
        self.secrets_written = secrets_written

    def lines(self) -> list[str]:
        out = [str(self)]
        if self.secrets_written:
            out.append("written: the secrets file (first, as always)")
        out.append("written: " + (", ".join(self.written) if self.written else "no file of the tree"))
        out.append("not written: " + (", ".join(self.not_written) if self.not_written else "none"))
        return out
