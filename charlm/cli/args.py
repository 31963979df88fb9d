"""argparse with one-line errors and value types that refuse nonsense (NaN, negatives...)."""

from __future__ import annotations

import argparse
import difflib
import math

from charlm.errors import UsageError


class Parser(argparse.ArgumentParser):
    """Turns argparse's usage dump into a single UsageError line (exit 2 via main)."""

    def error(self, message: str):  # noqa: D401 - argparse's name
        where = f"{self.prog}: " if " " in self.prog else ""     # a subcommand names itself; `charlm: ` is said already
        raise UsageError(f"{where}{message}", f"see `{self.prog} --help`")

    def parse_args(self, args=None, namespace=None):
        """argparse's, but a stray argument is reported by the command it was given to, with the
        option it most resembles (`charlm sample: ... --tempreature (did you mean --temperature?)`)."""
        namespace, extra = self.parse_known_args(args, namespace)
        if extra:
            owner = self._chosen_command(namespace)
            near = owner._nearest_option(extra[0])
            owner.error(f"unrecognized arguments: {' '.join(extra)}" + (f" (did you mean {near}?)" if near else ""))
        return namespace

    def _chosen_command(self, namespace) -> "Parser":
        """The innermost (sub)command parser that the parsed arguments chose."""
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                chosen = action.choices.get(getattr(namespace, action.dest, None))
                if isinstance(chosen, Parser):
                    return chosen._chosen_command(namespace)
        return self

    def _nearest_option(self, word: str) -> str | None:
        if not word.startswith("-"):
            return None
        options = [o for action in self._actions for o in action.option_strings]
        close = difflib.get_close_matches(word.split("=")[0], options, n=1, cutoff=0.7)
        return close[0] if close else None


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
