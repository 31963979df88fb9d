"""The fast per-character step against the reference path (the model's own forward pass): the
same logits in fp32 for every cell and depth, the same text for the same seed, prompts read
layer by layer, and reduced precisions that keep the loss within tolerance."""

from __future__ import annotations

import pytest
import torch

from charlm.config import ModelConfig
from charlm.corpus.encoded import encode_corpus
from charlm.corpus.files import source_of_path
from charlm.corpus.vocab import CharVocab
from charlm.generate.engine import QUALITY_TOLERANCE, Engine, EngineWeights, fastest_weights, loss_gap
from charlm.generate.sampler import SampleControls, Sampler
from charlm.model.checkpoint import load_checkpoint
from charlm.model.network import CharRNN
from charlm.train.evaluate import evaluate, evaluate_stepped

from conftest import TINY_TEXT

SHAPES = [(cell, layers) for cell in ("lstm", "gru", "rnn") for layers in (1, 2, 3)]


def random_model(cell: str, layers: int, vocab: int = 23, hidden: int = 24) -> CharRNN:
    torch.manual_seed(layers * 7 + len(cell))
    model = CharRNN(ModelConfig(vocab_size=vocab, cell=cell, layers=layers, hidden=hidden, embed=8, dropout=0.3))
    with torch.no_grad():                       # livelier than the init: gates far from 0.5
        for p in model.parameters():
            p.mul_(3.0)
    return model.eval()


@pytest.mark.parametrize("cell, layers", SHAPES)
def test_fp32_steps_give_the_models_own_logits_and_state(cell, layers):
    model = random_model(cell, layers)
    ids = torch.randint(1, 23, (3, 40))
    with torch.no_grad():
        ref, hidden = model(ids)
    engine = Engine(model, batch=3)
    engine.load(None)
    torch.testing.assert_close(engine.feed(ids[:, :15]), ref[:, 14], rtol=0, atol=1e-5)
    for t in range(15, 40):
        torch.testing.assert_close(engine.advance(ids[:, t]), ref[:, t], rtol=0, atol=1e-5)
    for got, want in zip(*(s if isinstance(s, tuple) else (s,) for s in (engine.state(), hidden))):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cell, layers", SHAPES)
def test_a_prompt_read_from_a_given_state_matches_and_every_position_is_right(cell, layers):
    model = random_model(cell, layers)
    ids = torch.randint(1, 23, (2, 30))
    with torch.no_grad():
        _, start = model(ids[:, :10])
        ref, _ = model(ids[:, 10:], start)
    engine = Engine(model, batch=2)
    engine.load(start)
    torch.testing.assert_close(engine.feed(ids[:, 10:], every=True), ref, rtol=0, atol=1e-5)


@pytest.fixture(scope="module")
def trained(trained_run):
    return load_checkpoint(trained_run.run_dir)


@pytest.mark.parametrize("cell, layers", SHAPES)
def test_fp32_gives_the_reference_paths_text_for_the_same_seed(cell, layers):
    vocab = CharVocab.from_chars(set(TINY_TEXT))
    model = random_model(cell, layers, vocab=len(vocab))
    for controls in (SampleControls(1.0), SampleControls(0.7, top_k=5), SampleControls(1.2, top_p=0.9)):
        fast = Sampler(model, vocab, weights="fp32").generate("The cat", 300, controls, seed=11)
        reference = Sampler(model, vocab, weights="reference").generate("The cat", 300, controls, seed=11)
        assert fast == reference


def test_continuing_gives_the_same_text_as_one_stream(trained):
    sampler = Sampler(trained.model, trained.vocab, weights="fp32")
    whole = "".join(t.char for (t,) in sampler.stream("The ", SampleControls(1.0), 200, seed=5))
    first = sampler.stream("The ", SampleControls(1.0), 120, seed=5)
    head = "".join(t.char for (t,) in first)
    assert whole.startswith(head)
    greedy = SampleControls(0.0)
    a = sampler.stream("A cat", greedy, 50)
    text = "".join(t.char for (t,) in a)
    rest = "".join(t.char for (t,) in sampler.stream("", greedy, 50, after=a.continuation()))
    assert text + rest == sampler.generate("A cat", 100, greedy)


@pytest.mark.parametrize("weights", ["bf16", "int8", "int8 on PyTorch"])
def test_reduced_precision_keeps_the_loss_within_tolerance(trained, trained_run, weights):
    """int8 runs on charlm's C step where it is built; PyTorch's int8 kernel is checked too."""
    if weights == "int8 on PyTorch":
        weights = EngineWeights(trained.model, "int8", native=False)
    ids = encode_corpus(source_of_path(str(trained_run.corpus)), trained.vocab).split(0.1)[1]
    fp32 = evaluate(trained.model, ids, torch.device("cpu"), "fp32").nats_per_char
    stepped32 = evaluate_stepped(trained.model, ids, "fp32").nats_per_char
    reduced = evaluate_stepped(trained.model, ids, weights).nats_per_char
    assert stepped32 == pytest.approx(fp32, abs=1e-5)
    assert abs(reduced - fp32) <= 0.005
    assert abs(loss_gap(trained.model, weights)) <= QUALITY_TOLERANCE


def test_auto_weights_are_timed_once_and_fall_back_when_quality_is_lost(trained, monkeypatch):
    from charlm.generate import engine as S
    rates = {"fp32": 1000.0, "bf16": 900.0, "int8": 3000.0}
    timed = []
    monkeypatch.setattr(S, "engine_rate", lambda m, b, w: timed.append(w) or rates[w])
    monkeypatch.setattr("charlm.machine.threads.CpuMeter.others", lambda self: 0.0)     # timed on a quiet machine
    assert fastest_weights(trained.model) == "int8"
    assert fastest_weights(trained.model) == "int8" and len(timed) == len(S.available_weights())   # cached
    monkeypatch.setattr(S, "loss_gap", lambda m, w: 0.02)        # int8 would cost 0.02 nats/char
    assert fastest_weights(trained.model) == "fp32"


def test_the_sampler_reports_unknown_prompt_characters_in_one_place(trained):
    from charlm.generate.sampler import unknown_note
    note = unknown_note(trained.vocab, "The ☃ cat €")
    assert "2 character(s)" in note and "☃€" in note
    assert unknown_note(trained.vocab, "The cat") is None
