"""The trainer, for real on tiny models: it learns, keeps its budget, reports through callbacks,
saves best/ and last/, stops and pauses on request, and resumes exactly. (What it does when a
loss diverges or the disk fills is in test_no_lost_work.py.)"""

from __future__ import annotations

import json
import math
import shutil
import threading
import time
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from charlm.config import TrainConfig
from charlm.corpus.encoded import VAL_SAMPLE_CHARS, VAL_WINDOWS, encode_text
from charlm.errors import UsageError
from charlm.model.checkpoint import load_checkpoint
from charlm.model.network import CharRNN
from charlm.runs.metrics import read_metrics
from charlm.train import evaluate as evaluate_mod
from charlm.train.evaluate import evaluate
from charlm.train.optim import lr_at
from charlm.train.reports import MEMORISED_RISE, EvalReport, StepReport, TrainResult

from conftest import TINY_TEXT
from helpers import Recorder, make_trainer, train_tiny


def weights(path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path).model.state_dict()


def test_loss_goes_down_on_the_tiny_text(tmp_path):
    rec = Recorder()
    trainer = make_trainer(tmp_path / "run", callbacks=rec, steps=60, eval_every=30)
    before = evaluate(trainer.model, trainer.val_ids, trainer.device).nats_per_char
    assert before == pytest.approx(math.log(len(trainer.corpus.vocab)), rel=0.1)   # untrained: ~uniform
    result = trainer.run()
    assert result.best_val_loss < 0.75 * before
    assert rec.evals[-1].val_loss < rec.evals[0].val_loss
    assert rec.steps[-1].train_loss < 0.8 * rec.steps[0].train_loss


def test_budget_reports_and_metrics(tmp_path):
    rec = Recorder()
    trainer, result = train_tiny(tmp_path / "run", callbacks=rec, steps=40, eval_every=20, sample_length=40)
    assert result.steps == trainer.step == 40 and not result.stopped_early
    (start,) = rec.starts
    assert (start.run_dir, start.step, start.params, start.hidden) == (
        trainer.run_dir, 0, trainer.model.num_params(), trainer.model.config.hidden)

    assert [r.step for r in rec.steps] == list(range(1, 41))
    assert all(isinstance(r, StepReport) for r in rec.steps)
    assert [r.progress for r in rec.steps] == pytest.approx([s / 40 for s in range(1, 41)])
    assert rec.steps[-1].eta == 0.0
    assert all(math.isfinite(r.train_loss) and r.chars_per_sec > 0 for r in rec.steps)
    # the learning rate of step s is the schedule at the progress before it
    assert [r.lr for r in rec.steps] == pytest.approx([lr_at((s - 1) / 40, trainer.cfg) for s in range(1, 41)])

    assert [e.step for e in rec.evals] == [20, 40]
    vocab = set(trainer.corpus.vocab.chars)
    for e in rec.evals:
        assert isinstance(e, EvalReport) and math.isfinite(e.val_loss)
        assert e.val_bpc == pytest.approx(e.val_loss / math.log(2))
        assert isinstance(e.sample, str) and len(e.sample) == 40 and set(e.sample) <= vocab
    assert rec.evals[-1].best_val_loss == result.best_val_loss == min(e.val_loss for e in rec.evals)

    rows = read_metrics(tmp_path / "run" / "metrics.jsonl")
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == len(lines) == 4 and all(json.loads(line) for line in lines)
    train_rows = [r for r in rows if "val_loss" not in r]
    val_rows = [r for r in rows if "val_loss" in r]
    assert [r["step"] for r in train_rows] == [20, 40] and [r["step"] for r in val_rows] == [20, 40]
    assert set(train_rows[0]) == {"step", "elapsed", "train_loss", "chars_per_sec", "lr"}
    assert [r["val_loss"] for r in val_rows] == [e.val_loss for e in rec.evals]


def test_best_and_last_checkpoints(tmp_path):
    rec = Recorder()
    _, result = train_tiny(tmp_path / "run", callbacks=rec, steps=40, eval_every=20)
    run = tmp_path / "run"
    assert {p.name for p in (run / "best").iterdir()} == {"model.safetensors", "config.json", "tokenizer.json"}
    assert {p.name for p in (run / "last").iterdir()} == {"model.safetensors", "config.json", "tokenizer.json",
                                                          "resume.safetensors", "resume.json"}
    assert set(rec.checkpoints) == {run / "best", run / "last"}
    last = json.loads((run / "last" / "config.json").read_text())
    assert last["metrics"]["step"] == 40 and last["metrics"]["best_val_loss"] == result.best_val_loss
    assert json.loads((run / "last" / "resume.json").read_text())["step"] == 40
    best = load_checkpoint(run / "best")
    val = evaluate(best.model, encode_text("tiny", TINY_TEXT).split(0.1)[1], torch.device("cpu"))
    assert val.nats_per_char == pytest.approx(result.best_val_loss, abs=1e-6)


def test_samples_between_validations_cost_no_validation(tmp_path):
    rec = Recorder()
    _, result = train_tiny(tmp_path / "run", callbacks=rec, steps=40, eval_every=20, sample_every=5)
    assert [e.step for e in rec.evals] == [20, 40]
    assert [s.step for s in rec.samples] == [5, 10, 15, 25, 30, 35]
    assert all(len(s.sample) == 40 for s in rec.samples) and rec.samples[0].sample != rec.samples[-1].sample
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "val_loss" in r] == [20, 40]


def test_stop_event_stops_early_and_saves_last(tmp_path):
    stop = threading.Event()
    rec = Recorder(lambda trainer, r: r.step == 7 and stop.set())
    _, result = train_tiny(tmp_path / "run", callbacks=rec, stop=stop, steps=1000, eval_every=500)
    assert result.stopped_early and result.steps == 7 and len(rec.steps) == 7
    assert [e.step for e in rec.evals] == [7]                 # stopped runs are still validated
    assert json.loads((tmp_path / "run" / "last" / "resume.json").read_text())["step"] == 7
    assert load_checkpoint(tmp_path / "run").metrics["step"] == 7


def test_pause_holds_training_and_the_clock(tmp_path):
    pause = threading.Event()

    def hook(trainer, r):
        if r.step == 3:
            pause.set()
            threading.Timer(0.6, pause.clear).start()

    trainer = make_trainer(tmp_path / "run", callbacks=Recorder(hook), steps=6, eval_every=100)
    t0 = time.perf_counter()
    result = trainer.run(pause=pause)
    wall = time.perf_counter() - t0
    assert result.steps == 6 and not result.stopped_early
    assert wall >= 0.6 and result.elapsed <= wall - 0.5       # the pause is not training time


def test_a_minutes_budget_ends_on_time(tmp_path):
    rec = Recorder()
    trainer, result = train_tiny(tmp_path / "run", callbacks=rec, steps=None, minutes=0.005, eval_every=10_000)
    assert trainer.cfg.budget_seconds == pytest.approx(0.3)
    assert result.steps > 1 and not result.stopped_early
    assert 0.3 <= rec.steps[-1].elapsed < 3.0
    assert rec.steps[-1].progress == 1.0
    assert rec.steps[-1].lr == pytest.approx(lr_at(rec.steps[-2].progress, trainer.cfg))


@pytest.mark.parametrize("cell, optimizer, layers, dropout", [
    ("lstm", "adamw", 2, 0.1),       # dropout draws from the RNG: its state must be restored too
    ("gru", "rmsprop", 1, 0.0),
    ("rnn", "adagrad", 2, 0.0),
])
def test_resume_continues_exactly(tmp_path, cell, optimizer, layers, dropout):
    shape = dict(cell=cell, layers=layers, dropout=dropout, optimizer=optimizer, steps=40, eval_every=10,
                 sample_length=30, lr=3e-2 if optimizer == "adagrad" else 1e-2)
    straight = Recorder()
    train_tiny(tmp_path / "straight", callbacks=straight, **shape)

    stop = threading.Event()
    first = Recorder(lambda trainer, r: r.step == 15 and stop.set())
    _, half = train_tiny(tmp_path / "split", callbacks=first, stop=stop, **shape)
    assert half.stopped_early and half.steps == 15
    second = Recorder()
    trainer, result = train_tiny(tmp_path / "split", callbacks=second, resume=True, **shape)
    assert trainer.step == result.steps == 40

    a, b = weights(tmp_path / "straight" / "last"), weights(tmp_path / "split" / "last")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "weights differ after resuming"
    # the same losses (raw and smoothed), learning rates and samples, step for step
    key = lambda r: (r.step, r.train_loss, r.lr)                                   # noqa: E731
    assert [key(r) for r in first.steps + second.steps] == [key(r) for r in straight.steps]
    evals = {e.step: (e.val_loss, e.train_loss, e.sample) for e in straight.evals}
    assert {e.step: (e.val_loss, e.train_loss, e.sample) for e in second.evals} == \
        {s: evals[s] for s in (20, 30, 40)}
    rows = read_metrics(tmp_path / "split" / "metrics.jsonl")
    assert [r["step"] for r in rows if "val_loss" in r] == [10, 15, 20, 30, 40]   # one log, continued


def test_state_is_carried_into_the_next_pass_over_the_text(tmp_path):
    """Only the very first step starts from a zero state: a new pass continues the old state,
    so the model learns to keep it sane over contexts longer than one stream."""
    trainer = make_trainer(tmp_path / "run", steps=60, eval_every=1000)   # validation only at the end
    assert trainer.batches.chunks_per_epoch < 30            # the run wraps around at least twice
    fresh_starts = []
    forward = trainer.model.forward
    trainer.model.forward = lambda x, hidden=None: (fresh_starts.append(hidden is None), forward(x, hidden))[1]
    trainer.run()
    assert fresh_starts[:60].count(True) == 1 and fresh_starts[0]


def test_resume_refuses_another_text_or_shape(tmp_path):
    run = tmp_path / "run"
    train_tiny(run, steps=5, eval_every=5)
    with pytest.raises(UsageError, match="different text"):
        make_trainer(run, text=TINY_TEXT.replace("cat", "cow"), resume=True, steps=10)
    with pytest.raises(UsageError, match="different model shape"):
        make_trainer(run, resume=True, steps=10, hidden=48)
    shutil.copytree(run / "best", tmp_path / "other" / "last")   # best/ has no resume state
    with pytest.raises(UsageError, match="no resume state"):
        make_trainer(tmp_path / "other", resume=True, steps=10)


def test_snapshot_is_a_frozen_cpu_copy(tmp_path):
    trainer, _ = train_tiny(tmp_path / "run", steps=5, eval_every=5)
    snap = trainer.snapshot()
    assert isinstance(snap, CharRNN) and not snap.training
    before = {k: v.clone() for k, v in snap.state_dict().items()}
    with torch.no_grad():
        for p in trainer.model.parameters():
            p.add_(1.0)
    assert all(torch.equal(before[k], v) for k, v in snap.state_dict().items())


def test_too_short_a_text_for_one_batch(tmp_path):
    with pytest.raises(UsageError, match="fewer than one batch"):
        make_trainer(tmp_path / "run", text=TINY_TEXT[:200])
    assert not (tmp_path / "run").exists()


# -- the learning-rate schedule: a pure function of progress ------------------------------

def test_validation_reads_a_bounded_sample_of_a_large_split(tmp_path, monkeypatch):
    seen = []
    real = evaluate_mod.evaluate
    monkeypatch.setattr(evaluate_mod, "evaluate", lambda model, ids, *a, **k: seen.append(ids) or real(model, ids, *a, **k))
    text = TINY_TEXT * (VAL_SAMPLE_CHARS * 12 // len(TINY_TEXT))       # a split ~1.2x the bound
    trainer, result = train_tiny(tmp_path / "run", text=text, steps=2, eval_every=100)
    assert len(trainer.val_ids) > VAL_SAMPLE_CHARS
    assert [ids.shape for ids in seen] == [(VAL_WINDOWS, VAL_SAMPLE_CHARS // VAL_WINDOWS)]
    assert seen[0] is trainer.val_sample and math.isfinite(result.best_val_loss)


def test_lr_warms_up_peaks_and_decays_to_the_floor():
    cfg = TrainConfig(lr=0.01, warmup=0.1, min_lr_ratio=0.05)
    snapshot = asdict(cfg)
    grid = [i / 1000 for i in range(1001)]
    lrs = [lr_at(f, cfg) for f in grid]
    assert lrs[0] == 0.0
    assert lr_at(0.05, cfg) == pytest.approx(0.005)                   # linear warm-up
    assert lr_at(0.1, cfg) == pytest.approx(0.01) == max(lrs)       # peak at the end of warm-up
    assert all(a <= b for a, b in zip(lrs[:101], lrs[1:101]))       # rising ...
    assert all(a >= b for a, b in zip(lrs[100:], lrs[101:]))         # ... then never rising again
    assert lr_at(0.55, cfg) == pytest.approx(0.01 * (0.05 + 0.95 * 0.5))   # cosine midpoint
    assert lr_at(1.0, cfg) == pytest.approx(0.01 * 0.05)             # the floor at the end
    assert lr_at(1.7, cfg) == lr_at(1.0, cfg) and lr_at(-3, cfg) == lr_at(0.0, cfg)   # clamped
    assert [lr_at(f, cfg) for f in grid] == lrs and asdict(cfg) == snapshot          # pure


def test_lr_without_warm_up_starts_at_the_peak():
    cfg = TrainConfig(lr=0.02, warmup=0.0, min_lr_ratio=0.0)
    assert lr_at(0.0, cfg) == pytest.approx(0.02)
    assert lr_at(1.0, cfg) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("bad, needle", [
    (dict(lr=float("nan")), "--lr"), (dict(lr=-1.0), "--lr"), (dict(lr=1e38), "--lr must be at most"),
    (dict(steps=0), "--steps"), (dict(batch_size=0), "--batch-size"), (dict(minutes=float("inf")), "--minutes"),
    (dict(val_fraction=1.0), "--val-fraction"), (dict(optimizer="sgd"), "unknown optimizer"),
])
def test_a_bad_train_config_is_a_usage_error(bad, needle):
    with pytest.raises(UsageError, match=needle):
        TrainConfig(**bad).validate()


@pytest.mark.parametrize("best_step, last, said", [
    (300, 1.90 + MEMORISED_RISE, True),            # risen since its best: said
    (300, 1.90 + MEMORISED_RISE / 2, False),       # within noise
    (1000, 1.95, False),                           # the best is the last step
    (None, 2.40, False),                           # no best/ to point at
    (0, 2.40, True),                               # a fine-tune that only got worse
])
def test_the_end_says_the_text_was_learned_by_heart_only_when_val_rose_after_its_best(best_step, last, said):
    result = TrainResult(run_dir=Path("run"), steps=1000, elapsed=60.0, best_val_loss=1.90, last_val_loss=last,
                         stopped_early=False, chars_per_sec=1e4, best_step=best_step)
    clause = result.memorised()
    assert bool(clause) is said
    if said and best_step:
        assert clause == f"after step 300 val rose to {last:.3f} (the model began to learn the text by heart); best/ keeps step 300"
    elif said:
        assert clause == "val rose to 2.400 from where the run started; best/ keeps the weights it started from"
