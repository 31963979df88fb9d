"""Model and training configuration: dataclasses that own their defaults, plus presets."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from charlm.errors import UsageError

CELLS = ("lstm", "gru", "rnn")
GATES = {"lstm": 4, "gru": 3, "rnn": 1}    # weight blocks per unit of each cell (input, forget, ... gates)
OPTIMIZERS = ("adamw", "adagrad", "rmsprop")
DEVICES = ("auto", "cpu", "cuda", "mps")   # auto: CUDA, then Apple's MPS, then the CPU (charlm.machine.device)
# Peak learning rates that suit each optimizer when the user names none.
DEFAULT_LR = {"adamw": 1.5e-2, "adagrad": 1e-1, "rmsprop": 2e-3}
MAX_LR = 10.0                # no optimizer here learns anything above it


@dataclass
class ModelConfig:
    vocab_size: int = 0      # characters in the vocabulary, <unk> included
    cell: str = "lstm"       # lstm | gru | rnn (tanh)
    layers: int = 2          # stacked recurrent layers
    hidden: int = 512        # units per layer
    embed: int = 64          # character embedding width (a learned one-hot, char-rnn style)
    dropout: float = 0.0     # between stacked layers and before the head

    def validate(self) -> None:
        if self.cell not in CELLS:
            raise UsageError(f"unknown cell {self.cell!r}", f"use one of {', '.join(CELLS)}")
        _positive("layers", self.layers)
        _positive("hidden", self.hidden)
        _positive("embed", self.embed)
        if not 0.0 <= self.dropout < 1.0 or math.isnan(self.dropout):
            raise UsageError(f"dropout must be in [0, 1), got {self.dropout}", "try --dropout 0.2")

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        """Tolerates keys this version does not know (newer checkpoints) and missing ones (older)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class TrainConfig:
    batch_size: int = 128       # parallel streams through the corpus
    seq_len: int = 64           # BPTT chunk length (characters)
    lr: float = 1.5e-2          # peak learning rate (high: clipping keeps it stable, and 5-minute runs need it)
    # Cosine all the way to zero: a 2x256 at 7,992 steps got val 1.411 vs 1.439 with a 5 % floor,
    # at 3,000 steps 1.455 vs 1.471 (and 1.469 vs 1.486 with another seed).
    min_lr_ratio: float = 0.0   # cosine floor, as a fraction of lr
    warmup: float = 0.02        # warm-up, as a fraction of the budget
    weight_decay: float = 0.1   # AdamW, on matrices only
    grad_clip: float = 1.0      # global-norm clip: LSTMs still see rare exploding gradients
    optimizer: str = "adamw"    # adamw | adagrad | rmsprop
    steps: int | None = None    # budget in optimizer steps ...
    minutes: float | None = None  # ... or in wall-clock minutes (default 5 when neither is set)
    eval_every: int = 500       # steps between validations (and samples) and last/ checkpoints
    # Steps between samples written without a validation (the app's 100: the text changing is the
    # show, and a sample costs milliseconds where validating costs ~3 % of the steps between).
    sample_every: int | None = None
    log_every: int = 20         # steps between train-loss rows in metrics.jsonl
    sample_length: int = 200    # characters sampled at each validation
    val_fraction: float = 0.1   # last fraction of the corpus held out
    device: str = "auto"        # auto | cpu | cuda
    precision: str = "auto"     # auto | fp32 | bf16
    threads: int | None = None  # compute threads (None: one per core no other process is using)
    seed: int = 1337
    deterministic: bool = False  # same bits every time: fp32, fixed threads, a steps budget

    def validate(self) -> None:
        _positive("batch-size", self.batch_size)
        _positive("seq-len", self.seq_len)
        _positive("eval-every", self.eval_every)
        if self.sample_every is not None:
            _positive("sample-every", self.sample_every)
        _positive("log-every", self.log_every)
        for name, v in (("lr", self.lr), ("grad-clip", self.grad_clip)):
            if not (v > 0 and math.isfinite(v)):
                raise UsageError(f"--{name} must be a positive number, got {v}", f"try --{name} {TrainConfig.__dataclass_fields__[name.replace('-', '_')].default}")
        if self.lr > MAX_LR:   # larger overflows the optimizer's fp32 update instead of just diverging
            raise UsageError(f"--lr must be at most {MAX_LR:g}, got {self.lr}", "try --lr 1.5e-2")
        if not 0.0 < self.val_fraction < 1.0:
            raise UsageError(f"--val-fraction must be between 0 and 1, got {self.val_fraction}", "try --val-fraction 0.1")
        if self.optimizer not in OPTIMIZERS:
            raise UsageError(f"unknown optimizer {self.optimizer!r}", f"use one of {', '.join(OPTIMIZERS)}")
        if self.steps is not None:
            _positive("steps", self.steps)
        if self.minutes is not None and not (self.minutes > 0 and math.isfinite(self.minutes)):
            raise UsageError(f"--minutes must be a positive number, got {self.minutes}", "try --minutes 5")
        if self.device not in DEVICES:
            raise UsageError(f"unknown device {self.device!r}", f"use {', '.join(DEVICES)}")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise UsageError(f"unknown precision {self.precision!r}", "use auto, fp32 or bf16")
        if self.threads is not None:
            _positive("threads", self.threads)
        if self.deterministic and self.budget_seconds is not None:
            raise UsageError("--deterministic needs a --steps budget (under a wall-clock one the learning rate "
                             "follows the clock)", "pass --steps N instead of --minutes")
        if self.deterministic and self.precision == "bf16":
            raise UsageError("--deterministic trains in fp32", "drop --precision bf16")

    @property
    def budget_seconds(self) -> float | None:
        """Wall-clock budget, or None when the budget is counted in steps."""
        if self.steps is not None and self.minutes is None:
            return None
        return 60.0 * (self.minutes if self.minutes is not None else 5.0)

    def budget_fraction(self, step: int, elapsed: float) -> float:
        """How much of the budget `step` steps in `elapsed` seconds have used (1.0 = all)."""
        parts = []
        if self.steps is not None:
            parts.append(step / self.steps)
        if self.budget_seconds is not None:
            parts.append(elapsed / self.budget_seconds)
        return max(parts)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def budget_fields(steps: int | None, minutes: float | None) -> dict:
    """TrainConfig's budget for one a person named: in one unit alone, the other has no limit
    (--steps alone: no time limit; --minutes alone: no step limit); in both, whichever ends
    first; in neither, {} (the config keeps its own)."""
    if steps is None and minutes is None:
        return {}
    return {"steps": steps, "minutes": minutes}


def more_budget(step: int, elapsed: float, steps: int | None, minutes: float | None) -> dict:
    """A budget named for a run that goes on (`charlm train --resume RUN --minutes M`, the app
    resuming a finished run) is how much *more* to train from where it stopped: the run's new
    totals are its step and training time so far plus that."""
    return budget_fields(None if steps is None else step + steps, None if minutes is None else elapsed / 60 + minutes)


def param_count(config: ModelConfig) -> int:
    """Parameters of a CharRNN with this config, without building it (or importing torch)."""
    gates = GATES[config.cell]
    H, E, V = config.hidden, config.embed, config.vocab_size
    rnn = sum(gates * H * ((E if i == 0 else H) + H + 2) for i in range(config.layers))
    return V * E + rnn + H * V + V


def _positive(name: str, value: int) -> None:
    if not isinstance(value, int) or value < 1:
        raise UsageError(f"--{name} must be a whole number of at least 1, got {value}", f"try --{name} 1 or more")


@dataclass(frozen=True)
class Preset:
    """A named model size with the training shape that suits it."""
    name: str
    description: str
    model: dict
    train: dict


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("tiny", "1x64 LSTM: seconds to train, for trying things out",
               dict(layers=1, hidden=64, embed=16), dict(batch_size=32, seq_len=64, lr=1e-2)),
        Preset("small", "2x256 LSTM: learns words in a minute or two",
               dict(layers=2, hidden=256, embed=32), dict(batch_size=64, seq_len=128, lr=1e-2)),
        # Tuned on 5-minute tinyshakespeare runs on 2 cores (~14 passes over the text). Without
        # dropout it overfits after ~8 passes (val 1.462 at 1,574 steps vs 1.452 at 1,052); with
        # locked dropout 0.3 it reached 1.420 and 1.432, where 0.2 gave 1.462 and 0.4 1.442.
        # lr 1e-2 and 2e-2 were both worse than 1.5e-2; 32 streams generalised far worse than 64.
        Preset("medium", "2x512 LSTM: the default, verse in five minutes on a laptop",
               dict(layers=2, hidden=512, embed=64, dropout=0.3), dict(batch_size=128, seq_len=64, lr=1.5e-2)),
        Preset("large", "3x768 LSTM: for long runs or a GPU",
               dict(layers=3, hidden=768, embed=96, dropout=0.2), dict(batch_size=64, seq_len=128, lr=4e-3)),
        Preset("karpathy", "3x512 LSTM of Karpathy's char-rnn Shakespeare experiments",
               dict(layers=3, hidden=512, embed=65, dropout=0.25), dict(batch_size=50, seq_len=100, lr=2e-3)),
    )
}
AUTO = "auto"                 # not a preset: charlm.train.autosize chooses for the budget and machine
DEFAULT_PRESET = AUTO


def preset_configs(name: str) -> tuple[ModelConfig, TrainConfig]:
    if name not in PRESETS:
        raise UsageError(f"unknown preset {name!r}", f"use one of {', '.join(PRESETS)}")
    p = PRESETS[name]
    return ModelConfig(**p.model), TrainConfig(**p.train)


def to_dict(cfg) -> dict:
    return asdict(cfg)
