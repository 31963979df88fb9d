"""Textual's Select, with the focus given back when its list closes by any path."""

from __future__ import annotations

from textual.widgets import Select as TextualSelect
from textual.widgets._select import SelectOverlay


class Select(TextualSelect):
    """A Select whose closed list never keeps the focus. Textual 8.2 hands the focus back only
    when an option is chosen or the list is dismissed: opened and closed again by `expanded`
    alone (a double click on it), the hidden list kept the focus, and PageDown there, once its
    options had changed, raised KeyError (the monkey's F8, soak seed 101)."""

    def _watch_expanded(self, expanded: bool) -> None:
        super()._watch_expanded(expanded)
        if not expanded:        # after the list's own focus(), which is queued too
            self.app.call_later(self._take_focus_from_list)

    def _take_focus_from_list(self) -> None:
        focused = self.app.focused
        if not self.expanded and isinstance(focused, SelectOverlay) and focused.parent is self:
            self.focus()
