"""The signals that ask a process to end, and what each command does with them.

SIGTERM is how everything but a person asks: `kill PID`, `docker stop` (SIGKILL follows 10 s
later), systemd, a batch scheduler's preemption, torchrun's agent stopping its ranks. SIGHUP is
a closed terminal or ssh session. SIGINT is Ctrl-C. Training treats all three as "save and
stop" (`save_and_stop_on`); the other commands have nothing to save and end quietly, their
`finally` blocks run (`ending_quietly`). A signal ignored when charlm started (`nohup`, a
background job's SIGINT) stays ignored.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator

# Those that exist here (Windows has no SIGHUP), with whether a stop they ask for must be quick:
# a person at Ctrl-C can wait for the closing validation; docker's 10 s may not.
_STOPPING = {"SIGINT": False, "SIGTERM": True, "SIGHUP": True}
STOP_SIGNALS = {getattr(signal, name): hurry for name, hurry in _STOPPING.items() if hasattr(signal, name)}


def _catchable(signum: int) -> bool:
    """Not ignored by whoever started us, and this is the main thread (only it may set handlers)."""
    return threading.current_thread() is threading.main_thread() and signal.getsignal(signum) is not signal.SIG_IGN


@contextlib.contextmanager
def save_and_stop_on(stop: threading.Event, hurry: threading.Event) -> Iterator[list[str]]:
    """While inside, SIGINT, SIGTERM and SIGHUP set `stop` (the last two `hurry` too). The first
    puts every previous handler back, so a second signal does what it always did (Ctrl-C raises
    KeyboardInterrupt, SIGTERM ends the process): whatever it interrupts, last/ is swapped in
    atomically. Yields the names of the signals received."""
    received: list[str] = []
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS if _catchable(signum)}

    def put_back() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    def on_signal(signum, frame) -> None:
        received.append(signal.Signals(signum).name)
        if STOP_SIGNALS[signum]:
            hurry.set()
        stop.set()              # the trainer finishes its step, saves last/ and returns
        put_back()

    for signum in previous:
        signal.signal(signum, on_signal)
    try:
        yield received
    finally:
        put_back()


@contextlib.contextmanager
def ending_quietly() -> Iterator[None]:
    """While inside, SIGTERM and SIGHUP end a command that has nothing to save as an uncaught
    signal would (status 128+N, no message), but through SystemExit, so the files it was writing
    are tidied first. Outside (the interpreter's own shutdown) they act as they did before, since
    an exception raised there is printed as one."""
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS
                if signum != signal.SIGINT and _catchable(signum)}

    def exit_quietly(signum, frame) -> None:
        with contextlib.suppress(OSError):           # a terminal that hung up takes no more output
            sys.stdout.flush()
        raise SystemExit(128 + signum)

    for signum in previous:
        signal.signal(signum, exit_quietly)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
