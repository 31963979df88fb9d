"""One optimizer step of truncated BPTT: the Trainer's step, and the one the speed test times."""

from __future__ import annotations

import contextlib
import math
import threading

import torch

from charlm.machine.device import autocast
from charlm.model.network import CharRNN, Hidden, char_loss, detach


class TrainStep:
    """Forward (under the run's precision), loss, backward, global-norm clip, update.

    `lock` (if given) is held while the weights change, so a UI thread can copy them between
    updates (Trainer.snapshot)."""

    def __init__(self, model: CharRNN, optimizer: torch.optim.Optimizer, device: torch.device,
                 precision: str, grad_clip: float, lock: threading.Lock | None = None):
        self.model, self.optimizer, self.device = model, optimizer, device
        self.precision, self.grad_clip = precision, grad_clip
        self.lock = lock or contextlib.nullcontext()
        self.params = [p for p in model.parameters() if p.requires_grad]

    def __call__(self, x: torch.Tensor, y: torch.Tensor, hidden: Hidden | None, lr: float) -> tuple[float, Hidden]:
        """Train on inputs x and targets y, both (B, T) ids, from `hidden`. Returns the loss
        (nats/char, a Python float: the step is finished when this returns) and the state after
        the chunk, detached from the graph. A NaN/Inf gradient (the loss may still be finite)
        changes no weight and returns a NaN loss: the trainer then rolls back."""
        x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with autocast(self.device, self.precision):
            logits, hidden = self.model(x, hidden)
        loss = char_loss(logits, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        # Clip the global norm: a rare exploding gradient would otherwise undo hours of work.
        norm = torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip)
        if not math.isfinite(norm.item()):
            return math.nan, detach(hidden)      # clipping cannot tame it: it would make every weight NaN
        with self.lock:
            self.optimizer.step()
        return loss.item(), detach(hidden)
