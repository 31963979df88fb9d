"""The numbers of a run in progress, and the scrolling panel of samples it writes as it learns."""

from __future__ import annotations

from rich.markup import escape
from rich.text import Text
from textual.widgets import RichLog, Static

from charlm.references import meaning
from charlm.reports import EvalReport, StepReport
from charlm.tui import format as fmt


class TrainStats(Static):
    """Three lines: losses, then speed and time, then what the validation loss means."""

    def show(self, step: StepReport | None, last_eval: EvalReport | None, total_steps: int | None,
             corpus_sha256: str | None = None) -> None:
        if step is None:
            self.update("[dim]step – · loss – · val – · – chars/s · elapsed – · ETA –[/]\n", layout=False)
            return
        of = f" / {total_steps:,}" if total_steps else ""
        val = best = "–"
        if last_eval is not None:
            val = f"{fmt.loss(last_eval.val_loss)} ({fmt.bpc(last_eval.val_loss)} bits/char)"
            best = fmt.loss(last_eval.best_val_loss)
        self.update(
            f"step [b]{step.step:,}[/b]{of} · loss [b]{fmt.loss(step.train_loss)}[/b] · val [b]{val}[/b] · best {best}\n"
            f"[b]{step.chars_per_sec:,.0f}[/b] chars/s · {step.threads} thread{'s' * (step.threads > 1)} · "
            f"lr {step.lr:.1e} · elapsed {fmt.duration(step.elapsed)} · ETA {fmt.duration(step.eta)}\n"
            f"[dim]{escape(meaning(last_eval.best_val_loss, corpus_sha256)) if last_eval else ''}[/]",
            layout=False)   # fixed size: no layout pass 10 times a second


class SampleLog(RichLog):
    """A short sample at every evaluation, tagged with its step and validation loss."""

    def __init__(self, **kwargs):
        super().__init__(wrap=True, markup=False, highlight=False, auto_scroll=True, **kwargs)

    def add_sample(self, report: EvalReport) -> None:
        self.write(Text(f"── step {report.step:,} · val {fmt.loss(report.val_loss)} nats/char "
                        f"({report.val_bpc:.2f} bits/char) ──", style="bold"))
        self.write(Text(report.sample.strip("\n") or "(an empty sample)"))

    def add_note(self, text: str) -> None:
        self.write(Text(text, style="italic dim"))
