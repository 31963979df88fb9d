"""Patterns of a text that a recurrent unit may track: a value at every character (inside a
quotation, nesting depth, column, a line's start, or where a regular expression matches).
charlm.analysis.neurons ranks the units against them; these need only the text."""

from __future__ import annotations

import difflib
import re

import numpy as np

from charlm.errors import UsageError

PATTERNS = {
    "quote": "1 inside a double-quoted span (\" toggles; curly quotes open and close), else 0",
    "paren": "nesting depth of ( [ { after this character",
    "line-position": "column: characters since the last newline",
    "after-newline": "1 on a newline (the next character starts a line), else 0",
}
_OPEN, _CLOSE = "([{", ")]}"


def pattern_values(text: str, pattern: str) -> np.ndarray:
    """The pattern's value at each character (T,) float64, as the state after reading it sees
    the text. A name from PATTERNS, or else a regular expression: 1 on characters inside one
    of its matches."""
    if pattern in PATTERNS:
        return _NAMED[pattern](text)
    if not pattern:
        raise UsageError("the pattern is empty", f"use one of {', '.join(PATTERNS)}, or a regular expression")
    close = difflib.get_close_matches(pattern, PATTERNS, n=1, cutoff=0.75)
    if close and re.fullmatch(r"[a-z-]+", pattern):
        raise UsageError(f"unknown pattern {pattern!r} (did you mean {close[0]}?)",
                         f"use one of {', '.join(PATTERNS)}; to search for the word itself, write a regex "
                         f"such as '({pattern})'")
    try:
        regex = re.compile(pattern)
    except re.error as e:
        raise UsageError(f"--pattern {pattern!r} is not a valid regular expression ({e})",
                         f"fix it, or use one of {', '.join(PATTERNS)}") from None
    values = np.zeros(len(text))
    for m in regex.finditer(text):
        values[m.start():m.end()] = 1.0
    return values


def varying_pattern(text: str, pattern: str) -> np.ndarray:
    """`pattern_values`, refused when the pattern never changes over the text (then no unit can
    track it, and the correlation is undefined)."""
    values = pattern_values(text, pattern)
    if np.ptp(values) == 0:
        raise UsageError(f"the pattern {pattern!r} has the same value ({values[0]:g}) at every character of "
                         "this text, so nothing can track it", "use a text where it changes, or another pattern")
    return values


def _quote(text: str) -> np.ndarray:
    out, inside = np.zeros(len(text)), False
    for t, ch in enumerate(text):
        if ch == '"':
            inside = not inside
        elif ch == "\u201c":
            inside = True
        elif ch == "\u201d":
            inside = False
        out[t] = inside
    return out


def _paren(text: str) -> np.ndarray:
    steps = np.array([1 if c in _OPEN else -1 if c in _CLOSE else 0 for c in text])
    out, depth = np.zeros(len(text)), 0
    for t, s in enumerate(steps):
        depth = max(0, depth + s)           # a stray closer does not dig below the surface
        out[t] = depth
    return out


def _line_position(text: str) -> np.ndarray:
    out, col = np.zeros(len(text)), 0
    for t, ch in enumerate(text):
        col = 0 if ch == "\n" else col + 1
        out[t] = col
    return out


def _after_newline(text: str) -> np.ndarray:
    return np.fromiter((c == "\n" for c in text), dtype=np.float64, count=len(text))


_NAMED = {"quote": _quote, "paren": _paren, "line-position": _line_position, "after-newline": _after_newline}
