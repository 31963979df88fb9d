"""Textual's command palette, made safe against input that arrives faster than it closes."""

from __future__ import annotations

from textual import work
from textual.command import CommandList, CommandPalette

from charlm.tui.screens.dialogs import AnsweredOnce


class Palette(AnsweredOnce, CommandPalette):
    """The command palette, closed once. Textual 8.2's palette closes itself on every click outside
    it and on every choice: a double click, or Enters queued on a chosen command, closed the page
    under it too (ScreenStackError: the monkey's F7 and its family)."""

    @work(exclusive=True, group=CommandPalette._GATHER_COMMANDS_GROUP)
    async def _gather_commands(self, search_value: str) -> None:
        # Textual's search starts by looking up its list, which is gone when the palette was
        # opened as the app exits (a quit while a run saves, then ctrl+p): the search then
        # failed the app on its way out (the monkey's F15). Nothing to show results in: no search.
        if not self.query(CommandList):
            return
        await CommandPalette._gather_commands.__wrapped__(self, search_value)
