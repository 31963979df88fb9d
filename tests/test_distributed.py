"""Training under torchrun, for real: two CPU ranks (gloo) on a tiny model, against one process
with the same global batch.

The tolerance, 1e-4 nats/char on every logged loss: the two runs do the same arithmetic on the
same numbers except for the order of some sums (each rank's matmuls over its half of the
streams; the gradient averaged across ranks rather than summed in one backward), so they differ
by float32 rounding (~1e-7 per step), which the optimiser carries along but does not amplify
much in 24 steps (measured: at most 4e-7).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from safetensors.torch import load_file

from charlm.errors import UsageError
from charlm.runs.metrics import read_metrics
from charlm.train.distributed import Team
from tests.conftest import ROOT, TINY_TEXT

TOLERANCE = 1e-4
FLAGS = ["--preset", "tiny", "--batch-size", "8", "--seq-len", "32", "--dropout", "0", "--eval-every", "8",
         "--log-every", "1", "--precision", "fp32", "--device", "cpu", "--seed", "3", "--quiet"]


def charlm(*args: str, ranks: int = 1, cwd=None) -> subprocess.CompletedProcess:
    launch = [sys.executable, "-m", "charlm"] if ranks == 1 else \
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}", "-m", "charlm"]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    return subprocess.run([*launch, *args], capture_output=True, text=True, cwd=cwd or ROOT, env=env, timeout=300)


def losses(run) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    rows = read_metrics(run / "metrics.jsonl")
    return ([(r["step"], r["train_loss"]) for r in rows if "lr" in r],
            [(r["step"], r["val_loss"]) for r in rows if "val_loss" in r])


def assert_close(a, b):
    assert [s for s, _ in a] == [s for s, _ in b], (a, b)        # the same rows, each written once
    worst = max(abs(x - y) for (_, x), (_, y) in zip(a, b))
    assert worst <= TOLERANCE, (worst, a, b)


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text(TINY_TEXT * 3, encoding="utf-8")
    return path


@pytest.mark.slow
def test_two_ranks_learn_what_one_process_learns_with_the_same_global_batch(tmp_path, corpus):
    one, two = tmp_path / "one", tmp_path / "two"
    single = charlm("train", str(corpus), "--out", str(one), "--steps", "24", *FLAGS)
    pair = charlm("train", str(corpus), "--out", str(two), "--steps", "24", *FLAGS, ranks=2)
    assert single.returncode == 0, single.stderr
    assert pair.returncode == 0, pair.stdout + pair.stderr
    assert pair.stdout.count("done: 24 steps") == 1          # rank 0 reports, the other is silent
    (train1, val1), (train2, val2) = losses(one), losses(two)
    assert len(train1) == 24 and len(val1) == 3
    assert_close(train1, train2)
    assert_close(val1, val2)                                  # validation summed over the ranks' streams
    assert train2[-1][1] < train2[0][1] - 0.5                 # and it learned
    assert sorted(p.name for p in two.iterdir() if not p.name.startswith(".")) == \
        sorted(p.name for p in one.iterdir() if not p.name.startswith("."))

    # The checkpoint holds the state of all 8 streams, 4 from each rank (had each rank trained
    # all 8, the losses would agree as well, at twice the work: this tells), and one process
    # goes on from the two ranks' run as it goes on from its own.
    state = load_file(two / "last" / "resume.safetensors")
    assert state["hidden.0"].shape == load_file(one / "last" / "resume.safetensors")["hidden.0"].shape
    assert state["hidden.0"].shape[1] == 8 and state["rng.torch.ranks"].shape[0] == 2
    for run in (one, two):
        done = charlm("train", "--resume", str(run), "--steps", "16", "--quiet")      # 16 more: to 40
        assert done.returncode == 0, done.stderr
    assert_close(losses(one)[0], losses(two)[0])
    assert_close(losses(one)[1], losses(two)[1])


@pytest.mark.slow
def test_two_ranks_resume_a_run_and_refuse_a_batch_they_cannot_share(tmp_path, corpus):
    run = tmp_path / "run"
    first = charlm("train", str(corpus), "--out", str(run), "--steps", "16", *FLAGS, ranks=2)
    assert first.returncode == 0, first.stdout + first.stderr
    more = charlm("train", "--resume", str(run), "--steps", "8", "--quiet", ranks=2)     # 8 more: to 24
    assert more.returncode == 0, more.stdout + more.stderr
    steps = [s for s, _ in losses(run)[0]]
    assert steps == list(range(1, 25))                        # every step once, none lost or repeated

    odd = charlm("train", str(corpus), "--out", str(tmp_path / "odd"), "--steps", "8", *FLAGS[:2],
                 "--batch-size", "7", ranks=2)
    assert odd.returncode != 0
    assert odd.stderr.count("charlm: error: --batch-size 7 cannot be shared evenly by 2 ranks") == 1
    assert not (tmp_path / "odd").exists()


def test_each_rank_gets_its_own_streams_and_together_all_of_them():
    shares = [Team(rank=r, world=4).streams(32) for r in range(4)]
    assert [list(range(32))[s] for s in shares] == [list(range(i * 8, i * 8 + 8)) for i in range(4)]
    assert Team().streams(7) == slice(0, 7)
    with pytest.raises(UsageError, match="--batch-size 16"):
        Team(rank=0, world=4).streams(15)


def test_ranks_share_the_cores_of_their_machine(monkeypatch):
    monkeypatch.setattr("charlm.machine.threads.usable_cores", lambda: 16.0)
    assert Team(rank=1, world=8, local_rank=1, local_world=4).threads() == 4
    assert Team(rank=0, world=2, local_rank=0, local_world=2).threads() == 8
    assert Team().threads() is None                          # one process: the thread governor decides
