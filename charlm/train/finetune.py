"""Starting a run from another run's weights: `charlm train TEXT --init RUN`.

A text of 20-500 KB teaches a model that starts from nothing little beyond its own words: it
memorises them and still misspells. A model that already knows the language only has to adapt
(bench/finetune.py measures how much that is worth). The new run takes its parent's shape and
weights. Its vocabulary is the parent's plus the new text's characters; characters the parent
knew and the text lacks stay, so the model still reads the parent's text. A new character's
embedding and head rows start as copies of <unk>'s: the parent never met <unk> in training, so
the new characters start as unlikely as <unk> was, where random rows would put probability on
them at random and wreck the first steps.

No torch at import: the CLI checks `--init` before it pays for torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from charlm.config import ModelConfig, TrainConfig
from charlm.corpus.vocab import UNK_ID, CharVocab
from charlm.errors import UsageError
from charlm.runs.directory import BEST, LAST
from charlm.runs.listing import RunInfo, list_runs, vocab_chars

if TYPE_CHECKING:
    import torch

    from charlm.corpus.encoded import EncodedCorpus
    from charlm.model.checkpoint import Checkpoint
    from charlm.train.autosize import AutoChoice

SHAPE_FIELDS = ("cell", "layers", "hidden", "embed")     # what a parent fixes; dropout stays a choice


@dataclass(frozen=True)
class Parent:
    """The run (or bare checkpoint) a new run starts from."""
    checkpoint: "Checkpoint"

    @property
    def run_dir(self) -> Path | None:
        """The run directory around the checkpoint, when it sits in one (best/ or last/)."""
        path = self.checkpoint.path
        return path.parent if path.name in (BEST, LAST) or path.name.startswith((f".{BEST}.", f".{LAST}.")) else None

    @property
    def name(self) -> str:
        return (self.run_dir or self.checkpoint.path).name

    @property
    def config(self) -> ModelConfig:
        return self.checkpoint.model_config

    @property
    def vocab(self) -> CharVocab:
        return self.checkpoint.vocab

    def lineage(self) -> dict:
        """What the new run records of where it started (source.json's "init")."""
        c, m = self.checkpoint.corpus, self.checkpoint.metrics
        return {"run": str(self.run_dir.resolve()) if self.run_dir else None,
                "checkpoint": str(self.checkpoint.path.resolve()), "name": self.name,
                "corpus": c.get("name"), "corpus_sha256": c.get("sha256"), "corpus_chars": c.get("chars"),
                "step": m.get("step"), "best_val_loss": m.get("best_val_loss"), "shape": shape_text(self.config),
                "vocab_size": len(self.vocab)}


def lineage_text(init: dict) -> str:
    """Where a run started, in one line: the parent, its shape, its text, and how far it had got."""
    step = f" at step {init['step']:,}" if isinstance(init.get("step"), int) else ""
    best = init.get("best_val_loss")
    loss = f", best val {best:.4f}" if isinstance(best, (int, float)) else ""
    return (f"{init.get('name')} ({init.get('shape')}, trained on {init.get('corpus')}{step}{loss}) · "
            f"{init.get('run') or init.get('checkpoint')}")


def load_parent(spec: str | Path) -> Parent:
    """RUN's best checkpoint (or the checkpoint directory given), ready to start from; a
    missing or damaged one is a UsageError that names it."""
    from charlm.model.checkpoint import load_checkpoint
    try:
        return Parent(load_checkpoint(spec))
    except UsageError as e:
        raise UsageError(f"--init {spec}: {e.problem}", "give a run directory `charlm train` wrote (see "
                         "`charlm info RUN`), or one of its best/ or last/") from None


def fixed_shape(parent: ModelConfig) -> dict:
    """The model flags auto is given for a fine-tune: the parent's shape."""
    return {n: getattr(parent, n) for n in ("cell", "layers", "hidden")}


def shape_text(config: ModelConfig) -> str:
    return f"{config.cell} {config.layers}x{config.hidden} (embed {config.embed})"


def check_shape(parent: ModelConfig, asked: dict, name: str = "the starting run") -> None:
    """Model flags that contradict the parent's shape are an error naming both shapes."""
    wrong = {k: v for k, v in asked.items() if k in SHAPE_FIELDS and v is not None and getattr(parent, k) != v}
    if wrong:
        want = ModelConfig(**{**{k: getattr(parent, k) for k in SHAPE_FIELDS}, **wrong})
        flags = " ".join(f"--{k} {v}" for k, v in wrong.items())
        raise UsageError(f"{name} is {shape_text(parent)}, but {flags} asks for {shape_text(want)}",
                         f"drop {flags}: a run started from another keeps its shape")


def grown_vocab(parent: CharVocab, text_chars: str) -> CharVocab:
    """The parent's characters plus the text's: none is lost, so the model still reads both."""
    return CharVocab.from_chars([*parent.chars, *text_chars])


def new_characters(parent: CharVocab, vocab: CharVocab) -> list[str]:
    return [c for c in vocab.chars if c not in parent.stoi]


def carried_weights(state: dict[str, "torch.Tensor"], old: CharVocab, new: CharVocab) -> dict[str, "torch.Tensor"]:
    """The parent's weights laid out for the vocabulary `new`: the embedding's and the head's
    rows follow their characters to their new ids (ids are sorted by code point, so a new
    character shifts the ones after it), and a new character's rows are copies of <unk>'s."""
    import torch
    rows = torch.tensor([old.stoi.get(c, UNK_ID) for c in new.itos])     # <unk> is in no stoi: its own row
    out = dict(state)
    for key in ("embed.weight", "head.weight", "head.bias"):
        out[key] = state[key].index_select(0, rows).clone()
    return out


@dataclass(frozen=True)
class Recipe:
    """How a fine-tune trains, chosen with bench/finetune.py (the runs behind it are in
    bench/finetune_runs.jsonl). A model that knows the language adapts to a small text within a
    few passes and then learns it by heart: 20k characters of War and Peace from a Shakespeare
    base reached 1.43 nats/char after 10 passes at lr 5e-3 and was back at 1.61 after 40 (1.85 at
    lr 1e-2), where training from nothing for a minute reached 1.81. So a fine-tune stops after
    `passes` however long the budget, and learns at a quarter of the rate that trains the shape
    from nothing (lr x passes near 0.05 was best at 20k and 100k characters alike). Decay toward
    the starting weights (L2-SP) was tried on top and not kept: at most 0.004 better at 20k,
    worse at 100k once strong enough to matter; no weight decay at all was 0.001 worse."""
    lr_scale: float = 0.25         # of the shape's own peak rate (autosize.Shape.lr)
    passes: float = 10.0           # over the text, at most
    warmup: float = 0.05           # of the budget
    # A fine-tune is a few hundred steps, fewer than one validation interval: validate about this
    # often in it (at least every 10 steps), so the curve shows it adapting. Its passes usually end
    # it before the clock does, so the validations cost it no steps.
    validations: int = 8


RECIPE = Recipe()


def finetune_configs(parent: ModelConfig, choice: "AutoChoice", train: TrainConfig,
                     cap_steps: bool = True) -> tuple[ModelConfig, TrainConfig]:
    """Auto's plan for the parent's shape in this budget (`choice`; `train` holds the batch,
    length, precision and budget it will train with) turned into a fine-tune: the parent's exact
    shape, the recipe's rate, at most RECIPE.passes over the text (unless `cap_steps` is False: a
    person asked for a number of steps), and the dropout for the passes it will make."""
    from charlm.train.autosize import dropout_for
    o = choice.chosen
    t = replace(train, lr=o.shape.lr() * RECIPE.lr_scale, warmup=RECIPE.warmup)
    passes = o.passes
    if cap_steps:
        per_pass = max(choice.train_chars / (t.batch_size * t.seq_len), 1.0)       # steps
        t.steps = math.ceil(RECIPE.passes * per_pass)     # and the clock still ends it, whichever comes first
        passes = min(passes, RECIPE.passes)
    if t.steps:
        t.eval_every = min(t.eval_every, max(10, t.steps // RECIPE.validations))
    return replace(parent, dropout=dropout_for(passes, parent.hidden)), t


def start_notes(parent: Parent, vocab: CharVocab, choice: "AutoChoice", train: TrainConfig) -> list[str]:
    """What a person reads before a fine-tune starts: where from, what is new, how it trains."""
    lin = parent.lineage()
    trained = f"{lin['step']:,} steps on {lin['corpus']}" if lin["step"] is not None else f"on {lin['corpus']}"
    best = f", best val {lin['best_val_loss']:.3f}" if isinstance(lin["best_val_loss"], (int, float)) else ""
    new = new_characters(parent.vocab, vocab)
    shown = "".join(c if c.isprintable() and not c.isspace() else repr(c)[1:-1] for c in new[:30])
    new_text = (f"{len(new)} new character{'s' * (len(new) != 1)} ({shown}{'…' if len(new) > 30 else ''}) "
                "start as unlikely as <unk>" if new else "no new characters")
    gain = predicted_gain(choice.train_chars)
    return [f"init: from {parent.name} ({shape_text(parent.config)}, {trained}{best}); {new_text}",
            f"  fine-tune: {describe_finetune(choice, train)}"
            + (f"; a start like this measured ~{gain:.2f} nats/char better than from nothing at this size"
               if gain > 0 else "")]


def describe_finetune(choice: "AutoChoice", train: TrainConfig) -> str:
    """One line: the shape and batch, how many steps and passes, and the rate."""
    from charlm.train.autosize import SEQ_LEN
    o = choice.chosen
    per_step = train.batch_size * train.seq_len
    in_budget = round(o.steps * o.batch_size * SEQ_LEN / per_step)     # auto's steps, at this batch
    steps = min(in_budget, train.steps) if train.steps else in_budget
    passes = steps * per_step / max(choice.train_chars, 1)
    capped = train.steps is not None and train.steps < in_budget
    return (f"{o.shape.cell} {o.shape.name}, {train.batch_size}x{train.seq_len} {o.precision}: ~{steps:,} steps, "
            f"{passes:.1f} passes over {choice.train_chars:,} chars"
            + (" (then it stops: more passes would learn the text by heart)" if capped else "")
            + f"; lr {train.lr:.1e} ({RECIPE.lr_scale:g}x the shape's), warm-up {RECIPE.warmup:.0%}")


# (training characters of the new text, gain in nats/char over training from nothing for 1-2
# minutes): `python -m bench.finetune` with a 5-minute Shakespeare base on 20k and 100k characters
# of War and Peace (+0.377/+0.388 and +0.170/+0.159; bench/finetune_runs.jsonl). Beyond that the
# gain is not measured: it is taken to fall to nothing at a million characters, where a run from
# nothing has tinyshakespeare's whole text to learn from.
GAINS: tuple[tuple[int, float], ...] = ((18_000, 0.38), (90_000, 0.16), (1_000_000, 0.0))


def predicted_gain(train_chars: int) -> float:
    """Nats/char a fine-tune of a base trained on other text gains over training from nothing
    in the same budget, by the size of the new text (log-linear between GAINS' points; none
    past the last)."""
    x = math.log(max(train_chars, 1))
    if x <= math.log(GAINS[0][0]):
        return GAINS[0][1]
    for (c0, g0), (c1, g1) in zip(GAINS, GAINS[1:]):
        if x <= math.log(c1):
            return g0 + (g1 - g0) * (x - math.log(c0)) / (math.log(c1) - math.log(c0))
    return 0.0


# -- tips: a run here that a small text could start from ---------------------------------
@dataclass(frozen=True)
class StartingPoint:
    """A run on this machine that a new run on a small text could start from (--init)."""
    run: RunInfo
    coverage: float         # share of the text's characters the run's vocabulary has
    gain: float             # predicted nats/char over starting from nothing (finetune.predicted_gain)

    def describe(self) -> str:
        r = self.run
        return (f"this text is small; {r.name} ({r.shape}, trained on {r.corpus}, {r.corpus_chars or 0:,} chars) knows "
                f"{self.coverage:.1%} of its characters, and starting from it is predicted to end ~{self.gain:.2f} "
                "nats/char better in this budget than starting from nothing")


MIN_COVERAGE = 0.95         # of the text's characters (counted with repeats) the parent must know
MIN_GAIN = 0.03             # nats/char: below this the tip is not worth a line
PARENT_TEXT_RATIO = 2       # a parent read at least this many times more text than the new one has


def suggest_start(corpus: EncodedCorpus, train_chars: int, root: Path | None = None) -> StartingPoint | None:
    """The best run under `root` to start a run on `corpus` from, when the text is small enough
    for that to pay and a run covers its characters; None otherwise (most texts)."""
    import numpy as np

    gain = predicted_gain(train_chars)
    if gain < MIN_GAIN:
        return None
    counts = np.bincount(np.asarray(corpus.ids[:train_chars]), minlength=len(corpus.vocab))
    best = None
    for run in list_runs(root):
        if (run.problem or not run.corpus_chars or run.corpus_sha256 == corpus.sha256
                or run.corpus_chars < PARENT_TEXT_RATIO * train_chars):
            continue
        known = vocab_chars(run.path)
        coverage = sum(int(n) for c, n in zip(corpus.vocab.itos, counts) if c in known) / max(int(counts.sum()), 1)
        if coverage >= MIN_COVERAGE and (best is None or (run.corpus_chars, run.steps or 0) >
                                         (best.run.corpus_chars, best.run.steps or 0)):
            best = StartingPoint(run, coverage, gain)
    return best


BASE_SET, BASE_MINUTES = "english", 30      # the catalog set and budget the README makes a base with


def base_would_help(train_chars: int, english: bool) -> float | None:
    """For a small English text (`english`: its Yardsticks.english_like): the gain a base model
    of English would bring (finetune.predicted_gain), to say how to make one when no run to
    start from is at hand; else None."""
    gain = predicted_gain(train_chars)
    return gain if english and gain >= MIN_GAIN else None
