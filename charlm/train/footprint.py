"""How much memory training a shape takes, estimated before anything is allocated, and whether
it fits: a --hidden too large for the machine is a one-line error, not an allocator traceback
or the kernel's OOM killer minutes later."""

from __future__ import annotations

from charlm.config import GATES, ModelConfig, TrainConfig, param_count
from charlm.errors import UsageError

FLOAT = 4                   # bytes: weights, gradients, optimizer state and activations are fp32
OPTIMIZER_COPIES = {"adamw": 2, "rmsprop": 1, "adagrad": 1}   # state tensors per weight
# Around the weights, gradients and optimizer state: the copy a checkpoint save makes, the
# snapshot the app takes, the evaluation's copy. A floor, not a measurement: the estimate is
# meant to catch a shape that cannot fit, never to refuse one that might.
WEIGHT_COPIES = 1


def training_bytes(model: ModelConfig, train: TrainConfig) -> int:
    """A lower bound on the memory training `model` with `train`'s batch takes."""
    params = param_count(model)
    weights = params * (2 + OPTIMIZER_COPIES.get(train.optimizer, 2) + WEIGHT_COPIES)   # + gradients
    B, T, H, V = train.batch_size, train.seq_len, model.hidden, max(model.vocab_size, 2)
    gates = GATES[model.cell]
    # Kept for the backward pass, per character: each layer's gates and outputs (a cell state
    # too for the LSTM), the embedding, and the logits with their softmax and its gradient.
    per_char = model.layers * (gates + 2) * H + model.embed + 3 * V
    return (weights + B * T * per_char) * FLOAT


def available_bytes(device) -> int | None:
    """Memory a new allocation can have on `device` (a torch.device or its type name); None
    where it cannot be told."""
    kind = getattr(device, "type", device)
    if kind == "cuda":
        import torch
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_fits(model: ModelConfig, train: TrainConfig, device) -> None:
    """A UsageError, before anything is allocated, when the shape cannot fit in memory."""
    need, have = training_bytes(model, train), available_bytes(device)
    if have is not None and need > have:
        where = "GPU memory" if getattr(device, "type", device) == "cuda" else "memory"
        raise UsageError(f"training {model.cell} {model.layers}x{model.hidden} on batches of {train.batch_size} x "
                         f"{train.seq_len} needs at least {_gib(need)} of {where}, and {_gib(have)} is free",
                         "choose a smaller --hidden, --layers, --batch-size or --seq-len")


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n < 2**40 else f"{n / 2**40:,.0f} TiB"
