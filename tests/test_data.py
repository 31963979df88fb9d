"""The encoded corpus: a cached memory map keyed by content and reopened without reading the text,
the nanoGPT split, the bounded validation sample, and the parallel streams that make carried
hidden state valid."""

from __future__ import annotations

import json
import os
import tracemalloc

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from charlm.config import ModelConfig
from charlm.corpus import encoded as data_mod
from charlm.corpus import files as corpus_mod
from charlm.corpus.encoded import (VAL_SAMPLE_CHARS, CharSet, cache_dir, count_unknown, encode_corpus, encode_text,
                                   validation_sample)
from charlm.corpus.files import read_text, source_of_path
from charlm.corpus.vocab import CharVocab
from charlm.errors import UsageError
from charlm.model.network import CharRNN
from charlm.train.batches import StreamBatches, eval_streams
from charlm.train.evaluate import evaluate

from conftest import TINY_TEXT

# Every kind of character and line ending the encoder must get right, as bytes in the file.
MIXED = ("\ufeffPlain ASCII,\ttabs\r\nCRLF and bare CR\rLatin-1: café naïve ß ÿ\n"
         "CJK 漢字かなカナ 한국어\nemoji 😀🎉 ZWJ 👩\u200d👧 flag 🇳🇱 astral 𝔘𝔫𝔦\n"
         "combining e\u0301 a\u0308 n\u0303, NEL \x85 LS \u2028 ZWNBSP \ufeff end\r\n").encode("utf-8") * 3


def cache_files(suffix: str):
    return sorted(cache_dir().glob(f"*{suffix}"))


def test_encoded_ids_are_the_vocabulary_ids_in_the_smallest_dtype(tiny_corpus):
    corpus = encode_corpus(source_of_path(str(tiny_corpus)))
    assert isinstance(corpus.ids, np.memmap)
    assert corpus.ids.dtype == np.uint8                       # 22 characters
    assert corpus.ids.tolist() == corpus.vocab.encode(TINY_TEXT)
    assert corpus.vocab.chars == sorted(set(TINY_TEXT))
    assert len(corpus) == len(TINY_TEXT) and corpus.n_bytes == len(TINY_TEXT.encode())
    with pytest.raises(ValueError):
        corpus.ids[0] = 1                                     # read-only
    (ids_file,) = cache_files(".ids")
    assert ids_file.stat().st_size == len(TINY_TEXT)


def test_a_wide_vocabulary_gets_a_wider_dtype(tmp_path):
    text = "".join(chr(0x4E00 + i) for i in range(300)) * 2
    path = tmp_path / "han.txt"
    path.write_text(text, encoding="utf-8")
    corpus = encode_corpus(source_of_path(str(path)))
    assert corpus.ids.dtype == np.uint16
    assert corpus.ids.tolist() == corpus.vocab.encode(text)


def test_second_encode_reuses_the_cache(tiny_corpus, monkeypatch):
    first = encode_corpus(source_of_path(str(tiny_corpus)))
    (ids_file,) = cache_files(".ids")
    before = ids_file.stat()

    def no_rebuild(*args):
        raise AssertionError("the cache was rebuilt")

    monkeypatch.setattr(data_mod, "_build_cache", no_rebuild)
    again = encode_corpus(source_of_path(str(tiny_corpus)))
    after = ids_file.stat()
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (before.st_ino, before.st_mtime_ns, before.st_size)
    assert again.sha256 == first.sha256
    assert np.array_equal(again.ids, first.ids)


def test_the_cache_is_keyed_by_content_not_path(tmp_path, tiny_corpus):
    encode_corpus(source_of_path(str(tiny_corpus)))
    copy = tmp_path / "elsewhere.txt"
    copy.write_bytes(tiny_corpus.read_bytes().replace(b"\n", b"\r\n"))   # same text once normalised
    encode_corpus(source_of_path(str(copy)))
    assert len(cache_files(".ids")) == 1
    tiny_corpus.write_text(TINY_TEXT + "more", encoding="utf-8")
    changed = encode_corpus(source_of_path(str(tiny_corpus)))
    assert len(cache_files(".ids")) == 2
    assert changed.vocab.decode(changed.ids.tolist()).endswith("more")


def test_a_given_vocabulary_gets_its_own_cache_entry_with_unknowns_as_unk(tiny_corpus):
    vocab = CharVocab.from_chars("The cat")
    corpus = encode_corpus(source_of_path(str(tiny_corpus)), vocab)
    own = encode_corpus(source_of_path(str(tiny_corpus)))
    assert len(cache_files(".ids")) == 2
    assert corpus.vocab is vocab
    assert corpus.ids.tolist() == vocab.encode(TINY_TEXT)
    assert own.ids.tolist() == own.vocab.encode(TINY_TEXT)


def _truncate_ids(base):
    ids = base.with_suffix(".ids")
    ids.write_bytes(ids.read_bytes()[:100])


def _garble_meta(base):
    base.with_suffix(".json").write_text("{not json", encoding="utf-8")


def _wrong_length(base):
    meta = json.loads(base.with_suffix(".json").read_text())
    base.with_suffix(".json").write_text(json.dumps(meta | {"length": meta["length"] + 5}))


def _missing_ids(base):
    base.with_suffix(".ids").unlink()


def _old_format(base):
    meta = json.loads(base.with_suffix(".json").read_text())
    base.with_suffix(".json").write_text(json.dumps(meta | {"format": 0}))


@pytest.mark.parametrize("damage", [_truncate_ids, _garble_meta, _wrong_length, _missing_ids, _old_format])
def test_a_damaged_cache_is_rebuilt(tiny_corpus, damage):
    good = encode_corpus(source_of_path(str(tiny_corpus))).ids.tolist()
    (meta,) = cache_files(".json")
    damage(meta.with_suffix(""))
    assert encode_corpus(source_of_path(str(tiny_corpus))).ids.tolist() == good
    assert json.loads(meta.read_text())["length"] == len(TINY_TEXT)   # and the entry is whole again


def _no_checksum(base):
    meta = json.loads(base.with_suffix(".json").read_text())
    base.with_suffix(".json").write_text(json.dumps({k: v for k, v in meta.items() if k != "crc32"}))


def test_a_cache_entry_without_a_checksum_is_rebuilt(tiny_corpus):
    """Entries written before the checksum cannot be checked: they are rebuilt, once."""
    good = encode_corpus(source_of_path(str(tiny_corpus))).ids.tolist()
    (meta,) = cache_files(".json")
    _no_checksum(meta.with_suffix(""))
    assert encode_corpus(source_of_path(str(tiny_corpus))).ids.tolist() == good
    assert isinstance(json.loads(meta.read_text())["crc32"], int)


def test_a_corrupt_cache_file_of_the_right_length_is_detected_and_rebuilt(tiny_corpus):
    good = encode_corpus(source_of_path(str(tiny_corpus))).ids.tolist()
    (ids,) = cache_files(".ids")
    size = ids.stat().st_size
    with open(ids, "r+b") as f:              # flip bytes in place: same length, wrong ids
        f.seek(size // 2)
        byte = f.read(1)
        f.seek(size // 2)
        f.write(bytes([byte[0] ^ 0x01]) * 16)
    st = ids.stat()
    # A real corruption comes long after the file was written; within one clock tick of the
    # write its mtime might not move, so move it as the passing of time would.
    os.utime(ids, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert ids.stat().st_size == size
    assert encode_corpus(source_of_path(str(tiny_corpus))).ids.tolist() == good


def test_an_unchanged_cache_file_is_not_read_to_check_it(tiny_corpus, monkeypatch):
    encode_corpus(source_of_path(str(tiny_corpus)))
    checked = []
    real = data_mod._crc32
    monkeypatch.setattr(data_mod, "_crc32", lambda ids: checked.append(len(ids)) or real(ids))
    encode_corpus(source_of_path(str(tiny_corpus)))
    assert checked == []                      # as it was written: trusted without a read
    (ids,) = cache_files(".ids")
    st = ids.stat()
    os.utime(ids, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))   # touched, not changed
    encode_corpus(source_of_path(str(tiny_corpus)))
    encode_corpus(source_of_path(str(tiny_corpus)))
    assert checked == [len(TINY_TEXT)]        # checked once, then remembered as whole again


def test_an_empty_corpus_is_a_usage_error(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_bytes(b"\xef\xbb\xbf")          # a BOM and nothing else is still empty
    with pytest.raises(UsageError, match="empty"):
        encode_corpus(source_of_path(str(path)))
    with pytest.raises(UsageError, match="empty"):
        encode_text("typed", "")


@pytest.mark.parametrize("n", [10, 11, 19, 20, 99, 100, 1001, 7160, 12345])
def test_the_last_ten_percent_is_validation(n):
    corpus = encode_text("x", ("abcdefg" * n)[:n])
    train, val = corpus.split(0.1)
    assert len(train) == int(n * 0.9)          # nanoGPT's boundary
    assert np.array_equal(np.concatenate([train, val]), corpus.ids)


def test_streams_are_contiguous_chunks_with_targets_shifted_by_one():
    ids = np.arange(100, dtype=np.int64)
    B, T = 3, 4
    batches = StreamBatches(ids, B, T)
    assert batches.stream_len == 33 and batches.chunks_per_epoch == 8
    xs, ys = zip(*(batches.batch(k) for k in range(batches.chunks_per_epoch)))
    for x, y in zip(xs, ys):
        assert x.shape == y.shape == (B, T) and x.dtype == torch.int64
        assert torch.equal(y, x + 1)                                  # next character
    stream = torch.cat(xs, dim=1)                                     # chunk k+1 follows chunk k
    for b in range(B):
        start = b * batches.stream_len
        assert stream[b].tolist() == list(range(start, start + 8 * T))


def test_streams_read_a_memory_map_in_place(tiny_corpus):
    corpus = encode_corpus(source_of_path(str(tiny_corpus)))
    batches = StreamBatches(corpus.ids, 4, 16)
    x, y = batches.batch(2)
    text = TINY_TEXT
    s = batches.stream_len
    for b in range(4):
        assert corpus.vocab.decode(x[b].tolist()) == text[b * s + 32: b * s + 48]
        assert corpus.vocab.decode(y[b].tolist()) == text[b * s + 33: b * s + 49]


def test_one_batch_needs_b_times_t_plus_one_characters():
    B, T = 4, 8
    assert StreamBatches(np.zeros(B * T + 1, np.uint8), B, T).chunks_per_epoch == 1
    with pytest.raises(UsageError, match=r"fewer than one batch needs \(4 x 8 \+ 1 = 33\)"):
        StreamBatches(np.zeros(B * T, np.uint8), B, T)


@pytest.mark.parametrize("n", [2, 50, 65, 716, 5000])
def test_eval_streams_cover_nearly_every_transition(n):
    ids = np.arange(n, dtype=np.int64)
    pairs = list(eval_streams(ids, 16))
    total = sum(y.numel() for _, y in pairs)
    streams = pairs[0][0].shape[0]
    assert n - 1 - streams < total <= n - 1
    for x, y in pairs:
        assert torch.equal(y, x + 1)


def test_tinyshakespeare_split_is_validated_whole():
    """Its published-comparable figures need the whole 111,540-character split at every validation."""
    val = np.arange(111_540, dtype=np.uint8)
    assert validation_sample(val) is val


def test_the_validation_sample_of_a_small_split_is_the_whole_split():
    val = np.arange(1000, dtype=np.uint8)
    assert validation_sample(val, max_chars=1000) is val


def test_the_validation_sample_of_a_large_split_is_evenly_spread_windows():
    n, max_chars, windows = 1_000_003, 1600, 16
    val = np.arange(n, dtype=np.int64)
    sample = validation_sample(val, max_chars=max_chars, windows=windows)
    assert sample.shape == (windows, max_chars // windows) and sample.size <= max_chars
    starts = sample[:, 0]
    assert starts[0] == 0 and starts[-1] + sample.shape[1] == n               # from the start to the end
    gaps = np.diff(starts)
    assert gaps.max() - gaps.min() <= 1                                        # evenly spaced
    for row in sample:
        assert np.array_equal(row, np.arange(row[0], row[0] + sample.shape[1]))   # contiguous
    assert np.array_equal(validation_sample(val, max_chars=max_chars, windows=windows), sample)


def test_the_default_sample_is_bounded(tiny_corpus):
    big = np.zeros(10 * VAL_SAMPLE_CHARS, dtype=np.uint8)
    assert validation_sample(big).size <= VAL_SAMPLE_CHARS


def test_evaluate_runs_each_window_of_the_sample_as_its_own_stream():
    torch.manual_seed(0)
    model = CharRNN(ModelConfig(vocab_size=11, layers=1, hidden=16, embed=8)).eval()
    val = np.random.default_rng(0).integers(0, 11, size=50_000).astype(np.uint8)
    sample = validation_sample(val, max_chars=4 * 1200, windows=4)     # windows longer than a 512 chunk
    total, count = 0.0, 0
    with torch.no_grad():
        for row in sample:                                              # one window, fresh state, one call
            ids = torch.from_numpy(row.astype(np.int64))[None]
            logits, _ = model(ids[:, :-1])
            total += F.cross_entropy(logits.flatten(0, 1), ids[0, 1:], reduction="sum").item()
            count += len(row) - 1
    result = evaluate(model, sample, torch.device("cpu"))
    assert result.chars == count
    assert result.nats_per_char == pytest.approx(total / count, rel=1e-5)


def test_an_unchanged_file_reopens_without_reading_its_text(tiny_corpus, monkeypatch):
    first = encode_corpus(source_of_path(str(tiny_corpus)))

    def no_reading(*args):
        raise AssertionError("the text was read")

    monkeypatch.setattr(data_mod, "iter_text", no_reading)
    again = encode_corpus(source_of_path(str(tiny_corpus)))
    assert again.sha256 == first.sha256 == encode_text("t", TINY_TEXT).sha256   # the same definition as ever
    assert again.vocab.itos == first.vocab.itos
    assert np.array_equal(again.ids, first.ids)


def test_a_given_vocabulary_gets_the_hash_from_the_index(tiny_corpus, monkeypatch):
    encode_corpus(source_of_path(str(tiny_corpus)))
    vocab = CharVocab.from_chars("The cat")
    reads = []
    real_iter_text = data_mod.iter_text
    monkeypatch.setattr(data_mod, "iter_text", lambda source: reads.append(1) or real_iter_text(source))
    given = encode_corpus(source_of_path(str(tiny_corpus)), vocab)
    assert len(reads) == 1                        # one read to encode with the new vocabulary, none to hash
    assert given.ids.tolist() == vocab.encode(TINY_TEXT)
    assert encode_corpus(source_of_path(str(tiny_corpus)), vocab).sha256 == given.sha256 and len(reads) == 1


def _touch(path):
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def _same_size_new_text(path):
    stat = path.stat()
    path.write_text(TINY_TEXT.replace("cat", "cow"), encoding="utf-8")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def _new_size_same_mtime(path):
    stat = path.stat()
    path.write_text(TINY_TEXT + "more", encoding="utf-8")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def _garbled_index(path):
    (entry,) = (cache_dir() / "index").glob("*.json")
    entry.write_text("{not json", encoding="utf-8")


def _index_with_a_path_for_a_hash(path):
    (entry,) = (cache_dir() / "index").glob("*.json")
    entry.write_text(json.dumps(json.loads(entry.read_text()) | {"sha256": "../" * 21 + "x"}), encoding="utf-8")


@pytest.mark.parametrize("change", [_touch, _same_size_new_text, _new_size_same_mtime, _garbled_index,
                                    _index_with_a_path_for_a_hash])
def test_a_changed_file_or_a_damaged_index_is_read_again(tiny_corpus, monkeypatch, change):
    encode_corpus(source_of_path(str(tiny_corpus)))
    change(tiny_corpus)
    reads = []
    real_iter_text = data_mod.iter_text
    monkeypatch.setattr(data_mod, "iter_text", lambda source: reads.append(1) or real_iter_text(source))
    again = encode_corpus(source_of_path(str(tiny_corpus)))
    text = tiny_corpus.read_text(encoding="utf-8")
    assert reads and again.sha256 == encode_text("t", text).sha256
    assert again.vocab.decode(again.ids.tolist()) == text
    reads.clear()
    encode_corpus(source_of_path(str(tiny_corpus)))
    assert not reads                              # and remembered again
    assert len(list((cache_dir() / "index").glob("*.json"))) == 1     # replaced, not added


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 7, 64, 1 << 22])
def test_the_fast_encode_gives_the_tokenizers_ids_across_chunk_boundaries(tmp_path, monkeypatch, chunk):
    # Small chunks cut multi-byte characters, CRLFs and the BOM at every possible place.
    monkeypatch.setattr(corpus_mod, "SNIFF_BYTES", chunk)
    monkeypatch.setattr(corpus_mod, "CHUNK_BYTES", chunk)
    path = tmp_path / "mixed.txt"
    path.write_bytes(MIXED)
    text = read_text(source_of_path(str(path)))
    assert "\r" not in text and not text.startswith("\ufeff") and "😀" in text   # normalised, all there
    corpus = encode_corpus(source_of_path(str(path)))
    assert corpus.vocab.chars == sorted(set(text))
    assert corpus.ids.tolist() == corpus.vocab.encode(text)
    assert corpus.sha256 == encode_text("t", text).sha256
    partial = CharVocab.from_chars("Plain 漢😀e\u0301")                 # unknowns of every width become <unk>
    assert encode_corpus(source_of_path(str(path)), partial).ids.tolist() == partial.encode(text)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(), max_size=6))
def test_the_character_set_is_every_character_fed_in(pieces):
    chars = CharSet()
    for piece in pieces:
        chars.add(piece.encode("utf-8"))
    assert chars.sorted() == "".join(sorted(set("".join(pieces))))


def test_the_character_set_sees_a_character_late_in_a_long_piece():
    pieces = ["a" * 5000 + "é", "b" * 3000 + "😀" + "c", "abc", "漢" * 70_000 + "z", "a" * 10_000 + "\x7f"]
    chars = CharSet()
    for piece in pieces:
        chars.add(piece.encode("utf-8"))
    assert chars.sorted() == "".join(sorted(set("".join(pieces))))


def _eval_streams_materialised(ids, n_streams, chunk=512):
    """eval_streams as it was: the whole array as int64 first (the reference)."""
    n_streams = max(1, min(n_streams, (len(ids) - 1) // 64 or 1))
    stream_len = (len(ids) - 1) // n_streams
    arr = torch.from_numpy(np.asarray(ids[: n_streams * stream_len + 1], dtype=np.int64))
    x, y = arr[:-1].view(n_streams, stream_len), arr[1:].view(n_streams, stream_len)
    for i in range(0, stream_len, chunk):
        yield x[:, i:i + chunk], y[:, i:i + chunk]


@pytest.mark.parametrize("streams", [1, 16])
def test_eval_streams_on_a_large_memmap_gives_the_same_chunks_in_bounded_memory(tmp_path, streams):
    n = 3_000_001
    path = tmp_path / "big.ids"
    np.random.default_rng(0).integers(0, 256, size=n, dtype=np.uint8).tofile(path)
    ids = np.memmap(path, dtype=np.uint8, mode="r", shape=(n,))
    for (x, y), (rx, ry) in zip(eval_streams(ids, streams), _eval_streams_materialised(ids, streams), strict=True):
        assert torch.equal(x, rx) and torch.equal(y, ry)
    tracemalloc.start()
    try:
        for _ in eval_streams(ids, streams):
            pass
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20                          # a chunk at a time, not 8 bytes per id (24 MB)


@pytest.mark.parametrize("block", [1, 7, 1 << 24])
def test_unknowns_are_counted_a_block_at_a_time(block):
    ids = np.random.default_rng(1).integers(0, 5, size=1000).astype(np.uint8)
    assert count_unknown(ids, block) == int((ids == 0).sum()) > 0
