"""Fixtures for the app's tests: a tiny corpus and model injected through the app factory,
saved runs to list, and a helper that waits for the app to reach a state."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
import torch

from charlm.config import ModelConfig, TrainConfig
from charlm.corpus.vocab import CharVocab
from charlm.model.checkpoint import save_checkpoint
from charlm.model.network import CharRNN
from charlm.tui.app import CharLMApp
from charlm.tui.options import AppOptions
from charlm.tui.screens.generate import GenerateScreen

from conftest import TINY_TEXT

SIZE = (100, 30)


def tiny_options(corpus: Path, **changes) -> AppOptions:
    """The tiny preset shrunk further: a few dozen steps take about a second."""
    opts = AppOptions(corpus=str(corpus), preset="tiny", model=dict(layers=1, hidden=32, embed=8),
                      train=dict(batch_size=8, seq_len=32, lr=1e-2, device="cpu", precision="fp32", seed=1),
                      budget=2000, budget_unit="steps", eval_every=10, sample_length=40,
                      time_presets=False, step_hz=50, chart_interval=0.0)
    for k, v in changes.items():
        setattr(opts, k, v)
    return opts


@pytest.fixture
def tiny_app(tiny_corpus) -> CharLMApp:
    return CharLMApp(tiny_options(tiny_corpus))


async def wait_for(pilot, predicate, timeout: float = 30.0, what: str = "condition"):
    """Let the app run until `predicate()` is true (polling), or fail saying what never happened."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await pilot.pause(0.05)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


async def corpus_ready(pilot) -> None:
    await wait_for(pilot, lambda: pilot.app.screen.corpus is not None, what="the corpus to be read")


async def start_training(pilot):
    """Press Start once the corpus is read; return the session after its first step."""
    await corpus_ready(pilot)
    await pilot.press("s")
    session = pilot.app.session
    await wait_for(pilot, lambda: session.last_step is not None, what="training to start")
    return session


async def open_generate(pilot):
    """Switch to Generate and wait for the newest checkpoint to load there."""
    await pilot.press("2")
    screen = pilot.app.screen
    assert isinstance(screen, GenerateScreen)
    await wait_for(pilot, lambda: screen.source is not None, what="the newest checkpoint to load")
    return screen


def checkpoints() -> Path:
    return Path(os.environ["CHARLM_CHECKPOINTS"])


def install_run(trained_run, name: str = "demo") -> Path:
    """A copy of the session's trained run under checkpoints/ (the original stays untouched)."""
    target = checkpoints() / name
    shutil.copytree(trained_run.run_dir, target)
    (target / "source.json").write_text(json.dumps({"spec": str(trained_run.corpus), "encoding": "utf-8"}))
    return target


def fake_run(name: str, *, saved_at: str, step: int, best: float, hidden: int = 32, seed: int = 0) -> Path:
    """A run written directly (no training): fixed weights and a fixed date, for snapshots."""
    torch.manual_seed(seed)
    vocab = CharVocab.from_chars(set(TINY_TEXT))
    model = CharRNN(ModelConfig(vocab_size=len(vocab), layers=1, hidden=hidden, embed=8))
    run = checkpoints() / name
    metrics = {"step": step, "elapsed": step * 0.5, "train_loss": best, "val_loss": best, "best_val_loss": best}
    for which in ("best", "last"):
        save_checkpoint(run / which, model, vocab, TrainConfig(steps=step), {"name": "tiny", "chars": len(TINY_TEXT)},
                        metrics)
        cfg = json.loads((run / which / "config.json").read_text())
        cfg["saved_at"] = saved_at
        (run / which / "config.json").write_text(json.dumps(cfg))
    rows = [{"step": s, "elapsed": s * 0.5, "train_loss": 4.0 - 2.0 * s / step} for s in range(10, step + 1, 10)]
    rows += [{"step": s, "elapsed": s * 0.5, "val_loss": 4.1 - 2.0 * s / step} for s in range(50, step + 1, 50)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run
