"""Speed of a shape on this machine: timed with the trainer's own step, cached per machine;
precision auto settled by the CPU's flags or by timing."""

from __future__ import annotations

import pytest
import torch

from charlm.config import ModelConfig, TrainConfig
from charlm.errors import UsageError
from charlm.machine import device as D
from charlm.machine import timings as T
from charlm.train import speed as S
from charlm.train.update import TrainStep


def shape(hidden: int = 32, batch: int = 8) -> tuple[ModelConfig, TrainConfig]:
    return ModelConfig(vocab_size=30, layers=1, hidden=hidden, embed=8), TrainConfig(batch_size=batch, seq_len=16)


def test_a_bigger_model_measures_slower_with_the_trainers_step(monkeypatch):
    calls = []
    real = TrainStep.__call__
    monkeypatch.setattr(TrainStep, "__call__", lambda self, *a: calls.append(1) or real(self, *a))
    small = S.measure(*shape(16), "fp32", seconds=0.05)
    big = S.measure(*shape(512, batch=32), "fp32", seconds=0.05)
    assert calls, "the probe must time charlm.train.update.TrainStep, the trainer's own step"
    assert small > big > 0


def neighbours(monkeypatch, cores: float | None) -> None:
    """Other processes seem to keep `cores` busy while anything is timed."""
    monkeypatch.setattr(T.CpuMeter, "others", lambda self: cores)


def test_speed_is_measured_once_then_cached(monkeypatch):
    neighbours(monkeypatch, 0.0)
    m, t = shape()
    first = S.speed(m, t, "fp32")
    monkeypatch.setattr(S, "measure", lambda *a, **k: pytest.fail("measured again"))
    assert S.speed(m, t, "fp32") == round(first)
    assert T.cache_path().exists()


@pytest.mark.parametrize("change", ["cpu model", "cpu flags", "isa torch uses", "torch version", "threads"])
def test_another_machine_measures_again(monkeypatch, change):
    neighbours(monkeypatch, 0.0)
    m, t = shape()
    S.speed(m, t, "fp32")
    assert S.cached(m, t, "fp32") is not None
    if change == "cpu model":
        monkeypatch.setattr(T, "cpu_model", lambda: "Some Other CPU")
    elif change == "cpu flags":
        monkeypatch.setattr(T, "cpu_flags", lambda: frozenset({"sse2"}))
    elif change == "isa torch uses":          # ATEN_CPU_CAPABILITY=avx2 on an AVX-512 CPU (default on an AVX2 one)
        other = "DEFAULT" if torch.backends.cpu.get_cpu_capability() == "AVX2" else "AVX2"
        monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: other)
    elif change == "torch version":
        monkeypatch.setattr(torch, "__version__", "9.9.9")
    else:
        monkeypatch.setattr(torch, "get_num_threads", lambda: 7)
    assert S.cached(m, t, "fp32") is None


def test_a_figure_timed_beside_busy_neighbours_is_used_but_not_kept(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    monkeypatch.setattr(T, "usable_cores", lambda: 2.0)
    m, t = shape()
    neighbours(monkeypatch, 0.8)                # on the cores our two threads ran on
    assert S.speed(m, t, "fp32") > 0
    assert S.cached(m, t, "fp32") is None
    neighbours(monkeypatch, 0.1)                # a quiet machine
    S.speed(m, t, "fp32")
    assert S.cached(m, t, "fp32") is not None


def test_a_neighbour_on_the_core_we_left_free_does_not_spoil_a_figure(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    monkeypatch.setattr(T, "usable_cores", lambda: 2.0)
    neighbours(monkeypatch, 1.0)                # one thread beside a one-core hog: as it will train
    m, t = shape()
    S.speed(m, t, "fp32")
    assert S.cached(m, t, "fp32") is not None


def test_the_cache_key_names_the_shape_batch_and_precision():
    m, t = shape()
    keys = {S.shape_key(m, t, "fp32"), S.shape_key(m, t, "bf16"), S.shape_key(m, TrainConfig(batch_size=9, seq_len=16), "fp32"),
            S.shape_key(ModelConfig(vocab_size=30, layers=2, hidden=32, embed=8), t, "fp32")}
    assert len(keys) == 4


@pytest.mark.parametrize("flags, expected", [
    ({"avx2", "amx_bf16", "avx512_bf16"}, ("bf16",)),      # AMX: bf16 without asking
    ({"avx2", "fma"}, ("fp32",)),                          # bf16 would be emulated: slower
    ({"avx2", "avx512f", "avx512_bf16"}, ("fp32", "bf16")),  # native bf16 dot products, no AMX: time it
])
def test_precision_candidates_follow_the_flags(monkeypatch, flags, expected):
    monkeypatch.setattr(D, "cpu_flags", lambda: frozenset(flags))
    assert D.precision_candidates(torch.device("cpu")) == expected


def test_precision_auto_times_where_the_flags_do_not_settle_it(monkeypatch):
    monkeypatch.setattr(D, "cpu_flags", lambda: frozenset({"avx512_bf16"}))
    rates = {"fp32": 1000.0, "bf16": 1500.0}
    monkeypatch.setattr(S, "speed", lambda m, t, p, cancel=None: rates[p])
    m, t = shape()
    cpu = torch.device("cpu")
    assert S.pick_precision("auto", cpu, m, t) == "bf16"
    rates["bf16"] = 1050.0                      # under the margin: not worth bf16's rounding
    assert S.pick_precision("auto", cpu, m, t) == "fp32"
    assert S.pick_precision("bf16", cpu, m, t) == "bf16"        # asked for: no timing
    assert S.pick_precision("auto", cpu) == "fp32"              # nothing to time: the safe one


def test_a_precision_that_cannot_run_here_is_skipped(monkeypatch):
    def speed(m, t, p, cancel=None):
        if p == "bf16":
            raise RuntimeError("could not create a primitive descriptor for the LSTM forward propagation primitive")
        return 1000.0
    monkeypatch.setattr(S, "speed", speed)
    assert S.fastest_precision(*shape(), ("fp32", "bf16")) == "fp32"


def test_a_real_run_is_recorded_beside_the_timing():
    m, t = shape()
    assert S.run_speed(m, t, "fp32") is None
    S.record_run(m, t, "fp32", 12345.6)
    assert S.run_speed(m, t, "fp32") == 12346


@pytest.mark.parametrize("cuda, mps, expected", [(True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")])
def test_device_auto_prefers_cuda_then_mps_then_the_cpu(monkeypatch, cuda, mps, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(D, "mps_available", lambda: mps)
    assert D.pick_device("auto").type == expected


def test_a_device_that_is_not_here_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(D, "mps_available", lambda: False)
    for name in ("cuda", "mps"):
        with pytest.raises(UsageError, match=f"--device {name} was asked for"):
            D.pick_device(name)
    assert D.precision_candidates(torch.device("mps")) == ("fp32",)
