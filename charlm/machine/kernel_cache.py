"""Bound oneDNN's cache of compiled kernels in the long-lived app.

On CPU, torch runs the LSTM (and bf16 matmuls) through oneDNN, which compiles a kernel for every
new problem shape and keeps it in a process-wide cache of up to 1,024 entries. A training run
uses a few dozen (each layer's forward, backward and weight reorders, validation's batch, the
sample's), and a process that trains one model never sees more. The app is another matter: each
model shaped in Advanced, each new prompt length in Generate or text in Inspect adds entries, and
the cache only evicts at 1,024. `python -m bench.kernel_cache` (24 short runs of random shapes in
one process, 2-core Sapphire Rapids, torch 2.13): +65 MB after 21 runs and 2.5 MB more a run by
default; bounded at 128, +14 MB, flat (+0.07 MB a run) from the eighth run on.

The bound is well above one run's working set, so a run in progress never rebuilds a kernel
(a 2x256 or a 3x512 run builds 24; a rebuild costs ~0.6 ms). oneDNN reads the setting once, when it
first builds a kernel: call this before any training or generation. The user's own setting wins.
"""

from __future__ import annotations

import os

CAPACITY_ENV = "ONEDNN_PRIMITIVE_CACHE_CAPACITY"
OLD_ENV = "DNNL_PRIMITIVE_CACHE_CAPACITY"          # the name before oneDNN 2.x's rename, still read
APP_CAPACITY = 128                                  # a few runs' kernels: ~25-40 each


def bound_kernel_cache(capacity: int = APP_CAPACITY) -> bool:
    """Cap oneDNN's kernel cache at `capacity` entries for this process; False if the user set one."""
    if CAPACITY_ENV in os.environ or OLD_ENV in os.environ:
        return False
    os.environ[CAPACITY_ENV] = str(capacity)
    return True
