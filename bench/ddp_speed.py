"""Training on several processes: chars/s of one process vs N torchrun ranks, and the share of a
step spent communicating, in one run on this machine.

    python -m bench.ddp_speed [--ranks 2] [--steps 80] [--preset small] [--batch-size 64]

1. `charlm train` as one process with all the cores this process may use;
2. the same command under `torchrun --standalone --nproc_per_node=N` (each rank 1/N of the
   cores and 1/N of the streams: the same global batch);
3. under torchrun again, the trainer's own step (charlm.train.update.TrainStep on the DDP-wrapped model)
   timed with the gradient all-reduce and without it (DDP's `no_sync`): the difference is what
   communication costs a step.
On one machine the ranks share its cores, so the best N ranks can do is the one process's speed
(1.0x): what is lost is DDP's overhead. Across machines each adds its cores.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.machine import describe

HERE = Path(__file__).resolve().parent.parent
SHARED = HERE.parent / "shared" / "corpora" / "tinyshakespeare.txt"


def train_flags(args) -> list[str]:
    return ["--preset", args.preset, "--batch-size", str(args.batch_size), "--seq-len", str(args.seq_len),
            "--steps", str(args.steps), "--eval-every", str(10 * args.steps), "--log-every", "1",
            "--precision", "fp32", "--device", "cpu", "--quiet"]


def steady_rate(run: Path, chars_per_step: int) -> float:
    """chars/s over the second half of the run's steps (start-up and first steps excluded)."""
    from charlm.runs.metrics import read_metrics
    rows = [r for r in read_metrics(run / "metrics.jsonl") if "lr" in r]
    half = rows[len(rows) // 2:]
    return (half[-1]["step"] - half[0]["step"]) * chars_per_step / (half[-1]["elapsed"] - half[0]["elapsed"])


def launch(ranks: int, module: str, *args: str, env: dict) -> subprocess.CompletedProcess:
    """`python -m module args`, as one process or under torchrun with `ranks` ranks."""
    head = [sys.executable, "-m"] if ranks == 1 else \
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}", "-m"]
    proc = subprocess.run([*head, module, *args], cwd=HERE, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"failed: {module} {' '.join(args)}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc


def communication_share(args) -> None:
    """Run under torchrun: time the trainer's step with and without the all-reduce (rank 0 prints)."""
    import torch
    from torch.nn.parallel import DistributedDataParallel

    from charlm.config import preset_configs
    from charlm.model.network import CharRNN
    from charlm.train.distributed import current_team, leave
    from charlm.train.optim import build_optimizer
    from charlm.train.update import TrainStep
    team = current_team()
    torch.set_num_threads(team.threads())
    model_cfg, train_cfg = preset_configs(args.preset)
    model_cfg.vocab_size, model_cfg.dropout = 66, 0.0
    torch.manual_seed(0)
    model = CharRNN(model_cfg)
    ddp = DistributedDataParallel(model, broadcast_buffers=False)
    step = TrainStep(ddp, build_optimizer(model, train_cfg), torch.device("cpu"), "fp32", 1.0)
    b = args.batch_size // team.world
    x = torch.randint(1, 66, (b, args.seq_len + 1))

    def timed(n: int, sync: bool) -> float:
        best = float("inf")
        for _ in range(n):
            team.barrier()
            t0 = time.perf_counter()
            with (ddp.no_sync() if not sync else torch.enable_grad()):
                step(x[:, :-1], x[:, 1:], None, 1e-3)
            best = min(best, time.perf_counter() - t0)
        return best

    timed(5, True)
    with_comm, without = [], []
    for _ in range(4):                       # interleaved: the machine's noise hits both alike
        with_comm.append(timed(8, True))
        without.append(timed(8, False))
    t_sync, t_local = min(with_comm), min(without)
    if team.writes:
        print(f"step with all-reduce {t_sync * 1e3:.1f} ms, without {t_local * 1e3:.1f} ms: "
              f"communication {max(0.0, t_sync - t_local) / t_sync:.0%} of a step")
    leave()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.ddp_speed", description=__doc__.split("\n\n")[0])
    p.add_argument("--ranks", type=int, default=2)
    p.add_argument("--steps", type=int, default=80)
    p.add_argument("--preset", default="small")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--corpus", type=Path, default=SHARED)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        communication_share(args)
        return 0
    from charlm.machine.threads import usable_cores
    print(f"machine: {describe()}")
    print(f"{args.preset}, global batch {args.batch_size}x{args.seq_len}, fp32, {args.steps} steps, "
          f"{int(usable_cores())} cores: 1 process vs {args.ranks} ranks (torchrun, gloo)")
    per_step = args.batch_size * args.seq_len
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "RANK", "WORLD_SIZE")}
    with tempfile.TemporaryDirectory(prefix="ddp-speed-") as tmp:
        env.update(CHARLM_CACHE=str(Path(tmp) / "cache"), PYTHONPATH=os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")]))
        rates = {}
        for ranks in (1, args.ranks):
            run = Path(tmp) / f"r{ranks}"
            launch(ranks, "charlm", "train", str(args.corpus), "--out", str(run), *train_flags(args), env=env)
            rates[ranks] = steady_rate(run, per_step)
        share = launch(args.ranks, "bench.ddp_speed", "--worker", "--preset", args.preset, "--batch-size",
                       str(args.batch_size), "--seq-len", str(args.seq_len), env=env).stdout.strip().splitlines()[-1]
    one, many = rates[1], rates[args.ranks]
    print(f"  1 process ({int(usable_cores())} threads): {one:,.0f} chars/s")
    print(f"  {args.ranks} ranks ({max(1, int(usable_cores()) // args.ranks)} thread(s) each): {many:,.0f} chars/s · "
          f"{many / one:.2f}x one process (bound on one machine: 1.0x, the same cores)")
    print(f"  {share}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
