"""Inside the recurrent layers: every unit's activation at every character of a text, and which
units track a pattern of the text (inside a quotation, nesting depth, column, ...).

A unit is (layer, kind, index): kind "h" is a layer's output, "c" an LSTM's cell state. The
activation at position t is the state just after reading character t, from a zero state at
the text's start (as `charlm eval` and `charlm probe` read it).

nn.LSTM hands back h at every step but c only at the end. c is rebuilt exactly from what it
does return: with every h known, the gates of all steps are one batched matmul (h_{t-1}
feeds step t), and c_t = f_t * c_{t-1} + i_t * g_t is a linear recurrence, solved for a whole
chunk at once by a parallel scan over (f, i*g) pairs (log2(T) vectorised passes, no division,
so a closed forget gate cannot turn into 0/0).

A unit's score is the Pearson correlation of its activation with the pattern's value over
the text (an indicator 0/1, or a number such as the nesting depth), in [-1, 1]: units are
ranked by its size, the sign says whether the unit rises or falls with the pattern. The sums
it needs are accumulated chunk by chunk, so memory does not grow with the text.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from charlm.analysis.patterns import varying_pattern
from charlm.cancel import Progress, check
from charlm.corpus.vocab import CharVocab
from charlm.errors import UsageError
from charlm.model.network import CharRNN, eval_mode

CHUNK = 2048            # characters per forward pass: (CHUNK, hidden) activations per layer and kind


@dataclass(frozen=True)
class Unit:
    layer: int          # 0 = the layer that reads the characters
    kind: str           # "h" (output) or "c" (LSTM cell state)
    index: int

    def __str__(self) -> str:
        return f"{self.layer}:{self.kind}:{self.index}"


@dataclass(frozen=True)
class UnitScore:
    unit: Unit
    score: float        # Pearson correlation with the pattern, in [-1, 1]

    def as_dict(self) -> dict:
        return {"layer": self.unit.layer, "kind": self.unit.kind, "index": self.unit.index, "score": self.score}


def kinds(model: CharRNN) -> tuple[str, ...]:
    return ("h", "c") if model.config.cell == "lstm" else ("h",)


def parse_unit(spec: str, model: CharRNN) -> Unit:
    """LAYER:KIND:INDEX (e.g. 1:c:17) as a Unit of this model, or a UsageError saying what is off."""
    cfg = model.config
    allowed = "/".join(kinds(model))
    m = re.fullmatch(r"\s*(\d+)\s*:\s*([a-z])\s*:\s*(\d+)\s*", spec)
    if not m:
        raise UsageError(f"--show {spec!r} is not LAYER:KIND:INDEX", f"e.g. --show 0:{kinds(model)[-1]}:17")
    layer, kind, index = int(m.group(1)), m.group(2), int(m.group(3))
    if layer >= cfg.layers:
        raise UsageError(f"--show {spec}: this model has layers 0 to {cfg.layers - 1}", "pick one of those")
    if kind not in kinds(model):
        raise UsageError(f"--show {spec}: kind {kind!r} is not one this {cfg.cell} has", f"use {allowed}")
    if index >= cfg.hidden:
        raise UsageError(f"--show {spec}: units are numbered 0 to {cfg.hidden - 1}", "pick one of those")
    return Unit(layer, kind, index)


# -- activations ------------------------------------------------------------------------------

@torch.no_grad()
def activation_chunks(model: CharRNN, ids: np.ndarray, chunk: int = CHUNK, cancel: threading.Event | None = None
                      ) -> Iterator[dict[tuple[int, str], np.ndarray]]:
    """Per chunk of the text, {(layer, kind): activations (t, hidden) float32}, state carried
    across chunks. The model runs in fp32 on the CPU, in eval mode."""
    weights = [{k: v.detach().float().cpu() for k, v in layer.named_parameters()} for layer in model.rnn]
    state: list = [None] * model.config.layers
    with eval_mode(model):
        for start in range(0, len(ids), chunk):
            check(cancel)
            x = torch.from_numpy(np.asarray(ids[start:start + chunk], dtype=np.int64))[None].to(
                model.embed.weight.device)
            out, acts = model.embed(x), {}
            for i, layer in enumerate(model.rnn):
                out, new = layer(out, state[i])
                h = out[0].float().cpu()
                acts[i, "h"] = h.numpy()
                if model.config.cell == "lstm":
                    acts[i, "c"] = _cells(weights[i], layer_input=_input_of(model, acts, i, x), h=h,
                                          h0=None if state[i] is None else state[i][0][0, 0].float().cpu(),
                                          c0=None if state[i] is None else state[i][1][0, 0].float().cpu()).numpy()
                state[i] = new
            yield acts


def _input_of(model: CharRNN, acts: dict, i: int, x: torch.Tensor) -> torch.Tensor:
    """What layer i read: the embedded characters, or the layer below's h (no dropout in eval)."""
    return model.embed(x)[0].float().cpu() if i == 0 else torch.from_numpy(acts[i - 1, "h"])


def _cells(w: dict[str, torch.Tensor], layer_input: torch.Tensor, h: torch.Tensor, h0: torch.Tensor | None,
           c0: torch.Tensor | None) -> torch.Tensor:
    """c at every step of a chunk, from the layer's input (T, in), its outputs h (T, H) and the
    state it started from. PyTorch's gate order is i, f, g, o."""
    T, H = h.shape
    h_prev = torch.cat([torch.zeros(1, H) if h0 is None else h0[None], h[:-1]])
    gates = layer_input @ w["weight_ih_l0"].t() + w["bias_ih_l0"] + h_prev @ w["weight_hh_l0"].t() + w["bias_hh_l0"]
    i, f, g, _ = gates.split(H, dim=1)
    a, b = torch.sigmoid(f), torch.sigmoid(i) * torch.tanh(g)       # c_t = a_t * c_{t-1} + b_t
    if c0 is not None:
        b[0] += a[0] * c0
    return _linear_scan(a, b)


def _linear_scan(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """x_t = a_t * x_{t-1} + b_t from x_{-1} = 0, for all t (rows), by Hillis-Steele doubling:
    after the pass with offset s, (a_t, b_t) composes the steps t-2s+1 .. t."""
    a, b = a.clone(), b.clone()
    s = 1
    while s < len(a):
        b[s:] = b[s:] + a[s:] * b[:-s]          # right-hand sides are read before the assignment
        a[s:] = a[s:] * a[:-s]
        s *= 2
    return b


def activations(model: CharRNN, ids: np.ndarray, chunk: int = CHUNK, cancel: threading.Event | None = None
                ) -> dict[tuple[int, str], np.ndarray]:
    """Every unit's activation over the whole text: {(layer, kind): (T, hidden)}. For short
    texts; `unit_trace` and `rank_units` keep memory flat on long ones."""
    parts = list(activation_chunks(model, ids, chunk, cancel))
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def unit_trace(model: CharRNN, vocab: CharVocab, text: str, unit: Unit, progress: Progress | None = None,
               cancel: threading.Event | None = None) -> np.ndarray:
    """One unit's activation after each character of `text` (T,) float32; memory flat in T
    but for the result. `progress(done, total)` counts characters."""
    ids, parts = vocab.encode_array(text), []
    for acts in activation_chunks(model, ids, cancel=cancel):
        parts.append(acts[unit.layer, unit.kind][:, unit.index].copy())     # not a view: the chunk can go
        if progress is not None:
            progress(sum(map(len, parts)), len(ids))
    return np.concatenate(parts)


# -- ranking ----------------------------------------------------------------------------------

def rank_units(model: CharRNN, vocab: CharVocab, text: str, pattern: str, progress: Progress | None = None,
               cancel: threading.Event | None = None) -> list[UnitScore]:
    """Every unit, the one whose activation correlates most strongly with the pattern first.
    `progress(done, total)` counts characters."""
    values = varying_pattern(text, pattern)
    ids = vocab.encode_array(text)
    p = values - values.mean()                                  # centred: the sums below stay well conditioned
    sums: dict[tuple[int, str], list[np.ndarray]] = {}         # Σa, Σa², Σa·p per unit
    done = 0
    for acts in activation_chunks(model, ids, cancel=cancel):
        n = len(next(iter(acts.values())))
        pc = p[done:done + n]
        for key, a in acts.items():
            a = a.astype(np.float64)
            s = sums.setdefault(key, [0.0, 0.0, 0.0])
            s[0] = s[0] + a.sum(0)
            s[1] = s[1] + (a * a).sum(0)
            s[2] = s[2] + pc @ a
        done += n
        if progress is not None:
            progress(done, len(ids))
    T, p_norm = len(ids), float(np.sqrt(p @ p))
    scores = []
    for (layer, kind), (sa, saa, sap) in sums.items():
        var = np.maximum(saa - sa * sa / T, 0.0)                # T x the variance of each unit
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.where(var > 1e-12 * T, sap / (np.sqrt(var) * p_norm), 0.0)   # a constant unit tracks nothing
        scores += [UnitScore(Unit(layer, kind, j), float(np.clip(v, -1.0, 1.0))) for j, v in enumerate(r)]
    scores.sort(key=lambda s: (-abs(s.score), s.unit.layer, s.unit.kind, s.unit.index))
    return scores
