"""Across the app: screens by key and by mouse, help, the command palette covering every
action, themes, and the core staying free of textual."""

from __future__ import annotations

import subprocess
import sys

import pytest
from textual.widgets import Footer

from charlm.tui.app import CharLMApp
from charlm.tui.keys import name, what
from charlm.tui.screens.generate import GenerateScreen
from charlm.tui.screens.help import HelpScreen
from charlm.tui.screens.models import ModelsScreen
from charlm.tui.screens.train import TrainScreen

from .conftest import SIZE, tiny_options, wait_for


async def test_number_keys_and_clicks_switch_screens(tiny_corpus):
    async with CharLMApp(tiny_options(tiny_corpus)).run_test(size=SIZE) as pilot:
        app = pilot.app
        assert isinstance(app.screen, TrainScreen)
        await pilot.press("2")
        assert isinstance(app.screen, GenerateScreen)
        await pilot.press("3")
        assert isinstance(app.screen, ModelsScreen)
        await pilot.click("#nav-tabs", offset=(12, 0))      # " 1 Train " in the top line
        assert isinstance(app.screen, TrainScreen)
        await pilot.click("#nav-tabs", offset=(32, 0))      # " 3 Models "
        assert isinstance(app.screen, ModelsScreen)


async def test_help_opens_and_closes(tiny_corpus):
    async with CharLMApp(tiny_options(tiny_corpus)).run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert isinstance(pilot.app.screen, HelpScreen)
        await pilot.press("escape")
        assert isinstance(pilot.app.screen, TrainScreen)


async def test_every_screen_keeps_the_help_key_in_view_at_80_columns(tiny_corpus):
    """The footer cuts what does not fit from its end; Generate, Models and Inspect bind more
    than 80 columns hold, and `? Help` (the key to every other) comes first on each screen."""
    async with CharLMApp(tiny_options(tiny_corpus)).run_test(size=(80, 24)) as pilot:
        for key in "1234":
            await pilot.press(key)
            await pilot.pause()
            footer = pilot.app.screen.query_one(Footer)
            shown = [k for k in footer.query("FooterKey") if k.region.width and k.region.right <= footer.region.right]
            assert shown and shown[0].action == "help", (key, [k.action for k in shown])


async def test_every_key_of_every_screen_is_in_the_palette_and_the_help(tiny_corpus):
    """The palette and the help are read from the bindings: a key added to a screen shows in both."""
    async with CharLMApp(tiny_options(tiny_corpus)).run_test(size=SIZE) as pilot:
        app = pilot.app
        listed = [c.title for c in app.get_system_commands(app.screen)]
        await pilot.press("question_mark")
        help_text = str(app.screen.query_one("#help-text").render())
    titles = set(listed)
    assert len(titles) == len(listed)                                     # none twice
    for mode, (title, screen, widgets) in CharLMApp.PAGES.items():
        for binding in screen.BINDINGS:                                  # keys for one action: one command
            assert any(f"{title}: {name(b)}" in titles for b in screen.BINDINGS if b.action == binding.action), \
                f"{title}: {binding.action} is not in the palette"
            assert what(binding) in help_text, f"{title}: {binding.action} is not in the help"
        for binding in (b for w in widgets for b in w.BINDINGS):
            assert what(binding) in help_text
    for binding in CharLMApp.BINDINGS:
        assert what(binding) in help_text
    assert "Generate: temperature up" in titles and "Inspect: find units" in titles


async def test_palette_runs_a_command(tiny_corpus):
    async with CharLMApp(tiny_options(tiny_corpus)).run_test(size=SIZE) as pilot:
        app = pilot.app
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Train: use the small preset" in titles and "Generate: temperature up" in titles
        await pilot.press("ctrl+p")
        await pilot.press(*"temperature up")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, GenerateScreen), what="the Generate screen")
        await wait_for(pilot, lambda: app.screen.knobs.temperature == pytest.approx(0.85), what="the temperature to rise by one step")


async def test_theme_toggles_light_and_dark(tiny_corpus):
    async with CharLMApp(tiny_options(tiny_corpus)).run_test(size=SIZE) as pilot:
        assert pilot.app.theme == "textual-dark"
        await pilot.press("ctrl+t")
        assert pilot.app.theme == "textual-light"


async def test_usable_at_80x24(tiny_corpus):
    async with CharLMApp(tiny_options(tiny_corpus)).run_test(size=(80, 24)) as pilot:
        app = pilot.app
        for key, widget_ids in (("1", ("#start", "#chart", "#samples", "#corpus-select", "#preset")),
                                ("2", ("#prompt", "#temperature", "#output", "#gen-generate")),
                                ("3", ("#runs", "#run-resume"))):
            await pilot.press(key)
            for wid in widget_ids:
                region = app.screen.query_one(wid).region
                assert region.width > 0 and region.height > 0 and region.bottom <= 23, f"{wid} at 80x24: {region}"


def test_core_never_imports_textual():
    code = ("import sys, charlm.cli.main, charlm.train.trainer, charlm.generate.sampler, charlm.runs.listing, charlm.corpus.names, charlm.model.checkpoint;"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'textual_plotext', 'plotext')"
            " or m.startswith('charlm.tui'));"
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
