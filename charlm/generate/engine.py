"""The per-character step of generation, doing the least work a character needs.

`nn.LSTM` is built for chunks: called on one character it sets up its fused kernel and
re-lays out its weights each time (7 ms a step for a 2x512 on a Zen 5 core, where reading the
weights once takes 0.2 ms). So a trained CharRNN is rewritten once into plain matrices:

- layer 0's input projection folded into the embedding: a (V, G) table, one row per character
  (G = gates x hidden), so the first layer's input costs a row lookup, not a matmul;
- every further layer's input and recurrent weights side by side, (in + H, G): one matmul per
  layer on [x, h] (the GRU keeps the two apart: its reset gate scales only the recurrent part);
- the head as it is.

A step then is, per layer, one matmul into a preallocated gate buffer, the gate nonlinearities
in place and the new state in place; then the head. A prompt is read by the model's own fused
kernel, which projects each layer's input for the whole prompt at once and steps only the
recurrence; evaluation does the same here, through the step's own weights.

Weights can be fp32, bf16, or int8. int8 runs on charlm's C step (charlm.generate.native: the whole
character in one call) where it builds, else on PyTorch's int8 kernel (per-channel, activations
quantized on the fly, fbgemm / onednn): `make_engine` picks. `fastest_weights` times the
precisions on this machine and keeps a reduced one only if the model's loss on its own text
moves by at most QUALITY_TOLERANCE.
"""

from __future__ import annotations

import time
import warnings

import torch

from charlm.config import GATES
from charlm.generate.layout import copy_state, engine_layers, load_state
from charlm.model.network import CharRNN, Hidden, eval_mode

WEIGHTS = ("fp32", "bf16", "int8")
# The int8 kernel itself, without torch.ops' Python dispatch around it (3 of its ~18 us a call
# for a 2048x512 on a Zen 5; the public overload where the private handle is not there).
_LINEAR_INT8 = getattr(torch.ops.quantized.linear_dynamic.default, "_op", torch.ops.quantized.linear_dynamic.default)


def head_weights(weights: str) -> str:
    """The head's precision under the step's: int8 keeps the head in fp32. Its matrix is small
    (V x H: 135 KB for a 2x512), and quantizing its input costs more than reading it (66x512 on
    a Zen 5: 11.5 us int8, 2.8 us fp32)."""
    return "fp32" if weights == "int8" else weights


class Proj:
    """x @ W^T (+ b) in the chosen weight precision; W is (out, in) as nn.Linear keeps it."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, weights: str):
        self.weights, self.out_features = weights, weight.size(0)
        self.bias = bias.float().contiguous() if bias is not None else None
        if weights == "int8":
            with warnings.catch_warnings():        # quantized tensors are "deprecated" but ship, and are fastest
                warnings.simplefilter("ignore")
                scale = weight.abs().amax(dim=1).clamp_min(1e-8) / 127.0
                q = torch.quantize_per_channel(weight.float(), scale, torch.zeros_like(scale, dtype=torch.long), 0,
                                               torch.qint8)
                self.packed = torch.ops.quantized.linear_prepack(q, self.bias)    # the bias added in the kernel
        else:
            dtype = torch.bfloat16 if weights == "bf16" else torch.float32
            self.wt = weight.t().contiguous().to(dtype)     # (in, out): the layout MKL reads fastest here

    def into(self, x: torch.Tensor, out: torch.Tensor, accumulate: bool = False) -> torch.Tensor:
        """out = x @ W^T + b, or out += x @ W^T + b when accumulating."""
        if self.weights == "fp32":
            if accumulate:
                out.addmm_(x, self.wt)
            elif self.bias is not None:
                return torch.addmm(self.bias, x, self.wt, out=out)
            else:
                return torch.mm(x, self.wt, out=out)
        else:
            if self.weights == "bf16":
                y = torch.mm(x.to(torch.bfloat16), self.wt)
            else:       # reduce_range: what fbgemm's 8-bit dot products need to never overflow
                y = _LINEAR_INT8(x.contiguous(), self.packed, True)
            out.add_(y) if accumulate else out.copy_(y)
        if self.bias is not None and (self.weights == "bf16" or (accumulate and self.weights == "fp32")):
            out.add_(self.bias)
        return out


class Layer:
    """One recurrent layer's projections. Layer 0's input projection is the character table;
    above it, stepping uses [W_ih | W_hh] fused (one matmul on [x, h]) and prompt reading the
    two halves (the input half over the whole prompt at once)."""

    def __init__(self, w: dict[str, torch.Tensor | None], first: bool, cell: str, weights: str):
        self.apart = cell == "gru"
        self.table = w["table"]
        self.inp = None if first else Proj(w["weight_ih"], w["b_in"], weights)
        self.rec = Proj(w["weight_hh"], w["b_rec"], weights)
        self.fused = None if first or self.apart else Proj(torch.cat([w["weight_ih"], w["weight_hh"]], 1), w["b_in"],
                                                           weights)


class EngineWeights:
    """A CharRNN's weights rewritten for stepping, in one precision. Made once per model and
    precision and shared by its streams: rewriting a 2x512 takes ~20 ms, quantizing it ~60 ms,
    as long as generating a few hundred characters.

    int8 runs on charlm's C step (charlm.generate.native) where it could be built on this machine, and
    on PyTorch's int8 kernel (fbgemm / onednn) elsewhere or with `native=False`."""

    def __init__(self, model: CharRNN, weights: str = "fp32", native: bool | None = None):
        if weights not in WEIGHTS:
            raise ValueError(f"weights must be one of {WEIGHTS}")
        self.model, self.weights, self.native = model, weights, None
        if weights == "int8" and native is not False:
            from charlm.generate.native.build import library
            if library() is not None:
                from charlm.generate.native.net import NativeWeights
                self.native = NativeWeights(model)
                return
        layers, head = engine_layers(model)
        self.layers = [Layer(w, i == 0, model.config.cell, weights) for i, w in enumerate(layers)]
        self.head = Proj(head["weight"], head["bias"], head_weights(weights))

    @property
    def kernel(self) -> str:
        """What runs the step, in words: 'C step (avx512-vnni, 2 threads)' or 'PyTorch'."""
        return self.native.describe() if self.native is not None else "PyTorch"


def make_engine(model: CharRNN, batch: int = 1, weights: str | EngineWeights = "fp32"):
    """A per-character step for `batch` streams in the given precision (or over EngineWeights
    already made): the C step where the weights are its, else Engine."""
    prepared = weights if isinstance(weights, EngineWeights) else EngineWeights(model, weights)
    if prepared.native is not None:
        from charlm.generate.native.net import NativeEngine
        return NativeEngine(prepared.native, batch)
    return Engine(model, batch, prepared)


class Engine:
    """A CharRNN as a per-character step for `batch` streams. Not thread-safe: one per stream.
    `weights`: a precision, or EngineWeights already made for the model (see Sampler)."""

    def __init__(self, model: CharRNN, batch: int = 1, weights: str | EngineWeights = "fp32"):
        prepared = weights if isinstance(weights, EngineWeights) else EngineWeights(model, weights, native=False)
        if prepared.native is not None:
            raise ValueError("these weights are the C step's: use make_engine")
        cfg = model.config
        self.model = model               # reads prompts (see feed)
        self.cell, self.H, self.L, self.N, self.weights = cfg.cell, cfg.hidden, cfg.layers, batch, prepared.weights
        G, H = GATES[cfg.cell] * cfg.hidden, cfg.hidden
        self.layers, self.head = prepared.layers, prepared.head
        # State and buffers, allocated once. xh[i] = [input of layer i | its h]: layer i's h lives
        # at the end of xh[i] and is copied to the front of xh[i + 1] as the next layer's input.
        self.xh = [torch.zeros(batch, (H if i else 0) + H) for i in range(cfg.layers)]
        self.c = [torch.zeros(batch, H) for _ in range(cfg.layers)] if cfg.cell == "lstm" else None
        self.gates = torch.empty(batch, G)
        self.gh = torch.empty(batch, G) if self.layers[0].apart else None
        self.tmp = torch.empty(batch, H)
        self.logits = torch.empty(batch, self.head.out_features)
        # Views made once: slicing a tensor costs a few microseconds, as much as the op on it.
        self.hs = [x[:, -H:] for x in self.xh]
        self.below = [x[:, :H] for x in self.xh]          # layer i's input slot (i > 0)
        g = self.gates
        if cfg.cell == "lstm":       # i, f, o, g (reordered in Layer): one sigmoid, one tanh
            self.v = dict(sig=g[:, :3 * H], i=g[:, :H], f=g[:, H:2 * H], o=g[:, 2 * H:3 * H], g=g[:, 3 * H:])
        elif cfg.cell == "gru":      # r, z, n; gh holds the recurrent part
            self.v = dict(rz=g[:, :2 * H], r=g[:, :H], z=g[:, H:2 * H], n=g[:, 2 * H:],
                          hrz=self.gh[:, :2 * H], hn=self.gh[:, 2 * H:])

    # -- state ------------------------------------------------------------------------------
    def load(self, hidden: Hidden | None) -> None:
        """Start from `hidden` (shaped as CharRNN returns it: (layers, N, H), a pair for the
        LSTM), or from zeros."""
        load_state(self.hs, self.c, hidden)

    def state(self) -> Hidden:
        """A copy of the state, shaped as CharRNN returns it."""
        return copy_state(self.hs, self.c)

    # -- stepping ---------------------------------------------------------------------------
    def advance(self, ids: torch.Tensor | list[int]) -> torch.Tensor:
        """Feed one character per stream (ids: (N,)); the logits (N, V) for the next one, in a
        buffer the next step overwrites."""
        ids = torch.as_tensor(ids)
        g = self.gates
        for i, layer in enumerate(self.layers):
            if i == 0:
                torch.index_select(layer.table, 0, ids, out=g)
            else:
                self.below[i].copy_(self.hs[i - 1])
                if layer.apart:
                    layer.inp.into(self.hs[i - 1], g)
                else:
                    layer.fused.into(self.xh[i], g)
            self._recur(i, layer, g, fused=i > 0)
        return self.head.into(self.hs[-1], self.logits)

    def feed(self, ids: torch.Tensor, every: bool = False) -> torch.Tensor:
        """Read a prompt (ids: (N, P)) layer by layer: each layer's input projection for the
        whole prompt is one matmul, and only the recurrence steps. Returns the logits for the
        next character (N, V), or with `every` for each position (N, P, V: evaluation).

        A prompt is read by the model's own fused kernel, in fp32 whatever the step's weights
        (oneDNN does just this, in C++: 1,000 characters of a 2x512 in 173 ms against 328 ms
        here). Evaluation reads through this step's own weights, the loop below."""
        if not every:
            return self._feed_fused(ids)
        N, P = ids.shape
        inputs, outs = self.layers[0].table[ids], None            # (N, P, G)
        for i, layer in enumerate(self.layers):
            if outs is not None:
                flat = outs.reshape(N * P, self.H)
                inputs = layer.inp.into(flat, torch.empty(N * P, self.gates.size(1))).view(N, P, -1)
            outs = torch.empty(N, P, self.H)
            for t in range(P):
                g = self.gates.copy_(inputs[:, t])
                self._recur(i, layer, g, fused=False)
                outs[:, t] = self.hs[i]
        if every:
            return self.head.into(outs.reshape(N * P, self.H), torch.empty(N * P, self.logits.size(1))).view(N, P, -1)
        return self.head.into(self.hs[-1], self.logits)

    @torch.no_grad()
    def _feed_fused(self, ids: torch.Tensor) -> torch.Tensor:
        with eval_mode(self.model):
            out, hidden = self.model(ids, self.state())
        self.load(hidden)
        return self.logits.copy_(out[:, -1])

    def _recur(self, i: int, layer: Layer, g: torch.Tensor, fused: bool) -> None:
        """Add the recurrent part to the gates (unless the fused matmul did), then the cell.
        `g` is always self.gates, the buffer the views in self.v look at."""
        if layer.apart:
            layer.rec.into(self.hs[i], self.gh)
        elif not fused:
            layer.rec.into(self.hs[i], g, accumulate=True)
        self._cell(i)

    def _cell(self, i: int) -> None:
        """The gate nonlinearities and the new state of layer i, in place."""
        h = self.hs[i]
        if self.cell == "lstm":
            v, c = self.v, self.c[i]
            v["sig"].sigmoid_()
            v["g"].tanh_()
            c.mul_(v["f"]).addcmul_(v["i"], v["g"])
            torch.tanh(c, out=self.tmp)
            torch.mul(v["o"], self.tmp, out=h)
        elif self.cell == "gru":
            v = self.v
            v["rz"].add_(v["hrz"]).sigmoid_()
            n = v["n"].addcmul_(v["r"], v["hn"]).tanh_()
            torch.sub(h, n, out=self.tmp)                        # h' = (1 - z) n + z h = n + z (h - n)
            h.copy_(n).addcmul_(v["z"], self.tmp)
        else:
            torch.tanh(self.gates, out=h)


# A reduced-precision step is kept only if, on the model's own text, its mean loss stays this
# close to fp32's: `charlm eval` through it must land within 0.005 nats/char of fp32.
QUALITY_TOLERANCE = 0.003
REDUCED_MARGIN = 1.1          # and only if it is at least this much faster
CHECK_CHARS = 256


def fastest_weights(model: CharRNN, batch: int = 1) -> str:
    """The weight precision that steps this model fastest here and keeps its quality. Speeds
    are timed once per machine and shape (charlm.machine.timings); quality is checked on this
    model's own weights, since rounding hurts some weight matrices more than others."""
    from charlm.generate.native.build import kernel_tag
    from charlm.machine import timings
    cfg = model.config
    key = f"{cfg.cell}:{cfg.layers}x{cfg.hidden}:e{cfg.embed}:v{cfg.vocab_size}:n{batch}:{kernel_tag()}"
    rates = timings.recall("sampling", key)
    if not isinstance(rates, dict) or not rates:
        rates, quiet = timings.timed_quietly(lambda: {w: engine_rate(model, batch, w) for w in available_weights()})
        if quiet:
            timings.remember("sampling", key, {w: round(r) for w, r in rates.items()})
    choice = "fp32"
    for weights in sorted(rates, key=rates.get, reverse=True):
        if weights == "fp32" or rates[weights] < REDUCED_MARGIN * rates.get("fp32", 0):
            break
        if abs(loss_gap(model, weights)) <= QUALITY_TOLERANCE:
            choice = weights
            break
    return choice


def available_weights() -> tuple[str, ...]:
    """fp32 always; int8 where PyTorch has a quantized engine for this CPU; bf16 always runs."""
    engines = set(torch.backends.quantized.supported_engines) - {"none"}
    return ("fp32", "bf16", "int8") if engines else ("fp32", "bf16")


@torch.no_grad()
def engine_rate(model: CharRNN, batch: int, weights: str, seconds: float = 0.2) -> float:
    """Characters per second (all streams) of the step alone, fastest of a few short bursts."""
    engine = make_engine(model, batch, weights)
    ids = torch.ones(batch, dtype=torch.long)
    for _ in range(5):
        engine.advance(ids)
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        for _ in range(20):
            engine.advance(ids)
        best = max(best, 20 * batch / (time.perf_counter() - t0))
    return best


@torch.no_grad()
def loss_gap(model: CharRNN, weights: str, chars: int = CHECK_CHARS) -> float:
    """Mean loss (nats/char) through `weights` minus through fp32, on text the model writes itself."""
    gen = torch.Generator().manual_seed(0)
    ref, ids, logits = Engine(model, 1, "fp32"), [], None
    logits = ref.feed(torch.ones(1, 1, dtype=torch.long))
    for _ in range(chars):
        nxt = torch.multinomial(torch.softmax(logits, -1), 1, generator=gen)[:, 0]
        ids.append(int(nxt))
        logits = ref.advance(nxt)
    text = torch.tensor([[1] + ids])
    return _mean_loss(make_engine(model, 1, weights), text) - _mean_loss(Engine(model, 1, "fp32"), text)


def _mean_loss(engine: Engine, text: torch.Tensor) -> float:
    logits, total = engine.feed(text[:, :1]), 0.0
    for t in range(1, text.size(1)):
        total -= torch.log_softmax(logits, -1)[0, text[0, t]].item()
        logits = engine.advance(text[:, t])
    return total / (text.size(1) - 1)
