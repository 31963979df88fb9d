"""Helpers shared by the core tests: tiny configs, an in-process training run, callbacks that
record what the trainer reports, and checks for the CLI's one-line errors."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
from pathlib import Path

import torch

from charlm.config import ModelConfig, TrainConfig
from charlm.corpus.encoded import encode_text
from charlm.corpus.vocab import UNK_ID
from charlm.train.reports import TrainCallbacks, TrainResult
from charlm.train.trainer import Trainer

from conftest import TINY_TEXT


def tiny_configs(**train) -> tuple[ModelConfig, TrainConfig]:
    """A model small enough to train 40 steps in well under a second, in fp32 on the CPU."""
    model = ModelConfig(layers=1, hidden=32, embed=8)
    cfg = TrainConfig(batch_size=8, seq_len=32, lr=1e-2, steps=40, eval_every=20, sample_length=40,
                      device="cpu", precision="fp32", seed=1)
    for k, v in train.items():
        if hasattr(model, k):
            setattr(model, k, v)
        else:
            assert hasattr(cfg, k), k
            setattr(cfg, k, v)
    return model, cfg


class Recorder(TrainCallbacks):
    """Keeps every report; `on_step_hook(trainer, report)` runs after each step (to stop, poison...).
    `trainer` is the one it was given to (make_trainer sets it)."""

    def __init__(self, on_step_hook=None):
        self.starts, self.steps, self.evals, self.checkpoints, self.samples = [], [], [], [], []
        self.hook = on_step_hook
        self.trainer = None

    def on_start(self, report):
        self.starts.append(report)

    def on_step(self, report):
        self.steps.append(report)
        if self.hook:
            self.hook(self.trainer, report)

    def on_eval(self, report):
        self.evals.append(report)

    def on_sample(self, report):
        self.samples.append(report)

    def on_checkpoint(self, path):
        self.checkpoints.append(Path(path))


def make_trainer(run_dir: Path, text: str = TINY_TEXT, callbacks=None, resume: bool = False,
                 **overrides) -> Trainer:
    model_cfg, train_cfg = tiny_configs(**overrides)
    trainer = Trainer(encode_text("tiny", text), model_cfg, train_cfg, run_dir, callbacks, resume=resume)
    if isinstance(callbacks, Recorder):
        callbacks.trainer = trainer
    return trainer


def train_tiny(run_dir: Path, callbacks=None, stop: threading.Event | None = None, resume: bool = False,
               **overrides) -> tuple[Trainer, TrainResult]:
    trainer = make_trainer(run_dir, callbacks=callbacks, resume=resume, **overrides)
    return trainer, trainer.run(stop)


def assert_usage_error(proc, *needles: str) -> str:
    """The CLI's contract for bad input: exit 2, one line on stderr, no traceback."""
    err = proc.stderr
    assert proc.returncode == 2, f"exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {err}"
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith("charlm: error: "), line
    assert "; " in line, f"no fix offered: {line}"
    for needle in needles:
        assert needle.lower() in line.lower(), f"{needle!r} not in {line!r}"
    return line


def tree_digest(root: Path) -> dict[str, str]:
    """Every file under `root` with a hash of its bytes: to prove nothing saved was lost."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(root).rglob("*")) if p.is_file() and p.name != ".lock"}   # .lock: a writer's, not saved work


@torch.no_grad()
def logits_along(model, prime_ids: list[int], produced: list[int]) -> list[torch.Tensor]:
    """The model's logits (1, V) before each produced character, computed as the sampler does
    (the prime in one call, then one character at a time), so results match it bit for bit."""
    model.eval()
    out, hidden = model(torch.tensor([prime_ids]))
    logits = [out[:, -1]]
    for i in produced:
        out, hidden = model(torch.tensor([[i]]), hidden)
        logits.append(out[:, -1])
    return logits


@torch.no_grad()
def greedy_after(model, prime_ids: list[int], produced: list[int], n: int) -> list[int]:
    """The argmax continuation (never <unk>) of `n` characters after the prime and `produced`,
    stepping the model exactly as the sampler does."""
    model.eval()
    out, hidden = model(torch.tensor([prime_ids]))
    for i in produced:
        out, hidden = model(torch.tensor([[i]]), hidden)
    seq = []
    for _ in range(n):
        logits = out[:, -1].float().clone()
        logits[:, UNK_ID] = -float("inf")
        seq.append(int(logits.argmax(-1)))
        out, hidden = model(torch.tensor([[seq[-1]]]), hidden)
    return seq


_HOLDER = ("import sys, time\nfrom charlm.runs.directory import RunDir\nwith RunDir(sys.argv[1]).claim():\n"
           "    print('locked', flush=True)\n    time.sleep(300)\n")


def held_by_another_process(run_dir: Path) -> subprocess.Popen:
    """A process that holds `run_dir`'s training lock (as a `charlm train` does) until killed."""
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(run_dir)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc
