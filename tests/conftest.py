"""Shared fixtures: every test gets its own cache, checkpoints and corpora directories,
and the offline mirror points at ../shared/corpora when it exists."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

# Two pytest workers share two cores: one math thread each, or OpenMP's spinning threads
# oversubscribe the machine and every test crawls. Subprocesses inherit the variable.
os.environ.setdefault("OMP_NUM_THREADS", "1")
import torch  # noqa: E402

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

ROOT = Path(__file__).resolve().parent.parent
SHARED_CORPORA = ROOT.parent / "shared" / "corpora"

# A small, deterministic piece of English for training tiny models (our own words).
TINY_TEXT = (
    "The cat sat on the mat. The dog sat on the log.\n"
    "A cat and a dog met on the mat; the dog said hello, the cat said nothing.\n"
    "Then the cat ran to the log and the dog ran to the mat.\n\n"
) * 40



def words_in_random_order(seed: int = 3, lines: int = 110) -> str:
    """Short lines of a few words in random order (~4 KB): nothing in a text's training part
    predicts its validation part beyond the words, so a model read over it many times learns
    it by heart and its validation loss rises."""
    rng = random.Random(seed)
    words = "the a cat dog sat ran on to mat log and said hello then bird flew over river tree under".split()
    return "".join(" ".join(rng.choice(words) for _ in range(rng.randint(4, 10))) + ".\n" for _ in range(lines))

@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("CHARLM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CHARLM_CHECKPOINTS", str(tmp_path / "checkpoints"))
    monkeypatch.setenv("CHARLM_CORPORA", str(tmp_path / "corpora"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))    # the per-user data directory, should a test unset those
    if SHARED_CORPORA.is_dir():
        monkeypatch.setenv("CHARLM_MIRROR", str(SHARED_CORPORA))
    monkeypatch.setenv("COLUMNS", "120")
    yield


@pytest.fixture
def tiny_corpus(tmp_path) -> Path:
    path = tmp_path / "tiny.txt"
    path.write_text(TINY_TEXT, encoding="utf-8")
    return path


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 180, input: str | None = None,
            env: dict[str, str] | None = None):
    """Run `python -m charlm ARGS` as a subprocess, as a user would; `env` adds to the environment."""
    return subprocess.run([sys.executable, "-m", "charlm", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, input=input, env={**os.environ, **(env or {})})


# How the session's shared run is trained: the tiny preset, 60 steps, two validations, fp32 on
# the CPU so tests can recompute its numbers in-process bit for bit.
TRAINED_RUN_ARGS = ("--preset", "tiny", "--steps", "60", "--eval-every", "30", "--device", "cpu",
                    "--precision", "fp32", "--seed", "7")


@dataclass(frozen=True)
class TrainedRun:
    run_dir: Path                          # holds best/, last/, metrics.jsonl, source.json
    corpus: Path                           # the text it was trained on (TINY_TEXT)
    result: subprocess.CompletedProcess    # the `charlm train` that made it


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> TrainedRun:
    """A tiny model trained once per session by `charlm train`, as a user would.
    Shared and read-only: copy it (shutil.copytree) before damaging or resuming it."""
    root = tmp_path_factory.mktemp("trained")
    corpus = root / "tiny.txt"
    corpus.write_text(TINY_TEXT, encoding="utf-8")
    env = {"CHARLM_CACHE": str(root / "cache"), "CHARLM_CHECKPOINTS": str(root / "checkpoints"),
           "CHARLM_CORPORA": str(root / "corpora"), "COLUMNS": "200"}
    result = run_cli("train", str(corpus), "--out", str(root / "run"), *TRAINED_RUN_ARGS, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return TrainedRun(root / "run", corpus, result)


# charlm built into a wheel and installed, not editable, in a fresh venv (tests/installed.py).
from installed import charlm_wheel, installed_charlm  # noqa: E402, F401
