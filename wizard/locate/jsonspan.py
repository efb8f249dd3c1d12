"""A small JSON parser that remembers where every value and key starts and ends."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass


class JsonSyntaxError(ValueError):
    def __init__(self, message: str, index: int):
        super().__init__(message)
        self.index = index


@dataclass
class JNode:
    kind: str  # "map" | "seq" | "scalar"
    start: int
    end: int
    value: object = None  # map: list[(JNode, JNode)], seq: list[JNode], scalar: python value
    style: str = ""  # '"' for strings


_WS = re.compile(r"[ \t\r\n]*")
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
_STRING = re.compile(r'"(?:[^"\\\x00-\x1f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"')


def parse_json(text: str) -> JNode:
    pos = _WS.match(text, 0).end()
    node, pos = _value(text, pos)
    pos = _WS.match(text, pos).end()
    if pos != len(text):
        raise JsonSyntaxError("extra data after the JSON value", pos)
    return node


def _value(text: str, pos: int) -> tuple[JNode, int]:
    if pos >= len(text):
        raise JsonSyntaxError("unexpected end of JSON", pos)
    ch = text[pos]
    if ch == "{":
        return _object(text, pos)
    if ch == "[":
        return _array(text, pos)
    if ch == '"':
        m = _STRING.match(text, pos)
        if not m:
            raise JsonSyntaxError("bad JSON string", pos)
        return JNode("scalar", pos, m.end(), json.loads(m.group()), '"'), m.end()
    for word, val in (("true", True), ("false", False), ("null", None)):
        if text.startswith(word, pos):
            return JNode("scalar", pos, pos + len(word), val), pos + len(word)
    m = _NUMBER.match(text, pos)
    if m and m.end() > pos:
        return JNode("scalar", pos, m.end(), json.loads(m.group())), m.end()
    raise JsonSyntaxError(f"unexpected character {ch!r}", pos)


def _object(text: str, pos: int) -> tuple[JNode, int]:
    start = pos
    items: list[tuple[JNode, JNode]] = []
    seen: dict[str, int] = {}
    pos = _WS.match(text, pos + 1).end()
    if text.startswith("}", pos):
        return JNode("map", start, pos + 1, items), pos + 1
    while True:
        if not text.startswith('"', pos):
            raise JsonSyntaxError("expected a string key", pos)
        key, pos = _value(text, pos)
        if key.value in seen:
            raise JsonSyntaxError(f"duplicate key {key.value!r}", key.start)
        seen[key.value] = key.start
        pos = _WS.match(text, pos).end()
        if not text.startswith(":", pos):
            raise JsonSyntaxError("expected ':'", pos)
        pos = _WS.match(text, pos + 1).end()
        val, pos = _value(text, pos)
        items.append((key, val))
        pos = _WS.match(text, pos).end()
        if text.startswith(",", pos):
            pos = _WS.match(text, pos + 1).end()
            continue
        if text.startswith("}", pos):
            return JNode("map", start, pos + 1, items), pos + 1
        raise JsonSyntaxError("expected ',' or '}'", pos)


def _array(text: str, pos: int) -> tuple[JNode, int]:
    start = pos
    items: list[JNode] = []
    pos = _WS.match(text, pos + 1).end()
    if text.startswith("]", pos):
        return JNode("seq", start, pos + 1, items), pos + 1
    while True:
        val, pos = _value(text, pos)
        items.append(val)
        pos = _WS.match(text, pos).end()
        if text.startswith(",", pos):
            pos = _WS.match(text, pos + 1).end()
            continue
        if text.startswith("]", pos):
            return JNode("seq", start, pos + 1, items), pos + 1
        raise JsonSyntaxError("expected ',' or ']'", pos)
