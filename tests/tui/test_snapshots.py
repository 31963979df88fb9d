"""What a person sees, screen by screen, in a deterministic state (no timings, dates or paths
that vary): compared with the accepted SVGs in __snapshots__/. Regenerate with
`pytest tests/tui/test_snapshots.py --snapshot-update`, then look at them."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from charlm.generate.sampler import Token
from charlm.train.reports import EvalReport, StepReport
from charlm.tui.app import CharLMApp
from charlm.tui.messages import TrainingEval, TrainingStarted, TrainingStep
from charlm.tui.train_session import TrainingSession
from charlm.tui.widgets.nav import NavBar
from charlm.tui.widgets.train_live import TrainLive
from charlm.tui.widgets.output import OutputView

from .conftest import corpus_ready, fake_run, tiny_options, wait_for

SAMPLES = {
    100: "Tht a t thee cat o sae\nthe  mog the l",
    200: "The cat sat on the log.\nThe dog ran to the mat; the",
    300: "Then the cat said hello, the dog said nothing.\nA cat and a dog met on the mat.",
}


@pytest.fixture
def corpus_in_corpora(tiny_corpus) -> Path:
    """The tiny text as one of the user's corpora: listed by name, so no varying path shows."""
    import os
    target = Path(os.environ["CHARLM_CORPORA"]) / "tiny.txt"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(tiny_corpus.read_text())
    return target


@pytest.fixture
def relative_checkpoints(tmp_path, monkeypatch):
    """checkpoints/ relative to the working directory, so paths on screen do not vary."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CHARLM_CHECKPOINTS", "checkpoints")


def test_train_screen_ready(snap_compare, corpus_in_corpora):
    assert snap_compare(CharLMApp(tiny_options(corpus_in_corpora)), terminal_size=(100, 30), run_before=corpus_ready)


def test_train_screen_ready_80x24_light(snap_compare, corpus_in_corpora):
    app = CharLMApp(tiny_options(corpus_in_corpora, theme="textual-light"))
    assert snap_compare(app, terminal_size=(80, 24), run_before=corpus_ready)


async def feed_a_run(pilot) -> None:
    """The dashboard of a run at step 300, fed with fixed reports instead of a trainer."""
    await corpus_ready(pilot)
    app, screen = pilot.app, pilot.app.screen
    session = app.session
    session.begin(Path("checkpoints/tiny-demo"))
    session.state = TrainingSession.TRAINING
    screen._set_running(True)
    live = screen.query_one(TrainLive)       # where the trainer's reports arrive
    live.on_training_started(TrainingStarted(Path("checkpoints/tiny-demo"), 0, 6721,
                                             "lstm 1x32 · 6,721 params · cpu fp32"))
    for step in range(1, 301):
        loss = 1.3 + 2.9 * math.exp(-step / 60)
        live.on_training_step(TrainingStep(StepReport(step, step / 1000, step * 0.2, (1000 - step) * 0.2, loss,
                                                        3e-3, 40960.0)))
        if step in SAMPLES:
            live.on_training_eval(TrainingEval(EvalReport(step, step * 0.2, loss, loss + 0.08, loss + 0.08,
                                                            SAMPLES[step])))
    screen.query_one(NavBar).refresh_status()        # not left to its timer: the same text every time
    app.clear_notifications()
    await pilot.pause()


def test_train_screen_while_training(snap_compare, corpus_in_corpora):
    assert snap_compare(CharLMApp(tiny_options(corpus_in_corpora)), terminal_size=(100, 30), run_before=feed_a_run)


async def stream_fixed_text(pilot) -> None:
    """Generate with a loaded checkpoint and fixed characters (their probabilities vary)."""
    await pilot.press("2")
    screen = pilot.app.screen
    await wait_for(pilot, lambda: screen.source is not None, what="the checkpoint to load")
    screen.query_one("#prompt").text = "The cat"
    screen.play.seed = 42
    out = screen.query_one(OutputView)
    out.start("The cat")
    text = " sat on the mat.\nThe dog sad hello, the cat said nothing.\nThen the cat ran to the log"
    out.add([Token(c, 1, (i * 37 % 100) / 100) for i, c in enumerate(text)])
    screen.play.show_counts(done=True)
    await pilot.press("o", "right", "right")
    pilot.app.clear_notifications()
    out.focus()
    await pilot.pause()


def test_generate_screen(snap_compare, tiny_corpus, relative_checkpoints):
    fake_run("demo", saved_at="2024-05-01T12:00:00+0000", step=300, best=1.0)
    assert snap_compare(CharLMApp(tiny_options(tiny_corpus)), terminal_size=(100, 30), run_before=stream_fixed_text)


def test_models_screen(snap_compare, tiny_corpus, relative_checkpoints):
    fake_run("tiny-first", saved_at="2024-05-01T12:00:00+0000", step=300, best=1.2)
    fake_run("tiny-bigger", saved_at="2024-05-02T09:30:00+0000", step=1200, best=0.9, hidden=64)
    assert snap_compare(CharLMApp(tiny_options(tiny_corpus)), terminal_size=(100, 30), press=["3"])


def test_help_screen(snap_compare, corpus_in_corpora):
    assert snap_compare(CharLMApp(tiny_options(corpus_in_corpora)), terminal_size=(100, 30), press=["question_mark"])


async def inspect_fixed_text(pilot) -> None:
    """Inspect with a fixed checkpoint and text, the cursor on the sixth character."""
    await pilot.press("4")
    screen = pilot.app.screen
    await wait_for(pilot, lambda: screen.reading.model is not None, what="the checkpoint to load")
    screen.query_one("#ins-text").load_text("The cat sat on the mat.\nThe dog sat on the log.\n")
    await pilot.press("ctrl+r")
    await wait_for(pilot, lambda: screen.reading.result is not None, what="the text read")
    await pilot.press(*["right"] * 5)
    pilot.app.clear_notifications()
    await pilot.pause()


def test_inspect_screen(snap_compare, tiny_corpus, relative_checkpoints):
    fake_run("demo", saved_at="2024-05-01T12:00:00+0000", step=300, best=1.0)
    assert snap_compare(CharLMApp(tiny_options(tiny_corpus)), terminal_size=(100, 30), run_before=inspect_fixed_text)


async def pick_two_characters(pilot) -> None:
    """Pick-next mode with a fixed checkpoint: two characters picked, the next offered."""
    await pilot.press("2")
    screen = pilot.app.screen
    await wait_for(pilot, lambda: screen.source is not None, what="the checkpoint to load")
    screen.query_one("#prompt").text = "The cat"
    screen.query_one("#seed").value = "7"
    await pilot.press("n", "3", "1")
    pilot.app.clear_notifications()
    await pilot.pause()


def test_pick_next_mode(snap_compare, tiny_corpus, relative_checkpoints, monkeypatch):
    # the figures shown are the model's in the step precision the app takes, timed on the machine: pinned
    monkeypatch.setattr("charlm.generate.engine.fastest_weights", lambda model, batch=1: "fp32")
    fake_run("demo", saved_at="2024-05-01T12:00:00+0000", step=300, best=1.0)
    assert snap_compare(CharLMApp(tiny_options(tiny_corpus)), terminal_size=(100, 30), run_before=pick_two_characters)
