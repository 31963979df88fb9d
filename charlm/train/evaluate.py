"""Validation loss in nats/char and bits/char, as published char-model figures report it."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from charlm.machine.device import autocast
from charlm.model.network import CharRNN, char_loss, eval_mode
from charlm.train.batches import eval_streams
from charlm.units import bits


@dataclass(frozen=True)
class EvalResult:
    nats_per_char: float
    chars: int

    @property
    def bits_per_char(self) -> float:
        return bits(self.nats_per_char)

    @property
    def perplexity(self) -> float:
        return math.exp(self.nats_per_char)

    def as_dict(self) -> dict:
        return {"nats_per_char": self.nats_per_char, "bits_per_char": self.bits_per_char,
                "perplexity": self.perplexity, "chars": self.chars}


def evaluate(model: CharRNN, ids: np.ndarray, device: torch.device, precision: str = "fp32",
             streams: int = 16, share: slice = slice(None)) -> EvalResult:
    """Mean cross-entropy of predicting each next character of `ids`, state carried through.

    The text is cut into `streams` contiguous pieces run side by side (each carries its own
    state from its first character), which is ~streams x faster than one stream and differs
    from it only in the first few characters of each piece. 2-D `ids` (a validation sample of
    separate windows) runs one stream per row instead, so no state crosses from one window
    into another. `share` reads only some of the streams (a rank's, to be summed over ranks).
    """
    total, count = 0.0, 0
    for logits, y in stream_logits(model, ids, device, precision, streams, share):
        total += char_loss(logits, y, reduction="sum").item()
        count += y.numel()
    return EvalResult(total / max(count, 1), count)


@torch.no_grad()
def stream_logits(model: CharRNN, ids: np.ndarray, device: torch.device, precision: str = "fp32",
                  streams: int = 16, share: slice = slice(None)) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The model's logits (S, T, V) for each chunk of `ids` and the characters they predict
    (S, T), in order, state carried from chunk to chunk: how evaluation reads a text (see
    `evaluate` for `streams`). The first character of each stream is read, never predicted.
    The model is in eval mode while the generator runs, and back as it was once it ends."""
    hidden = None
    with eval_mode(model):
        for x, y in eval_streams(ids, streams, streams=share):
            if x.size(0) == 0:
                return                          # more ranks than streams: nothing for this one
            x, y = x.to(device), y.to(device)
            with autocast(device, precision):
                logits, hidden = model(x, hidden)
            yield logits, y


@torch.no_grad()
def evaluate_stepped(model: CharRNN, ids: np.ndarray, weights: str, streams: int = 16) -> EvalResult:
    """The same figure through the generation step (charlm.generate.engine) in `weights` precision: what
    a reduced-precision sampler costs in quality (it must stay within 0.005 nats/char of fp32)."""
    from charlm.generate.engine import make_engine
    engine, total, count = None, 0.0, 0
    for x, y in eval_streams(ids, streams):
        if engine is None:
            engine = make_engine(model, x.size(0), weights)
        total += char_loss(engine.feed(x, every=True), y, reduction="sum").item()
        count += y.numel()
    return EvalResult(total / max(count, 1), count)


def validation_loss(model: CharRNN, ids: np.ndarray, device: torch.device, precision: str, team) -> float:
    """nats/char on `ids` as the trainer validates: under torchrun each rank reads some of the
    streams (charlm.train.distributed.Team) and the totals are summed, so all get one figure."""
    result = evaluate(model, ids, device, precision, share=slice(team.rank, None, team.world))
    total, count = team.sum(result.nats_per_char * result.chars, result.chars)
    return total / max(count, 1)
