"""One line describing the machine a benchmark ran on."""

from __future__ import annotations

import os
import platform

import torch

from charlm.device import cpu_has_native_bf16


def describe() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    # What torch's kernels use, which ATEN_CPU_CAPABILITY can hold below what the CPU has.
    kernels = torch.backends.cpu.get_cpu_capability()
    return (f"{cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, {kernels} kernels, "
            f"native bf16: {'yes' if cpu_has_native_bf16() else 'no'}, {gpu}; "
            f"torch {torch.__version__}, Python {platform.python_version()}")
