"""The character model: embedding -> stacked LSTM/GRU/RNN -> dropout -> linear head."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn as nn

from charlm.config import CELLS, ModelConfig
from charlm.errors import UsageError
from charlm.model.network import CharRNN, LockedDropout, detach, param_count


def build(**kw) -> CharRNN:
    torch.manual_seed(0)
    return CharRNN(ModelConfig(**({"vocab_size": 30, "layers": 2, "hidden": 16, "embed": 8} | kw)))


@pytest.mark.parametrize("cell, module", [("lstm", nn.LSTM), ("gru", nn.GRU), ("rnn", nn.RNN)])
def test_layout(cell, module):
    m = build(cell=cell, dropout=0.3)
    assert isinstance(m.embed, nn.Embedding) and m.embed.weight.shape == (30, 8)
    assert len(m.rnn) == 2 and all(type(layer) is module and layer.num_layers == 1 and layer.batch_first
                                   for layer in m.rnn)                # fused kernel per layer
    assert [layer.input_size for layer in m.rnn] == [8, 16] and m.drop.p == 0.3
    assert isinstance(m.head, nn.Linear) and m.head.weight.shape == (30, 16)


@pytest.mark.parametrize("cell", CELLS)
def test_forward_shapes_and_state(cell):
    m = build(cell=cell)
    logits, hidden = m(torch.randint(0, 30, (4, 7)))
    assert logits.shape == (4, 7, 30)
    states = hidden if cell == "lstm" else (hidden,)
    assert len(states) == (2 if cell == "lstm" else 1)
    for h in states:
        assert h.shape == (2, 4, 16)                       # (layers, B, H)


@pytest.mark.parametrize("cell", CELLS)
def test_carried_state_continues_the_sequence(cell):
    """Two chunks with the state carried give the same outputs as one long chunk: the
    property truncated BPTT and the streaming sampler rely on."""
    m = build(cell=cell).eval()
    x = torch.randint(0, 30, (3, 12))
    whole, _ = m(x)
    first, h = m(x[:, :5])
    second, _ = m(x[:, 5:], detach(h))
    torch.testing.assert_close(torch.cat([first, second], 1), whole, rtol=1e-5, atol=1e-5)


def test_lstm_forget_gates_start_open():
    m = build(cell="lstm", layers=3, hidden=16)
    H = 16
    for layer in range(3):
        b_ih = m.rnn[layer].bias_ih_l0.detach()
        b_hh = m.rnn[layer].bias_hh_l0.detach()
        assert torch.all(b_ih[H:2 * H] == 1.0)             # gate order i, f, g, o
        assert torch.all(b_hh[H:2 * H] == 0.0)
        for gate in (0, 2, 3):                              # the other gates keep PyTorch's init
            assert not torch.all(b_ih[gate * H:(gate + 1) * H] == 1.0)
            assert b_ih[gate * H:(gate + 1) * H].abs().max() <= 1 / math.sqrt(H)


@pytest.mark.parametrize("cell", ["gru", "rnn"])
def test_other_cells_keep_their_default_biases(cell):
    m = build(cell=cell, hidden=16)
    for name, p in m.rnn.named_parameters():
        if "bias" in name:
            assert p.abs().max() <= 1 / math.sqrt(16)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layers, hidden, embed, vocab", [(1, 32, 8, 20), (2, 16, 8, 30), (3, 64, 65, 97)])
def test_param_count_matches_the_real_model(cell, layers, hidden, embed, vocab):
    cfg = ModelConfig(vocab_size=vocab, cell=cell, layers=layers, hidden=hidden, embed=embed, dropout=0.1)
    assert param_count(cfg) == sum(p.numel() for p in CharRNN(cfg).parameters())


def test_one_layer_with_dropout_builds_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")                     # nn.LSTM warns about dropout on 1 layer
        m = build(layers=1, dropout=0.5)
    assert all(layer.dropout == 0.0 for layer in m.rnn) and m.drop.p == 0.5


def test_dropout_masks_whole_units_for_the_whole_chunk():
    """Locked dropout: a dropped unit is zero at every time step of the chunk, a kept one is
    scaled by 1/(1-p), and each chunk draws a new mask."""
    drop = LockedDropout(0.5).train()
    x = torch.ones(4, 50, 64)
    y = drop(x)
    assert set(y.unique().tolist()) == {0.0, 2.0}
    assert torch.equal(y, y[:, :1].expand_as(y))           # the same mask at every step
    assert 0.3 < (y[:, 0] == 0).float().mean() < 0.7
    assert not torch.equal(drop(x), y)                      # a fresh mask per call
    assert torch.equal(drop.eval()(x), x)


def test_dropout_keeps_the_activation_dtype():
    drop = LockedDropout(0.3).train()
    assert drop(torch.ones(2, 3, 8, dtype=torch.bfloat16)).dtype == torch.bfloat16


@pytest.mark.parametrize("cell, fused", [("lstm", nn.LSTM), ("gru", nn.GRU), ("rnn", nn.RNN)])
def test_weights_saved_by_the_fused_stack_still_load(cell, fused):
    """Checkpoints from before the one-module-per-layer stack name the weights rnn.weight_ih_l1;
    they load into today's model and compute the same function."""
    torch.manual_seed(0)
    old = fused(8, 16, 3, batch_first=True)
    weights = {"embed.weight": torch.randn(30, 8), "head.weight": torch.randn(30, 16), "head.bias": torch.randn(30)}
    weights |= {f"rnn.{k}": v for k, v in old.state_dict().items()}
    m = build(cell=cell, layers=3).eval()
    m.load_state_dict(weights, strict=True)
    x = torch.randint(0, 30, (2, 9))
    expected, _ = old(m.embed(x))
    torch.testing.assert_close(m(x)[0], m.head(expected))


def test_dropout_is_applied_in_training_only():
    m = build(layers=1, dropout=0.5)
    x = torch.randint(0, 30, (2, 6))
    m.eval()
    assert torch.equal(m(x)[0], m(x)[0])
    m.train()
    assert not torch.equal(m(x)[0], m(x)[0])


@pytest.mark.parametrize("bad, needle", [
    (dict(layers=0), "--layers"), (dict(hidden=0), "--hidden"), (dict(embed=-1), "--embed"),
    (dict(dropout=1.0), "dropout"), (dict(dropout=float("nan")), "dropout"), (dict(dropout=-0.1), "dropout"),
    (dict(cell="transformer"), "unknown cell"),
])
def test_a_bad_config_is_a_usage_error(bad, needle):
    with pytest.raises(UsageError, match=needle):
        CharRNN(ModelConfig(vocab_size=10, **bad))


def test_detach_cuts_the_graph_and_keeps_the_values():
    m = build(cell="lstm")
    _, (h, c) = m(torch.randint(0, 30, (2, 3)))
    assert h.requires_grad
    dh, dc = detach((h, c))
    assert not dh.requires_grad and torch.equal(dh, h) and torch.equal(dc, c)
    assert detach(None) is None
