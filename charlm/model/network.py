"""The character model: embedding -> stacked recurrent layers -> dropout -> linear head."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

from charlm.config import ModelConfig, param_count  # noqa: F401  (re-exported)

# nn.LSTM/GRU/RNN are the fused kernels (oneDNN on CPU, cuDNN on GPU): one call runs a whole
# chunk through a layer, far faster than stepping an LSTMCell in Python. One module per layer
# (rather than num_layers=N) so the dropout between layers can be ours: see LockedDropout.
_CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}

Hidden = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """The model in eval mode (no dropout) for the duration, then back as it was: generation
    and evaluation run beside training on the same model."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


class LockedDropout(nn.Module):
    """Dropout with one mask per sequence, shared by all its time steps (Gal & Ghahramani 2016,
    AWD-LSTM's "locked" dropout): a unit is dropped for the whole chunk, which regularizes
    recurrent nets at least as well as fresh masks, and draws T times fewer random numbers.
    PyTorch's per-element dropout cost a third of every training step on a 2-core CPU."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:   # x: (B, T, H)
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = torch.empty(x.size(0), 1, x.size(2), device=x.device).bernoulli_(keep).div_(keep)
        return x * mask.to(x.dtype)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class CharRNN(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        config.validate()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.embed)
        cell = _CELLS[config.cell]
        self.rnn = nn.ModuleList(cell(config.embed if i == 0 else config.hidden, config.hidden, batch_first=True)
                                 for i in range(config.layers))
        self.drop = LockedDropout(config.dropout)
        self.head = nn.Linear(config.hidden, config.vocab_size)
        if config.cell == "lstm":
            self._forget_bias_one()
        self.register_load_state_dict_pre_hook(_upgrade_fused_keys)

    def _forget_bias_one(self) -> None:
        """Forget gates start open (bias 1) so gradients flow through time early in training
        (Gers et al. 2000; Jozefowicz et al. 2015). PyTorch's gate order is i, f, g, o and it
        keeps two bias vectors, so the input one carries the 1 and the hidden one a 0."""
        H = self.config.hidden
        with torch.no_grad():
            for layer in self.rnn:
                layer.bias_ih_l0[H:2 * H].fill_(1.0)
                layer.bias_hh_l0[H:2 * H].fill_(0.0)

    def forward(self, x: torch.Tensor, hidden: Hidden | None = None) -> tuple[torch.Tensor, Hidden]:
        """x: (B, T) ids -> logits (B, T, V) and the hidden state after the last step,
        shaped as nn.LSTM/GRU/RNN shape it: (layers, B, H), a pair of them for the LSTM."""
        out, states = self.embed(x), []
        for i, layer in enumerate(self.rnn):
            out, state = layer(self.drop(out) if i else out, _layer_state(hidden, i))
            states.append(state)
        return self.head(self.drop(out)), _stack_states(states)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


def _layer_state(hidden: Hidden | None, i: int) -> Hidden | None:
    if hidden is None:
        return None
    if isinstance(hidden, tuple):
        return tuple(h[i:i + 1] for h in hidden)
    return hidden[i:i + 1]


def _stack_states(states: list[Hidden]) -> Hidden:
    if isinstance(states[0], tuple):
        return tuple(torch.cat(parts) for parts in zip(*states))
    return torch.cat(states)


_FUSED_KEY = re.compile(r"rnn\.((?:weight|bias)_(?:ih|hh))_l(\d+)$")


def _upgrade_fused_keys(module: nn.Module, state_dict: dict, prefix: str, *_) -> None:
    """Checkpoints written before the one-module-per-layer stack name their recurrent weights
    `rnn.weight_ih_l1`; today's model calls that `rnn.1.weight_ih_l0`. Same tensors, same order
    (so saved optimizer state lines up too): rename in place and old runs keep loading."""
    for key in [k for k in state_dict if k.startswith(prefix)]:
        m = _FUSED_KEY.fullmatch(key[len(prefix):])
        if m:
            state_dict[f"{prefix}rnn.{m.group(2)}.{m.group(1)}_l0"] = state_dict.pop(key)


def char_loss(logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy of (B, T, V) logits against (B, T) next characters, in nats/char. In fp32
    even under bf16 autocast: a bf16 log-softmax over the vocabulary loses the small differences
    that late training is made of."""
    return F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), reduction=reduction)


def detach(hidden: Hidden | None) -> Hidden | None:
    """Cut the graph at a chunk boundary but keep the state: truncated BPTT."""
    if hidden is None:
        return None
    return tuple(h.detach() for h in hidden) if isinstance(hidden, tuple) else hidden.detach()
