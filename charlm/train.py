"""The trainer: truncated BPTT over parallel streams, reporting through callbacks.

A UI drives it with two `threading.Event`s (stop, pause) and listens through a
`TrainCallbacks` object (minGPT's seam); it never needs to know about torch. Where it writes,
and how, is charlm.rundir's: the trainer claims its run directory while it trains.

No lost work: last/ is saved at the start and at every validation, each save atomic, so a kill
at any moment loses at most one evaluation interval. A NaN/Inf loss rolls back to last/ with
the learning rate halved (at most MAX_ROLLBACKS times); a run directory that cannot be written
stops training with the previous checkpoint intact.
"""

from __future__ import annotations

import contextlib
import copy
import math
import threading
import time
from pathlib import Path

import torch

from charlm import faults
from charlm.allocator import keep_freed_memory
from charlm.checkpoint import load_checkpoint, load_resume_state, read_meta, save_checkpoint
from charlm.config import ModelConfig, TrainConfig, to_dict
from charlm.data import EncodedCorpus, StreamBatches, validation_sample
from charlm.device import deterministic_compute, pick_device, pick_precision
from charlm.distributed import current_team
from charlm.errors import UsageError
from charlm.evaluate import evaluate
from charlm.footprint import check_fits
from charlm.metrics import MetricsLog
from charlm.model import CharRNN
from charlm.optim import build_optimizer, lr_at, optimizer_state, restore_optimizer
from charlm.reports import (MAX_ROLLBACKS, EvalReport, RollbackReport, RunNotWritable, SampleReport, StepReport,
                            TrainCallbacks, TrainingDiverged, TrainResult)
from charlm.rundir import BEST, LAST, ResumeState, RunDir
from charlm.sample import SampleControls, Sampler
from charlm.step import TrainStep
from charlm.threads import ThreadGovernor, usable_cores

SAMPLE_TEMPERATURE = 0.8    # evaluation samples: a little conservative, so progress reads clearly


class Trainer:
    def __init__(self, corpus: EncodedCorpus, model_config: ModelConfig, train_config: TrainConfig,
                 run_dir: Path, callbacks: TrainCallbacks | None = None, resume: bool = False,
                 init_weights: dict[str, torch.Tensor] | None = None):
        """`init_weights` (a state dict for this vocabulary, charlm.finetune.carried_weights)
        starts a new run from another run's weights instead of from random ones; the run then
        validates before its first step, so its curve shows where it started."""
        train_config.validate()
        keep_freed_memory()               # ~1.5x faster steps on glibc: see charlm/allocator.py
        self.corpus, self.cfg, self.rundir = corpus, train_config, RunDir(run_dir)
        self.callbacks = callbacks or TrainCallbacks()
        self.team = current_team()        # one process, or the ranks torchrun started (charlm.distributed)
        self.device = self.team.device(pick_device(train_config.device))
        if train_config.deterministic:
            # CPU kernels split their sums by thread: the count is fixed, and recorded with the
            # run, so a resumed run computes alike.
            train_config.threads = train_config.threads or ThreadGovernor().fixed or max(1, int(usable_cores()))
        self.threads = ThreadGovernor(train_config.threads or self.team.threads())
        train_ids, self.val_ids = corpus.split(train_config.val_fraction)
        if len(self.val_ids) < 2:
            raise UsageError(f"the validation split of {corpus.name} is empty", "use a longer text or a larger --val-fraction")
        self.val_sample = validation_sample(self.val_ids)    # bounded: the same windows at every validation
        self.streams = self.team.streams(train_config.batch_size)      # all B on one process
        self.batches = StreamBatches(train_ids, train_config.batch_size, train_config.seq_len, self.streams)
        model_config.vocab_size = len(corpus.vocab)
        check_fits(model_config, train_config, self.device)  # before anything is allocated
        self.precision = ("fp32" if train_config.deterministic else self.team.decide(
            lambda: pick_precision(train_config.precision, self.device, model_config, train_config)))
        torch.manual_seed(train_config.seed)
        self.model = CharRNN(model_config)
        if init_weights is not None:
            self.model.load_state_dict(init_weights)
        self.model.to(self.device)
        self.starts_validated = init_weights is not None and not resume
        if not self.team.solo:
            torch.manual_seed(train_config.seed * 1_000_003 + self.team.rank)   # each rank its own dropout masks
        self.optimizer = build_optimizer(self.model, train_config)
        self._lock = threading.Lock()     # guards weights against a snapshot taken mid-update
        self._step = TrainStep(self._trained_module(), self.optimizer, self.device, self.precision,
                               train_config.grad_clip, self._lock)
        self.step, self.elapsed, self.chunk, self.hidden = 0, 0.0, 0, None
        self.best_val, self.last_val, self.train_loss = math.inf, math.inf, math.nan
        self.log_window = [0.0, 0]        # train-loss sum and count since the last metrics row
        self.lr_scale, self.rollbacks = 1.0, 0
        self.saved_step: int | None = None   # the step last/ holds
        self._validated_at = -1
        self._nan_at = faults.nan_steps()
        if resume:
            self._restore()
        self.metrics = MetricsLog(self.rundir.metrics_path)

    @property
    def run_dir(self) -> Path:
        return self.rundir.path

    def _trained_module(self) -> torch.nn.Module:
        """What the step runs: the model, or under torchrun the model in DistributedDataParallel
        (which starts every rank from rank 0's weights and averages gradients in backward)."""
        if self.team.solo:
            return self.model
        from torch.nn.parallel import DistributedDataParallel
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(self.model, device_ids=ids)      # CharRNN has no buffers to sync

    # -- the budget ------------------------------------------------------------------
    def progress(self) -> float:
        return self.cfg.budget_fraction(self.step, self.elapsed)

    def eta(self, progress: float) -> float | None:
        if progress <= 0:
            return None
        return self.elapsed * (1.0 - progress) / progress

    # -- the loop --------------------------------------------------------------------
    def run(self, stop: threading.Event | None = None, pause: threading.Event | None = None) -> TrainResult:
        stop, pause = stop or threading.Event(), pause or threading.Event()
        exact = deterministic_compute(self.device) if self.cfg.deterministic else contextlib.nullcontext()
        # The one writer (rank 0 under torchrun); claiming settles what a crash left half-done.
        claim = self.rundir.claim() if self.team.writes else contextlib.nullcontext()
        with claim, exact:
            if self.team.writes:
                with self._writing(self.rundir.metrics_path):
                    self.rundir.trim_metrics(self.step)      # the steps a crash undid are done again
            if self.saved_step is None and not self.starts_validated:
                self._save(LAST)          # from the first step on, there is a checkpoint to go back to
            return self._loop(stop, pause)

    def _loop(self, request: threading.Event, pause: threading.Event) -> TrainResult:
        self.threads.start()              # on this thread: OpenMP's thread count is per thread
        self.callbacks.on_start(self)
        if self.saved_step is None and self.starts_validated:
            self._validate()              # where the starting weights stand on this text (saves last/ too)
        window_chars, window_start = 0, time.perf_counter()
        clock = time.perf_counter()
        chars_per_sec = 0.0
        start_step, start_elapsed = self.step, self.elapsed
        # Under torchrun a stop asked of one rank is acted on by all at the same step (`_agree`).
        stop = request if self.team.solo else threading.Event()
        while self.progress() < 1.0 and not stop.is_set():
            if pause.is_set():
                self.elapsed += time.perf_counter() - clock
                while pause.is_set() and not stop.is_set():
                    time.sleep(0.05)
                clock = window_start = time.perf_counter()
                window_chars = 0
                continue
            lr = lr_at(self.progress(), self.cfg) * self.lr_scale
            loss = self._train_step(lr)
            now = time.perf_counter()
            loss = self._agree(loss, now - clock, request, stop)
            if not math.isfinite(loss):
                self._roll_back(loss)
                clock = window_start = time.perf_counter()
                window_chars = 0
                continue
            clock = now
            window_chars += self.cfg.batch_size * self.cfg.seq_len
            self.train_loss = loss if math.isnan(self.train_loss) else 0.95 * self.train_loss + 0.05 * loss
            self.log_window = [self.log_window[0] + loss, self.log_window[1] + 1]
            if now - window_start > 1.0:
                chars_per_sec = window_chars / (now - window_start)
                window_chars, window_start = 0, now
            elif not chars_per_sec:
                chars_per_sec = window_chars / max(now - window_start, 1e-9)
            if (choice := self.threads.tick()) is not None:
                self.callbacks.on_threads(choice)
                window_chars, window_start = 0, now      # the old rate no longer says anything
            progress = self.progress()
            self.callbacks.on_step(StepReport(self.step, min(progress, 1.0), self.elapsed, self.eta(progress),
                                              self.train_loss, lr, chars_per_sec, self.threads.choice.threads))
            if self.step % self.cfg.log_every == 0:
                total, count = self.log_window
                self._log(step=self.step, elapsed=round(self.elapsed, 3), train_loss=total / count,
                          chars_per_sec=round(chars_per_sec), lr=lr)
                self.log_window = [0.0, 0]
            if self.step % self.cfg.eval_every == 0 and progress < 1.0:
                self._validate()
                clock = time.perf_counter()   # _validate added its own time (saves too): the budget is wall clock
                self._agree(0.0, 0.0, request, stop)
            elif self.cfg.sample_every and self.step % self.cfg.sample_every == 0 and progress < 1.0 and self.team.writes:
                self._write_sample()
                clock = time.perf_counter()
        if self.step > 0 and self._validated_at != self.step:
            self._validate()                  # also saves last/ (and best/ if it improved)
        session_chars = (self.step - start_step) * self.cfg.batch_size * self.cfg.seq_len
        return TrainResult(self.run_dir, self.step, self.elapsed, self.best_val, self.last_val,
                           stopped_early=self.progress() < 1.0,
                           chars_per_sec=session_chars / max(self.elapsed - start_elapsed, 1e-9))

    def _agree(self, loss: float, seconds: float, request: threading.Event, stop: threading.Event) -> float:
        """Count `seconds` into the budget; under torchrun, make the loss, the clock and a stop
        request the same on every rank (charlm.distributed), so all take the same branch next."""
        if self.team.solo:
            self.elapsed += seconds
            return loss
        loss, stopping, self.elapsed = self.team.agree(loss, request.is_set(), self.elapsed + seconds)
        if stopping:
            stop.set()
        return loss

    def _train_step(self, lr: float) -> float:
        if self.chunk >= self.batches.chunks_per_epoch:
            # The next pass over the text. The state is carried on, not reset: each stream's end
            # runs into its start like a scene change. Reset at every pass, the state never
            # outlived one stream (7.8k chars of tinyshakespeare at 128 streams), and one
            # 5-minute run's state drifted on the 111k-char stream `charlm eval` reads
            # (1.46 nats/char over 16 streams, 1.68 as one).
            self.chunk = 0
        if self.step + 1 in self._nan_at:
            self._nan_at.discard(self.step + 1)
            faults.poison(self.model)
        loss, self.hidden = self._step(*self.batches.batch(self.chunk), self.hidden, lr)
        self.chunk += 1
        self.step += 1
        return loss

    def _validate(self) -> None:
        t0 = time.perf_counter()
        self._validated_at = self.step
        team = self.team
        result = evaluate(self.model, self.val_sample, self.device, self.precision,
                          share=slice(team.rank, None, team.world))       # each rank some streams
        total, count = team.sum(result.nats_per_char * result.chars, result.chars)
        self.last_val = total / max(count, 1)
        improved = self.last_val < self.best_val
        self.best_val = min(self.best_val, self.last_val)
        sample = self._sample() if team.writes else ""
        t1 = time.perf_counter()
        self.elapsed += t1 - t0
        self._log(step=self.step, elapsed=round(self.elapsed, 3), val_loss=self.last_val,
                  train_loss=_finite(self.train_loss))      # none yet at a fine-tune's step 0: null, not NaN
        self.callbacks.on_eval(EvalReport(self.step, self.elapsed, self.train_loss, self.last_val, self.best_val, sample))
        if improved:
            self._save(BEST)
        self._save(LAST)
        self.elapsed += time.perf_counter() - t1     # saving is wall clock too

    def _sample(self) -> str:
        return Sampler(self.model, self.corpus.vocab, self.device).generate(
            length=self.cfg.sample_length, controls=SampleControls(SAMPLE_TEMPERATURE), seed=self.step)

    def _write_sample(self) -> None:
        """A sample between validations (the app's, to watch the text change): milliseconds,
        counted in the budget like everything else."""
        t0 = time.perf_counter()
        text = self._sample()
        self.elapsed += time.perf_counter() - t0
        self.callbacks.on_sample(SampleReport(self.step, self.elapsed, text))

    def _roll_back(self, loss: float) -> None:
        """A NaN/Inf loss: the weights are lost. Go back to last/ with the learning rate halved;
        after MAX_ROLLBACKS such returns in a run, stop."""
        failed_step = self.step
        if self.rollbacks >= MAX_ROLLBACKS:
            raise TrainingDiverged(
                f"the loss became {loss} at step {failed_step}, after {MAX_ROLLBACKS} rollbacks that lowered the "
                f"learning rate to {self.lr_scale:g}x; the last good checkpoint (step {self.saved_step}) is kept in "
                f"{self.rundir.last}; try a lower --lr or --grad-clip")
        scale, rollbacks = self.lr_scale, self.rollbacks     # a run's count, not the checkpoint's
        self._restore()
        self.lr_scale, self.rollbacks = scale / 2, rollbacks + 1
        report = RollbackReport(failed_step, loss, self.step, self.lr_scale, self.rollbacks)
        with self._writing(self.rundir.metrics_path):
            self.rundir.trim_metrics(self.step)
        self._log(step=self.step, elapsed=round(self.elapsed, 3), rollback=f"{loss} at step {failed_step}",
                  lr_scale=self.lr_scale)
        self.callbacks.on_rollback(report)

    # -- writing the run -------------------------------------------------------------------
    @contextlib.contextmanager
    def _writing(self, what: Path):
        """A failed write (a full disk, a read-only directory) stops training, saying so in one line."""
        try:
            yield
        except OSError as e:
            kept = (f"the checkpoint before it (step {self.saved_step}) is intact in {self.rundir.last}"
                    if self.saved_step is not None else "nothing had been saved yet")
            raise RunNotWritable(f"could not write {what} ({e.strerror or e}); {kept}; free some space or fix "
                                 f"the permissions, then continue with: charlm train --resume {self.rundir.path}") from e

    def _log(self, **row) -> None:
        if self.team.writes:
            with self._writing(self.rundir.metrics_path):
                self.metrics.write(**row)

    def _metrics(self) -> dict:
        return {"step": self.step, "elapsed": round(self.elapsed, 3), "train_loss": _finite(self.train_loss),
                "val_loss": _finite(self.last_val), "best_val_loss": _finite(self.best_val),
                "best_val_bpc": _finite(self.best_val / math.log(2))}

    def _corpus_meta(self) -> dict:
        return {"name": self.corpus.name, "chars": len(self.corpus), "bytes": self.corpus.n_bytes,
                "sha256": self.corpus.sha256, "val_fraction": self.cfg.val_fraction}

    def _save(self, which: str) -> None:
        path = self.rundir.path / which
        resume = self._resume_state() if which == LAST else None      # every rank: it gathers their states
        if self.team.writes:
            with self._writing(path):
                save_checkpoint(path, self.model, self.corpus.vocab, self.cfg, self._corpus_meta(), self._metrics(),
                                resume)
        self.team.barrier()               # a rollback on any rank reads what was just written
        if which == LAST:
            self.saved_step = self.step
        self.callbacks.on_checkpoint(path)

    def _resume_state(self) -> tuple[dict[str, torch.Tensor], ResumeState]:
        """What last/ needs to go on exactly (under torchrun: the carried state of all B streams
        and every rank's random state, gathered, so any number of ranks can resume the run)."""
        team = self.team
        tensors, opt_state = optimizer_state(self.optimizer)
        rngs = {"rng.torch": torch.get_rng_state()}                  # dropout masks
        if self.device.type == "cuda":
            rngs["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        for key, state in rngs.items():
            tensors[key] = state
            if not team.solo:
                tensors[f"{key}.ranks"] = team.gather_rows(state[None])    # (ranks, n)
        if self.hidden is not None:
            for i, h in enumerate(self.hidden if isinstance(self.hidden, tuple) else (self.hidden,)):
                tensors[f"hidden.{i}"] = team.gather_rows(h.float(), dim=1)       # (layers, B, H)
        return tensors, ResumeState(self.step, self.elapsed, self.chunk, opt_state, _finite(self.best_val),
                                    _finite(self.train_loss), list(self.log_window), self.lr_scale, self.rollbacks)

    def _restore(self) -> None:
        """Everything from last/ (or its previous copy, if a save was cut off mid-swap)."""
        where = self.rundir.resume_checkpoint()
        ckpt = load_checkpoint(where, self.device)
        if ckpt.corpus.get("sha256") not in (None, self.corpus.sha256):
            raise UsageError(f"{self.run_dir} was trained on a different text than {self.corpus.name}",
                             "resume with the same corpus, or start a new run")
        if to_dict(ckpt.model_config) != to_dict(self.model.config):
            raise UsageError(f"{self.run_dir} has a different model shape than the flags ask for",
                             "resume without model flags (the run's own config is used)")
        tensors, state = load_resume_state(where)
        with self._lock:
            self.model.load_state_dict(ckpt.model.state_dict())
            restore_optimizer(self.optimizer, tensors, state.optimizer)
        cpu_rng, cuda_rng = self._rank_rng(tensors, "rng.torch"), self._rank_rng(tensors, "rng.cuda")
        if cpu_rng is None:           # a rank the run did not have: masks of its own, from the seed
            torch.manual_seed(self.cfg.seed * 1_000_003 + self.team.rank + state.step)
        else:
            torch.set_rng_state(cpu_rng)
        if cuda_rng is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state(cuda_rng, self.device)
        hidden = [tensors[k][:, self.streams].to(self.device)                 # this rank's streams
                  for k in sorted(t for t in tensors if t.startswith("hidden."))]
        self.hidden = None if not hidden else (tuple(hidden) if len(hidden) > 1 else hidden[0])
        self.step, self.elapsed, self.chunk = state.step, state.elapsed, state.chunk
        self.saved_step = state.step
        # best/ may be newer than last/ (a crash between their saves): never replace it with worse.
        self.best_val = min(_or_inf(state.best_val_loss), _saved_best(self.rundir))
        self.train_loss = math.nan if state.train_loss is None else state.train_loss
        self.log_window = list(state.log_window)
        self.lr_scale, self.rollbacks = state.lr_scale, state.rollbacks

    def _rank_rng(self, tensors: dict[str, torch.Tensor], key: str) -> torch.Tensor | None:
        """This rank's saved random state (None: the run had no such rank when it was saved)."""
        ranks = tensors.get(f"{key}.ranks")
        if ranks is not None and self.team.rank < ranks.size(0):
            return ranks[self.team.rank].clone()
        return tensors.get(key) if self.team.rank == 0 else None

    # -- for a UI: the model as it is right now ----------------------------------------
    def snapshot(self) -> CharRNN:
        """A copy of the current weights (on the CPU, in eval mode) that training will not touch."""
        with self._lock:
            model = copy.deepcopy(self.model)
        return model.to("cpu").eval()


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _or_inf(x: float | None) -> float:
    return math.inf if x is None else x


def _saved_best(run: RunDir) -> float:
    """The validation loss best/ was saved at (inf when there is none, or it cannot be read)."""
    if not (run.best / "config.json").is_file():
        return math.inf
    try:
        value = read_meta(run.best).get("metrics", {}).get("best_val_loss")
    except UsageError:
        return math.inf
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else math.inf
