"""The n-gram yardsticks: known entropies, a plain dictionary Kneser-Ney to agree with, English
told from code, and kept per corpus."""

from __future__ import annotations

import math
from collections import Counter, defaultdict

import numpy as np
import pytest

from charlm.corpus import yardsticks as Y
from charlm.corpus.encoded import encode_corpus, encode_text
from charlm.corpus.files import source_of_path

from conftest import SHARED_CORPORA, TINY_TEXT


def test_a_text_whose_entropies_are_known():
    """"aab" repeated: characters 2/3 a, 1/3 b; after an a, a or b alike (ln 2), after a b always
    an a; after two characters, certain."""
    ys = Y.measure(np.array([0, 0, 1] * 3000), np.array([0, 0, 1] * 300))
    assert ys.ngrams[1] == pytest.approx(-(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3)), abs=2e-3)
    assert ys.ngrams[2] == pytest.approx(2 / 3 * math.log(2), abs=2e-3)
    assert ys.ngrams[3] < 1e-3 and ys.ngrams[5] < 1e-3


def naive_kn(train: list[int], val: list[int], n: int, vocab: int) -> float:
    """Interpolated Kneser-Ney written the obvious way, with dictionaries (slow, small texts only)."""
    N = len(train)
    tables = {n: Counter(tuple(train[i:i + n]) for i in range(N - n + 1))}
    for k in range(1, n):     # continuation counts: distinct characters seen before each k-gram
        tables[k] = Counter(g[1:] for g in {tuple(train[i:i + k + 1]) for i in range(N - k)})
    info = {}
    for k, counts in tables.items():
        total, kinds = defaultdict(float), defaultdict(int)
        for g, c in counts.items():
            total[g[:-1]] += c
            kinds[g[:-1]] += 1
        n1, n2 = sum(c == 1 for c in counts.values()), sum(c == 2 for c in counts.values())
        info[k] = counts, total, kinds, min(max(n1 / (n1 + 2 * n2) if n1 else 0.0, 0.05), 0.95)
    seq, nats = train + val, 0.0
    for p in range(N + 1, len(seq)):
        prob = 1.0 / vocab
        for k in range(1, n + 1):
            counts, total, kinds, d = info[k]
            g = tuple(seq[p - k + 1:p + 1])
            if total.get(g[:-1], 0) > 0:
                prob = max(counts.get(g, 0) - d, 0) / total[g[:-1]] + d * kinds[g[:-1]] / total[g[:-1]] * prob
        nats -= math.log(prob)
    return nats / (len(seq) - N - 1)


def test_agrees_with_a_plain_dictionary_kneser_ney_on_real_text():
    text = TINY_TEXT.replace("cat", "owl", 7)[:4000] + "Zebras? Quickly, jump!"     # unseen characters too
    ids = encode_text("t", text).ids.astype(np.int64)
    train, val = ids[:3500].tolist(), ids[3500:].tolist()
    ys = Y.measure(np.array(train), np.array(val))
    for n in Y.ORDERS:
        assert ys.ngrams[n] == pytest.approx(naive_kn(train, val, n, len(set(ids.tolist())) + 1), rel=1e-9)
    assert ys.ngrams[1] > ys.ngrams[2] > ys.ngrams[3] > ys.ngrams[5]


def test_english_is_told_from_code_and_other_languages():
    assert Y.english_like(TINY_TEXT)
    code = "def f(x):\n    return [y for y in range(x) if y % 2]\n\nclass A:\n    pass\n" * 20
    assert not Y.english_like(code)
    assert not Y.english_like("Der Hund sitzt auf der Matte und die Katze schläft im Garten. " * 20)


def test_kept_with_the_corpus_and_read_back(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text(TINY_TEXT, encoding="utf-8")
    corpus = encode_corpus(source_of_path(str(path)))
    assert Y.cached_yardsticks(corpus.sha256, 0.1) is None
    first = Y.yardsticks_for(corpus, 0.1)
    assert Y.cached_yardsticks(corpus.sha256, 0.1) == first and first.english_like
    assert Y.cached_yardsticks(corpus.sha256, 0.2) is None


@pytest.mark.skipif(not (SHARED_CORPORA / "tinyshakespeare.txt").exists(), reason="needs ../shared/corpora")
def test_tinyshakespeares_5gram_is_the_one_the_readings_are_moved_by():
    corpus = encode_corpus(source_of_path(str(SHARED_CORPORA / "tinyshakespeare.txt")))
    ys = Y.yardsticks_for(corpus, 0.1)
    assert ys.ngrams[5] == pytest.approx(Y.SHAKESPEARE_5GRAM, abs=1e-4) and ys.english_like
    assert ys.difficulty() == pytest.approx(1.0, abs=1e-4)


@pytest.mark.skipif(not (SHARED_CORPORA / "tinyshakespeare.txt").exists(), reason="needs ../shared/corpora")
def test_a_text_is_placed_against_shakespeare_at_its_own_size():
    """Shakespeare cut to 75k characters is as hard as Shakespeare: its 5-gram is worse only for
    having less text, which auto's table charges already (against the whole, it read 1.13)."""
    corpus = encode_corpus(source_of_path(str(SHARED_CORPORA / "tinyshakespeare.txt")))
    train, val = corpus.split(0.1)
    small = Y.measure(train[-75_000:], val, corpus.vocab.itos)
    assert small.ngrams[5] == pytest.approx(Y.shakespeare_5gram(75_000), abs=1e-3)
    assert small.difficulty() == pytest.approx(1.0, abs=1e-3)


def test_shakespeares_5gram_by_size_runs_through_its_measured_points_and_falls_with_more_text():
    for n, loss in Y.SHAKESPEARE_5GRAM_BY_SIZE:
        assert Y.shakespeare_5gram(n) == pytest.approx(loss)
    sizes = [1_000, 5_000, 20_000, 50_000, 200_000, 1_003_854, 2_000_000]
    losses = [Y.shakespeare_5gram(n) for n in sizes]
    assert losses == sorted(losses, reverse=True) and len(set(losses)) == len(losses)
    assert Y.Yardsticks({5: 1.5789}).difficulty() == pytest.approx(1.0)      # cached before sizes were kept
