"""Errors as a person reads them in a notification. A UsageError is already a sentence; anything
else is a bug: its traceback goes to a log file and the notification says where."""

from __future__ import annotations

import time
import traceback
from pathlib import Path

from charlm.errors import UsageError
from charlm.paths import cache_root
from charlm.train.reports import TrainingStopped


def error_log_path() -> Path:
    return cache_root() / "tui-errors.log"


def describe_error(error: BaseException) -> str:
    if isinstance(error, UsageError):
        return error.message
    if isinstance(error, TrainingStopped):
        return str(error)
    if isinstance(error, MemoryError):
        return "out of memory: choose a smaller model, batch or seq-len"
    path = error_log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as f:
            f.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
            f.write("".join(traceback.format_exception(error)))
        where = f"; the details are in {path}"
    except OSError as e:
        where = f" (and the log {path} could not be written: {e.strerror})"
    return f"internal error: {type(error).__name__}: {error}{where}"
