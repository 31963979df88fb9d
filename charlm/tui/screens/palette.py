"""Textual's command palette, made safe against input that arrives faster than it closes."""

from __future__ import annotations

from textual.command import CommandPalette

from charlm.tui.screens.dialogs import AnsweredOnce


class Palette(AnsweredOnce, CommandPalette):
    """The command palette, closed once. Textual 8.2's palette closes itself on every click outside
    it and on every choice: a double click, or Enters queued on a chosen command, closed the page
    under it too (ScreenStackError: the monkey's F7 and its family)."""
