"""Thread count from the free cores: the rule, the meter against a real busy process, and the
governor applying it on the computing thread."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest
import torch

from charlm.machine import threads as T
from charlm.machine.threads import CpuMeter, ThreadGovernor, threads_for


@pytest.mark.parametrize("usable, others, expected", [
    (2, 0.0, 2), (2, 0.1, 2), (2, 0.25, 2),   # a light background: both cores
    (2, 0.4, 2), (2, 0.55, 1),                # a passing load is shared; over half a core is not
    (2, 0.67, 1), (2, 1.0, 1),                # a process on one core (0.67: its share beside us)
    (2, 1.9, 1), (2, 3.0, 1),                 # never fewer than one
    (8, 2.0, 6), (8, 0.0, 8), (1, 0.0, 1),
    (2, None, 2),                             # no /proc/stat: all cores
])
def test_one_thread_per_free_core(usable, others, expected):
    assert threads_for(usable, others).threads == expected


def test_the_reason_names_the_load():
    assert "1.0 of 2 cores busy" in threads_for(2, 1.0).reason
    assert "free" in threads_for(2, 0.0).reason


def test_the_meter_sees_another_process_keep_a_core_busy():
    meter = CpuMeter()
    if meter.others() is None:
        pytest.skip("no /proc/stat here")
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        meter.others()
        time.sleep(1.0)
        busy = meter.others()
    finally:
        hog.kill()
        hog.wait()
    assert busy >= 0.6          # a core, or its fair share of one when the machine is full


def test_our_own_cpu_time_is_subtracted(monkeypatch):
    readings = iter([(0.0, 10.0, 1.0), (2.0, 13.0, 2.8), (4.0, 13.5, 3.3)])   # (wall, all busy, ours)
    monkeypatch.setattr(CpuMeter, "_read", lambda self: next(readings))
    meter = CpuMeter()
    assert meter.others() == pytest.approx((3.0 - 1.8) / 2.0)
    assert meter.others() == pytest.approx(0.0)


def test_omp_num_threads_is_respected(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    governor = ThreadGovernor()
    assert governor.start().threads == 1 and "as asked" in governor.choice.reason
    assert governor.tick() is None


def test_the_governor_sets_torch_threads_on_the_calling_thread_and_follows_the_load(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(T, "FIRST_LOOK_SECONDS", 0.0)
    monkeypatch.setattr(T, "usable_cores", lambda: 2.0)
    load = {"others": 1.0}
    monkeypatch.setattr(CpuMeter, "others", lambda self: load["others"])
    seen = []

    def train():
        governor = ThreadGovernor(interval=0.0)
        seen.append((governor.start().threads, torch.get_num_threads()))
        load["others"] = 0.0
        change = governor.tick()
        seen.append((change.threads, torch.get_num_threads()))
        seen.append(governor.tick())                       # nothing changed: nothing to say

    worker = threading.Thread(target=train)
    worker.start()
    worker.join()
    assert seen == [(1, 1), (2, 2), None]


def test_a_reserved_core_is_left_to_our_own_other_thread_at_once(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(T, "FIRST_LOOK_SECONDS", 0.0)
    monkeypatch.setattr(T, "usable_cores", lambda: 2.0)
    monkeypatch.setattr(CpuMeter, "others", lambda self: 0.0)
    seen = []

    def train():
        governor = ThreadGovernor(interval=3600.0)            # no timed look: only the reservation
        seen.append(governor.start().threads)
        with T.reserve(1):
            change = governor.tick()
            seen.append((change.threads, "kept for generating text" in change.reason))
        seen.append(governor.tick().threads)

    worker = threading.Thread(target=train)
    worker.start()
    worker.join()
    assert seen == [2, (1, True), 2]
    assert T.reserved() == 0


def test_watching_early_spares_start_its_first_look(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(T, "FIRST_LOOK_SECONDS", 0.3)
    governor = ThreadGovernor().watch()
    time.sleep(0.3)                       # the work in between (a model loading)
    t0 = time.monotonic()
    before = torch.get_num_threads()
    try:
        governor.start()
    finally:
        torch.set_num_threads(before)
    assert time.monotonic() - t0 < 0.1
    t0 = time.monotonic()
    try:
        ThreadGovernor().start()           # not watched: it looks for FIRST_LOOK_SECONDS
    finally:
        torch.set_num_threads(before)
    assert time.monotonic() - t0 >= 0.29


@pytest.mark.parametrize("command", ["sample", "eval"])
def test_sample_and_eval_compute_on_the_free_cores(command, trained_run, monkeypatch, capsys):
    from charlm.cli.main import main
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(T, "usable_cores", lambda: 2.0)
    monkeypatch.setattr(CpuMeter, "others", lambda self: 1.0)      # another process keeps a core busy
    extra = ["--length", "20", "--seed", "1"] if command == "sample" else [str(trained_run.corpus)]
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert main([command, str(trained_run.run_dir), *extra]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
