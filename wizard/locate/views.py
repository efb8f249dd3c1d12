"""Views: a string seen through the layers that hold it (file › block scalar › SQL literal …).

A view knows its own text, where each of its characters sits in the file, and how a piece of
new text must be escaped to sit inside it and inside every layer around it. Escaping in every
format we edit is character-wise, so a value can be spliced into a view by escaping just the value.
"""
from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from wizard.errors import CannotCarry, TreeError
from wizard.source import SourceFile

# Characters YAML cannot carry raw in a literal block (C0 controls except tab, DEL, C1, surrogates).
_YAML_UNPRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff]")
# Line breaks other than \n (YAML 1.1 counts NEL and the Unicode separators too).
_OTHER_BREAKS = re.compile("[\r\x85\u2028\u2029]")


class View:
    """Base: `text` plus mapping of indices to the file and a fragment encoder chain."""

    file: SourceFile
    text: str
    parent: "View | None"

    def to_parent(self, i: int) -> int:
        raise NotImplementedError

    def to_file(self, i: int) -> int:
        view, idx = self, i
        while view.parent is not None:
            idx = view.to_parent(idx)
            view = view.parent
        return idx

    def escape(self, fragment: str, what: str) -> str:
        """Escape `fragment` to sit inside this view's own syntax (not its parents')."""
        raise NotImplementedError

    def encode(self, fragment: str, what: str) -> str:
        """Escape through every layer up to the file."""
        view, text = self, fragment
        while view is not None:
            text = view.escape(text, what)
            view = view.parent
        return text

    def line_of(self, i: int) -> int:
        return self.file.line_of(self.to_file(i))

    def where(self, i: int) -> str:
        return f"{self.file.rel}:{self.line_of(i)}"


class FileView(View):
    def __init__(self, file: SourceFile):
        self.file = file
        self.text = file.text
        self.parent = None

    def to_parent(self, i: int) -> int:  # pragma: no cover - never called (no parent)
        return i

    def escape(self, fragment: str, what: str) -> str:
        if self.file.eol == "\r\n":
            return fragment.replace("\r\n", "\n").replace("\n", "\r\n")
        return fragment


class LiteralBlockView(View):
    """The content of a literal block scalar (`|`, `|-`, `|+`, `|2`) as the string YAML gives."""

    def __init__(self, parent: View, start: int, end: int, value: str):
        self.parent = parent
        self.file = parent.file
        src = parent.text
        header_end = src.find("\n", start, end)
        if header_end == -1:
            raise TreeError("block scalar without content", where=parent.where(start))
        header = src[start:header_end].split("#", 1)[0].strip()
        m = re.fullmatch(r"[|>]([1-9]?)([+-]?)([1-9]?)", header)
        if not m or not header.startswith("|"):
            raise TreeError("only literal block scalars (|) can be edited inside",
                            where=parent.where(start))
        explicit = m.group(1) or m.group(3)
        pos = header_end + 1
        raw_lines: list[tuple[int, str]] = []  # (start index in parent, line without eol)
        while pos < end:
            nl = src.find("\n", pos, end)
            stop = end if nl == -1 else nl
            line = src[pos:stop]
            if line.endswith("\r"):
                line = line[:-1]
            raw_lines.append((pos, line))
            if nl == -1:
                break
            pos = nl + 1
        if explicit:
            base = parent_indent(src, start)
            indent = base + int(explicit)
        else:
            indent = 0
            for _, line in raw_lines:
                if line.strip(" "):
                    indent = len(line) - len(line.lstrip(" "))
                    break
        self.indent = indent
        starts: list[int] = []
        offsets: list[int] = []
        raw_starts: list[int] = []
        pieces: list[str] = []
        acc = 0
        for pstart, line in raw_lines:
            cut = min(indent, len(line))
            if line[:cut].strip(" "):
                break  # a less-indented line: the block has ended (comment after the block)
            starts.append(acc)
            offsets.append(pstart + cut)
            raw_starts.append(pstart)
            body = line[cut:]
            pieces.append(body + "\n")
            acc += len(body) + 1
        self._starts = starts
        self._offsets = offsets
        self._raw_starts = raw_starts
        self._end_parent = end
        self.text = "".join(pieces)
        if self.text.rstrip("\n") != value.rstrip("\n"):
            raise TreeError("block scalar content could not be mapped (tabs or unusual indentation)",
                            where=parent.where(start))
        self.value = value

    def to_parent(self, i: int) -> int:
        if i >= len(self.text):
            return self._end_parent
        k = bisect.bisect_right(self._starts, i) - 1
        return self._offsets[k] + (i - self._starts[k])

    def line_start_in_parent(self, i: int) -> int:
        """Parent index of the start of the line holding inner index i (before indentation)."""
        if i >= len(self.text):
            return self._end_parent
        k = bisect.bisect_right(self._starts, i) - 1
        return self._raw_starts[k]

    def escape(self, fragment: str, what: str) -> str:
        bad = _YAML_UNPRINTABLE.search(fragment) or _OTHER_BREAKS.search(fragment)
        if bad:
            raise CannotCarry(f"{what}: a YAML block cannot hold the character {bad.group()!r}",
                              hint="use printable characters")
        if "\n" not in fragment:
            return fragment
        pad = " " * self.indent
        lines = fragment.split("\n")
        # An empty middle line stays empty; the last piece is followed by the rest of its line in the
        # file, so it always gets the block's indentation.
        middle = [(pad + ln) if ln else "" for ln in lines[1:-1]]
        return "\n".join([lines[0], *middle, pad + lines[-1]])


def parent_indent(src: str, index: int) -> int:
    """Indentation of the line holding `index` (the key that owns a block scalar)."""
    ls = src.rfind("\n", 0, index) + 1
    line = src[ls:index]
    stripped = line.lstrip(" ")
    # `- |` or `key: |`: YAML counts the parent node's indentation; for `- key: |` it is the key column.
    n = len(line) - len(stripped)
    while stripped.startswith("- "):
        n += 2
        rest = stripped[2:]
        n += len(rest) - len(rest.lstrip(" "))
        stripped = rest.lstrip(" ")
    return n


class MappedView(View):
    """A decoded string (quoted scalar, SQL literal, JSON string) with a per-character map."""

    def __init__(self, parent: View, text: str, offsets: list[int], escaper, label: str):
        self.parent = parent
        self.file = parent.file
        self.text = text
        self._offsets = offsets  # len(text) + 1 entries, parent indices
        self._escaper = escaper
        self.label = label

    def to_parent(self, i: int) -> int:
        return self._offsets[i]

    def escape(self, fragment: str, what: str) -> str:
        return self._escaper(fragment, what)


# ---------------------------------------------------------------- fragment escapers per format

_PLAIN_SAFE = re.compile(r"[A-Za-z0-9._~/@%+=,:\[\]\-!*()']*")


def escape_plain(fragment: str, what: str) -> str:
    if not _PLAIN_SAFE.fullmatch(fragment) or ": " in fragment or fragment.endswith(":"):
        raise CannotCarry(f"{what}: the value cannot sit inside an unquoted YAML scalar",
                          hint="quote the value in the file, or choose a simpler value")
    return fragment


def escape_yaml_double(fragment: str, what: str) -> str:
    out = []
    for ch in fragment:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif _YAML_UNPRINTABLE.match(ch) or _OTHER_BREAKS.match(ch):
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def escape_yaml_single(fragment: str, what: str) -> str:
    if "\n" in fragment or _OTHER_BREAKS.search(fragment) or _YAML_UNPRINTABLE.search(fragment):
        raise CannotCarry(f"{what}: a single-quoted YAML scalar cannot hold line breaks or control characters")
    return fragment.replace("'", "''")


def escape_json(fragment: str, what: str) -> str:
    out = []
    for ch in fragment:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or 0xD800 <= ord(ch) <= 0xDFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


def escape_sql(fragment: str, what: str) -> str:
    if "\x00" in fragment:
        raise CannotCarry(f"{what}: an SQL string cannot hold a NUL character")
    return fragment.replace("'", "''")


# ---------------------------------------------------------------- decoders building maps

def decode_yaml_double(parent: View, start: int, end: int) -> MappedView:
    """Single-line double-quoted YAML scalar at parent[start:end] (quotes included)."""
    src = parent.text
    i = start + 1
    stop = end - 1
    chars: list[str] = []
    offs: list[int] = []
    simple = {"0": "\0", "a": "\a", "b": "\b", "t": "\t", "\t": "\t", "n": "\n", "v": "\v",
              "f": "\f", "r": "\r", "e": "\x1b", " ": " ", '"': '"', "/": "/", "\\": "\\",
              "N": "\x85", "_": "\xa0", "L": "\u2028", "P": "\u2029"}
    while i < stop:
        ch = src[i]
        if ch in "\r\n":
            raise TreeError("multi-line quoted scalar cannot be edited inside", where=parent.where(start))
        if ch == "\\":
            nxt = src[i + 1]
            if nxt in simple:
                chars.append(simple[nxt]); offs.append(i); i += 2
                continue
            width = {"x": 2, "u": 4, "U": 8}.get(nxt)
            if width is None:
                raise TreeError("bad escape in double-quoted scalar", where=parent.where(i))
            chars.append(chr(int(src[i + 2:i + 2 + width], 16))); offs.append(i); i += 2 + width
            continue
        chars.append(ch); offs.append(i); i += 1
    offs.append(stop)
    return MappedView(parent, "".join(chars), offs, escape_yaml_double, "double-quoted YAML")


def _decode_doubled_quote(parent: View, start: int, end: int, escaper, label: str, *, one_line: bool) -> MappedView:
    """A '…' literal where '' stands for one quote (YAML single-quoted scalars, SQL strings)."""
    src = parent.text
    i = start + 1
    stop = end - 1
    chars: list[str] = []
    offs: list[int] = []
    while i < stop:
        ch = src[i]
        if one_line and ch in "\r\n":
            raise TreeError("multi-line quoted scalar cannot be edited inside", where=parent.where(start))
        if ch == "'" and src[i + 1] == "'":
            chars.append("'"); offs.append(i); i += 2
            continue
        chars.append(ch); offs.append(i); i += 1
    offs.append(stop)
    return MappedView(parent, "".join(chars), offs, escaper, label)


def decode_yaml_single(parent: View, start: int, end: int) -> MappedView:
    return _decode_doubled_quote(parent, start, end, escape_yaml_single, "single-quoted YAML", one_line=True)


def decode_plain(parent: View, start: int, end: int, value: str) -> MappedView:
    if parent.text[start:end] != value:
        raise TreeError("multi-line plain scalar cannot be edited inside", where=parent.where(start))
    return MappedView(parent, value, list(range(start, end + 1)), escape_plain, "plain YAML")


def decode_json_string(parent: View, start: int, end: int) -> MappedView:
    src = parent.text
    i = start + 1
    stop = end - 1
    chars: list[str] = []
    offs: list[int] = []
    simple = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
    while i < stop:
        ch = src[i]
        if ch == "\\":
            nxt = src[i + 1]
            if nxt == "u":
                chars.append(chr(int(src[i + 2:i + 6], 16))); offs.append(i); i += 6
            else:
                chars.append(simple[nxt]); offs.append(i); i += 2
            continue
        chars.append(ch); offs.append(i); i += 1
    offs.append(stop)
    return MappedView(parent, "".join(chars), offs, escape_json, "JSON string")


def decode_sql_literal(parent: View, start: int, end: int) -> MappedView:
    """Content of a standard SQL literal '...' at parent[start:end] (quotes included)."""
    return _decode_doubled_quote(parent, start, end, escape_sql, "SQL string", one_line=False)


@dataclass
class Span:
    """A located value: view[start:end] holds `value`; `encode_whole` renders a new value for it."""

    view: View
    start: int
    end: int
    value: str
    encode_whole: object  # Callable[[str, str], str]

    def file_span(self) -> tuple[int, int]:
        return self.view.to_file(self.start), self.view.to_file(self.end)

    def render(self, new_value: str, what: str) -> str:
        return self.view.encode(self.encode_whole(new_value, what), what)

    @property
    def file(self) -> SourceFile:
        return self.view.file

    def where(self) -> str:
        return self.view.where(self.start)
