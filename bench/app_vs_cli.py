"""Does the app train as well as the CLI in the same budget? Steps and quality, side by side.

Alternating rounds in this one invocation (C A C A ...), each its own process:
  cli  `charlm train shakespeare` with every default (5 minutes)
  app  the real app in a pseudo-terminal (so it draws all the while): every default (the app
       opens on Shakespeare and auto), Start pressed; it quits once the run says it is done
each then `charlm eval RUN --json` (one stream over the last 10 %). Prints steps and val
nats/char for every round, the app's steps as a share of the CLI's, and the machine.

    python -m bench.app_vs_cli [--rounds 2]

Each round also reports its own CPU seconds and the load everything else put on the machine
meanwhile: steps in a fixed time compare only between quiet rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from bench.cli import ROOT, charlm
from bench.machine import RoundLoad, describe
from bench.tui_pty import PtyApp
from charlm.config import TrainConfig

CORPUS = "shakespeare"              # what the app opens on
MINUTES = TrainConfig().budget_seconds / 60     # the default budget, both sides



def result(run: Path) -> dict:
    meta = json.loads((run / "last" / "config.json").read_text())
    best = json.loads((run / "best" / "config.json").read_text())
    val = json.loads(charlm("eval", str(run), "--json").stdout)["nats_per_char"]
    m = meta["model"]
    return {"steps": meta["metrics"]["step"], "val": val, "elapsed": meta["metrics"]["elapsed"],
            "model": f"{m['layers']}x{m['hidden']} {meta['train']['batch_size']}x{meta['train']['seq_len']}",
            "best_step": best["metrics"]["step"]}


def cli_round(out: Path) -> Path:
    charlm("train", CORPUS, "--out", str(out), "--quiet")
    return out


def app_round(home: Path) -> Path:
    """The app as a person uses it: wait for auto's choice, press s, wait for the end."""
    checkpoints = home / "checkpoints"
    env = {**os.environ, "CHARLM_CHECKPOINTS": str(checkpoints), "TERM": "xterm-256color"}
    app = PtyApp([sys.executable, "-m", "charlm"], cwd=ROOT, env=env, size=(120, 40))
    try:
        app.wait_for("ready · s starts", timeout=120)
        app.wait_for(r"\d+x\d+, \d+x64 \w+: ~", regex=True, timeout=180)      # auto has chosen
        app.send("s")
        app.wait_for("done; saved", timeout=MINUTES * 60 + 180)
        app.send("\x11")                                 # ctrl+q
        app.wait_exit(60)
    finally:
        app.close()
    (run,) = [p for p in checkpoints.iterdir() if p.is_dir()]
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    print(f"machine: {describe()}", flush=True)
    rows: dict[str, list[dict]] = {"cli": [], "app": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        charlm("corpus", "info", CORPUS)                 # fetched and encoded before any clock runs
        for i in range(args.rounds):
            for side in ("cli", "app"):
                with RoundLoad() as load:
                    run = cli_round(tmp / f"cli-{i}") if side == "cli" else app_round(tmp / f"app-{i}")
                r = {**result(run), "cpu": load.child_cpu, "others": load.others}
                rows[side].append(r)
                print(f"round {i + 1} {side}: {r['steps']:,} steps ({r['model']}), val {r['val']:.4f} nats/char, "
                      f"best at step {r['best_step']:,}, {load.wall:.0f} s wall, {load}", flush=True)
    steps = {k: statistics.mean(r["steps"] for r in v) for k, v in rows.items()}
    vals = {k: [r["val"] for r in v] for k, v in rows.items()}
    print(f"\nsteps: app {steps['app']:,.0f} vs cli {steps['cli']:,.0f} = {steps['app'] / steps['cli']:.1%} "
          f"(goal: within 5 %)")
    per_cpu = {k: sum(r["steps"] for r in v) / sum(r["cpu"] for r in v) for k, v in rows.items()}
    print(f"steps per CPU second (what the app itself costs, whatever else ran): app {per_cpu['app']:.2f} vs "
          f"cli {per_cpu['cli']:.2f} = {per_cpu['app'] / per_cpu['cli']:.1%}")
    busiest = max((r["others"] or 0.0) for v in rows.values() for r in v)
    if busiest > 0.1:
        print(f"note: other processes kept up to {busiest:.2f} cores busy in a round; steps in a fixed "
              f"time are only comparable between quiet rounds")
    print(f"val nats/char: app {', '.join(f'{v:.4f}' for v in vals['app'])} · cli "
          f"{', '.join(f'{v:.4f}' for v in vals['cli'])} (goal: the app within the CLI's spread)")


if __name__ == "__main__":
    main()
