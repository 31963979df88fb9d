"""The trainer: truncated BPTT over parallel streams, reporting through callbacks.

A UI drives it with `threading.Event`s (stop, pause, and hurry: a stop that must be quick) and
listens through a `TrainCallbacks` object (minGPT's seam); it never needs to know about torch.
Where it writes, and how, is charlm.runs.directory's: the trainer claims its run directory while
it trains. Its clock (charlm.train.clock) leaves out the time the process was stopped.

No lost work: last/ is saved at the start, at every validation and at a stop, each save atomic,
so a kill at any moment loses at most one evaluation interval. A stop saves last/ before its
closing validation, so a second Ctrl-C that will not wait for it loses nothing; a hurried stop
(SIGTERM: docker stop, a scheduler's preemption) saves and skips the validation, which takes
seconds for a large model. A NaN/Inf loss rolls back to last/ with the learning rate halved (at
most MAX_ROLLBACKS times); a run directory that cannot be written stops training with the
previous checkpoint intact.
"""

from __future__ import annotations

import contextlib
import copy
import math
import threading
import time
from pathlib import Path

import torch

from charlm.config import ModelConfig, TrainConfig
from charlm.corpus.encoded import EncodedCorpus
from charlm.generate.sampler import training_sample
from charlm.machine.allocator import keep_freed_memory
from charlm.machine.device import deterministic_compute, pick_device
from charlm.model.network import CharRNN
from charlm.runs.directory import BEST, LAST, ResumeState, RunDir
from charlm.train import faults
from charlm.train.clock import WorkClock
from charlm.train.controls import Controls
from charlm.train.distributed import current_team, wrap_for_ranks
from charlm.train.evaluate import validation_loss
from charlm.train.footprint import check_fits
from charlm.train.optim import build_optimizer, lr_at
from charlm.train.reports import (MAX_ROLLBACKS, EvalReport, RollbackReport, SampleReport, StartReport, StepReport,
                                  TrainCallbacks, TrainingDiverged, TrainResult, eta)
from charlm.train.saving import RunWriter
from charlm.train.setup import new_model, thread_governor, training_data, training_precision
from charlm.train.speed import record_run, training_device
from charlm.train.update import TrainStep


def _device(model_config: ModelConfig, train_config: TrainConfig, team) -> torch.device:
    """One process times "auto" between the accelerator and the CPU; torchrun's ranks take their GPUs."""
    if team.solo:
        return training_device(model_config, train_config)
    return team.device(pick_device(train_config.device))


class Trainer:
    def __init__(self, corpus: EncodedCorpus, model_config: ModelConfig, train_config: TrainConfig,
                 run_dir: Path, callbacks: TrainCallbacks | None = None, resume: bool = False,
                 init_weights: dict[str, torch.Tensor] | None = None):
        """`init_weights` (a state dict for this vocabulary, charlm.train.finetune.carried_weights)
        starts a new run from another run's weights instead of from random ones; the run then
        validates before its first step, so its curve shows where it started."""
        train_config.validate()
        keep_freed_memory()               # ~1.5x faster steps on glibc: see charlm/machine/allocator.py
        self.corpus, self.cfg, self.rundir = corpus, train_config, RunDir(run_dir)
        self.callbacks = callbacks or TrainCallbacks()
        self.team = current_team()        # one process, or the ranks torchrun started (charlm.train.distributed)
        model_config.vocab_size = len(corpus.vocab)
        self.device = _device(model_config, train_config, self.team)
        self.threads = thread_governor(train_config, self.team)
        data = training_data(corpus, train_config, self.team)
        self.batches, self.val_ids, self.val_sample, self.streams = data.batches, data.val_ids, data.val_sample, data.streams
        check_fits(model_config, train_config, self.device)  # before anything is allocated
        self.precision = training_precision(model_config, train_config, self.device, self.team)
        self.model = new_model(model_config, train_config, self.device, self.team, init_weights)
        self.starts_validated = init_weights is not None and not resume
        self.optimizer = build_optimizer(self.model, train_config)
        self._lock = threading.Lock()     # guards weights against a snapshot taken mid-update
        self._step = TrainStep(wrap_for_ranks(self.model, self.team, self.device), self.optimizer, self.device,
                               self.precision, train_config.grad_clip, self._lock)
        self.step, self.elapsed, self.chunk, self.hidden = 0, 0.0, 0, None
        self.best_val, self.last_val, self.train_loss = math.inf, math.inf, math.nan
        self.log_window = [0.0, 0]        # train-loss sum and count since the last metrics row
        self.lr_scale, self.rollbacks = 1.0, 0
        self._validated_at = -1
        self.clock = WorkClock()          # the budget's seconds: stops and stalls left out
        self._nan_at = faults.nan_steps()
        self.writer = RunWriter(self.rundir, self.team, self.device, corpus, train_config, self.callbacks)
        if resume:
            self._restore()

    @property
    def run_dir(self) -> Path:
        return self.rundir.path

    @property
    def saved_step(self) -> int | None:
        """The step last/ holds (None before the first save)."""
        return self.writer.saved_step

    def progress(self) -> float:
        return self.cfg.budget_fraction(self.step, self.elapsed)

    # -- the loop --------------------------------------------------------------------
    def run(self, stop: threading.Event | None = None, pause: threading.Event | None = None,
            hurry: threading.Event | None = None) -> TrainResult:
        """Train until the budget is spent or `stop` is set; `pause` holds training (the time is
        not counted); `hurry`, set with `stop`, ends without the closing validation."""
        controls = Controls(self.team, stop, pause, hurry)
        exact = deterministic_compute(self.device) if self.cfg.deterministic else contextlib.nullcontext()
        # The one writer (rank 0 under torchrun); claiming settles what a crash left half-done.
        claim = self.rundir.claim() if self.team.writes else contextlib.nullcontext()
        with claim, exact:
            self.writer.trim_metrics(self.step)      # the steps a crash undid are done again
            if self.saved_step is None and not self.starts_validated:
                self._save(LAST)          # from the first step on, there is a checkpoint to go back to
            return self._loop(controls)

    def _loop(self, controls: Controls) -> TrainResult:
        self.threads.start()              # on this thread: OpenMP's thread count is per thread
        self.clock.restart()
        m = self.model.config
        self.callbacks.on_start(StartReport(self.run_dir, self.step, m.cell, m.layers, m.hidden,
                                            self.model.num_params(), self.device.type, self.precision,
                                            self.threads.choice.reason))
        if self.saved_step is None and self.starts_validated:
            self._validate()              # where the starting weights stand on this text (saves last/ too)
        rate = RateMeter()
        start_step, start_elapsed = self.step, self.elapsed
        while self.progress() < 1.0 and not controls.stop.is_set():
            if controls.pause.is_set():
                self.elapsed += self.clock.lap()
                controls.hold_while_paused()
                self.clock.restart()
                rate.restart()
                continue
            lr = lr_at(self.progress(), self.cfg) * self.lr_scale
            loss = self._train_step(lr)
            # The step's seconds into the budget; the same loss, clock and stop on every rank.
            loss, self.elapsed = controls.agree(loss, self.elapsed + self.clock.lap())
            if self.clock.stalled:
                rate.restart()            # a window with a stop in it says nothing of the speed
            if not math.isfinite(loss):
                self._roll_back(loss)
                self.clock.restart()
                rate.restart()
                continue
            chars_per_sec = rate.add(self.cfg.batch_size * self.cfg.seq_len, time.perf_counter())
            self.train_loss = loss if math.isnan(self.train_loss) else 0.95 * self.train_loss + 0.05 * loss
            self.log_window = [self.log_window[0] + loss, self.log_window[1] + 1]
            if (choice := self.threads.tick()) is not None:
                self.callbacks.on_threads(choice)
                rate.restart()      # the old window no longer says anything
            progress = self.progress()
            self.callbacks.on_step(StepReport(self.step, min(progress, 1.0), self.elapsed, eta(self.elapsed, progress),
                                              self.train_loss, lr, chars_per_sec, self.threads.choice.threads,
                                              self.clock.not_running))
            if self.step % self.cfg.log_every == 0:
                total, count = self.log_window
                self.writer.log(step=self.step, elapsed=round(self.elapsed, 3), train_loss=total / count,
                                chars_per_sec=round(chars_per_sec), lr=lr)
                self.log_window = [0.0, 0]
            if self.step % self.cfg.eval_every == 0 and progress < 1.0:
                self._validate()          # counts its own time (saves too): the budget is wall clock
                _, self.elapsed = controls.agree(0.0, self.elapsed)
            elif self.cfg.sample_every and self.step % self.cfg.sample_every == 0 and progress < 1.0 and self.team.writes:
                self._write_sample()
        if self.step > 0 and self._validated_at != self.step:
            if controls.stop.is_set():
                self.callbacks.on_stopping(self.step, validating=not controls.hurry.is_set())
                self._save(LAST)          # the step is kept before anything slow (see the module's docstring)
            if not controls.hurry.is_set():
                self._validate()          # also saves last/ (and best/ if it improved)
        if self.team.solo and self.step > start_step and rate.rate:
            with contextlib.suppress(OSError):   # a figure for later auto choices: nothing if it cannot be kept
                record_run(self.model.config, self.cfg, self.precision, rate.rate)
        session_chars = (self.step - start_step) * self.cfg.batch_size * self.cfg.seq_len
        return TrainResult(self.run_dir, self.step, self.elapsed, self.best_val, self.last_val,
                           stopped_early=self.progress() < 1.0, best_step=self.writer.saved_best_step(),
                           chars_per_sec=session_chars / max(self.elapsed - start_elapsed, 1e-9),
                           validated=self.step in (self._validated_at, start_step), not_running=self.clock.not_running)

    def _train_step(self, lr: float) -> float:
        if self.chunk >= self.batches.chunks_per_epoch:
            self.chunk = 0                # the next pass; the state carries on (StreamBatches says why)
        if self.step + 1 in self._nan_at:
            self._nan_at.discard(self.step + 1)
            faults.poison(self.model)
        loss, self.hidden = self._step(*self.batches.batch(self.chunk), self.hidden, lr)
        self.chunk += 1
        self.step += 1
        return loss

    def _validate(self) -> None:
        self.elapsed += self.clock.lap()
        self._validated_at = self.step
        self.last_val = validation_loss(self.model, self.val_sample, self.device, self.precision, self.team)
        improved = self.last_val < self.best_val
        self.best_val = min(self.best_val, self.last_val)
        sample = self._sample() if self.team.writes else ""
        self.elapsed += self.clock.lap()
        self.writer.log(step=self.step, elapsed=round(self.elapsed, 3), val_loss=self.last_val,
                        train_loss=_finite(self.train_loss))      # none yet at a fine-tune's step 0: null, not NaN
        self.callbacks.on_eval(EvalReport(self.step, self.elapsed, self.train_loss, self.last_val, self.best_val, sample))
        if improved:
            self._save(BEST)
        self._save(LAST)
        self.elapsed += self.clock.lap()           # saving is wall clock too

    def _sample(self) -> str:
        return training_sample(self.model, self.corpus.vocab, self.device, self.cfg.sample_length, self.step)

    def _write_sample(self) -> None:
        """A sample between validations (the app's, to watch the text change): milliseconds,
        counted in the budget like everything else."""
        self.elapsed += self.clock.lap()
        text = self._sample()
        self.elapsed += self.clock.lap()
        self.callbacks.on_sample(SampleReport(self.step, self.elapsed, text))

    def _roll_back(self, loss: float) -> None:
        """A NaN/Inf loss: the weights are lost. Go back to last/ with the learning rate halved;
        after MAX_ROLLBACKS such returns in a run, stop."""
        failed_step = self.step
        if self.rollbacks >= MAX_ROLLBACKS:
            raise TrainingDiverged.at(loss, failed_step, self.lr_scale, self.saved_step, self.rundir.last)
        scale, rollbacks = self.lr_scale, self.rollbacks     # a run's count, not the checkpoint's
        self._restore()
        self.lr_scale, self.rollbacks = scale / 2, rollbacks + 1
        self.writer.trim_metrics(self.step)
        self.writer.log(step=self.step, elapsed=round(self.elapsed, 3), rollback=f"{loss} at step {failed_step}",
                        lr_scale=self.lr_scale)
        self.callbacks.on_rollback(RollbackReport(failed_step, loss, self.step, self.lr_scale, self.rollbacks))

    # -- writing the run (charlm.train.saving) ----------------------------------------------
    def _save(self, which: str) -> None:
        state = ResumeState(self.step, self.elapsed, self.chunk, {}, _finite(self.best_val), _finite(self.train_loss),
                            list(self.log_window), self.lr_scale, self.rollbacks)
        val_loss = _finite(self.last_val) if self._validated_at == self.step else None   # none at this step yet
        self.writer.save(which, self.model, val_loss, self.optimizer, self.hidden, state)

    def _restore(self) -> None:
        """Where last/ stood: weights, optimizer, random states (charlm.train.saving) and the counts."""
        self.hidden, state = self.writer.restore(self.model, self.optimizer, self.streams, self._lock)
        self.step, self.elapsed, self.chunk = state.step, state.elapsed, state.chunk
        self.best_val = state.best_val_loss
        self.train_loss = math.nan if state.train_loss is None else state.train_loss
        self.log_window = list(state.log_window)
        self.lr_scale, self.rollbacks = state.lr_scale, state.rollbacks

    def snapshot(self) -> CharRNN:
        """A copy of the current weights (on the CPU, in eval mode) that training will not touch."""
        with self._lock:
            model = copy.deepcopy(self.model)
        return model.to("cpu").eval()


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


class RateMeter:
    """Characters per second over windows of about a second: steps are too short to time one
    by one, and a longer window would hide the threads changing."""

    def __init__(self) -> None:
        self.rate = 0.0
        self.restart()

    def restart(self) -> float:
        """A new window from now (after a pause, a rollback, a change of threads; the last
        figure stands until the new window has one); returns now."""
        self.chars, self.start = 0, time.perf_counter()
        return self.start

    def add(self, chars: int, now: float) -> float:
        """Count `chars` done by `now`; the rate of the last full window (or of this one, at first)."""
        self.chars += chars
        if now - self.start > 1.0:
            self.rate = self.chars / (now - self.start)
            self.chars, self.start = 0, now
        elif not self.rate:
            self.rate = self.chars / max(now - self.start, 1e-9)
        return self.rate
