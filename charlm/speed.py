"""Training speed of a model shape on this machine: timed with the trainer's own step, cached.

`charlm train` with `--preset auto` and the app's model picker both need chars/s for shapes
that have never trained here. They are timed with `TrainStep` itself (the model, optimizer,
clipping, precision and allocator setting of a real run) on random ids of the run's own batch
shape, for a few steps. (Shorter chunks would time faster but not truly: the optimizer's update
costs the same per step whatever the chunk, and a 16-character chunk measured a 2x256 at 0.8x
its speed at 64.) What real runs reach is recorded beside it, for display.

Figures are kept in $CHARLM_CACHE/speeds.json under a key naming the machine (CPU model and
instruction-set flags, thread count, torch version, device), so a different CPU, a new torch,
or another thread count measures again. A figure taken while other processes used the cores
our threads ran on is used for the run at hand but not kept: it measured the neighbours too.
"""

from __future__ import annotations

import hashlib
import os
import platform
import threading
import time
from dataclasses import replace
from pathlib import Path

import torch

from charlm.allocator import keep_freed_memory
from charlm.config import ModelConfig, TrainConfig
from charlm.device import cpu_flags, pick_device, synchronize
from charlm.footprint import check_fits
from charlm.model import CharRNN
from charlm.optim import build_optimizer
from charlm.paths import cache_root, read_json_dict, write_json_atomic
from charlm.step import TrainStep
from charlm.threads import CpuMeter, usable_cores

# Bumped when charlm's own training speed changes, so figures an older version cached are
# measured again (2: the allocator setting; 3: timed with the trainer's step, chunks of 16).
SPEED_REVISION = 3
PROBE_SECONDS = 0.5          # timed steps per shape and precision, after the warm-up ones
PROBE_MIN_STEPS = 2
PROBE_MAX_STEPS = 12
WARMUP_STEPS = 2             # a new model's first steps page in its buffers: never timed
BF16_MARGIN = 1.1
# Other processes may use this much of the cores our threads run on while a figure is timed
# and it is still kept: more than that and the figure measured them too.
NEIGHBOURS_TOLERATED = 0.25


class Cancelled(Exception):
    """Timing gave way (a run started: timing now would measure the two competing)."""


def cache_path() -> Path:
    return cache_root() / "speeds.json"


def machine_key(device: torch.device | None = None, threads: int | None = None) -> str:
    """What a speed figure is only true for: CPU model and flags, threads, torch, device."""
    device = device or pick_device("auto")
    threads = threads or torch.get_num_threads()
    if device.type == "cuda":
        hw = torch.cuda.get_device_name(device)
    elif device.type == "mps":
        hw = f"Apple MPS on {cpu_model()}"
    else:   # the CPU's flags, and the instruction sets torch and oneDNN were told to use of them
        flags = hashlib.sha256(" ".join(sorted(cpu_flags())).encode()).hexdigest()[:12]
        isa = "/".join(filter(None, (torch.backends.cpu.get_cpu_capability(), os.environ.get("ONEDNN_MAX_CPU_ISA"))))
        hw = f"{cpu_model()} flags:{flags} isa:{isa}"
    return f"{hw} · {device.type} · {threads}t · torch {torch.__version__} · r{SPEED_REVISION}"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def shape_key(m: ModelConfig, t: TrainConfig, precision: str) -> str:
    return (f"{m.cell}:{m.layers}x{m.hidden}:e{m.embed}:v{m.vocab_size}:d{m.dropout:g}:"
            f"b{t.batch_size}x{t.seq_len}:{precision}")


def _load_all() -> dict:
    return read_json_dict(cache_path())


def _entry(machine: str) -> dict:
    entry = _load_all().get(machine, {})
    return entry if isinstance(entry, dict) else {}


_write_lock = threading.Lock()


def _update(machine: str, kind: str, key: str, value) -> None:
    with _write_lock:
        data = _load_all()
        data.setdefault(machine, {}).setdefault(kind, {})[key] = value
        write_json_atomic(cache_path(), data)


def cached(m: ModelConfig, t: TrainConfig, precision: str, machine: str | None = None) -> float | None:
    """chars/s timed for this shape on this machine, if it has been."""
    value = _entry(machine or machine_key()).get("timed", {}).get(shape_key(m, t, precision))
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


def speed(m: ModelConfig, t: TrainConfig, precision: str, cancel: threading.Event | None = None) -> float:
    """chars/s of this shape here: from the cache, else timed now (and cached if timed quietly)."""
    machine = machine_key()
    value = cached(m, t, precision, machine)
    if value is None:
        value, quiet = timed_quietly(lambda: measure(m, t, precision, cancel))
        if quiet:
            _update(machine, "timed", shape_key(m, t, precision), round(value))
    return value


def timed_quietly(timing):
    """(timing(), whether other processes left our threads' cores alone while it ran)."""
    meter = CpuMeter()
    value = timing()
    others = meter.others()
    spare = max(0.0, usable_cores() - torch.get_num_threads())
    return value, others is None or others <= spare + NEIGHBOURS_TOLERATED


def remember(kind: str, key: str, value) -> None:
    """Keep any measurement of this machine (e.g. the sampler's step rates) under `kind`."""
    _update(machine_key(), kind, key, value)


def recall(kind: str, key: str):
    return _entry(machine_key()).get(kind, {}).get(key)


def record_run(m: ModelConfig, t: TrainConfig, precision: str, chars_per_sec: float) -> None:
    """Remember what a real run of this shape did (shown beside the timed figure)."""
    if chars_per_sec > 0:
        _update(machine_key(), "runs", shape_key(m, t, precision), round(chars_per_sec))


def run_speed(m: ModelConfig, t: TrainConfig, precision: str) -> float | None:
    value = _entry(machine_key()).get("runs", {}).get(shape_key(m, t, precision))
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


def measure(m: ModelConfig, t: TrainConfig, precision: str, cancel: threading.Event | None = None,
            seconds: float = PROBE_SECONDS) -> float:
    """Time the trainer's step on this shape (random ids): chars/s of the fastest timed step,
    since on a shared machine the slower ones measure the neighbours."""
    keep_freed_memory()
    device = pick_device(t.device)
    check_fits(m, t, device)              # a shape that cannot fit is an error, not an allocation
    torch.manual_seed(0)
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
