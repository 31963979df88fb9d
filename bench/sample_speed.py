"""Generation speed: charlm's sampler vs a plain nn.LSTM step loop, against the memory bound.

For each model shape (random weights: speed does not depend on them), in this one run:
  plain      the loop a person writes: embedding -> nn.LSTM -> linear, one character per call,
             softmax + multinomial (temperature 1)
  charlm     charlm.generate.sampler.Sampler as `charlm sample` uses it (weights auto: the fastest step
             here that keeps the loss), and in each precision on its own; int8 on charlm's C
             step (charlm/native, where it builds) and on PyTorch's int8 kernel
  bound      the weight-streaming bound: chars/s if a character cost only reading the step's
             weights once at that precision, measured by one matrix-vector product over the
             same number of bytes: PyTorch's, and for int8 also the C step's own product, the
             faster of them (the fraction of it reached is printed)
Also the time to read a 1,000-character prompt (vs generating 700 characters), and chars/s
per sample and in total for --num-samples 1, 8 and 64.

    python -m bench.sample_speed [--chars 3000] [--shapes 2x512,2x256]
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch
from torch import nn

from bench.machine import describe
from charlm.config import GATES, ModelConfig
from charlm.corpus.vocab import CharVocab
from charlm.generate.engine import EngineWeights, available_weights, fastest_weights
from charlm.generate.native.build import library, problem
from charlm.generate.sampler import SampleControls, Sampler
from charlm.model.network import CharRNN

VOCAB = CharVocab.from_chars("".join(chr(c) for c in range(32, 97)))     # 65 characters + <unk>
WARMUP = 100
ROUNDS = 5                # each rate is the fastest of this many rounds, the bound's too


def model_of(shape: str) -> CharRNN:
    layers, hidden = map(int, shape.split("x"))
    torch.manual_seed(0)
    return CharRNN(ModelConfig(vocab_size=len(VOCAB), layers=layers, hidden=hidden, embed=64)).eval()


@torch.no_grad()
def plain_rate(model: CharRNN, chars: int) -> float:
    """The beginner's loop over the same weights: nn.LSTM called on one character at a time."""
    cfg = model.config
    lstm = nn.LSTM(cfg.embed, cfg.hidden, cfg.layers, batch_first=True).eval()
    for i, layer in enumerate(model.rnn):
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(lstm, f"{name}_l{i}").copy_(getattr(layer, f"{name}_l0"))
    x, hidden = torch.tensor([[1]]), None
    t0 = None
    for n in range(chars + WARMUP):
        if n == WARMUP:
            t0 = time.perf_counter()
        out, hidden = lstm(model.embed(x), hidden)
        probs = torch.softmax(model.head(out[:, -1]), -1)
        x = torch.multinomial(probs, 1)
    return chars / (time.perf_counter() - t0)


def sampler_rate(model: CharRNN, chars: int, weights: str, num_samples: int = 1, native: bool | None = None) -> float:
    """Characters per second per sample, through the Stream exactly as `charlm sample` drives it
    (native=False: int8 on PyTorch's kernel rather than the C step)."""
    sampler = Sampler(model, VOCAB, weights=weights)
    if native is False:
        sampler._prepared[weights] = EngineWeights(model, weights, native=False)
    stream = sampler.stream("The ", SampleControls(1.0), None, seed=0, num_samples=num_samples)
    for _ in range(WARMUP):
        next(stream)
    best = 0.0
    for _ in range(ROUNDS):               # the fastest round: a shared VM's noise only slows one down
        t0 = time.perf_counter()
        for _ in range(chars // ROUNDS):
            next(stream)
        best = max(best, (chars // ROUNDS) / (time.perf_counter() - t0))
    return best


def step_bytes(model: CharRNN, weights: str) -> int:
    """Bytes of weights one character reads: each layer's recurrent (and, above the first,
    input) matrix, and the head; the first layer's input is one table row."""
    cfg = model.config
    G, H, E, V = GATES[cfg.cell] * cfg.hidden, cfg.hidden, cfg.embed, cfg.vocab_size
    elements = sum((H if i else 0) * G + H * G for i in range(cfg.layers)) + H * V
    del E
    return elements * {"fp32": 4, "bf16": 2, "int8": 1}[weights]


@torch.no_grad()
def bound_rate(n_bytes: int, weights: str, seconds: float = 0.5) -> tuple[float, str]:
    """Matrix-vector products per second over a matrix of `n_bytes` in `weights` precision, the
    fastest way this machine has (and which way that was)."""
    cols = 1024
    rows = max(1, n_bytes // ({"fp32": 4, "bf16": 2, "int8": 1}[weights] * cols))
    v = torch.randn(1, cols)
    ops = {}
    if weights == "int8":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            w = torch.quantize_per_channel(torch.randn(rows, cols), torch.full((rows,), 0.01),
                                           torch.zeros(rows, dtype=torch.long), 0, torch.qint8)
            packed = torch.ops.quantized.linear_prepack(w, None)
        ops["PyTorch"] = lambda: torch.ops.quantized.linear_dynamic(v, packed, True)
        if library() is not None:
            from charlm.generate.native.net import QuantMat
            mat, out = QuantMat(torch.randn(rows, cols), None), torch.empty(1, rows)
            scratch = mat.product_scratch(1)
            ops["C step"] = lambda: mat.product_into(v, out, scratch=scratch)
    else:
        dtype = torch.bfloat16 if weights == "bf16" else torch.float32
        m, vv = torch.randn(cols, rows).to(dtype), v.to(dtype)
        ops["PyTorch"] = lambda: torch.mm(vv, m)
    return max((_products_per_second(op, seconds), name) for name, op in ops.items())


def _products_per_second(op, seconds: float) -> float:
    for _ in range(10):
        op()
    best = 0.0
    for _ in range(ROUNDS):               # measured as the sampler is: the fastest round
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds / ROUNDS:
            op()
            n += 1
        best = max(best, n / (time.perf_counter() - t0))
    return best


def prompt_seconds(model: CharRNN, weights: str, chars: int = 1000) -> float:
    """Seconds to read a prompt of `chars` characters: a new stream, nothing made yet (the
    fastest of ROUNDS, as the rates are)."""
    prompt = "".join(VOCAB.itos[1 + i % (len(VOCAB) - 1)] for i in range(chars))
    sampler = Sampler(model, VOCAB, weights=weights)
    sampler.stream(prompt[:50], SampleControls(1.0), 1, seed=0)              # warm up
    best = float("inf")
    for _ in range(ROUNDS):
        t0 = time.perf_counter()
        sampler.stream(prompt, SampleControls(1.0), 1, seed=0)
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chars", type=int, default=3000, help="characters timed per side")
    ap.add_argument("--shapes", default="2x512,2x256", help="LAYERSxHIDDEN, comma-separated")
    args = ap.parse_args()
    print(f"machine: {describe()}")
    print(f"int8 step: {EngineWeights(model_of('1x64'), 'int8').kernel}"
          + (f" (not the C step: {problem()})" if library() is None else ""))
    for shape in args.shapes.split(","):
        model = model_of(shape)
        chosen = fastest_weights(model, 1)
        plain = plain_rate(model, max(args.chars // 10, 200))
        print(f"\nlstm {shape}, batch 1 (weights auto -> {chosen}):")
        print(f"  plain nn.LSTM step loop: {plain:,.0f} chars/s")
        rows = [("auto", chosen, None), *((w, w, None) for w in available_weights())]
        if library() is not None and "int8" in available_weights():
            rows.append(("int8 on PyTorch", "int8", False))
        for label, w, native in rows:
            rate = sampler_rate(model, args.chars, w, native=native)
            bound, how = bound_rate(step_bytes(model, w), w)
            print(f"  charlm {label:<16}{'(' + w + ')' if label == 'auto' else '':<7} {rate:8,.0f} chars/s · "
                  f"{rate / plain:5.1f}x the plain loop · bound {bound:8,.0f} chars/s "
                  f"({step_bytes(model, w) / 1e6:.1f} MB a char, {how}), {rate / bound:4.0%} of it")
        read = prompt_seconds(model, chosen)
        make = 700 / sampler_rate(model, 700, chosen)
        print(f"  reading a 1,000-char prompt: {read * 1e3:.0f} ms · generating 700 chars: {make * 1e3:.0f} ms "
              f"({'met' if read <= make else 'NOT met'}: reading must take no longer)")
        for n in (1, 8, 64):
            per = sampler_rate(model, max(args.chars // n, 50), "auto", num_samples=n)
            print(f"  --num-samples {n:>2}: {per:8,.0f} chars/s per sample, {per * n:9,.0f} in total")

if __name__ == "__main__":
    main()
