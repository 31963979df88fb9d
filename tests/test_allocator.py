"""The allocator setting: freed training buffers stay in the process instead of going back to the OS."""

from __future__ import annotations

import subprocess
import sys

import pytest

from charlm.machine.allocator import keep_freed_memory

# Allocate and free one 64 MB tensor (on the main thread, or on a new thread as the TUI trains);
# print how much of it is still resident afterwards.
PROBE = """
import sys, threading, torch
from charlm.machine.allocator import keep_freed_memory
if sys.argv[1] == "on":
    assert keep_freed_memory()
def resident():
    return int(open("/proc/self/statm").read().split()[1]) * 4096
def probe():
    before = resident()
    t = torch.ones(64 * 2**20 // 4)
    del t
    if sys.argv[3:] == ["give-back"]:
        from charlm.machine.allocator import give_back_freed_memory
        assert give_back_freed_memory()
    print((resident() - before) / 2**20)
if sys.argv[2] == "thread":
    worker = threading.Thread(target=probe)
    worker.start()
    worker.join()
else:
    probe()
"""


def _resident_after_free(mode: str, where: str = "main", *then: str) -> float:
    out = subprocess.run([sys.executable, "-c", PROBE, mode, where, *then], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux") or not keep_freed_memory(), reason="needs glibc's mallopt")
def test_freed_buffers_stay_resident_only_with_the_setting():
    # glibc's default gives a 64 MB block back at once (it was an mmap); with the setting it is
    # kept for the next step's identical buffer, so no page is zero-filled twice.
    assert _resident_after_free("off") < 8
    assert _resident_after_free("on") > 56


@pytest.mark.skipif(not sys.platform.startswith("linux") or not keep_freed_memory(), reason="needs glibc's mallopt")
def test_a_training_thread_keeps_them_too():
    # A thread's own glibc arena cannot hold 64 MB: only one shared arena keeps the buffer.
    assert _resident_after_free("off", "thread") < 8
    assert _resident_after_free("on", "thread") > 56


@pytest.mark.skipif(not sys.platform.startswith("linux") or not keep_freed_memory(), reason="needs glibc's mallopt")
def test_the_kept_memory_goes_back_when_asked():
    """What the app does once a run ends (a 3x512's 1.4 GB went back to 0.5 GB): the setting's
    kept buffers are handed back to the system."""
    assert _resident_after_free("on", "thread", "give-back") < 8
