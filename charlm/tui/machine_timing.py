"""Timing this machine for the model panel, free of widgets: auto's choice for a corpus and a
budget, and a preset's speed, each in a thread worker of the panel (group "measure"), never
while a run trains (it would measure the two competing) and cancelled as one starts."""

from __future__ import annotations

import threading
from collections.abc import Callable

from textual.timer import Timer
from textual.widget import Widget
from textual.worker import Worker

from charlm.cancel import Cancelled
from charlm.config import ModelConfig, TrainConfig
from charlm.machine.device import pick_device, precision_candidates
from charlm.train import speed
from charlm.train.autosize import AutoChoice, plan

GROUP = "measure"


class MachineTiming:
    def __init__(self, owner: Widget, busy: Callable[[], bool]) -> None:
        self.owner, self.busy = owner, busy          # busy(): a run is training
        self._cancel = threading.Event()
        self._timer: Timer | None = None
        self.choosing: Worker | None = None    # auto's choice for the current corpus, shape and budget

    def later(self, delay: float, callback: Callable[[], None]) -> None:
        """`callback` after `delay` seconds of nothing new (a newer call replaces it), unless
        a run is training by then."""
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.owner.set_timer(delay, lambda: None if self.busy() else callback())

    def choose(self, train_chars: int, vocab_size: int, budget: TrainConfig, fixed: dict, difficulty: float) -> None:
        """auto's choice, timed on this machine; the owner hears of it as the worker succeeds."""
        cancel = self._fresh()
        self.choosing = self.owner.run_worker(lambda: _choose(train_chars, vocab_size, budget, fixed, difficulty, cancel),
                                              thread=True, exclusive=True, exit_on_error=False, group=GROUP)

    def time(self, m: ModelConfig, t: TrainConfig) -> None:
        """This shape's speed here, in each precision it could train in (kept in the cache)."""
        cancel = self._fresh()
        self.owner.run_worker(lambda: _time(m, t, cancel), thread=True, exclusive=True, exit_on_error=False, group=GROUP)

    def cancel(self) -> None:
        self._cancel.set()
        if self._timer is not None:
            self._timer.stop()

    def _fresh(self) -> threading.Event:
        self.cancel()
        self._cancel = threading.Event()
        return self._cancel


def _choose(train_chars: int, vocab_size: int, budget: TrainConfig, fixed: dict, difficulty: float,
            cancel: threading.Event) -> AutoChoice | None:
    try:
        return plan(train_chars, vocab_size, budget, fixed, cancel=cancel, difficulty=difficulty)
    except Cancelled:
        return None


def _time(m: ModelConfig, t: TrainConfig, cancel: threading.Event) -> None:
    try:
        for precision in precisions(t):
            speed.speed(m, t, precision, cancel)
    except Cancelled:
        pass        # the run's own measured speed will be recorded instead


def precisions(t: TrainConfig) -> tuple[str, ...]:
    return (t.precision,) if t.precision != "auto" else precision_candidates(pick_device(t.device))


def timed_speed(m: ModelConfig, t: TrainConfig) -> float | None:
    """The best chars/s timed (or reached by a run) for this shape here, in any precision."""
    found = [v for p in precisions(t) for v in (speed.cached(m, t, p), speed.run_speed(m, t, p)) if v]
    return max(found) if found else None
