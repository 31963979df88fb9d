"""What the app's four screens share."""

from __future__ import annotations

from textual.screen import ActiveBinding, Screen


class AppScreen(Screen):
    """A screen of the app. Its footer starts with the help key: the footer cuts what does not
    fit from its end, where the app's own keys come, and the one key that lists every other
    must stay in view on an 80-column terminal."""

    @property
    def active_bindings(self) -> dict[str, ActiveBinding]:
        found = super().active_bindings
        return dict(sorted(found.items(), key=lambda item: item[1].binding.action != "help"))
