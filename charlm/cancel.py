"""Stopping long work from another thread: core functions take a plain `threading.Event` and a
`progress(done, total)` callable, so a UI worker can cancel them and show how far they got."""

from __future__ import annotations

import threading
from collections.abc import Callable

Progress = Callable[[int, int], None]      # (done, total), in the unit the caller's docstring names


class Cancelled(Exception):
    """The work stopped because its cancel event was set; nothing it was writing was kept."""


def check(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled()
