"""The sorted suffixes of a training text: every position, ordered by the DEPTH characters
that start there (ties, which only repeats of DEPTH characters or more make, by position).

Stored as a .npy of uint32 positions (uint64 past 4G characters) next to the encoded ids,
built once per corpus and split, and memory-mapped: 4 bytes a character on disk, nothing in
memory until read. charlm.analysis.novelty searches it.

Building stays in bounded memory (about 70 bytes x BUCKET at peak, ~600 MB, whatever the
corpus): positions are cut into buckets by their first eight characters, with splitters taken
from a sample, and written to temporary files next to the index; each bucket is sorted in
memory eight characters (one uint64 key) at a time, re-sorting only the positions still tied.
A bucket made of one key (a long run of spaces, say) is split again on the next eight
characters, so no bucket outgrows BUCKET, and the build's disk use peaks at twice the index.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from charlm.cancel import Progress, check
from charlm.paths import keep_cached, write_json_atomic

INDEX_FORMAT = 1
DEPTH = 128                 # characters the suffixes are sorted by (a multiple of 8: whole keys)
BUCKET = 1 << 23            # positions sorted in memory at once
CHUNK = 1 << 22             # positions streamed at once while distributing them to buckets


class Keys:
    """`width` consecutive ids packed into one uint64, the first most significant, so comparing
    keys compares the characters in order; past the end reads as 0 (<unk>), below every
    character the training text has, as a shorter string sorts before its extensions."""

    def __init__(self, ids: np.ndarray):
        self.ids, self.n = ids, len(ids)
        self.bits = 8 * ids.dtype.itemsize
        self.width = 64 // self.bits
        # uint8 ids: a big-endian uint64 view at every byte offset reads 8 characters in one load.
        self.words = (np.ndarray((self.n - 7,), ">u8", buffer=ids, strides=(1,))
                      if ids.dtype.itemsize == 1 and self.n >= 8 and ids.flags.c_contiguous else None)

    def at(self, pos: np.ndarray) -> np.ndarray:
        pos = np.asarray(pos, dtype=np.int64)
        if self.words is None:
            return self._gather(pos)
        inside = pos <= self.n - 8
        if inside.all():
            return self.words[pos].astype(np.uint64)
        out = np.empty(len(pos), np.uint64)
        out[inside] = self.words[pos[inside]]
        out[~inside] = self._gather(pos[~inside])
        return out

    def _gather(self, pos: np.ndarray) -> np.ndarray:
        out = np.zeros(len(pos), np.uint64)
        for i in range(self.width):
            q = pos + i
            ok = q < self.n
            c = np.zeros(len(pos), np.uint64)
            c[ok] = self.ids[q[ok]]
            out = (out << np.uint64(self.bits)) | c
        return out


def index_path(ids: np.ndarray, length: int) -> Path | None:
    """Where the index of ids[:length] lives: next to the encoded corpus's .ids memory map
    (None for ids held in memory, which are indexed there)."""
    base = getattr(ids, "filename", None)
    if base is None:
        return None
    return Path(base).with_name(f"{Path(base).stem}.sa-{length}.npy")


def suffixes(ids: np.ndarray, length: int | None = None, progress: Progress | None = None,
             cancel: threading.Event | None = None) -> np.ndarray:
    """The sorted suffixes of ids[:length] (all of ids by default): from the cache when built
    before, else built now and cached (in memory where the cache cannot be written).
    `progress(done, total)` counts positions placed."""
    length = len(ids) if length is None else length
    path = index_path(ids, length)
    if path is None:
        return build_suffixes(ids[:length], None, progress, cancel)
    sa = _open_cached(path, length)
    if sa is None and keep_cached(lambda: build_suffixes(ids[:length], path, progress, cancel)) is not None:
        sa = _open_cached(path, length)
    return sa if sa is not None else build_suffixes(ids[:length], None, progress, cancel)


def _open_cached(path: Path, length: int) -> np.ndarray | None:
    try:
        meta = json.loads(path.with_suffix(".json").read_text())
        if meta.get("format") != INDEX_FORMAT or meta.get("depth") != DEPTH or meta.get("length") != length:
            return None
        sa = np.load(path, mmap_mode="r")
        return sa if sa.shape == (length,) else None
    except (OSError, ValueError):
        return None             # missing or damaged: built again


def build_suffixes(ids: np.ndarray, path: Path | None = None, progress: Progress | None = None,
                   cancel: threading.Event | None = None) -> np.ndarray:
    """Every position of `ids`, sorted by the DEPTH characters from it (ties by position).
    With `path`, written there as .npy (plus a .json that marks it complete) and returned as
    a memory map; else built in memory."""
    n = len(ids)
    dtype = np.dtype(np.uint32 if n < 2**32 else np.uint64)
    sorter = _Sorter(Keys(ids), n, dtype, progress, cancel)
    if path is None:
        with _TempDir(None) as tmp:
            sorter.tmp = tmp
            parts = list(sorter.sort(_positions(n), n, 0))
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)
    t0 = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with _TempDir(path.parent) as tmp, open(part, "wb") as f:
            sorter.tmp = tmp
            np.lib.format.write_array_header_1_0(f, {"descr": np.lib.format.dtype_to_descr(dtype),
                                                     "fortran_order": False, "shape": (n,)})
            for chunk in sorter.sort(_positions(n), n, 0):
                f.write(chunk.astype(dtype).tobytes())
        os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)
    # The .json is written last: its presence means the .npy beside it is complete.
    write_json_atomic(path.with_suffix(".json"), {"format": INDEX_FORMAT, "depth": DEPTH, "length": n,
                                                  "dtype": dtype.name, "build_seconds": time.perf_counter() - t0})
    return np.load(path, mmap_mode="r")


Source = Callable[[], Iterator[np.ndarray]]       # position chunks, ascending, int64


def _positions(n: int) -> Source:
    return lambda: (np.arange(s, min(s + CHUNK, n), dtype=np.int64) for s in range(0, n, CHUNK))


class _Sorter:
    def __init__(self, keys: Keys, n: int, dtype: np.dtype, progress: Progress | None, cancel: threading.Event | None):
        self.keys, self.n, self.dtype, self.progress, self.cancel = keys, n, dtype, progress, cancel
        self.done, self.tmp, self.files = 0, None, 0

    def sort(self, source: Source, count: int, depth: int) -> Iterator[np.ndarray]:
        """The positions of `source` (`count` of them, tied on their first `depth` characters)
        in suffix order, as chunks."""
        check(self.cancel)
        if depth >= DEPTH:                      # tied all the way: by position, as they come
            for chunk in source():
                yield self._placed(chunk)
        elif count <= BUCKET:
            yield self._placed(self._sort_in_memory(np.concatenate(list(source())), depth))
        else:
            for equal, sub, sub_count in self._split(source, count, depth):
                yield from self.sort(sub, sub_count, depth + self.keys.width if equal else depth)

    def _placed(self, chunk: np.ndarray) -> np.ndarray:
        self.done += len(chunk)
        if self.progress is not None:
            self.progress(self.done, self.n)
        return chunk

    def _sort_in_memory(self, pos: np.ndarray, depth: int) -> np.ndarray:
        """`pos` by characters depth .. DEPTH, then by position: sort on one key of `width`
        characters, re-sort only the runs still tied on the next key, and at the end put what
        is tied all the way in position order. The sorts need not be stable, so they are
        numpy's fastest (a SIMD quicksort where the CPU has one: 2-4x a stable sort)."""
        k = self.keys.at(pos + depth)
        order = np.argsort(k)
        pos, k = pos[order], k[order]
        start = np.ones(len(pos), bool)             # True where a run of equal keys begins
        start[1:] = k[1:] != k[:-1]
        del k, order
        d = depth + self.keys.width
        while True:
            check(self.cancel)
            run = np.cumsum(start) - 1
            tied = np.flatnonzero(np.bincount(run)[run] > 1)
            if not len(tied):
                return pos
            g = run[tied]
            del run
            if d >= DEPTH:                          # equal to DEPTH characters: by position
                order = np.lexsort((pos[tied], g))
                pos[tied] = pos[tied][order]
                return pos
            k = self.keys.at(pos[tied] + d)
            order = _by_run_then_key(g, k)
            g, k = g[order], k[order]
            pos[tied] = pos[tied][order]
            new = np.ones(len(tied), bool)
            new[1:] = (g[1:] != g[:-1]) | (k[1:] != k[:-1])
            start[tied] = new
            d += self.keys.width

    def _split(self, source: Source, count: int, depth: int) -> Iterator[tuple[bool, Source, int]]:
        """Cut `source` into buckets by the key at `depth`: keys strictly between splitters
        from a sample, and keys equal to a splitter apart (all one key: the next split goes
        deeper). Yields (all one key, the bucket's positions, their count), in key order."""
        pieces = -(-count // (BUCKET // 2))
        step = max(1, count // (pieces * 256))
        sample = np.sort(np.concatenate([self.keys.at(c[::step] + depth) for c in self._strided(source, step)]))
        splitters = np.unique(sample[np.linspace(0, len(sample) - 1, pieces + 1).astype(np.int64)])
        self.files += 1
        folder = self.tmp / f"split{self.files}"
        folder.mkdir()
        counts = np.zeros(2 * len(splitters) + 1, np.int64)
        handles: dict[int, object] = {}
        try:
            for chunk in source():
                check(self.cancel)
                k = self.keys.at(chunk + depth)
                j = np.searchsorted(splitters, k)
                bucket = 2 * j + ((j < len(splitters)) & (splitters[np.minimum(j, len(splitters) - 1)] == k))
                if len(counts) <= 1 << 16:                       # numpy's stable sort of 16-bit ints is a radix sort
                    bucket = bucket.astype(np.uint16)
                order = np.argsort(bucket, kind="stable")        # keeps each bucket in position order
                bucket, chunk = bucket[order], chunk[order]
                edges = np.flatnonzero(np.diff(bucket)) + 1
                for part in np.split(np.arange(len(chunk)), edges):
                    b = int(bucket[part[0]])
                    if b not in handles:
                        handles[b] = open(folder / f"{b}.pos", "wb")
                    handles[b].write(chunk[part].astype(self.dtype).tobytes())     # 4 bytes a position on disk
                    counts[b] += len(part)
        finally:
            for h in handles.values():
                h.close()
        for b in np.flatnonzero(counts):
            yield bool(b % 2), _read_positions(folder / f"{b}.pos", self.dtype), int(counts[b])
            (folder / f"{b}.pos").unlink()
        shutil.rmtree(folder, ignore_errors=True)

    @staticmethod
    def _strided(source: Source, step: int) -> Iterator[np.ndarray]:
        offset = 0                                  # keeps the sample every `step`-th across chunks
        for chunk in source():
            yield chunk[offset:]
            offset = (offset - len(chunk)) % step


def _by_run_then_key(run: np.ndarray, key: np.ndarray) -> np.ndarray:
    """The order sorting by (run, key), `run` ascending: one argsort of a single int64 made of
    the run and the key's rank (half the time of np.lexsort on the two)."""
    distinct, rank = np.unique(key, return_inverse=True)
    if (int(run[-1]) + 1) * len(distinct) >= 2**62:
        return np.lexsort((key, run))
    return np.argsort(run * len(distinct) + rank)


def _read_positions(path: Path, dtype: np.dtype) -> Source:
    def chunks():
        with open(path, "rb") as f:
            while True:
                data = np.fromfile(f, dtype=dtype, count=CHUNK)
                if not len(data):
                    return
                yield data.astype(np.int64)
    return chunks


class _TempDir:
    """A scratch directory for bucket files, next to the index (same disk) or in the system's
    temp directory; removed however the build ends."""

    def __init__(self, parent: Path | None):
        self.parent = parent

    def __enter__(self) -> Path:
        self.path = Path(tempfile.mkdtemp(prefix=".copy-index-", dir=self.parent))
        return self.path

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
