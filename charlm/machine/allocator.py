"""Keep freed memory in the process, so training does not page-fault its way through every step.

A training step allocates and frees the same large activation buffers (tens of MB each) over and
over. With glibc's defaults every buffer over 32 MB is a fresh mmap, and every free shrinks the
heap, so each step the kernel zero-fills the same pages again: on a 2-core machine a third of the
time went to system time and training ran ~1.5x slower (see `python -m bench.train_speed`).
Raising the mmap and trim thresholds keeps those pages mapped; the price is a resident size that
stays at its peak (about 1 GB for the default model instead of 0.7 GB).

Threads matter too: glibc gives each new thread its own arena, made of 64 MB heaps that cannot
hold such buffers, so they fall back to mmap whatever the threshold (the TUI, which trains on a
worker thread, ran at 0.6x of headless). One arena for the whole process avoids that, for
threads started after this call: the app calls it first thing; the Trainer calls it too, which
is early enough for the CLI and for library users training on their main thread.
"""

from __future__ import annotations

import ctypes
import sys

_M_TRIM_THRESHOLD = -1       # mallopt parameters, from glibc's <malloc.h>
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
MMAP_THRESHOLD = 1 << 30     # blocks below 1 GiB come from the heap and are reused
TRIM_THRESHOLD = 2**31 - 1   # the largest value mallopt's int takes: never give the top back early

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Tune glibc's malloc for training (once per process). False where there is no glibc."""
    global _applied
    if _applied is None:
        _applied = (_mallopt(_M_ARENA_MAX, 1) and _mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                    and _mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _applied


def give_back_freed_memory() -> bool:
    """Hand the freed memory kept for training back to the system (glibc's malloc_trim), for
    when a run has ended, or (the app) while none trains: those buffers are not needed again
    soon, and the app would otherwise stay at its peak for as long as it is open. False where
    there is no glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return False
    trim.argtypes, trim.restype = (ctypes.c_size_t,), ctypes.c_int
    trim(0)
    return True


def _mallopt(param: int, value: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt     # glibc only: musl and others have no mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return mallopt(param, value) == 1
