"""The app's process bounds oneDNN's kernel cache: kernels of shapes it has moved on from are
dropped (one per LSTM problem shape; the default keeps 1,024, each ~100 KB)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from charlm.machine.kernel_cache import APP_CAPACITY, CAPACITY_ENV, bound_kernel_cache

# Run a small LSTM on APP_CAPACITY + 8 sequence lengths (a new oneDNN RNN kernel each), then on
# the first length again; oneDNN's verbose lines say whether that kernel was still cached.
PROBE = """
import sys, torch
if sys.argv[1] == "app":
    from charlm.tui.run import prepare_process
    prepare_process()
from charlm.machine.kernel_cache import APP_CAPACITY
lstm = torch.nn.LSTM(8, 16)
with torch.no_grad():
    for length in [*range(1, APP_CAPACITY + 9), 1]:
        if length == 1:
            print("=== length 1", flush=True)
        lstm(torch.zeros(length, 1, 8))
"""


def _first_kernel_again(mode: str) -> str | None:
    """'hit' or 'miss' for the first shape's RNN kernel when it comes back; None without oneDNN's RNN."""
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True,
                         env={**_without_cache_settings(), "ONEDNN_VERBOSE": "profile_create"}).stdout
    last = out.rsplit("=== length 1", 1)[1]
    rnn = [line for line in last.splitlines() if ",rnn," in line and "create:cache_" in line]
    return ("hit" if "create:cache_hit" in rnn[0] else "miss") if rnn else None


def _without_cache_settings() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.endswith("PRIMITIVE_CACHE_CAPACITY")}


def test_the_app_drops_kernels_of_old_shapes_where_a_plain_process_keeps_them():
    plain = _first_kernel_again("plain")
    if plain is None:
        pytest.skip("torch runs the LSTM without oneDNN here (no kernel cache to bound)")
    assert plain == "hit", "oneDNN's default cache keeps the first shape's kernel"
    assert _first_kernel_again("app") == "miss", f"the app's cache holds at most {APP_CAPACITY} kernels"


def test_a_setting_of_the_users_own_wins(monkeypatch):
    monkeypatch.setenv(CAPACITY_ENV, "4096")
    assert not bound_kernel_cache()
    assert os.environ[CAPACITY_ENV] == "4096"
    monkeypatch.delenv(CAPACITY_ENV)
    assert bound_kernel_cache(64) and os.environ[CAPACITY_ENV] == "64"
