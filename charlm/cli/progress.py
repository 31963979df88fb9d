"""The headless training display: a rich progress bar, a sample at every evaluation, and
Ctrl-C (or SIGTERM, SIGHUP: charlm.cli.signals) that saves before it leaves."""

from __future__ import annotations

import math
import sys
import threading

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from charlm.analysis.references import verdict
from charlm.cli.signals import save_and_stop_on
from charlm.config import param_count
from charlm.machine.threads import ThreadChoice
from charlm.train.clock import not_counted
from charlm.train.reports import (EvalReport, RollbackReport, StartReport, StepReport, TrainCallbacks, TrainingStopped,
                                  TrainResult)
from charlm.train.trainer import Trainer
from charlm.units import bits


class _RichProgress(TrainCallbacks):
    """Progress bar plus a printed sample at every evaluation."""

    def __init__(self, console: Console, progress: Progress, quiet: bool):
        self.console, self.progress, self.quiet = console, progress, quiet
        self.task = progress.add_task("training", total=1.0, loss="-", val="-", cps="-", lr="-", paused="")

    def on_start(self, report: StartReport) -> None:
        self.console.print(f"threads: {report.threads}", style="dim", highlight=False)

    def on_threads(self, choice: ThreadChoice) -> None:
        self.console.print(f"threads: now {choice.reason}", style="dim", highlight=False)

    def on_step(self, r: StepReport) -> None:
        self.progress.update(self.task, completed=r.progress, description=f"step {r.step}",
                             loss=f"{r.train_loss:.3f}", cps=f"{r.chars_per_sec:,.0f}", lr=f"{r.lr:.1e}",
                             paused=f" · {not_counted(r.not_running)}" if r.not_running else "")

    def on_rollback(self, r: RollbackReport) -> None:
        self.console.print(f"charlm: warning: {r.describe()}", style="yellow", markup=False, highlight=False)

    def on_stopping(self, step: int, validating: bool) -> None:
        then = ", then validating it (Ctrl-C again to leave now: last/ is kept)" if validating else ""
        self.console.print(f"stopping: saving step {step} in last/{then}", style="dim", highlight=False)

    def on_eval(self, r: EvalReport) -> None:
        self.progress.update(self.task, val=f"{r.val_loss:.3f}")
        if not self.quiet:
            self.console.rule(f"step {r.step} · val {r.val_loss:.3f} nats/char ({r.val_bpc:.3f} bits/char)", style="dim")
            self.console.print(r.sample, markup=False, highlight=False)


def train_silently(trainer: Trainer) -> int:
    """A rank other than 0 under torchrun: it trains its share and says nothing (rank 0 reports)."""
    stop, hurry = threading.Event(), threading.Event()
    try:
        with save_and_stop_on(stop, hurry):      # what all ranks then agree on
            trainer.run(stop, hurry=hurry)
    except TrainingStopped:
        return 1
    return 0


def train_with_progress(trainer: Trainer, quiet: bool, notes: list[str] = ()) -> int:
    """Train with a progress bar; `notes` (what auto chose and why, where the run starts from)
    are printed under the first line."""
    console = Console(stderr=False)
    cfg, mcfg = trainer.cfg, trainer.model.config
    budget = f"{cfg.steps} steps" if cfg.budget_seconds is None else f"{cfg.budget_seconds / 60:g} min"
    console.print(f"[bold]{trainer.corpus.name}[/]: {len(trainer.corpus):,} chars, vocab {len(trainer.corpus.vocab)} · "
                  f"{mcfg.cell} {mcfg.layers}x{mcfg.hidden}, {param_count(mcfg):,} params · "
                  f"{trainer.device.type} {trainer.precision} · budget {budget}" +
                  (f" · resuming at step {trainer.step}" if trainer.step else ""))
    for note in notes:
        console.print(note, style="dim" if note.startswith(" ") else None, highlight=False, markup=False)
    console.print(f"run directory: {trainer.run_dir}")
    stop, hurry = threading.Event(), threading.Event()
    progress = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                        TextColumn("loss {task.fields[loss]} · val {task.fields[val]} · {task.fields[cps]} chars/s · "
                                   "lr {task.fields[lr]}{task.fields[paused]}"), TimeElapsedColumn(),
                        TimeRemainingColumn(), console=console, disable=quiet, transient=False)
    trainer.callbacks = _RichProgress(console, progress, quiet)
    try:
        with save_and_stop_on(stop, hurry) as signals, progress:
            result = trainer.run(stop, hurry=hurry)
    except TrainingStopped as e:
        print(f"charlm: error: {e}", file=sys.stderr)
        return 1
    console.print(_summary(result, signals), highlight=False)
    if math.isfinite(result.best_val_loss) and not hurry.is_set():   # the yardsticks take seconds the first time
        from charlm.corpus.yardsticks import yardsticks_for
        yardsticks = yardsticks_for(trainer.corpus, cfg.val_fraction)       # seconds the first time, then kept
        for line in verdict(result.best_val_loss, trainer.corpus.sha256, yardsticks):
            console.print(f"  {line}", highlight=False, markup=False)
    console.print(f"next: charlm sample {result.run_dir}   ·   charlm eval {result.run_dir}")
    return 0


def _summary(result: TrainResult, signals: list[str]) -> str:
    """"done: 5,930 steps in 5.0 min, ..." or "stopped early by SIGTERM; saved: ...", the best
    validation so far, and whether the step last/ holds is validated yet."""
    by = f" by {signals[0]}" if signals and signals[0] != "SIGINT" else ""
    how = f"stopped early{by}; saved" if result.stopped_early else "done"
    paused = f" ({not_counted(result.not_running)})" if result.not_running else ""
    parts = [f"{how}: {result.steps} steps in {result.elapsed / 60:.1f} min{paused}, {result.chars_per_sec:,.0f} chars/s"]
    if math.isfinite(result.best_val_loss):
        parts.append(f"best val {result.best_val_loss:.4f} nats/char ({bits(result.best_val_loss):.4f} bits/char)")
    if memorised := result.memorised():
        parts.append(memorised)
    if not result.validated:
        parts.append(f"step {result.steps} is in last/, not validated yet (charlm eval measures it)")
    return " · ".join(parts)
