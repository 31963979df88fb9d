"""Training on several processes or machines: PyTorch's own engine (torchrun +
DistributedDataParallel), and the few rules charlm adds on top of it.

    torchrun --standalone --nproc_per_node=2 -m charlm train CORPUS ...

torchrun starts the processes (ranks) and sets RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE and
the rendezvous address; `current_team()` joins them (gloo for CPU tensors, NCCL for CUDA ones).
Without torchrun the team is one process and every method here costs nothing. (torch is imported
inside: the CLI asks `is_writer()` before it has any reason to load torch.)

The rules, each written once here and called from the trainer and the CLI:
- The global batch means what it means on one process: rank r trains streams
  [r*B/N, (r+1)*B/N) of the B that one process would lay out (`streams`), and DDP averages the
  gradients, so one step is one step of the same optimisation.
- Rank 0 alone decides what must be the same everywhere (the run directory's name, an auto-chosen
  model, a timed precision: `decide`) and alone writes (checkpoints, metrics, samples: `writes`).
- Every rank computes with its share of the cores (`threads`), so ranks do not fight over them.
- What steers the loop (the loss that may roll it back, the clock that ends a timed budget, a
  Ctrl-C or SIGTERM on any rank) is agreed across ranks every step (`agree`), so all ranks take the same
  branch and none waits forever in a collective the others skipped.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

from charlm.errors import UsageError

if TYPE_CHECKING:
    import torch

T = TypeVar("T")


@dataclass(frozen=True)
class Team:
    rank: int = 0
    world: int = 1               # ranks in all
    local_rank: int = 0
    local_world: int = 1         # ranks on this machine

    @property
    def solo(self) -> bool:
        return self.world == 1

    @property
    def writes(self) -> bool:
        """This rank writes the run: checkpoints, metrics, samples, output."""
        return self.rank == 0

    # -- what each rank computes with ----------------------------------------------------
    def streams(self, batch_size: int) -> slice:
        """This rank's share of the B parallel streams."""
        if batch_size % self.world:
            raise UsageError(f"--batch-size {batch_size} cannot be shared evenly by {self.world} ranks",
                             f"use a multiple of {self.world}, e.g. --batch-size {-(-batch_size // self.world) * self.world}")
        share = batch_size // self.world
        return slice(self.rank * share, (self.rank + 1) * share)

    def device(self, device: torch.device) -> torch.device:
        """Each rank on a machine takes its own GPU."""
        import torch
        if self.solo or device.type != "cuda":
            return device
        torch.cuda.set_device(self.local_rank)
        return torch.device("cuda", self.local_rank)

    def threads(self) -> int | None:
        """Compute threads for each rank: the machine's usable cores shared among its ranks
        (torchrun's default of OMP_NUM_THREADS=1 leaves most cores idle on a large machine).
        None on one process: the thread governor decides there."""
        if self.solo:
            return None
        from charlm.machine.threads import usable_cores
        return max(1, int(usable_cores()) // self.local_world)

    # -- agreeing ---------------------------------------------------------------------------
    def decide(self, choose: Callable[[], T], encode: Callable[[T], Any] = lambda v: v,
               decode: Callable[[Any], T] = lambda v: v) -> T:
        """`choose()` on rank 0, its result (sent as JSON through `encode`/`decode`) on every rank.
        A UsageError on rank 0 is raised on every rank, so all exit with the same one line."""
        if self.solo:
            return choose()
        message: dict = {}
        value = None
        if self.writes:
            try:
                value = choose()
                message = {"value": encode(value)}
            except UsageError as e:
                message = {"error": [e.problem, e.fix]}
        message = self._broadcast_json(message)
        if "error" in message:
            raise UsageError(*message["error"])
        return value if self.writes else decode(message["value"])

    def agree(self, loss: float, stop: bool, hurry: bool, elapsed: float) -> tuple[float, bool, bool, float]:
        """The mean loss, whether any rank was told to stop (and to hurry: a signal that wants the
        process gone soon), and the mean clock: the same on every rank, so every rank rolls
        back, stops, validates or not, and decays its rate together."""
        if self.solo:
            return loss, stop, hurry, elapsed
        import torch
        import torch.distributed as dist
        t = torch.tensor([loss, float(stop), float(hurry), elapsed], dtype=torch.float64)
        dist.all_reduce(t)
        return t[0].item() / self.world, t[1].item() > 0, t[2].item() > 0, t[3].item() / self.world

    def sum(self, *values: float) -> list[float]:
        """Each value summed over ranks (validation's loss total and character count)."""
        if self.solo:
            return list(values)
        import torch
        import torch.distributed as dist
        t = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(t)
        return t.tolist()

    def gather_rows(self, t: torch.Tensor, dim: int = 0) -> torch.Tensor:
        """Every rank's `t` concatenated along `dim` in rank order (the carried state of all B
        streams, for a checkpoint that any number of ranks can resume)."""
        if self.solo:
            return t
        import torch
        import torch.distributed as dist
        t = t.contiguous()
        parts = [torch.empty_like(t) for _ in range(self.world)]
        dist.all_gather(parts, t)
        return torch.cat(parts, dim=dim)

    def barrier(self) -> None:
        if not self.solo:
            import torch.distributed as dist
            dist.barrier()

    @contextlib.contextmanager
    def rank0_first(self):
        """Rank 0 goes first (a download, a cache built), the others once it is done (and find it)."""
        if not self.writes:
            self.barrier()
        yield
        if self.writes:
            self.barrier()

    def _broadcast_json(self, message: dict) -> dict:
        import torch
        import torch.distributed as dist
        data = json.dumps(message).encode() if self.writes else b""
        size = torch.tensor([len(data)], dtype=torch.int64)
        dist.broadcast(size, src=0)
        buf = torch.frombuffer(bytearray(data), dtype=torch.uint8) if self.writes else torch.empty(int(size), dtype=torch.uint8)
        dist.broadcast(buf, src=0)
        return message if self.writes else json.loads(buf.numpy().tobytes().decode())


def wrap_for_ranks(model: "torch.nn.Module", team: Team, device: "torch.device") -> "torch.nn.Module":
    """What a training step runs: the model itself, or under torchrun the model in
    DistributedDataParallel (which starts every rank from rank 0's weights and averages the
    gradients in backward)."""
    if team.solo:
        return model
    from torch.nn.parallel import DistributedDataParallel
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)      # CharRNN has no buffers to sync


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


@cache
def current_team() -> Team:
    """This process's team: one process, or the ranks torchrun started (joined on first call)."""
    if not launched_by_torchrun():
        return Team()
    env = os.environ
    team = Team(int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", 0)),
                int(env.get("LOCAL_WORLD_SIZE", env["WORLD_SIZE"])))
    import torch
    import torch.distributed as dist
    if not dist.is_initialized():
        # gloo carries CPU tensors (and the small agreements); NCCL, where there is CUDA, the gradients.
        dist.init_process_group("cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo")
    return team


def is_writer() -> bool:
    """Rank 0, or the only process: checked without joining a team (error messages use it)."""
    return os.environ.get("RANK", "0") == "0"


def let_rank0_speak() -> None:
    """On an error every rank meets (bad input), only rank 0 prints it; torchrun stops all ranks
    as soon as one exits, so the others wait a moment first, or rank 0 may be stopped mid-line."""
    if launched_by_torchrun() and not is_writer():
        time.sleep(1.0)


def leave(finished: bool = True) -> None:
    """Leave the team at the end of a run: after a finished run the ranks wait for each other,
    then tear the process group down (after an error nobody waits: torchrun stops them all)."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        if finished:
            dist.barrier()
        dist.destroy_process_group()


def exit_rank(status: int) -> None:
    """End a torchrun rank now, its output flushed (everything it wrote is on disk: rank 0's
    checkpoints are saved atomically before this). Left to Python's teardown, a rank died in
    gloo's threads about one run in ten on a loaded 2-core machine (SIGABRT, "terminate called
    without an active exception"), failing a finished run."""
    if launched_by_torchrun():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
