"""Builds the C step (step.c) for this machine on first use, and loads it with ctypes.

Nothing to install: the system's C compiler (`$CC`, else cc, gcc or clang) compiles one small
file in under a second, for this CPU (-march=native; -mcpu=native on ARM), into charlm's cache,
under a key naming the source, the compiler and the CPU, so a new CPU or a changed kernel builds
again. Where there is no compiler, the build fails, the cache cannot be written, or
CHARLM_NATIVE=0, `library()` is None and generation runs on PyTorch's own kernels
(charlm.generate.engine), the same API, just slower; `problem()` says why.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from charlm.machine.cpu import cpu_flags
from charlm.paths import cache_root, keep_cached

SOURCE = Path(__file__).with_name("step.c")


def platform_flag_sets(system: str, machine: str) -> tuple[tuple[str, ...], ...]:
    """The flag sets to try on this OS and CPU, in order: the first set the compiler takes wins.
    OpenMP where the compiler has it (the products split over threads), for this CPU; the last,
    plain -O3, always builds."""
    if machine.lower() in ("arm64", "aarch64"):
        # GCC and clang on ARM take -mcpu=native (the CPU's features, dotprod among them, and its
        # tuning); older Apple clang does not, and every Apple chip has all of apple-m1's.
        arch = (("-mcpu=native",), ("-mcpu=apple-m1",)) if system == "Darwin" else (("-mcpu=native",),)
    else:
        arch = (("-march=native",), ("-mcpu=native",))
    # macOS: one thread. Apple's clang has no -fopenmp, and another compiler's runtime would be a
    # second one beside PyTorch's libomp, which openmp_runtimes() cannot see there (no /proc).
    omps = ((),) if system == "Darwin" else (("-fopenmp",), ())
    return tuple((*omp, "-O3", *a) for a in (*arch, ()) for omp in omps)


FLAG_SETS = platform_flag_sets(platform.system(), platform.machine())
COMMON_FLAGS = ("-std=c11", "-shared", "-fPIC", "-fno-math-errno", "-fno-trapping-math")
ENV_SWITCH = "CHARLM_NATIVE"      # 0: never build or load it
ENV_ARCH = "CHARLM_NATIVE_ARCH"   # a -march value to build for instead of this CPU (x86-64-v3: AVX2)

_lock = threading.Lock()
_loaded: dict[str, object] = {}     # "lib" -> the CDLL or None, "problem" -> why not


def library() -> ctypes.CDLL | None:
    """The loaded C step, built first if need be; None where it cannot be had (see problem())."""
    if os.environ.get(ENV_SWITCH, "1") == "0":
        return None
    if "lib" in _loaded:              # the sampler asks at every character: no lock once loaded
        return _loaded["lib"]
    with _lock:
        if "lib" not in _loaded:
            _loaded["lib"], _loaded["problem"] = _build_and_load()
            lib = _loaded["lib"]    # threads only where this build and PyTorch share one OpenMP runtime
            _loaded["one_openmp"] = lib is not None and bool(lib.charlm_openmp()) and len(openmp_runtimes()) <= 1
        return _loaded["lib"]


def problem() -> str | None:
    """Why the C step is not in use, in a phrase; None when it is."""
    if os.environ.get(ENV_SWITCH, "1") == "0":
        return f"turned off ({ENV_SWITCH}=0)"
    library()
    return _loaded.get("problem")


def kernel_tag() -> str:
    """Names the int8 kernel in use, for caches of timings taken with it ("c-avx512-vnni-2t"
    or "torch"): a step built differently is timed again."""
    lib = library()
    return f"c-{lib.charlm_kernel_isa().decode()}-{max_threads()}t" if lib is not None else "torch"


def max_threads() -> int:
    """Threads the C step may use: PyTorch's count where the build has OpenMP and shares
    PyTorch's OpenMP runtime (one pool of threads in the process); otherwise one. Two runtimes
    would each keep threads spinning for the same cores."""
    import torch
    lib = library()
    if lib is None or not _loaded["one_openmp"]:
        return 1
    return torch.get_num_threads()


def openmp_runtimes() -> set[str]:
    """The OpenMP runtimes loaded in this process (Linux; empty where it cannot be told)."""
    try:
        with open("/proc/self/maps") as f:
            names = {line.rsplit("/", 1)[-1].strip() for line in f if "/lib" in line}
    except OSError:
        return set()
    return {n for n in names if n.startswith(("libgomp", "libiomp", "libomp"))}


def compiler() -> str | None:
    for name in filter(None, (os.environ.get("CC"), "cc", "gcc", "clang")):
        path = shutil.which(name)
        if path:
            return path
    return None


def _build_and_load() -> tuple[ctypes.CDLL | None, str | None]:
    cc = compiler()
    if cc is None:
        return None, "no C compiler found (install gcc or clang, or set CC)"
    try:
        version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30, check=False).stdout
    except (OSError, subprocess.SubprocessError) as e:
        return None, f"the C compiler {cc} does not run ({e})"
    try:
        source = SOURCE.read_bytes()
    except OSError as e:        # an install that left it out: generation still works, on PyTorch's kernels
        return None, f"its source {SOURCE} cannot be read ({e.strerror})"
    key = hashlib.sha256(b"\0".join([source, version.encode(), platform.machine().encode(), cc.encode(),
                                     " ".join(sorted(cpu_flags())).encode(), repr(flag_sets()).encode()])
                         ).hexdigest()[:16]
    target = cache_root() / "native" / key / "libcharlm_step.so"
    error = keep_cached(lambda: None if target.exists() else _compile(cc, target),
                        otherwise="charlm's cache cannot be written to build it in")
    if error:
        return None, error
    try:
        # PyDLL: the call keeps the GIL. A step is ~30 us; letting go of the GIL at each one let
        # the app's UI thread take it for milliseconds while text streamed (9k chars/s, 13k kept).
        return _declare(ctypes.PyDLL(str(target))), None
    except OSError as e:
        return None, f"the built step does not load ({e})"


def flag_sets() -> tuple[tuple[str, ...], ...]:
    arch = os.environ.get(ENV_ARCH)
    if arch:            # another CPU's instruction set: to run its code path here (tests, benchmarks)
        return (("-fopenmp", "-O3", f"-march={arch}"), ("-O3", f"-march={arch}"))
    return FLAG_SETS


def _compile(cc: str, target: Path) -> str | None:
    """Compile step.c into target (written whole or not at all); the error, if any."""
    target.parent.mkdir(parents=True, exist_ok=True)
    last = ""
    for flags in flag_sets():
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".so.tmp")
        os.close(fd)
        try:
            done = subprocess.run([cc, *flags, *COMMON_FLAGS, str(SOURCE), "-o", tmp, "-lm"],
                                  capture_output=True, text=True, timeout=120, check=False)
            if done.returncode == 0:
                os.replace(tmp, target)
                return None
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        except (OSError, subprocess.SubprocessError) as e:
            last = str(e)
        finally:
            Path(tmp).unlink(missing_ok=True)
    return f"the C step did not compile ({last})"


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    """Argument and result types, so ctypes converts without guessing (and checks counts)."""
    p, i, f = ctypes.c_void_p, ctypes.c_int, ctypes.c_float
    lib.charlm_step.argtypes, lib.charlm_step.restype = [p, p], None
    lib.charlm_read.argtypes, lib.charlm_read.restype = [p, p, i, p, p, p, p], None
    lib.charlm_product.argtypes, lib.charlm_product.restype = [p, p, i, p, p, p, i], None
    lib.charlm_draw.argtypes, lib.charlm_draw.restype = [p, i, f, f, ctypes.POINTER(f)], i
    lib.charlm_act_bytes.argtypes, lib.charlm_act_bytes.restype = [], i
    lib.charlm_openmp.argtypes, lib.charlm_openmp.restype = [], i
    lib.charlm_kernel_isa.argtypes, lib.charlm_kernel_isa.restype = [], ctypes.c_char_p
    return lib
