"""Training speed of a model shape on this machine: timed with the trainer's own step, cached.

`charlm train` with `--preset auto` and the app's model picker both need chars/s for shapes
that have never trained here. They are timed with `TrainStep` itself (the model, optimizer,
clipping, precision and allocator setting of a real run) on random ids of the run's own batch
shape, for a few steps. (Shorter chunks would time faster but not truly: the optimizer's update
costs the same per step whatever the chunk, and a 16-character chunk measured a 2x256 at 0.8x
its speed at 64.) What real runs reach is recorded beside it, for display and for auto.
Figures live in the machine's timing cache (charlm.machine.timings), under "timed" and "runs".
Also here: the training precision a run gets, where the hardware leaves it open.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import torch

from charlm.cancel import Cancelled
from charlm.config import ModelConfig, TrainConfig
from charlm.machine import timings
from charlm.machine.allocator import keep_freed_memory
from charlm.machine.device import pick_device, precision_candidates, seed_all, synchronize
from charlm.model.network import CharRNN
from charlm import paths
from charlm.train.footprint import check_fits
from charlm.train.optim import build_optimizer
from charlm.train.update import TrainStep

PROBE_SECONDS = 0.5          # timed steps per shape and precision, after the warm-up ones
PROBE_MIN_STEPS = 2
PROBE_MAX_STEPS = 12
WARMUP_STEPS = 2             # a new model's first steps page in its buffers: never timed
BF16_MARGIN = 1.1


def shape_key(m: ModelConfig, t: TrainConfig, precision: str) -> str:
    return (f"{m.cell}:{m.layers}x{m.hidden}:e{m.embed}:v{m.vocab_size}:d{m.dropout:g}:"
            f"b{t.batch_size}x{t.seq_len}:{precision}")


def cached(m: ModelConfig, t: TrainConfig, precision: str, machine: str | None = None) -> float | None:
    """chars/s timed for this shape on this machine, if it has been."""
    return timings.recall_rate("timed", shape_key(m, t, precision), machine)


def speed(m: ModelConfig, t: TrainConfig, precision: str, cancel: threading.Event | None = None) -> float:
    """chars/s of this shape here, on t.device: from the cache, else timed now (and cached if
    timed quietly)."""
    machine = timings.machine_key(pick_device(t.device))
    value = cached(m, t, precision, machine)
    if value is None:
        value, quiet = timings.timed_quietly(lambda: measure(m, t, precision, cancel))
        if quiet:
            timings.remember("timed", shape_key(m, t, precision), round(value), machine)
    return value


def record_run(m: ModelConfig, t: TrainConfig, precision: str, chars_per_sec: float) -> None:
    """Remember what a real run of this shape did (shown beside the timed figure)."""
    if chars_per_sec > 0:
        timings.remember("runs", shape_key(m, t, precision), round(chars_per_sec))


def run_speed(m: ModelConfig, t: TrainConfig, precision: str) -> float | None:
    return timings.recall_rate("runs", shape_key(m, t, precision))


def measure(m: ModelConfig, t: TrainConfig, precision: str, cancel: threading.Event | None = None,
            seconds: float = PROBE_SECONDS) -> float:
    """Time the trainer's step on this shape (random ids): chars/s of the fastest timed step,
    since on a shared machine the slower ones measure the neighbours."""
    keep_freed_memory()
    device = pick_device(t.device)
    check_fits(m, t, device)              # a shape that cannot fit is an error, not an allocation
    seed_all(0)
    model = CharRNN(replace(m, vocab_size=max(m.vocab_size, 2))).to(device)
    step = TrainStep(model, build_optimizer(model, t), device, precision, t.grad_clip)
    seq = t.seq_len
    x = torch.randint(1, model.config.vocab_size, (t.batch_size, seq + 1))
    hidden, best, timed_from = None, float("inf"), None
    for i in range(WARMUP_STEPS + PROBE_MAX_STEPS):
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        t0 = time.perf_counter()
        _, hidden = step(x[:, :-1], x[:, 1:], hidden, 1e-3)
        synchronize(device)
        now = time.perf_counter()
        if i >= WARMUP_STEPS:
            best = min(best, now - t0)
            timed_from = timed_from or t0
            if now - timed_from >= seconds and i + 1 >= WARMUP_STEPS + PROBE_MIN_STEPS:
                break
    return t.batch_size * seq / best


def fastest_precision(m: ModelConfig, t: TrainConfig, candidates: tuple[str, ...],
                      cancel: threading.Event | None = None) -> str:
    """The candidate precision that trains this shape fastest here (timed once, then cached).
    bf16 must win by BF16_MARGIN to be chosen: its rounding is only worth a real gain. One that
    cannot run at all here (a oneDNN kernel missing for this CPU) is skipped."""
    rates = {}
    for precision in candidates:
        try:
            rates[precision] = speed(m, t, precision, cancel)
        except RuntimeError:
            continue
    if not rates:
        return candidates[0]
    if "bf16" in rates and "fp32" in rates and rates["bf16"] < BF16_MARGIN * rates["fp32"]:
        return "fp32"
    return max(rates, key=rates.get)


def pick_precision(name: str, device: torch.device, model_config=None, train_config=None) -> str:
    """`name` unless it is "auto"; then what the hardware settles, or else the faster of fp32
    and bf16 for this model shape, timed (and cached) here. Without a shape to time, an
    unsettled CPU gets fp32."""
    if name != "auto":
        return name
    candidates = precision_candidates(device)
    if len(candidates) == 1 or model_config is None or train_config is None:
        return candidates[0]
    return fastest_precision(model_config, train_config, candidates)


def training_device(m: ModelConfig, t: TrainConfig, cancel: threading.Event | None = None) -> torch.device:
    """Where this shape trains: t.device unless "auto"; then the accelerator (CUDA, else MPS)
    only where it trains this shape faster than the CPU, both timed like auto's shapes (and
    cached per machine and device): a small LSTM can train faster on a laptop's cores than on
    its GPU. An accelerator that cannot run the model (an operation its backend lacks) is passed
    over with one note."""
    if t.device != "auto":
        return pick_device(t.device)
    accelerator, cpu = pick_device("auto"), torch.device("cpu")
    if accelerator.type == "cpu":
        return cpu
    rates = {}
    for device in (accelerator, cpu):
        on = replace(t, device=device.type)
        try:
            rates[device.type] = speed(m, on, pick_precision(t.precision, device, m, on), cancel)
        except (RuntimeError, NotImplementedError) as e:   # what torch raises for an op a backend lacks
            if device.type == "cpu":
                raise
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            paths.say_note(f"{device.type} cannot train this model ({first}): training on the CPU")
    if accelerator.type not in rates:
        return cpu
    return accelerator if rates[accelerator.type] >= rates["cpu"] else cpu
