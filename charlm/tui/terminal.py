"""Whether the terminal the app draws on is still there."""

from __future__ import annotations

import errno
import threading
import time
from collections.abc import Callable

try:
    import termios
except ImportError:          # Windows: no termios, and a closed console ends its processes
    termios = None


def hung_up(fd: int) -> bool:
    """True once the terminal behind `fd` has hung up (its window closed, tmux killed).

    A hung-up terminal answers every request with EIO. Only a session's leader is sent SIGHUP
    for it, so under `make run` (make leads, and waits) the app is not told; and Textual reads
    the dead terminal as endless empty input. Unchecked, the app would train on, unseen."""
    if termios is None:
        return False
    try:
        termios.tcgetattr(fd)
    except termios.error as e:
        return e.args[0] == errno.EIO
    return False


def watch_for_hang_up(fd: int, on_hang_up: Callable[[], None], every: float = 0.5) -> threading.Thread:
    """Call `on_hang_up`, in a thread of its own, once the terminal behind `fd` hangs up. A
    thread, not a timer on the app's event loop: with the terminal gone, Textual's writes to it
    soon block that loop for good."""
    def watch() -> None:
        while not hung_up(fd):
            time.sleep(every)
        on_hang_up()

    thread = threading.Thread(target=watch, name="charlm-terminal-watch", daemon=True)
    thread.start()
    return thread
