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


class SecretsError(WizardError):
    """The secrets file is unusable (permissions, format, disagreement)."""


class CannotCarry(WizardError):
    """A value cannot be represented in the format of one of its locations."""

