"""The character vocabulary: one token per Unicode code point, plus `<unk>`.

Built with `tokenizers` so it saves as a standard `tokenizer.json`: a BPE model whose
vocabulary is the character set and which has no merges. `unk_token` keeps unseen
characters visible (without it they silently vanish) and the `Fuse` decoder joins
tokens without spaces. Bulk encoding of a corpus goes through a numpy lookup table
built from the same vocabulary, because it is ~100x faster and gives the same ids.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, decoders, models

from charlm.errors import UsageError

UNK = "<unk>"
UNK_ID = 0
DENSE = 1 << 16     # code points below this (the BMP) are encoded through a dense table; the rest by search


class CharVocab:
    """Maps characters to ids and back. Id 0 is `<unk>`; the rest are sorted by code point."""

    def __init__(self, tokenizer: Tokenizer):
        self.tokenizer = tokenizer
        vocab = tokenizer.get_vocab()
        _check_character_vocab(vocab)
        self.itos: list[str] = [""] * len(vocab)
        for tok, i in vocab.items():
            self.itos[i] = tok
        self.stoi = {c: i for i, c in enumerate(self.itos) if i != UNK_ID}
        codes = np.array([ord(c) for c in self.itos[1:]], dtype=np.int64)
        order = np.argsort(codes)
        self._codes = codes[order]                              # sorted code points
        self._ids = (np.arange(1, len(self.itos))[order]).astype(np.int64)
        self._tables: dict[np.dtype, np.ndarray] = {}           # dtype -> id of every BMP code point

    @classmethod
    def from_chars(cls, chars: Iterable[str]) -> "CharVocab":
        chars = sorted(set(chars) - {""})
        if any(len(c) != 1 for c in chars):
            raise ValueError("a character vocabulary holds single code points")
        vocab = {UNK: UNK_ID} | {c: i + 1 for i, c in enumerate(chars)}
        tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=UNK))
        tok.decoder = decoders.Fuse()
        return cls(tok)

    @classmethod
    def load(cls, path: str | Path) -> "CharVocab":
        try:
            return cls(Tokenizer.from_file(str(path)))
        except UsageError:
            raise
        except Exception as e:  # tokenizers raises a bare Exception on bad JSON
            raise UsageError(f"{path} is not a valid tokenizer.json ({_first_line(e)})",
                             "use the tokenizer.json that came with the checkpoint") from None

    def save(self, path: str | Path) -> None:
        self.tokenizer.save(str(path))

    def __len__(self) -> int:
        return len(self.itos)

    @property
    def chars(self) -> list[str]:
        return self.itos[1:]

    def encode(self, text: str) -> list[int]:
        """Ids through tokenizers itself: the reference path, used for prompts."""
        return self.tokenizer.encode(text).ids if text else []

    def encode_array(self, text: str, dtype=np.int64) -> np.ndarray:
        """The same ids as `encode`, vectorised: for whole corpora.

        A dense table indexed by code point does nearly all the work (an ASCII text indexes it
        with its own bytes); characters beyond the BMP, rare, are looked up by binary search."""
        table = self._table(np.dtype(dtype))
        if text.isascii():      # O(1) in CPython, and then encoding is a plain copy
            data = text.encode("ascii")
            if table.dtype == np.uint8:     # bytes.translate: ~2x faster than numpy's take
                return np.frombuffer(data.translate(table[:256].tobytes()), np.uint8)
            return table.take(np.frombuffer(data, np.uint8))
        codes = np.frombuffer(text.encode("utf-32-le"), np.uint32)
        if codes.max() < DENSE:
            return table.take(codes)
        astral = codes >= DENSE
        ids = table.take(np.where(astral, 0, codes))
        ids[astral] = self._search(codes[astral])
        return ids

    def _table(self, dtype: np.dtype) -> np.ndarray:
        if dtype not in self._tables:
            table = np.full(DENSE, UNK_ID, dtype=dtype)
            bmp = self._codes < DENSE
            table[self._codes[bmp]] = self._ids[bmp]
            self._tables[dtype] = table
        return self._tables[dtype]

    def _search(self, codes: np.ndarray) -> np.ndarray:
        """Ids of `codes` by binary search in the sorted code points; <unk> where absent."""
        if not len(self._codes):
            return np.full(len(codes), UNK_ID, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self._codes, codes), len(self._codes) - 1)
        return np.where(self._codes[pos] == codes, self._ids[pos], UNK_ID)

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self.itos[i] for i in ids)

    def unknown_chars(self, text: str) -> list[str]:
        """Characters of `text` this vocabulary lacks, in order of first appearance."""
        return list(dict.fromkeys(c for c in text if c not in self.stoi))

    def smallest_dtype(self) -> np.dtype:
        return np.dtype(np.uint8 if len(self) <= 256 else np.uint16 if len(self) <= 65536 else np.uint32)


def _check_character_vocab(vocab: dict[str, int]) -> None:
    """<unk> at 0, then one token per character with ids 1..N-1: what `from_chars` writes."""
    if vocab.get(UNK) != UNK_ID:
        problem = "no <unk> at id 0"
    elif (long := next((t for t in vocab if t != UNK and len(t) != 1), None)) is not None:
        problem = f"token {long[:20]!r} is not a single character"
    elif sorted(vocab.values()) != list(range(len(vocab))):
        problem = f"its {len(vocab)} ids are not 0 to {len(vocab) - 1}"
    else:
        return
    raise UsageError(f"tokenizer.json is not a charlm character vocabulary ({problem})",
                     "use the tokenizer.json that came with the checkpoint")


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:120]


def vocab_json_size(path: Path) -> int:
    """Vocabulary size recorded in a tokenizer.json, without building a tokenizer."""
    return len(json.loads(path.read_text(encoding="utf-8"))["model"]["vocab"])
