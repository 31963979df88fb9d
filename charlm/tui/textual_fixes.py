"""Workarounds for known bugs of the Textual we run on, each applied once, each naming its
upstream report, each doing nothing where Textual has changed the code it mends."""

from __future__ import annotations

import functools

from textual import _styles_cache, dom, events     # (private parts: the bugs are in them)
from textual.app import App
from textual.screen import Screen
from textual.widgets import OptionList, TextArea

_applied = False


def apply() -> None:
    global _applied
    if not _applied:
        _applied = True
        _cache_inner_outer_by_colour()
        _forget_closed_watchers()
        _page_keys_before_layout()
        _undo_with_the_cursor_in_the_text()


def _cache_inner_outer_by_colour() -> bool:
    """`StylesCache.get_inner_outer` is an instance method under `functools.lru_cache(1024)`, so
    the cache keeps the last 1,024 widgets' style caches alive, every line they drew included,
    long after the widgets are gone (Textualize/textual#6665; 8.2.8). In the app, whose Generate
    view and dialogs come and go, that held tens of MB. The result depends on the two colours
    only: cache it by them, as the method's own code already reads."""
    cls = _styles_cache.StylesCache
    method = cls.__dict__.get("get_inner_outer")
    original = getattr(method, "__wrapped__", None)
    if original is None or not hasattr(method, "cache_clear"):
        return False                  # not the lru_cache'd method any more: nothing to mend
    by_colour = functools.lru_cache(1024)(lambda base_background, background: original(None, base_background, background))

    def get_inner_outer(self, base_background, background):
        return by_colour(base_background, background)

    get_inner_outer.__doc__ = original.__doc__
    method.cache_clear()
    cls.get_inner_outer = get_inner_outer
    return True


def _forget_closed_watchers() -> bool:
    """A node that watches another's reactive (`watch`, `data_bind`) is put on that node's list of
    watchers, and taken off only when the reactive next changes. Textual's Footer recomposes at
    every change of the keys on offer (a focus move, a screen switch) and binds each new FooterKey
    to `Footer.compact`, which never changes: the removed keys stayed on the list, each with its
    styles and message queue, 1,600 of them after 450 random events in one app (8.2.8;
    Textualize/textual#6666). Closed watchers are now dropped whenever a new one joins the list,
    by Textual's own rule for them."""
    original = getattr(dom, "_watch", None)
    if original is None or getattr(original, "forgets_closed_watchers", False):
        return False

    def _watch(node, obj, attribute_name, callback, *, init=True):
        listed = getattr(obj, "__watchers", {}).get(attribute_name)
        if listed:
            listed[:] = [(watcher, call) for watcher, call in listed if not watcher._closing]
        original(node, obj, attribute_name, callback, init=init)

    _watch.forgets_closed_watchers = True
    dom._watch = _watch
    return True


def press_on_a_removed_widget(app: App, event: events.Event) -> bool:
    """Whether `event` is a mouse press on a widget that left the DOM after the last frame was
    drawn: a toast that timed out under the pointer. Textual starts a text selection in the
    pressed widget's parent, which is None by then, and the app dies with AttributeError
    (8.2.8, `Screen._forward_event`; the same crash: agentscope-ai/QwenPaw#6008; the monkey's
    seed 25 in CI). What the press was on is gone, so the app drops it."""
    if not isinstance(event, events.MouseDown) or event.is_forwarded or app.mouse_captured:
        return False
    widget, _ = app.screen.get_widget_and_offset_at(event.x, event.y)
    return widget is not None and not isinstance(widget, Screen) and widget.parent is None


def _page_keys_before_layout() -> bool:
    """OptionList's page up/down read the highlighted option's line from a table that is built only
    while the list has room on screen; pressed while it had none (the command palette's list as the
    palette lays out), they raised KeyError and ended the app (8.2.8; not yet reported upstream;
    found by the monkey, soak seed 101, event 18,730: F18). Until the lines are there, the key does
    nothing."""
    original = OptionList.__dict__.get("_move_page")
    if original is None or getattr(original, "waits_for_layout", False):
        return False

    def _move_page(self, direction):
        if self._options and (self.highlighted or 0) not in self._index_to_line:
            return
        original(self, direction)

    _move_page.waits_for_layout = True
    OptionList._move_page = _move_page
    return True


def _undo_with_the_cursor_in_the_text() -> bool:
    """Undoing a paste of many lines (ctrl+z in the prompt) shortens the text before the cursor is
    put back. When the shorter text no longer needs a scrollbar, hiding it scrolls to the cursor,
    which still stands on a line that is gone: ValueError, and the app ended (8.2.8;
    Textualize/textual#6686; found by the monkey, seed 505, event 370: F19). Until the undo puts
    the cursor back, it is drawn at the end of the text; the cursor itself is not moved."""
    original = TextArea.__dict__.get("_recompute_cursor_offset")
    if original is None or getattr(original, "stays_in_the_text", False):
        return False

    def _recompute_cursor_offset(self):
        if self.cursor_location[0] < self.document.line_count:
            original(self)
        else:
            self._cursor_offset = self.wrapped_document.location_to_offset(self.document.end)

    _recompute_cursor_offset.stays_in_the_text = True
    TextArea._recompute_cursor_offset = _recompute_cursor_offset
    return True
