"""What a run writes while it trains, and reads back to go on: metrics rows, best/ and last/
(with everything that continues the run exactly), and last/ restored. A failed write (a full
disk, a read-only directory) stops training in one line, the checkpoint before it intact.
Where the files go is charlm.runs.directory's; their format is charlm.model.checkpoint's."""

from __future__ import annotations

import contextlib
import math
from dataclasses import replace
from pathlib import Path

import torch

from charlm.config import TrainConfig, to_dict
from charlm.corpus.encoded import EncodedCorpus
from charlm.errors import UsageError
from charlm.machine.device import seed_all
from charlm.model.checkpoint import load_checkpoint, load_resume_state, save_checkpoint
from charlm.model.network import CharRNN, Hidden
from charlm.runs.checkpoint_dir import read_meta
from charlm.runs.directory import CONFIG, LAST, ResumeState, RunDir
from charlm.runs.metrics import MetricsLog
from charlm.train.distributed import Team
from charlm.train.optim import optimizer_state, restore_optimizer
from charlm.train.reports import RunNotWritable, TrainCallbacks
from charlm.units import bits


class RunWriter:
    """The run directory as the trainer writes it. Under torchrun every rank calls in (the
    states are gathered from all), and rank 0 alone writes."""

    def __init__(self, rundir: RunDir, team: Team, device: torch.device, corpus: EncodedCorpus,
                 cfg: TrainConfig, callbacks: TrainCallbacks):
        self.rundir, self.team, self.device, self.corpus, self.cfg = rundir, team, device, corpus, cfg
        self.callbacks = callbacks
        self.saved_step: int | None = None   # the step last/ holds
        self.metrics = MetricsLog(rundir.metrics_path)

    @contextlib.contextmanager
    def writing(self, what: Path):
        """A failed write (a full disk, a read-only directory) stops training, saying so in one line."""
        try:
            yield
        except OSError as e:
            kept = (f"the checkpoint before it (step {self.saved_step}) is intact in {self.rundir.last}"
                    if self.saved_step is not None else "nothing had been saved yet")
            raise RunNotWritable(f"could not write {what} ({e.strerror or e}); {kept}; free some space or fix "
                                 f"the permissions, then continue with: charlm train --resume {self.rundir.path}") from e

    def log(self, **row) -> None:
        """One row of metrics.jsonl."""
        if self.team.writes:
            with self.writing(self.rundir.metrics_path):
                self.metrics.write(**row)

    def trim_metrics(self, step: int) -> None:
        """Drop the rows after `step`: the steps a crash or a rollback undid are done again."""
        if self.team.writes:
            with self.writing(self.rundir.metrics_path):
                self.rundir.trim_metrics(step)

    def save(self, which: str, model: CharRNN, val_loss: float | None, optimizer: torch.optim.Optimizer,
             hidden: Hidden | None, state: ResumeState) -> None:
        """best/ or last/, with where the run stands (`state`, `val_loss`: the last validation's);
        last/ also with what resumes the run: the optimizer's moments, the random states and the
        carried hidden state."""
        path = self.rundir.path / which
        best = state.best_val_loss
        metrics = {"step": state.step, "elapsed": round(state.elapsed, 3), "train_loss": state.train_loss,
                   "val_loss": val_loss, "best_val_loss": best, "best_val_bpc": None if best is None else bits(best)}
        resume = self._resume_tensors(optimizer, hidden, state) if which == LAST else None   # every rank: gathered
        if self.team.writes:
            corpus = {"name": self.corpus.name, "chars": len(self.corpus), "bytes": self.corpus.n_bytes,
                      "sha256": self.corpus.sha256, "val_fraction": self.cfg.val_fraction}
            with self.writing(path):
                save_checkpoint(path, model, self.corpus.vocab, self.cfg, corpus, metrics, resume)
        self.team.barrier()               # a rollback on any rank reads what was just written
        if which == LAST:
            self.saved_step = state.step
        self.callbacks.on_checkpoint(path)

    def _resume_tensors(self, optimizer: torch.optim.Optimizer, hidden: Hidden | None,
                        state: ResumeState) -> tuple[dict[str, torch.Tensor], ResumeState]:
        """Under torchrun: the carried state of all B streams and every rank's random state,
        gathered, so any number of ranks can resume the run."""
        team = self.team
        tensors, opt_state = optimizer_state(optimizer)
        rngs = {"rng.torch": torch.get_rng_state()}                  # dropout masks
        if self.device.type == "cuda":
            rngs["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        for key, rng in rngs.items():
            tensors[key] = rng
            if not team.solo:
                tensors[f"{key}.ranks"] = team.gather_rows(rng[None])    # (ranks, n)
        if hidden is not None:
            for i, h in enumerate(hidden if isinstance(hidden, tuple) else (hidden,)):
                tensors[f"hidden.{i}"] = team.gather_rows(h.float(), dim=1)       # (layers, B, H)
        return tensors, replace(state, optimizer=opt_state)

    def restore(self, model: CharRNN, optimizer: torch.optim.Optimizer, streams: slice,
                lock) -> tuple[Hidden | None, ResumeState]:
        """Weights, optimizer and random states from last/ (or its previous copy, if a save was
        cut off mid-swap); this rank's carried state and where the run stood."""
        where = self.rundir.resume_checkpoint()
        ckpt = load_checkpoint(where, self.device)
        if ckpt.corpus.get("sha256") not in (None, self.corpus.sha256):
            raise UsageError(f"{self.rundir.path} was trained on a different text than {self.corpus.name}",
                             "resume with the same corpus, or start a new run")
        if to_dict(ckpt.model_config) != to_dict(model.config):
            raise UsageError(f"{self.rundir.path} has a different model shape than the flags ask for",
                             "resume without model flags (the run's own config is used)")
        tensors, state = load_resume_state(where)
        with lock:
            model.load_state_dict(ckpt.model.state_dict())
            restore_optimizer(optimizer, tensors, state.optimizer)
        cpu_rng, cuda_rng = self._rank_rng(tensors, "rng.torch"), self._rank_rng(tensors, "rng.cuda")
        if cpu_rng is None:           # a rank the run did not have: masks of its own, from the seed
            seed_all(self.cfg.seed * 1_000_003 + self.team.rank + state.step)
        else:
            torch.set_rng_state(cpu_rng)
        if cuda_rng is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state(cuda_rng, self.device)
        hidden = [tensors[k][:, streams].to(self.device)                     # this rank's streams
                  for k in sorted(t for t in tensors if t.startswith("hidden."))]
        self.saved_step = state.step
        # best/ may be newer than last/ (a crash between their saves): never replace it with worse.
        state = replace(state, best_val_loss=min(_or_inf(state.best_val_loss), self.saved_best()))
        return (None if not hidden else tuple(hidden) if len(hidden) > 1 else hidden[0]), state

    def _rank_rng(self, tensors: dict[str, torch.Tensor], key: str) -> torch.Tensor | None:
        """This rank's saved random state (None: the run had no such rank when it was saved)."""
        ranks = tensors.get(f"{key}.ranks")
        if ranks is not None and self.team.rank < ranks.size(0):
            return ranks[self.team.rank].clone()
        return tensors.get(key) if self.team.rank == 0 else None

    def saved_best(self) -> float:
        """The validation loss best/ was saved at (inf when there is none, or it cannot be read)."""
        value = self._best_metrics().get("best_val_loss")
        return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else math.inf

    def saved_best_step(self) -> int | None:
        """The step best/ holds (None when there is none, or it cannot be read)."""
        step = self._best_metrics().get("step")
        return step if isinstance(step, int) else None

    def _best_metrics(self) -> dict:
        if not (self.rundir.best / CONFIG).is_file():
            return {}
        try:
            metrics = read_meta(self.rundir.best).get("metrics", {})
        except UsageError:
            return {}
        return metrics if isinstance(metrics, dict) else {}


def _or_inf(x: float | None) -> float:
    return math.inf if x is None else x
