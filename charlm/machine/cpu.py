"""What this CPU is: its model name and instruction-set flags, read from /proc/cpuinfo once."""

from __future__ import annotations

import functools
import platform


@functools.cache
def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo ({} where there is none: macOS, Windows)."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break                   # the first processor is enough: they are alike
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields


def cpu_model() -> str:
    return _cpuinfo().get("model name") or platform.processor() or platform.machine()


def cpu_flags() -> frozenset[str]:
    """The instruction-set flags of this CPU (empty where /proc/cpuinfo is not there): x86's
    "flags" line, or ARM's "Features" (asimd, asimddp for the dot product, ...)."""
    info = _cpuinfo()
    return frozenset((info.get("flags") or info.get("Features") or "").split())


def cpu_has_native_bf16() -> bool:
    """AMX or AVX512-BF16: the CPU computes bf16 dot products itself."""
    return bool({"amx_bf16", "avx512_bf16"} & cpu_flags())
