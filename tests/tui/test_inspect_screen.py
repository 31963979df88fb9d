"""Pilot tests of the Inspect screen (key 4), through its real wiring on a model trained by
`charlm train`: read a text, move the cursor and see the model's own guesses there, search a
pattern and colour by the best unit, read Generate's last output, and one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
from textual.widgets import Input, OptionList, Static, TextArea

from charlm.analysis import shading
from charlm.analysis.neurons import Unit, unit_trace
from charlm.analysis.probe import probe
from charlm.model.checkpoint import load_checkpoint
from charlm.tui.app import CharLMApp
from charlm.tui.inspection import TOP_K
from charlm.tui.screens.inspect import InspectScreen
from charlm.tui.widgets.guesses import Guesses
from charlm.tui.widgets.inspect_text import InspectText

from .conftest import SIZE, install_run, tiny_options, wait_for
from conftest import TINY_TEXT

pytestmark = pytest.mark.xdist_group("tui-train")

TEXT = TINY_TEXT[:400]


async def open_inspect(pilot) -> InspectScreen:
    await pilot.press("4")
    screen = pilot.app.screen
    assert isinstance(screen, InspectScreen)
    await wait_for(pilot, lambda: screen.reading.model is not None, what="the model to load")
    return screen


async def read(pilot, screen: InspectScreen, text: str = TEXT) -> None:
    screen.query_one("#ins-text", TextArea).load_text(text)
    await pilot.press("ctrl+r")
    await wait_for(pilot, lambda: screen.reading.result is not None and "nats/char" in status(screen), what="the text read")


def status(screen) -> str:
    return str(screen.query_one("#ins-status", Static).render())


def panel(screen) -> str:
    return str(screen.query_one(Guesses).render())


async def test_the_cursor_shows_the_models_own_guesses_and_the_figures_are_evals(trained_run, tiny_corpus):
    install_run(trained_run)
    ckpt = load_checkpoint(trained_run.run_dir)
    expected = probe(ckpt.model, ckpt.vocab, TEXT, TOP_K)
    app = CharLMApp(tiny_options(tiny_corpus))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_inspect(pilot)
        await read(pilot, screen)
        assert f"{expected.nats_per_char:.4f} nats/char" in status(screen)
        view = screen.query_one(InspectText)
        assert view.has_focus and view.cursor == 0 and "never predicted" in panel(screen)
        for _ in range(5):
            await pilot.press("right")
        await pilot.pause()
        assert view.cursor == 5
        shown = panel(screen)
        assert "character 6 of the text" in shown
        for ch, p in expected.top(5)[:3]:                  # the probe's numbers for that very position
            assert f"{p:6.1%}" in shown, (ch, p, shown)
        assert f"came: {expected.probs[5]:.1%}" in shown
        await pilot.press("down")                          # the same column, a line further
        await pilot.pause()
        assert view.cursor == TEXT.index("\n") + 1 + 5
        # every character coloured by its surprise
        assert view.styles_of == shading.surprise_styles(expected.surprise_bits)


async def test_a_pattern_search_lists_units_and_enter_colours_by_the_best(trained_run, tiny_corpus):
    install_run(trained_run)
    ckpt = load_checkpoint(trained_run.run_dir)
    app = CharLMApp(tiny_options(tiny_corpus))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_inspect(pilot)
        await read(pilot, screen)
        screen.query_one("#ins-pattern", Input).value = "after-newline"
        await pilot.press("ctrl+f")
        await wait_for(pilot, lambda: screen.reading.units, what="the units for the pattern")
        scores = [abs(s.score) for s in screen.reading.units]
        assert scores == sorted(scores, reverse=True) and len(screen.reading.units) == 20
        options = screen.query_one("#ins-units", OptionList)
        options.focus()
        await pilot.press("enter")
        best = screen.reading.units[0].unit
        await wait_for(pilot, lambda: screen.reading.unit == best, what="colouring by the best unit")
        values = unit_trace(ckpt.model, ckpt.vocab, TEXT, best)
        view = screen.query_one(InspectText)
        assert view.styles_of == shading.activation_styles(values, shading.activation_scale(best.kind, values))
        assert f"coloured by unit {best}" in status(screen)
        await pilot.press("ctrl+e")                        # back to surprise
        assert screen.reading.unit is None and "surprise" in str(view.legend)


async def test_a_unit_typed_colours_the_text_and_a_bad_one_is_one_line(trained_run, tiny_corpus):
    install_run(trained_run)
    ckpt = load_checkpoint(trained_run.run_dir)
    app = CharLMApp(tiny_options(tiny_corpus))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_inspect(pilot)
        await read(pilot, screen)
        unit_box = screen.query_one("#ins-unit", Input)
        unit_box.value = f"0:h:{ckpt.model_config.hidden}"         # one past the last unit
        await pilot.press("ctrl+u")
        await pilot.pause()
        assert screen.reading.unit is None
        assert any("units are numbered 0 to" in n.message for n in app._notifications)
        unit_box.value = "0:c:3"
        await pilot.press("ctrl+u")
        await wait_for(pilot, lambda: screen.reading.unit == Unit(0, "c", 3), what="colouring by 0:c:3")
        values = unit_trace(ckpt.model, ckpt.vocab, TEXT, Unit(0, "c", 3))
        scale = float(np.abs(values).max())                # a cell state is shown at its own range
        assert f"{-scale:+.2f}" in screen.query_one(InspectText).legend.plain


async def test_generates_last_output_is_read_and_bad_text_is_refused(trained_run, tiny_corpus):
    install_run(trained_run)
    app = CharLMApp(tiny_options(tiny_corpus))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_inspect(pilot)
        await pilot.press("ctrl+l")
        assert any("nothing generated yet" in n.message for n in app._notifications)
        screen.query_one("#ins-text", TextArea).load_text("€")
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert screen.reading.result is None
        assert any("at least two characters" in n.message for n in app._notifications)
        screen.query_one("#ins-text", TextArea).load_text("€€€")
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert any("knows none of the text's characters" in n.message for n in app._notifications)
        app.last_generated = "The cat sat on the mat.\nThe dog"
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: screen.reading.result is not None, what="the last output read")
        assert "".join(screen.reading.result.chars) == app.last_generated
