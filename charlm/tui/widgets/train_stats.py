"""The numbers of a run in progress, and the scrolling panel of samples it writes as it learns."""

from __future__ import annotations

from collections import deque

from rich.markup import escape
from rich.text import Text
from textual import events
from textual.widgets import RichLog, Static

from charlm.analysis.references import meaning
from charlm.corpus.yardsticks import Yardsticks
from charlm.train.clock import not_counted
from charlm.train.reports import EvalReport, SampleReport, StepReport
from charlm.tui import format as fmt


class TrainStats(Static):
    """Three lines: losses, then speed and time, then what the validation loss means (wrapped
    onto more lines where the terminal is too narrow for it)."""

    _eval: EvalReport | None = None
    _meaning = ""

    def show(self, step: StepReport | None, last_eval: EvalReport | None, total_steps: int | None,
             corpus_sha256: str | None = None, yardsticks: Yardsticks | None = None) -> None:
        if step is None:
            relayout, self._eval, self._meaning = bool(self._meaning), None, ""
            self.update("[dim]step – · loss – · val – · – chars/s · elapsed – · ETA –[/]\n", layout=relayout)
            return
        of = f" / {total_steps:,}" if total_steps else ""
        val = best = "–"
        if last_eval is not None:
            val = f"{fmt.loss(last_eval.val_loss)} ({fmt.bpc(last_eval.val_loss)} bits/char)"
            best = fmt.loss(last_eval.best_val_loss)
        # The reading changes only at an evaluation, and with it the height: the updates
        # between (10 a second) neither look it up again nor lay the screen out.
        relayout = False
        if last_eval is not self._eval:
            meaning_now = meaning(last_eval.best_val_loss, corpus_sha256, yardsticks) if last_eval else ""
            relayout, self._eval, self._meaning = meaning_now != self._meaning, last_eval, meaning_now
        self.update(
            f"step [b]{step.step:,}[/b]{of} · loss [b]{fmt.loss(step.train_loss)}[/b] · val [b]{val}[/b] · best {best}\n"
            f"[b]{step.chars_per_sec:,.0f}[/b] chars/s · {step.threads} thread{'s' * (step.threads > 1)} · "
            f"lr {step.lr:.1e} · elapsed {fmt.duration(step.elapsed)} · ETA {fmt.duration(step.eta)}"
            f"{' · ' + not_counted(step.not_running) if step.not_running else ''}\n"
            f"[dim]{escape(self._meaning)}[/]",
            layout=relayout)


class SampleLog(RichLog):
    """Short samples as the run learns, each under its step and the latest validation loss.

    RichLog wraps a line once, at the width it has when written, and the panel's width changes
    with the screen (the settings beside it come back when a run ends): the lines written
    before would then be cut at the border. So the log keeps what it wrote (the newest KEPT
    entries) and writes it again at the new width."""

    KEPT = 600     # entries (a sample, its heading or a note): 300 samples, 30,000 steps at one per 100

    def __init__(self, **kwargs):
        # min_width=1: RichLog's default (78) wraps at 78 columns however narrow the panel is.
        super().__init__(wrap=True, markup=False, highlight=False, auto_scroll=True, min_width=1, **kwargs)
        self._height = 0
        self._entries: deque[Text] = deque(maxlen=self.KEPT)
        self._wrapped_at = 0      # the content width the lines were wrapped at

    def on_resize(self, event: events.Resize) -> None:
        """Wrap again at a new width; keep the newest sample in view when the panel shrinks (the
        stats above it grew a line, the terminal got shorter); one scrolled back to read stays
        where it is."""
        at_end = self.scroll_y >= self.max_scroll_y - max(self._height - event.size.height, 0)
        self._height = event.size.height
        width = self.scrollable_content_region.width
        if width != self._wrapped_at and self._entries:
            self._rewrap()
        if at_end:
            self.scroll_end(animate=False, immediate=True)

    def _rewrap(self) -> None:
        y = self.scroll_y
        super().clear()
        for entry in self._entries:
            self._write(entry, scroll_end=False)
        self.scroll_to(y=min(y, self.max_scroll_y), animate=False, immediate=True)

    def _write(self, entry: Text, scroll_end: bool | None = None) -> None:
        self._wrapped_at = self.scrollable_content_region.width
        self.write(entry, scroll_end=scroll_end)

    def _add(self, entry: Text) -> None:
        self._entries.append(entry)
        self._write(entry)

    def clear(self) -> "SampleLog":
        self._entries.clear()
        return super().clear()

    def add_sample(self, report: EvalReport | SampleReport, last_eval: EvalReport | None = None) -> None:
        """A sample under its step and validation loss (for one written between validations,
        the last validation's, marked as such)."""
        if isinstance(report, EvalReport):
            val = f"val {fmt.loss(report.val_loss)} nats/char ({report.val_bpc:.2f} bits/char)"
        else:
            val = (f"last val {fmt.loss(last_eval.val_loss)} (step {last_eval.step:,})" if last_eval
                   else "not validated yet")
        self._add(Text(f"── step {report.step:,} · {val} ──", style="bold"))
        self._add(Text(report.sample.strip("\n") or "(an empty sample)"))

    def add_note(self, text: str) -> None:
        self._add(Text(text, style="italic dim"))
