"""Shared fixtures: every test gets its own cache, checkpoints and corpora directories,
and the offline mirror points at ../shared/corpora when it exists."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_CORPORA = ROOT.parent / "shared" / "corpora"

# A small, deterministic piece of English for training tiny models (our own words).
TINY_TEXT = (
    "The cat sat on the mat. The dog sat on the log.\n"
    "A cat and a dog met on the mat; the dog said hello, the cat said nothing.\n"
    "Then the cat ran to the log and the dog ran to the mat.\n\n"
) * 40


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("CHARLM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CHARLM_CHECKPOINTS", str(tmp_path / "checkpoints"))
    monkeypatch.setenv("CHARLM_CORPORA", str(tmp_path / "corpora"))
    if SHARED_CORPORA.is_dir():
        monkeypatch.setenv("CHARLM_MIRROR", str(SHARED_CORPORA))
    monkeypatch.setenv("COLUMNS", "120")
    yield


@pytest.fixture
def tiny_corpus(tmp_path) -> Path:
    path = tmp_path / "tiny.txt"
    path.write_text(TINY_TEXT, encoding="utf-8")
    return path


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 180, input: str | None = None):
    """Run `python -m charlm ARGS` as a subprocess, as a user would."""
    import subprocess
    return subprocess.run([sys.executable, "-m", "charlm", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, input=input, env=os.environ.copy())
