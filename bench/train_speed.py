"""Training throughput: charlm's Trainer vs a plain nn.LSTM loop, same config, one run.

Both sides run in alternating rounds (A B A B ...) so a noisy, shared machine slows both
alike; the figure is the median chars/s of each side's rounds, and their ratio.

    python -m bench.train_speed [--rounds 3] [--seconds 20] [--corpus PATH]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from bench.machine import describe
from charlm.config import preset_configs
from charlm.data import StreamBatches, encode_corpus, encode_text
from charlm.device import autocast, pick_device, pick_precision
from charlm.corpus import resolve
from charlm.model import param_count
from charlm.train import StepReport, TrainCallbacks, Trainer

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


def charlm_round(corpus, model_cfg, train_cfg, seconds: float) -> float:
    stop = threading.Event()
    timer = _Timer(seconds, train_cfg.batch_size * train_cfg.seq_len, stop)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(corpus, model_cfg, train_cfg, Path(tmp) / "run", timer)
        trainer.run(stop)
    return timer.rate


def plain_round(corpus, model_cfg, train_cfg, seconds: float) -> float:
    """The loop a person would write by hand from the PyTorch docs: the bar to beat."""
    device = pick_device(train_cfg.device)
    precision = pick_precision(train_cfg.precision, device)
    V, H = len(corpus.vocab), model_cfg.hidden
    emb = nn.Embedding(V, model_cfg.embed).to(device)
    rnn = nn.LSTM(model_cfg.embed, H, model_cfg.layers, batch_first=True).to(device)
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
            logits = head(out)
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=20.0, help="steady-state seconds per round")
    ap.add_argument("--corpus", default=None, help="text file (default: shakespeare via the catalog/mirror)")
    ap.add_argument("--preset", default="medium")
    args = ap.parse_args()
    corpus = _corpus(args.corpus)
    model_cfg, train_cfg = preset_configs(args.preset)
    model_cfg.vocab_size = len(corpus.vocab)
    train_cfg.steps, train_cfg.minutes, train_cfg.eval_every = 10**9, None, 10**9
    device = pick_device("auto")
    print(f"machine: {describe()}")
    print(f"config: preset {args.preset}, {model_cfg.cell} {model_cfg.layers}x{model_cfg.hidden} "
          f"({param_count(model_cfg):,} params), batch {train_cfg.batch_size}x{train_cfg.seq_len}, "
          f"{device.type} {pick_precision('auto', device)}; {args.rounds} alternating rounds of {args.seconds:g}s")
    ours, plain = [], []
    for r in range(args.rounds):
        plain.append(plain_round(corpus, model_cfg, train_cfg, args.seconds))
        ours.append(charlm_round(corpus, model_cfg, train_cfg, args.seconds))
        print(f"  round {r + 1}: plain loop {plain[-1]:,.0f} chars/s · charlm trainer {ours[-1]:,.0f} chars/s", flush=True)
    a, b = statistics.median(ours), statistics.median(plain)
    print(f"charlm trainer: {a:,.0f} chars/s (median)")
    print(f"plain nn.LSTM loop: {b:,.0f} chars/s (median)")
    print(f"ratio charlm/plain: {a / b:.3f}  (goal >= 1.0: {'met' if a >= b * 0.98 else 'NOT met'}, 2% noise allowance)")


def _corpus(spec):
    if spec:
        return encode_corpus(resolve(spec))
    try:
        from charlm.corpora import default_corpus
        return encode_corpus(default_corpus()[0])
    except ImportError:
        shared = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "tinyshakespeare.txt"
        return encode_corpus(resolve(str(shared))) if shared.exists() else encode_text("synthetic", "hello world. " * 100000)


if __name__ == "__main__":
    main()
