"""A monkey for the app: random events from a seed while a tiny model trains, and nothing may break.

Textual's Pilot drives the real app, a tiny model really training, with random keys, clicks,
scrolls, pastes, command-palette commands, resizes (down to 80x24 and back) and quits, over all
four screens and their dialogs, from a fixed seed; then checks that nothing broke.

Keys are drawn mostly from the bindings active where the focus is (the app's, the screen's, the
focused widget's: a key added to any of them is covered without a change here), then from every
screen's and dialog's bindings, printable characters and editing keys. Events are posted to the
app as a terminal driver posts them (Pilot.press and .click wait for the process to go idle, which
it never does while a model trains), and the next one comes once the app has handled it. Each app
session starts a run; quitting (ctrl+q, or Quit in the palette, the dialog then answered at
random) ends the session, which is checked, and a new app opens on the same checkpoints/ and cache.

A finding is: an exception that ended the app; a worker failed with anything but the errors the
app reports to the user (UsageError, Cancelled, TrainingStopped, Abandoned); an exception in any
other thread or in the event loop; a coroutine never awaited (an action that silently did nothing);
a new entry in the app's error log (tui-errors.log); a screen that stopped handling its messages;
training or a worker still running two minutes after everything was stopped (or the session never
told that training ended); a saved run that does not load.

Measured: wall time, the process's RSS (at start, after the first minute, at the end) and
key-to-screen time (posting a key until the app has handled it and redrawn, while training).
Between apps the process is brought back to what a fresh one holds before it is measured: what kept
a closed app alive is let go, and Textual's and Rich's process-wide caches are emptied (see
`empty_render_caches`).

    python -m bench.monkey [--events 20000] [--seed N] [--seconds S] [--size 100x30] [--log] [--keep-going]
                           [--one-app]

--one-app never asks the app to quit (no ctrl+q, no Quit in the palette): the memory of one app
kept open through every event, as a person keeps it, where the default also measures what app
after app leaves in one process (a quit that still happens, by a click on the footer's key, then
opens the next app as usual).

Each event draws from its own random stream (seed, event number), so which kinds of events come in
which order is fixed by the seed; the key, widget or command an event picks depends on what the app
shows just then, and the training thread's timing can change that, so a finding may take a replay
or two to recur (--log prints every event, to compare).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import ctypes
import faulthandler
import functools
import gc
import logging
import os
import random
import re
import statistics
import string
import sys
import tempfile
import threading
import time
import traceback
import unicodedata
import warnings
import weakref
from array import array
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from textual import events
from textual.app import _PrintCapture     # (private: what Textual puts in sys.stdout while an app runs)
from textual.binding import Binding
from textual.geometry import Size
from textual.keys import REPLACED_KEYS, _character_to_key, _get_unicode_name_from_key   # as Pilot.press does
from textual.pilot import WaitForScreenTimeout
from textual.screen import ModalScreen
from textual.widgets import DataTable
from textual.worker import Worker, WorkerState

from bench.kill_stress import corpus_text
from bench.machine import rss_mb
from charlm.cancel import Cancelled
from charlm.errors import UsageError
from charlm.machine.allocator import give_back_freed_memory
from charlm.model.checkpoint import load_checkpoint
from charlm.runs.listing import list_runs
from charlm.train.reports import TrainingStopped
from charlm.tui.app import CharLMApp
from charlm.tui.errors import error_log_path
from charlm.tui.options import AppOptions
from charlm.tui.screens import dialogs
from charlm.tui.screens import help as help_screen
from charlm.tui.train_session import Abandoned, TrainingSession

SIZE = (100, 30)
TAIL = 40                 # events kept for a finding's report
EXPECTED_ERRORS = (UsageError, Cancelled, TrainingStopped, Abandoned)   # what the app tells the user
STOP_WAIT = 120.0         # seconds for training, and then every worker, to end once stopped
START_WAIT = 60.0         # seconds for a session's corpus to be read and its run to take a step
# (weight, kind): what the monkey does next
MIX = [(40, "bound"), (10, "any_bound"), (14, "char"), (12, "special"), (9, "click"), (2, "scroll"),
       (4, "paste"), (2, "resize"), (3, "palette"), (2, "wait"), (0.4, "quit")]
SPECIAL = ["tab", "shift+tab", "enter", "escape", "up", "down", "left", "right", "home", "end", "pageup",
           "pagedown", "backspace", "delete", "space", "ctrl+a", "ctrl+e", "ctrl+k", "ctrl+u", "ctrl+w",
           "ctrl+z", "ctrl+y", "ctrl+x", "ctrl+v", "ctrl+c", "shift+left", "shift+right", "shift+up",
           "shift+down", "ctrl+left", "ctrl+right", "shift+home", "shift+end", "f1", "insert"]
QUIT_KEYS = ("ctrl+q",)
QUIT_COMMAND = "Quit"     # the palette's (Textual's system command)
ODD_CHARS = "éßøñ€£→←“”—…✓🐈中文ĳ\u0301\u200b\t"
LOOP_TURNS = 20     # turns of the event loop between apps, for callbacks a closed app left behind
SIZES = [(80, 24), (100, 30), (120, 40), (160, 50), (90, 28), (81, 25)]


def monkey_options(corpus: Path) -> AppOptions:
    """The tests' tiny model (tests/tui/conftest.py) in the app's own update rates, validating
    and saving every 100 steps (a few seconds)."""
    return AppOptions(corpus=str(corpus), preset="tiny", model=dict(layers=1, hidden=32, embed=8),
                      train=dict(batch_size=8, seq_len=32, lr=1e-2, device="cpu", precision="fp32", seed=1),
                      budget=3000, budget_unit="steps", eval_every=100, sample_every=50, sample_length=40,
                      time_presets=False)


def write_corpus(root: Path) -> Path:
    path = root / "monkey.txt"
    path.write_text(corpus_text(20_000), encoding="utf-8")
    return path


def every_bound_key() -> list[str]:
    """Every key the app's classes bind: the app, the four screens and their widgets, the dialogs."""
    classes = [CharLMApp, *(screen for _, screen, _ in CharLMApp.PAGES.values()),
               *(w for _, _, widgets in CharLMApp.PAGES.values() for w in widgets),
               *(c for c in vars(dialogs).values() if isinstance(c, type) and issubclass(c, ModalScreen)),
               help_screen.HelpScreen]
    keys = {b.key for cls in classes for b in Binding.make_bindings(cls.BINDINGS)}
    return sorted(keys - set(QUIT_KEYS))


def key_event(key: str) -> events.Key:
    """The Key event a terminal sends for `key` (as Pilot.press makes it)."""
    if len(key) == 1 and not key.isalnum():
        key = _character_to_key(key)
    try:
        char = unicodedata.lookup(_get_unicode_name_from_key(REPLACED_KEYS.get(key, key)))
    except KeyError:
        char = key if len(key) == 1 else None
    return events.Key(key, char)


def training_threads() -> list[str]:
    """The threads inside charlm's training code (the session's run: building, training, saving)."""
    names = {t.ident: t.name for t in threading.enumerate()}
    return [names.get(ident, str(ident)) for ident, frame in sys._current_frames().items()
            if any(f"{os.sep}charlm{os.sep}train{os.sep}" in fs.filename or fs.filename.endswith("train_session.py")
                   for fs in traceback.extract_stack(frame))]


def thread_stacks() -> str:
    names = {t.ident: t.name for t in threading.enumerate()}
    return "\n".join(f"thread {names.get(ident, ident)}:\n" + "".join(traceback.format_stack(frame))
                     for ident, frame in sys._current_frames().items() if ident != threading.get_ident())


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


def memory_parts() -> dict[str, float]:
    """Where the resident memory is, in MB (and counts): to tell a leak of objects from memory
    an allocator keeps, or a library mapped in. Linux; glibc's parts where there is glibc."""
    parts: dict[str, float] = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile"):
                parts[key] = int(value.split()[0]) / 1024
    try:
        mallinfo2 = ctypes.CDLL(None).mallinfo2
        mallinfo2.restype = _MallInfo2
        info = mallinfo2()
        parts["malloc used"] = (info.uordblks + info.hblkhd) / 2**20
        parts["malloc free"] = info.fordblks / 2**20
    except (OSError, AttributeError):
        pass
    parts.update(mapped_rss())
    parts["python arenas"] = python_arenas_mb()
    parts["python blocks (k)"] = sys.getallocatedblocks() / 1000
    parts["objects (k)"] = len(gc.get_objects()) / 1000
    parts["threads"] = threading.active_count()
    with open("/proc/self/maps") as f:
        parts["files mapped"] = len({line.split()[-1] for line in f if line.rstrip().count(" ") >= 5 and "/" in line})
    return parts


def mapped_rss() -> dict[str, float]:
    """Resident MB of malloc's main heap and of the other anonymous mappings (Python's arenas,
    malloc's mmapped blocks, thread stacks, whatever libraries map themselves)."""
    rss = {"heap": 0, "anon maps": 0}
    where = None
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split()
            if "-" in head[0] and len(head) >= 5:           # a mapping's first line
                where = "heap" if head[-1] == "[heap]" else "anon maps" if len(head) == 5 else None
            elif head[0] == "Rss:" and where:
                rss[where] += int(head[1])
    return {k: v / 1024 for k, v in rss.items()}


def python_arenas_mb() -> float:
    """MB in pymalloc's arenas (whole arenas, used or not): CPython prints it only to the C
    stderr, so that is pointed at a file for the call."""
    with tempfile.TemporaryFile() as out:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(out.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        text = out.read().decode(errors="replace")
    found = re.search(r"^(\d+) arenas \* (\d+) bytes/arena", text, re.M)
    return int(found[1]) * int(found[2]) / 2**20 if found else float("nan")


def release_captured_streams() -> list[str]:
    """Modules imported while an app ran and that kept `sys.stdout`/`sys.stderr` (Textual's
    capture, which holds that app): hand them the real streams, and say which. In the real
    program one app runs per process, so this keeps one app that is running anyway; here, with
    an app after another in one process, each such import would keep a closed app alive (the
    first training start imports torch._dynamo, whose sympy does `from sys import stdout`)."""
    found = []

    def real(capture: _PrintCapture):
        return sys.__stderr__ if capture.stderr else sys.__stdout__

    for module in list(sys.modules.values()):
        for name, value in list(getattr(module, "__dict__", {}).items()):
            if isinstance(value, _PrintCapture):
                setattr(module, name, real(value))
                found.append(f"{module.__name__}.{name}")
    loggers = [logging.getLogger(), *(x for x in logging.Logger.manager.loggerDict.values()
                                      if isinstance(x, logging.Logger))]
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(getattr(handler, "stream", None), _PrintCapture):
                handler.setStream(real(handler.stream))
                found.append(f"logger {logger.name!r}'s handler")
    return found


# Textual's caches that are class-wide yet keyed by a widget (an lru_cache on a method): the last
# tables drawn stay in it, and through them their app (its run, its loaded models), until newer
# entries push them out. In the real program that is one table of the one app; here, a closed app
# is kept for as long as no later session draws a table (seed 101: at events 4,890 and 8,333).
WIDGET_KEYED_CACHES = {"DataTable._get_styles_to_render_cell": DataTable._get_styles_to_render_cell}


def release_widget_keyed_caches() -> list[str]:
    """Empty those caches (the next table drawn fills them again), and say which held anything."""
    found = []
    for name, cache in WIDGET_KEYED_CACHES.items():
        if cache.cache_info().currsize:
            cache.cache_clear()
            found.append(name)
    return found


def render_caches() -> list[functools._lru_cache_wrapper]:
    """Textual's and Rich's process-wide lru_caches: cell widths, region arithmetic, styles,
    colours (each bounded to a few thousand entries, or keyed by a class)."""
    # `type(o) is`, not isinstance: isinstance asks a lazy module's stand-in for its class and so
    # imports it (torch.distributed.reduce_op warns when woken)
    return [o for o in gc.get_objects() if type(o) is functools._lru_cache_wrapper
            and (getattr(o, "__module__", None) or "").partition(".")[0] in ("textual", "rich")]


def empty_render_caches() -> int:
    """Empty them, as a fresh process has them; say how many entries they held. The real program
    runs one app per process, and there the caches fill once up to their bounds; here, every app
    after the first adds its entries among what it leaves in memory, and Python's allocator
    keeps each 1 MiB arena that any one of them still sits in (seed 101, events 700-4,000: the
    process's arenas grew 139 -> 145 MB and RSS 383 -> 395 MB with the caches kept, 140 -> 141
    and 378 -> 382 MB emptied between apps)."""
    caches = render_caches()
    held = sum(c.cache_info().currsize for c in caches)
    for cache in caches:
        cache.cache_clear()
    return held


def saved_state(checkpoint: Path) -> tuple | None:
    """A checkpoint as saved: where it is, and its files' names, sizes and modification times
    (every save writes a new directory and swaps it in). None where there is none."""
    try:
        files = list(checkpoint.iterdir())
    except FileNotFoundError:
        return None
    except OSError:                           # not a directory, unreadable: the load says what is wrong
        return (str(checkpoint), ())
    return (str(checkpoint), tuple(sorted((f.name, st.st_size, st.st_mtime_ns) for f in files for st in [f.stat()])))


def object_counts() -> collections.Counter:
    return collections.Counter(type(o).__qualname__ for o in gc.get_objects())


@dataclass
class Finding:
    kind: str                  # exception, worker, thread, loop, error-log, hang, stuck, unsaved, start
    detail: str                # the traceback, or what was seen
    event: int                 # events done when it was seen
    session: int
    tail: list[str]            # the events before it, oldest first


@dataclass
class Report:
    seed: int
    events: int                                     # asked for
    one_app: bool = False                           # no quits asked for (--one-app)
    done: int = 0
    sessions: int = 0
    wall: float = 0.0
    findings: list[Finding] = field(default_factory=list)
    screens: set[str] = field(default_factory=set)  # screen classes seen
    kinds: dict[str, int] = field(default_factory=dict)
    kind_time: dict[str, float] = field(default_factory=dict)   # seconds spent, by kind of event
    # seconds, key posted -> screen redrawn: an array, not a list of floats, for what this bench keeps from event
    # to event is made while an app runs, and each small object kept pins the allocator's arena it landed in
    key_times: array = field(default_factory=lambda: array("d"))
    slowest: list[tuple[float, str]] = field(default_factory=list)  # the 10 slowest events, (seconds, event)
    rss: list[tuple[float, int, float]] = field(default_factory=list)   # (seconds, events, MB)
    rss_jumps: list[tuple[float, str]] = field(default_factory=list)   # the 5 events that raised RSS most, (MB, event)
    rss_between: list[tuple[float, int, float]] = field(default_factory=list)   # after each app closed: (s, events, MB)
    runs_loaded: int = 0
    rss_steps: list[str] = field(default_factory=list)   # between apps, where RSS rose: which parts rose
    cache_entries_emptied: int = 0                  # Textual's and Rich's cache entries emptied between apps
    captures: list[str] = field(default_factory=list)    # what had kept a closed app alive, released
    apps_alive: int = 0                                  # apps still in memory once all had closed
    held_between: list[int] = field(default_factory=list)   # events where a closed app outlived its session

    def replay(self) -> str:
        events = self.findings[0].event + 1 if self.findings else self.events
        return f"python -m bench.monkey --seed {self.seed} --events {events}" + (" --one-app" if self.one_app else "")

    def describe(self) -> str:
        out = [(f"monkey seed {self.seed}: {len(self.findings)} finding(s) in {self.done} events, "
                f"{self.sessions} app session(s); replay: {self.replay()}")]
        for f in self.findings:
            out.append(f"--- {f.kind} at event {f.event} (session {f.session}); the last events:")
            out += [f"    {e}" for e in f.tail]
            out.append(f.detail.rstrip())
        return "\n".join(out)


class Monkey:
    """Random events into one app session after another until `events` are done, or `seconds`
    have passed, or (with `stop_on_finding`) something is found."""

    def __init__(self, corpus: Path, seed: int, events: int, size: tuple[int, int] = SIZE,
                 seconds: float | None = None, stop_on_finding: bool = True, progress=None, log=None,
                 one_app: bool = False):
        self.corpus, self.size, self.seconds, self.stop_on_finding = corpus, size, seconds, stop_on_finding
        self.one_app = one_app
        self.progress, self.log = progress, log
        self.seed = seed
        self.rng = random.Random(seed)       # replaced at each event (see step)
        self.report = Report(seed, events, one_app)
        self.tail: deque[str] = deque(maxlen=TAIL)
        self.any_bound = every_bound_key()
        self.kinds, self.weights = zip(*((k, w) for w, k in MIX if not (one_app and k == "quit")))
        self.notes: list[str] = []            # notifications, for following renames and deletes
        self._loaded: set[tuple] = set()       # checkpoints already loaded, as saved (saved_state)
        self._errors_seen = 0
        self._failed_workers = weakref.WeakSet()   # a message bubbles: the hook sees it at every node
        self._t0 = 0.0
        self._parts_before: dict[str, float] | None = None     # memory_parts() when the last app closed
        self._counts_before: collections.Counter = collections.Counter()
        self._apps: weakref.WeakSet[CharLMApp] = weakref.WeakSet()   # each session's, while alive

    # -- findings ----------------------------------------------------------------------------
    def found(self, kind: str, detail: str) -> None:
        r = self.report
        r.findings.append(Finding(kind, detail, r.done, r.sessions, list(self.tail)))

    @property
    def finished(self) -> bool:
        r = self.report
        late = self.seconds is not None and time.perf_counter() - self._t0 > self.seconds
        return r.done >= r.events or late or bool(self.stop_on_finding and r.findings)

    def _hook(self, message) -> None:
        """Every message in the app: a worker that failed."""
        if isinstance(message, Worker.StateChanged) and message.state == WorkerState.ERROR:
            error = message.worker.error
            if message.worker in self._failed_workers:
                return
            self._failed_workers.add(message.worker)
            if not isinstance(error, EXPECTED_ERRORS):
                self.found("worker", f"worker {message.worker.name!r} (group {message.worker.group!r}) failed:\n"
                           + "".join(traceback.format_exception(error)))

    def _thread_failed(self, args) -> None:
        self.found("thread", f"thread {args.thread.name if args.thread else '?'}:\n"
                   + "".join(traceback.format_exception(args.exc_value)))

    def _loop_failed(self, loop, context) -> None:
        error = context.get("exception")
        detail = "".join(traceback.format_exception(error)) if error else ""
        self.found("loop", f"{context.get('message', '')}\n{detail}")

    def _warned(self, message, category, filename, lineno, file=None, line=None) -> None:
        """A coroutine never awaited is an action that silently did nothing."""
        if issubclass(category, RuntimeWarning) and "never awaited" in str(message):
            self.found("warning", f"{filename}:{lineno}: {category.__name__}: {message}")

    def _check_error_log(self) -> None:
        path = error_log_path()
        try:
            size = path.stat().st_size
        except OSError:
            return
        if size > self._errors_seen:
            with open(path, encoding="utf-8") as f:
                f.seek(self._errors_seen)
                self.found("error-log", f"{path} grew:\n{f.read()}")
            self._errors_seen = size

    # -- the run -----------------------------------------------------------------------------
    async def run(self) -> Report:
        threading_hook, loop = threading.excepthook, asyncio.get_running_loop()
        loop_hook, switch = loop.get_exception_handler(), sys.getswitchinterval()
        threading.excepthook = self._thread_failed
        loop.set_exception_handler(self._loop_failed)
        sys.setswitchinterval(0.001)          # as charlm.tui.run does for the real app
        self._t0 = time.perf_counter()
        if self.seconds is not None:          # a hang that blocks even the event loop still says where
            faulthandler.dump_traceback_later(self.seconds + 2 * STOP_WAIT + START_WAIT + 60)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("always", RuntimeWarning)
                warnings.showwarning = self._warned
                while not self.finished:
                    await self.session_apart(loop)
                    self.measure_between()
        finally:
            faulthandler.cancel_dump_traceback_later()
            threading.excepthook = threading_hook
            loop.set_exception_handler(loop_hook)
            sys.setswitchinterval(switch)
        self.report.wall = time.perf_counter() - self._t0
        gc.collect()
        self.report.apps_alive = len(self._apps)
        if not self.report.rss:               # no app ever trained: at least one figure to print
            self.sample_rss()
        return self.report

    def sample_rss(self) -> None:
        self.report.rss.append((time.perf_counter() - self._t0, self.report.done, rss_mb()))

    async def session_apart(self, loop: asyncio.AbstractEventLoop) -> None:
        """A session as in the real program, where the event loop ends with the app: in a task of
        its own (Textual keeps the running app in context variables) and with threads of its own
        for the loop's executor (Textual's thread workers run there, and a thread keeps the
        sys.stderr of when it started: the app's capture). Shared, they would keep closed apps
        alive for the rest of the soak."""
        executor = ThreadPoolExecutor(thread_name_prefix="asyncio")
        loop.set_default_executor(executor)
        try:
            await asyncio.create_task(self.session())
        finally:
            loop.set_default_executor(ThreadPoolExecutor(thread_name_prefix="asyncio"))
            executor.shutdown(wait=True)
            # A thread worker that ended with its app (a cancelled generation) hands its result to
            # the loop as a callback, whose context holds the app: let those run, or the closed app
            # lives on into the next session and both are measured as one.
            for _ in range(LOOP_TURNS):
                await asyncio.sleep(0)

    async def session(self) -> None:
        """One app: start a run, then random events until done, a finding or a quit; then stop
        everything and check it ended and saved."""
        self.report.sessions += 1
        self.notes = []                       # this app's: the checks after it follow its renames and deletes
        app = CharLMApp(monkey_options(self.corpus))
        self._apps.add(app)
        notify = app.notify

        def noting(message, *args, **kwargs):
            self.notes.append(str(message))
            return notify(message, *args, **kwargs)

        app.notify = noting
        self.tail.append(f"-- session {self.report.sessions} starts")
        try:
            async with app.run_test(size=self.size, tooltips=True, notifications=True,
                                    message_hook=self._hook) as pilot:
                if await self.start_run(pilot):
                    while not self.finished and app.return_code is None:
                        await self.step(pilot)
                if app.return_code is None and not app._exception:
                    await self.wind_down(pilot)
        except WaitForScreenTimeout:
            self.found("hang", "the screen did not process its messages within 30 s")
        except Exception as e:                # noqa: BLE001  (run_test re-raises what ended the app)
            if app._exception is None:
                self.found("exception", "".join(traceback.format_exception(e)))
        if app._exception is not None:
            self.found("exception", "the app ended with:\n" + "".join(traceback.format_exception(app._exception)))
        elif app.return_code not in (None, 0):
            self.found("exception", f"the app exited with status {app.return_code}")
        self._check_error_log()
        # However the app ended, the training thread ends too, saving unless told not to (charlm.tui.run).
        session = app.session
        session.request_stop(save=not session.abandon.is_set())
        deadline = time.monotonic() + STOP_WAIT
        while training_threads() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        if training_threads():
            self.found("stuck", f"a training thread was still running {STOP_WAIT:.0f} s after the app ended "
                       f"(session {session.state}); the threads:\n{thread_stacks()}")
        elif not session.finished.is_set():
            self.found("stuck", "the training thread has ended but session.finished was never set "
                       f"(session {session.state}): whatever waits for it waits in vain")
        self.check_runs(session)

    def measure_between(self) -> None:
        """What an app leaves behind once it has closed (and its session returned: nothing of it
        is referenced any more): each session's own state (a long output, a loaded model) is gone,
        so growth here is a leak, not a session's working set."""
        for holder in release_captured_streams():
            self.report.captures.append(f"{holder} (event {self.report.done})")
        gc.collect()
        if self._apps:
            for holder in release_widget_keyed_caches():
                self.report.captures.append(f"{holder} (event {self.report.done})")
            gc.collect()
        if self._apps:
            self.report.held_between.append(self.report.done)
        self.report.cache_entries_emptied += empty_render_caches()
        give_back_freed_memory()
        self.report.rss_between.append((time.perf_counter() - self._t0, self.report.done, rss_mb()))
        parts, counts = {**memory_parts(), "apps alive": len(self._apps)}, object_counts()
        if self._parts_before is not None and parts["VmRSS"] - self._parts_before["VmRSS"] >= 3:
            rose = ", ".join(f"{k} {v - self._parts_before[k]:+.1f}" for k, v in parts.items())
            types = (counts - self._counts_before).most_common(6)
            self.report.rss_steps.append(f"{self.report.done}: {rose}; objects up: "
                                         + ", ".join(f"{n} {c:+}" for n, c in types))
        self._parts_before, self._counts_before = parts, counts
        # Counting (gc.get_objects twice, /proc/self/smaps read) allocates memory (18 MB at the end of
        # a 20k soak: 418 MB after the trim above, 436 MB after counting) that malloc,
        # tuned to keep freed memory for training, would keep: this bench's, not the app's.
        give_back_freed_memory()

    async def start_run(self, pilot) -> bool:
        """Read the corpus and start training, as a person does first."""
        app = pilot.app
        try:
            await until(pilot, lambda: getattr(app.screen, "corpus", None) is not None, START_WAIT)
            app.post_message(key_event("s"))
            await until(pilot, lambda: app.session.last_step is not None, START_WAIT)
            # The screen has shown that it trains (Start disabled, the focus moved on): the first
            # event then finds the same keys bound, whatever the timing.
            await until(pilot, lambda: app.session.state != TrainingSession.PREPARING, START_WAIT)
            await settle(pilot)
        except TimeoutError:
            self.found("start", f"no training step {START_WAIT:.0f} s into session {self.report.sessions} "
                       f"(session state {app.session.state})")
            return False
        if not self.report.rss:
            self.sample_rss()                 # the start: the app up and training
        return True

    async def step(self, pilot) -> None:
        """One random event, then the checks."""
        r = self.report
        app = pilot.app
        # Each event draws from its own stream: what one event drew (a key among however many are
        # bound just then) cannot shift what the next ones draw.
        self.rng = random.Random(self.seed * 1_000_003 + r.done)
        kind = self.rng.choices(self.kinds, self.weights)[0]
        r.kinds[kind] = r.kinds.get(kind, 0) + 1
        r.screens.add(type(app.screen).__name__)
        where = f"{type(app.screen).__name__.removesuffix('Screen') or '?'}, {app.session.state}"
        started, rss_before = time.perf_counter(), rss_mb()
        what = await getattr(self, f"do_{kind}")(pilot)
        event = f"{r.done:>6} [{where}] {kind} {what}"
        self.tail.append(event)
        if self.log:
            self.log(event)
        await settle(pilot)                   # the app has handled it, and redrawn
        took = time.perf_counter() - started
        r.kind_time[kind] = r.kind_time.get(kind, 0.0) + took
        r.rss_jumps = sorted([*r.rss_jumps, (rss_mb() - rss_before, event.strip())], reverse=True)[:5]
        if app.return_code is None:           # else the app exited meanwhile: no screen to measure
            r.slowest = sorted([*r.slowest, (took, event.strip())], reverse=True)[:10]
            if kind in ("bound", "any_bound", "char", "special"):
                r.key_times.append(took)
        r.done += 1
        self._check_error_log()
        elapsed = time.perf_counter() - self._t0
        # In the app, as the start and the first minute are: the end is the last event's sample,
        # not one taken once the app has closed and this bench has counted its objects.
        if r.done % 500 == 0 or (len(r.rss) == 1 and elapsed >= 60) or self.finished:
            self.sample_rss()
        if self.progress and r.done % 1000 == 0:
            self.progress(r)

    async def wind_down(self, pilot) -> None:
        """Stop generating, analysing and training through the screens' own actions (each mode's
        dialogs closed first: a mode keeps its own stack), and wait for every worker to end."""
        app = pilot.app
        for mode, action in (("generate", "stop"), ("inspect", "cancel"), ("train", "stop")):
            await app.switch_mode(mode)
            for _ in range(8):
                await settle(pilot)
                if not isinstance(app.screen, ModalScreen):
                    break
                app.post_message(key_event("escape"))
            if isinstance(app.screen, ModalScreen):
                self.found("stuck", f"escape did not close {type(app.screen).__name__} on the {mode} screen")
                return
            await app.screen.run_action(action)
            await settle(pilot)
        try:
            await until(pilot, lambda: app.session.state == TrainingSession.IDLE, STOP_WAIT)
            await until(pilot, lambda: not [w for w in app.workers if w.is_running], STOP_WAIT)
        except TimeoutError:
            running = [f"{w.name!r} (group {w.group!r}, {w.description!r}, {w.state.name})"
                       for w in app.workers if w.is_running]
            self.found("stuck", f"{STOP_WAIT:.0f} s after stopping: session {app.session.state}, "
                       f"workers still running: {', '.join(running) or 'none'}")

    def check_runs(self, session: TrainingSession) -> None:
        """Every run under checkpoints/ loads (best/ and last/), weights included; the session's
        last run is among them unless it was deleted or discarded. A checkpoint is loaded once as
        saved (`saved_state`): loading every one after every app made the bench's own work grow
        with the soak (4,688 loads in 70 apps), in the process whose memory is measured."""
        last = session.run_dir
        for note in self.notes:               # renamed X to Y · deleted X
            if last is not None and note.startswith(f"renamed {last.name} to "):
                last = last.with_name(note.removeprefix(f"renamed {last.name} to "))
        gone = last is None or any(n == f"deleted {last.name}" for n in self.notes) or session.abandon.is_set()
        names = set()
        for run in list_runs():
            names.add(run.name)
            for which in ("best", "last"):
                state = saved_state(run.path / which)
                if state is None or state in self._loaded:
                    continue
                self._loaded.add(state)
                try:
                    ckpt = load_checkpoint(run.path / which)
                except Exception as e:        # noqa: BLE001  (whatever stops it loading is the finding)
                    self.found("unsaved", f"{run.path / which} does not load: {type(e).__name__}: {e}")
                    continue
                if not sum(p.numel() for p in ckpt.model.parameters()):
                    self.found("unsaved", f"{run.path / which} holds no weights")
                self.report.runs_loaded += 1
            if run.problem:
                self.found("unsaved", f"{run.path} is listed as unreadable: {run.problem}")
        if not gone and last.name not in names:
            self.found("unsaved", f"the session's run {last} is not under checkpoints/ "
                       f"(runs there: {sorted(names)})")

    # -- the events: each does one thing and says what --------------------------------------
    async def do_bound(self, pilot) -> str:
        keys = sorted(k for k in pilot.app.screen.active_bindings if k not in QUIT_KEYS)
        return self._press(pilot, self.rng.choice(keys) if keys else "tab")

    async def do_any_bound(self, pilot) -> str:
        return self._press(pilot, self.rng.choice(self.any_bound))

    async def do_char(self, pilot) -> str:
        pool = ODD_CHARS if self.rng.random() < 0.15 else string.ascii_letters + string.digits + string.punctuation + " "
        return self._press(pilot, self.rng.choice(pool))

    async def do_special(self, pilot) -> str:
        return self._press(pilot, self.rng.choice(SPECIAL))

    async def do_quit(self, pilot) -> str:
        return self._press(pilot, self.rng.choice(QUIT_KEYS))

    def _press(self, pilot, key: str) -> str:
        pilot.app.post_message(key_event(key))
        return key

    async def do_click(self, pilot) -> str:
        """Anywhere (a quarter on the top line, where the tabs are), or inside a widget that
        can be clicked or focused; one in ten a double click."""
        app, rng = pilot.app, self.rng
        w, h = app.size
        targets = [t for t in app.screen.query("Button, Input, Select, TextArea, DataTable, OptionList, Tab, Checkbox, "
                                               "RadioButton, Switch, Collapsible, CollapsibleTitle")
                   if t.region.area and t.display]
        if targets and rng.random() < 0.4:
            target = rng.choice(sorted(targets, key=lambda t: (t.region.y, t.region.x)))
            region = target.region.intersection(app.screen.region)
            if region.area:
                x, y = region.x + rng.randrange(region.width), region.y + rng.randrange(region.height)
            else:
                x, y = rng.randrange(w), rng.randrange(h)
        else:
            x, y = rng.randrange(w), 0 if rng.random() < 0.25 else rng.randrange(h)
        times = 2 if rng.random() < 0.1 else 1
        for _ in range(times):
            for cls in (events.MouseDown, events.MouseUp):
                app.post_message(cls(None, x, y, 0, 0, 1, False, False, False, screen_x=x, screen_y=y))
        return f"{x},{y}" + (" x2" if times == 2 else "")

    async def do_scroll(self, pilot) -> str:
        app, rng = pilot.app, self.rng
        x, y = rng.randrange(app.size.width), rng.randrange(app.size.height)
        cls = rng.choice((events.MouseScrollDown, events.MouseScrollUp))
        for _ in range(rng.randint(1, 5)):
            app.post_message(cls(None, x, y, 0, 0, 0, False, False, False, screen_x=x, screen_y=y))
        return f"{cls.__name__.removeprefix('MouseScroll').lower()} {x},{y}"

    async def do_paste(self, pilot) -> str:
        text = self.paste_text()
        pilot.app.post_message(events.Paste(text))
        shown = text[:30].encode("unicode_escape").decode()
        return f"{len(text)} chars: {shown!r}" + ("…" if len(text) > 30 else "")

    def paste_text(self) -> str:
        rng = self.rng
        pick = rng.random()
        if pick < 0.3:
            here = self.corpus.parent     # paths only under the monkey's directory: Save writes where told
            return rng.choice([str(self.corpus), str(here), str(here / "no" / "such.txt"), "~", "~/", "",
                               "0:h:3", "1:c:999", "0:h:-1", "quote", "paren", "line-position", "after-newline",
                               "(", "[a-", ".*", "x{99999}", "-1", "0", "1e9", "nan", "inf", "3.5", "1e-9",
                               "\x00\x1b[31m", "\r\n\r\n", "The cat sat on the mat.\n"])
        if pick < 0.6:
            return "".join(rng.choice(string.printable) for _ in range(rng.randint(1, 40)))
        if pick < 0.8:
            return "".join(rng.choice(ODD_CHARS + "abc \n") for _ in range(rng.randint(1, 60)))
        return corpus_text(rng.randint(500, 6000), seed=rng.randrange(1000))

    async def do_resize(self, pilot) -> str:
        """A new terminal size, as the terminal reports one."""
        w, h = self.rng.choice(SIZES)
        pilot.app.post_message(events.Resize(Size(w, h), Size(w, h)))
        return f"{w}x{h}"

    async def do_palette(self, pilot) -> str:
        """ctrl+p, the start of a real command's name, enter: the palette runs (or lists) it."""
        app, rng = pilot.app, self.rng
        titles = sorted(c.title for c in app.get_system_commands(app.screen)
                        if not (self.one_app and c.title == QUIT_COMMAND))
        title = rng.choice(titles)
        typed = title[:rng.randint(2, len(title))]
        app.post_message(key_event("ctrl+p"))
        await settle(pilot)
        for ch in typed:
            app.post_message(key_event(ch))
        await settle(pilot)
        await pilot.pause(0.2)                # the palette searches in a worker
        app.post_message(key_event("enter" if rng.random() < 0.85 else "escape"))
        return repr(typed)

    async def do_wait(self, pilot) -> str:
        delay = round(self.rng.uniform(0.05, 0.4), 2)
        await pilot.pause(delay)
        return f"{delay}s"


async def settle(pilot, rounds: int = 10) -> None:
    """Let the app finish what the last event started, as a person waits to see it: the messages
    it posted (and those they posted in turn) handled, a screen pushed or popped, the screen
    redrawn. Events still come faster than a person's, and a busy app still lags behind them."""
    app = pilot.app
    for _ in range(rounds):
        screen = app.screen
        try:
            await pilot.pause(0)
        except WaitForScreenTimeout:
            # Pilot waits for a callback it posted to each widget; a widget that closes first never
            # runs it. When the app has been told to exit (a quit after saving, say), that is the
            # app closing as asked, not a hang.
            if app.return_code is None:
                raise
            return
        # (private: Textual has no public "nothing queued"; Pilot's own waiting reads the same queues)
        queued = any(node._message_queue.qsize() for node in (app, *screen.walk_children(with_self=True)))
        if app.screen is screen and not queued:
            return


async def until(pilot, predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError
        await pilot.pause(0.05)


async def run_monkey(corpus: Path, seed: int, events: int, **kwargs) -> Report:
    """Drive the app with `events` random events from `seed` (see Monkey); the report says what
    was found. CHARLM_CHECKPOINTS and CHARLM_CACHE should point somewhere disposable."""
    return await Monkey(corpus, seed, events, **kwargs).run()


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=None, help="random if not given (printed)")
    ap.add_argument("--size", default=f"{SIZE[0]}x{SIZE[1]}", help="the terminal at the start, WxH")
    ap.add_argument("--keep-going", action="store_true", help="go on after a finding (a new app session)")
    ap.add_argument("--seconds", type=float, default=None, help="stop after this long, however many events are done")
    ap.add_argument("--log", action="store_true", help="print every event as it is done")
    ap.add_argument("--one-app", action="store_true",
                    help="never ask the app to quit: one app's memory through every event")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    size = tuple(int(n) for n in args.size.split("x"))
    from charlm.tui.run import prepare_process
    prepare_process()                         # as the app does, before any thread exists
    from bench.machine import describe
    print(f"machine: {describe()}")
    print(f"monkey: seed {seed}, {args.events:,} events, starting at {size[0]}x{size[1]}"
          + (", one app (no quits asked for)" if args.one_app else ""), flush=True)
    with tempfile.TemporaryDirectory(prefix="charlm-monkey-") as tmp:
        root = Path(tmp)
        for name in ("cache", "checkpoints", "corpora"):
            os.environ[f"CHARLM_{name.upper()}"] = str(root / name)
        os.environ["CHARLM_OFFLINE"] = "1"    # a catalog corpus picked at random must not download
        os.environ["HOME"] = str(root)        # nor a path typed as ~/… reach the real home
        os.chdir(root)                        # Generate's Save writes into the working directory
        corpus = write_corpus(root)

        def progress(r: Report) -> None:
            print(f"  {r.done:,} events · {time.perf_counter() - t0:.0f} s · RSS {rss_mb():.0f} MB · "
                  f"{len(r.findings)} finding(s) · {r.sessions} session(s)", flush=True)

        t0 = time.perf_counter()
        report = asyncio.run(run_monkey(corpus, seed, args.events, size=size, seconds=args.seconds,
                                        stop_on_finding=not args.keep_going,
                                        progress=progress, log=print if args.log else None,
                                        one_app=args.one_app))
    r = report
    print(f"events: {r.done:,} in {r.wall:.1f} s ({r.done / r.wall:.0f}/s), {r.sessions} app session(s), "
          f"{r.runs_loaded} checkpoints loaded (each as saved, once); by kind: "
          + ", ".join(f"{k} {n} ({r.kind_time.get(k, 0):.1f} s)" for k, n in sorted(r.kinds.items(), key=lambda kv: -kv[1])))
    print(f"screens seen: {', '.join(sorted(r.screens))}")
    after = next(((t, mb) for t, _, mb in r.rss if t >= 60), None)
    start, end = r.rss[0][2], r.rss[-1][2]
    line = f"RSS: start {start:.0f} MB"
    if after:
        line += (f", after the first minute {after[1]:.0f} MB, end {end:.0f} MB "
                 f"({(end - after[1]) / after[1]:+.1%} since the first minute; goal within 10%: "
                 f"{'met' if abs(end - after[1]) <= 0.1 * after[1] else 'NOT met'})")
    else:
        line += f", end {end:.0f} MB (the run was shorter than a minute)"
    print(line)
    between = [(t, mb) for t, _, mb in r.rss_between]
    settled = next((mb for t, mb in between if t >= 60), None)
    if settled is not None:
        print(f"RSS after each app closed (its state gone, and Textual's and Rich's caches emptied as a fresh process "
              f"has them: {r.cache_entries_emptied:,} entries over {len(between)} closes; a leak's measure): "
              f"first after a minute {settled:.0f} MB, "
              f"last {between[-1][1]:.0f} MB ({(between[-1][1] - settled) / settled:+.1%}; goal within 10%: "
              f"{'met' if abs(between[-1][1] - settled) <= 0.1 * settled else 'NOT met'}); all: "
              + " ".join(f"{t:.0f}/{mb:.0f}" for t, mb in between))
    print(f"apps still in memory at the end: {r.apps_alive}; closed apps alive between sessions (measured with "
          f"the next): {len(r.held_between)}" + (f" (events {', '.join(map(str, r.held_between[:10]))})" if r.held_between else ""))
    if r.captures:
        print("released (what kept a closed app alive: a module holding its captured stdout, a cache of Textual's "
              "keyed by a widget): " + ", ".join(r.captures))
    for step in r.rss_steps:
        print(f"RSS rose between apps at event {step}")
    print("RSS over the run (s, events, MB): " + " ".join(f"{t:.0f}/{n}/{mb:.0f}" for t, n, mb in r.rss))
    if r.key_times:
        ms = [t * 1000 for t in r.key_times]
        print(f"key-to-screen: p50 {pct(ms, 50):.1f} ms · p99 {pct(ms, 99):.1f} ms · max {max(ms):.1f} ms "
              f"({len(ms):,} keys)")
    print("RSS rose most during: " + " · ".join(f"+{mb:.0f} MB {e}" for mb, e in r.rss_jumps if mb >= 1))
    print("slowest events: " + " · ".join(f"{t * 1000:.0f} ms {e}" for t, e in r.slowest))
    print(f"findings: {len(r.findings)}")
    if r.findings:
        print(r.describe())
    sys.exit(1 if r.findings else 0)


if __name__ == "__main__":
    main()
