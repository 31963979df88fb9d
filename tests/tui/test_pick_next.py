"""Pilot tests of seeing the model's guesses on the Generate screen: the panel of likeliest next
characters while text streams, and pick-next mode (1-9 choose, space lets the model draw),
checked against the model read straight through in the app's step precision."""

from __future__ import annotations

import pytest
import torch
from textual.widgets import TextArea

from charlm.corpus.vocab import UNK_ID
from charlm.generate.engine import make_engine
from charlm.generate.native.build import library
from charlm.model.checkpoint import load_checkpoint
from charlm.tui.app import CharLMApp
from charlm.tui.screens.generate import GenerateScreen
from charlm.tui.widgets.guesses import Guesses
from charlm.tui.widgets.output import OutputView

from .conftest import SIZE, install_run, open_generate, tiny_options, wait_for

pytestmark = pytest.mark.xdist_group("tui-train")

PROMPT = "The cat"
# The app's sampler takes the fastest step precision that keeps the model's quality here (timed:
# it can change from one timing to the next); the tests pin it, to read the model in the same
# precision: int8 on the C step where it is built (the app's usual choice), else fp32.
PINNED = "int8" if library() is not None else "fp32"


@pytest.fixture(autouse=True)
def pinned_weights(monkeypatch):
    monkeypatch.setattr("charlm.generate.engine.fastest_weights", lambda model, batch=1: PINNED)


def expected_guesses(ckpt, text: str, k: int = 9) -> list[tuple[str, float]]:
    """The model's k likeliest next characters after `text`, read straight through: the prompt
    read as a stream reads it, then a step a character."""
    ids = [ckpt.vocab.stoi[c] for c in text]
    engine = make_engine(ckpt.model, 1, PINNED)
    logits = engine.feed(torch.tensor([ids[:len(PROMPT)]]))
    for i in ids[len(PROMPT):]:
        logits = engine.advance([i])
    probs = torch.softmax(logits[0].clone(), -1)
    probs[UNK_ID] = 0
    values, order = probs.topk(k)
    return [(ckpt.vocab.itos[i], p) for i, p in zip(order.tolist(), values.tolist())]


def panel(screen) -> str:
    return str(screen.query_one(Guesses).render())


def assert_panel_shows(screen, guesses) -> None:
    shown = panel(screen)
    for n, (_, p) in enumerate(guesses, 1):
        assert f"{p:6.1%}" in shown, (n, p, shown)


async def test_the_panel_shows_what_the_model_expects_after_the_text_so_far(tiny_corpus, trained_run):
    install_run(trained_run)
    ckpt = load_checkpoint(trained_run.run_dir)
    app = CharLMApp(tiny_options(tiny_corpus))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_generate(pilot)
        screen.live.length, screen.live.pace = 40, 0.0
        screen.query_one("#prompt", TextArea).text = PROMPT
        await pilot.press("ctrl+g")
        out = screen.query_one(OutputView)
        await wait_for(pilot, lambda: screen.play.end is not None and len(out.tokens) == 40, what="the stream to end")
        await pilot.pause()
        assert "what the model expects next" in panel(screen)
        assert_panel_shows(screen, expected_guesses(ckpt, out.text)[:5])


async def test_pick_next_takes_the_third_candidate_and_stays_on_the_screen(tiny_corpus, trained_run):
    install_run(trained_run)
    ckpt = load_checkpoint(trained_run.run_dir)
    app = CharLMApp(tiny_options(tiny_corpus))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_generate(pilot)
        screen.query_one("#prompt", TextArea).text = PROMPT
        await pilot.press("n")
        out = screen.query_one(OutputView)
        assert screen.play.picking is not None and out.has_focus and out.text == PROMPT
        offered = expected_guesses(ckpt, PROMPT)
        assert_panel_shows(screen, offered)
        await pilot.press("3")                              # not the Models screen: the third candidate
        assert isinstance(app.screen, GenerateScreen)
        assert out.text == PROMPT + offered[2][0]
        assert_panel_shows(screen, expected_guesses(ckpt, out.text))     # the model read on after it
        await pilot.press("space")                          # the model draws one
        assert len(out.tokens) == 2
        await pilot.press("1")
        assert out.text == PROMPT + offered[2][0] + out.tokens[1].char + expected_guesses(ckpt, out.text[:-1])[0][0]
        await pilot.press("n")                              # done picking: Continue goes on from there
        assert screen.play.picking is None and screen.play.end is not None
        picked = out.text
        screen.live.length, screen.live.pace = 10, 0.0
        await pilot.press("c")
        await wait_for(pilot, lambda: len(out.tokens) == 13, what="the continuation")
        assert out.text.startswith(picked)
        await pilot.press("3")                              # outside pick-next, 3 is the Models screen again
        assert not isinstance(app.screen, GenerateScreen)


async def test_novelty_of_the_output_with_the_longest_copy_highlighted(tiny_corpus, trained_run):
    from charlm.analysis.novelty import open_training_index
    from charlm.tui.widgets.output import COPIED
    run = install_run(trained_run)
    app = CharLMApp(tiny_options(tiny_corpus))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_generate(pilot)
        await pilot.press("v")
        assert screen.query_one(OutputView).copied is None           # nothing generated: a warning only
        screen.live.length, screen.live.pace, screen.knobs.temperature = 80, 0.0, 0.0
        screen.query_one("#prompt", TextArea).text = PROMPT
        await pilot.press("ctrl+g")
        out = screen.query_one(OutputView)
        await wait_for(pilot, lambda: screen.play.end is not None and len(out.tokens) == 80, what="the stream to end")
        await pilot.press("v")
        await wait_for(pilot, lambda: "copied" in str(out.border_subtitle), what="the novelty figure")
        expected = open_training_index(run).novelty_of(out.generated, 20)
        span = expected.longest_copied
        assert f"{expected.fraction_copied:.1%} of 20-char windows copied" in out.border_subtitle
        assert span.length > 0 and f"longest copy {span.length} chars" in out.border_subtitle
        assert out.copied == range(span.text_start, span.text_start + span.length)
        copied = [s for s in out._tail.spans if str(s.style) == COPIED]       # the text drawn, styled
        assert "".join(out._tail.plain[s.start:s.end] for s in copied) == \
            out.generated[span.text_start:span.text_start + span.length]


async def test_a_temperature_sweep_is_each_temperatures_own_sample_with_one_seed(tiny_corpus, trained_run):
    from charlm.generate.sampler import SampleControls, Sampler
    from charlm.tui.generate_session import SWEEP, SWEEP_LENGTH
    from charlm.tui.screens.dialogs import SweepDialog
    install_run(trained_run)
    ckpt = load_checkpoint(trained_run.run_dir)
    app = CharLMApp(tiny_options(tiny_corpus))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_generate(pilot)
        screen.query_one("#prompt", TextArea).text = PROMPT
        screen.query_one("#seed").value = "11"
        await pilot.press("w")
        await wait_for(pilot, lambda: isinstance(app.screen, SweepDialog), what="the sweep")
        dialog = app.screen
        assert [t for t, _ in dialog.samples] == list(SWEEP) and dialog.seed == 11
        sampler = Sampler(ckpt.model, ckpt.vocab, weights=PINNED)
        for t, text in dialog.samples:
            assert text == sampler.generate(PROMPT, SWEEP_LENGTH, SampleControls(temperature=t), seed=11), t
        assert len({text for _, text in dialog.samples}) == len(SWEEP)      # the temperature alone changes them
        await pilot.press("escape")
        assert isinstance(app.screen, GenerateScreen)
