"""The encoded corpus: a memory-mapped id array cached by content hash (found again by each file's
path, size and mtime, without reading the text), its split and the validation sample.

Numbers only, no tensors: a command that reads or checks a text never waits for torch to
import. The trainer's batches are cut from these ids by charlm.train.batches.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
import tempfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from charlm.corpus.files import CorpusSource, iter_text
from charlm.corpus.vocab import DENSE, UNK_ID, CharVocab
from charlm.errors import UsageError
from charlm.paths import cache_root, keep_cached, read_json_dict, write_cache_json, write_json_atomic

CACHE_FORMAT = 1            # the layout of an .ids file and its .json
INDEX_FORMAT = 1            # the layout of an index entry (see `_recall`)


def cache_dir() -> Path:
    return cache_root() / "encoded"


@dataclass
class EncodedCorpus:
    """A corpus as ids. `ids` is a read-only memory map (or any 1-D integer array)."""
    name: str
    ids: np.ndarray
    vocab: CharVocab
    sha256: str
    n_bytes: int
    paths: tuple[Path, ...] = ()        # the files it was read from (none: from the cache, or typed)

    def __len__(self) -> int:
        return len(self.ids)

    def split(self, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
        """(train, val): the last `val_fraction` of characters is validation, as nanoGPT splits."""
        n_train = int(len(self.ids) * (1.0 - val_fraction))
        return self.ids[:n_train], self.ids[n_train:]


@dataclass(frozen=True)
class TextSummary:
    """What one read of a corpus tells: the sha256 of its normalised text as UTF-8 (what
    checkpoints record and `--resume` compares), its characters, sorted, and its length."""
    sha256: str
    chars: str
    n_chars: int


def encode_corpus(source: CorpusSource, vocab: CharVocab | None = None) -> EncodedCorpus:
    """The corpus as ids: the cached id array for its content hash, or one built now.

    The hash and character set of files unchanged since they were last read (same path, size
    and mtime) come from a small index, so a cached corpus opens without reading its text.
    With `vocab` given (resuming, or evaluating a checkpoint on new text) ids follow that
    vocabulary and characters it lacks become <unk>; otherwise the vocabulary is the
    corpus's own character set. Where the cache cannot be written, the ids are held in memory.
    """
    summary = text_summary(source)
    vocab = vocab or CharVocab.from_chars(summary.chars)
    base = _cache_base(summary.sha256, vocab)
    ids = _open_cached(base, summary.n_chars)
    if ids is None:
        ids = keep_cached(lambda: _build_cache(base, source, vocab, summary.n_chars))
    if ids is None:
        ids = _encode_in_memory(source, vocab, summary.n_chars)
    return EncodedCorpus(source.name, ids, vocab, summary.sha256, source.n_bytes, source.paths)


def cached_corpus(sha256: str, vocab: CharVocab) -> EncodedCorpus | None:
    """The text whose hash is `sha256`, as ids in `vocab`, from the cache alone (the files it
    was read from may be gone): what a run trained on, found by the hash it recorded. None when
    the cache does not hold it whole."""
    base = _cache_base(sha256, vocab)
    meta = read_json_dict(base.with_suffix(".json"))
    length = meta.get("length")
    if not isinstance(length, int) or length < 1:
        return None
    ids = _open_cached(base, length)
    if ids is None:
        return None
    return EncodedCorpus(str(meta.get("name") or sha256[:12]), ids, vocab, sha256, int(meta.get("bytes") or 0))


def _cache_base(sha256: str, vocab: CharVocab) -> Path:
    """Where the ids of one text in one vocabulary are cached (.ids, and .json beside it)."""
    vocab_key = hashlib.sha256("\0".join(vocab.itos).encode("utf-8")).hexdigest()[:16]
    return cache_dir() / f"{sha256[:32]}-{vocab_key}"


def text_summary(source: CorpusSource) -> TextSummary:
    """The text's hash, characters and length: from the index when its files are unchanged,
    else read once (and remembered)."""
    return _recall(source) or _summarise_and_remember(source)


def encode_text(name: str, text: str, vocab: CharVocab | None = None) -> EncodedCorpus:
    """An in-memory corpus (tests, prompts, the TUI's typed text)."""
    if not text:
        raise UsageError(f"{name} is empty", "give some text")
    vocab = vocab or CharVocab.from_chars(text)
    sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return EncodedCorpus(name, vocab.encode_array(text, vocab.smallest_dtype()), vocab, sha, len(text.encode()))


def summarise(source: CorpusSource) -> TextSummary:
    """Read the whole text once: its hash, character set and length, at memory speed."""
    digest, chars, n_chars = hashlib.sha256(), CharSet(), 0
    for chunk in iter_text(source):
        data = chunk.encode("utf-8")
        digest.update(data)
        chars.add(data)
        n_chars += len(chunk)
    if n_chars == 0:
        raise UsageError(f"{_describe(source)} is empty", "give a file with some text in it")
    return TextSummary(digest.hexdigest(), chars.sorted(), n_chars)


class CharSet:
    """The distinct characters of a UTF-8 text fed in pieces. `set(chunk)` costs ~10 ns a
    character; deleting the ASCII bytes already seen (`bytes.translate`) runs at memory speed
    and leaves, in most text, almost nothing to look at."""

    def __init__(self):
        self._ascii = b""           # ASCII bytes seen so far: deleted from every new piece
        self._codes: set[int] = set()

    def add(self, data: bytes) -> None:
        # An ASCII byte never occurs inside a multi-byte UTF-8 character, so what is left after
        # deleting some is still valid UTF-8.
        rest = data.translate(None, self._ascii)
        if not rest:
            return
        codes = np.frombuffer(rest.decode("utf-8").encode("utf-32-le"), np.uint32)
        # np.unique sorts (n log n); a bincount is linear but sized by the largest code point.
        found = np.unique(codes) if len(codes) < DENSE else np.flatnonzero(np.bincount(codes))
        self._codes.update(found.tolist())
        self._ascii = bytes(c for c in sorted(self._codes) if c < 128)

    def sorted(self) -> str:
        return "".join(map(chr, sorted(self._codes)))


def _summarise_and_remember(source: CorpusSource) -> TextSummary:
    before = _stamp(source)
    summary = summarise(source)
    if before is not None and _stamp(source) == before:    # a file that changed while read is not remembered
        write_cache_json(_index_path(before), {"stamp": before, "sha256": summary.sha256, "chars": summary.chars,
                                               "n_chars": summary.n_chars})
    return summary


def _recall(source: CorpusSource) -> TextSummary | None:
    """The summary the index holds for these files, if none of them changed since (same size
    and mtime_ns): the index is keyed by their resolved paths and the encoding."""
    stamp = _stamp(source)
    if stamp is None:
        return None
    try:
        entry = json.loads(_index_path(stamp).read_text(encoding="utf-8"))
        sha, chars, n_chars = entry["sha256"], entry["chars"], entry["n_chars"]
    except (OSError, ValueError, KeyError, TypeError):
        return None     # missing or damaged: read the text again
    sound = (isinstance(sha, str) and len(sha) == 64 and set(sha) <= set("0123456789abcdef")   # names files
             and isinstance(chars, str) and isinstance(n_chars, int) and n_chars >= len(chars) > 0)
    return TextSummary(sha, chars, n_chars) if sound and entry.get("stamp") == stamp else None


def _stamp(source: CorpusSource) -> dict | None:
    """What identifies the text without reading it: each file's resolved path, size and mtime."""
    try:
        files = [[str(p.resolve()), st.st_size, st.st_mtime_ns] for p in source.paths for st in [p.stat()]]
    except OSError:
        return None     # reading it will say what is wrong
    return {"format": INDEX_FORMAT, "cache_format": CACHE_FORMAT, "encoding": codecs.lookup(source.encoding).name,
            "files": files}


def _index_path(stamp: dict) -> Path:
    # One entry per set of paths and encoding: a changed file replaces its entry, never adds one.
    key = json.dumps([stamp["format"], stamp["cache_format"], stamp["encoding"], [f[0] for f in stamp["files"]]])
    return cache_dir() / "index" / f"{hashlib.sha256(key.encode('utf-8')).hexdigest()[:32]}.json"


def _open_cached(base: Path, n_chars: int) -> np.ndarray | None:
    """The cached ids, or None when the entry is damaged (it is then rebuilt, never trusted).

    The .ids file's CRC-32 is in the .json. Checking it reads the whole file (4 GB/s, but from
    disk first), so it is checked only when the file is not as it was last seen whole (same
    size and mtime_ns, also in the .json): a file changed in place, even to the right length,
    is caught; one opened again unchanged costs nothing."""
    meta_path, ids_path = base.with_suffix(".json"), base.with_suffix(".ids")
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != CACHE_FORMAT or meta.get("length") != n_chars or not isinstance(meta.get("crc32"), int):
            return None
        ids = np.memmap(ids_path, dtype=np.dtype(meta["dtype"]), mode="r", shape=(n_chars,))
        stamp = _file_stamp(ids_path)
        if meta.get("verified") != stamp:
            if _crc32(ids) != meta["crc32"]:
                return None
            write_cache_json(meta_path, meta | {"verified": stamp})     # a read-only cache still serves
        return ids
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _file_stamp(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def _crc32(ids: np.ndarray, block: int = 1 << 26) -> int:
    crc = 0
    for i in range(0, len(ids), block):
        crc = zlib.crc32(ids[i:i + block], crc)
    return crc


def _build_cache(base: Path, source: CorpusSource, vocab: CharVocab, n_chars: int) -> np.ndarray:
    base.parent.mkdir(parents=True, exist_ok=True)
    dtype = vocab.smallest_dtype()
    fd, tmp = tempfile.mkstemp(dir=base.parent, suffix=".tmp")
    try:
        written, pending, crc = 0, None, 0
        # Writing waits on the disk once the kernel holds enough unwritten pages (~350 MB/s here,
        # 1.4 s for 500 MB): a writer thread (the GIL is free during write() and a large crc32)
        # lets the next chunk be read and encoded meanwhile. One write in flight keeps memory at
        # two chunks.
        with os.fdopen(fd, "wb") as f, ThreadPoolExecutor(1) as writer:
            def write(ids: np.ndarray, crc: int) -> int:
                f.write(ids.data)
                return zlib.crc32(ids, crc)

            for chunk in iter_text(source):
                ids = vocab.encode_array(chunk, dtype)
                if pending is not None:
                    crc = pending.result()
                pending = writer.submit(write, ids, crc)
                written += len(chunk)
            if pending is not None:
                crc = pending.result()
        if written != n_chars:
            raise _changed(source)
        os.replace(tmp, base.with_suffix(".ids"))
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    # The .json is written last: its presence means the .ids beside it is complete.
    write_json_atomic(base.with_suffix(".json"), {"format": CACHE_FORMAT, "length": n_chars, "dtype": dtype.name,
                                                  "name": source.name, "bytes": source.n_bytes, "crc32": crc,
                                                  "verified": _file_stamp(base.with_suffix(".ids"))})
    return np.memmap(base.with_suffix(".ids"), dtype=dtype, mode="r", shape=(n_chars,))


def _encode_in_memory(source: CorpusSource, vocab: CharVocab, n_chars: int) -> np.ndarray:
    """The ids without a cache to keep them in: n_chars of memory at the vocabulary's dtype."""
    ids, at = np.empty(n_chars, vocab.smallest_dtype()), 0
    for chunk in iter_text(source):
        if at + len(chunk) > n_chars:
            raise _changed(source)
        ids[at:at + len(chunk)] = vocab.encode_array(chunk, ids.dtype)
        at += len(chunk)
    if at != n_chars:
        raise _changed(source)
    return ids


def _changed(source: CorpusSource) -> UsageError:
    return UsageError(f"{_describe(source)} changed while it was being read", "run the command again")


def count_unknown(ids: np.ndarray, block: int = 1 << 24) -> int:
    """How many ids are <unk>, a block at a time: `(ids == 0).sum()` over a memory map would
    first make a bool array as long as the corpus."""
    return sum(int(np.count_nonzero(ids[i:i + block] == UNK_ID)) for i in range(0, len(ids), block))


def _describe(source: CorpusSource) -> str:
    return str(source.paths[0]) if len(source.paths) == 1 else f"corpus {source.name!r} ({len(source.paths)} files)"


# Validation during training reads at most this many characters, whatever the corpus size: 256k
# is ~2.3x tinyshakespeare's whole split (111,540 chars, which stays whole, so its figures do
# not change), so a validation costs at most ~2.3x one on tinyshakespeare (measured on one
# thread: `small` 1.5 s vs 0.7 s, `medium` 5.3 s vs 2.2 s), where a 500 MB corpus's whole 50 MB
# split would take ~200x that. The windows are the same at every evaluation, so the curve
# compares like with like; `charlm eval` still reads the whole split.
VAL_SAMPLE_CHARS = 1 << 18
VAL_WINDOWS = 16            # evaluate()'s 16 streams: one contiguous 16k-char window each


def validation_sample(val_ids: np.ndarray, max_chars: int = VAL_SAMPLE_CHARS,
                      windows: int = VAL_WINDOWS) -> np.ndarray:
    """The part of the validation split that training evaluates, the same at every evaluation.

    The whole split (1-D) when it holds at most `max_chars`; otherwise `windows` contiguous
    windows of `max_chars // windows` characters, evenly spread from its start to its end,
    as the rows of a (windows, width) array: `evaluate` runs each row as its own stream.
    """
    if len(val_ids) <= max_chars:
        return val_ids
    width = max_chars // windows
    starts = np.linspace(0, len(val_ids) - width, windows).astype(np.int64)
    return np.stack([np.asarray(val_ids[s:s + width]) for s in starts])
