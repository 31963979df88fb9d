"""Optimizers and the learning-rate schedule."""

from __future__ import annotations

import math

import torch

from charlm.config import DEFAULT_LR, TrainConfig  # noqa: F401  (DEFAULT_LR re-exported)


def lr_at(fraction: float, cfg: TrainConfig) -> float:
    """Linear warm-up over the first `warmup` of the budget, then cosine decay to
    `min_lr_ratio * lr` at its end. `fraction` is elapsed steps or elapsed time over the
    budget, so a run of N minutes ends decayed rather than mid-flight."""
    f = min(max(fraction, 0.0), 1.0)
    if cfg.warmup > 0 and f < cfg.warmup:
        return cfg.lr * (f / cfg.warmup)
    progress = (f - cfg.warmup) / max(1.0 - cfg.warmup, 1e-9)
    floor = cfg.min_lr_ratio
    return cfg.lr * (floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress)))


def build_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "adagrad":      # min-char-rnn's choice
        return torch.optim.Adagrad(model.parameters(), lr=cfg.lr)
    if cfg.optimizer == "rmsprop":      # char-rnn's choice (decay 0.95)
        return torch.optim.RMSprop(model.parameters(), lr=cfg.lr, alpha=0.95)
    # Weight decay on matrices only: biases and the embedding table are left alone.
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if p.dim() >= 2 and not name.startswith("embed") else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.99))


def optimizer_state(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """The optimizer's state as flat tensors (for safetensors) plus JSON: no pickle."""
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, st in sd["state"].items():
        for key, val in st.items():
            if torch.is_tensor(val):
                tensors[f"optim.{idx}.{key}"] = val
            else:
                scalars[f"{idx}.{key}"] = val
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def restore_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], state: dict) -> None:
    per_param: dict[int, dict] = {}
    for name, val in tensors.items():
        if name.startswith("optim."):
            _, idx, key = name.split(".", 2)
            per_param.setdefault(int(idx), {})[key] = val
    for name, val in state.get("scalars", {}).items():
        idx, key = name.split(".", 1)
        per_param.setdefault(int(idx), {})[key] = val
    opt.load_state_dict({"state": per_param, "param_groups": state["param_groups"]})
