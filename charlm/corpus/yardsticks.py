"""Is my loss good, on *this* text? What simple models of the same text reach on its own split.

A loss means different things on Shakespeare, a diary, source code or Bengali: code is more
predictable than prose, a text with a big alphabet less. The honest yardstick costs seconds:
count the training split's character n-grams and score the validation split with them, as
interpolated Kneser-Ney smoothing does (Chen & Goodman 1998; one discount per order, from the
count-of-counts). "0.42 nats/char better than a 5-gram of this text" then means something for
any text. Order 1 is the unigram: character frequencies, nothing else.

Computed once per corpus and kept beside its encoded ids (charlm.corpus.encoded's cache); huge texts are
counted on a bounded piece (the last TRAIN_CAP characters of the training split, next to the
validation split, which is read up to VAL_CAP characters).
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from charlm.interpolate import log_linear
from charlm.paths import read_json_dict, write_cache_json

ORDERS = (1, 2, 3, 5)         # the models shown: unigram, bigram, trigram, 5-gram
# What a 5-gram reaches on tinyshakespeare's validation split, the text auto's quality table and
# the loss readings were measured on, counting the last N characters of its training split
# (`python -m bench.auto_texts --shakespeare-sizes`). A text is placed against Shakespeare's 5-gram
# at the same amount of text: a 5-gram of 75k characters is worse for being small, and auto's
# table already charges a small text for its size (auto's misses on an 84k- and a 321k-character
# text: -0.29 and -0.10 nats/char against the whole of Shakespeare, -0.04 and -0.02 at its size).
SHAKESPEARE_5GRAM_BY_SIZE = ((20_000, 1.9774), (40_000, 1.8586), (75_000, 1.7792), (150_000, 1.7189),
                             (300_000, 1.6515), (600_000, 1.5968), (1_003_854, 1.5789))
SHAKESPEARE_5GRAM = SHAKESPEARE_5GRAM_BY_SIZE[-1][1]     # the whole training split
TRAIN_CAP = 2_000_000         # characters counted: ~2 s for the 5-gram and the rest (numpy sorts)
VAL_CAP = 1 << 18             # characters scored, as charlm.corpus.encoded's validation sample
FORMAT = 1

# The commonest English words: in English prose, verse or lyrics 35-45 % of all words are these,
# in headlines ~24 %; in other languages next to none. Source code has as many (if, in, for, a,
# is, not), so English text is also at least 93 % letters, spaces, newlines and apostrophes
# (tinyshakespeare 95.7 %, War and Peace 96.1 %, headlines 96.6 %; Python 88 %, C headers 86 %).
_ENGLISH = frozenset("the of and to a in that is was he for it with as his on be at by i you had not but "
                     "this have from or they she her which all were my we me him so what there when an "
                     "one if will are no would their".split())
ENGLISH_SHARE = 0.20
LETTER_SHARE = 0.93


@dataclass(frozen=True)
class Yardsticks:
    """Validation nats/char of n-gram models of one text, by order; and whether it reads as English."""
    ngrams: dict[int, float] = field(default_factory=dict)
    english_like: bool = False
    train_chars: int = 0          # characters counted
    val_chars: int = 0            # characters scored

    def difficulty(self) -> float:
        """How hard this text is against tinyshakespeare, as 5-grams of as many characters of
        each find them (1.0: alike)."""
        if 5 not in self.ngrams:
            return 1.0
        return self.ngrams[5] / shakespeare_5gram(self.train_chars or SHAKESPEARE_5GRAM_BY_SIZE[-1][0])

    def best(self) -> tuple[int, float]:
        n = max(self.ngrams)
        return n, self.ngrams[n]

    def compare(self, nats_per_char: float) -> str:
        """One line: the loss against the best n-gram and the unigram of this text."""
        n, best = self.best()
        uni = self.ngrams.get(1)
        parts = [f"{_how(nats_per_char - best)} a {n}-gram of this text ({best:.3f})"]
        if uni is not None and n != 1:
            parts.append(f"{_how(nats_per_char - uni)} its character frequencies ({uni:.3f})")
        return "; ".join(parts)


def shakespeare_5gram(train_chars: int) -> float:
    """Shakespeare's 5-gram loss when counting `train_chars` characters: log-linear between the
    measured sizes, along the nearest measured segment beyond them."""
    return log_linear(SHAKESPEARE_5GRAM_BY_SIZE, max(train_chars, 1_000))


def _how(diff: float) -> str:
    if abs(diff) < 0.005:
        return "level with"
    return f"{-diff:.2f} nats/char better than" if diff < 0 else f"{diff:.2f} nats/char behind"


def measure(train_ids: np.ndarray, val_ids: np.ndarray, itos: list[str] | None = None,
            orders: tuple[int, ...] = ORDERS) -> Yardsticks:
    """Score `val_ids[1:]` (what `charlm eval` predicts) with an interpolated Kneser-Ney model of
    `train_ids` of each order. `itos` (id -> character) lets the text be checked for English."""
    train = np.asarray(train_ids[-TRAIN_CAP:], dtype=np.int64)
    val = np.asarray(val_ids[:VAL_CAP], dtype=np.int64)
    if len(train) < 2 or len(val) < 2:
        return Yardsticks()
    counter = _Counter(np.concatenate([train, val]), len(train), max(orders))
    targets = np.arange(len(train) + 1, len(counter.seq))        # validation positions predicted
    vocab = len(np.unique(counter.seq)) + 1                      # this text's characters, and <unk>
    out = {}
    for n in orders:
        prob = np.full(len(targets), 1.0 / vocab)
        for k in range(1, n + 1):   # order k interpolates with order k-1 (Chen & Goodman's recursion)
            prob = counter.interpolate(k, targets, prob, highest=k == n)
        out[n] = float(-np.log(prob).mean())
    text_sample = "".join(itos[i] for i in val[:200_000]) if itos is not None else ""
    return Yardsticks(out, english_like(text_sample), len(train), len(targets))


class _Counter:
    """The k-grams of a sequence whose first `n_train` characters are counted."""

    def __init__(self, seq: np.ndarray, n_train: int, top: int):
        self.seq, self.n_train = seq, n_train
        # Joint ids of every k-gram (the k characters starting at i), training and validation
        # alike, so a validation k-gram finds its training count by id; grams[0]: the empty context.
        # first[k][i]: where k-gram id i first occurs (in the training part if it occurs there at all).
        self.grams, self.first = [np.zeros(len(seq), dtype=np.int64)], [np.zeros(1, dtype=np.int64)]
        width = int(seq.max()) + 1
        for k in range(1, top + 1):
            keys = seq if k == 1 else self.grams[k - 1][:len(seq) - k + 1] * width + seq[k - 1:]
            first, ids = np.unique(keys, return_index=True, return_inverse=True)[1:]
            self.grams.append(ids.astype(np.int64))
            self.first.append(first)
        self._tables: dict[tuple[int, bool], tuple] = {}

    def interpolate(self, k: int, targets: np.ndarray, lower: np.ndarray, highest: bool) -> np.ndarray:
        """P_k(target | its k-1 characters before), interpolated with `lower` = P_{k-1}."""
        counts, total, kinds, d = self._table(k, highest)
        start = targets - k + 1
        inside = start >= 0
        at = np.maximum(start, 0)
        c = np.where(inside, counts[self.grams[k][at]], 0.0)
        context = self.grams[k - 1][at] if k > 1 else np.zeros(len(targets), dtype=np.int64)
        t, m = np.where(inside, total[context], 0.0), kinds[context]
        seen = t > 0
        safe = np.where(seen, t, 1.0)
        return np.where(seen, np.maximum(c - d, 0.0) / safe + d * m / safe * lower, lower)

    def _table(self, k: int, highest: bool):
        """Per k-gram id its count in the training part (raw for the highest order; for lower
        orders Kneser-Ney's continuation count: how many distinct characters came before it);
        per context id the sum of those counts and how many k-grams have one; the discount."""
        if (k, highest) not in self._tables:
            ids = self.grams[k]
            n_ids = int(ids.max()) + 1
            if highest:
                counts = np.bincount(ids[:max(self.n_train - k + 1, 0)], minlength=n_ids).astype(np.float64)
            else:
                first = self.first[k + 1]
                first = first[first <= self.n_train - k - 1]                # (k+1)-grams of the training part
                counts = np.bincount(ids[first + 1], minlength=n_ids).astype(np.float64)   # their last k characters
            contexts = self.grams[k - 1][self.first[k]] if k > 1 else np.zeros(n_ids, dtype=np.int64)
            n_contexts = int(contexts.max()) + 1
            total = np.bincount(contexts, weights=counts, minlength=n_contexts)
            kinds = np.bincount(contexts, weights=(counts > 0).astype(np.float64), minlength=n_contexts)
            self._tables[(k, highest)] = (counts, total, kinds, _discount(counts))
        return self._tables[(k, highest)]


def _discount(counts: np.ndarray) -> float:
    """D = n1 / (n1 + 2 n2), from how many k-grams were seen once and twice; kept within
    [0.05, 0.95] so that a text too regular to have singletons still leaves room for surprises."""
    n1, n2 = float((counts == 1).sum()), float((counts == 2).sum())
    return min(max(n1 / (n1 + 2 * n2) if n1 else 0.0, 0.05), 0.95)


def english_like(text: str) -> bool:
    """Whether `text` reads as English prose or verse (or lyrics, or headlines): a fifth or more
    of its words are the commonest English words, and it is nearly all letters."""
    words = re.findall(r"[A-Za-z']+", text.lower())
    if len(words) < 50:
        return False
    letters = sum(c.isalpha() or c in " \n'" for c in text) / len(text)
    return sum(w in _ENGLISH for w in words) / len(words) >= ENGLISH_SHARE and letters >= LETTER_SHARE


# -- kept per corpus ------------------------------------------------------------------------
def yardsticks_for(corpus, val_fraction: float) -> Yardsticks:
    """The yardsticks of an encoded corpus (charlm.corpus.encoded.EncodedCorpus) at this split: from the
    cache when they were measured before, else measured now (seconds) and kept."""
    path = _path(corpus.sha256, val_fraction)
    cached = _read(path)
    if cached is not None:
        return cached
    train, val = corpus.split(val_fraction)
    found = measure(train, val, corpus.vocab.itos)
    write_cache_json(path, {"format": FORMAT, **asdict(found)})       # else measured again next time
    return found


def cached_yardsticks(sha256: str | None, val_fraction: float) -> Yardsticks | None:
    """The yardsticks measured for this text before, if any (no corpus needed)."""
    return _read(_path(sha256, val_fraction)) if sha256 else None


def _path(sha256: str, val_fraction: float) -> Path:
    from charlm.corpus.encoded import cache_dir
    return cache_dir() / "yardsticks" / f"{sha256[:32]}-{val_fraction:g}.json"


def _read(path: Path) -> Yardsticks | None:
    data = read_json_dict(path)
    ngrams = data.get("ngrams")
    if data.get("format") != FORMAT or not isinstance(ngrams, dict) or not ngrams:
        return None
    try:
        values = {int(k): float(v) for k, v in ngrams.items()}
    except (TypeError, ValueError):
        return None
    if not all(math.isfinite(v) and v > 0 for v in values.values()):
        return None
    return Yardsticks(values, bool(data.get("english_like")), int(data.get("train_chars", 0)),
                      int(data.get("val_chars", 0)))
