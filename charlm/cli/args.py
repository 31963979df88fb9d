"""argparse with one-line errors and value types that refuse nonsense (NaN, negatives...)."""

from __future__ import annotations

import argparse
import math

from charlm.errors import UsageError


class Parser(argparse.ArgumentParser):
    """Turns argparse's usage dump into a single UsageError line (exit 2 via main)."""

    def error(self, message: str):  # noqa: D401 - argparse's name
        raise UsageError(f"{self.prog}: {message}", f"see `{self.prog} --help`")


def _number(kind, text: str, test, rule: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a {'whole number' if kind is int else 'number'}") from None
    if isinstance(value, float) and not math.isfinite(value) or not test(value):
        raise argparse.ArgumentTypeError(f"{text!r} must be {rule}")
    if kind is int and value >= 2**63:   # torch seeds and sizes are 64-bit: larger would overflow
        raise argparse.ArgumentTypeError(f"{text!r} is too large")
    return value


def positive_int(text: str) -> int:
    return _number(int, text, lambda v: v >= 1, "at least 1")


def nonneg_int(text: str) -> int:
    return _number(int, text, lambda v: v >= 0, "0 or more")


def positive_float(text: str) -> float:
    return _number(float, text, lambda v: v > 0, "a positive number")


def nonneg_float(text: str) -> float:
    return _number(float, text, lambda v: v >= 0, "a number >= 0")


def unit_open_closed(text: str) -> float:
    return _number(float, text, lambda v: 0 < v <= 1, "in (0, 1]")


def unit_open(text: str) -> float:
    return _number(float, text, lambda v: 0 < v < 1, "strictly between 0 and 1")


def dropout(text: str) -> float:
    return _number(float, text, lambda v: 0 <= v < 1, "in [0, 1)")
