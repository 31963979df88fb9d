"""What the monkey (bench/monkey.py) found, each pinned down as a plain Pilot test: the finding's
number is the one in its report (F1 ...), the seeds that found it are named."""

from __future__ import annotations

import asyncio

import pytest
from textual import events
from textual.widgets import Input, Select, TextArea

from charlm.tui.app import CharLMApp
from charlm.tui.screens.dialogs import TextPrompt
from charlm.tui.screens.generate import GenerateScreen
from charlm.tui.screens.help import HelpScreen
from charlm.tui.screens.inspect import InspectScreen
from charlm.tui.screens.palette import Palette
from charlm.tui.screens.train import TrainScreen
from charlm.tui.train_session import TrainingSession

from .conftest import SIZE, corpus_ready, install_run, start_training, tiny_options, wait_for

pytestmark = pytest.mark.xdist_group("tui-train")


async def test_use_the_live_run_with_nothing_training_says_so(tiny_corpus):
    """F1 (seeds 16, 24, 26 ...): `u` on Generate with no run training raised InvalidSelectValueError."""
    async with CharLMApp(tiny_options(tiny_corpus)).run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await pilot.press("u")
        await pilot.pause(0.2)
        assert isinstance(pilot.app.screen, GenerateScreen)
        assert any("no run is being trained" in n.message for n in pilot.app._notifications)


async def test_typed_text_that_looks_like_markup_is_shown_as_typed(tiny_corpus):
    """F3 (seed 11): a path "no[a=-i]such" in an error notification crashed the app (MarkupError)
    when the toast was drawn (run_test draws none unless asked)."""
    async with CharLMApp(tiny_options(tiny_corpus)).run_test(size=SIZE, notifications=True) as pilot:
        screen = pilot.app.screen
        assert isinstance(screen, TrainScreen)
        path_field = screen.query_one("#corpus-path", Input)
        path_field.value = "no[a=-i]such"
        await path_field.action_submit()
        await wait_for(pilot, lambda: any("no[a=-i]such" in n.message for n in pilot.app._notifications),
                       what="the error, as typed")
        await pilot.pause(0.2)
        assert pilot.app.is_running


@pytest.mark.parametrize("theme", ["ansi-dark", "ansi-light"])
async def test_the_ansi_themes_draw_generate(tiny_corpus, theme):
    """F5 (seed 35): the gauges built a Rich style from "ansi_blue" (MissingStyle)."""
    async with CharLMApp(tiny_options(tiny_corpus)).run_test(size=SIZE) as pilot:
        pilot.app.theme = theme
        await pilot.press("2")
        await pilot.pause(0.3)
        assert isinstance(pilot.app.screen, GenerateScreen) and pilot.app.is_running


async def test_a_dialog_answered_twice_closes_once(tiny_corpus):
    """F6 (seed 1, early monkey): two Enters queued in a prompt popped the page under it too."""
    answers = []
    async with CharLMApp(tiny_options(tiny_corpus)).run_test(size=SIZE) as pilot:
        page = pilot.app.screen
        await pilot.app.push_screen(TextPrompt("Name?", "x"), answers.append)
        await pilot.pause(0.1)
        pilot.app.post_message(events.Key("enter", "\r"))
        pilot.app.post_message(events.Key("enter", "\r"))
        await pilot.pause(0.3)
        assert pilot.app.screen is page and answers == ["x"] and pilot.app.is_running


async def test_the_run_is_marked_finished_when_the_app_ends_while_it_trains(tiny_corpus):
    """F10 (seed 12, 7): the training thread set `finished` through self.app, gone by then; and
    F11: the app closing is not logged as an internal error."""
    app = CharLMApp(tiny_options(tiny_corpus, budget=10_000_000))
    async with app.run_test(size=SIZE) as pilot:
        session = await start_training(pilot)
    assert session.finished.wait(60), "the training thread ended without saying so"
    from charlm.tui.errors import error_log_path
    assert not error_log_path().exists() or "CancelledError" not in error_log_path().read_text()


def _click_twice(app, x: int, y: int) -> None:
    """A terminal's double click: both clicks queued before the first is handled."""
    for _ in range(2):
        for cls in (events.MouseDown, events.MouseUp):
            app.post_message(cls(None, x, y, 0, 0, 1, False, False, False, screen_x=x, screen_y=y))


@pytest.mark.parametrize("opened_by", ["ctrl+p", "the theme search"])
async def test_a_double_click_outside_the_palette_closes_it_once(tiny_corpus, opened_by):
    """F7 (seeds 28, 4, 27, 37): Textual's palette closed on each click, the second popping the
    page under it (ScreenStackError). The palette's "Theme" command opens another (seed 101)."""
    async with CharLMApp(tiny_options(tiny_corpus)).run_test(size=SIZE) as pilot:
        page = pilot.app.screen
        if opened_by == "ctrl+p":
            await pilot.press("ctrl+p")
        else:
            pilot.app.search_themes()
            await pilot.pause(0.1)
        assert isinstance(pilot.app.screen, Palette)
        _click_twice(pilot.app, 3, SIZE[1] - 2)
        await pilot.pause(0.3)
        assert pilot.app.is_running and pilot.app.screen_stack == [page]


async def test_a_command_chosen_twice_runs_once(tiny_corpus):
    """F7's family (soak seed 1): Enters queued on a chosen command closed the page under the
    palette too, or ran the command twice (a theme toggled twice is no change)."""
    async with CharLMApp(tiny_options(tiny_corpus)).run_test(size=SIZE) as pilot:
        page, dark = pilot.app.screen, pilot.app.current_theme.dark
        await pilot.press("ctrl+p", *"Light / dark")
        await pilot.pause(0.5)                      # the palette searches in a worker
        for _ in range(3):
            pilot.app.post_message(events.Key("enter", "\r"))
        await pilot.pause(0.5)
        assert pilot.app.is_running and pilot.app.screen_stack == [page]
        assert pilot.app.current_theme.dark != dark


async def test_a_palette_left_open_on_another_page_does_not_block_a_new_one(tiny_corpus):
    """F12 (soak seed 101): a palette still open on the page left behind made ctrl+p on the next
    page a DuplicateIds crash (Textual's palette has a fixed id)."""
    async with CharLMApp(tiny_options(tiny_corpus)).run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p")
        await pilot.app.switch_mode("generate")     # as a command run from the palette may
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        assert pilot.app.is_running and isinstance(pilot.app.screen, Palette)
        assert isinstance(pilot.app.screen_stack[0], GenerateScreen)


async def test_a_select_opened_and_closed_at_once_gives_the_focus_back(tiny_corpus):
    """F8 (soak seed 101, twice in 20,000 events): a list opened and closed by `expanded` alone
    (a double click) kept the focus while hidden; PageDown there, once its options had changed,
    raised KeyError in Textual's OptionList."""
    async with CharLMApp(tiny_options(tiny_corpus)).run_test(size=SIZE) as pilot:
        picker = pilot.app.screen.query_one("#corpus-select", Select)
        picker.focus()
        await pilot.pause()
        picker.expanded = True
        picker.expanded = False
        await pilot.pause()
        assert pilot.app.focused is picker
        picker.set_options([(f"option {i}", f"o{i}") for i in range(30)])
        await pilot.pause()
        for key in ("down", "down", "down", "pagedown"):
            pilot.app.post_message(events.Key(key, None))
        await pilot.pause(0.3)
        assert pilot.app.is_running


def _errors(app) -> list[str]:
    return [n.message for n in app._notifications if n.severity == "error"]


PASTED = "Dear diary,\nthe cat sat on the mat " * 40      # a paragraph pasted where a path goes


async def test_a_paragraph_pasted_as_a_path_is_an_error_not_a_crash(tiny_corpus, trained_run):
    """F13 (soak seed 101, event 3,839): the help text pasted into Inspect's file field crashed the app
    (OSError: File name too long, from Path.is_file). Far too long a name for any file system, and line
    breaks: the Train picker's path field and Inspect's file field say so in one line."""
    install_run(trained_run)
    async with CharLMApp(tiny_options(tiny_corpus)).run_test(size=SIZE) as pilot:
        screen = pilot.app.screen
        await corpus_ready(pilot)
        for field_id, key in (("#corpus-path", None), ("#ins-file", "4")):
            if key:
                screen.set_focus(None)                    # out of the field: the key switches screens
                await pilot.press(key)
                screen = pilot.app.screen
            field = screen.query_one(field_id, Input)
            field.value = PASTED
            field.focus()
            await pilot.press("enter")
            await wait_for(pilot, lambda: any("path is too long" in m for m in _errors(pilot.app)),
                           what=f"the error from {field_id}")
            message = next(m for m in _errors(pilot.app) if "path is too long" in m)
            assert "\n" not in message and len(message) < 250, message
            pilot.app.clear_notifications()
        assert pilot.app.is_running and pilot.app.session.state == TrainingSession.IDLE


async def test_the_root_folder_typed_as_the_corpus_is_refused_at_once(tiny_corpus, monkeypatch):
    """F14 (soak seed 101, event 12,574): `/` then Enter on the Train screen walked the whole disk as
    a corpus folder until /proc's unreadable links failed the worker (PermissionError)."""
    from charlm.corpus import files
    monkeypatch.setattr(files, "MAX_DIR_ENTRIES", 1000)      # `/` holds more on any machine; this is quick
    async with CharLMApp(tiny_options(tiny_corpus)).run_test(size=SIZE) as pilot:
        await corpus_ready(pilot)
        await pilot.press("slash", "enter")
        await wait_for(pilot, lambda: any("directory / holds more than 1,000" in m for m in _errors(pilot.app)),
                       what="the refusal")
        assert pilot.app.is_running and pilot.app.session.state == TrainingSession.IDLE


async def test_the_palette_opened_as_the_app_exits_does_not_fail_it(tiny_corpus):
    """F15 (soak seed 101, event 3,094): ctrl+p while a quit waited for the run to save: the app
    exited as the palette opened, and the palette's search, finding its list gone, failed the app
    (NoMatches) on its way out."""
    app = CharLMApp(tiny_options(tiny_corpus))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        app.post_message(events.Key("ctrl+p", None))
        app.exit()                                  # run_test re-raises what failed the app
        await asyncio.sleep(0.3)                    # (not Pilot's pause: it waits on widgets the exit closes)
    assert app.return_code == 0 and app._exception is None


@pytest.mark.parametrize("key, page", [("2", GenerateScreen), ("4", InspectScreen)])
async def test_a_page_still_mounting_as_the_app_exits_does_not_fail_it(tiny_corpus, key, page):
    """F16 (soak seed 101, event 5,605): a quit waiting for the run to save, then a key that opened
    a page for the first time: the app exited while the page mounted, and its widgets (Textual's
    Select, our own) found their parts already taken down (NoMatches), a traceback over a quit."""
    app = CharLMApp(tiny_options(tiny_corpus))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        app.post_message(events.Key(key, key))
        for _ in range(1000):                       # the page is on, its widgets not yet mounted
            if isinstance(app.screen, page):
                break
            await asyncio.sleep(0)
        app.exit()                                  # run_test re-raises what failed the app
        await asyncio.sleep(0.3)                    # (not Pilot's pause: it waits on widgets the exit closes)
    assert app.return_code == 0 and app._exception is None


async def test_input_queued_for_a_palette_under_another_screen_closes_nothing(tiny_corpus):
    """F17 (soak seed 101, event 17,059): a click for the palette, handled once another screen had
    opened over it, closed that screen (Textual's dismiss pops the top one) and spent the palette's
    answer; the next click outside the palette then failed the app (InvalidStateError)."""
    async with CharLMApp(tiny_options(tiny_corpus)).run_test(size=SIZE) as pilot:
        page = pilot.app.screen
        await pilot.press("ctrl+p")
        palette = pilot.app.screen
        pilot.app.push_screen(HelpScreen())        # as a command chosen in an earlier palette may, once it runs
        await pilot.pause(0.1)
        x, y = 3, SIZE[1] - 2                      # outside the palette's box: a click there closes it
        palette.post_message(events.Click(None, x, y, 0, 0, 1, False, False, False, screen_x=x, screen_y=y))
        await pilot.pause(0.3)
        assert pilot.app.is_running and isinstance(pilot.app.screen, HelpScreen)
        await pilot.press("escape")
        _click_twice(pilot.app, 3, SIZE[1] - 2)    # and now outside the palette, on top again
        await pilot.pause(0.3)
        assert pilot.app.is_running and pilot.app.screen_stack == [page]


async def test_undoing_lines_pasted_into_the_prompt_gives_the_prompt_back(tiny_corpus):
    """F19 (seed 505, event 370): lines pasted into Generate's prompt, more than it shows, then
    ctrl+z: Textual ended the app with ValueError (charlm/tui/textual_fixes.py says why)."""
    async with CharLMApp(tiny_options(tiny_corpus)).run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await pilot.press("p")
        prompt = pilot.app.screen.query_one("#prompt", TextArea)
        await pilot.press(*"To be")
        pilot.app.post_message(events.Paste("\n".join(f"line {i}" for i in range(12))))
        await wait_for(pilot, lambda: prompt.show_vertical_scrollbar, what="the pasted lines to need a scrollbar")
        await pilot.press("ctrl+z")
        await pilot.pause()
        assert pilot.app.is_running and pilot.app._exception is None, pilot.app._exception
        assert prompt.text == "To be" and prompt.cursor_location == (0, 5)
