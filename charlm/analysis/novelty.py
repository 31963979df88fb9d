"""How much of a text the training text already holds: the fraction of its n-character windows
that occur in it, and the longest span copied from it (where it starts in both).

Queries run against the training text's sorted suffixes (charlm.analysis.suffixes: built once per
corpus, memory-mapped). A query is a vectorised binary search: every window of the text at
once, log2(N) probes, each comparing eight characters at a time (ids packed into one uint64)
against the ids' memory map, and only while they are equal. The longest copied span comes from
the same search over lengths: doubling while some window of that length occurs, then
bisecting, keeping only the windows that matched at the last length that did. Spans longer
than DEPTH are checked on the positions sharing their first DEPTH characters, compared
directly in the memory map: exact, unless more than SCAN_CAP positions share them (a text
copied from a passage the corpus repeats that often), where the first SCAN_CAP are tried.

<unk> (a character the training text does not have) is never part of a copied span.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from charlm.analysis.suffixes import DEPTH, Keys, suffixes
from charlm.cancel import Progress, check
from charlm.corpus.vocab import UNK_ID, CharVocab
from charlm.errors import UsageError

SCAN_CAP = 1 << 20          # positions tried for one window longer than DEPTH
PAIR_BUDGET = 1 << 22       # (window, position) pairs compared at once for windows longer than DEPTH


@dataclass(frozen=True)
class CopiedSpan:
    length: int                 # characters; 0 when no character of the text occurs
    text_start: int | None      # where it starts in the text
    corpus_start: int | None    # and in the training text (a character offset)

    def as_dict(self) -> dict:
        return {"length": self.length, "text_start": self.text_start, "corpus_start": self.corpus_start}


@dataclass(frozen=True)
class Novelty:
    n: int
    copied: np.ndarray          # (T - n + 1,) bool: window t (characters t .. t+n-1) occurs in the training text
    longest_copied: CopiedSpan

    @property
    def fraction_copied(self) -> float:
        return float(self.copied.mean())

    def as_dict(self) -> dict:
        return {"n": self.n, "fraction_copied": self.fraction_copied, "longest_copied": self.longest_copied.as_dict()}


def check_length(length: int, n: int) -> None:
    """A text must hold at least one window of n characters."""
    if n < 1:
        raise UsageError(f"n must be at least 1, got {n}", "try --n 20")
    if length < n:
        raise UsageError(f"the text has {length} characters, fewer than one window of n={n}",
                         "give a longer text or a smaller --n")


class CopyIndex:
    """Queries against `ids` (the training text) through its sorted suffixes `sa`; `vocab`
    reads texts given as strings, `name` says what the training text is."""

    def __init__(self, ids: np.ndarray, sa: np.ndarray, vocab: CharVocab | None = None, name: str = "training text"):
        self.ids, self.sa, self.keys, self.vocab, self.name = ids, sa, Keys(ids), vocab, name

    @classmethod
    def of(cls, ids: np.ndarray, vocab: CharVocab | None = None, name: str = "training text",
           progress: Progress | None = None, cancel: threading.Event | None = None) -> "CopyIndex":
        """The index of `ids` (a slice of an encoded corpus's memory map is cached next to it)."""
        return cls(ids, suffixes(ids, None, progress, cancel), vocab, name)

    def novelty_of(self, text: str, n: int = 20, cancel: threading.Event | None = None) -> Novelty:
        """`novelty` of a string, read through the index's vocabulary."""
        return self.novelty(self.vocab.encode_array(text), n, cancel)

    def novelty(self, text_ids: np.ndarray, n: int = 20, cancel: threading.Event | None = None) -> Novelty:
        """Which n-character windows of the text occur in the training text, and its longest copied span."""
        text_ids = np.asarray(text_ids)
        check_length(len(text_ids), n)
        text = _Text(text_ids, self.ids.dtype)
        copied = np.zeros(len(text_ids) - n + 1, bool)
        starts = self._occurring(text, text.clean_starts(n, np.arange(len(copied))), n, cancel)
        copied[starts] = True
        return Novelty(n, copied, self.longest(text_ids, cancel, _text=text))

    def longest(self, text_ids: np.ndarray, cancel: threading.Event | None = None, _text=None) -> CopiedSpan:
        """The longest span of the text that occurs in the training text: the first in the text
        among the longest, at its first place in the training text."""
        text = _text or _Text(np.asarray(text_ids), self.ids.dtype)
        T = len(text.ids)
        lo, hi, cand = 0, T + 1, np.arange(T)        # some window of length lo occurs, none of length hi
        m, galloping = min(16, T), True
        while lo + 1 < hi:
            starts = self._occurring(text, text.clean_starts(m, cand), m, cancel)
            if len(starts):
                lo, cand = m, starts
            else:
                hi, galloping = m, False
            m = min(2 * m, T) if galloping and lo < T else (lo + hi) // 2
        if lo == 0:
            return CopiedSpan(0, None, None)
        first = int(cand.min())
        return CopiedSpan(lo, first, self._first_place(text, first, lo))

    # -- search ---------------------------------------------------------------------------------
    def _occurring(self, text: "_Text", starts: np.ndarray, m: int, cancel) -> np.ndarray:
        """The starts j whose window text[j:j+m] occurs in the training text."""
        check(cancel)
        if not len(starts) or not len(self.sa):
            return starts[:0]
        depth = min(m, DEPTH)
        lb = self._bound(text, starts, depth, upper=False)
        pos = self.sa[np.minimum(lb, len(self.sa) - 1)].astype(np.int64)
        hit = (lb < len(self.sa)) & (self._compare(text, starts, pos, depth) == 0)
        starts, lb = starts[hit], lb[hit]
        if m <= DEPTH or not len(starts):
            return starts
        ub = self._bound(text, starts, DEPTH, upper=True)
        return self._extend(text, starts, lb, np.minimum(ub, lb + SCAN_CAP), m, cancel)

    def _bound(self, text: "_Text", starts: np.ndarray, m: int, upper: bool) -> np.ndarray:
        """Per start, the first suffix index whose first m characters are >= the window's (>
        with `upper`): a binary search for every window at once."""
        lo = np.zeros(len(starts), np.int64)
        hi = np.full(len(starts), len(self.sa), np.int64)
        active = np.arange(len(starts))
        while len(active):
            mid = (lo[active] + hi[active]) // 2
            c = self._compare(text, starts[active], self.sa[mid].astype(np.int64), m)
            right = c >= 0 if upper else c > 0           # the suffix at mid sorts before the window
            lo[active[right]] = mid[right] + 1
            hi[active[~right]] = mid[~right]
            active = active[lo[active] < hi[active]]
        return lo

    def _compare(self, text: "_Text", starts: np.ndarray, pos: np.ndarray, m: int, offset: int = 0) -> np.ndarray:
        """Sign of (window text[j+offset : j+m]) minus (training text[p+offset : p+m]), per pair."""
        out = np.zeros(len(starts), np.int8)
        rows = np.arange(len(starts))
        w, bits = self.keys.width, self.keys.bits
        for o in range(offset, m, w):
            a, b = text.keys.at(starts[rows] + o), self.keys.at(pos[rows] + o)
            r = min(w, m - o)
            if r < w:                                   # only the window's last r characters count
                shift = np.uint64(bits * (w - r))
                a, b = a >> shift, b >> shift
            differ = a != b
            out[rows[differ]] = np.where(a[differ] > b[differ], 1, -1)
            rows = rows[~differ]
            if not len(rows):
                break
        return out

    def _extend(self, text: "_Text", starts, lb, ub, m: int, cancel) -> np.ndarray:
        """Windows longer than DEPTH: among the positions sharing each one's first DEPTH
        characters (suffix indices lb..ub, in position order), one whose next m - DEPTH match."""
        found = []
        sizes = ub - lb
        i = 0
        while i < len(starts):
            check(cancel)
            # as many windows as fit the pair budget (at least one), all their positions at once
            j = i + max(1, int(np.searchsorted(np.cumsum(sizes[i:]), PAIR_BUDGET, side="right")))
            owner = np.repeat(np.arange(i, j), sizes[i:j])
            idx = np.concatenate([np.arange(a, b) for a, b in zip(lb[i:j], ub[i:j])])
            pos = self.sa[idx].astype(np.int64)
            same = self._compare(text, starts[owner], pos, m, offset=DEPTH) == 0
            found.append(starts[np.unique(owner[same])])
            i = j
        return np.concatenate(found)

    def _first_place(self, text: "_Text", start: int, m: int) -> int:
        """The smallest training-text position where text[start:start+m] occurs."""
        s = np.array([start])
        depth = min(m, DEPTH)
        lb, ub = self._bound(text, s, depth, upper=False)[0], self._bound(text, s, depth, upper=True)[0]
        pos = np.asarray(self.sa[lb:min(ub, lb + SCAN_CAP)], dtype=np.int64)
        if m > DEPTH:
            pos = pos[self._compare(text, np.full(len(pos), start), pos, m, offset=DEPTH) == 0]
        return int(pos.min())


class _Text:
    """A query text as ids in the training text's dtype, packed the same way."""

    def __init__(self, ids: np.ndarray, dtype: np.dtype):
        self.ids = ids.astype(dtype)
        self.keys = Keys(self.ids)
        self.unk_before = np.concatenate([[0], np.cumsum(ids == UNK_ID)])     # <unk> count in ids[:t]

    def clean_starts(self, m: int, starts: np.ndarray) -> np.ndarray:
        """The starts whose window of m characters fits in the text and holds no <unk>."""
        starts = starts[starts + m <= len(self.ids)]
        return starts[self.unk_before[starts + m] == self.unk_before[starts]]


def open_training_index(run: str | Path, corpus: str | None = None, progress: Progress | None = None,
                        cancel: threading.Event | None = None) -> CopyIndex:
    """The index of a run's training text (its corpus minus the validation split), found
    through the run's source.json or at `corpus` if it moved. Building it the first time
    takes a while on a large corpus: `progress(done, total)` counts positions placed."""
    from charlm.config import TrainConfig
    from charlm.runs.checkpoint_dir import read_meta, resolve_checkpoint
    from charlm.runs.directory import VOCAB
    from charlm.runs.training_text import training_corpus

    ckpt = resolve_checkpoint(run)
    meta = read_meta(ckpt)
    vocab = CharVocab.load(ckpt / VOCAB)
    encoded = training_corpus(ckpt.parent, vocab, corpus, sha256=meta.get("corpus", {}).get("sha256"))
    val_fraction = meta.get("corpus", {}).get("val_fraction") or TrainConfig.from_dict(meta.get("train", {})).val_fraction
    train_ids, _ = encoded.split(val_fraction)
    return CopyIndex.of(train_ids, vocab, f"the training text of {encoded.name}", progress, cancel)
