"""The streaming sampler, on a model trained by `charlm train`: one character per step, seeded,
greedy at temperature 0, top-k / top-p that do what they say, controls that apply at the very
next character, and <unk> never said."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from charlm.corpus.vocab import UNK, UNK_ID
from charlm.errors import UsageError
from charlm.generate.engine import available_weights
from charlm.generate.sampler import SampleControls, Sampler, Token
from charlm.model.checkpoint import load_checkpoint

from helpers import greedy_after, logits_along

PRIME = "The cat "


@pytest.fixture(scope="module")
def ckpt(trained_run):
    return load_checkpoint(trained_run.run_dir)


@pytest.fixture
def sampler(ckpt):
    return Sampler(ckpt.model, ckpt.vocab)


def ids_of(vocab, text):
    return [vocab.stoi[c] for c in text]


def sample_ids(sampler, controls, length=60, seed=0, prime=PRIME):
    return [toks[0].id for toks in sampler.stream(prime, controls, length, seed)]


def test_the_stream_yields_one_character_at_a_time(sampler, ckpt):
    stream = sampler.stream(PRIME, SampleControls(0.8), length=25, seed=1)
    steps = list(stream)
    assert len(steps) == 25
    for toks in steps:
        (tok,) = toks
        assert isinstance(tok, Token) and len(tok.char) == 1
        assert tok.char == ckpt.vocab.itos[tok.id] and 0.0 < tok.prob <= 1.0
    assert "".join(t[0].char for t in steps) == sampler.generate(PRIME, 25, SampleControls(0.8), seed=1)


def test_an_endless_stream_runs_until_the_caller_stops(sampler):
    stream = sampler.stream(PRIME, SampleControls(1.0), length=None, seed=3)
    assert len(list(itertools.islice(stream, 700))) == 700, "an endless stream ended on its own"
    stream.close()


def test_same_seed_same_text_other_seed_other_text(sampler):
    c = SampleControls(1.0)
    a, b = sampler.generate(PRIME, 200, c, seed=5), sampler.generate(PRIME, 200, c, seed=5)
    assert a == b and len(a) == 200
    assert sampler.generate(PRIME, 200, c, seed=6) != a


def test_temperature_zero_is_argmax(sampler, ckpt):
    got = sample_ids(sampler, SampleControls(0.0), length=60, seed=1)
    assert got == greedy_after(ckpt.model, ids_of(ckpt.vocab, PRIME), [], 60)
    assert got == sample_ids(sampler, SampleControls(0.0), length=60, seed=2)    # no randomness left


@pytest.mark.parametrize("controls", [SampleControls(1.0, top_k=1), SampleControls(3.0, top_k=1),
                                      SampleControls(1.0, top_p=1e-6), SampleControls(2.0, top_p=1e-3)])
def test_top_k_one_and_tiny_top_p_are_greedy(sampler, controls):
    greedy = sample_ids(sampler, SampleControls(0.0))
    for seed in range(3):
        assert sample_ids(sampler, controls, seed=seed) == greedy


def test_top_k_samples_only_among_the_k_likeliest(sampler, ckpt):
    got = sample_ids(sampler, SampleControls(2.0, top_k=3), length=80, seed=0)
    prime = ids_of(ckpt.vocab, PRIME)
    for logits, i in zip(logits_along(ckpt.model, prime, got), got):
        logits[:, UNK_ID] = -float("inf")
        assert i in torch.topk(logits[0], 3).indices.tolist()
    assert len(set(got)) > 3                              # and it does sample, not just argmax


def test_top_p_samples_only_within_the_nucleus(sampler, ckpt):
    p, t = 0.6, 1.5
    got = sample_ids(sampler, SampleControls(t, top_p=p), length=80, seed=0)
    prime = ids_of(ckpt.vocab, PRIME)
    for logits, i in zip(logits_along(ckpt.model, prime, got), got):
        logits[:, UNK_ID] = -float("inf")
        probs = torch.softmax(logits[0] / t, -1)
        order = probs.argsort(descending=True).tolist()
        mass_before = probs[order].cumsum(0) - probs[order]
        nucleus = [j for j, m in zip(order, mass_before.tolist()) if m < p]
        assert i in nucleus


def test_controls_changed_mid_stream_apply_at_the_very_next_character(sampler, ckpt):
    """Switch to greedy after 10 characters: character 11 on must be the argmax continuation
    from the carried state. The seed is one where, left alone, character 11 would not be."""
    prime = ids_of(ckpt.vocab, PRIME)
    for seed in range(100):
        untouched = sample_ids(sampler, SampleControls(3.0), length=11, seed=seed)
        if untouched[10] != greedy_after(ckpt.model, prime, untouched[:10], 1)[0]:
            break
    else:
        pytest.fail("no seed where temperature 3 departs from greedy at character 11")

    controls = SampleControls(3.0)
    stream = sampler.stream(PRIME, controls, length=40, seed=seed)
    first = [next(stream)[0].id for _ in range(10)]
    assert first == untouched[:10]
    controls.temperature = 0.0
    rest = [toks[0].id for toks in stream]
    assert rest == greedy_after(ckpt.model, prime, first, 30)


def test_top_k_changed_mid_stream(sampler, ckpt):
    controls = SampleControls(2.0)
    stream = sampler.stream(PRIME, controls, length=30, seed=4)
    first = [next(stream)[0].id for _ in range(5)]
    controls.top_k = 1
    rest = [toks[0].id for toks in stream]
    assert rest == greedy_after(ckpt.model, ids_of(ckpt.vocab, PRIME), first, 25)


def test_prime_characters_missing_from_the_vocabulary_are_skipped(sampler):
    c = SampleControls(0.9)
    assert sampler.prompt_ids("The ☃cat\u200d") == sampler.prompt_ids("The cat")
    assert sampler.generate("The ☃cat\u200d", 80, c, seed=2) == sampler.generate("The cat", 80, c, seed=2)


def test_an_empty_prime_starts_at_a_line_break(sampler):
    c = SampleControls(0.0)
    assert sampler.generate("", 40, c) == sampler.generate("\n", 40, c)


@pytest.mark.parametrize("controls", [SampleControls(0.0), SampleControls(1.0), SampleControls(5.0),
                                      SampleControls(1.0, top_k=2), SampleControls(1.0, top_p=0.5)])
def test_unk_is_never_sampled(ckpt, controls):
    model = copy.deepcopy(ckpt.model)
    with torch.no_grad():
        model.head.bias[UNK_ID] = 100.0               # the model now all but insists on <unk>
    sampler = Sampler(model, ckpt.vocab)
    ids = [i for toks in sampler.stream(PRIME, controls, 150, seed=0, num_samples=3) for i in (t.id for t in toks)]
    assert UNK_ID not in ids and len(ids) == 450
    assert UNK not in sampler.generate(PRIME, 150, controls, seed=1)


def test_num_samples_are_generated_as_one_batch(sampler):
    steps = list(sampler.stream(PRIME, SampleControls(1.5), length=50, seed=0, num_samples=4))
    assert len(steps) == 50 and all(len(toks) == 4 for toks in steps)
    texts = ["".join(toks[i].char for toks in steps) for i in range(4)]
    assert len(set(texts)) > 1
    greedy = list(sampler.stream(PRIME, SampleControls(0.0), length=50, num_samples=3))
    rows = ["".join(toks[i].char for toks in greedy) for i in range(3)]
    assert rows == [sampler.generate(PRIME, 50, SampleControls(0.0))] * 3


def test_stop_string_ends_a_sample(sampler):
    full = sampler.generate(PRIME, 200, SampleControls(0.0))
    stop = "the"
    assert stop in full
    cut = sampler.generate(PRIME, 200, SampleControls(0.0), stop=stop)
    assert cut == full[:full.index(stop) + len(stop)]
    assert sampler.generate(PRIME, 200, SampleControls(0.0), stop="never there") == full


def test_a_stream_continues_from_the_carried_state(sampler):
    c = SampleControls(0.0)
    whole = sampler.generate(PRIME, 40, c)
    first = sampler.stream(PRIME, c, 20)
    head = "".join(t[0].char for t in first)
    tail = "".join(t[0].char for t in sampler.stream("", c, 20, after=first.continuation()))
    assert head + tail == whole


def test_sampling_leaves_the_model_in_its_mode(ckpt):
    model = copy.deepcopy(ckpt.model).train()
    Sampler(model, ckpt.vocab).generate(PRIME, 5, SampleControls(0.5), seed=0)
    assert model.training


@pytest.mark.parametrize("controls, needle", [
    (SampleControls(-0.1), "temperature"), (SampleControls(float("nan")), "temperature"),
    (SampleControls(float("inf")), "temperature"), (SampleControls(1.0, top_k=-1), "top-k"),
    (SampleControls(1.0, top_p=0.0), "top-p"), (SampleControls(1.0, top_p=1.5), "top-p"),
    (SampleControls(1.0, top_p=float("nan")), "top-p"),
])
def test_bad_controls_are_usage_errors(sampler, controls, needle):
    with pytest.raises(UsageError, match=needle):
        next(sampler.stream(PRIME, controls, 5))



def test_a_seed_set_mid_stream_reseeds_the_very_next_character(sampler):
    """Setting controls.seed mid-stream makes what follows the text that seed gives from there."""
    controls = SampleControls(temperature=1.0)
    stream = sampler.stream("The ", controls, 60, seed=1)
    prefix = "".join(tok.char for _, (tok,) in zip(range(20), stream))
    controls.seed = 42
    after = "".join(tok.char for (tok,) in stream)
    fresh = "".join(tok.char for (tok,) in sampler.stream("The " + prefix, SampleControls(temperature=1.0), 40, seed=42))
    assert after == fresh
    other = "".join(tok.char for (tok,) in sampler.stream("The " + prefix, SampleControls(temperature=1.0), 40, seed=43))
    assert after != other


@settings(max_examples=50, deadline=None)
@given(prime=st.text(max_size=12), temperature=st.floats(0, 5), top_k=st.integers(0, 40),
       top_p=st.floats(0.01, 1.0), seed=st.integers(0, 2**63 - 1), samples=st.integers(1, 3),
       weights=st.sampled_from([*available_weights(), "reference"]))
def test_sampler_output_always_decodes(ckpt, prime, temperature, top_k, top_p, seed, samples, weights):
    """Whatever the prompt and controls, every character sampled is one of the vocabulary's (never
    <unk>, never empty), and the text encodes back to the very ids that were sampled."""
    vocab = ckpt.vocab
    sampler = Sampler(ckpt.model, vocab, weights=weights)
    controls = SampleControls(temperature, top_k, top_p)
    if prime and not any(c in vocab.stoi for c in prime):
        with pytest.raises(UsageError, match="knows none of the prompt's characters"):
            sampler.stream(prime, controls, 20, seed, samples)
        return
    ids = [[] for _ in range(samples)]
    for tokens in sampler.stream(prime, controls, 20, seed, samples):
        assert len(tokens) == samples
        for row, tok in zip(ids, tokens):
            assert tok.id != UNK_ID and tok.char == vocab.itos[tok.id] and len(tok.char) == 1
            assert 0.0 <= tok.prob <= 1.0
            row.append(tok.id)
    for row in ids:
        text = vocab.decode(row)
        assert len(row) == 20 and vocab.encode(text) == row
        assert text.encode("utf-8").decode("utf-8") == text


@pytest.mark.parametrize("rows", [1, 2])              # one stream (its own path) and a batch
@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_pick_draws_each_character_as_often_as_its_probability(rows, temperature):
    from charlm.generate.sampler import Uniforms, pick
    logits = torch.tensor([[2.0, 0.5, -1.0, 1.5, 0.0, -3.0, 1.0, 0.2]]).repeat(rows, 1)
    expected = torch.softmax(logits[0] / temperature, -1)
    expected[UNK_ID] = 0.0
    expected /= expected.sum()                          # <unk> is left out, the rest renormalised
    uniforms, counts, draws = Uniforms(torch.Generator().manual_seed(0)), torch.zeros(8), 20_000 // rows
    for _ in range(draws):
        ids, probs = pick(logits, SampleControls(temperature), uniforms)
        counts += torch.bincount(torch.tensor(ids), minlength=8)
        assert probs == pytest.approx(torch.softmax(logits, -1)[0, ids].tolist(), rel=1e-5)
    assert counts[UNK_ID] == 0
    assert torch.allclose(counts / counts.sum(), expected, atol=0.012), (counts / counts.sum(), expected)


def test_candidates_are_the_models_own_next_character_guesses(sampler, ckpt):
    stream = sampler.stream(PRIME, SampleControls(0.8), None, seed=3)
    produced = [toks[0].id for toks in (next(stream) for _ in range(5))]
    top = stream.candidates(5)
    expected = logits_along(ckpt.model, ids_of(ckpt.vocab, PRIME), produced)[-1][0]
    probs = torch.softmax(expected, -1)
    probs[UNK_ID] = 0
    assert [t.id for t in top] == probs.topk(5).indices.tolist()
    assert [t.prob for t in top] == pytest.approx(probs.topk(5).values.tolist(), abs=1e-5)
    assert stream.candidates(5) == top                      # asking again feeds nothing more


def test_a_chosen_character_is_fed_as_a_drawn_one_would_be(sampler, ckpt):
    """Pick-next: choosing the third candidate makes it the next character, and what the model
    guesses after it is what it guesses after that text read straight through."""
    stream = sampler.stream(PRIME, SampleControls(1.0), None, seed=0)
    third = stream.candidates(3)[2]
    (tok,) = stream.choose(third.id)
    assert tok.id == third.id and tok.prob == pytest.approx(third.prob, abs=1e-6)
    after = logits_along(ckpt.model, ids_of(ckpt.vocab, PRIME), [third.id])[-1][0]
    assert [t.id for t in stream.candidates(3)] == [i for i in torch.softmax(after, -1).topk(4).indices.tolist()
                                                    if i != UNK_ID][:3]
    with pytest.raises(UsageError):
        stream.choose(UNK_ID)


def test_asking_for_candidates_does_not_change_where_a_continuation_goes(sampler):
    greedy = SampleControls(0.0)
    straight = [t[0].id for t in sampler.stream(PRIME, greedy, 30, seed=0)]
    first = sampler.stream(PRIME, greedy, 12, seed=0)
    head = [t[0].id for t in first]
    first.candidates(5)                                     # feeds the last character to the model
    rest = [t[0].id for t in sampler.stream("", greedy, 18, seed=0, after=first.continuation())]
    assert head + rest == straight


def test_uniforms_taken_in_blocks_are_the_generators_own_draws_in_order():
    from charlm.generate.sampler import Uniforms
    uniforms = Uniforms(torch.Generator().manual_seed(7))
    taken = [u for n in (1, 3, 1, 300, 2, 1) * 3 for u in uniforms.take(n)]
    expected = torch.rand(len(taken), generator=torch.Generator().manual_seed(7)).tolist()
    assert taken == expected
    uniforms.reseed(9)
    assert uniforms.take(2) == torch.rand(2, generator=torch.Generator().manual_seed(9)).tolist()
