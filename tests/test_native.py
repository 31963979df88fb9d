"""charlm's C step (charlm/native): built here and run for real against a PyTorch twin of its
own arithmetic, for every cell and depth, one stream and a batch; prompts read layer by layer
equal stepping; its draw equals the Python one; and where it cannot be built, everything runs on
PyTorch's kernels with the reason said."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from test_engine import SHAPES, random_model

from charlm.generate.engine import EngineWeights, make_engine
from charlm.generate.layout import engine_layers
from charlm.generate.native.build import library, problem
from charlm.generate.sampler import SampleControls, Sampler, pick_one, pick_one_in_python

# Big enough that the products are split over threads (with more than one), and 202 units:
# spans of rows that are not whole blocks of 4.
SPLIT = [("lstm", 2, 202), ("gru", 2, 202), ("rnn", 1, 202)]
needs_c = pytest.mark.skipif(library() is None, reason=f"the C step is not built here: {problem()}")


class Twin:
    """step.c's arithmetic in plain PyTorch: the same int8 weights and per-row scales, each
    activation vector quantized with one symmetric scale, integer sums, fp32 cells and head."""

    def __init__(self, model, batch):
        from charlm.generate.native.net import QuantMat
        layers, self.head = engine_layers(model)
        self.cell, self.H = model.config.cell, model.config.hidden
        self.table = layers[0]["table"]
        self.inp = [None] + [QuantMat(w["weight_ih"], w["b_in"]) for w in layers[1:]]
        self.rec = [QuantMat(w["weight_hh"], w["b_rec"]) for w in layers]
        self.h = [torch.zeros(batch, self.H) for _ in layers]
        self.c = [torch.zeros(batch, self.H) for _ in layers]

    @staticmethod
    def product(m, x):
        amax = x.abs().amax(dim=-1, keepdim=True)          # each vector: one symmetric scale
        scale = torch.where(amax > 0, amax / 127.0, torch.ones_like(amax))
        q = torch.round(x * (1.0 / scale))
        ints = q.double() @ m.w[:, :m.struct.cols].double().t()          # exact, as int32 sums are
        out = (ints * (m.scale.double()[None, :] * scale.double())).float()
        return out + m.bias if m.bias is not None else out

    def advance(self, ids):
        x = None
        for i in range(len(self.h)):
            gi = self.table[ids] if i == 0 else self.product(self.inp[i], x)
            gh, H = self.product(self.rec[i], self.h[i]), self.H
            if self.cell == "lstm":
                g = gi + gh
                ii, f, o, u = g[:, :H].sigmoid(), g[:, H:2 * H].sigmoid(), g[:, 2 * H:3 * H].sigmoid(), g[:, 3 * H:].tanh()
                self.c[i] = f * self.c[i] + ii * u
                self.h[i] = o * self.c[i].tanh()
            elif self.cell == "gru":
                r = (gi[:, :H] + gh[:, :H]).sigmoid()
                z = (gi[:, H:2 * H] + gh[:, H:2 * H]).sigmoid()
                n = (gi[:, 2 * H:] + r * gh[:, 2 * H:]).tanh()
                self.h[i] = n + z * (self.h[i] - n)
            else:
                self.h[i] = (gi + gh).tanh()
            x = self.h[i]
        return x @ self.head["weight"].t() + self.head["bias"]


@needs_c
@pytest.mark.parametrize("batch", [1, 5])
@pytest.mark.parametrize("cell, layers, hidden", [(c, n, 72) for c, n in SHAPES] + SPLIT)
def test_the_c_step_computes_what_its_pytorch_twin_does(cell, layers, hidden, batch):
    model = random_model(cell, layers, hidden=hidden)      # 72: columns that are not whole blocks of 64
    engine, twin = make_engine(model, batch, "int8"), Twin(model, batch)
    assert type(engine).__name__ == "NativeEngine"
    ids = torch.randint(1, 23, (batch, 30))
    for t in range(30):
        got, want = engine.advance(ids[:, t]).clone(), twin.advance(ids[:, t])
        # A rounding boundary an activation sits on can tip one way here and the other there:
        # one step apart that is 1/127 of one input; the twin must stay this close for 30 steps.
        torch.testing.assert_close(got, want, rtol=0, atol=2e-4)
    torch.testing.assert_close(engine.state()[0] if cell == "lstm" else engine.state(),
                               torch.stack(twin.h), rtol=0, atol=2e-4)


@needs_c
def test_one_product_on_its_own_is_the_twins():
    from charlm.generate.native.net import QuantMat
    torch.manual_seed(0)
    m = QuantMat(torch.randn(37, 130), torch.randn(37))
    x = torch.randn(6, 130)
    torch.testing.assert_close(m.product(x), Twin.product(m, x), rtol=0, atol=1e-5)
    exact = x @ m.dequantized().t() + m.bias               # what int8 activations approximate: within 2 %
    torch.testing.assert_close(m.product(x), exact, rtol=0, atol=0.02 * exact.abs().max().item())


@needs_c
@pytest.mark.parametrize("cell, layers, hidden", [(c, n, 40) for c, n in SHAPES] + SPLIT)
def test_a_prompt_read_layer_by_layer_equals_stepping_through_it(cell, layers, hidden):
    model = random_model(cell, layers, hidden=hidden)
    ids = torch.randint(1, 23, (2, 300))                   # > one read chunk (256 positions)
    read, stepped = make_engine(model, 2, "int8"), make_engine(model, 2, "int8")
    every = read.feed(ids, every=True)
    for t in range(ids.size(1)):
        torch.testing.assert_close(every[:, t], stepped.advance(ids[:, t]), rtol=0, atol=1e-5)
    for got, want in zip(*(s if isinstance(s, tuple) else (s,) for s in (read.state(), stepped.state()))):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    torch.testing.assert_close(read.feed(ids[:, :1]), stepped.advance(ids[:, 0]), rtol=0, atol=1e-5)   # a 1-char prompt


@needs_c
def test_state_goes_in_and_out_as_the_model_shapes_it():
    model = random_model("lstm", 2, hidden=40)
    a, b = make_engine(model, 2, "int8"), make_engine(model, 2, "int8")
    a.feed(torch.randint(1, 23, (2, 20)))
    b.load(a.state())
    ids = torch.randint(1, 23, (2,))
    torch.testing.assert_close(a.advance(ids), b.advance(ids), rtol=0, atol=0)
    assert a.state()[0].shape == (2, 2, 40) and a.state()[1].shape == (2, 2, 40)


@needs_c
def test_an_id_outside_the_vocabulary_reads_unk_and_does_not_crash():
    model = random_model("lstm", 1)
    a, b = make_engine(model, 1, "int8"), make_engine(model, 1, "int8")
    torch.testing.assert_close(a.advance([10**9]), b.advance([0]), rtol=0, atol=0)
    torch.testing.assert_close(a.feed(torch.tensor([[-5, 3]])), b.feed(torch.tensor([[0, 3]])), rtol=0, atol=0)


@needs_c
def test_the_c_draw_is_the_python_draw():
    gen = torch.Generator().manual_seed(0)
    for trial in range(2000):
        logits = torch.randn(67, generator=gen) * (1 + trial % 5)
        t = [0.05, 0.5, 1.0, 1.7][trial % 4]
        u = torch.rand(1, generator=gen).item()
        i, p = pick_one(logits, t, u)
        j, q = pick_one_in_python(logits, t, u)
        assert i == j and i != 0
        assert p == pytest.approx(q, rel=1e-5)


@needs_c
def test_int8_runs_on_the_c_step_and_pytorch_int8_stays_available():
    model = random_model("lstm", 2, hidden=64)
    assert EngineWeights(model, "int8").kernel.startswith("C step (")
    torch_int8 = EngineWeights(model, "int8", native=False)
    assert torch_int8.kernel == "PyTorch" and type(make_engine(model, 1, torch_int8)).__name__ == "Engine"
    assert type(make_engine(model, 1, "fp32")).__name__ == "Engine"


@needs_c
def test_a_sampler_on_the_c_step_makes_the_same_text_for_the_same_seed():
    from charlm.corpus.vocab import CharVocab

    from conftest import TINY_TEXT
    vocab = CharVocab.from_chars(set(TINY_TEXT))
    model = random_model("lstm", 2, vocab=len(vocab), hidden=64)
    for controls in (SampleControls(1.0), SampleControls(0.7, top_k=5), SampleControls(1.2, top_p=0.9)):
        a = Sampler(model, vocab, weights="int8").generate("The cat", 200, controls, seed=3)
        b = Sampler(model, vocab, weights="int8").generate("The cat", 200, controls, seed=3)
        assert a == b and len(a) == 200


def _charlm_python(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, **env})


FALLBACK = """
import torch
from charlm.generate.native.build import library, problem
from charlm.generate.engine import EngineWeights, make_engine
from test_engine import random_model
model = random_model("gru", 2)
w = EngineWeights(model, "int8")
print(library() is None, w.kernel, type(make_engine(model, 1, w)).__name__, problem())
"""


@pytest.mark.parametrize("env, why", [({"CHARLM_NATIVE": "0"}, "turned off (CHARLM_NATIVE=0)"),
                                      ({"CC": "false"}, "the C step did not compile")])
def test_without_the_c_step_int8_runs_on_pytorch_and_says_why(tmp_path, env, why):
    tests = os.path.dirname(__file__)
    done = _charlm_python(FALLBACK, CHARLM_CACHE=str(tmp_path), PYTHONPATH=tests + os.pathsep + os.environ.get(
        "PYTHONPATH", ""), **env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("True PyTorch Engine "), done.stdout
    assert why in done.stdout


@needs_c
@pytest.mark.parametrize("arch, isa", [("x86-64-v3", "avx2"), ("x86-64", "portable C")])
def test_the_other_instruction_sets_code_computes_the_same(tmp_path, arch, isa):
    """The AVX2 and plain-C dot products, built for those CPUs and run here (where the CPU has
    them), against the same twin: a machine without AVX-512 runs exactly this code."""
    from charlm.machine.cpu import cpu_flags
    if "avx2" not in cpu_flags():
        pytest.skip("this CPU has no AVX2")
    code = f"""
import pytest, sys
from charlm.generate.native.build import library
assert library().charlm_kernel_isa().decode() == {isa!r}, library().charlm_kernel_isa()
sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", "-p", "no:randomly", {__file__!r},
                      "-k", "twin and (lstm-2-72 or gru-3 or rnn-1-72 or lstm-2-202)"]))
"""
    done = _charlm_python(code, CHARLM_CACHE=str(tmp_path), CHARLM_NATIVE_ARCH=arch,
                          PYTHONPATH=os.path.dirname(__file__) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "8 passed" in done.stdout, done.stdout


def test_a_missing_source_is_a_reason_not_a_crash(tmp_path, monkeypatch):
    """An install that left step.c out: generation falls back to PyTorch's kernels, saying why
    (it crashed `charlm train` at its first validation)."""
    from charlm.generate.native import build
    monkeypatch.setattr(build, "SOURCE", tmp_path / "step.c")
    lib, why = build._build_and_load()
    assert lib is None and "cannot be read" in why and str(tmp_path) in why
