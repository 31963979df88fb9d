"""`--preset auto`: the model that will be best at the end of this budget, on this machine.

A bigger network learns more per character but reads fewer characters per second, and a
5-minute budget on a 2-core laptop is over long before a 2x512 LSTM has seen enough text
(1.63-2.75 nats/char at ~280 steps on a Zen 3, where a 2x256 reaches 1.47). So the choice is
made from two measurements:

- how fast each candidate shape trains *here* (charlm.train.speed times the trainer's own step), and
- how good each shape is after reading D characters, the same on every machine at fixed steps:
  QUALITY below, measured on tinyshakespeare with the recipe this module gives each shape.

Each candidate reads D = chars/s x seconds (or steps x batch x seq-len) characters; a corpus
read many times over teaches less per pass, so D is discounted as in data-constrained scaling
(Muennighoff et al. 2023) before the table is read: that is how the corpus size enters, and why
a small text gets a small model. The candidate with the lowest predicted loss wins.

`choose` is the rule, a pure function; `plan` times what it needs and calls it.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from charlm.config import GATES, ModelConfig, TrainConfig
from charlm.interpolate import log_linear

LAYERS = 2
SEQ_LEN = 64
EVAL_SHARE = 0.04            # of a wall-clock budget, spent validating, sampling and saving
REPEAT_HALF_LIFE = 15.0      # R* of Muennighoff et al.: passes after the first that still teach
REFERENCE_CORPUS = 1_003_854  # training characters of tinyshakespeare, where QUALITY was measured
PARAMS_PER_CHAR = 4.0        # the most recurrent weights per training character QUALITY covers (2x512: 3.2)

# Validation nats/char on tinyshakespeare after reading D characters, each shape trained with
# its recipe below (fp32 and bf16 agree to 0.001). Runs: `python -m bench.sizing_grid`; the
# figures, steps and commands are in bench/sizing_runs.jsonl.
QUALITY: dict[int, tuple[tuple[float, float], ...]] = {
    128: ((999_424, 1.8372), (2_998_272, 1.6567), (7_999_488, 1.5826)),
    256: ((999_424, 1.7588), (2_699_264, 1.5417), (6_799_360, 1.4585), (19_998_720, 1.4167),
          (44_998_656, 1.4084)),
    384: ((1_198_080, 1.6564), (3_497_984, 1.4908), (7_999_488, 1.4277), (21_999_616, 1.3776)),
    512: ((999_424, 1.6812), (2_498_560, 1.5174), (7_999_488, 1.3977), (12_998_656, 1.3796)),
}


# The candidates are the measured shapes: a width between two of them would borrow a neighbour's
# quality and look better than it is.
HIDDEN_SIZES = tuple(sorted(QUALITY))


@dataclass(frozen=True)
class Shape:
    """A candidate network and how it trains."""
    hidden: int
    layers: int = LAYERS
    cell: str = "lstm"

    @property
    def embed(self) -> int:
        return max(16, min(64, self.hidden // 8))

    @property
    def name(self) -> str:
        return f"{self.layers}x{self.hidden}"

    def params(self) -> int:
        """Recurrent weights (the embedding and head depend on the vocabulary, and are small)."""
        gates = GATES[self.cell]
        return sum(gates * self.hidden * ((self.embed if i == 0 else self.hidden) + self.hidden + 2)
                   for i in range(self.layers))

    def lr(self) -> float:
        """Peak AdamW learning rate: 2e-2 suits a 2x256 at a few thousand steps (1e-2 gave
        1.490, 5e-3 1.549, 2e-2 1.465), and the best rate falls as 1/sqrt(width)."""
        return min(3e-2, 2e-2 * math.sqrt(256 / self.hidden))

    def model_config(self, vocab_size: int, dropout: float) -> ModelConfig:
        return ModelConfig(vocab_size=vocab_size, cell=self.cell, layers=self.layers, hidden=self.hidden,
                           embed=self.embed, dropout=dropout)


def batch_size_for(steps_at_64: float) -> int:
    """Streams per step. At these budgets more updates beat bigger ones: a 2x512 read 8M chars
    in 3,906 steps of 32 streams (val 1.398) and did worse on twice the text in 3,906 steps of
    64 (1.406); a 2x256 at lr 1e-2 got 1.475 from 6.8M chars in steps of 32, 1.490 from 7.8M in
    steps of 64 and 1.547 in steps of 64x128. Wider batches only once updates are plentiful."""
    if steps_at_64 <= 8000:
        return 32
    return 64 if steps_at_64 <= 32000 else 128


def dropout_for(passes: float, hidden: int) -> float:
    """Locked dropout from how often the text will be read: none for a pass or two, more for
    many passes and wide layers. A 2x256 read 6.8 times: 1.466 without, 1.4585 with 0.1,
    1.4725 with 0.2; a 2x512 read 16 times with 0.3 still ended at train 1.17, val 1.406."""
    if passes < 2:
        return 0.0
    base = 0.1 if passes < 10 else 0.2 if passes < 18 else 0.3
    return round(min(0.4, base + (0.1 if hidden >= 512 else 0.0)), 2)


def effective_chars(chars: float, unique: float) -> float:
    """Characters read, discounted for repetition: the first pass counts whole, later passes
    ever less (D' = U + U R* (1 - exp(-(D/U - 1) / R*)), Muennighoff et al. 2023)."""
    if unique <= 0 or chars <= unique:
        return chars
    return unique + unique * REPEAT_HALF_LIFE * (1.0 - math.exp(-(chars / unique - 1.0) / REPEAT_HALF_LIFE))


def predicted_loss(hidden: int, chars: float, unique: float, difficulty: float = 1.0) -> float:
    """Validation nats/char for a shape that reads `chars` of a text of `unique` characters,
    read off QUALITY at the same effective amount of text (log-linear between its points), and
    scaled by the text's `difficulty` (charlm.corpus.yardsticks.Yardsticks.difficulty: how hard a 5-gram
    finds it against as much of tinyshakespeare). Measured on seven texts and five slices of them,
    30k to 3.4M characters (22 runs of auto's choice, 2 and 5 minutes, bench/auto_texts.py; README
    "Other texts"), the worst miss is 0.17 nats/char (texts under 350k within 0.04, but for code):
    text difficulty is more than a 5-gram sees (Python does better, big Bengali and short runs on
    big novels worse, than it predicts)."""
    points = [(effective_chars(d, REFERENCE_CORPUS), loss) for d, loss in QUALITY[_nearest_measured(hidden)]]
    y = log_linear(points, max(effective_chars(chars, unique), 1.0))
    return min(max(y, points[-1][1] - 0.15), 4.2) * difficulty    # beyond the table: a bounded guess either way


def _nearest_measured(hidden: int) -> int:
    return min(QUALITY, key=lambda h: abs(math.log(h / hidden)))


@dataclass(frozen=True)
class Budget:
    seconds: float | None = None
    steps: int | None = None

    @classmethod
    def of(cls, cfg: TrainConfig) -> "Budget":
        return cls(cfg.budget_seconds, cfg.steps if cfg.budget_seconds is None else None)


@dataclass(frozen=True)
class Option:
    """One shape as it would go in this budget."""
    shape: Shape
    precision: str
    chars_per_sec: float | None   # None: not timed (a steps budget needs no speed to choose)
    batch_size: int
    steps: int
    chars: float
    passes: float
    loss: float                   # predicted validation nats/char


@dataclass(frozen=True)
class AutoChoice:
    chosen: Option
    others: tuple[Option, ...] = field(default=())
    train_chars: int = 0

    def configs(self, vocab_size: int, train: TrainConfig) -> tuple[ModelConfig, TrainConfig]:
        """The chosen model and the training settings for it, on top of `train`'s budget."""
        o = self.chosen
        t = TrainConfig(**{**vars(train), "batch_size": o.batch_size, "seq_len": SEQ_LEN, "lr": o.shape.lr(),
                           "precision": o.precision})
        return o.shape.model_config(vocab_size, dropout_for(o.passes, o.shape.hidden)), t

    def summary(self) -> str:
        """One line: what was chosen, how fast it trains here, how far it gets."""
        o = self.chosen
        speed = f"~{_k(o.chars_per_sec)} chars/s here, " if o.chars_per_sec else ""
        return (f"{o.shape.cell} {o.shape.name}, {o.batch_size}x{SEQ_LEN} {o.precision}: {speed}"
                f"~{o.steps:,} steps, {o.passes:.1f} passes over {_k(self.train_chars)} chars")

    def reason(self) -> str:
        """Why: the predicted loss of the choice and of its neighbours; a bigger one that
        predicts as well or better says why it lost (a near-tie goes to the faster shape)."""
        o = self.chosen
        parts = [f"predicted val ≈{o.loss:.2f} nats/char"]
        for other in sorted(self.others, key=lambda x: x.shape.hidden):
            if other.shape != o.shape:
                better_but_slower = other.loss <= o.loss and other.shape.hidden > o.shape.hidden
                tie = ", a near-tie: the faster wins" if better_but_slower else ""
                parts.append(f"{other.shape.name} ≈{other.loss:.2f} ({other.steps:,} steps{tie})")
        return "; ".join(parts)


def _k(n: float) -> str:
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.0f}k" if n >= 1e3 else f"{n:.0f}"


# chars/s at 32 and 128 streams relative to 64, where a candidate is timed (2-core Zen 5, fp32
# restricted to AVX2: 0.86-0.89 and 1.03-1.17; bf16: ~0.7 and ~1.2): the lower ends, so a
# guess never flatters a shape. The chosen shape is then timed at its own batch.
BATCH_SPEED = {32: 0.85, 64: 1.0, 128: 1.03}


def option(shape: Shape, precision: str, rates: Mapping[int, float], budget: Budget, train_chars: int,
           difficulty: float = 1.0) -> Option:
    """How `shape` would fare in `budget`, given its chars/s here by batch size (`rates`,
    at least at 64 for a wall-clock budget; unused for a steps budget), on a text of this
    `difficulty` (see predicted_loss). A pure function."""
    fits = max(1, (train_chars - 1) // SEQ_LEN)      # streams a short text can hold
    if budget.seconds is not None:
        at_64 = rates[64] * budget.seconds * (1.0 - EVAL_SHARE)
        batch = min(batch_size_for(at_64 / (64 * SEQ_LEN)), fits)
        cps = rates.get(batch) or rates[64] * BATCH_SPEED.get(batch, min(BATCH_SPEED.values()))
        chars = cps * budget.seconds * (1.0 - EVAL_SHARE)
        steps = int(chars // (batch * SEQ_LEN))
    else:
        steps = budget.steps or 0
        batch = min(batch_size_for(steps), fits)
        cps = rates.get(batch)
    chars = float(steps * batch * SEQ_LEN)
    return Option(shape, precision, cps, batch, steps, chars, chars / max(train_chars, 1),
                  predicted_loss(shape.hidden, chars, train_chars, difficulty))


def choose(options: Sequence[Option], train_chars: int | None = None) -> Option:
    """The lowest predicted loss; between near-ties (0.005), the faster (smaller) shape. Shapes
    with more than PARAMS_PER_CHAR weights per training character are left out while any other
    is in: QUALITY never saw a model that big for its text (and the repetition discount alone
    would let one memorise a small text)."""
    fits = [o for o in options if train_chars is None or o.shape.params() <= PARAMS_PER_CHAR * train_chars]
    options = fits or [min(options, key=lambda o: o.shape.hidden)]
    best = min(o.loss for o in options)
    return min((o for o in options if o.loss <= best + 0.005), key=lambda o: (o.shape.hidden, o.loss))


def candidates(fixed: Mapping[str, object]) -> list[Shape]:
    """The shapes to consider, given the model flags a person fixed (cell, layers, hidden)."""
    sizes = (int(fixed["hidden"]),) if fixed.get("hidden") else HIDDEN_SIZES
    return [Shape(h, int(fixed.get("layers") or LAYERS), str(fixed.get("cell") or "lstm")) for h in sizes]


def plan(train_chars: int, vocab_size: int, train: TrainConfig, fixed: Mapping[str, object] | None = None,
         timer: Callable[[ModelConfig, TrainConfig, str], float] | None = None,
         precision_for: Callable[[ModelConfig, TrainConfig], str] | None = None,
         cancel: threading.Event | None = None, difficulty: float = 1.0) -> AutoChoice:
    """Time the candidates (cached per machine) and choose. `timer(model, train, precision)`
    gives chars/s (default charlm.train.speed.speed); `precision_for(model, train)` the precision
    (default charlm.machine.device.pick_precision of train.precision). Shapes are timed smallest first
    and timing stops once a larger one predicts worse: the loss is U-shaped in size. A steps
    budget needs no speeds to choose; only the chosen shape is timed, to say how long it takes."""
    from charlm.machine.device import pick_device
    from charlm.machine.threads import settle
    from charlm.train.speed import pick_precision, speed
    if timer is None:
        settle(train.threads)      # time with the threads training will have: the free cores
        timer = lambda m, t, p: speed(m, t, p, cancel)   # noqa: E731
    device = pick_device(train.device)
    precision_for = precision_for or (lambda m, t: pick_precision(train.precision, device, m, t))
    budget = Budget.of(train)
    timed = budget.seconds is not None

    def at_batch(batch: int) -> TrainConfig:
        return TrainConfig(**{**vars(train), "batch_size": batch, "seq_len": SEQ_LEN})

    options, rates = [], {}
    for shape in candidates(fixed or {}):
        if options and shape.params() > PARAMS_PER_CHAR * train_chars:
            break                               # too big for this text: choose() would leave it out
        m = shape.model_config(vocab_size, 0.0)
        precision = precision_for(m, at_batch(64)) if timed else train.precision
        rates[shape] = {64: timer(m, at_batch(64), precision)} if timed else {}
        options.append(option(shape, precision, rates[shape], budget, train_chars, difficulty))
        if len(options) >= 2 and options[-1].loss > min(o.loss for o in options[:-1]) + 0.01:
            break
    best = choose(options, train_chars)
    # The choice at its own batch size: its precision there (bf16 gains less on fewer streams:
    # a 2x256 at 32 ran faster in fp32 on a Zen 5 where it was slower at 64), and its speed.
    m, t = best.shape.model_config(vocab_size, 0.0), at_batch(best.batch_size)
    precision = precision_for(m, t)
    rates[best.shape][best.batch_size] = timer(m, t, precision)
    best = option(best.shape, precision, rates[best.shape], budget, train_chars, difficulty)
    return AutoChoice(best, tuple(o for o in options if o.shape != best.shape), train_chars)
