"""The Generate screen's text and the state of play around it: the output as it streams, the
model's guesses beside it, where Continue goes on from, and pick-next mode. The screen checks
the prompt and the model, and says what to do; this does it (streams in a thread worker, the
sampler reading the knobs' live settings at every character)."""

from __future__ import annotations

from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.worker import Worker, WorkerState, get_current_worker

from charlm.analysis.novelty import Novelty, open_training_index
from charlm.tui.errors import describe_error
from charlm.tui.generate_session import (LiveSettings, PickNext, Source, StreamEnd, StreamJob, make_sampler, run_stream,
                                         sweep)
from charlm.tui.messages import Generated
from charlm.tui.screens.dialogs import SweepDialog
from charlm.tui.widgets.guesses import Guesses
from charlm.tui.widgets.output import OutputView

NOVELTY_N = 20            # characters per window: a copied 20-char window is rarely chance


class GenerationPanel(Horizontal):
    def __init__(self, live: LiveSettings, **kwargs) -> None:
        super().__init__(**kwargs)
        self.live = live
        self.end: StreamEnd | None = None        # where Continue goes on from
        self.job: StreamJob | None = None
        self.generation = 0                      # which Generate press the characters arriving belong to
        self.seed: int | None = None
        self.rate = 0.0                          # the model's chars/s in the last stream
        self.picking: PickNext | None = None     # pick-next mode, when on

    def compose(self) -> ComposeResult:
        yield OutputView(id="output")
        yield Guesses("", id="gen-guesses")

    def on_mount(self) -> None:
        self.out.border_title = "Output"
        self.out.border_subtitle = "pick a model above"

    @property
    def out(self) -> OutputView:
        return self.query_one(OutputView)

    # -- streaming --------------------------------------------------------------------------
    def generate(self, source: Source, prompt: str, seed: int) -> None:
        self.seed = seed
        self.out.start(prompt)
        self._begin(StreamJob(None, source, prompt, seed))

    def can_go_on(self) -> bool:
        return self.end is not None and self.end.continuation is not None

    def go_on(self, source: Source, seed: int) -> None:
        """Continue from where the text stopped (can_go_on())."""
        self.seed = seed
        self._begin(StreamJob(self.end.sampler, source, "", seed, after=self.end.continuation))

    def _begin(self, job: StreamJob) -> None:
        self.stop()
        self.generation += 1
        self.job, self.end = job, None
        self.show_counts()
        self.out.focus()
        self._stream(job, self.generation)

    def stop(self) -> None:
        """The text stops streaming (it stays; Continue goes on from it)."""
        self.leave_pick_mode()
        if self.job is not None:
            self.job.stop.set()

    def clear(self) -> None:
        self.stop()
        self.generation += 1
        self.end = None
        self.out.clear()

    # Each worker is given its description: else Textual makes one from repr() of every argument on
    # each start, formatting a StreamJob's tensors and copying a whole text.
    @work(thread=True, exclusive=True, exit_on_error=False, group="generate", description="generating")
    def _stream(self, job: StreamJob, generation: int) -> StreamEnd:
        worker = get_current_worker()
        return run_stream(job, self.live, lambda tokens, rate, guesses: self.post_message(
            Generated(tokens, generation, rate, guesses)), lambda: worker.is_cancelled)

    def on_generated(self, event: Generated) -> None:
        if event.generation == self.generation:
            self.rate = event.chars_per_sec
            self.out.add(event.tokens)
            if event.guesses:
                self.query_one(Guesses).show_next(event.guesses, note="what the model expects next")
            self.show_counts()

    @on(Worker.StateChanged)
    def _stream_ended(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group != "generate":
            return
        event.stop()
        if worker.state == WorkerState.ERROR:
            self.notify(describe_error(worker.error), title="Generate", severity="error", timeout=10)
        elif worker.state == WorkerState.SUCCESS:
            self.app.last_generated = self.out.text
            if self.job is not None and worker.result.sampler is not None:
                self.end = worker.result
            self.show_counts(done=True)

    def show_counts(self, done: bool = False) -> None:
        state = "" if done else " · streaming (esc stops)"
        speed = f" · model {self.rate:,.0f} chars/s" if self.rate else ""
        self.out.border_title = f"Output · {len(self.out.tokens):,} chars · seed {self.seed}{speed}{state}"

    # -- pick-next --------------------------------------------------------------------------
    def pick_mode(self, picking: PickNext) -> None:
        """Pick-next mode on: the model offers its likeliest next characters, one at a time."""
        self.picking = picking
        self.out.focus()                   # digits go to the picking, not into the prompt
        self.screen.set_class(True, "-picking")
        self._offer()

    def pick(self, number: int) -> None:
        """Candidate `number` (1-9) comes next; 0 lets the model draw one."""
        tok = self.picking.let_model_pick() if number == 0 else self.picking.pick(number)
        if tok is None:
            self.notify(f"there is no candidate {number}", severity="warning")
            return
        self.out.add([tok])
        self._offer()

    def _offer(self) -> None:
        self.query_one(Guesses).show_next(self.picking.offer(), numbered=True,
                                          note="pick-next: 1-9 chooses · space: the model draws · n: done")
        self.out.border_title = f"Output · {len(self.out.tokens):,} chars · picking the next character"

    def leave_pick_mode(self) -> None:
        if self.picking is None:
            return
        self.end, self.picking = self.picking.end(), None       # Continue goes on from the picked text
        self.screen.set_class(False, "-picking")
        self.show_counts(done=True)
        self.query_one(Guesses).show_next([], note="pick-next mode ended")

    # -- what else it shows -------------------------------------------------------------------
    def sweep(self, source: Source, prompt: str, seed: int) -> None:
        """The prompt at several temperatures with one seed, side by side in a dialog (the
        screen has stopped any stream first)."""
        self.notify("temperature sweep: writing…", timeout=2)
        self._sweep(source, prompt, seed)

    @work(thread=True, exclusive=True, exit_on_error=False, group="sweep", description="temperature sweep")
    def _sweep(self, source: Source, prompt: str, seed: int):
        worker = get_current_worker()
        return prompt, seed, sweep(make_sampler(source), prompt, seed, cancelled=lambda: worker.is_cancelled)

    def toggle_guesses(self) -> None:
        panel = self.query_one(Guesses)
        panel.display = not panel.display

    def find_novelty(self, run: Path | None) -> None:
        """How much of the output the model copied from its training text (`run`'s): the share
        of its NOVELTY_N-character windows found there, and the longest copy highlighted."""
        out = self.out
        if run is None or not out.tokens:
            self.notify("generate some text first", severity="warning")
            return
        if len(out.tokens) < NOVELTY_N:
            self.notify(f"the output has {len(out.tokens)} characters: novelty looks at windows of {NOVELTY_N}",
                        severity="warning")
            return
        out.border_subtitle = "novelty: finding the training text's index (built once per corpus)…"
        self._novelty(run, out.generated)

    @work(thread=True, exclusive=True, exit_on_error=False, group="novelty", description="novelty")
    def _novelty(self, run: Path, text: str) -> Novelty:
        return open_training_index(run).novelty_of(text, NOVELTY_N)

    @on(Worker.StateChanged)
    def _sweep_or_novelty_done(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group not in ("sweep", "novelty"):
            return
        event.stop()
        if worker.state == WorkerState.ERROR:
            self.notify(describe_error(worker.error), title="Generate", severity="error", timeout=10)
            if worker.group == "novelty":
                self.out.border_subtitle = "novelty: not available"
        elif worker.state == WorkerState.SUCCESS and worker.group == "sweep":
            self.app.push_screen(SweepDialog(*worker.result))
        elif worker.state == WorkerState.SUCCESS:
            span = worker.result.longest_copied
            self.out.mark_copied(range(span.text_start, span.text_start + span.length) if span.length else None)
            longest = f"longest copy {span.length} chars (highlighted)" if span.length else "no character copied"
            self.out.border_subtitle = (f"novelty: {worker.result.fraction_copied:.1%} of {NOVELTY_N}-char windows "
                                        f"copied · {longest}")
