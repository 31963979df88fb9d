"""Faults injected on purpose, so tests and stress scripts can prove recovery: each is named by
an environment variable that nothing sets in normal use.

    CHARLM_FAULT_NAN_AT=16,40   the weights turn NaN just before step 16 and before step 40
                                (once each), as a diverging run's do: the loss of that step is NaN
"""

from __future__ import annotations

import os

import torch


def nan_steps() -> set[int]:
    """The steps at which to wreck the weights (each once), from CHARLM_FAULT_NAN_AT."""
    return {int(s) for s in os.environ.get("CHARLM_FAULT_NAN_AT", "").replace(" ", "").split(",") if s.isdigit()}


@torch.no_grad()
def poison(model: torch.nn.Module) -> None:
    """Every weight NaN: the next forward pass's loss is NaN."""
    for p in model.parameters():
        p.fill_(float("nan"))
