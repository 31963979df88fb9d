"""A trained model laid out for generating one character at a time: its weights per layer as
every per-character path reads them (PyTorch's in charlm.generate.engine, the C one in
charlm.generate.native), and the recurrent state copied in and out of their buffers."""

from __future__ import annotations

import torch

from charlm.model.network import CharRNN, Hidden


def engine_layers(model: CharRNN) -> tuple[list[dict[str, torch.Tensor | None]], dict[str, torch.Tensor]]:
    """A model's weights as every step path uses them (fp32, on the CPU): per layer the input
    and recurrent matrices (LSTM gates reordered i, f, g, o -> i, f, o, g: one sigmoid span, one
    tanh) with the input bias `b_in` and, for the GRU, the recurrent bias `b_rec` apart (its reset
    gate scales only the recurrent part); elsewhere the two biases are one. Layer 0 also gets
    `table`: its input projection folded into the embedding, (V, G). And the head."""
    cfg = model.config
    sd = {k: v.detach().to("cpu", torch.float32) for k, v in model.state_dict().items()}
    layers = []
    for i in range(cfg.layers):
        w = {n: sd[f"rnn.{i}.{n}_l0"] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
        if cfg.cell == "lstm":
            H = cfg.hidden
            order = torch.cat([torch.arange(0, 2 * H), torch.arange(3 * H, 4 * H), torch.arange(2 * H, 3 * H)])
            w = {k: v[order] for k, v in w.items()}
        apart = cfg.cell == "gru"
        b_in, b_rec = (w["bias_ih"], w["bias_hh"]) if apart else (w["bias_ih"] + w["bias_hh"], None)
        table = sd["embed.weight"] @ w["weight_ih"].t() + b_in if i == 0 else None
        layers.append(dict(weight_ih=w["weight_ih"], weight_hh=w["weight_hh"], b_in=b_in, b_rec=b_rec, table=table))
    return layers, dict(weight=sd["head.weight"], bias=sd["head.bias"])


def load_state(hs: list[torch.Tensor], cs: list[torch.Tensor] | None, hidden: Hidden | None) -> None:
    """Copy `hidden` (shaped as CharRNN returns it: (layers, N, H), a pair for the LSTM) into a
    step's per-layer state buffers, or zero them."""
    h, c = hidden if isinstance(hidden, tuple) else (hidden, None)
    for i in range(len(hs)):
        hs[i].zero_() if h is None else hs[i].copy_(h[i])
        if cs is not None:
            cs[i].zero_() if c is None else cs[i].copy_(c[i])


def copy_state(hs: list[torch.Tensor], cs: list[torch.Tensor] | None) -> Hidden:
    """A copy of a step's per-layer state buffers, shaped as CharRNN returns its state."""
    h = torch.stack([h.clone() for h in hs])
    return (h, torch.stack([c.clone() for c in cs])) if cs is not None else h
