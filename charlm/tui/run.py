"""`charlm` with no arguments: open the app; its exit status is the command's."""

from __future__ import annotations

import sys


def run_app(options=None) -> int:
    """Run the app with `options` (a charlm.tui.options.AppOptions; defaults if None)."""
    # OMP_WAIT_POLICY=PASSIVE is deliberately not set: measured on an idle 2-core machine it cut
    # training speed by ~30%, while key-to-screen p95 stayed under 30 ms without it.
    # The training thread holds the GIL between torch calls; hand it over sooner than the default
    # 5 ms so a key press is drawn without waiting on it.
    sys.setswitchinterval(0.001)
    prepare_process()
    from charlm.tui.app import CharLMApp
    app = CharLMApp(options)
    try:
        result = app.run()
    finally:
        # However the app ended (even by a crash), the training thread must end too: it
        # finishes its step, saves (unless told not to) and returns.
        app.session.request_stop(save=not app.session.abandon.is_set())
    return result if isinstance(result, int) else (app.return_code or 0)


def prepare_process() -> None:
    """What the app's process sets before anything else runs (the monkey bench does the same)."""
    from charlm.machine.allocator import keep_freed_memory
    from charlm.machine.kernel_cache import bound_kernel_cache
    keep_freed_memory()       # before any thread exists: the training thread must share the main arena
    bound_kernel_cache()      # before the first kernel: many model shapes in one process
