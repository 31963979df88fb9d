"""What the trainer tells whoever listens (the CLI's progress bar, the app, a benchmark): one
report per step, per validation and per rollback, the result, the callbacks that receive them,
and the ways a run can stop on its own."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from charlm.machine.threads import ThreadChoice
from charlm.units import bits

MAX_ROLLBACKS = 3           # NaN/Inf losses a run recovers from (each halves the learning rate)
MEMORISED_RISE = 0.02       # nats/char the validation loss rose after its best for a run's end to say so


class TrainingStopped(Exception):
    """Training cannot go on; the last good checkpoint is kept. The message says why and what to do."""


class TrainingDiverged(TrainingStopped):
    """The loss became NaN or Inf again after MAX_ROLLBACKS rollbacks."""

    @classmethod
    def at(cls, loss: float, step: int, lr_scale: float, saved_step: int | None, kept_in: Path) -> "TrainingDiverged":
        return cls(f"the loss became {loss} at step {step}, after {MAX_ROLLBACKS} rollbacks that lowered the "
                   f"learning rate to {lr_scale:g}x; the last good checkpoint (step {saved_step}) is kept in "
                   f"{kept_in}; try a lower --lr or --grad-clip")


class RunNotWritable(TrainingStopped):
    """The run directory cannot be written (a full disk, a read-only directory)."""


@dataclass(frozen=True)
class StartReport:
    """What is about to train, once its set-up is done."""
    run_dir: Path
    step: int                # 0, or where a resumed run goes on from
    cell: str
    layers: int
    hidden: int
    params: int
    device: str              # "cpu", "cuda", "mps"
    precision: str           # "fp32" or "bf16"
    threads: str             # why this many compute threads (ThreadChoice.reason)

    @property
    def summary(self) -> str:
        """"lstm 2x256 · 842,000 params · cpu bf16 · 2 threads: ..." """
        return (f"{self.cell} {self.layers}x{self.hidden} · {self.params:,} params · "
                f"{self.device} {self.precision} · {self.threads}")


def eta(elapsed: float, progress: float) -> float | None:
    """Seconds left, at the pace so far."""
    return None if progress <= 0 else elapsed * (1.0 - progress) / progress


@dataclass(frozen=True)
class StepReport:
    step: int
    progress: float          # 0..1 of the budget
    elapsed: float           # seconds of training (pauses excluded)
    eta: float | None        # seconds left
    train_loss: float        # smoothed, nats/char
    lr: float
    chars_per_sec: float
    threads: int = 1         # compute threads in use (see charlm/machine/threads.py)
    not_running: float = 0.0  # seconds this session was stopped or starved, not counted (charlm.train.clock)


@dataclass(frozen=True)
class EvalReport:
    step: int
    elapsed: float
    train_loss: float
    val_loss: float          # nats/char
    best_val_loss: float
    sample: str

    @property
    def val_bpc(self) -> float:
        return bits(self.val_loss)


@dataclass(frozen=True)
class SampleReport:
    """A sample written between validations (TrainConfig.sample_every)."""
    step: int
    elapsed: float
    sample: str


@dataclass(frozen=True)
class RollbackReport:
    failed_step: int         # the step whose loss was not finite
    loss: float
    step: int                # the checkpoint's step, where training goes on from
    lr_scale: float          # the learning rate's factor from now on
    rollback: int            # this is rollback number `rollback` of MAX_ROLLBACKS

    def describe(self) -> str:
        return (f"the loss became {self.loss} at step {self.failed_step}: back to the checkpoint at step "
                f"{self.step} with the learning rate lowered to {self.lr_scale:g}x "
                f"(rollback {self.rollback} of {MAX_ROLLBACKS})")


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    steps: int
    elapsed: float
    best_val_loss: float
    last_val_loss: float
    stopped_early: bool      # stopped by the user before the budget ran out
    chars_per_sec: float
    validated: bool = True   # last/ holds a validated step (a hurried stop saves without validating)
    not_running: float = 0.0  # seconds this session was stopped or starved, not counted in `elapsed`
    best_step: int | None = None   # the step best/ holds

    def memorised(self) -> str:
        """When the validation loss rose after its best by the end (a small text read many times
        over: the model began to learn it by heart), one clause that says so; else ""."""
        if (self.best_step is None or self.best_step >= self.steps or not math.isfinite(self.last_val_loss)
                or self.last_val_loss - self.best_val_loss < MEMORISED_RISE):
            return ""
        if self.best_step == 0:       # a fine-tune whose starting weights read the text best
            return (f"val rose to {self.last_val_loss:.3f} from where the run started; best/ keeps the weights "
                    f"it started from")
        return (f"after step {self.best_step:,} val rose to {self.last_val_loss:.3f} (the model began to learn the "
                f"text by heart); best/ keeps step {self.best_step:,}")


class TrainCallbacks:
    """Override what you need; every hook is called on the training thread."""
    def on_start(self, report: StartReport) -> None: ...
    def on_step(self, report: StepReport) -> None: ...
    def on_eval(self, report: EvalReport) -> None: ...
    def on_sample(self, report: SampleReport) -> None: ...
    def on_checkpoint(self, path: Path) -> None: ...
    def on_threads(self, choice: ThreadChoice) -> None: ...
    def on_rollback(self, report: RollbackReport) -> None: ...
    def on_stopping(self, step: int, validating: bool) -> None:
        """Asked to stop at `step`, about to save last/ (and then validate, if `validating`):
        raising here leaves without saving."""
