"""charlm novelty: the sorted-suffix index answers as a brute-force scan does, a copied passage
is all copied and a shuffled one is not, and the index is built once and cached."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from charlm.analysis import suffixes as suffixes_mod
from charlm.analysis.novelty import CopyIndex, open_training_index
from charlm.analysis.suffixes import DEPTH, build_suffixes, index_path
from charlm.cancel import Cancelled
from charlm.corpus.encoded import cache_dir, encode_corpus
from charlm.corpus.files import source_of_path
from charlm.errors import UsageError

from conftest import TINY_TEXT, run_cli


def brute_force(corpus: bytes, text: bytes, n: int):
    """What the index must say, by `in` on bytes: each window copied or not (a window with <unk>,
    id 0, never), and the longest copied span, first in the text, at its first place in the corpus."""
    copied = [0 not in text[j:j + n] and text[j:j + n] in corpus for j in range(len(text) - n + 1)]
    best = (0, None, None)
    for j in range(len(text)):
        m = best[0] + 1
        while j + m <= len(text) and 0 not in text[j:j + m] and text[j:j + m] in corpus:
            best = (m, j, corpus.find(text[j:j + m]))
            m += 1
    return np.array(copied, bool), best


def suffix_order(ids: np.ndarray) -> np.ndarray:
    """Positions by their first DEPTH ids (the end reads as 0), then by position."""
    padded = np.concatenate([ids, np.zeros(DEPTH, ids.dtype)])
    return np.array(sorted(range(len(ids)), key=lambda p: (bytes(padded[p:p + DEPTH]), p)))


def random_case(rng):
    """Small alphabets (so repeats abound), corpora with long repeated stretches, and texts that
    are random, or copied (some longer than DEPTH) with random characters before or after."""
    v = int(rng.integers(2, 5))
    corpus = rng.integers(1, v + 1, int(rng.integers(1, 400))).astype(np.uint8)
    if rng.random() < 0.3:
        corpus = np.concatenate([corpus, corpus[:rng.integers(1, len(corpus) + 1)], corpus])
    if rng.random() < 0.4:
        text = corpus[rng.integers(0, len(corpus)):][:rng.integers(1, 300)]
        if rng.random() < 0.5:
            text = np.concatenate([rng.integers(0, v + 1, 5).astype(np.uint8), text])
        if rng.random() < 0.5:
            text = np.concatenate([text, rng.integers(0, v + 1, int(rng.integers(1, 200))).astype(np.uint8)])
    else:
        text = rng.integers(0, v + 1, int(rng.integers(1, 300))).astype(np.uint8)   # 0: <unk>
    n = min(len(text), int(rng.integers(1, 12)) if rng.random() < 0.8 else int(rng.integers(DEPTH, 200)))
    return corpus, text, n


@pytest.mark.parametrize("bucket", [suffixes_mod.BUCKET, 48], ids=["in-memory", "split-into-buckets"])
def test_the_index_answers_as_a_brute_force_scan(bucket, monkeypatch):
    monkeypatch.setattr(suffixes_mod, "BUCKET", bucket)
    monkeypatch.setattr(suffixes_mod, "CHUNK", 37)          # buckets filled over several chunks
    rng = np.random.default_rng(bucket)
    for _ in range(80):
        corpus, text, n = random_case(rng)
        sa = build_suffixes(corpus)
        assert np.array_equal(sa, suffix_order(corpus))
        result = CopyIndex(corpus, sa).novelty(text, n)
        copied, (length, text_start, corpus_start) = brute_force(corpus.tobytes(), text.tobytes(), n)
        assert np.array_equal(result.copied, copied)
        assert result.fraction_copied == pytest.approx(copied.mean())
        assert (result.longest_copied.length, result.longest_copied.text_start,
                result.longest_copied.corpus_start) == (length, text_start, corpus_start)


def test_two_byte_ids_and_a_long_run_of_one_character(monkeypatch):
    """A vocabulary past 256 characters (uint16 ids, keys of four) and a corpus that is one key
    for far longer than a bucket: split deeper and deeper, never all in memory."""
    monkeypatch.setattr(suffixes_mod, "BUCKET", 64)
    rng = np.random.default_rng(3)
    corpus = np.concatenate([np.full(700, 300), rng.integers(1, 400, 300), np.full(200, 300)]).astype(np.uint16)
    sa = build_suffixes(corpus)
    padded = np.concatenate([corpus, np.zeros(DEPTH, corpus.dtype)]).astype(">u2")
    assert np.array_equal(sa, sorted(range(len(corpus)), key=lambda p: (padded[p:p + DEPTH].tobytes(), p)))
    text = np.concatenate([corpus[650:760], [7, 7, 7]]).astype(np.uint16)
    result = CopyIndex(corpus, sa).novelty(text, 20)
    _, best = brute_force(corpus.astype(">u2").tobytes(), text.astype(">u2").tobytes(), 20)   # 2-byte units
    assert result.longest_copied.length == 110 and result.longest_copied.text_start == 0


WORDS = ("the of and to in a is that for it as was with be by on not he this are or his from at which but have "
         "an had they you were their one all we can her has there been if more when will would who so no").split()


def word_text(n_words: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    return " ".join(WORDS[i] for i in rng.integers(0, len(WORDS), n_words))


def test_copied_passage_is_all_copied_and_its_shuffle_is_not(tmp_path):
    corpus_text = word_text(20_000, seed=0)
    path = tmp_path / "words.txt"
    path.write_text(corpus_text)
    encoded = encode_corpus(source_of_path(str(path)))
    train, _ = encoded.split(0.1)
    index = CopyIndex.of(train, encoded.vocab)
    passage = corpus_text[5000:7000]
    copied = index.novelty_of(passage, 20)
    assert copied.fraction_copied == 1.0
    assert copied.longest_copied.as_dict() == {"length": 2000, "text_start": 0, "corpus_start": 5000}
    shuffled = "".join(np.random.default_rng(1).permutation(list(passage)))
    novel = index.novelty_of(shuffled, 20)
    assert novel.fraction_copied < 0.01 and novel.longest_copied.length < 20
    # windows that run into the validation split are not in the training text
    tail = corpus_text[len(train) - 100:len(train) + 100]
    assert index.novelty_of(tail, 20).copied.tolist() == [True] * 81 + [False] * 100


def test_the_index_is_built_once_next_to_the_encoded_ids_and_cancellable(tmp_path, monkeypatch):
    path = tmp_path / "words.txt"
    path.write_text(word_text(5_000, seed=2))
    encoded = encode_corpus(source_of_path(str(path)))
    train, _ = encoded.split(0.1)
    target = index_path(train, len(train))
    assert target.parent == cache_dir() and target.name == f"{Path(encoded.ids.filename).stem}.sa-{len(train)}.npy"
    before = sorted(cache_dir().iterdir())
    stop = threading.Event()
    with monkeypatch.context() as m:
        m.setattr(suffixes_mod, "BUCKET", 1000)             # several buckets: cancelled after the first
        with pytest.raises(Cancelled):
            CopyIndex.of(train, encoded.vocab, progress=lambda d, t: stop.set(), cancel=stop)
    assert sorted(cache_dir().iterdir()) == before          # no index, no part file, no bucket files
    seen = []
    CopyIndex.of(train, encoded.vocab, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (len(train), len(train)) and target.exists() and target.with_suffix(".json").exists()
    again = []
    index = CopyIndex.of(train, encoded.vocab, progress=lambda d, t: again.append(d))
    assert again == [] and isinstance(index.sa, np.memmap)          # read from the cache, not rebuilt
    assert np.array_equal(index.sa, build_suffixes(train))


def test_text_shorter_than_a_window_is_refused(trained_run):
    index = open_training_index(trained_run.run_dir)
    with pytest.raises(UsageError, match="fewer than one window of n=20"):
        index.novelty_of("short", 20)


def test_cli_json_and_text(trained_run, tmp_path):
    passage = TINY_TEXT[300:1300]
    path = tmp_path / "passage.txt"
    path.write_text(passage)
    first = run_cli("novelty", str(trained_run.run_dir), str(path), "--json")
    assert first.returncode == 0, first.stderr
    assert "indexing the training text (once" in first.stderr
    out = json.loads(first.stdout)
    assert out == {"n": 20, "fraction_copied": 1.0,
                   "longest_copied": {"length": 1000, "text_start": 0, "corpus_start": TINY_TEXT.find(passage)}}
    shuffled = tmp_path / "shuffled.txt"
    shuffled.write_text("".join(np.random.default_rng(0).permutation(list(passage))))
    second = run_cli("novelty", str(trained_run.run_dir), str(shuffled), "--n", "10")
    assert second.returncode == 0, second.stderr
    assert "indexed" not in second.stderr                   # the cached index
    assert "0.0% of the 991 windows of 10 characters" in second.stdout
    assert "longest copied span:" in second.stdout


def test_cli_finds_a_moved_corpus_with_corpus(trained_run, tmp_path):
    run = shutil.copytree(trained_run.run_dir, tmp_path / "run")
    (run / "source.json").unlink()
    moved = tmp_path / "moved.txt"
    moved.write_text(TINY_TEXT)
    text = tmp_path / "t.txt"
    text.write_text(TINY_TEXT[:100])
    proc = run_cli("novelty", str(run), str(text), "--corpus", str(moved), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["fraction_copied"] == 1.0
