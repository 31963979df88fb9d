"""kill -9 at random moments of training, then `--resume`, over and over: no checkpoint is ever
half-written, every resume continues, at most one evaluation interval of work is lost, and (the
runs train with --deterministic) the whole interrupted run logs the losses of one uninterrupted
run, bit for bit, and ends with the same weights.

    python -m bench.kill_stress [--trials 20] [--via cli|app] [--steps 6000] [--eval-every 10]

--via cli kills `charlm train`; --via app kills the app, training headless through its own code
path (the Train screen's Start, then its resume of the run). Each kill comes at a uniformly
random moment up to --max-delay seconds after the process claimed its run directory (one in
five at a random moment of start-up instead: a kill there must be harmless too). After each kill every checkpoint in the run directory is loaded (safetensors
and JSON parsed, weights and optimizer state finite); `lost` is the last step logged (a row a
step) minus the step last/ holds. When the trials are done the run is resumed to the end, an
uninterrupted run of the same config is trained beside it, and the two are compared.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from charlm.runs.directory import LOCK

HERE = Path(__file__).resolve().parent.parent

STARTUP_KILLS = 0.2     # the share of kills that come during start-up rather than training
TINY = dict(batch_size=8, seq_len=32, device="cpu", precision="fp32", seed=3, threads=1, log_every=1,
            deterministic=True)


@dataclass
class Trial:
    n: int
    reached: int             # the last step logged before the kill
    kept: int | None         # the step last/ holds after it (None: nothing saved yet)
    mid_save: bool           # the kill left a new temporary or previous copy: it cut a save short
    problems: list[str]

    @property
    def lost(self) -> int:
        return max(0, self.reached - (self.kept or 0))


def corpus_text(chars: int = 20_000, seed: int = 0) -> str:
    """Plain sentences from a small vocabulary: learnable, so the losses move."""
    r = random.Random(seed)
    words = "the cat sat on a mat and dog ran to log while bird sang over tree near river".split()
    out, n = [], 0
    while n < chars:
        line = " ".join(r.choice(words) for _ in range(r.randint(4, 12))).capitalize() + "."
        out.append(line)
        n += len(line) + 1
    return "\n".join(out) + "\n"


def leftovers(run: Path) -> set[str]:
    """What saves cut short left: temporary copies, previous copies."""
    return {p.name for p in run.iterdir() if ".tmp-" in p.name or p.name.endswith(".old")} if run.is_dir() else set()


def check_run(run: Path) -> tuple[int | None, list[str]]:
    """Load every checkpoint in `run` as a reader would. Returns the step last/ holds and what is
    wrong (nothing, we hope). A temporary copy is a save in progress, not a checkpoint (nothing
    reads it; the next writer removes it); a previous copy beside its whole successor is on its
    way out, likewise."""
    import torch

    from charlm.errors import UsageError
    from charlm.model.checkpoint import load_checkpoint, load_resume_state
    from charlm.runs.directory import RunDir
    problems = []
    for d in sorted(p for p in run.iterdir() if p.is_dir()):
        if ".tmp-" in d.name or (d.name.endswith(".old") and (run / d.name[1:-4] / "config.json").is_file()):
            continue
        try:
            ckpt = load_checkpoint(d)
            tensors = list(ckpt.model.state_dict().values())
            if d.name in ("last", ".last.old"):
                resume, _state = load_resume_state(d)
                tensors += [t for k, t in resume.items() if t.is_floating_point()]
            if not all(bool(torch.isfinite(t).all()) for t in tensors):
                problems.append(f"{d.name}: weights or optimizer state not finite")
        except UsageError as e:
            problems.append(f"{d.name}: {e}")
    run_dir = RunDir(run)
    try:
        kept = run_dir.read_resume().step if run_dir.resumable() else None
    except UsageError as e:
        problems.append(str(e))
        kept = None
    return kept, problems


def last_logged_step(run: Path) -> int:
    from charlm.runs.metrics import read_metrics
    return max((r["step"] for r in read_metrics(run / "metrics.jsonl") if isinstance(r.get("step"), int)), default=0)


def cli_args(corpus: Path, run: Path, steps: int, eval_every: int) -> list[str]:
    """`charlm train` for the run: a new one, or --resume once it has a checkpoint."""
    from charlm.runs.directory import RunDir
    if RunDir(run).resumable() is not None:
        return ["train", "--resume", str(run), "--quiet"]
    flags = [f"--{k.replace('_', '-')}" + ("" if v is True else f"={v}") for k, v in TINY.items()]
    return ["train", str(corpus), "--out", str(run), "--preset", "tiny", "--steps", str(steps),
            "--eval-every", str(eval_every), *flags, "--quiet"]


def app_child(corpus: str, resume: str, steps: int, eval_every: int) -> None:
    """The app, headless, training until it is killed: Start on a new run, or resume `resume`."""
    from charlm.machine.allocator import keep_freed_memory
    keep_freed_memory()
    from charlm.tui.app import CharLMApp
    from charlm.tui.options import AppOptions
    options = AppOptions(corpus=corpus, preset="tiny", train=dict(TINY), budget=steps, budget_unit="steps",
                         eval_every=eval_every, time_presets=False)

    async def drive() -> None:
        app = CharLMApp(options)
        async with app.run_test(size=(100, 30)) as pilot:
            screen = app.screen
            if resume:
                screen.resume_run(Path(resume))
            else:
                while screen.corpus is None:
                    await pilot.pause(0.05)
                await pilot.press("s")
            while app.session.state != "idle" or app.session.last_step is None:
                await pilot.pause(0.1)
        os._exit(0)    # the run ended (its budget spent) before the kill

    asyncio.run(drive())


def launch(via: str, corpus: Path, run: Path, runs_root: Path, steps: int, eval_every: int, env: dict,
           log) -> subprocess.Popen:
    if via == "cli":
        cmd = [sys.executable, "-m", "charlm", *cli_args(corpus, run, steps, eval_every)]
    else:
        from charlm.runs.directory import RunDir
        resume = str(run) if run.exists() and RunDir(run).resumable() is not None else ""
        cmd = [sys.executable, "-m", "bench.kill_stress", "--app-child", str(corpus), resume, str(steps),
               str(eval_every)]
    return subprocess.Popen(cmd, cwd=HERE, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_until_training(proc: subprocess.Popen, runs_root: Path, timeout: float = 120.0) -> float:
    """When `proc` claimed its run directory (its pid in the run's lock file): training starts."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        for lock in runs_root.glob(f"*/{LOCK}"):
            try:
                if lock.read_text().strip() == str(proc.pid):
                    return time.monotonic()
            except OSError:
                pass
        time.sleep(0.01)
    return time.monotonic()


def app_run_dir(runs_root: Path) -> Path | None:
    """The run the app trains: the one with a checkpoint (a kill before the first leaves a
    directory with only its corpus record, and the next Start makes another)."""
    from charlm.runs.directory import RunDir
    found = sorted(p for p in runs_root.iterdir() if p.is_dir()) if runs_root.is_dir() else []
    saved = [p for p in found if RunDir(p).resumable() is not None]
    return (saved or found or [None])[-1]


def stress(trials: int, via: str, steps: int, eval_every: int, max_delay: float, seed: int, work: Path,
           out=print) -> bool:
    """Run the trials and the final comparison; print one line per trial. True when all held."""
    rng = random.Random(seed)
    corpus = work / "text.txt"
    corpus.write_text(corpus_text(), encoding="utf-8")
    runs_root = work / "checkpoints"
    env = {**os.environ, "CHARLM_CACHE": str(work / "cache"), "CHARLM_CHECKPOINTS": str(runs_root),
           "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    run = runs_root / "killed"         # --via app: the app names it; found after its first launch
    ok, results, startup = True, [], 3.0
    for n in range(1, trials + 1):
        log_path = work / f"trial-{n}.log"
        left_before = leftovers(run)
        with open(log_path, "wb") as log:
            launched = time.monotonic()
            proc = launch(via, corpus, run, runs_root, steps, eval_every, env, log)
            if rng.random() < STARTUP_KILLS:
                delay = rng.uniform(0.0, startup)
                when = f"killed {delay:.2f}s after launch, during start-up"
            else:
                started = wait_until_training(proc, runs_root)
                startup = started - launched
                delay = startup + rng.uniform(0.0, max_delay)
                when = f"killed {delay - startup:.2f}s into training"
            try:
                proc.wait(timeout=max(0.0, launched + delay - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()            # SIGKILL
                proc.wait()
        if via == "app":
            run = app_run_dir(runs_root) or run
        if proc.returncode not in (-9, 0):
            out(f"trial {n}: the run failed by itself (exit {proc.returncode}):\n{log_path.read_text()[-2000:]}")
            return False
        if not run.exists():
            out(f"trial {n}: {when}, before the run directory existed")
            continue
        reached = last_logged_step(run)
        kept, problems = check_run(run)
        trial = Trial(n, reached, kept, bool(leftovers(run) - left_before), problems)
        results.append(trial)
        if trial.lost > eval_every:
            problems.append(f"{trial.lost} steps lost, more than the evaluation interval")
        ok &= not problems
        out(f"trial {n}: {when} · last step logged {reached} · last/ holds "
            f"{'nothing yet' if kept is None else f'step {kept}'} · lost {trial.lost} step(s)"
            f"{' · cut a save short' if trial.mid_save else ''}{' · FAILED: ' + '; '.join(problems) if problems else ''}")
        if proc.returncode == 0 or (kept is not None and kept >= steps):
            # its budget spent (a kill after the last save still exits -9): nothing left to resume
            out(f"trial {n}: the run finished before the kill; no more trials")
            break
    if not ok:
        return False
    ok = finish_and_compare(run, corpus, work, env, out)
    lost = [t.lost for t in results]
    out(f"kills: {len(results)} · cut a save short: {sum(t.mid_save for t in results)} · steps lost: max "
        f"{max(lost, default=0)}, mean {sum(lost) / max(len(lost), 1):.1f} (eval interval {eval_every}) · "
        f"every checkpoint whole: {'yes' if all(not t.problems for t in results) else 'NO'}")
    return ok


def finish_and_compare(run: Path, corpus: Path, work: Path, env: dict, out) -> bool:
    """Resume the killed run to its end, train the same config without interruption, compare."""
    done = subprocess.run([sys.executable, "-m", "charlm", "train", "--resume", str(run), "--quiet"], cwd=HERE,
                          env=env, capture_output=True, text=True)
    if done.returncode != 0 and "already finished its budget" not in done.stderr:
        out(f"the final resume failed (exit {done.returncode}): {done.stderr.strip()}")
        return False
    straight = work / "straight"
    flags = straight_flags(run)
    ref = subprocess.run([sys.executable, "-m", "charlm", "train", str(corpus), "--out", str(straight), *flags,
                          "--quiet"], cwd=HERE, env=env, capture_output=True, text=True)
    if ref.returncode != 0:
        out(f"the uninterrupted run failed: {ref.stderr.strip()}")
        return False
    same_log, same_weights = compare(run, straight)
    out(f"resumed to the end: losses logged as by one uninterrupted run, bit for bit: "
        f"{'yes' if same_log else 'NO'} · final weights (last/ and best/) identical: {'yes' if same_weights else 'NO'}")
    return same_log and same_weights


def straight_flags(run: Path) -> list[str]:
    """`charlm train` flags that repeat the run's recorded config (the app's too)."""
    meta = json.loads((run / "last" / "config.json").read_text())
    m, t = meta["model"], meta["train"]
    flags = [f"--cell={m['cell']}", f"--layers={m['layers']}", f"--hidden={m['hidden']}", f"--embed={m['embed']}",
             f"--dropout={m['dropout']}"]
    for key in ("batch_size", "seq_len", "lr", "optimizer", "weight_decay", "grad_clip", "steps", "eval_every",
                "log_every", "val_fraction", "seed", "threads", "device", "precision"):
        flags.append(f"--{key.replace('_', '-')}={t[key]}")
    return flags + (["--deterministic"] if t.get("deterministic") else [])


def compare(run: Path, straight: Path) -> tuple[bool, bool]:
    """(the logged losses are the same rows, the saved weights the same bits)."""
    from safetensors.torch import load_file

    from charlm.runs.metrics import read_metrics

    def losses(d: Path):
        keys = ("step", "train_loss", "val_loss", "lr")
        return [tuple(r.get(k) for k in keys) for r in read_metrics(d / "metrics.jsonl")]

    def same_weights(a: Path, b: Path) -> bool:
        wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
        return wa.keys() == wb.keys() and all(wa[k].equal(wb[k]) for k in wa)

    rows = losses(run)
    return (len(rows) > 0 and rows == losses(straight),
            same_weights(run / "last", straight / "last") and same_weights(run / "best", straight / "best"))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--app-child"]:
        app_child(argv[1], argv[2], int(argv[3]), int(argv[4]))
        return 0
    p = argparse.ArgumentParser(prog="python -m bench.kill_stress", description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--via", choices=("cli", "app"), default="cli")
    p.add_argument("--steps", type=int, default=6000, help="the run's budget: more than the trials can spend")
    p.add_argument("--eval-every", type=int, default=10)
    p.add_argument("--max-delay", type=float, default=3.0, help="latest kill, seconds into training")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--keep", type=Path, help="work in this directory (kept) instead of a temporary one")
    args = p.parse_args(argv)
    max_delay = args.max_delay
    print(f"kill -9 stress via {args.via}: {args.trials} trials, kills up to {max_delay:g}s into training "
          f"({STARTUP_KILLS:.0%} during start-up instead), "
          f"eval every {args.eval_every} steps, budget {args.steps} steps")
    with tempfile.TemporaryDirectory(prefix="kill-stress-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        ok = stress(args.trials, args.via, args.steps, args.eval_every, max_delay, args.seed, work)
    print(f"{'held' if ok else 'FAILED'} ({time.monotonic() - t0:.0f}s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
