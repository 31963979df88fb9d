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
    from charlm.machine.allocator import keep_freed_memory
    keep_freed_memory()       # before any thread exists: the training thread must share the main arena
    from charlm.tui.app import CharLMApp
    app = CharLMApp(options)
    try:
        result = app.run()
    finally:
        # However the app ended (even by a crash), the training thread must end too: it
        # finishes its step, saves (unless told not to) and returns.
        app.session.request_stop(save=not app.session.abandon.is_set())
    return result if isinstance(result, int) else (app.return_code or 0)
