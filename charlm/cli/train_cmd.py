"""`charlm train CORPUS`: train a model headless, with a progress bar and samples as it learns."""

from __future__ import annotations

import json
import math
import signal
import threading
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from charlm.cli import args as A
from charlm.config import CELLS, OPTIMIZERS, PRESETS, DEFAULT_PRESET, preset_configs
from charlm.corpus import resolve
from charlm.data import encode_corpus
from charlm.errors import UsageError
from charlm.model import param_count
from charlm.optim import DEFAULT_LR
from charlm.paths import new_run_dir
from charlm.train import EvalReport, StepReport, TrainCallbacks, Trainer, TrainingDiverged

MODEL_FLAGS = ("cell", "layers", "hidden", "embed", "dropout")
TRAIN_FLAGS = ("batch_size", "seq_len", "lr", "optimizer", "steps", "minutes", "eval_every", "val_fraction",
               "device", "precision", "seed", "weight_decay", "grad_clip")


def register(sub) -> None:
    p = sub.add_parser("train", help="train a model on a text file, directory or glob",
                       description="Train a character-level model. The budget is --steps or --minutes "
                       "(default 5 minutes); the learning rate warms up, then decays to fit it.")
    p.add_argument("corpus", nargs="?", help="text file, directory of text files, or glob (optional with --resume)")
    p.add_argument("--encoding", default="utf-8", help="text encoding of the corpus (default utf-8)")
    p.add_argument("--out", type=Path, help="run directory (default checkpoints/<corpus>-<date>-<time>)")
    p.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue a run exactly where it stopped")
    p.add_argument("--preset", choices=PRESETS, default=None, help=f"model size (default {DEFAULT_PRESET})")
    m = p.add_argument_group("model")
    m.add_argument("--cell", choices=CELLS)
    m.add_argument("--layers", type=A.positive_int)
    m.add_argument("--hidden", type=A.positive_int)
    m.add_argument("--embed", type=A.positive_int)
    m.add_argument("--dropout", type=A.dropout)
    t = p.add_argument_group("training")
    t.add_argument("--steps", type=A.positive_int, help="budget in optimizer steps")
    t.add_argument("--minutes", type=A.positive_float, help="budget in wall-clock minutes (default 5)")
    t.add_argument("--batch-size", type=A.positive_int)
    t.add_argument("--seq-len", type=A.positive_int)
    t.add_argument("--lr", type=A.positive_float, help="peak learning rate")
    t.add_argument("--optimizer", choices=OPTIMIZERS)
    t.add_argument("--weight-decay", type=A.nonneg_float)
    t.add_argument("--grad-clip", type=A.positive_float)
    t.add_argument("--eval-every", type=A.positive_int, help="steps between validations and samples")
    t.add_argument("--val-fraction", type=A.unit_open, help="held-out fraction at the end (default 0.1)")
    t.add_argument("--device", choices=("auto", "cpu", "cuda"))
    t.add_argument("--precision", choices=("auto", "fp32", "bf16"))
    t.add_argument("--seed", type=A.nonneg_int)
    p.add_argument("--quiet", action="store_true", help="no progress bar or samples, just the summary")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.resume is not None:
        return _resume(args)
    if not args.corpus:
        raise UsageError("charlm train: no corpus given", "pass a text file, e.g. `charlm train corpora/mytext.txt`")
    model_cfg, train_cfg = preset_configs(args.preset or DEFAULT_PRESET)
    for name in MODEL_FLAGS:
        if getattr(args, name) is not None:
            setattr(model_cfg, name, getattr(args, name))
    if args.optimizer and args.lr is None:
        train_cfg.lr = DEFAULT_LR[args.optimizer]
    _apply_train_flags(args, train_cfg)
    model_cfg.validate()
    train_cfg.validate()
    source = resolve(args.corpus, args.encoding)
    corpus = encode_corpus(source)
    run_dir = args.out or new_run_dir(corpus.name)
    if run_dir.exists() and any(run_dir.iterdir()):
        raise UsageError(f"{run_dir} already exists and is not empty", "choose another --out, or --resume it")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "source.json").write_text(json.dumps({"spec": str(Path(args.corpus).expanduser().resolve())
                                                     if Path(args.corpus).expanduser().exists() else args.corpus,
                                                     "encoding": args.encoding}))
    trainer = Trainer(corpus, model_cfg, train_cfg, run_dir)
    return _train(trainer, args.quiet)


def _apply_train_flags(args, train_cfg) -> None:
    for name in TRAIN_FLAGS:
        if getattr(args, name, None) is not None:
            setattr(train_cfg, name, getattr(args, name))
    if args.steps is not None and args.minutes is None:
        train_cfg.minutes = None


def _resume(args) -> int:
    from charlm.checkpoint import read_meta
    from charlm.config import ModelConfig, TrainConfig
    run_dir = args.resume
    last = run_dir / "last"
    if not run_dir.is_dir() or not (last / "resume.json").exists():
        raise UsageError(f"{run_dir} is not a charlm run directory (no last/ checkpoint with resume state)",
                         "give a directory that `charlm train` created under checkpoints/")
    if any(getattr(args, n) is not None for n in MODEL_FLAGS) or args.preset:
        raise UsageError("a resumed run keeps its model shape", "drop --preset/--cell/--layers/--hidden/--embed/--dropout")
    meta = read_meta(last)
    model_cfg, train_cfg = ModelConfig.from_dict(meta["model"]), TrainConfig.from_dict(meta["train"])
    _apply_train_flags(args, train_cfg)
    train_cfg.validate()
    spec, encoding = args.corpus, args.encoding
    if spec is None:
        try:
            src = json.loads((run_dir / "source.json").read_text())
            spec, encoding = src["spec"], src.get("encoding", "utf-8")
        except (OSError, ValueError, KeyError):
            raise UsageError(f"{run_dir} does not record its corpus", "pass the corpus again: charlm train CORPUS --resume RUN_DIR") from None
    from charlm.vocab import CharVocab
    corpus = encode_corpus(resolve(spec, encoding), CharVocab.load(last / "tokenizer.json"))
    trainer = Trainer(corpus, model_cfg, train_cfg, run_dir, resume=True)
    if trainer.progress() >= 1.0:
        raise UsageError(f"{run_dir} already finished its budget ({trainer.step} steps, {trainer.elapsed / 60:.1f} min)",
                         "pass a larger total --steps or --minutes to train it further")
    return _train(trainer, args.quiet)


class _RichProgress(TrainCallbacks):
    """Progress bar plus a printed sample at every evaluation."""

    def __init__(self, console: Console, progress: Progress, quiet: bool):
        self.console, self.progress, self.quiet = console, progress, quiet
        self.task = progress.add_task("training", total=1.0, loss="-", val="-", cps="-", lr="-")

    def on_step(self, r: StepReport) -> None:
        self.progress.update(self.task, completed=r.progress, description=f"step {r.step}",
                             loss=f"{r.train_loss:.3f}", cps=f"{r.chars_per_sec:,.0f}", lr=f"{r.lr:.1e}")

    def on_eval(self, r: EvalReport) -> None:
        self.progress.update(self.task, val=f"{r.val_loss:.3f}")
        if not self.quiet:
            self.console.rule(f"step {r.step} · val {r.val_loss:.3f} nats/char ({r.val_bpc:.3f} bits/char)", style="dim")
            self.console.print(r.sample, markup=False, highlight=False)


def _train(trainer: Trainer, quiet: bool) -> int:
    console = Console(stderr=False)
    cfg, mcfg = trainer.cfg, trainer.model.config
    budget = f"{cfg.steps} steps" if cfg.budget_seconds is None else f"{cfg.budget_seconds / 60:g} min"
    console.print(f"[bold]{trainer.corpus.name}[/]: {len(trainer.corpus):,} chars, vocab {len(trainer.corpus.vocab)} · "
                  f"{mcfg.cell} {mcfg.layers}x{mcfg.hidden}, {param_count(mcfg):,} params · "
                  f"{trainer.device.type} {trainer.precision} · budget {budget}" +
                  (f" · resuming at step {trainer.step}" if trainer.step else ""))
    console.print(f"run directory: {trainer.run_dir}")
    stop = threading.Event()
    previous = signal.getsignal(signal.SIGINT)

    def first_ctrl_c(signum, frame):
        stop.set()              # finish the step, save last/, exit cleanly
        signal.signal(signal.SIGINT, previous)

    signal.signal(signal.SIGINT, first_ctrl_c)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                        TextColumn("loss {task.fields[loss]} · val {task.fields[val]} · {task.fields[cps]} chars/s · "
                                   "lr {task.fields[lr]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                        console=console, disable=quiet, transient=False)
    trainer.callbacks = _RichProgress(console, progress, quiet)
    try:
        with progress:
            result = trainer.run(stop)
    except TrainingDiverged as e:
        console.print(f"[red]charlm: training stopped: {e}[/]")
        return 1
    finally:
        signal.signal(signal.SIGINT, previous)
    how = "stopped early; saved" if result.stopped_early else "done"
    console.print(f"{how}: {result.steps} steps in {result.elapsed / 60:.1f} min, {result.chars_per_sec:,.0f} chars/s · "
                  f"best val {result.best_val_loss:.4f} nats/char ({result.best_val_loss / math.log(2):.4f} bits/char)")
    console.print(f"next: charlm sample {result.run_dir}   ·   charlm eval {result.run_dir}")
    return 0
