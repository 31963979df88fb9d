"""Choosing where and in what precision to compute."""

from __future__ import annotations

import contextlib
import os

import torch

from charlm.errors import UsageError
from charlm.machine.cpu import cpu_flags


def pick_device(name: str = "auto") -> torch.device:
    """`auto`: an NVIDIA GPU (CUDA), else Apple's GPU (MPS), else the CPU. Checkpoints are saved
    from the CPU and loaded onto any of them, so a run moves freely between the three."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if mps_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda was asked for but no CUDA GPU is available", "use --device cpu or auto")
    if name == "mps" and not mps_available():
        raise UsageError("--device mps was asked for but Apple's GPU (MPS) is not available here",
                         "use --device cpu or auto")
    return torch.device(name)


def accelerator_present() -> bool:
    """Whether torch sees any accelerator (torch 2.6+ asks for CUDA, MPS, XPU and MTIA alike)."""
    accelerator = getattr(torch, "accelerator", None)
    if accelerator is not None:
        return accelerator.is_available()
    return torch.cuda.is_available() or mps_available()


def seed_all(seed: int) -> None:
    """torch.manual_seed, without its cost where no accelerator is present: there it formats the
    whole Python stack three times per call (for CUDA, XPU and MTIA, to seed them once they
    start), which reads the source of every frame's file into linecache for good."""
    if accelerator_present():
        torch.manual_seed(seed)
    else:
        torch.random.default_generator.manual_seed(seed)


def mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def synchronize(device: torch.device) -> None:
    """Wait for the GPU's queued work (timing it honestly); nothing to wait for on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def precision_candidates(device: torch.device) -> tuple[str, ...]:
    """The precisions worth timing here: one where the hardware settles it, both where not.

    AMX runs bf16 matmuls ~5x faster than fp32, and a CPU without native bf16 emulates it,
    slower than fp32. AVX512-BF16 without AMX is in between (1.8x faster for a 2x512 LSTM on
    a Zen 5 EPYC; the oneDNN kernels differ by shape), so it is measured."""
    if device.type == "cuda":
        return ("bf16",) if torch.cuda.is_bf16_supported() else ("fp32",)
    if device.type == "mps":
        return ("fp32",)          # MPS's bf16 autocast covers too few of the LSTM's kernels to gain
    flags = cpu_flags()
    if "amx_bf16" in flags:
        return ("bf16",)
    return ("fp32", "bf16") if "avx512_bf16" in flags else ("fp32",)


def autocast(device: torch.device, precision: str):
    """bf16 autocast: weights and optimizer state stay fp32, matmuls run in bf16."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@contextlib.contextmanager
def deterministic_compute(device: torch.device):
    """For the duration, every kernel gives the same bits on the same inputs (`--deterministic`):
    torch refuses nondeterministic kernels (CUDA's atomic-add reductions) instead of running
    them, cuDNN keeps to its deterministic algorithms and picks none by timing, and cuBLAS gets
    the fixed workspace its deterministic mode needs (read when it first starts). The thread
    count, which changes how CPU kernels split their sums, is the trainer's to fix."""
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic,
              torch.backends.cudnn.benchmark)
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[1:]
