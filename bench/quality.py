"""How good a model charlm's defaults make in 1, 2 and 5 minutes, against a plain nn.LSTM loop.

For each budget, one after the other in this one invocation:
  charlm   `charlm train CORPUS --minutes M` with every default (auto model, precision, threads),
           then `charlm eval RUN --json` (one stream over the last 10 %, fp32)
  plain    the loop a person writes from the PyTorch docs (2x512 nn.LSTM, 64 streams x 100
           chars, AdamW 2e-3, fp32, per-element dropout 0, state carried), trained for the same
           wall-clock minutes, evaluated the same way (one stream, carried state)
Each side runs in its own process. Prints val nats/char and chars/s for both, and the machine;
the figures are kept (charlm.analysis.references) so runs on this machine are shown beside them.

    python -m bench.quality [--minutes 1,2,5] [--corpus PATH]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.machine import describe

ROOT = Path(__file__).resolve().parents[1]
PLAIN = dict(layers=2, hidden=512, embed=64, batch=64, seq=100, lr=2e-3, dropout=0.0)


def plain_side(corpus_path: str | None, minutes: float, shape: dict = PLAIN) -> dict:
    """Train the plain loop (`shape`: nn.LSTM's layers, hidden, embed, dropout between layers and
    before the head; batch, seq, lr) for `minutes` of wall clock, then evaluate it as charlm eval does."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    from bench.train_speed import _corpus
    corpus = _corpus(corpus_path)
    train_ids, val_ids = corpus.split(0.1)
    V = len(corpus.vocab)
    torch.manual_seed(1337)
    emb = nn.Embedding(V, shape["embed"])
    rnn = nn.LSTM(shape["embed"], shape["hidden"], shape["layers"], batch_first=True, dropout=shape["dropout"])
    head, drop = nn.Linear(shape["hidden"], V), nn.Dropout(shape["dropout"])
    params = [*emb.parameters(), *rnn.parameters(), *head.parameters()]
    opt = torch.optim.AdamW(params, lr=shape["lr"])
    B, T = shape["batch"], shape["seq"]
    data = torch.from_numpy(train_ids.astype("int64"))
    B = min(B, max(1, (len(data) - 1) // (T + 1)))       # a small text holds fewer streams
    stream = (len(data) - 1) // B
    starts = torch.arange(B) * stream
    hidden, pos, steps, t0 = None, 0, 0, time.perf_counter()
    while time.perf_counter() - t0 < 60 * minutes:
        if pos + T + 1 > stream:
            pos = 0
        idx = starts[:, None] + pos + torch.arange(T + 1)[None, :]
        x, y = data[idx[:, :-1]], data[idx[:, 1:]]
        out, hidden = rnn(emb(x), hidden)
        loss = F.cross_entropy(head(drop(out)).flatten(0, 1), y.flatten())
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        hidden = tuple(h.detach() for h in hidden)
        pos, steps = pos + T, steps + 1
    elapsed = time.perf_counter() - t0
    rnn.eval()
    with torch.no_grad():   # one stream over the split, state carried: as `charlm eval` reads it
        val = torch.from_numpy(val_ids.astype("int64"))[None, :]
        total, hidden = 0.0, None
        for i in range(0, val.size(1) - 1, 512):
            x, y = val[:, i:i + 512], val[:, i + 1:i + 513]
            x = x[:, :y.size(1)]
            out, hidden = rnn(emb(x), hidden)
            total += F.cross_entropy(head(out).flatten(0, 1), y.flatten(), reduction="sum").item()
    return {"val": total / (val.size(1) - 1), "chars_per_sec": steps * B * T / elapsed, "steps": steps,
            "model": f"lstm {shape['layers']}x{shape['hidden']} d{shape['dropout']:g} (plain loop)"}


def charlm_side(corpus_path: str | None, minutes: float) -> dict:
    corpus = corpus_path or "shakespeare"
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        out = subprocess.run([sys.executable, "-m", "charlm", "train", corpus, "--minutes", str(minutes),
                              "--out", str(run), "--quiet"], capture_output=True, text=True, cwd=ROOT, check=True,
                             env={**os.environ, "COLUMNS": "250"})      # one line per message: parsed below
        ev = subprocess.run([sys.executable, "-m", "charlm", "eval", str(run), "--json"],
                            capture_output=True, text=True, cwd=ROOT, check=True)
        info = json.loads((run / "best" / "config.json").read_text())
    summary = next((line for line in out.stdout.splitlines() if line.startswith("done")), "")
    auto = next((line for line in out.stdout.splitlines() if line.startswith("auto:")), "")
    cps = float(summary.split(" chars/s")[0].rsplit(", ", 1)[-1].replace(",", "")) if "chars/s" in summary else math.nan
    m = info["model"]
    return {"val": json.loads(ev.stdout)["nats_per_char"], "chars_per_sec": cps,
            "steps": info["metrics"]["step"], "model": f"{m['cell']} {m['layers']}x{m['hidden']}", "auto": auto}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", default="1,2,5", help="budgets, comma-separated")
    ap.add_argument("--corpus", default=None, help="text file (default: shakespeare via the catalog/mirror)")
    ap.add_argument("--side", choices=("plain",), help=argparse.SUPPRESS)
    args = ap.parse_args()
    budgets = [float(m) for m in args.minutes.split(",")]
    if args.side:
        print(json.dumps(plain_side(args.corpus, budgets[0])))
        return
    from bench.train_speed import _corpus
    from charlm.analysis.references import record
    corpus = _corpus(args.corpus)               # fetched and encoded once, before any clock runs
    print(f"machine: {describe()}")
    print(f"corpus: {corpus.name}, {len(corpus):,} chars; val = last 10 %, one stream, fp32 (as `charlm eval`)")
    rows = []
    for minutes in budgets:
        ours = charlm_side(args.corpus, minutes)
        plain = json.loads(subprocess.run([sys.executable, "-m", "bench.quality", "--side", "plain", "--minutes",
                                           str(minutes)] + (["--corpus", args.corpus] if args.corpus else []),
                                          capture_output=True, text=True, cwd=ROOT, check=True).stdout.splitlines()[-1])
        rows.append((minutes, ours, plain))
        print(f"{minutes:g} min: charlm {ours['val']:.4f} nats/char ({ours['model']}, {ours['steps']:,} steps, "
              f"{ours['chars_per_sec']:,.0f} chars/s) · plain loop {plain['val']:.4f} ({plain['steps']:,} steps, "
              f"{plain['chars_per_sec']:,.0f} chars/s) · difference {plain['val'] - ours['val']:+.4f}", flush=True)
        print(f"    {ours['auto']}", flush=True)
        where = f"bench/quality.py on this machine ({time.strftime('%Y-%m-%d')})"
        record(corpus.sha256, f"charlm defaults, {minutes:g} min here", ours["val"], where)
        record(corpus.sha256, f"plain nn.LSTM loop, {minutes:g} min here", plain["val"], where)
    print("\nminutes   charlm   plain    (val nats/char, lower is better)")
    for minutes, ours, plain in rows:
        print(f"{minutes:7g}   {ours['val']:.4f}   {plain['val']:.4f}")


if __name__ == "__main__":
    main()
