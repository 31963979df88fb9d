"""One line describing the machine a benchmark ran on."""

from __future__ import annotations

import os
import platform
import time

import torch

from charlm.machine.cpu import cpu_has_native_bf16, cpu_model
from charlm.machine.threads import busy_cpu_seconds


def describe() -> str:
    cpu = cpu_model()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    # What torch's kernels use, which ATEN_CPU_CAPABILITY can hold below what the CPU has.
    kernels = torch.backends.cpu.get_cpu_capability()
    return (f"{cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, {kernels} kernels, "
            f"native bf16: {'yes' if cpu_has_native_bf16() else 'no'}, {gpu}; "
            f"torch {torch.__version__}, Python {platform.python_version()}")


def rss_mb() -> float:
    """This process's resident size in MB (Linux; nan elsewhere)."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return float("nan")


class RoundLoad:
    """What one benchmark round cost: the CPU seconds of the children it ran and waited for,
    and the cores everything else on the machine kept busy meanwhile (hypervisor steal
    included). A round that ran beside other load is not a fair comparison; this says so."""

    def __enter__(self) -> "RoundLoad":
        self._start = self._read()
        return self

    def __exit__(self, *exc) -> None:
        wall, busy, children = (b - a if a is not None and b is not None else None
                                for a, b in zip(self._start, self._read()))
        self.wall = wall
        self.child_cpu = children
        self.others = None if busy is None else max(0.0, (busy - children) / wall)

    @staticmethod
    def _read() -> tuple[float, float | None, float]:
        t = os.times()
        return time.monotonic(), busy_cpu_seconds(), t.children_user + t.children_system

    def __str__(self) -> str:
        others = "unknown" if self.others is None else f"{self.others:.2f} cores"
        return f"its CPU {self.child_cpu:.0f} s, other load {others}"
