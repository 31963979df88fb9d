"""Every key and every command, read from the bindings themselves: the help screen and the
command palette list what the screens bind, so neither can fall behind them.

A binding's `tooltip` reads "what: more about it"; the part before the colon names the command
in the palette ("Generate: temperature up"), the whole is its line in the help."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from textual.binding import Binding

from charlm.config import PRESETS


@dataclass(frozen=True)
class Section:
    title: str                      # "Generate"
    mode: str | None                # the app mode whose screen binds these (None: the app's own)
    bindings: tuple[Binding, ...]   # the screen's (or app's): commands too
    widget_bindings: tuple[Binding, ...] = ()  # keys of widgets on the screen, working while focused
    hints: tuple[tuple[str, str], ...] = ()    # keys that are not bindings (a widget's own), as (keys, what)


def sections(app_bindings, screens: dict[str, tuple[str, type, tuple[type, ...]]]) -> list[Section]:
    """The app's keys, then each mode's screen's (and its widgets'), in the order given.
    `screens`: mode -> (title, screen class, widget classes whose keys work there)."""
    out = [Section("Anywhere", None, tuple(app_bindings), (),
                   (("^p", "command palette: every action by name"), ("tab  shift+tab", "move between fields")))]
    for mode, (title, screen, widgets) in screens.items():
        out.append(Section(title, mode, tuple(screen.BINDINGS), tuple(b for w in widgets for b in w.BINDINGS),
                           HINTS.get(mode, ())))
    return out


# What no binding says: keys that belong to a standard widget on that screen.
HINTS = {
    "train": (("→", "in the path field: complete the path"),),
    "generate": (("pace field", "streaming speed (fast = as fast as the model goes); seed empty = random"),),
    "models": (("enter", "open the selected run in Generate"),),
    "inspect": (("enter", "in the file field: read that file; on a listed unit: colour by it"),),
}


def what(binding: Binding) -> str:
    return binding.tooltip or binding.description


def name(binding: Binding) -> str:
    """The command's name: the tooltip up to its colon (or the description)."""
    return what(binding).split(":")[0].strip()


def keys_of(binding: Binding, display: Callable[[Binding], str]) -> str:
    """Every key of a binding ("left,minus" binds two), as the footer shows keys."""
    return "  ".join(display(Binding(key.strip(), binding.action)) for key in binding.key.split(","))


def commands(all_sections: list[Section]) -> Iterator[tuple[str, str, str | None, str]]:
    """(title, help, mode, action) for the palette: one per screen command (several keys for one
    action, or bindings of one name, make one command: the first), then the presets, which no key binds."""
    seen = set()
    for section in all_sections:
        for binding in section.bindings:
            if section.mode is None or {(section.mode, binding.action), (section.mode, name(binding))} & seen:
                continue
            seen |= {(section.mode, binding.action), (section.mode, name(binding))}
            yield f"{section.title}: {name(binding)}", what(binding), section.mode, binding.action
    for preset_name, preset in PRESETS.items():
        yield f"Train: use the {preset_name} preset", preset.description, "train", f"preset('{preset_name}')"

