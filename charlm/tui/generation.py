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

from charlm.model import CharRNN, Hidden
from charlm.sample import SampleControls, Sampler, Token
from charlm.vocab import CharVocab

POST_INTERVAL = 1 / 30       # seconds between batches of characters sent to the screen


@dataclass
class LiveSettings:
    controls: SampleControls = field(default_factory=lambda: SampleControls(temperature=0.8))
    length: int = 1000           # characters per Generate / Continue
    pace: float = 300.0          # characters per second on screen (0 = as fast as the model goes)


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
    hidden: Hidden | None = None          # continuing: the state after the last character shown
    stop: threading.Event = field(default_factory=threading.Event)


@dataclass
class StreamEnd:
    sampler: Sampler
    hidden: Hidden | None                 # state before `last_char` was fed: continue feeds it
    last_char: str | None
    produced: int
    stopped: bool                         # stopped by the user before `length`


def new_seed() -> int:
    return random.randrange(1, 1_000_000)


def make_sampler(source: Source) -> Sampler:
    model = source.snapshot() if source.snapshot is not None else source.model
    return Sampler(model, source.vocab, "cpu")


def run_stream(job: StreamJob, settings: LiveSettings, emit: Callable[[list[Token]], None],
               cancelled: Callable[[], bool] = lambda: False) -> StreamEnd:
    """Generate until `settings.length` characters, a stop, or cancellation; `emit` batches."""
    sampler = job.sampler or make_sampler(job.source)
    prime = job.prime
    stream = sampler.stream(prime, settings.controls, None, job.seed, 1, job.hidden)
    batch: list[Token] = []
    produced, last_char, stopped = 0, None, False
    start = last_post = time.monotonic()
    try:
        for (tok,) in stream:
            batch.append(tok)
            produced, last_char = produced + 1, tok.char
            now = time.monotonic()
            if now - last_post >= POST_INTERVAL:
                emit(batch)
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
        stream.close()
        if batch:
            emit(batch)
    return StreamEnd(sampler, sampler.last_hidden if produced else job.hidden, last_char, produced, stopped)
