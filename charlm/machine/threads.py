"""How many threads to compute with: one per core that nobody else is using.

Two OpenMP threads on a 2-core machine where another process keeps one core busy do not run at
half speed. Every parallel region waits at its barrier for the thread that shares its core with
the other process, and the waiting thread spins: training crawled at 0.31x of its idle speed
(30x slower has been seen with several torch processes). One thread per free core runs in
proportion instead. So the trainer measures what the other processes use (/proc/stat minus our
own time), picks the thread count from that at the start, and looks again every few seconds.

Work of our own on another thread (the app streaming text while it trains) is invisible to
that measure, since it is our own CPU time: it says so with `reserve()`, and the trainer leaves
it its core at once.

OMP_NUM_THREADS, or an explicit thread count, turns this off: the person has decided.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch

# Take a core for a thread when at least this much of it is free. A process that keeps a whole
# core busy reads as 0.67 of one while our two threads compete with it (it gets its fair share
# of the two), so one thread it is; a passing 0.4 (an editor, a test) is not worth halving for.
FREE_TO_TAKE = 0.5
RECHECK_SECONDS = 5.0
FIRST_LOOK_SECONDS = 0.25


def usable_cores() -> float:
    """The cores this process may run on: its CPU affinity, capped by a cgroup CPU quota."""
    try:
        cores = float(len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        cores = float(os.cpu_count() or 1)
    quota = _cgroup_quota()
    return min(cores, quota) if quota else cores


def _cgroup_quota() -> float | None:
    """cgroup v2 `cpu.max` ("quota period", or "max" for none) as a number of cores."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        return None if quota == "max" else max(int(quota) / int(period), 1.0)
    except (OSError, ValueError):
        return None


def busy_cpu_seconds(cpus: set[str] | None = None) -> float | None:
    """Seconds the CPUs named like /proc/stat's "cpu3" (all when None) have been busy since boot,
    time stolen by the hypervisor included; None off Linux."""
    try:
        busy = 0
        with open("/proc/stat") as f:
            for line in f:
                name, *fields = line.split()
                if name.startswith("cpu") and name != "cpu" and (cpus is None or name in cpus):
                    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
                    busy += user + nice + system + irq + softirq + steal
        return busy / _TICK
    except (OSError, ValueError):
        return None


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class CpuMeter:
    """Cores used by other processes between two readings, on the CPUs this process may use."""

    def __init__(self) -> None:
        try:
            self.cpus = {f"cpu{i}" for i in os.sched_getaffinity(0)}
        except (AttributeError, OSError):
            self.cpus = None
        self._last = self._read()

    def _read(self) -> tuple[float, float, float] | None:
        """(wall seconds, busy seconds of the CPUs, our own CPU seconds), or None off Linux."""
        busy = busy_cpu_seconds(self.cpus)
        if busy is None:
            return None
        own = os.times()
        return time.monotonic(), busy, own.user + own.system

    def others(self) -> float | None:
        """Cores the other processes kept busy since the last call (or since creation)."""
        now = self._read()
        last, self._last = self._last, now
        if now is None or last is None or now[0] - last[0] <= 0:
            return None
        wall = now[0] - last[0]
        return max(0.0, ((now[1] - last[1]) - (now[2] - last[2])) / wall)


_reserved = 0                # cores other threads of this process are computing on right now
_reserved_lock = threading.Lock()


@contextlib.contextmanager
def reserve(cores: int = 1):
    """For the duration, another thread of this process computes on `cores` cores: training
    runs on the rest. The thread itself should compute with `cores` threads."""
    global _reserved
    with _reserved_lock:
        _reserved += cores
    try:
        yield
    finally:
        with _reserved_lock:
            _reserved -= cores


def reserved() -> int:
    return _reserved


@dataclass(frozen=True)
class ThreadChoice:
    threads: int
    reason: str          # for people: why this many


def threads_for(usable: float, others: float | None) -> ThreadChoice:
    """The thread count for `usable` cores of which other processes keep `others` busy."""
    most = max(1, int(usable))
    if others is None:
        return ThreadChoice(most, f"{most} thread{'s' * (most > 1)}: all {most} cores (load not measurable here)")
    free = max(0.0, usable - others)
    n = max(1, min(most, math.floor(free + (1.0 - FREE_TO_TAKE))))
    if n == most:
        return ThreadChoice(n, f"{n} thread{'s' * (n > 1)}: {'all' if n > 1 else 'the'} {most} core{'s' * (most > 1)} free")
    return ThreadChoice(n, f"{n} thread{'s' * (n > 1)}: other processes keep {others:.1f} of {usable:g} cores busy")


class ThreadGovernor:
    """Sets torch's thread count from the free cores, and again whenever that changes.

    Call `start()` on the thread that computes (OpenMP's thread count belongs to the calling
    thread), then `tick()` after each step: it looks again every `interval` seconds and returns
    the new choice when it changed."""

    def __init__(self, fixed: int | None = None, interval: float = RECHECK_SECONDS):
        env = os.environ.get("OMP_NUM_THREADS", "").strip()
        if fixed is None and env.isdigit() and int(env) > 0:
            fixed = int(env)
        self.fixed, self.interval = fixed, interval
        self.choice = ThreadChoice(fixed or torch.get_num_threads(), "")
        self._meter: CpuMeter | None = None
        self._watched_since = 0.0
        self._next = 0.0
        self._reserved = 0

    def watch(self) -> ThreadGovernor:
        """Start measuring the load now, so that `start()` after other work (loading a model)
        need not wait for its first look: our own CPU time in between is not counted."""
        if self.fixed is None and self._meter is None:
            self._meter, self._watched_since = CpuMeter(), time.monotonic()
        return self

    def start(self) -> ThreadChoice:
        if self.fixed is not None:
            self.choice = ThreadChoice(self.fixed, f"{self.fixed} thread{'s' * (self.fixed > 1)}: as asked")
        else:
            self.watch()
            time.sleep(max(0.0, self._watched_since + FIRST_LOOK_SECONDS - time.monotonic()))
            self.choice = self._decide()
            self._next = time.monotonic() + self.interval
        _apply(self.choice.threads)
        return self.choice

    def tick(self) -> ThreadChoice | None:
        if self._meter is None or (time.monotonic() < self._next and reserved() == self._reserved):
            return None
        self._next = time.monotonic() + self.interval
        choice = self._decide()
        if choice.threads == self.choice.threads:
            return None
        self.choice = choice
        _apply(choice.threads)
        return choice


    def _decide(self) -> ThreadChoice:
        self._reserved = reserved()
        choice = threads_for(max(1.0, usable_cores() - self._reserved), self._meter.others())
        if self._reserved:
            return ThreadChoice(choice.threads, f"{choice.reason}; {self._reserved} kept for generating text")
        return choice


def _apply(n: int) -> None:
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


def settle(fixed: int | None = None) -> ThreadChoice:
    """Choose and set the thread count on the calling thread, once (for work that is not a
    training loop, such as timing model shapes)."""
    return ThreadGovernor(fixed).start()


@contextlib.contextmanager
def one_core_of_our_own():
    """Compute on this thread with one thread, its core reserved (a trainer in this process
    leaves it alone): for the app's text generation, which may run beside training."""
    with reserve(1):
        _apply(1)
        yield
