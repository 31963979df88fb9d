"""The workarounds for Textual's bugs (charlm/tui/textual_fixes.py) mend what they name."""

from __future__ import annotations

import gc
import weakref

from textual import events
from textual._styles_cache import StylesCache
from textual.color import Color
from textual.style import Style
from textual.widgets import TextArea
from textual.widgets._footer import FooterKey
from textual.widgets._toast import Toast

from charlm.tui import textual_fixes

from .conftest import SIZE, wait_for


def test_a_dropped_widgets_style_cache_is_not_kept_by_get_inner_outer():
    """Textualize/textual#6665: the lru_cache on the method kept the last 1,024 StylesCaches
    (and every line each drew) alive; the app's own object counts showed ~50k caches kept."""
    textual_fixes.apply()
    cache = StylesCache()
    inner, outer = cache.get_inner_outer(Color(10, 20, 30), Color(200, 100, 0, 0.5))
    gone = weakref.ref(cache)
    del cache
    gc.collect()
    assert gone() is None, "a StylesCache outlived its widget through get_inner_outer's cache"
    # The same styles as Textual's own code gives: the background blended over the base one.
    assert outer == Style(background=Color(10, 20, 30))
    assert inner == Style(background=Color(10, 20, 30) + Color(200, 100, 0, 0.5))
    assert StylesCache().get_inner_outer(Color(10, 20, 30), Color(200, 100, 0, 0.5)) == (inner, outer)


async def test_a_press_on_a_toast_that_just_timed_out_is_dropped_not_a_crash(tiny_app):
    """A toast that times out under the pointer leaves the DOM before the next frame is drawn;
    Textual 8.2.8 then started a text selection in its parent (None) and the app died with
    AttributeError (the monkey's seed 25 in CI). The press reaches the real app's event loop."""
    async with tiny_app.run_test(size=SIZE, notifications=True) as pilot:
        tiny_app.notify("a warning to click", severity="warning", timeout=30)
        toast = await wait_for(pilot, lambda: next(iter(tiny_app.screen.query(Toast)), None), what="the toast")
        await pilot.pause()
        where = toast.region.offset + (2, 1)
        with tiny_app.batch_update():        # no new frame until the press is handled: the race, every time
            await toast.parent.remove()      # timed out: gone from the DOM, still in the last frame
            assert tiny_app.screen.get_widget_and_offset_at(where.x, where.y)[0] is toast
            tiny_app.post_message(events.MouseDown(None, where.x, where.y, 0, 0, 1, False, False, False,
                                                   screen_x=where.x, screen_y=where.y))
            await pilot.pause()
        assert tiny_app._exception is None, tiny_app._exception
        await pilot.click(offset=where)      # and the next frame, without the toast, takes presses
        assert tiny_app.is_running


async def test_footer_keys_removed_by_a_recompose_are_not_kept(tiny_app):
    """The Footer recomposes whenever the keys on offer change (each focus move) and binds each new
    FooterKey to its `compact`, which never changes: Textual kept every removed key on that
    watchers list (1,600 after 450 random events in one app). Now at most the keys on screen and
    the last set removed outlive a focus move."""
    async with tiny_app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: tiny_app.screen.corpus is not None, what="the corpus to be read")
        for _ in range(40):
            await pilot.press("tab")
            await pilot.pause()
        gc.collect()
        shown = len(tiny_app.screen.query(FooterKey))
        alive = sum(type(o) is FooterKey for o in gc.get_objects())
        assert shown > 0
        assert alive <= 3 * shown, f"{alive} FooterKeys alive for {shown} on screen"


async def test_page_up_in_an_option_list_not_laid_out_is_dropped():
    """The monkey's F18 (soak seed 101, event 18,730): page up in the command palette while its list
    had no size (so no lines) raised KeyError in OptionList._move_page and ended the app."""
    from textual.app import App
    from textual.widgets import OptionList

    textual_fixes.apply()

    class One(App):
        def compose(self):
            yield OptionList(*[f"option {i}" for i in range(40)])

    async with One().run_test(size=(40, 10)) as pilot:
        options = pilot.app.query_one(OptionList)
        options.styles.height = 0             # as the palette's list is while it has no room
        await pilot.pause()
        options.highlighted = 5
        options.action_page_up()              # no lines to page through: nothing, not KeyError
        options.styles.height = 8
        await pilot.pause()
        options.action_page_down()            # once it has them, the key works
        assert options.highlighted > 5


async def test_undoing_a_long_paste_that_needed_a_scrollbar_is_not_a_crash():
    """The monkey's F19 (seed 505, event 370; Textualize/textual#6686): lines pasted into a prompt too
    short for them, then ctrl+z. The shorter text drops its scrollbar before the cursor is put
    back, and Textual scrolled to a line that was gone: ValueError, the app ended."""
    from textual.app import App

    textual_fixes.apply()

    class Prompt(App):
        def compose(self):
            yield TextArea("ab\ncd")

    async with Prompt().run_test(size=(40, 12)) as pilot:
        prompt = pilot.app.query_one(TextArea)
        prompt.styles.height = 5
        prompt.focus()
        prompt.move_cursor((1, 2))
        await pilot.pause()
        prompt.insert("\n1\n2\n3\n4\n5\n6")
        await pilot.pause()
        assert prompt.show_vertical_scrollbar, "the pasted lines should need a scrollbar"
        await pilot.press("ctrl+z")
        await pilot.pause()
        assert pilot.app._exception is None, pilot.app._exception
        assert (prompt.text, prompt.cursor_location, prompt.show_vertical_scrollbar) == ("ab\ncd", (1, 2), False)
        await pilot.press("ctrl+y")                  # and redo brings the lines back, cursor after them
        await pilot.pause()
        assert (prompt.text, prompt.cursor_location) == ("ab\ncd\n1\n2\n3\n4\n5\n6", (7, 1))
