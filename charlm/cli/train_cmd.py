"""`charlm train CORPUS`: train a model headless, with a progress bar and samples as it learns."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from rich.console import Console

from charlm.cli import args as A
from charlm.config import (AUTO, CELLS, DEFAULT_LR, DEFAULT_PRESET, DEVICES, OPTIMIZERS, PRESETS, ModelConfig,
                           TrainConfig, budget_fields, more_budget, preset_configs, to_dict)
from charlm.corpus.names import default_corpus, record_spec, resolve_corpus, resolve_here
from charlm.errors import UsageError
from charlm.paths import new_run_dir, run_path

MODEL_FLAGS = ("cell", "layers", "hidden", "embed", "dropout")
TRAIN_FLAGS = ("batch_size", "seq_len", "lr", "optimizer", "steps", "minutes", "eval_every", "log_every",
               "val_fraction", "device", "precision", "seed", "weight_decay", "grad_clip", "threads", "deterministic")


def register(sub) -> None:
    p = sub.add_parser("train", help="train a model on a text file, directory, glob or known corpus",
                       description="Train a character-level model. The budget is --steps or --minutes "
                       "(default 5 minutes); the learning rate warms up, then decays to fit it.")
    p.add_argument("corpus", nargs="?", help="text file, directory, glob, or corpus name from `charlm corpus list` "
                   "(default: shakespeare, fetched on first use)")
    p.add_argument("--encoding", default="utf-8", help="text encoding of the corpus (default utf-8)")
    p.add_argument("--out", type=Path, help="run directory (default checkpoints/<corpus>-<date>-<time>)")
    p.add_argument("--resume", type=run_path, metavar="RUN", help="continue a run (its directory, or its name under "
                   "checkpoints/) exactly where it stopped, to the end of its budget; "
                   "with --steps or --minutes, train it that much more from there")
    p.add_argument("--init", metavar="RUN", help="start from RUN's weights (its best checkpoint, or a checkpoint "
                   "directory) instead of from nothing: worth most on a small text. The shape is RUN's; the "
                   "vocabulary is RUN's plus the text's characters")
    p.add_argument("--preset", choices=(AUTO, *PRESETS), default=None,
                   help=f"model size (default {DEFAULT_PRESET}: the shape that learns most in this budget "
                   "on this machine, timed here; model flags given alongside are kept)")
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
    t.add_argument("--eval-every", type=A.positive_int, help="steps between validations, samples and checkpoints "
                   "(at most this many steps are lost if the machine goes down)")
    t.add_argument("--log-every", type=A.positive_int, help="steps between train-loss rows in metrics.jsonl (default 20)")
    t.add_argument("--val-fraction", type=A.unit_open, help="held-out fraction at the end (default 0.1)")
    t.add_argument("--device", choices=DEVICES)
    t.add_argument("--precision", choices=("auto", "fp32", "bf16"))
    t.add_argument("--seed", type=A.nonneg_int)
    t.add_argument("--threads", type=A.positive_int, help="compute threads (default: one per core no other "
                   "process is using, looked at again every few seconds)")
    t.add_argument("--deterministic", action="store_true", default=None,
                   help="the same losses to the bit on every run, interrupted and resumed or not: fp32, "
                   "deterministic kernels, a fixed thread count; needs --steps")
    p.add_argument("--quiet", action="store_true", help="no progress bar or samples, just the summary")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.resume is not None and args.init is not None:
        raise UsageError("--init starts a new run from another, --resume continues a run", "drop one of them")
    if args.resume is None:
        _check_flags(args)              # a typo should cost nothing: before torch's ~2 s import ...
        if args.corpus:
            resolve_here(args.corpus, args.encoding)    # ... and a mistyped CORPUS too (nothing is fetched)
    from charlm.cli.progress import train_silently, train_with_progress
    from charlm.train.distributed import current_team, exit_rank, leave
    from charlm.train.launch import encode_for_run, new_trainer
    team = current_team()               # under torchrun: join the other ranks (charlm.train.distributed)
    try:
        if args.resume is not None:
            status = _resume(args, team)
            leave(finished=status == 0)
            exit_rank(status)
            return status
        parent = _parent(args)          # before the corpus is read: a bad --init should cost nothing
        with team.rank0_first():        # a download, the encoded cache: made once, then found
            source, spec = _source(args)
            corpus = encode_for_run(source, parent)
        # What must be the same on every rank is decided on rank 0: the shape (auto times it), the run's name.
        model_cfg, train_cfg, notes = team.decide(
            lambda: _configs(args, corpus, parent), lambda c: [to_dict(c[0]), to_dict(c[1])],
            lambda d: (ModelConfig.from_dict(d[0]), TrainConfig.from_dict(d[1]), []))
        run_dir = Path(team.decide(lambda: str(args.out or new_run_dir(corpus.name))))
        trainer = new_trainer(corpus, spec, model_cfg, train_cfg, run_dir, encoding=args.encoding, parent=parent)
        status = train_with_progress(trainer, args.quiet, notes) if team.writes else train_silently(trainer)
        leave(finished=status == 0)
        exit_rank(status)
        return status
    except BaseException:
        leave(finished=False)
        raise


def _parent(args):
    """The run --init names, loaded and checked against the model flags (None without --init)."""
    if args.init is None:
        return None
    from charlm.train.finetune import check_shape, load_parent
    parent = load_parent(args.init)
    check_shape(parent.config, {n: getattr(args, n) for n in MODEL_FLAGS}, f"--init {args.init}")
    if args.preset not in (None, AUTO):
        raise UsageError(f"--init takes the model from {parent.name}, so --preset {args.preset} cannot apply",
                         "drop --preset")
    return parent


def _configs(args, corpus, parent=None):
    """The model and training configs the flags ask for, and the lines that say why: a named
    preset's, the auto choice for this corpus, budget and machine, or with --init the parent's
    shape on a fine-tuning recipe; model and training flags given win either way."""
    preset = args.preset or DEFAULT_PRESET
    notes: list[str] = []
    if preset == AUTO:
        from charlm.train.autosize import plan
        base = TrainConfig()
        _apply_train_flags(args, base)
        base.validate()
        train_chars = len(corpus.split(base.val_fraction)[0])
        if parent is not None:
            from charlm.train.finetune import fixed_shape
            fixed = fixed_shape(parent.config)
        else:
            fixed = {n: getattr(args, n) for n in MODEL_FLAGS if getattr(args, n) is not None}
        from charlm.corpus.yardsticks import yardsticks_for
        with Console(stderr=True).status("auto: timing model shapes on this machine (once per machine)…"):
            difficulty = yardsticks_for(corpus, base.val_fraction).difficulty()     # seconds once per text
            choice = plan(train_chars, len(corpus.vocab), base, fixed, difficulty=difficulty)
        model_cfg, train_cfg = choice.configs(len(corpus.vocab), base)
        if parent is not None:
            from charlm.train.finetune import finetune_configs
            _apply_train_flags(args, train_cfg)     # its passes are counted at the batch it will train with
            model_cfg, train_cfg = finetune_configs(replace(parent.config, vocab_size=len(corpus.vocab)), choice,
                                                    train_cfg, cap_steps=args.steps is None)
        else:
            notes = [f"auto: {choice.summary()}", f"  why: {choice.reason()}"]
    else:
        model_cfg, train_cfg = preset_configs(preset)
    if parent is None:
        notes += _advice(corpus, args.val_fraction or train_cfg.val_fraction, args)
    if args.optimizer and args.optimizer != "adamw" and args.lr is None:
        train_cfg.lr = DEFAULT_LR[args.optimizer]     # a preset's rate is an AdamW rate
        if parent is not None:
            from charlm.train.finetune import RECIPE
            train_cfg.lr *= RECIPE.lr_scale
    for name in MODEL_FLAGS:
        if getattr(args, name) is not None:
            setattr(model_cfg, name, getattr(args, name))
    _apply_train_flags(args, train_cfg)
    model_cfg.validate()
    train_cfg.validate()
    if parent is not None:              # (--init is always auto: a named preset with it is refused)
        from charlm.train.finetune import start_notes
        notes = start_notes(parent, corpus.vocab, choice, train_cfg)      # with every flag applied
    return model_cfg, train_cfg, notes


def _advice(corpus, val_fraction: float, args) -> list[str]:
    """On a small text, a run on this machine to start from, if one would help: said, never done."""
    from charlm.corpus.yardsticks import yardsticks_for
    from charlm.train.finetune import BASE_MINUTES, BASE_SET, base_would_help, suggest_start
    train_chars = len(corpus.split(val_fraction)[0])
    found = suggest_start(corpus, train_chars)
    if found is None:
        english = yardsticks_for(corpus, val_fraction).english_like     # kept from auto's, or seconds
        gain = base_would_help(train_chars, english)
        return [] if gain is None else [
            f"tip: this text is small, and a model that already knows English would start it ~{gain:.2f} nats/char "
            f"better: make one once with `charlm train {BASE_SET} --minutes {BASE_MINUTES} --out "
            f"checkpoints/base-{BASE_SET}`, then add --init checkpoints/base-{BASE_SET}"]
    what = args.corpus or "TEXT"
    return [f"tip: {found.describe()}", f"  charlm train {what} --init {found.run.path}"]


def _check_flags(args) -> None:
    model_cfg, train_cfg = ModelConfig(vocab_size=2), TrainConfig()
    for name in MODEL_FLAGS:
        if getattr(args, name) is not None:
            setattr(model_cfg, name, getattr(args, name))
    _apply_train_flags(args, train_cfg)
    model_cfg.validate()
    train_cfg.validate()


def _source(args):
    """The corpus to train on and how the run records it; with no CORPUS, the default corpus."""
    from charlm.cli.corpus_cmd import download_progress
    err = Console(stderr=True)
    with download_progress(err, args.corpus or "shakespeare") as progress:
        if args.corpus:
            return resolve_corpus(args.corpus, args.encoding, progress), record_spec(args.corpus)
        source, notice = default_corpus(progress)
    if notice:
        err.print(f"charlm: note: {notice}", style="yellow", markup=False, highlight=False)
    return source, source.name


def _apply_train_flags(args, train_cfg) -> None:
    for name in TRAIN_FLAGS:
        if getattr(args, name, None) is not None:
            setattr(train_cfg, name, getattr(args, name))
    for name, value in budget_fields(args.steps, args.minutes).items():
        if value is not None or name == "minutes":     # minutes alone keep a fine-tune's cap of passes
            setattr(train_cfg, name, value)
    if train_cfg.deterministic and train_cfg.precision == "auto":
        train_cfg.precision = "fp32"        # so auto sizes the model for the precision it will train in


def _resume(args, team) -> int:
    from charlm.cli.progress import train_silently, train_with_progress
    from charlm.train.launch import resume_state, resume_trainer
    if any(getattr(args, n) is not None for n in MODEL_FLAGS) or args.preset:
        raise UsageError("a resumed run keeps its model shape", "drop --preset/--cell/--layers/--hidden/--embed/--dropout")
    overrides = {n: getattr(args, n) for n in TRAIN_FLAGS if getattr(args, n, None) is not None}
    overrides.pop("steps", None), overrides.pop("minutes", None)
    if args.steps is not None or args.minutes is not None:
        _, _, state = resume_state(args.resume)
        overrides |= more_budget(state.step, state.elapsed, args.steps, args.minutes)
    # A CORPUS given with --resume says where the run's text is now (it keeps its own vocabulary).
    trainer = resume_trainer(args.resume, train_overrides=overrides, corpus=args.corpus, encoding=args.encoding)
    if trainer.progress() >= 1.0:
        raise UsageError(f"{args.resume} already finished its budget ({trainer.step} steps, {trainer.elapsed / 60:.1f} min)",
                         "pass --steps N or --minutes M to train it that much more")
    return train_with_progress(trainer, args.quiet) if team.writes else train_silently(trainer)
