"""The app's cost: training throughput inside the TUI vs headless, and key-press-to-screen
latency while training.

Both sides run as separate processes with the same OpenMP settings, on the same config (the app's default run: the default
corpus, the given preset, its validation and sample intervals), in alternating rounds (H T H T ...) so a
noisy, shared machine slows both alike, and the two runs' recorded configs are checked to be
equal. The TUI is the real app in a pseudo-terminal (so it really draws), driven by keys written
to the terminal. Throughput is wall-clock chars/s over each round's steps after the first 5
(evaluations included, as a person waits through them): headless from the trainer's own step
times, TUI from the step counts the screen shows and when they arrived.
Latency is from writing a key to the terminal to reading the screen update that shows it
(chart axis on the Train screen, temperature gauge on Generate), with training running.

    python -m bench.tui_speed [--rounds 2] [--seconds 15] [--presses 60] [--preset small] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.tui_pty import PtyApp
from charlm.tui.options import AppOptions

HERE = Path(__file__).resolve().parent.parent
_APP = AppOptions()
TUI_DEFAULTS = dict(eval_every=_APP.eval_every, sample_every=_APP.sample_every, sample_length=_APP.sample_length,
                    minutes=_APP.budget)     # the app's own defaults (charlm.tui.options)


WARMUP = 5          # steps before timing starts
STEP_SHOWN = r"step ([\d,]+)(?: / [\d,]+)? · loss"


def headless_child(preset: str, seconds: float, run_dir: str) -> None:
    """Train the app's default run without any UI for `seconds` after the first step; the time
    of every step goes to run_dir/step_times.json."""
    from charlm.config import preset_configs
    from charlm.corpus.encoded import encode_corpus
    from charlm.corpus.names import default_corpus
    from charlm.train.launch import new_trainer
    from charlm.train.reports import TrainCallbacks

    source, _ = default_corpus()
    corpus = encode_corpus(source)
    model_cfg, train_cfg = preset_configs(preset)
    model_cfg.vocab_size = len(corpus.vocab)
    train_cfg.eval_every, train_cfg.sample_length = TUI_DEFAULTS["eval_every"], TUI_DEFAULTS["sample_length"]
    train_cfg.sample_every = TUI_DEFAULTS["sample_every"]
    train_cfg.minutes, train_cfg.steps = TUI_DEFAULTS["minutes"], None
    stop = threading.Event()
    times: list[tuple[int, float]] = []

    class StopAfter(TrainCallbacks):
        def on_step(self, report) -> None:
            times.append((report.step, time.perf_counter()))
            if report.step == 1:
                threading.Timer(seconds, stop.set).start()

    new_trainer(corpus, source.name, model_cfg, train_cfg, Path(run_dir), StopAfter()).run(stop)
    (Path(run_dir) / "step_times.json").write_text(json.dumps(times))


def tui_child(preset: str) -> None:
    from charlm.tui.run import run_app
    options = AppOptions(preset=preset, time_presets=False)
    sys.exit(run_app(options))


def rate(run_dir: Path, times: list[tuple[int, float]]) -> tuple[float, dict]:
    """Chars/s between the first step after WARMUP and the last, and the run's recorded config."""
    meta = json.loads((run_dir / "last" / "config.json").read_text())
    steady = [(s, t) for s, t in times if s > WARMUP]
    if len(steady) < 2 or steady[-1][0] == steady[0][0]:
        raise SystemExit(f"too few steps in {run_dir} to measure ({len(times)} seen, the last {times[-1:]}): "
                         "use more --seconds")
    times = steady
    (s0, t0), (s1, t1) = times[0], times[-1]
    train = meta["train"]
    return (s1 - s0) * train["batch_size"] * train["seq_len"] / (t1 - t0), {"model": meta["model"], "train": train}


def child_env(root: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    # Both sides run with the environment a user has: any OpenMP setting the app made for itself
    # would show up in the ratio, as it should.
    env.update(CHARLM_CHECKPOINTS=str(root / "checkpoints"), CHARLM_CORPORA=str(root / "corpora"),
               CHARLM_CACHE=str(Path(env.get("BENCH_CACHE", root.parent / "cache"))), TERM="xterm-256color")
    shared = HERE.parent / "shared" / "corpora"
    if "CHARLM_MIRROR" not in env and shared.is_dir():
        env["CHARLM_MIRROR"] = str(shared)
    return env


def only_run(root: Path) -> Path:
    runs = [p for p in (root / "checkpoints").iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def headless_round(root: Path, preset: str, seconds: float) -> tuple[float, dict]:
    run_dir = root / "checkpoints" / "headless"
    subprocess.run([sys.executable, "-m", "bench.tui_speed", "--headless-child", preset, str(seconds), str(run_dir)],
                   cwd=HERE, env=child_env(root), check=True)
    return rate(run_dir, json.loads((run_dir / "step_times.json").read_text()))


def start_tui(root: Path, preset: str) -> PtyApp:
    app = PtyApp([sys.executable, "-m", "bench.tui_speed", "--tui-child", preset], cwd=HERE, env=child_env(root))
    app.wait_for("ready · s starts", timeout=180)
    app.send("s")
    app.wait_for(STEP_SHOWN, timeout=120, regex=True)
    return app


def tui_round(root: Path, preset: str, seconds: float) -> tuple[float, dict, float]:
    """(chars/s, config, share of the process's CPU time the UI thread used while training)."""
    app = start_tui(root, preset)
    try:
        first = app.matches(STEP_SHOWN)[0][0]
        ui0, all0 = app.cpu_ticks()
        time.sleep(max(seconds - (time.perf_counter() - first), 0))
        ui1, all1 = app.cpu_ticks()
        shown = [(int(m.group(1).replace(",", "")), t) for t, m in app.matches(STEP_SHOWN)]
        app.send("x")
        app.wait_for("saved", timeout=120)
        app.send("\x11")                      # ctrl+q: nothing trains any more, so it just quits
        app.wait_exit(60)
    finally:
        app.close()
    return (*rate(only_run(root), shown), (ui1 - ui0) / max(all1 - all0, 1))


def gauge_presses(app: PtyApp, n: int) -> list[float]:
    """Temperature up / down on the Generate screen, timed until the gauge shows it; an even
    number of presses, so the gauge ends where it began (0.80) for the next call."""
    times = []
    for i in range(n + n % 2):
        key, shows = ("\x1b[C", "0.85 ←/→") if i % 2 == 0 else ("\x1b[D", "0.80 ←/→")
        times.append(app.latency(key, shows))
        time.sleep(0.2)
    return times


def latencies(root: Path, preset: str, presses: int) -> dict[str, list[float]]:
    """Key-to-screen times (ms): idle first (the baseline this machine allows), then while
    training, for a chart redraw and a gauge change."""
    app = PtyApp([sys.executable, "-m", "bench.tui_speed", "--tui-child", preset], cwd=HERE, env=child_env(root))
    out: dict[str, list[float]] = {}
    try:
        app.wait_for("ready · s starts", timeout=180)
        app.send("2")
        app.wait_for("0.80 ←/→", timeout=30)
        out["idle (no training), generate: ←/→"] = gauge_presses(app, presses // 2)
        app.send("1")
        app.wait_for("ready · s starts", timeout=30)
        app.send("s")
        app.wait_for(STEP_SHOWN, timeout=120, regex=True)
        chart = out["training, train: c (chart axis)"] = []
        for _ in range(presses // 2):
            chart.append(app.latency("c", "minutes"))
            time.sleep(0.15)
            app.send("c")                     # back to steps (not timed: "steps" shows in every redraw)
            time.sleep(0.15)
        app.send("2")
        time.sleep(0.5)
        out["training, generate: ←/→ (temperature)"] = gauge_presses(app, presses // 2)
        app.send("\x11")                      # ctrl+q while training: the quit question
        app.wait_for("Save and quit", timeout=30)
        app.send("\r")
        app.wait_exit(120)
    finally:
        app.close()
    return out


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=15.0, help="training seconds per round")
    ap.add_argument("--presses", type=int, default=60, help="key presses timed on each of two screens")
    ap.add_argument("--preset", default="small", help="the app's default preset unless given")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads on both sides (OMP_NUM_THREADS); 1 steadies a machine shared with "
                         "other jobs, where a descheduled OpenMP thread stalls every step")
    ap.add_argument("--headless-child", nargs=3, metavar=("PRESET", "SECONDS", "RUN_DIR"), help=argparse.SUPPRESS)
    ap.add_argument("--tui-child", metavar="PRESET", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.headless_child:
        preset, seconds, run_dir = args.headless_child
        return headless_child(preset, float(seconds), run_dir)
    if args.tui_child:
        return tui_child(args.tui_child)

    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    from bench.machine import describe  # imports torch: not in the children before the app sets it up
    print(f"machine: {describe()}" + (f" (children: OMP_NUM_THREADS={args.threads})" if args.threads else ""))
    print(f"config: the app's default run with preset {args.preset} (eval every {TUI_DEFAULTS['eval_every']} steps); "
          f"{args.rounds} alternating rounds of {args.seconds:g}s training per side", flush=True)
    with tempfile.TemporaryDirectory(prefix="charlm-bench-") as tmp:
        base = Path(tmp)
        os.environ.setdefault("BENCH_CACHE", str(base / "cache"))
        tui, headless, ui_share = [], [], []
        for r in range(args.rounds):
            h, h_cfg = headless_round(base / f"h{r}", args.preset, args.seconds)
            t, t_cfg, share = tui_round(base / f"t{r}", args.preset, args.seconds)
            same = h_cfg == t_cfg
            headless.append(h)
            tui.append(t)
            ui_share.append(share)
            print(f"  round {r + 1}: headless {h:,.0f} chars/s · TUI {t:,.0f} chars/s (UI thread: {share:.1%} of "
                  f"the app's CPU) · same config: {'yes' if same else 'NO: ' + json.dumps([h_cfg, t_cfg])}",
                  flush=True)
        if tui:
            a, b = statistics.median(tui), statistics.median(headless)
            print(f"training in the TUI: {a:,.0f} chars/s (median) · headless: {b:,.0f} chars/s (median)")
            print(f"ratio TUI/headless: {a / b:.3f}  (goal >= 0.90: {'met' if a >= 0.9 * b else 'NOT met'}) · "
                  f"the UI thread used {statistics.median(ui_share):.1%} of the app's CPU time while training "
                  f"(load-independent)", flush=True)
        lat = latencies(base / "lat", args.preset, args.presses) if args.presses else {}
    if not lat:
        return
    for name, xs in lat.items():
        print(f"key-to-screen, {name}: p50 {pct(xs, 50):.1f} ms · p95 {pct(xs, 95):.1f} ms "
              f"· max {max(xs):.1f} ms ({len(xs)} presses)")
    training = [x for name, xs in lat.items() if name.startswith("training") for x in xs]
    p95 = pct(training, 95)
    print(f"key-to-screen while training, overall: p50 {pct(training, 50):.1f} ms · p95 {p95:.1f} ms  "
          f"(goal p95 <= 50 ms: {'met' if p95 <= 50 else 'NOT met'})")


if __name__ == "__main__":
    main()
