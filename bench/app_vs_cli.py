"""Does the app train as well as the CLI in the same budget? Steps and quality, side by side.

Alternating rounds in this one invocation (C A C A ...), each its own process:
  cli  `charlm train shakespeare --minutes M` with every default
  app  the real app in a pseudo-terminal (so it draws all the while): every default (the app
       opens on Shakespeare and auto), Start pressed; it quits once the run says it is done
each then `charlm eval RUN --json` (one stream over the last 10 %). Prints steps and val
nats/char for every round, the app's steps as a share of the CLI's, and the machine.

    python -m bench.app_vs_cli [--minutes 5] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.cli import ROOT, charlm
from bench.machine import describe
from bench.tui_pty import PtyApp

CORPUS = "shakespeare"              # what the app opens on



def result(run: Path) -> dict:
    meta = json.loads((run / "last" / "config.json").read_text())
    best = json.loads((run / "best" / "config.json").read_text())
    val = json.loads(charlm("eval", str(run), "--json").stdout)["nats_per_char"]
    m = meta["model"]
    return {"steps": meta["metrics"]["step"], "val": val, "elapsed": meta["metrics"]["elapsed"],
            "model": f"{m['layers']}x{m['hidden']} {meta['train']['batch_size']}x{meta['train']['seq_len']}",
            "best_step": best["metrics"]["step"]}


def cli_round(minutes: float, out: Path) -> dict:
    charlm("train", CORPUS, "--minutes", f"{minutes:g}", "--out", str(out), "--quiet")
    return result(out)


def app_round(minutes: float, home: Path) -> dict:
    """The app as a person uses it: wait for auto's choice, press s, wait for the end."""
    checkpoints = home / "checkpoints"
    env = {**os.environ, "CHARLM_CHECKPOINTS": str(checkpoints), "TERM": "xterm-256color"}
    app = PtyApp([sys.executable, "-m", "charlm"], cwd=ROOT, env=env, size=(120, 40))
    try:
        app.wait_for("ready · s starts", timeout=120)
        app.wait_for(r"\d+x\d+, \d+x64 \w+: ~", regex=True, timeout=180)      # auto has chosen
        app.send("s")
        app.wait_for("done; saved", timeout=60 * minutes + 180)
        app.send("\x11")                                 # ctrl+q
        app.wait_exit(60)
    finally:
        app.close()
    (run,) = [p for p in checkpoints.iterdir() if p.is_dir()]
    return result(run)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    print(f"machine: {describe()}", flush=True)
    rows: dict[str, list[dict]] = {"cli": [], "app": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        charlm("corpus", "info", CORPUS)                 # fetched and encoded before any clock runs
        for i in range(args.rounds):
            for side in ("cli", "app"):
                t0 = time.perf_counter()
                r = (cli_round(args.minutes, tmp / f"cli-{i}") if side == "cli"
                     else app_round(args.minutes, tmp / f"app-{i}"))
                rows[side].append(r)
                print(f"round {i + 1} {side}: {r['steps']:,} steps ({r['model']}), val {r['val']:.4f} nats/char, "
                      f"best at step {r['best_step']:,}, {time.perf_counter() - t0:.0f} s wall", flush=True)
    steps = {k: statistics.mean(r["steps"] for r in v) for k, v in rows.items()}
    vals = {k: [r["val"] for r in v] for k, v in rows.items()}
    print(f"\nsteps: app {steps['app']:,.0f} vs cli {steps['cli']:,.0f} = {steps['app'] / steps['cli']:.1%} "
          f"(goal: within 5 %)")
    print(f"val nats/char: app {', '.join(f'{v:.4f}' for v in vals['app'])} · cli "
          f"{', '.join(f'{v:.4f}' for v in vals['cli'])} (goal: the app within the CLI's spread)")


if __name__ == "__main__":
    main()
