"""Training throughput: charlm's Trainer vs a plain nn.LSTM loop, same config, one run.

Three sides, each in its own process so that process-wide settings cannot leak between them:
  charlm       the project's Trainer, as `charlm train` runs it
  plain        the loop a person would write from the PyTorch docs (glibc's default malloc)
  plain+alloc  the same loop after charlm's allocator setting (charlm/machine/allocator.py): the
               difference that is left is the trainer itself and, when the preset has
               dropout, charlm's locked dropout against nn.LSTM's per-element dropout
They run in alternating rounds (A B C A B C ...) so a noisy, shared machine slows all alike;
the figure is each side's median chars/s over its rounds, and the ratios.

    python -m bench.train_speed [--rounds 3] [--seconds 20] [--corpus PATH] [--preset medium]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from bench.machine import describe
from charlm.config import preset_configs
from charlm.corpus.encoded import encode_corpus
from charlm.corpus.files import source_of_path
from charlm.corpus.names import default_corpus
from charlm.machine.allocator import keep_freed_memory
from charlm.machine.device import autocast, pick_device
from charlm.model.network import param_count
from charlm.train.batches import StreamBatches
from charlm.train.reports import StepReport, TrainCallbacks
from charlm.train.speed import pick_precision
from charlm.train.trainer import Trainer

WARMUP_STEPS = 5


class _Timer(TrainCallbacks):
    """Stops the trainer after `seconds` of steady-state steps and reports chars/s."""

    def __init__(self, seconds: float, chars_per_step: int, stop: threading.Event):
        self.seconds, self.chars_per_step, self.stop = seconds, chars_per_step, stop
        self.t0 = self.n = None
        self.rate = 0.0

    def on_step(self, r: StepReport) -> None:
        now = time.perf_counter()
        if r.step == WARMUP_STEPS:
            self.t0, self.n = now, r.step
        elif self.t0 is not None and now - self.t0 >= self.seconds:
            self.rate = (r.step - self.n) * self.chars_per_step / (now - self.t0)
            self.stop.set()


def charlm_round(corpus, model_cfg, train_cfg, seconds: float, seen: dict | None = None) -> float:
    """chars/s of charlm's Trainer; `seen` gets the thread count it chose and why."""
    stop = threading.Event()
    timer = _Timer(seconds, train_cfg.batch_size * train_cfg.seq_len, stop)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(corpus, model_cfg, train_cfg, Path(tmp) / "run", timer)
        trainer.run(stop)
    if seen is not None:
        seen.update(threads=trainer.threads.choice.threads, reason=trainer.threads.choice.reason)
    return timer.rate


def plain_round(corpus, model_cfg, train_cfg, seconds: float) -> float:
    """The loop a person would write by hand from the PyTorch docs: the bar to beat."""
    device = pick_device(train_cfg.device)
    precision = pick_precision(train_cfg.precision, device)
    V, H, p = len(corpus.vocab), model_cfg.hidden, model_cfg.dropout
    emb = nn.Embedding(V, model_cfg.embed).to(device)
    rnn = nn.LSTM(model_cfg.embed, H, model_cfg.layers, batch_first=True, dropout=p).to(device)
    drop = nn.Dropout(p)
    head = nn.Linear(H, V).to(device)
    params = [*emb.parameters(), *rnn.parameters(), *head.parameters()]
    opt = torch.optim.AdamW(params, lr=train_cfg.lr)
    batches = StreamBatches(corpus.split(0.1)[0], train_cfg.batch_size, train_cfg.seq_len)
    hidden, step, t0 = None, 0, None
    while True:
        x, y = batches.batch(step % batches.chunks_per_epoch)
        x, y = x.to(device), y.to(device)
        with autocast(device, precision):
            out, hidden = rnn(emb(x), hidden)
            logits = head(drop(out))
        loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        hidden = tuple(h.detach() for h in hidden)
        loss.item()
        step += 1
        if step == WARMUP_STEPS:
            t0 = time.perf_counter()
        elif t0 is not None and time.perf_counter() - t0 >= seconds:
            return (step - WARMUP_STEPS) * x.numel() / (time.perf_counter() - t0)


SIDES = ("charlm", "plain", "plain+alloc")
LABELS = {"charlm": "charlm trainer", "plain": "plain nn.LSTM loop", "plain+alloc": "plain loop + allocator setting"}


def run_side(side: str, args) -> float:
    """One round of one side, in this process."""
    corpus = _corpus(args.corpus)
    model_cfg, train_cfg = _configs(args.preset, corpus)
    if side == "charlm":
        return charlm_round(corpus, model_cfg, train_cfg, args.seconds)
    if side == "plain+alloc":
        keep_freed_memory()
    return plain_round(corpus, model_cfg, train_cfg, args.seconds)


def _configs(preset: str, corpus):
    model_cfg, train_cfg = preset_configs(preset)
    model_cfg.vocab_size = len(corpus.vocab)
    train_cfg.steps, train_cfg.minutes, train_cfg.eval_every = 10**9, None, 10**9
    return model_cfg, train_cfg


def _round_in_child(side: str, args) -> float:
    cmd = [sys.executable, "-m", "bench.train_speed", "--side", side, "--seconds", str(args.seconds),
           "--preset", args.preset] + (["--corpus", args.corpus] if args.corpus else [])
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    return json.loads(out.stdout.strip().splitlines()[-1])["chars_per_sec"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=20.0, help="steady-state seconds per round")
    ap.add_argument("--corpus", default=None, help="text file (default: shakespeare via the catalog/mirror)")
    ap.add_argument("--preset", default="medium")
    ap.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)   # a child process: one round of one side
    args = ap.parse_args()
    if args.side:
        print(json.dumps({"chars_per_sec": run_side(args.side, args)}))
        return
    corpus = _corpus(args.corpus)          # fetch/encode once here, so children start from the cache
    model_cfg, train_cfg = _configs(args.preset, corpus)
    device = pick_device("auto")
    print(f"machine: {describe()}")
    print(f"config: preset {args.preset}, {model_cfg.cell} {model_cfg.layers}x{model_cfg.hidden} "
          f"({param_count(model_cfg):,} params), dropout {model_cfg.dropout:g}, batch {train_cfg.batch_size}x{train_cfg.seq_len}, "
          f"{device.type} {pick_precision('auto', device)}; {args.rounds} alternating rounds of {args.seconds:g}s, "
          "one process per side and round")
    rates: dict[str, list[float]] = {side: [] for side in SIDES}
    for r in range(args.rounds):
        for side in SIDES:
            rates[side].append(_round_in_child(side, args))
        print(f"  round {r + 1}: " + " · ".join(f"{LABELS[s]} {rates[s][-1]:,.0f}" for s in SIDES) + " chars/s", flush=True)
    med = {s: statistics.median(v) for s, v in rates.items()}
    for s in SIDES:
        print(f"{LABELS[s]}: {med[s]:,.0f} chars/s (median)")
    ratio = med["charlm"] / med["plain"]
    print(f"ratio charlm/plain: {ratio:.3f}  (goal >= 1.0: {'met' if ratio >= 0.98 else 'NOT met'}, 2% noise allowance)")
    rest = ("charlm's locked dropout vs the loop's per-element dropout" if model_cfg.dropout
            else "no dropout here, so ~1.0 means the trainer adds no overhead")
    print(f"ratio charlm/(plain + allocator setting): {med['charlm'] / med['plain+alloc']:.3f}  ({rest})")


def _corpus(spec):
    """The given file, else Shakespeare through the catalog (mirror, then URL)."""
    if spec:
        return encode_corpus(source_of_path(spec))
    source, notice = default_corpus()
    if notice:
        print(f"note: {notice}", file=sys.stderr)
    return encode_corpus(source)

if __name__ == "__main__":
    main()
