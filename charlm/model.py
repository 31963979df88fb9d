"""The character model: embedding -> stacked recurrent layers -> dropout -> linear head."""

from __future__ import annotations

import torch
import torch.nn as nn

from charlm.config import ModelConfig, param_count  # noqa: F401  (re-exported)

# nn.LSTM/GRU/RNN are the fused kernels (oneDNN on CPU, cuDNN on GPU): one call runs the
# whole chunk through every layer, far faster than stepping an LSTMCell in Python.
_CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}

Hidden = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


class CharRNN(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        config.validate()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.embed)
        self.rnn = _CELLS[config.cell](
            config.embed, config.hidden, config.layers, batch_first=True,
            dropout=config.dropout if config.layers > 1 else 0.0)
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden, config.vocab_size)
        if config.cell == "lstm":
            self._forget_bias_one()

    def _forget_bias_one(self) -> None:
        """Forget gates start open (bias 1) so gradients flow through time early in training
        (Gers et al. 2000; Jozefowicz et al. 2015). PyTorch's gate order is i, f, g, o and it
        keeps two bias vectors, so the input one carries the 1 and the hidden one a 0."""
        H = self.config.hidden
        with torch.no_grad():
            for name, p in self.rnn.named_parameters():
                if name.startswith("bias_ih"):
                    p[H:2 * H].fill_(1.0)
                elif name.startswith("bias_hh"):
                    p[H:2 * H].fill_(0.0)

    def forward(self, x: torch.Tensor, hidden: Hidden | None = None) -> tuple[torch.Tensor, Hidden]:
        """x: (B, T) ids -> logits (B, T, V) and the hidden state after the last step."""
        out, hidden = self.rnn(self.embed(x), hidden)   # (B, T, H)
        return self.head(self.drop(out)), hidden

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


def detach(hidden: Hidden | None) -> Hidden | None:
    """Cut the graph at a chunk boundary but keep the state: truncated BPTT."""
    if hidden is None:
        return None
    return tuple(h.detach() for h in hidden) if isinstance(hidden, tuple) else hidden.detach()
