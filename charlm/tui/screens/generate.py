"""The Generate screen: pick a checkpoint (or the run being trained), give a prompt, and watch
text stream, changing the temperature, top-k, top-p and length while it does."""

from __future__ import annotations

from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Button, Footer, TextArea
from textual.worker import Worker, WorkerState, get_current_worker

from charlm.novelty import Novelty, open_training_index
from charlm.tui.errors import describe_error
from charlm.tui.generation import Source, StreamEnd, StreamJob, make_sampler, run_stream, sweep
from charlm.tui.messages import Generated
from charlm.tui.screens.dialogs import SweepDialog
from charlm.tui.screens.generate_actions import GenerateActions
from charlm.tui.widgets.guesses import Guesses
from charlm.tui.widgets.knobs import Knobs
from charlm.tui.widgets.model_source import LIVE, ModelSource  # noqa: F401  (LIVE: the live run's entry)
from charlm.tui.widgets.nav import NavBar
from charlm.tui.widgets.output import OutputView

NOVELTY_N = 20            # characters per window: a copied 20-char window is rarely chance


class GenerateScreen(GenerateActions):
    BINDINGS = [
        Binding("ctrl+g", "generate", "Generate", priority=True, tooltip="generate: text from the prompt"),
        Binding("escape", "stop", "Stop", tooltip="stop: the text stops streaming"),
        Binding("c", "continue", "Continue", tooltip="continue: go on from where the text stopped"),
        Binding("left,minus", "temperature(-0.05)", "Temperature −", show=False,
                tooltip="temperature down: safer text (0 = greedy), from the very next character"),
        Binding("right,plus,equals_sign", "temperature(0.05)", "Temperature", key_display="←/→",
                tooltip="temperature up: more adventurous text, from the very next character"),
        Binding("left_square_bracket", "top_k(-5)", "top-k −", show=False, tooltip="top-k down: sample among fewer characters (0 = all)"),
        Binding("right_square_bracket", "top_k(5)", "top-k +", show=False, tooltip="top-k up: sample among more characters"),
        Binding("left_curly_bracket", "top_p(-0.05)", "top-p −", show=False, tooltip="top-p down: keep less probability mass"),
        Binding("right_curly_bracket", "top_p(0.05)", "top-p +", show=False, tooltip="top-p up: keep more probability mass (1 = all)"),
        Binding("less_than_sign", "length(-100)", "length −", show=False, tooltip="length down: 100 fewer characters per Generate / Continue"),
        Binding("greater_than_sign", "length(100)", "length +", show=False, tooltip="length up: 100 more characters per Generate / Continue"),
        Binding("r", "generate", "Regenerate", show=False, tooltip="regenerate: from the same prompt again"),
        Binding("x", "clear", "Clear", show=False, tooltip="clear: empty the output"),
        Binding("ctrl+s", "save", "Save", priority=True, show=False, tooltip="save text to a file: the prompt and the output"),
        Binding("y", "copy", "Copy", show=False, tooltip="copy text: the prompt and the output, to the clipboard"),
        Binding("o", "colour", "Colours", tooltip="colour by probability: each character by the probability the model gave it"),
        Binding("u", "use_live", "Live run", show=False, tooltip="use the run being trained: a snapshot of its weights at each Generate"),
        Binding("n", "pick_mode", "Pick next",
                tooltip="pick-next mode: the model offers its likeliest next characters; 1-9 chooses, space lets it draw, n again ends"),
        Binding("v", "novelty", "Novelty",
                tooltip="novelty: the share of the output's 20-character windows found in the training text; the longest copy highlighted"),
        Binding("w", "sweep", "Sweep", show=False,
                tooltip="temperature sweep: the same prompt and seed at 0.2, 0.5, 0.8, 1.0 and 1.3, side by side"),
        Binding("g", "toggle_guesses", "Guesses", show=False, tooltip="guesses panel: show / hide the model's next-character guesses"),
        *(Binding(str(n), f"pick({n})", f"Pick {n}", show=False, tooltip=f"pick candidate {n}: in pick-next mode")
          for n in range(1, 10)),
        Binding("space", "pick(0)", "Let it draw", show=False, tooltip="let the model draw: in pick-next mode, under the controls"),
    ]

    def compose(self) -> ComposeResult:
        yield NavBar("generate")
        yield ModelSource("gen-model")
        yield TextArea(id="prompt", soft_wrap=True, show_line_numbers=False)
        yield Knobs()
        with Horizontal(id="gen-buttons"):
            for label, action, variant in (("Generate", "generate", "success"), ("Stop", "stop", "error"),
                                           ("Continue", "continue", "primary"), ("Clear", "clear", "default"),
                                           ("Save", "save", "default"), ("Copy", "copy", "default"),
                                           ("Colours", "colour", "default")):
                yield Button(label, id=f"gen-{action}", variant=variant, compact=True, action=f"screen.{action}")
        with Horizontal(id="gen-body"):
            yield OutputView(id="output")
            yield Guesses("", id="gen-guesses")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#prompt", TextArea).border_title = "Prompt (ctrl+g generates)"
        out = self.query_one(OutputView)
        out.border_title = "Output"
        out.border_subtitle = "pick a model above"
        self.refresh_models()

    def on_screen_resume(self) -> None:
        self.refresh_models()

    # -- the model ------------------------------------------------------------------------
    def refresh_models(self) -> None:
        """The live run (if any) first, then every run under checkpoints/."""
        if not self.query_one(ModelSource).refresh_models():
            self.query_one(OutputView).border_subtitle = "no models yet: train one on the Train screen (press 1)"

    def open_run(self, path: Path) -> None:
        """Show a run's checkpoint here (from the Models screen)."""
        self.query_one(ModelSource).open_run(path)

    def action_use_live(self) -> None:
        """Generate from the run being trained right now."""
        self.open_live()

    def open_live(self) -> None:
        self.query_one(ModelSource).open_live()

    @on(ModelSource.Loading)
    def _loading(self) -> None:
        self.action_stop()
        self.query_one(OutputView).border_subtitle = "loading…"

    @on(ModelSource.Picked)
    def _set_source(self, event: ModelSource.Picked) -> None:
        """A model is ready: generate from it from now on."""
        self.action_stop()
        source = self.source = event.source
        self.end = None
        out = self.query_one(OutputView)
        out.border_subtitle = f"{source.label} · {source.detail}" if source.detail else source.label
        self.notify(f"model: {source.label}", timeout=3)

    @on(ModelSource.Failed)
    def _no_source(self, event: ModelSource.Failed) -> None:
        self.notify(event.problem, title="Generate", severity=event.severity, timeout=10)
        if event.severity == "error":
            self.source = None
            self.query_one(OutputView).border_subtitle = "could not load that checkpoint"

    @on(Worker.StateChanged)
    def _worker_changed(self, event: Worker.StateChanged) -> None:
        """A stream, a sweep or a novelty figure ended (the model source handles its own loading)."""
        worker, state = event.worker, event.worker.state
        if state == WorkerState.ERROR:
            self.notify(describe_error(worker.error), title="Generate", severity="error", timeout=10)
            if worker.group == "novelty":
                self.query_one(OutputView).border_subtitle = "novelty: not available"
        elif state == WorkerState.SUCCESS and worker.group == "sweep":
            self.app.push_screen(SweepDialog(*worker.result))
        elif state == WorkerState.SUCCESS and worker.group == "novelty":
            self._show_novelty(worker.result)
        elif state == WorkerState.SUCCESS and worker.group == "generate":
            self.app.last_generated = self.query_one(OutputView).text
            end: StreamEnd = worker.result
            if self.job is not None and end.sampler is not None:
                self.end = end
            self._show_counts(done=True)

    # -- temperature sweep --------------------------------------------------------------------
    def action_sweep(self) -> None:
        """The prompt at several temperatures, side by side, with one seed."""
        prompt = self.usable_prompt()
        if prompt is None:
            return
        self.action_stop()
        self.notify("temperature sweep: writing…", timeout=2)
        self._sweep(self.source, prompt, self._seed_from_field())

    @work(thread=True, exclusive=True, exit_on_error=False, group="sweep")
    def _sweep(self, source: Source, prompt: str, seed: int):
        worker = get_current_worker()
        return prompt, seed, sweep(make_sampler(source), prompt, seed, cancelled=lambda: worker.is_cancelled)

    # -- novelty ----------------------------------------------------------------------------
    def action_novelty(self) -> None:
        """How much of the output the model copied from its training text."""
        out = self.query_one(OutputView)
        run = self.query_one(ModelSource).run_dir
        if run is None or not out.tokens:
            self.notify("generate some text first", severity="warning")
            return
        if len(out.tokens) < NOVELTY_N:
            self.notify(f"the output has {len(out.tokens)} characters: novelty looks at windows of {NOVELTY_N}",
                        severity="warning")
            return
        out.border_subtitle = "novelty: finding the training text's index (built once per corpus)…"
        self._novelty(run, out.generated)

    @work(thread=True, exclusive=True, exit_on_error=False, group="novelty")
    def _novelty(self, run: Path, text: str) -> Novelty:
        return open_training_index(run).novelty_of(text, NOVELTY_N)

    def _show_novelty(self, result: Novelty) -> None:
        out = self.query_one(OutputView)
        span = result.longest_copied
        out.mark_copied(range(span.text_start, span.text_start + span.length) if span.length else None)
        longest = f"longest copy {span.length} chars (highlighted)" if span.length else "no character copied"
        out.border_subtitle = f"novelty: {result.fraction_copied:.1%} of {NOVELTY_N}-char windows copied · {longest}"

    # -- streaming --------------------------------------------------------------------------
    @work(thread=True, exclusive=True, exit_on_error=False, group="generate")
    def _stream(self, job: StreamJob, generation: int) -> StreamEnd:
        worker = get_current_worker()
        return run_stream(job, self.live, lambda tokens, rate, guesses: self.post_message(
            Generated(tokens, generation, rate, guesses)), lambda: worker.is_cancelled)

    def on_generated(self, event: Generated) -> None:
        if event.generation == self.generation:
            self.rate = event.chars_per_sec
            self.query_one(OutputView).add(event.tokens)
            if event.guesses:
                self.query_one(Guesses).show_next(event.guesses, note="what the model expects next")
            self._show_counts()

    def _show_counts(self, done: bool = False) -> None:
        out = self.query_one(OutputView)
        state = "" if done else " · streaming (esc stops)"
        speed = f" · model {self.rate:,.0f} chars/s" if self.rate else ""
        out.border_title = f"Output · {len(out.tokens):,} chars · seed {self.seed}{speed}{state}"
