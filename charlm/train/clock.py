"""The budget's clock: wall-clock seconds spent training, without the stretches when the
process was not running.

A `--minutes` budget is wall clock (validations and saves count, as they are part of a run), but
a process stopped by Ctrl-Z or SIGSTOP and continued later, a laptop lid closed, or a process
starved of the CPU for seconds on end, did no work meanwhile, and a person who freed the machine
for a moment expects that time back. Such a stretch shows as wall time with no CPU time: each
lap (one training step, one validation) compares the two, and wall time beyond the process's
CPU time counts as "not running" when it reaches `MIN_STALL`.

Why CPU time and a threshold (measured on a 2-core Xeon, issue 20): ordinary steps of a 2x128
and a 2x512 model showed at most 0.09 s of wall time above CPU time, 0.26 s beside two CPU hogs;
a step during which the process was stopped for 5 s showed 5.07 s. CPU time is summed over the
process's threads, so with k busy threads a stop is under-counted by at most (k-1) times one
step's running time: a fraction of a second, charged, never the other way round. Time spent
waiting without the CPU for longer than MIN_STALL in one lap (a disk that takes seconds to
write a checkpoint) is left out too: it is not training either. Time spent waiting for a child
process (the compiler building the C step at the first sample) is the child's CPU time: not a stop.
"""

from __future__ import annotations

import os
import time

MIN_STALL = 1.0     # seconds without running in one lap before they are left out of the budget


def not_counted(seconds: float) -> str:
    """"paused 20 s (not counted)" for the seconds a clock left out, "" for none."""
    return f"paused {seconds:.0f} s (not counted)" if seconds >= MIN_STALL else ""


def cpu_seconds() -> float:
    """CPU seconds of this process and of the children it has waited for. Ctrl-Z stops the
    children too, so theirs never hides a stop."""
    times = os.times()
    return time.process_time() + times.children_user + times.children_system


class WorkClock:
    """Seconds worked between laps, and how many were left out as not running."""

    def __init__(self) -> None:
        self.not_running = 0.0          # seconds left out since this clock started
        self.restart()

    def restart(self) -> None:
        """Start the next lap now, discarding the time since the last (a pause the user asked
        for is counted, or rather not counted, by the trainer itself)."""
        self._wall, self._cpu = time.perf_counter(), cpu_seconds()

    def lap(self) -> float:
        """Seconds of work since the last lap (or restart), and start the next lap."""
        wall, cpu = time.perf_counter(), cpu_seconds()
        seconds = wall - self._wall
        stalled = seconds - (cpu - self._cpu)
        self._wall, self._cpu = wall, cpu
        if stalled >= MIN_STALL:
            self.not_running += stalled
            self.stalled = True
            return seconds - stalled
        self.stalled = False
        return seconds

    stalled = False                     # whether the last lap left time out
