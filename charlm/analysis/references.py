"""Is my loss good? Reference figures on the same split, and what a loss reads like as text.

A validation loss means little alone. For a corpus others have published figures on (today
tinyshakespeare, recognised by its content hash) a run's figure is shown beside theirs, beside
fixed figures measured while building charlm, and beside what `bench/quality.py` measured on
this very machine (it records them here). For any text, it is shown beside what simple models
of that text reach on its own split (charlm.corpus.yardsticks). Where they hold, the loss is also put
in words: what text at that loss looks like, from the samples charlm's own runs wrote on the way
down on tinyshakespeare. They hold for English (the thresholds moved by how much easier or harder
the text is than Shakespeare for a 5-gram), not for code or other languages, which get none.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from charlm.corpus.yardsticks import SHAKESPEARE_5GRAM, Yardsticks
from charlm.paths import cache_root, read_json_dict, write_cache_json

# tinyshakespeare: the catalog's file; without a BOM or CRs its normalised text (whose hash a
# run records) is byte for byte the file.
TINYSHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"


@dataclass(frozen=True)
class Reference:
    label: str
    nats_per_char: float
    source: str                 # where the figure comes from


PUBLISHED = {
    TINYSHAKESPEARE_SHA256: (
        Reference("nanoGPT's baby GPT (6x384 transformer, 10.7M params), ~3 min on an A100", 1.4697,
                  "nanoGPT README, the same last-10% split"),
    ),
}

# What a validation loss (nats/char) reads like on tinyshakespeare, from the samples of charlm
# runs on it at each loss on the way down.
READINGS = (
    (3.0, "letters in their proportions and spaces: no words yet"),
    (2.4, "word-shaped clumps of letters, a few short words (the, and, I), line breaks"),
    (2.0, "common words spelt right, capitalised names with a colon, lines of verse length; "
          "most longer words invented"),
    (1.7, "mostly real words, speeches under speaker names, verse line shapes; one word in ten "
          "invented (coustable, praice), little grammar"),
    (1.53, "real words nearly everywhere with an invented one now and then (dislend), names and "
           "punctuation in place, phrases that almost parse"),
    (1.44, "spelling rarely wrong, characters' names from the plays (KING RICHARD II, ANGELO), "
           "clauses that parse; the sense drifts within a line"),
    (1.38, "convincing pastiche: every word real, lines that scan and parse, the idiom of the "
           "period; the meaning still wanders"),
    (0.0, "as good as character models get on a text this size: sentences that hold over several "
          "lines (compare train and validation loss to be sure it is not memorising)"),
)


# The same steps for English that is not Shakespeare's: nothing about speakers, verse or plays.
ENGLISH_READINGS = (
    (3.0, READINGS[0][1]),
    (2.4, "word-shaped clumps of letters, a few short words (the, and, I), line breaks"),
    (2.0, "common words spelt right, punctuation and capitals in place; most longer words invented"),
    (1.7, "mostly real words, one in ten invented, little grammar"),
    (1.53, "real words nearly everywhere with an invented one now and then, phrases that almost parse"),
    (1.44, "spelling rarely wrong, clauses that parse; the sense drifts within a sentence"),
    (1.38, "convincing pastiche: every word real, sentences that parse, the idiom of the text; the "
           "meaning still wanders"),
    (0.0, READINGS[-1][1]),
)
# Another English text's loss is read as Shakespeare's loss moved by the difference of the two
# texts' 5-grams (charlm.corpus.yardsticks). Only for texts about as long or longer: on a small one the
# 5-gram has too little to count (20k characters of War and Peace: 1.69, the whole book: 1.35),
# and a model started from another knows far more.
MIN_CHARS_FOR_READINGS = 500_000


def reading(nats_per_char: float, table=READINGS) -> str:
    """What text at this loss looks like, in plain words."""
    for floor, words in table:
        if nats_per_char >= floor:
            return words
    return table[-1][1]


def reading_for(nats_per_char: float, corpus_sha256: str | None, yardsticks: Yardsticks | None) -> str | None:
    """The reading where it holds: tinyshakespeare's own, English text's (on a scale moved by its
    5-gram), none for anything else (code, other languages, small texts) and for a text not yet
    measured."""
    if corpus_sha256 == TINYSHAKESPEARE_SHA256:
        return reading(nats_per_char)
    if (yardsticks is not None and yardsticks.english_like and 5 in yardsticks.ngrams
            and yardsticks.train_chars >= MIN_CHARS_FOR_READINGS):
        return reading(nats_per_char - (yardsticks.ngrams[5] - SHAKESPEARE_5GRAM), ENGLISH_READINGS)
    return None


def references(corpus_sha256: str | None) -> list[Reference]:
    """Figures to compare a run on this corpus with: published, then measured on this machine."""
    if not corpus_sha256:
        return []
    measured = _load().get(corpus_sha256, {})
    return [*PUBLISHED.get(corpus_sha256, ()),
            *(Reference(label, float(v["nats_per_char"]), v.get("source", "measured on this machine"))
              for label, v in measured.items() if isinstance(v, dict) and isinstance(v.get("nats_per_char"), (int, float)))]


def record(corpus_sha256: str, label: str, nats_per_char: float, source: str) -> None:
    """Keep a figure a benchmark measured here, to be shown beside later runs on the corpus."""
    data = _load()
    data.setdefault(corpus_sha256, {})[label] = {"nats_per_char": round(nats_per_char, 4), "source": source}
    write_cache_json(_path(), data)


def verdict(nats_per_char: float, corpus_sha256: str | None, yardsticks: Yardsticks | None = None) -> list[str]:
    """Lines for people: the figure against each reference, against simple models of the same
    text, then its reading where one holds."""
    lines = []
    for ref in references(corpus_sha256):
        diff = nats_per_char - ref.nats_per_char
        how = "about the same as" if abs(diff) < 0.01 else "better than" if diff < 0 else "behind"
        lines.append(f"{how} {ref.label}: {ref.nats_per_char:.4f} ({diff:+.3f}; {ref.source})")
    if yardsticks is not None and yardsticks.ngrams:
        lines.append(yardsticks.compare(nats_per_char))
    words = reading_for(nats_per_char, corpus_sha256, yardsticks)
    if words:
        lines.append(f"reads like: {words}")
    return lines


def meaning(nats_per_char: float, corpus_sha256: str | None, yardsticks: Yardsticks | None = None) -> str:
    """One line for a status bar: the nearest reference (or the text's best n-gram), then the reading."""
    refs = references(corpus_sha256)
    ref = min(refs, key=lambda r: abs(r.nats_per_char - nats_per_char), default=None)
    parts = [f"{ref.label.split(' (')[0].split(',')[0]} {ref.nats_per_char:.3f}"] if ref else []
    if yardsticks is not None and yardsticks.ngrams:
        parts.append(yardsticks.compare(nats_per_char).split("; ")[0])
    words = reading_for(nats_per_char, corpus_sha256, yardsticks)
    if words:
        parts.append(f"reads like: {words}")
    return " · ".join(parts)


def _path() -> Path:
    return cache_root() / "references.json"


def _load() -> dict:
    return read_json_dict(_path())
