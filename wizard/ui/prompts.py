"""One "ask" interface with two implementations (certbot's idea):

  TerminalAsker    asks a person (questionary), validates each answer at once and asks again
                   with the reason until it is valid.
  ConfiguredAsker  the non-interactive twin: uses the configured value (or the default), validates
                   it the same way, and fails with an error naming the setting when there is none.

Questions are data (copier's idea): the flow that asks never knows how a question was answered.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from wizard.errors import AnswersError

TEXT, CONFIRM, SELECT = "text", "confirm", "select"


@dataclass(frozen=True)
class Question:
    key: str  # the dotted answers key, or a flow step ("flow.write"): what a missing answer is named by
    message: str
    kind: str = TEXT
    help: str = ""  # one or two lines shown before the prompt
    choices: tuple[tuple[Any, str], ...] = ()  # select: (value, label)
    parse: Callable[[str], Any] | None = None  # text -> value, or ValueError(reason)
    optional: bool = False  # an empty answer is allowed (the value is then `empty`)
    empty: Any = None
    required: str = "an answer is required"  # why an empty answer is asked again (not optional)
    show: Callable[[Any], str] = field(default=lambda v: "" if v is None else str(v))  # value -> editable text


def parse_text(q: Question, raw: str):
    """The value of a text answer, or ValueError with the reason."""
    raw = raw.strip()
    if not raw:
        if q.optional:
            return q.empty
        raise ValueError(q.required)
    return q.parse(raw) if q.parse else raw


class Asker:
    interactive = False

    def ask(self, q: Question, default=None):  # pragma: no cover - interface
        raise NotImplementedError


class ConfiguredAsker(Asker):
    """Answers from configured values (dotted key -> value), else the default; never prompts."""

    interactive = False

    def __init__(self, values: dict | None = None, *, source: str = "the answers file", say=None):
        self.values = dict(values or {})
        self.source = source
        self.say = say

    def ask(self, q: Question, default=None):
        value = self.values.get(q.key, default)
        if q.kind == CONFIRM:
            if value is None:
                raise AnswersError(f"needs a yes/no answer and there is no terminal to ask it; set it in {self.source}",
                                   where=q.key)
            if not isinstance(value, bool):
                raise AnswersError("expected true or false", where=q.key)
            return value
        if q.kind == SELECT:
            allowed = [c[0] for c in q.choices]
            if value not in allowed:
                if value is None:
                    raise AnswersError(f"is required and there is no terminal to ask it; set it in {self.source}",
                                       where=q.key)
                raise AnswersError(f"{value!r} is not one of {', '.join(map(str, allowed))}", where=q.key)
            return value
        if value is None or value == "" or value == []:
            if q.optional:
                return q.empty
            raise AnswersError(f"is required and there is no terminal to ask it; set it in {self.source}",
                               where=q.key)
        try:
            return parse_text(q, value if isinstance(value, str) else q.show(value))
        except ValueError as exc:
            raise AnswersError(str(exc), where=q.key) from None


class TerminalAsker(Asker):
    """questionary prompts; a wrong answer is explained and asked again. Ctrl-C raises KeyboardInterrupt."""

    interactive = True

    def __init__(self, say: Callable[[str, str | None], None]):
        self.say = say

    def ask(self, q: Question, default=None):
        import questionary

        if q.help:
            for line in q.help.splitlines():
                self.say(f"  {line}", "dim")
        while True:
            try:
                if q.kind == CONFIRM:
                    answer = questionary.confirm(q.message, default=bool(default)).unsafe_ask()
                    return bool(answer)
                if q.kind == SELECT:
                    choices = [questionary.Choice(title=label, value=value) for value, label in q.choices]
                    start = next((c for c in choices if c.value == default), choices[0])
                    return questionary.select(q.message, choices=choices, default=start).unsafe_ask()
                raw = questionary.text(q.message, default=q.show(default)).unsafe_ask()
            except EOFError:  # Ctrl-D: the same as Ctrl-C, leave without writing
                raise KeyboardInterrupt from None
            if raw is None:
                raise KeyboardInterrupt
            try:
                return parse_text(q, raw)
            except ValueError as exc:
                self.say(f"  ✗ {exc}", "red")
