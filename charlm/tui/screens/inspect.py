"""The Inspect screen: a text read through a model, coloured by how surprised the model was at
each character or by one unit's activation; the cursor shows the model's guesses there, and a
pattern search lists the units that track the pattern (charlm.probe and charlm.neurons do the
work, in a worker; this screen shows it)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Label, OptionList, Select, Static, TextArea
from textual.widgets.option_list import Option
from textual.worker import Worker, WorkerState

from charlm import shading
from charlm.cancel import Cancelled
from charlm.cli.textarg import read_text_file
from charlm.corpus import normalise
from charlm.errors import UsageError
from charlm.model import CharRNN
from charlm.neurons import PATTERNS, Unit, UnitScore, kinds, parse_unit, rank_units, unit_trace
from charlm.probe import ProbeResult, probe
from charlm.tui.errors import describe_error
from charlm.tui.widgets.guesses import Guesses
from charlm.tui.widgets.inspect_text import InspectText
from charlm.tui.widgets.model_source import ModelSource
from charlm.tui.widgets.nav import NavBar
from charlm.vocab import CharVocab

TOP_K = 9                 # guesses kept per position (the panel shows them all)
BEST_UNITS = 20           # units listed after a pattern search


@dataclass
class InspectProgress(Message):
    what: str
    done: int
    total: int

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, InspectProgress)


class InspectScreen(Screen):
    BINDINGS = [
        Binding("ctrl+r", "read", "Read", priority=True,
                tooltip="read the text: each character coloured by how surprised the model was"),
        Binding("ctrl+l", "last_output", "Last output", priority=True,
                tooltip="read the last output: the text Generate made last"),
        Binding("ctrl+f", "find_units", "Find units", priority=True,
                tooltip="find units: those that track the pattern typed (quote, paren, line-position, after-newline or a regex)"),
        Binding("ctrl+u", "show_unit", "Colour by unit", priority=True,
                tooltip="colour by unit: the one typed as LAYER:KIND:INDEX (enter on a listed unit does the same)"),
        Binding("ctrl+e", "surprise", "Surprise", priority=True,
                tooltip="colour by surprise: back from a unit's colours"),
        Binding("escape", "cancel", "Stop", show=False, tooltip="stop the analysis under way"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.model: CharRNN | None = None
        self.vocab: CharVocab | None = None
        self.model_label = ""
        self.result: ProbeResult | None = None
        self.units: list[UnitScore] = []
        self.unit: Unit | None = None          # the unit the text is coloured by (None: surprise)
        self._cancel = threading.Event()
        self._read_when_ready = False

    def compose(self) -> ComposeResult:
        yield NavBar("inspect")
        yield ModelSource("ins-model")
        with Horizontal(id="ins-file-row"):
            yield Label("File", classes="field-label")
            yield Input(id="ins-file", placeholder="a text file to read (enter), or type / paste below", compact=True)
        yield TextArea(id="ins-text", soft_wrap=True, show_line_numbers=False)
        with Horizontal(id="ins-buttons"):
            for label, action, variant in (("Read", "read", "success"), ("Last output", "last_output", "default"),
                                           ("Surprise", "surprise", "default"), ("Stop", "cancel", "error")):
                yield Button(label, id=f"ins-{action}", variant=variant, compact=True, action=f"screen.{action}")
            yield Static("", id="ins-status")
        with Horizontal(id="ins-body"):
            yield InspectText(id="ins-view")
            with Vertical(id="ins-side"):
                yield Guesses("", id="ins-guesses")
                with Horizontal(classes="ins-row"):
                    yield Input(id="ins-pattern", placeholder="quote|paren|line-position|after-newline|REGEX",
                                compact=True)
                with Horizontal(classes="ins-row"):
                    yield Input(id="ins-unit", placeholder="unit LAYER:KIND:INDEX, e.g. 0:c:17", compact=True)
                yield OptionList(id="ins-units")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#ins-text", TextArea).border_title = "Text (ctrl+r reads it)"
        self.query_one("#ins-units", OptionList).border_title = "units for the pattern (ctrl+f)"
        self.query_one(Guesses).show_position([], "", None, 0)
        self.refresh_models()

    def on_screen_resume(self) -> None:
        self.refresh_models()

    def on_screen_suspend(self) -> None:
        self._cancel.set()        # leaving the screen stops what it was reading

    # -- the model ---------------------------------------------------------------------------
    def refresh_models(self) -> None:
        """The run being trained (if any), then every run under checkpoints/."""
        if not self.query_one(ModelSource).refresh_models():
            self._status("no models yet: train one on the Train screen (press 1)")

    @on(ModelSource.Loading)
    def _loading(self) -> None:
        self.action_cancel()
        self.model, self.result, self.units, self.unit = None, None, [], None
        self._status("loading the model…")

    @on(ModelSource.Picked)
    def _picked(self, event: ModelSource.Picked) -> None:
        """A model is ready (the live run's: a snapshot of its weights now)."""
        source = event.source
        self.action_cancel()
        self.result, self.units, self.unit = None, [], None
        self._use(source.snapshot() if source.snapshot is not None else source.model, source.vocab, source.label)
        if self._read_when_ready:            # Read was asked for while the model loaded
            self._read_when_ready = False
            self.action_read()

    @on(ModelSource.Failed)
    def _no_model(self, event: ModelSource.Failed) -> None:
        self.notify(event.problem, title="Inspect", severity=event.severity, timeout=10)
        self._status("")

    def _use(self, model: CharRNN, vocab: CharVocab, label: str) -> None:
        self.model, self.vocab, self.model_label = model.eval(), vocab, label
        cfg = model.config
        self._status(f"{label} · {cfg.cell} {cfg.layers}x{cfg.hidden} · units: layers 0-{cfg.layers - 1}, "
                     f"kinds {'/'.join(kinds(model))}, 0-{cfg.hidden - 1}")

    # -- the text ----------------------------------------------------------------------------
    @on(Input.Submitted, "#ins-file")
    def _file_given(self) -> None:
        """Read the file named into the text box, then read it through the model."""
        path = self.query_one("#ins-file", Input).value.strip()
        if not path:
            return
        try:
            text = read_text_file(Path(path).expanduser())
        except UsageError as e:
            self.notify(e.message, title="Inspect", severity="error")
            return
        self.query_one("#ins-text", TextArea).load_text(text)
        self.action_read()

    def action_last_output(self) -> None:
        """Read the text the Generate screen made last."""
        text = getattr(self.app, "last_generated", "")
        if not text:
            self.notify("nothing generated yet: make some text on the Generate screen (press 2)", severity="warning")
            return
        self.query_one("#ins-text", TextArea).load_text(text)
        self.action_read()

    def action_read(self) -> None:
        """Read the text through the model: each character's probability and the guesses."""
        text = normalise(self.query_one("#ins-text", TextArea).text)
        problem = self._cannot_read(text)
        if problem:
            self.notify(problem, title="Inspect", severity="error")
            return
        if self.model is None:
            return
        self.unit = None
        self._start()
        self._probe(self.model, self.vocab, text, self._cancel)

    def _cannot_read(self, text: str) -> str | None:
        if self.model is None and self.query_one(ModelSource).select.value is not Select.NULL:
            self._read_when_ready = True     # still loading: read once it is ready
            self._status("reading once the model has loaded…")
            return None
        if self.model is None:
            return "pick a model first (the Model list above)"
        if len(text) < 2:
            return "give a text of at least two characters: type it, paste it, or name a file"
        if not any(c in self.vocab.stoi for c in text):
            return "the model knows none of the text's characters: use text like the one it was trained on"
        return None

    def _start(self) -> None:
        self._cancel.set()                    # whatever was under way stops
        self._cancel = threading.Event()

    def action_cancel(self) -> None:
        """Stop the analysis under way."""
        self._cancel.set()

    def _progress(self, what: str):
        return lambda done, total: self.post_message(InspectProgress(what, done, total))

    @work(thread=True, exclusive=True, exit_on_error=False, group="inspect", name="probe")
    def _probe(self, model, vocab, text: str, cancel: threading.Event) -> ProbeResult:
        return probe(model, vocab, text, TOP_K, progress=self._progress("reading"), cancel=cancel)

    @work(thread=True, exclusive=True, exit_on_error=False, group="inspect", name="unit")
    def _trace(self, model, vocab, text: str, unit: Unit, cancel: threading.Event):
        return unit, unit_trace(model, vocab, text, unit, progress=self._progress(f"unit {unit}"), cancel=cancel)

    @work(thread=True, exclusive=True, exit_on_error=False, group="inspect", name="search")
    def _search(self, model, vocab, text: str, pattern: str, cancel: threading.Event) -> list[UnitScore]:
        return rank_units(model, vocab, text, pattern, progress=self._progress(f"pattern {pattern}"), cancel=cancel)

    def on_inspect_progress(self, message: InspectProgress) -> None:
        self._status(f"{message.what}: {message.done / max(message.total, 1):.0%} of {message.total:,} characters…")

    # -- colouring ---------------------------------------------------------------------------
    def action_surprise(self) -> None:
        """Colour the text by the model's surprise at each character."""
        if self.result is None:
            self.notify("read a text first (ctrl+r)", severity="warning")
            return
        self.unit = None
        self.query_one(InspectText).show(self.result.chars, shading.surprise_styles(self.result.surprise_bits),
                                         shading.surprise_legend(), keep_cursor=True)
        self._show_figures()

    def action_show_unit(self) -> None:
        """Colour the text by the unit typed in the unit box."""
        self._colour_by(self.query_one("#ins-unit", Input).value)

    def _colour_by(self, spec: str) -> None:
        if self.result is None or self.model is None:
            self.notify("read a text first (ctrl+r)", severity="warning")
            return
        try:
            unit = parse_unit(spec, self.model)
        except UsageError as e:
            self.notify(e.message.replace("--show ", "unit "), title="Inspect", severity="error")
            return
        self._start()
        self._trace(self.model, self.vocab, "".join(self.result.chars), unit, self._cancel)

    def action_find_units(self) -> None:
        """List the units that track the pattern typed in the pattern box."""
        pattern = self.query_one("#ins-pattern", Input).value.strip()
        if self.result is None or self.model is None:
            self.notify("read a text first (ctrl+r)", severity="warning")
            return
        if not pattern:
            self.notify(f"type a pattern: {', '.join(PATTERNS)} or a regular expression", severity="warning")
            return
        self._start()
        self._search(self.model, self.vocab, "".join(self.result.chars), pattern, self._cancel)

    @on(Input.Submitted, "#ins-pattern")
    def _pattern_given(self) -> None:
        self.action_find_units()

    @on(Input.Submitted, "#ins-unit")
    def _unit_given(self) -> None:
        self.action_show_unit()

    @on(OptionList.OptionSelected, "#ins-units")
    def _unit_picked(self, event: OptionList.OptionSelected) -> None:
        """Colour by the unit picked from the list."""
        self.query_one("#ins-unit", Input).value = str(event.option.id)
        self._colour_by(str(event.option.id))

    # -- results -----------------------------------------------------------------------------
    @on(Worker.StateChanged)
    def _worker_changed(self, event: Worker.StateChanged) -> None:
        worker, state = event.worker, event.worker.state
        if state == WorkerState.CANCELLED or (state == WorkerState.ERROR and isinstance(worker.error, Cancelled)):
            self._status("stopped")
            return
        if state == WorkerState.ERROR:
            self.notify(describe_error(worker.error), title="Inspect", severity="error", timeout=10)
            self._status("")
            return
        if state != WorkerState.SUCCESS:
            return
        result = worker.result
        if worker.name == "probe":
            self.result = result
            view = self.query_one(InspectText)
            view.show(result.chars, shading.surprise_styles(result.surprise_bits), shading.surprise_legend())
            self._show_figures()
            self._show_guesses(0)
            view.focus()
        elif worker.name == "search":
            self.units = result[:BEST_UNITS]
            options = self.query_one("#ins-units", OptionList)
            options.clear_options()
            options.add_options([Option(f"{s.unit!s:>9}  {s.score:+.3f}", id=str(s.unit)) for s in self.units])
            if self.units:
                options.highlighted = 0           # enter colours by the best at once
            best = self.units[0] if self.units else None
            self._status(f"best unit {best.unit} at {best.score:+.3f} (Pearson r with the pattern); "
                         f"enter on a row colours by it" if best else "no units")
        elif worker.name == "unit":
            unit, values = result
            self.unit = unit
            scale = shading.activation_scale(unit.kind, values)
            legend = shading.activation_legend(scale) + Text(f"   unit {unit} · ctrl+e: back to surprise")
            self.query_one(InspectText).show(self.result.chars, shading.activation_styles(values, scale), legend,
                                             keep_cursor=True)
            self._status(f"coloured by unit {unit}")

    @on(InspectText.CursorMoved)
    def _cursor_moved(self, event: InspectText.CursorMoved) -> None:
        self._show_guesses(event.position)

    def _show_guesses(self, t: int) -> None:
        r = self.result
        if r is None or not r.chars:
            return
        prob = None if t == 0 else float(r.probs[t])
        self.query_one(Guesses).show_position(r.top(t), r.chars[t], prob, t)

    def _show_figures(self) -> None:
        r = self.result
        self._status(f"{len(r.chars):,} characters · {r.nats_per_char:.4f} nats/char · "
                     f"{r.bits_per_char:.4f} bits/char · {self.model_label}")

    def _status(self, text: str) -> None:
        self.query_one("#ins-status", Static).update(text)
