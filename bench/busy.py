"""Training beside another busy process: chars/s idle vs next to a one-core CPU hog, one run.

Three sides, each round in its own process (thread settings are process-wide):
  idle          charlm's trainer on an idle machine (threads: one per free core)
  hog           the same, beside a process that keeps one core busy
  hog, fixed    the same beside the hog, but with a thread per core whatever the load
                (what charlm did before it looked at the load: OpenMP threads then wait at
                every barrier for the one that shares its core with the hog)
Rounds alternate (idle, hog, hog fixed, idle, ...) so a drifting machine slows all alike; each
figure is the median of its rounds. Goal: hog / idle >= 0.40.

    python -m bench.busy [--rounds 3] [--seconds 15] [--preset small]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from bench.machine import describe
from bench.train_speed import _configs, _corpus, charlm_round
from charlm.machine.threads import usable_cores

SIDES = ("idle", "hog", "hog-fixed")
LABELS = {"idle": "idle machine", "hog": "beside a one-core hog", "hog-fixed": "beside the hog, a thread per core"}
HOG = "while True: pass"
ROOT = Path(__file__).resolve().parents[1]


def run_side(side: str, args) -> dict:
    corpus = _corpus(args.corpus)
    model_cfg, train_cfg = _configs(args.preset, corpus)
    if side == "hog-fixed":
        train_cfg.threads = int(usable_cores())
    seen = {}
    rate = charlm_round(corpus, model_cfg, train_cfg, args.seconds, seen)
    return {"chars_per_sec": rate, "threads": seen.get("threads"), "reason": seen.get("reason")}


def _round_in_child(side: str, args) -> dict:
    hog = subprocess.Popen([sys.executable, "-c", HOG]) if side.startswith("hog") else None
    try:
        cmd = [sys.executable, "-m", "bench.busy", "--side", side, "--seconds", str(args.seconds),
               "--preset", args.preset] + (["--corpus", args.corpus] if args.corpus else [])
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=15.0, help="steady-state seconds per round")
    ap.add_argument("--preset", default="small")
    ap.add_argument("--corpus", default=None, help="text file (default: shakespeare via the catalog/mirror)")
    ap.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.side:
        print(json.dumps(run_side(args.side, args)))
        return
    corpus = _corpus(args.corpus)
    model_cfg, train_cfg = _configs(args.preset, corpus)
    print(f"machine: {describe()}")
    print(f"config: preset {args.preset}, {model_cfg.cell} {model_cfg.layers}x{model_cfg.hidden}, batch "
          f"{train_cfg.batch_size}x{train_cfg.seq_len}; {args.rounds} alternating rounds of {args.seconds:g}s; "
          f"hog: a Python busy loop ({usable_cores():g} usable cores)")
    rates: dict[str, list[float]] = {s: [] for s in SIDES}
    for r in range(args.rounds):
        parts = []
        for side in SIDES:
            res = _round_in_child(side, args)
            rates[side].append(res["chars_per_sec"])
            parts.append(f"{side} {res['chars_per_sec']:,.0f} ({res['threads']} thr)")
        print(f"  round {r + 1}: " + " · ".join(parts), flush=True)
    med = {s: statistics.median(v) for s, v in rates.items()}
    for s in SIDES:
        print(f"{LABELS[s]}: {med[s]:,.0f} chars/s (median)")
    ratio = med["hog"] / med["idle"]
    print(f"ratio hog/idle: {ratio:.2f}  (goal >= 0.40: {'met' if ratio >= 0.40 else 'NOT met'})")
    print(f"ratio hog/idle with a thread per core (the old behaviour): {med['hog-fixed'] / med['idle']:.2f}")


if __name__ == "__main__":
    main()
