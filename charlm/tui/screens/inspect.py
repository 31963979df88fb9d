"""The Inspect screen: a text read through a model, coloured by how surprised the model was at
each character or by one unit's activation; the cursor shows the model's guesses there, and a
pattern search lists the units that track the pattern (charlm.analysis.probe and charlm.analysis.neurons do the
work, in a worker; this screen shows it)."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Button, Footer, Input, Label, OptionList, Select, Static, TextArea
from textual.worker import Worker, WorkerState

from charlm.analysis.neurons import parse_unit
from charlm.analysis.patterns import PATTERNS
from charlm.cancel import Cancelled
from charlm.corpus.files import normalise, read_text_file
from charlm.errors import UsageError
from charlm.tui.errors import describe_error
from charlm.tui.inspection import Inspection, InspectProgress
from charlm.tui.screens.base import AppScreen
from charlm.tui.widgets.guesses import Guesses
from charlm.tui.widgets.inspect_text import InspectText
from charlm.tui.widgets.model_source import ModelSource
from charlm.tui.widgets.nav import NavBar
from charlm.tui.widgets.unit_panel import UnitPanel

BEST_UNITS = 20           # units listed after a pattern search
KEYS = [
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


class InspectScreen(AppScreen):
    BINDINGS = KEYS

    def __init__(self) -> None:
        super().__init__()
        self.reading = Inspection(self)          # the model, the last reading, the units found
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
            yield UnitPanel(id="ins-side")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#ins-text", TextArea).border_title = "Text (ctrl+r reads it)"
        self.refresh_models()

    def on_screen_resume(self) -> None:
        self.refresh_models()

    def on_screen_suspend(self) -> None:
        self.reading.cancel()        # leaving the screen stops what it was reading

    # -- the model ---------------------------------------------------------------------------
    def refresh_models(self) -> None:
        """The run being trained (if any), then every run under checkpoints/."""
        if not self.query_one(ModelSource).refresh_models():
            self._status("no models yet: train one on the Train screen (press 1)")

    @on(ModelSource.Loading)
    def _loading(self) -> None:
        self.reading.use(None)
        self._status("loading the model…")

    @on(ModelSource.Picked)
    def _picked(self, event: ModelSource.Picked) -> None:
        """A model is ready (the live run's: a snapshot of its weights now)."""
        source = event.source
        model = source.snapshot() if source.snapshot is not None else source.model
        self._status(self.reading.use(model, source.vocab, source.label))
        if self._read_when_ready:            # Read was asked for while the model loaded
            self._read_when_ready = False
            self.action_read()

    @on(ModelSource.Failed)
    def _no_model(self, event: ModelSource.Failed) -> None:
        self.notify(event.problem, title="Inspect", severity=event.severity, timeout=10)
        self._status("")

    # -- the text ----------------------------------------------------------------------------
    @on(Input.Submitted, "#ins-file")
    def _file_given(self) -> None:
        """Read the file named into the text box, then read it through the model."""
        path = self.query_one("#ins-file", Input).value.strip()
        if not path:
            return
        try:
            text = read_text_file(path)
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
        if self.reading.model is None and self.query_one(ModelSource).select.value is not Select.NULL:
            self._read_when_ready = True     # still loading: read once it is ready
            self._status("reading once the model has loaded…")
            return
        problem = self.reading.problem(text)
        if problem:
            self.notify(problem, title="Inspect", severity="error")
            return
        self.reading.read(text)

    def action_cancel(self) -> None:
        """Stop the analysis under way."""
        self.reading.cancel()

    def on_inspect_progress(self, message: InspectProgress) -> None:
        self._status(f"{message.what}: {message.done / max(message.total, 1):.0%} of {message.total:,} characters…")

    # -- colouring ---------------------------------------------------------------------------
    def action_surprise(self) -> None:
        """Colour the text by the model's surprise at each character."""
        r = self.reading.result
        if r is None:
            self.notify("read a text first (ctrl+r)", severity="warning")
            return
        self.reading.unit = None
        self.query_one(InspectText).show_surprise(r, keep_cursor=True)
        self._show_figures()

    def action_show_unit(self) -> None:
        """Colour the text by the unit typed in the unit box."""
        self._colour_by(self.query_one("#ins-unit", Input).value)

    def _colour_by(self, spec: str) -> None:
        if self.reading.result is None:
            self.notify("read a text first (ctrl+r)", severity="warning")
            return
        try:
            unit = parse_unit(spec, self.reading.model)
        except UsageError as e:
            self.notify(e.message.replace("--show ", "unit "), title="Inspect", severity="error")
            return
        self.reading.trace(unit)

    def action_find_units(self) -> None:
        """List the units that track the pattern typed in the pattern box."""
        pattern = self.query_one("#ins-pattern", Input).value.strip()
        if self.reading.result is None:
            self.notify("read a text first (ctrl+r)", severity="warning")
            return
        if not pattern:
            self.notify(f"type a pattern: {', '.join(PATTERNS)} or a regular expression", severity="warning")
            return
        self.reading.search(pattern)

    @on(Input.Submitted, "#ins-pattern, #ins-unit")
    def _pattern_or_unit_given(self, event: Input.Submitted) -> None:
        self.action_find_units() if event.input.id == "ins-pattern" else self.action_show_unit()

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
        result, reading = worker.result, self.reading
        if worker.name == "probe":
            reading.result = result
            view = self.query_one(InspectText)
            view.show_surprise(result)
            self._show_figures()
            self._show_guesses(0)
            view.focus()
        elif worker.name == "search":
            reading.units = result[:BEST_UNITS]
            self._status(self.query_one(UnitPanel).list_units(reading.units))
        elif worker.name == "unit":
            unit, values = result
            reading.unit = unit
            self.query_one(InspectText).show_unit(reading.result.chars, unit, values)
            self._status(f"coloured by unit {unit}")

    @on(InspectText.CursorMoved)
    def _cursor_moved(self, event: InspectText.CursorMoved) -> None:
        self._show_guesses(event.position)

    def _show_guesses(self, t: int) -> None:
        r = self.reading.result
        if r is None or not r.chars:
            return
        prob = None if t == 0 else float(r.probs[t])
        self.query_one(Guesses).show_position(r.top(t), r.chars[t], prob, t)

    def _show_figures(self) -> None:
        r = self.reading.result
        self._status(f"{len(r.chars):,} characters · {r.nats_per_char:.4f} nats/char · "
                     f"{r.bits_per_char:.4f} bits/char · {self.reading.label}")

    def _status(self, text: str) -> None:
        self.query_one("#ins-status", Static).update(Text(text))
