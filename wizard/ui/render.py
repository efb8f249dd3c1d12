"""Output: masked diffs, colour when it helps (NO_COLOR respected), plain text otherwise."""
from __future__ import annotations

import difflib
import os
import sys

MASK = "••••"


def use_colour(stream=None) -> bool:
    stream = stream or sys.stdout
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return hasattr(stream, "isatty") and stream.isatty()


def secret_forms(value: str) -> set[str]:
    """Every form a value takes in the files we write: raw, escaped for YAML (double and single quotes),
    JSON, SQL, shell and libpq, and each long line of a multi-line value."""
    import re

    from wizard.locate.views import escape_json, escape_yaml_double

    forms = {value, escape_yaml_double(value, "mask"), escape_json(value, "mask"), value.replace("'", "''"),
             re.sub(r'([\\"$`])', r"\\\1", value), value.replace("'", "'\\''"),
             value.replace("\\", "\\\\").replace("'", "\\'")}
    if "\n" in value:
        for line in value.split("\n"):
            line = line.strip()
            if len(line) >= 8 and not line.startswith("-----"):
                forms.add(line)
    return {f for f in forms if f}


class Masker:
    """Replace every known secret value, in every form it takes in a file, by `•••• (id)`."""

    def __init__(self, secrets: dict[str, str], show: bool = False):
        import re

        self.show = show
        pairs: dict[str, str] = {}
        for value, cid in secrets.items():
            if not value:
                continue
            for form in secret_forms(value):
                pairs.setdefault(form, cid)
        # longest first so that a value containing another is masked whole; a short value only as a whole word
        self.patterns = []
        for form, cid in sorted(pairs.items(), key=lambda p: -len(p[0])):
            pat = re.escape(form)
            if len(form) < 8:
                pat = r"(?<![A-Za-z0-9])" + pat + r"(?![A-Za-z0-9])"
            self.patterns.append((re.compile(pat), f"{MASK} ({cid})"))

    def __call__(self, text: str) -> str:
        if self.show:
            return text
        for pat, repl in self.patterns:
            text = pat.sub(lambda m, r=repl: r, text)
        return text


def unified_diff(rel: str, old: str, new: str, masker: Masker) -> list[str]:
    old_lines = old.replace("\r\n", "\n").split("\n")
    new_lines = new.replace("\r\n", "\n").split("\n")
    out = []
    for line in difflib.unified_diff(old_lines, new_lines, f"a/{rel}", f"b/{rel}", lineterm="", n=2):
        out.append(masker(line))
    return out


def colour_diff_line(line: str) -> str:
    if line.startswith(("+++", "---")):
        return f"\x1b[1m{line}\x1b[0m"
    if line.startswith("+"):
        return f"\x1b[32m{line}\x1b[0m"
    if line.startswith("-"):
        return f"\x1b[31m{line}\x1b[0m"
    if line.startswith("@@"):
        return f"\x1b[36m{line}\x1b[0m"
    return line


def paint(text: str, style: str, colour: bool) -> str:
    if not colour:
        return text
    codes = {"red": "31", "green": "32", "yellow": "33", "blue": "34", "cyan": "36", "bold": "1", "dim": "2"}
    return f"\x1b[{codes[style]}m{text}\x1b[0m"
