"""Streaming generation for the Generate screen, free of widgets: the settings the UI changes
while text streams, and the loop the worker runs.

`LiveSettings` is a plain object shared with the worker thread. The sampler reads
`controls.temperature/top_k/top_p` at every character, and the loop below reads `length` and
`pace` at every character, so a change made in the UI applies to the very next one.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from charlm.corpus.vocab import CharVocab
from charlm.generate.sampler import Continuation, SampleControls, Sampler, Token
from charlm.machine.threads import one_core_of_our_own
from charlm.model.network import CharRNN

POST_INTERVAL = 1 / 30       # seconds between batches of characters sent to the screen
GUESSES = 9                  # next-character candidates shown (and numbered 1-9 in pick-next mode)


@dataclass
class LiveSettings:
    controls: SampleControls = field(default_factory=lambda: SampleControls(temperature=0.8))
    length: int = 1000           # characters per Generate / Continue
    pace: float = 300.0          # characters per second on screen (0 = fast: as fast as the model goes)


@dataclass
class Source:
    """Where the model comes from: a checkpoint, or a snapshot of the run being trained."""
    label: str
    vocab: CharVocab
    model: CharRNN | None = None          # a loaded checkpoint
    snapshot: Callable[[], CharRNN] | None = None   # the live run: fresh weights at every Generate
    detail: str = ""


@dataclass
class StreamJob:
    sampler: Sampler | None               # None: build one (from a fresh snapshot for a live source)
    source: Source
    prime: str
    seed: int
    after: Continuation | None = None     # continuing: where the last stream stopped
    stop: threading.Event = field(default_factory=threading.Event)


@dataclass
class StreamEnd:
    sampler: Sampler
    continuation: Continuation | None     # where Continue goes on from (None: nothing produced yet)
    produced: int
    stopped: bool                         # stopped by the user before `length`
    chars_per_sec: float                  # the model's own speed (time spent making characters)


def new_seed() -> int:
    return random.randrange(1, 1_000_000)


def make_sampler(source: Source) -> Sampler:
    model = source.snapshot() if source.snapshot is not None else source.model
    return Sampler(model, source.vocab, "cpu", weights="auto")


def run_stream(job: StreamJob, settings: LiveSettings, emit: Callable[[list[Token], float, list[Token]], None],
               cancelled: Callable[[], bool] = lambda: False) -> StreamEnd:
    """Generate until `settings.length` characters, a stop, or cancellation. `emit(tokens,
    chars_per_sec, guesses)` gets the characters in batches (at most POST_INTERVAL apart, so the
    screen keeps up at any pace) with the model's own speed so far and its likeliest next
    characters after the batch (asked for once a batch: the fast pace is not slowed)."""
    with one_core_of_our_own():         # a run training beside us keeps the other core
        return _run(job, settings, emit, cancelled)


def _run(job: StreamJob, settings: LiveSettings, emit, cancelled) -> StreamEnd:
    sampler = job.sampler or make_sampler(job.source)
    stream = sampler.stream(job.prime, settings.controls, None, job.seed, 1, after=job.after)
    batch: list[Token] = []
    produced, stopped, busy = 0, False, 0.0
    start = last_post = time.monotonic()
    try:
        while True:
            t0 = time.perf_counter()
            (tok,) = next(stream)
            busy += time.perf_counter() - t0
            batch.append(tok)
            produced += 1
            now = time.monotonic()
            if now - last_post >= POST_INTERVAL:
                emit(batch, produced / busy, stream.candidates(GUESSES))
                batch, last_post = [], now
            if produced >= settings.length:
                break
            if job.stop.is_set() or cancelled():
                stopped = True
                break
            pace = settings.pace
            if pace > 0:
                due = start + produced / pace
                if due > now and job.stop.wait(due - now):
                    stopped = True
                    break
                if due < now - 0.5:       # fell behind (pace raised, or a slow model): no catch-up burst
                    start = now - produced / pace
    finally:
        if batch:
            emit(batch, produced / max(busy, 1e-9), stream.candidates(GUESSES))
    return StreamEnd(sampler, stream.continuation() if produced else job.after, produced, stopped,
                     produced / max(busy, 1e-9))


class PickNext:
    """Pick-next mode, free of widgets: the model offers its likeliest next characters and a
    person chooses one (or lets the model draw one under the live controls), a character at a
    time; each step is one model step, quick enough for the UI thread."""

    def __init__(self, sampler: Sampler, settings: LiveSettings, prime: str = "", after: Continuation | None = None,
                 seed: int | None = None):
        self.sampler = sampler
        self.stream = sampler.stream(prime, settings.controls, None, seed, 1, after=after)
        self.produced = 0

    def offer(self) -> list[Token]:
        """The choices now, likeliest first (numbered 1-9 on screen)."""
        return self.stream.candidates(GUESSES)

    def pick(self, number: int) -> Token | None:
        """Choose offer number `number` (1-9); None when there is no such offer."""
        offer = self.offer()
        if not 1 <= number <= len(offer):
            return None
        (tok,) = self.stream.choose(offer[number - 1].id)
        self.produced += 1
        return tok

    def let_model_pick(self) -> Token:
        (tok,) = next(self.stream)
        self.produced += 1
        return tok

    def end(self) -> StreamEnd:
        """Where Continue goes on from."""
        return StreamEnd(self.sampler, self.stream.continuation(), self.produced, True, 0.0)


SWEEP = (0.2, 0.5, 0.8, 1.0, 1.3)      # temperatures side by side: near-greedy to adventurous
SWEEP_LENGTH = 400


def sweep(sampler: Sampler, prime: str, seed: int, length: int = SWEEP_LENGTH, temperatures=SWEEP,
          cancelled: Callable[[], bool] = lambda: False) -> list[tuple[float, str]]:
    """The same prompt and seed at each temperature: what the temperature alone changes. Each is
    its own stream (the same text `charlm sample --temperature T --seed S` gives); a 2x512 writes
    the five 400-character samples in well under a second."""
    out = []
    for t in temperatures:
        text = []
        for (tok,) in sampler.stream(prime, SampleControls(temperature=t), length, seed):
            text.append(tok.char)
            if cancelled():
                break
        out.append((t, "".join(text)))
    return out
