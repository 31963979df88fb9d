"""What the model expected at each character of a text: the probability it gave the character
that came, its top-k guesses for that position, and the text's nats/char.

The text is read exactly as `charlm eval` reads it (one stream from a zero state, through
`charlm.train.evaluate.stream_logits`), so the mean of -ln p here is eval's figure. The first
character is read, never predicted: it has no probability.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import torch

from charlm.cancel import Progress, check
from charlm.corpus.vocab import CharVocab
from charlm.errors import UsageError
from charlm.model.network import CharRNN, char_loss
from charlm.train.evaluate import stream_logits
from charlm.units import bits


@dataclass(frozen=True)
class ProbeResult:
    """Per position t of the text (T characters): row t is about character t, predicted from
    the characters before it. Row 0 (the first character) holds NaN and id -1."""
    chars: list[str]            # the text, one string per character (as given, <unk> ones too)
    probs: np.ndarray           # (T,) float64: the probability the model gave character t
    top_ids: np.ndarray         # (T, k) int64: its k likeliest guesses for position t, likeliest first
    top_probs: np.ndarray       # (T, k) float64: their probabilities
    itos: list[str]             # id -> character, to name the guesses
    nats_per_char: float        # mean -ln p over characters 1..T-1, summed as `charlm eval` sums it

    @property
    def bits_per_char(self) -> float:
        return bits(self.nats_per_char)

    @property
    def surprise_bits(self) -> np.ndarray:
        """-log2 p per character (NaN for the first): what the terminal view colours by."""
        return -np.log2(self.probs)

    def top(self, t: int) -> list[tuple[str, float]]:
        """The guesses for position t as (character, probability); [] for the first character."""
        if t == 0:
            return []
        return [(self.itos[i], float(p)) for i, p in zip(self.top_ids[t], self.top_probs[t])]

    def as_dict(self) -> dict:
        return {"nats_per_char": self.nats_per_char, "bits_per_char": self.bits_per_char,
                "chars": [{"char": c, "prob": None if t == 0 else float(self.probs[t]), "top": self.top(t)}
                          for t, c in enumerate(self.chars)]}


def probe(model: CharRNN, vocab: CharVocab, text: str, top_k: int = 5, device: torch.device | str = "cpu",
          progress: Progress | None = None, cancel: threading.Event | None = None) -> ProbeResult:
    """Read `text` through the model (fp32) and keep, per character, its probability and the
    `top_k` likeliest guesses (all of them when top_k >= the vocabulary). `progress(done, total)`
    counts characters; setting `cancel` raises charlm.cancel.Cancelled between chunks."""
    if len(text) < 2:
        raise UsageError("the text is too short to probe", "give a text of at least two characters")
    if top_k < 1:
        raise UsageError(f"top-k must be at least 1, got {top_k}", "try --top-k 5")
    ids = vocab.encode_array(text)
    k = min(top_k, len(vocab))
    T = len(ids)
    probs = np.full(T, np.nan)
    top_ids = np.full((T, k), -1, dtype=np.int64)
    top_probs = np.full((T, k), np.nan)
    done, total = 1, 0.0
    for logits, y in stream_logits(model, ids, torch.device(device), "fp32", streams=1):
        check(cancel)
        p = torch.softmax(logits[0].double(), dim=-1)                  # (t, V)
        n = y.size(1)
        total += char_loss(logits, y, reduction="sum").item()      # eval's own arithmetic: the same figure
        probs[done:done + n] = p.gather(1, y[0, :, None])[:, 0].cpu().numpy()
        values, indices = p.topk(k, dim=-1)
        top_probs[done:done + n] = values.cpu().numpy()
        top_ids[done:done + n] = indices.cpu().numpy()
        done += n
        if progress is not None:
            progress(done, T)
    return ProbeResult(list(text), probs, top_ids, top_probs, list(vocab.itos), total / (T - 1))
