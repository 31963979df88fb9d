"""The budget's clock (charlm.train.clock): a stretch without the CPU is left out, a short
hiccup or a busy machine is not."""

from __future__ import annotations

import subprocess
import sys

import pytest

from charlm.train import clock as clock_module
from charlm.train.clock import MIN_STALL, WorkClock, not_counted


@pytest.fixture
def fake_time(monkeypatch):
    """Wall and CPU clocks the test moves by hand."""
    now = {"wall": 100.0, "cpu": 10.0}
    monkeypatch.setattr(clock_module.time, "perf_counter", lambda: now["wall"])
    monkeypatch.setattr(clock_module, "cpu_seconds", lambda: now["cpu"])
    return now


def advance(now, wall: float, cpu: float) -> None:
    now["wall"] += wall
    now["cpu"] += cpu


def test_steps_that_ran_are_counted_whole_even_slowed_or_on_several_threads(fake_time):
    clock = WorkClock()
    for wall, cpu in [(0.1, 0.2), (0.3, 0.05), (0.8, 0.1), (2.0, 1.5)]:   # 2 threads; a hog; I/O; a long step
        advance(fake_time, wall, cpu)
        assert clock.lap() == pytest.approx(wall)
        assert not clock.stalled
    assert clock.not_running == 0 and not_counted(clock.not_running) == ""


def test_a_stretch_without_the_cpu_is_left_out_and_said(fake_time):
    clock = WorkClock()
    advance(fake_time, 20.1, 0.1)             # stopped (Ctrl-Z, SIGSTOP) for 20 s inside a 0.1 s step
    assert clock.lap() == pytest.approx(0.1)
    assert clock.stalled and clock.not_running == pytest.approx(20.0)
    assert not_counted(clock.not_running) == "paused 20 s (not counted)"
    advance(fake_time, 0.1, 0.1)
    assert clock.lap() == pytest.approx(0.1) and not clock.stalled


def test_the_threshold_is_a_second(fake_time):
    clock = WorkClock()
    advance(fake_time, 0.1 + MIN_STALL - 0.01, 0.1)      # just under a second without the CPU: a hiccup
    assert clock.lap() == pytest.approx(0.1 + MIN_STALL - 0.01) and not clock.stalled
    advance(fake_time, 0.1 + MIN_STALL + 0.01, 0.1)      # just over: left out
    assert clock.lap() == pytest.approx(0.1) and clock.stalled


def test_restart_drops_the_time_since_the_last_lap(fake_time):
    clock = WorkClock()
    advance(fake_time, 30.0, 0.0)             # a pause the user asked for: the trainer restarts
    clock.restart()
    advance(fake_time, 0.2, 0.2)
    assert clock.lap() == pytest.approx(0.2) and clock.not_running == 0


def test_waiting_for_a_child_that_works_is_not_a_stop():
    """The first sample compiles the C step while training waits: its CPU time is the child's."""
    clock = WorkClock()
    busy = "import time\nend = time.process_time() + 1.5\nwhile time.process_time() < end: pass"
    subprocess.run([sys.executable, "-c", busy], check=True)
    assert clock.lap() >= 1.5 and not clock.stalled and clock.not_running == 0
