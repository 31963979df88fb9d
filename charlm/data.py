"""The encoded corpus: a memory-mapped id array cached by content hash, its split, and batches.

Truncated BPTT lays the training ids out as B parallel streams and walks them in chunks
of T, carrying each stream's hidden state from one chunk to the next:

    ids:    a b c d e f g h i j k l m n o p q r s t u v w x   (B=3 streams of 8)
    stream 0 │a b c d│e f g h│
    stream 1 │i j k l│m n o p│      batch k = columns [kT, kT+T) of every stream,
    stream 2 │q r s t│u v w x│      targets shifted one character to the right
              batch 0  batch 1

Streams are read straight from the memory map, so memory stays bounded for any corpus size.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from charlm.corpus import CorpusSource, iter_text
from charlm.errors import UsageError
from charlm.vocab import CharVocab

CACHE_FORMAT = 1


def cache_dir() -> Path:
    return Path(os.environ.get("CHARLM_CACHE") or Path.home() / ".cache" / "charlm") / "encoded"


@dataclass
class EncodedCorpus:
    """A corpus as ids. `ids` is a read-only memory map (or any 1-D integer array)."""
    name: str
    ids: np.ndarray
    vocab: CharVocab
    sha256: str
    n_bytes: int

    def __len__(self) -> int:
        return len(self.ids)

    def split(self, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
        """(train, val): the last `val_fraction` of characters is validation, as nanoGPT splits."""
        n_train = int(len(self.ids) * (1.0 - val_fraction))
        return self.ids[:n_train], self.ids[n_train:]


def encode_corpus(source: CorpusSource, vocab: CharVocab | None = None) -> EncodedCorpus:
    """Hash the normalised text; reuse the cached id array for that hash, or build it.

    With `vocab` given (resuming, or evaluating a checkpoint on new text) ids follow that
    vocabulary and characters it lacks become <unk>; otherwise the vocabulary is the
    corpus's own character set.
    """
    digest, chars, n_chars = hashlib.sha256(), set(), 0
    for chunk in iter_text(source):
        digest.update(chunk.encode("utf-8"))
        chars.update(chunk)
        n_chars += len(chunk)
    sha = digest.hexdigest()
    if n_chars == 0:
        raise UsageError(f"{_describe(source)} is empty", "give a file with some text in it")
    vocab = vocab or CharVocab.from_chars(chars)
    vocab_key = hashlib.sha256("\0".join(vocab.itos).encode("utf-8")).hexdigest()[:16]
    base = cache_dir() / f"{sha[:32]}-{vocab_key}"
    ids = _open_cached(base, n_chars) if base.with_suffix(".json").exists() else None
    if ids is None:
        ids = _build_cache(base, source, vocab, n_chars)
    return EncodedCorpus(source.name, ids, vocab, sha, source.n_bytes)


def encode_text(name: str, text: str, vocab: CharVocab | None = None) -> EncodedCorpus:
    """An in-memory corpus (tests, prompts, the TUI's typed text)."""
    if not text:
        raise UsageError(f"{name} is empty", "give some text")
    vocab = vocab or CharVocab.from_chars(text)
    sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return EncodedCorpus(name, vocab.encode_array(text, vocab.smallest_dtype()), vocab, sha, len(text.encode()))


def _open_cached(base: Path, n_chars: int) -> np.ndarray | None:
    try:
        meta = json.loads(base.with_suffix(".json").read_text())
        if meta.get("format") != CACHE_FORMAT or meta.get("length") != n_chars:
            return None
        return np.memmap(base.with_suffix(".ids"), dtype=np.dtype(meta["dtype"]), mode="r", shape=(n_chars,))
    except (OSError, ValueError, KeyError):
        return None  # a damaged cache entry is rebuilt, never trusted


def _build_cache(base: Path, source: CorpusSource, vocab: CharVocab, n_chars: int) -> np.ndarray:
    base.parent.mkdir(parents=True, exist_ok=True)
    dtype = vocab.smallest_dtype()
    fd, tmp = tempfile.mkstemp(dir=base.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in iter_text(source):
                f.write(vocab.encode_array(chunk, dtype).tobytes())
        os.replace(tmp, base.with_suffix(".ids"))
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    # The .json is written last: its presence means the .ids beside it is complete.
    meta = {"format": CACHE_FORMAT, "length": n_chars, "dtype": dtype.name, "name": source.name}
    tmp_meta = base.with_suffix(".json.tmp")
    tmp_meta.write_text(json.dumps(meta))
    os.replace(tmp_meta, base.with_suffix(".json"))
    return np.memmap(base.with_suffix(".ids"), dtype=dtype, mode="r", shape=(n_chars,))


def _describe(source: CorpusSource) -> str:
    return str(source.paths[0]) if len(source.paths) == 1 else f"corpus {source.name!r} ({len(source.paths)} files)"


class StreamBatches:
    """`batch_size` parallel streams over `ids`, cut into chunks of `seq_len` (see module doc)."""

    def __init__(self, ids: np.ndarray, batch_size: int, seq_len: int):
        self.ids, self.batch_size, self.seq_len = ids, batch_size, seq_len
        self.stream_len = (len(ids) - 1) // batch_size          # +1: targets run one past inputs
        self.chunks_per_epoch = self.stream_len // seq_len
        if self.chunks_per_epoch < 1:
            need = batch_size * seq_len + 1
            raise UsageError(
                f"the training text has {len(ids):,} characters, fewer than one batch needs "
                f"({batch_size} x {seq_len} + 1 = {need:,})",
                "use a longer text, or a smaller --batch-size / --seq-len")
        self._starts = np.arange(batch_size, dtype=np.int64)[:, None] * self.stream_len
        self._offsets = np.arange(seq_len + 1, dtype=np.int64)[None, :]

    def batch(self, chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets (B, T) for chunk number `chunk` of the epoch."""
        window = np.asarray(self.ids[self._starts + chunk * self.seq_len + self._offsets], dtype=np.int64)  # (B, T+1)
        t = torch.from_numpy(window)
        return t[:, :-1], t[:, 1:]


def eval_streams(ids: np.ndarray, n_streams: int, chunk: int = 512):
    """Chunks (x, y) of shape (S, <=chunk) covering all but a few of `ids`' transitions, for
    evaluation with carried state; S parallel streams keep it fast on long texts."""
    n_streams = max(1, min(n_streams, (len(ids) - 1) // 64 or 1))
    stream_len = (len(ids) - 1) // n_streams
    arr = torch.from_numpy(np.asarray(ids[: n_streams * stream_len + 1], dtype=np.int64))
    x = arr[:-1].view(n_streams, stream_len)
    y = arr[1:].view(n_streams, stream_len)
    for i in range(0, stream_len, chunk):
        yield x[:, i:i + chunk], y[:, i:i + chunk]
