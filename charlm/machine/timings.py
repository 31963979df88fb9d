"""A small cache of what was timed on this machine, for training and generation alike.

Figures are kept in $CHARLM_CACHE/speeds.json under a key naming the machine (CPU model and
instruction-set flags, thread count, torch version, device), so a different CPU, a new torch,
or another thread count measures again; within a machine, under a kind ("timed", "runs",
"sampling") and a key the caller chooses. A figure taken while other processes used the cores
our threads ran on is for the moment only (`timed_quietly` says which): it measured the
neighbours too.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import torch

from charlm.machine.cpu import cpu_flags, cpu_model
from charlm.machine.device import pick_device
from charlm.machine.threads import CpuMeter, usable_cores
from charlm.paths import cache_root, read_json_dict, write_cache_json

# Bumped when charlm's own speed changes, so figures an older version cached are measured
# again (2: the allocator setting; 3: timed with the trainer's step, chunks of 16).
REVISION = 3
# Other processes may use this much of the cores our threads run on while a figure is timed
# and it is still kept: more than that and the figure measured them too.
NEIGHBOURS_TOLERATED = 0.25


def cache_path() -> Path:
    return cache_root() / "speeds.json"


def machine_key(device: torch.device | None = None, threads: int | None = None) -> str:
    """What a figure is only true for: CPU model and flags, threads, torch, device."""
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
    return f"{hw} · {device.type} · {threads}t · torch {torch.__version__} · r{REVISION}"


def timed_quietly(timing):
    """(timing(), whether other processes left our threads' cores alone while it ran)."""
    meter = CpuMeter()
    value = timing()
    others = meter.others()
    spare = max(0.0, usable_cores() - torch.get_num_threads())
    return value, others is None or others <= spare + NEIGHBOURS_TOLERATED


def remember(kind: str, key: str, value, machine: str | None = None) -> None:
    """Keep a measurement of this machine under `kind`."""
    with _write_lock:
        data = read_json_dict(cache_path())
        data.setdefault(machine or machine_key(), {}).setdefault(kind, {})[key] = value
        write_cache_json(cache_path(), data)


def recall(kind: str, key: str, machine: str | None = None):
    """What was kept under `kind` and `key` for this machine, or None."""
    entry = read_json_dict(cache_path()).get(machine or machine_key(), {})
    found = entry.get(kind, {}) if isinstance(entry, dict) else {}
    return found.get(key) if isinstance(found, dict) else None


def recall_rate(kind: str, key: str, machine: str | None = None) -> float | None:
    """A positive figure kept under `kind` and `key`, or None."""
    value = recall(kind, key, machine)
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


_write_lock = threading.Lock()
