"""Streaming generation: a generator that yields characters and reads its controls every step.

The hidden state is carried forward one character at a time, so each new character costs one
step of the network, however long the text already is. `SampleControls` is a plain mutable
object: a UI thread may change its temperature / top-k / top-p while the generator runs and
the very next character uses the new values.
"""

from __future__ import annotations

import bisect
import ctypes
import math
from dataclasses import dataclass

import torch

from charlm.corpus.vocab import UNK_ID, CharVocab
from charlm.errors import UsageError
from charlm.generate.native.build import library
from charlm.model.network import CharRNN, Hidden, eval_mode


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


@dataclass(frozen=True, slots=True)      # one per character the app shows: 120 -> 72 bytes each
class Token:
    char: str
    id: int
    prob: float   # the probability the model itself (temperature 1) gave this character


class Uniforms:
    """A stream's uniform draws in [0, 1), taken from its generator BLOCK at a time: one call in
    place of one a character, and the very numbers one torch.rand call per draw would give, in
    the same order (a CPU generator fills a tensor element after element)."""

    BLOCK = 256

    def __init__(self, generator: torch.Generator):
        self.generator, self._block, self._next = generator, [], 0

    def reseed(self, seed: int) -> None:
        self.generator.manual_seed(seed)
        self._block, self._next = [], 0

    def take(self, n: int = 1) -> list[float]:
        if self._next + n > len(self._block):
            fresh = torch.rand(max(self.BLOCK, n), generator=self.generator).tolist()
            self._block, self._next = self._block[self._next:] + fresh, 0
        out = self._block[self._next:self._next + n]
        self._next += n
        return out


def pick(logits: torch.Tensor, controls: SampleControls, uniforms: Uniforms) -> tuple[list[int], list[float]]:
    """One id per row of logits (N, V) under the controls as they are right now, and the
    probability the model itself (temperature 1) gave each. Few operations: at batch 1 each
    costs more in dispatch than in arithmetic."""
    t, k, p = controls.temperature, controls.top_k, controls.top_p
    if logits.size(0) == 1 and t > 0 and not 0 < k < logits.size(-1) and p >= 1.0:
        i, prob = pick_one(logits[0], t, uniforms.take()[0])
        return [i], [prob]
    logits = logits.float()
    model_probs = torch.softmax(logits, dim=-1)
    if t <= 0:
        scores = logits.clone()
        scores[:, UNK_ID] = -math.inf                  # <unk> is never a thing to say
        ids = scores.argmax(dim=-1)
    else:
        if t == 1.0 and not 0 < k < logits.size(-1) and p >= 1.0:
            probs = model_probs.clone()                # multinomial renormalises what is left
            probs[:, UNK_ID] = 0.0
        else:
            scores = logits / t
            scores[:, UNK_ID] = -math.inf
            if 0 < k < scores.size(-1):
                kth = torch.topk(scores, k, dim=-1).values[:, -1:]
                scores.masked_fill_(scores < kth, -math.inf)
            probs = torch.softmax(scores, dim=-1)
            if p < 1.0:
                sorted_p, order = probs.sort(dim=-1, descending=True)
                # drop a character when the mass before it already reaches p (the top one always stays)
                drop_sorted = (sorted_p.cumsum(-1) - sorted_p) >= p
                probs.masked_fill_(drop_sorted.scatter(-1, order, drop_sorted), 0.0)
        ids = draw(probs, uniforms)
    return ids.tolist(), model_probs.gather(-1, ids[:, None])[:, 0].tolist()


def pick_one(logits: torch.Tensor, t: float, u: float) -> tuple[int, float]:
    """`pick` for one stream with no top-k or top-p, the common case of play: the inverse of
    softmax(logits / t)'s cumulative sum at the uniform u, <unk> left out (as `draw`), and the
    model's own probability of the id drawn. In C where charlm's C step is built (one call),
    else with the search done in Python over the V sums (fewer tensor ops than `draw`)."""
    lib = library()
    if lib is not None and logits.dtype == torch.float32 and logits.is_contiguous():
        prob = ctypes.c_float()
        return lib.charlm_draw(logits.data_ptr(), logits.numel(), t, u, ctypes.byref(prob)), prob.value
    return pick_one_in_python(logits, t, u)


def pick_one_in_python(logits: torch.Tensor, t: float, u: float) -> tuple[int, float]:
    logits = logits.float()
    model_probs = torch.softmax(logits, dim=-1)
    probs = model_probs if t == 1.0 else torch.softmax(logits / t, dim=-1)
    cdf = probs.double().cumsum(-1).tolist()
    floor = cdf[UNK_ID]           # <unk> is id 0, the first sum: drawing above its mass leaves it out
    if cdf[-1] - floor <= 1e-30 * cdf[-1]:          # all the mass on <unk>: the likeliest other id
        i = int(logits[1:].argmax()) + 1
    else:
        i = bisect.bisect_right(cdf, floor + u * (cdf[-1] - floor))
        if i >= len(cdf):         # past the end by rounding: the last id with any mass
            i = max(j for j in range(1, len(cdf)) if cdf[j] > cdf[j - 1])
    return i, model_probs[i].item()


def draw(weights: torch.Tensor, uniforms: Uniforms) -> torch.Tensor:
    """One index per row of non-negative `weights` (N, V), with probability proportional to
    its weight: the inverse of the cumulative sum at a uniform draw (torch.multinomial took
    50 us a call at batch 1, this a fifth of it). A zero weight is never drawn."""
    cdf = weights.cumsum(-1)                                               # (N, V)
    u = torch.tensor(uniforms.take(weights.size(0)))[:, None] * cdf[:, -1:]
    return torch.searchsorted(cdf, u, right=True)[:, 0].clamp_(max=weights.size(-1) - 1)


@dataclass(frozen=True)
class Continuation:
    """Where a stream stopped, to go on from exactly there: the state after every character fed
    so far, and the characters last yielded (one per sample), not yet fed; or, when they were
    fed already (a stream asked for its candidates), the logits for the next one."""
    hidden: Hidden
    pending: tuple[int, ...]
    logits: torch.Tensor | None = None     # (N, V)


class Stream:
    """The characters of one generation, a list of `num_samples` Tokens per step. (No autograd
    context is needed: the fast step's tensors are detached copies; the reference one opts out.)

    Iterate it; stop whenever you like (`close()`, or just stop iterating); `continuation()`
    says where it stands, for a later stream to go on from. With `stop`, a sample is finished
    once its text ends with that string (`finished[i]`), and the stream ends when all are."""

    def __init__(self, sampler: Sampler, ids: list[int], controls: SampleControls, length: int | None,
                 seed: int | None, num_samples: int, after: Continuation | None, stop: str | None):
        self.sampler, self.controls, self.length, self.stop = sampler, controls, length, stop
        self.num_samples = (len(after.pending) or after.logits.size(0)) if after is not None else num_samples
        self.finished = [False] * self.num_samples
        self.produced = 0
        self._tails = [""] * self.num_samples          # the last len(stop) characters of each sample
        generator = torch.Generator(device="cpu")
        generator.manual_seed(seed if seed is not None else int(torch.randint(0, 2**62, (1,)).item()))
        self._uniforms = Uniforms(generator)
        self._seed = controls.seed
        self._engine = sampler.engine(self.num_samples)
        self._engine.load(after.hidden if after is not None else None)
        self._pending: list[int] = []                  # yielded, not yet fed: what continuation() reports
        self._fed: list[int] | None = None             # the same, for the next step to feed
        self._logits = None if after is None or after.logits is None else after.logits.clone()
        if after is not None and after.pending:        # the characters yielded last time go in first
            self._logits = self._engine.advance(list(after.pending))
        if ids:
            self._logits = self._engine.feed(torch.tensor([ids] * self.num_samples))
        if self._logits is None:
            raise UsageError("there is nothing to continue from", "give a prompt")

    def __iter__(self) -> Stream:
        return self

    def __next__(self) -> list[Token]:
        if (self.length is not None and self.produced >= self.length) or all(self.finished):
            raise StopIteration
        self._advance()
        if self.controls.seed is not None and self.controls.seed != self._seed:
            self._uniforms.reseed(self.controls.seed)  # a seed set mid-stream reseeds the next character
            self._seed = self.controls.seed
        return self._emit(*pick(self._logits, self.controls, self._uniforms))

    def candidates(self, k: int, sample: int = 0) -> list[Token]:
        """The model's k likeliest next characters for one sample, likeliest first, each with the
        probability the model gives it (temperature 1), <unk> left out. Costs nothing extra: the
        step it needs is the one the next character needs anyway."""
        self._advance()
        probs = torch.softmax(self._logits[sample].float(), -1)
        probs[UNK_ID] = 0.0
        values, ids = probs.topk(min(k, probs.numel() - 1))
        itos = self.sampler.vocab.itos
        return [Token(itos[i], i, p) for i, p in zip(ids.tolist(), values.tolist())]

    def choose(self, char_id: int) -> list[Token]:
        """Make `char_id` the next character of every sample instead of drawing one (a person
        picking it): it is fed to the model exactly as a drawn one would be."""
        if char_id == UNK_ID or not 0 <= char_id < len(self.sampler.vocab):
            raise UsageError(f"there is no character {char_id} to choose", "choose one of the candidates")
        self._advance()
        probs = torch.softmax(self._logits.float(), -1)[:, char_id]
        return self._emit([char_id] * self.num_samples, probs.tolist())

    def _advance(self) -> None:
        """Feed what the caller has seen: the logits for the next character."""
        if self._fed is not None:
            self._logits = self._engine.advance(self._fed)
            self._fed = None

    def _emit(self, nxt: list[int], probs: list[float]) -> list[Token]:
        itos = self.sampler.vocab.itos
        self._pending = self._fed = nxt
        tokens = [Token(itos[i], i, p) for i, p in zip(nxt, probs)]
        self.produced += 1
        if self.stop:
            for i, tok in enumerate(tokens):
                self._tails[i] = (self._tails[i] + tok.char)[-len(self.stop):]
                self.finished[i] = self.finished[i] or self._tails[i] == self.stop
        return tokens

    def close(self) -> None:
        """Nothing to release: stopping is just not asking for more."""

    def continuation(self) -> Continuation:
        if self._fed is None and self._logits is not None:     # all fed (see candidates): keep the logits
            return Continuation(self._engine.state(), (), self._logits.clone())
        return Continuation(self._engine.state(), tuple(self._pending))


class Sampler:
    """Generates text from a trained model, through the fast step (charlm.generate.engine) on the CPU,
    or the model's own forward pass, one character at a time (`weights="reference"`: the simple
    path the fast one is tested against, and the one used on a GPU)."""

    def __init__(self, model: CharRNN, vocab: CharVocab, device: torch.device | str = "cpu", weights: str = "fp32"):
        self.model, self.vocab, self.device = model, vocab, torch.device(device)
        self.weights = weights if self.device.type == "cpu" else "reference"
        self._prepared: dict = {}        # precision -> EngineWeights: made once, shared by every stream

    def engine(self, batch: int):
        """A per-character step for `batch` streams (a fresh one per stream: it holds the state)."""
        if self.weights == "reference":
            return ReferenceEngine(self.model, self.device)
        from charlm.generate.engine import make_engine
        return make_engine(self.model, batch, self.engine_weights(batch))

    def engine_weights(self, batch: int = 1):
        """The EngineWeights streams of `batch` samples step with (weights auto: the fastest that
        keeps the model's quality here), made once per precision."""
        from charlm.generate.engine import EngineWeights, fastest_weights
        weights = fastest_weights(self.model, batch) if self.weights == "auto" else self.weights
        if weights not in self._prepared:
            self._prepared[weights] = EngineWeights(self.model, weights)
        return self._prepared[weights]

    def prompt_ids(self, prime: str) -> list[int]:
        """Prime ids with characters the vocabulary lacks skipped (see `unknown_note`); a prime
        with none it knows is refused (see `check_prompt`)."""
        check_prompt(self.vocab, prime)
        return [self.vocab.stoi[c] for c in prime if c in self.vocab.stoi]

    def stream(self, prime: str = "", controls: SampleControls | None = None, length: int | None = 500,
               seed: int | None = None, num_samples: int = 1, after: Continuation | None = None,
               stop: str | None = None) -> Stream:
        """A Stream of one Token per sample at each step; `length=None` runs until the caller stops.
        With `after` (an earlier stream's continuation) it goes on from there, `prime` on top."""
        controls = controls or SampleControls()
        controls.validate()
        ids = self.prompt_ids(prime)
        if not ids and after is None:
            ids = [self.vocab.stoi.get("\n", 1)]         # an empty prompt starts at a line break
        return Stream(self, ids, controls, length, seed, num_samples, after, stop)

    def generate(self, prime: str = "", length: int = 500, controls: SampleControls | None = None,
                 seed: int | None = None, stop: str | None = None) -> str:
        """One sample as a string; stops early after `stop` appears."""
        return "".join(tok.char for (tok,) in self.stream(prime, controls, length, seed, stop=stop))


class ReferenceEngine:
    """The model's own forward pass, one character at a time: the reference path."""

    def __init__(self, model: CharRNN, device: torch.device):
        self.model, self.device, self.hidden = model, device, None

    def load(self, hidden: Hidden | None) -> None:
        self.hidden = hidden

    def state(self) -> Hidden:
        return self.hidden

    def feed(self, ids: torch.Tensor) -> torch.Tensor:
        return self._run(ids)

    def advance(self, ids: torch.Tensor | list[int]) -> torch.Tensor:
        return self._run(torch.as_tensor(ids)[:, None])

    @torch.no_grad()
    def _run(self, x: torch.Tensor) -> torch.Tensor:
        with eval_mode(self.model):
            out, self.hidden = self.model(x.to(self.device), self.hidden)
        return out[:, -1].float().cpu()


def check_prompt(vocab: CharVocab, prime: str) -> None:
    """Refuse a prompt the model would not see at all: every one of its characters is unknown
    (skipping them would sample from an empty prompt as if none had been given)."""
    if prime and not any(c in vocab.stoi for c in prime):
        raise UsageError(f"the model knows none of the prompt's characters ({_shown(vocab.unknown_chars(prime))})",
                         "write the prompt in characters of the text it was trained on")


def unknown_note(vocab: CharVocab, prime: str) -> str | None:
    """What to tell a person whose prompt has characters the model never saw (they are skipped)."""
    missing = vocab.unknown_chars(prime)
    if not missing:
        return None
    return f"the model never saw {len(missing)} character(s) of the prompt; they are skipped: {_shown(missing)}"


def _shown(chars: list[str]) -> str:
    """Up to 20 characters, quoted, with newlines visible: a one-line message stays one line."""
    return repr("".join(chars[:20]))


TRAINING_TEMPERATURE = 0.8    # samples written while training: a little conservative, so progress reads clearly


def training_sample(model: CharRNN, vocab: CharVocab, device: torch.device, length: int, seed: int) -> str:
    """A sample of the model as it trains (the trainer's, at each validation and between)."""
    return Sampler(model, vocab, device).generate(length=length, controls=SampleControls(TRAINING_TEMPERATURE),
                                                  seed=seed)
