"""What the Inspect screen reads with, free of widgets: the model, the last reading of a text,
the units a pattern search found and the unit the text is coloured by. The analyses
(charlm.analysis.probe and charlm.analysis.neurons) run in the screen's thread workers (group
"inspect", one at a time, named "probe", "unit" or "search"), each stopped by the next or by
`cancel`; their progress arrives at the screen as InspectProgress messages."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from textual.message import Message
from textual.widget import Widget

from charlm.analysis.neurons import Unit, UnitScore, kinds, rank_units, unit_trace
from charlm.analysis.probe import ProbeResult, probe
from charlm.corpus.vocab import CharVocab
from charlm.model.network import CharRNN

TOP_K = 9                 # guesses kept per position (the panel shows them all)


@dataclass
class InspectProgress(Message):
    what: str
    done: int
    total: int

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, InspectProgress)


class Inspection:
    def __init__(self, owner: Widget) -> None:
        self.owner = owner
        self.model: CharRNN | None = None
        self.vocab: CharVocab | None = None
        self.label = ""
        self.result: ProbeResult | None = None
        self.units: list[UnitScore] = []
        self.unit: Unit | None = None          # the unit the text is coloured by (None: surprise)
        self._cancel = threading.Event()

    def use(self, model: CharRNN | None, vocab: CharVocab | None = None, label: str = "") -> str:
        """Read with this model from now on (None: none yet); what to say about it."""
        self.cancel()
        self.model = None if model is None else model.eval()
        self.vocab, self.label = vocab, label
        self.result, self.units, self.unit = None, [], None
        if model is None:
            return ""
        cfg = model.config
        return (f"{label} · {cfg.cell} {cfg.layers}x{cfg.hidden} · units: layers 0-{cfg.layers - 1}, "
                f"kinds {'/'.join(kinds(model))}, 0-{cfg.hidden - 1}")

    def problem(self, text: str) -> str | None:
        """Why `text` cannot be read with the model (None: it can)."""
        if self.model is None:
            return "pick a model first (the Model list above)"
        if len(text) < 2:
            return "give a text of at least two characters: type it, paste it, or name a file"
        if not any(c in self.vocab.stoi for c in text):
            return "the model knows none of the text's characters: use text like the one it was trained on"
        return None

    @property
    def text(self) -> str:
        """The text last read."""
        return "".join(self.result.chars) if self.result is not None else ""

    def cancel(self) -> None:
        self._cancel.set()

    # -- the analyses ------------------------------------------------------------------------
    def read(self, text: str) -> None:
        """Each character's probability and the model's guesses there."""
        self.unit = None
        model, vocab = self.model, self.vocab          # as they are now, not when the thread starts
        self._run("probe", "reading", lambda progress, cancel: probe(model, vocab, text, TOP_K,
                                                                      progress=progress, cancel=cancel))

    def trace(self, unit: Unit) -> None:
        """One unit's activation at each character of the text last read."""
        text, model, vocab = self.text, self.model, self.vocab
        self._run("unit", f"unit {unit}", lambda progress, cancel: (unit, unit_trace(
            model, vocab, text, unit, progress=progress, cancel=cancel)))

    def search(self, pattern: str) -> None:
        """The units that track `pattern` in the text last read, best first."""
        text, model, vocab = self.text, self.model, self.vocab
        self._run("search", f"pattern {pattern}", lambda progress, cancel: rank_units(
            model, vocab, text, pattern, progress=progress, cancel=cancel))

    def _run(self, name: str, what: str, work) -> None:
        self._cancel.set()                    # whatever was under way stops
        cancel = self._cancel = threading.Event()

        def progress(done: int, total: int) -> None:
            self.owner.post_message(InspectProgress(what, done, total))

        self.owner.run_worker(lambda: work(progress, cancel), thread=True, exclusive=True, exit_on_error=False,
                              group="inspect", name=name)
