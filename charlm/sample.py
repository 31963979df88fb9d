"""Streaming generation: a generator that yields characters and reads its controls every step.

The hidden state is carried forward one character at a time, so each new character costs one
step of the network, however long the text already is. `SampleControls` is a plain mutable
object: a UI thread may change its temperature / top-k / top-p while the generator runs and
the very next character uses the new values.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from charlm.errors import UsageError
from charlm.model import CharRNN, Hidden
from charlm.vocab import UNK_ID, CharVocab


@dataclass
class SampleControls:
    temperature: float = 1.0   # 0 = greedy (argmax); higher = more adventurous
    top_k: int = 0             # keep only the k likeliest characters (0 = all)
    top_p: float = 1.0         # keep the smallest set whose probability reaches p (1 = all)
    seed: int | None = None    # changed mid-stream: reseeds, so what follows is that seed's text

    def validate(self) -> None:
        t = self.temperature
        if not isinstance(t, (int, float)) or math.isnan(t) or t < 0 or math.isinf(t):
            raise UsageError(f"temperature must be a number >= 0, got {t}", "try --temperature 0.8 (0 means greedy)")
        if self.seed is not None and (not isinstance(self.seed, int) or not 0 <= self.seed < 2**63):
            raise UsageError(f"seed must be a whole number >= 0, got {self.seed}", "try --seed 42")
        if not isinstance(self.top_k, int) or self.top_k < 0:
            raise UsageError(f"top-k must be a whole number >= 0, got {self.top_k}", "try --top-k 20 (0 turns it off)")
        p = self.top_p
        if not isinstance(p, (int, float)) or math.isnan(p) or not 0.0 < p <= 1.0:
            raise UsageError(f"top-p must be in (0, 1], got {p}", "try --top-p 0.9 (1 turns it off)")


@dataclass(frozen=True)
class Token:
    char: str
    id: int
    prob: float   # the probability the model itself (temperature 1) gave this character


def next_ids(logits: torch.Tensor, controls: SampleControls, generator: torch.Generator | None) -> torch.Tensor:
    """Pick one id per row of logits (N, V) under the controls as they are right now."""
    logits = logits.float().clone()
    logits[:, UNK_ID] = -math.inf                      # <unk> is never a thing to say
    t = controls.temperature
    if t <= 0:
        return logits.argmax(dim=-1)
    logits = logits / t
    k = controls.top_k
    if 0 < k < logits.size(-1):
        kth = torch.topk(logits, k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, -math.inf)
    probs = torch.softmax(logits, dim=-1)
    if controls.top_p < 1.0:
        sorted_p, order = probs.sort(dim=-1, descending=True)
        # drop a character when the mass before it already reaches p (the top one always stays)
        drop_sorted = (sorted_p.cumsum(-1) - sorted_p) >= controls.top_p
        probs = probs.masked_fill(drop_sorted.scatter(-1, order, drop_sorted), 0.0)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


class Sampler:
    """Generates text from a trained model."""

    def __init__(self, model: CharRNN, vocab: CharVocab, device: torch.device | str = "cpu"):
        self.model, self.vocab, self.device = model, vocab, torch.device(device)

    def prompt_ids(self, prime: str) -> list[int]:
        """Prime ids with characters the vocabulary lacks skipped (callers warn about them)."""
        return [self.vocab.stoi[c] for c in prime if c in self.vocab.stoi]

    @torch.no_grad()
    def stream(self, prime: str = "", controls: SampleControls | None = None, length: int | None = 500,
               seed: int | None = None, num_samples: int = 1,
               hidden: Hidden | None = None) -> Iterator[list[Token]]:
        """Yield one Token per sample at each step; `length=None` runs until the caller stops.

        With `hidden` given (continuing an earlier stream) the prime is fed on top of it.
        The state after the last yielded character is kept in `self.last_hidden`.
        """
        controls = controls or SampleControls()
        controls.validate()
        gen = torch.Generator(device=self.device)
        gen.manual_seed(seed if seed is not None else int(torch.randint(0, 2**62, (1,)).item()))
        ids = self.prompt_ids(prime)
        if not ids and hidden is None:
            ids = [self.vocab.stoi.get("\n", 1)]         # an empty prompt starts at a line break
        was_training = self.model.training
        self.model.eval()
        try:
            logits = None
            if ids:
                x = torch.tensor([ids] * num_samples, device=self.device)   # (N, P)
                out, hidden = self.model(x, hidden)
                logits = out[:, -1]
            elif hidden is not None:
                logits = self._last_logits
            produced, applied_seed = 0, controls.seed
            while length is None or produced < length:
                if controls.seed is not None and controls.seed != applied_seed:
                    gen.manual_seed(controls.seed)
                    applied_seed = controls.seed
                self.last_hidden, self._last_logits = hidden, logits
                nxt = next_ids(logits, controls, gen)                          # (N,)
                probs = torch.softmax(logits.float(), dim=-1).gather(-1, nxt[:, None]).squeeze(-1)
                yield [Token(self.vocab.itos[i], i, p) for i, p in zip(nxt.tolist(), probs.tolist())]
                produced += 1
                out, hidden = self.model(nxt[:, None], hidden)
                logits = out[:, -1]
            self.last_hidden, self._last_logits = hidden, logits
        finally:
            self.model.train(was_training)

    def generate(self, prime: str = "", length: int = 500, controls: SampleControls | None = None,
                 seed: int | None = None, stop: str | None = None) -> str:
        """One sample as a string; stops early after `stop` appears."""
        text = []
        for (tok,) in self.stream(prime, controls, length, seed):
            text.append(tok.char)
            if stop and "".join(text[-len(stop):]) == stop:
                break
        return "".join(text)
