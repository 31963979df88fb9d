"""What real machines do to a training process, timed from outside (issue 20).

- SIGTERM: `charlm train` of a model (default 2x512, tinyshakespeare) is sent SIGTERM after some
  seconds of training; the figure is the time from the signal to the exit (docker stop sends
  SIGKILL after 10 s), and the step last/ then holds. SIGINT (Ctrl-C, which validates after its
  save) is timed beside it for comparison.
- SIGSTOP: a 15 s run is stopped for 20 s, then continued; the figure is the wall time from the
  first metrics row to the final save of last/, less the stop, plus what the row had counted:
  the training the run got (goal: the budget, within 10 %).

    python -m bench.signals [--shape 2x512] [--precision fp32] [--after 20] [--corpus tinyshakespeare]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.machine import describe
from charlm.runs.metrics import read_metrics

ROOT = Path(__file__).resolve().parents[1]


def signals_delivered() -> None:
    """(A child's preexec_fn.) SIGINT and SIGHUP handled by default, as a terminal starts a
    program: started under `nohup` or as a background job they are ignored, charlm keeps them
    ignored (rightly), and a run measured or tested by sending them would never stop."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def _train(out: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "charlm", "train", *args, "--eval-every", "100000",
                             "--log-every", "5", "--quiet", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            preexec_fn=signals_delivered)


def _first_row(proc: subprocess.Popen, out: Path) -> dict:
    while not (out / "metrics.jsonl").exists() or not read_metrics(out / "metrics.jsonl"):
        if proc.poll() is not None:
            sys.exit(f"training ended before it began: {proc.communicate()[1][-2000:]}")
        time.sleep(0.02)
    return read_metrics(out / "metrics.jsonl")[0]


def time_signal(name: str, corpus: str, layers: str, hidden: str, precision: str, after: float, root: Path) -> str:
    out = root / f"run-{name}"
    proc = _train(out, corpus, "--layers", layers, "--hidden", hidden, "--precision", precision, "--minutes", "30")
    _first_row(proc, out)
    time.sleep(after)
    t0 = time.monotonic()
    proc.send_signal(getattr(signal, name))
    proc.communicate()
    seconds = time.monotonic() - t0
    step = json.loads((out / "last" / "resume.json").read_text())["step"]
    return f"{name}: exit {proc.returncode} {seconds:.2f} s after the signal, last/ at step {step}"


def time_stop(corpus: str, budget: float, stopped: float, root: Path) -> str:
    out = root / "run-stop"
    proc = _train(out, corpus, "--preset", "tiny", "--batch-size", "8", "--seq-len", "32", "--precision", "fp32",
                  "--minutes", str(budget / 60))
    counted = _first_row(proc, out)["elapsed"]
    first_seen = time.time()
    time.sleep(2)
    proc.send_signal(signal.SIGSTOP)
    time.sleep(stopped)
    proc.send_signal(signal.SIGCONT)
    stdout, _ = proc.communicate()
    trained = (out / "last" / "resume.json").stat().st_mtime - first_seen - stopped + counted
    said = next((line.strip() for line in stdout.splitlines() if "not counted" in line), "(not said)")
    ok = "met" if abs(trained - budget) <= 0.1 * budget else "NOT met"
    return (f"SIGSTOP {stopped:.0f} s in a {budget:.0f} s run: trained {trained:.2f} s (goal: {budget:.0f} s "
            f"within 10 %: {ok}); it said: {said}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default="tinyshakespeare")
    ap.add_argument("--shape", default="2x512", help="LAYERSxHIDDEN of the run sent SIGTERM")
    ap.add_argument("--precision", default="fp32", help="fp32 (any CPU) or auto")
    ap.add_argument("--after", type=float, default=20.0, help="seconds of training before the signal")
    ap.add_argument("--budget", type=float, default=15.0, help="seconds of the run stopped with SIGSTOP")
    ap.add_argument("--stopped", type=float, default=20.0, help="seconds it stays stopped")
    args = ap.parse_args()
    layers, hidden = args.shape.split("x")
    print(f"machine: {describe()}", flush=True)
    root = Path(tempfile.mkdtemp(prefix="charlm-signals-"))
    try:
        print(f"{args.shape} {args.precision} on {args.corpus}, signalled after {args.after:g} s of training:")
        for name in ("SIGTERM", "SIGINT"):
            print("  " + time_signal(name, args.corpus, layers, hidden, args.precision, args.after, root), flush=True)
        print(time_stop(args.corpus, args.budget, args.stopped, root))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
