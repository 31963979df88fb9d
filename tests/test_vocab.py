"""The character vocabulary: one token per Unicode character plus <unk>, a standard tokenizer.json,
and an exact round trip of any text."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, models

from charlm.corpus.vocab import UNK, UNK_ID, CharVocab
from charlm.errors import UsageError

TRICKY = [
    "line one\nline two\n\nend\n",
    "tab\there\ttoo\t\n",
    "trailing spaces   \n   leading",
    "emoji 😀🎉 and astral 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "ZWJ family 👩\u200d👩\u200d👧\u200d👦 and a flag 🇳🇱",
    "combining: e\u0301 a\u0308 n\u0303 vs precomposed é ä ñ",
    "control \x00\x01\x7f, NEL \x85, LS \u2028, ZWNBSP \ufeff",
    "RTL: שָׁלוֹם مرحبا",
    "<unk> as text is just five characters",
]


def test_one_token_per_character_plus_unk():
    v = CharVocab.from_chars("hello")
    assert len(v) == 5                       # e h l o + <unk>
    assert v.itos[UNK_ID] == UNK
    assert v.chars == ["e", "h", "l", "o"]   # sorted by code point
    assert v.encode("hello") == [2, 1, 3, 3, 4]


@pytest.mark.parametrize("text", TRICKY)
def test_round_trip_tricky_text(text):
    v = CharVocab.from_chars(text)
    ids = v.encode(text)
    assert len(ids) == len(text)             # one id per code point, nothing merged or dropped
    assert UNK_ID not in ids
    assert v.decode(ids) == text
    assert v.tokenizer.decode(ids) == text   # tokenizers' own decoder joins without spaces
    assert v.encode_array(text).tolist() == ids


def test_unknown_characters_become_unk_not_nothing():
    v = CharVocab.from_chars("ab")
    assert v.encode("axxb") == [1, UNK_ID, UNK_ID, 2]
    assert v.encode_array("axxb").tolist() == [1, UNK_ID, UNK_ID, 2]
    assert v.unknown_chars("xaybx") == ["x", "y"]


def test_empty_vocabulary_maps_everything_to_unk():
    v = CharVocab.from_chars("")
    assert len(v) == 1
    assert v.encode("ab") == [UNK_ID, UNK_ID]
    assert v.encode_array("ab").tolist() == [UNK_ID, UNK_ID]


def test_saves_a_standard_tokenizer_json(tmp_path):
    text = "Hello,\tworld!\n👩\u200d👧 e\u0301"
    v = CharVocab.from_chars(text)
    path = tmp_path / "tokenizer.json"
    v.save(path)
    spec = json.loads(path.read_text(encoding="utf-8"))
    assert spec["model"]["type"] == "BPE"
    assert spec["model"]["merges"] == []
    assert spec["model"]["unk_token"] == UNK
    assert spec["model"]["vocab"] == {c: i for i, c in enumerate(v.itos)}
    # Anyone can use it with plain tokenizers, no charlm needed.
    plain = Tokenizer.from_file(str(path))
    assert plain.decode(plain.encode(text).ids) == text
    loaded = CharVocab.load(path)
    assert loaded.itos == v.itos
    assert loaded.encode(text) == v.encode(text)


@settings(max_examples=150, deadline=None)
@given(st.text())
def test_round_trip_any_text(text):
    v = CharVocab.from_chars(text)
    ids = v.encode(text)
    assert v.decode(ids) == text
    assert len(ids) == len(text)
    assert v.encode_array(text).tolist() == ids


@settings(max_examples=60, deadline=None)
@given(text=st.text(st.characters(codec="utf-8"), min_size=1))
def test_round_trip_through_tokenizer_json_any_text(tmp_path_factory, text):
    """What a checkpoint keeps: the vocabulary saved as tokenizer.json and loaded back gives the
    same ids, and the ids give back the text, for any Unicode a corpus can hold."""
    path = tmp_path_factory.mktemp("vocab") / "tokenizer.json"
    CharVocab.from_chars(text).save(path)
    loaded = CharVocab.load(path)
    ids = loaded.encode(text)
    assert UNK_ID not in ids and len(ids) == len(text)
    assert loaded.decode(ids) == text == loaded.tokenizer.decode(ids)
    assert loaded.encode_array(text).tolist() == ids


@pytest.mark.parametrize("vocab, needle", [
    ({"a": 0, "b": 1}, "no <unk> at id 0"),
    ({"<unk>": 0, "a": 1, "bc": 2}, "'bc' is not a single character"),
    ({"<unk>": 0, "a": 1, "b": 5}, "ids are not 0 to 2"),
])
def test_a_tokenizer_json_that_is_not_a_character_vocabulary_is_refused(tmp_path, vocab, needle):
    path = tmp_path / "tokenizer.json"
    Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=UNK)).save(str(path))
    with pytest.raises(UsageError, match=needle):
        CharVocab.load(path)


@settings(max_examples=150, deadline=None)
@given(known=st.text(max_size=30), text=st.text())
def test_encode_array_matches_tokenizers_with_unknown_characters(known, text):
    v = CharVocab.from_chars(known)
    ids = v.encode(text)
    assert v.encode_array(text).tolist() == ids
    assert [i == UNK_ID for i in ids] == [c not in set(known) for c in text]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint32, np.int64])
@pytest.mark.parametrize("text", ["plain ASCII only\n", "".join(TRICKY)])
def test_encode_array_gives_the_same_ids_in_every_dtype(text, dtype):
    # ASCII text takes the bytes fast path (bytes.translate for uint8); the rest the dense table,
    # and characters beyond the BMP, known or not, the binary search.
    v = CharVocab.from_chars("".join(TRICKY).replace("😀", "").replace("a", ""))
    ids = v.encode_array(text, dtype)
    assert ids.dtype == dtype
    assert ids.tolist() == v.encode(text)


@pytest.mark.parametrize("n_chars, dtype", [(1, np.uint8), (255, np.uint8), (256, np.uint16),
                                            (65535, np.uint16), (65536, np.uint32)])
def test_smallest_dtype_holds_every_id(n_chars, dtype):
    v = CharVocab.from_chars(chr(0x4E00 + i) if i < 0x5000 else chr(0x10000 + i) for i in range(n_chars))
    assert len(v) == n_chars + 1
    assert v.smallest_dtype() == np.dtype(dtype)
    last = v.chars[-1]
    assert int(v.encode_array(last, v.smallest_dtype())[0]) == len(v) - 1


def test_a_corrupt_tokenizer_json_is_a_usage_error(tmp_path):
    path = tmp_path / "tokenizer.json"
    path.write_text('{"model": {"type": "BPE", "vocab": ', encoding="utf-8")
    with pytest.raises(UsageError, match="not a valid tokenizer.json"):
        CharVocab.load(path)
