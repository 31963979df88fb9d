"""No lost work: kill -9 at random moments (of `charlm train` and of the app) never leaves a
broken checkpoint nor loses more than an evaluation interval; a deterministic run interrupted
and resumed logs the same losses, bit for bit; a run directory that cannot be written stops
training with one line and the previous checkpoint intact; a NaN loss rolls back to the last
checkpoint with a lower learning rate; a model too large for memory is refused before any of
it is allocated."""

from __future__ import annotations

import errno
import json
import math
import os
import resource
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from charlm.config import ModelConfig, TrainConfig, preset_configs
from charlm.corpus.encoded import encode_text
from charlm.errors import UsageError
from charlm.model.checkpoint import load_checkpoint
from charlm.runs.directory import RunDir
from charlm.runs.metrics import MetricsLog, read_metrics
from charlm.train import footprint
from charlm.train.launch import new_trainer
from charlm.train.optim import lr_at
from charlm.train.reports import MAX_ROLLBACKS, RunNotWritable, TrainingDiverged

from conftest import ROOT, TINY_TEXT, run_cli
from helpers import Recorder, assert_usage_error, make_trainer, tiny_configs, train_tiny


class Rollbacks(Recorder):
    def __init__(self, hook=None):
        super().__init__(hook)
        self.rollbacks = []

    def on_rollback(self, report):
        self.rollbacks.append(report)


def train_rows(run: Path) -> list[tuple]:
    return [(r["step"], r["train_loss"], r["lr"]) for r in read_metrics(run / "metrics.jsonl") if "lr" in r]


def val_rows(run: Path) -> list[tuple]:
    return [(r["step"], r["val_loss"]) for r in read_metrics(run / "metrics.jsonl") if "val_loss" in r]


# -- kill -9 -------------------------------------------------------------------------------

def kill_stress(tmp_path, *args: str) -> list[str]:
    """A few trials of `python -m bench.kill_stress` (the report runs 20); its lines."""
    proc = subprocess.run([sys.executable, "-m", "bench.kill_stress", "--steps", "400", "--eval-every", "10",
                           "--max-delay", "0.7", "--keep", str(tmp_path), *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=400, env=os.environ.copy())
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 0 and lines[-1].startswith("held"), proc.stdout + proc.stderr
    return lines


@pytest.mark.slow
def test_kill_9_at_random_moments_of_charlm_train(tmp_path):
    """A few trials of bench.kill_stress (the report runs 20): every checkpoint whole after each
    kill, at most one evaluation interval lost, and the resumed run's whole loss log and final
    weights those of an uninterrupted run, bit for bit."""
    lines = kill_stress(tmp_path, "--trials", "3", "--seed", "5")
    assert sum(" lost " in line for line in lines) >= 2, "\n".join(lines)    # kills that hit a run
    assert "bit for bit: yes" in lines[-3] and "identical: yes" in lines[-3], "\n".join(lines)
    assert "every checkpoint whole: yes" in lines[-2], "\n".join(lines)


@pytest.mark.slow
def test_kill_9_of_the_app_while_it_trains(tmp_path):
    """The app trains through the same run directory code: killed while it trains (a new run
    from Start, then its own resume of it), it loses no more."""
    lines = kill_stress(tmp_path, "--trials", "2", "--via", "app", "--seed", "3")
    assert "bit for bit: yes" in lines[-3] and "every checkpoint whole: yes" in lines[-2], "\n".join(lines)


def test_a_crash_before_the_first_validation_still_leaves_a_run_to_resume(tmp_path):
    class Crash(Exception):
        pass

    def crash(trainer, report):
        if report.step == 5:
            raise Crash()

    with pytest.raises(Crash):
        train_tiny(tmp_path / "run", callbacks=Recorder(crash), steps=40, eval_every=20)
    assert RunDir(tmp_path / "run").read_resume().step == 0       # last/ was saved before the first step
    rec = Recorder()
    trainer, result = train_tiny(tmp_path / "run", callbacks=rec, resume=True, steps=40, eval_every=20)
    assert rec.steps[0].step == 1 and result.steps == 40


def test_a_run_stopped_before_its_first_checkpoint_can_be_started_again(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    RunDir(run).write_source("old.txt")              # all a kill at start-up leaves
    model, cfg = tiny_configs(steps=2, eval_every=2)
    new_trainer(encode_text("tiny", TINY_TEXT), "tiny.txt", model, cfg, run).run()
    assert RunDir(run).read_source() == ("tiny.txt", "utf-8") and RunDir(run).read_resume().step == 2
    (run / "notes.txt").write_text("mine")
    (run / "best").rename(run / "kept")
    with pytest.raises(UsageError, match="already exists and is not empty"):
        new_trainer(encode_text("tiny", TINY_TEXT), "tiny.txt", model, cfg, run)


# -- deterministic -------------------------------------------------------------------------

def test_deterministic_resume_logs_the_same_losses_bit_for_bit(tmp_path):
    """Stopped mid-window (step 17, rows every 5 steps), resumed: every train-loss row, learning
    rate and validation loss is the uninterrupted run's, and so are the final weights. Dropout
    draws from the RNG, so its state must come back too."""
    shape = dict(deterministic=True, layers=2, dropout=0.2, steps=40, eval_every=10, log_every=5)
    seen = []
    check = lambda trainer, r: seen.append(torch.are_deterministic_algorithms_enabled())  # noqa: E731
    straight, _ = train_tiny(tmp_path / "straight", callbacks=Recorder(check), **shape)
    assert straight.precision == "fp32" and straight.cfg.threads >= 1 and all(seen)
    assert not torch.are_deterministic_algorithms_enabled()              # only while training
    saved = json.loads((tmp_path / "straight" / "last" / "config.json").read_text())["train"]
    assert saved["threads"] == straight.cfg.threads and saved["deterministic"]

    stop = threading.Event()
    _, half = train_tiny(tmp_path / "split", callbacks=Recorder(lambda t, r: r.step == 17 and stop.set()),
                         stop=stop, **shape)
    assert half.steps == 17
    train_tiny(tmp_path / "split", resume=True, **shape)
    assert train_rows(tmp_path / "split") == train_rows(tmp_path / "straight")
    assert [r[0] for r in train_rows(tmp_path / "straight")] == list(range(5, 41, 5))
    assert [v for v in val_rows(tmp_path / "split") if v[0] != 17] == val_rows(tmp_path / "straight")
    a = load_checkpoint(tmp_path / "straight" / "last").model.state_dict()
    b = load_checkpoint(tmp_path / "split" / "last").model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("flags, needle", [
    (["--minutes", "1"], "--deterministic needs a --steps budget"),
    (["--steps", "5", "--precision", "bf16"], "--deterministic trains in fp32"),
])
def test_deterministic_refuses_what_would_break_it(tiny_corpus, flags, needle):
    assert_usage_error(run_cli("train", str(tiny_corpus), "--deterministic", "--preset", "tiny", *flags), needle)


# -- a run directory that cannot be written ---------------------------------------------------

FILE_LIMIT = 140_000    # bytes: the tiny model's weights (~91 kB) fit, last/'s optimizer state (~185 kB) not


def _limit_file_size():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)          # a write past the limit fails with EFBIG instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT, FILE_LIMIT))


@pytest.mark.slow
def test_a_full_disk_stops_training_with_one_line_and_the_previous_checkpoint_intact(tmp_path, tiny_corpus):
    run = tmp_path / "run"
    args = [sys.executable, "-m", "charlm", "train", str(tiny_corpus), "--out", str(run), "--preset", "tiny",
            "--steps", "40", "--eval-every", "10", "--device", "cpu", "--precision", "fp32", "--quiet"]
    proc = subprocess.run(args, capture_output=True, text=True, preexec_fn=_limit_file_size, cwd=ROOT,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}, timeout=180)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith(f"charlm: error: could not write {run / 'last'} (File too large); "
                                  f"the checkpoint before it (step 0) is intact in {run / 'last'}; "), proc.stderr
    assert proc.stderr.strip().endswith(f"then continue with: charlm train --resume {run}")
    assert sorted(p.name for p in run.iterdir()) == ["best", "last", "metrics.jsonl", "source.json"]
    assert load_checkpoint(run / "last").metrics["step"] == 0 and RunDir(run).read_resume().step == 0
    assert load_checkpoint(run / "best").metrics["step"] == 10                 # saved before last/ failed
    resumed = run_cli("train", "--resume", str(run), "--quiet")                 # space again: it goes on
    assert resumed.returncode == 0, resumed.stderr
    assert RunDir(run).read_resume().step == 40


def test_a_failed_metrics_write_stops_training_too(tmp_path, monkeypatch):
    real = MetricsLog.write

    def full(self, **row):
        if row["step"] >= 15:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(self, **row)

    monkeypatch.setattr(MetricsLog, "write", full)
    with pytest.raises(RunNotWritable, match=r"could not write .*metrics.jsonl \(No space left on device\); "
                                             r"the checkpoint before it \(step 10\) is intact"):
        train_tiny(tmp_path / "run", steps=40, eval_every=10, log_every=5)
    assert RunDir(tmp_path / "run").read_resume().step == 10
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.startswith(".")]


# -- NaN / Inf -------------------------------------------------------------------------------

def test_a_nan_loss_rolls_back_with_a_lower_learning_rate_and_training_goes_on(tmp_path, monkeypatch):
    monkeypatch.setenv("CHARLM_FAULT_NAN_AT", "16")
    rec = Rollbacks()
    trainer, result = train_tiny(tmp_path / "run", callbacks=rec, steps=40, eval_every=10, log_every=5)
    assert result.steps == 40 and math.isfinite(result.best_val_loss)
    (r,) = rec.rollbacks
    assert (r.failed_step, r.step, r.lr_scale, r.rollback) == (16, 10, 0.5, 1) and math.isnan(r.loss)
    assert "nan at step 16: back to the checkpoint at step 10" in r.describe()
    steps = [s.step for s in rec.steps]
    assert steps == list(range(1, 16)) + list(range(11, 41))                  # 11-15 again, after the rollback
    after = [s for s in rec.steps[15:]]
    assert all(s.lr == pytest.approx(0.5 * lr_at((s.step - 1) / 40, trainer.cfg)) for s in after)
    rows = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert [x["step"] for x in rows if "lr" in x] == [5, 10, 15, 20, 25, 30, 35, 40]   # the undone row is gone
    assert [x for x in rows if "rollback" in x] == [{"step": 10, "elapsed": pytest.approx(rows[3]["elapsed"], abs=5),
                                                      "rollback": "nan at step 16", "lr_scale": 0.5}]
    state = RunDir(tmp_path / "run").read_resume()
    assert (state.lr_scale, state.rollbacks) == (0.5, 1)                      # a resumed run keeps the lower rate


def test_a_loss_that_keeps_diverging_stops_after_the_last_rollback(tmp_path):
    def poison(trainer, r):
        if r.step == 15:                     # after the step-10 checkpoints: wreck the weights, every time
            with torch.no_grad():
                trainer.model.head.weight.fill_(float("nan"))

    rec = Rollbacks(poison)
    run = tmp_path / "run"
    with pytest.raises(TrainingDiverged, match=rf"nan at step 16, after {MAX_ROLLBACKS} rollbacks that lowered the "
                                               r"learning rate to 0.125x; the last good checkpoint \(step 10\) is kept"):
        train_tiny(run, callbacks=rec, steps=40, eval_every=10)
    assert [(r.step, r.lr_scale) for r in rec.rollbacks] == [(10, 0.5), (10, 0.25), (10, 0.125)]
    for which in ("best", "last"):
        ckpt = load_checkpoint(run / which)
        assert ckpt.metrics["step"] == 10
        assert all(torch.isfinite(p).all() for p in ckpt.model.parameters())
    assert RunDir(run).read_resume().step == 10
    assert not [p for p in run.iterdir() if p.name.startswith(".")]


def test_a_nan_gradient_under_a_finite_loss_changes_no_weight(tmp_path):
    """Otherwise the NaN weights would be validated and saved as last/ before the next loss showed them."""
    trainer = make_trainer(tmp_path / "run", steps=5)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    handle = trainer.model.head.weight.register_hook(lambda grad: torch.full_like(grad, float("nan")))
    loss, _ = trainer._step(*trainer.batches.batch(0), None, 1e-2)
    assert math.isnan(loss)
    assert all(torch.equal(before[k], v) for k, v in trainer.model.state_dict().items())
    handle.remove()
    loss, _ = trainer._step(*trainer.batches.batch(0), None, 1e-2)
    assert math.isfinite(loss) and not torch.equal(before["head.weight"], trainer.model.head.weight)


@pytest.mark.slow
def test_the_cli_says_what_a_nan_did(tiny_corpus, tmp_path):
    common = ("--preset", "tiny", "--steps", "30", "--eval-every", "10", "--device", "cpu", "--quiet")
    once = run_cli("train", str(tiny_corpus), "--out", str(tmp_path / "once"), *common,
                   env={"CHARLM_FAULT_NAN_AT": "13"})
    assert once.returncode == 0, once.stderr
    assert ("charlm: warning: the loss became nan at step 13: back to the checkpoint at step 10 with the "
            "learning rate lowered to 0.5x (rollback 1 of 3)") in " ".join(once.stdout.split())
    assert "done: 30 steps" in once.stdout
    always = run_cli("train", str(tiny_corpus), "--out", str(tmp_path / "always"), *common,
                     env={"CHARLM_FAULT_NAN_AT": "3,4,5,6"})
    assert always.returncode == 1 and "Traceback" not in always.stderr
    assert always.stderr.strip().splitlines() == [
        f"charlm: error: the loss became nan at step 6, after 3 rollbacks that lowered the learning rate to 0.125x; "
        f"the last good checkpoint (step 0) is kept in {tmp_path / 'always' / 'last'}; try a lower --lr or --grad-clip"]


# -- too large for memory --------------------------------------------------------------------

@pytest.mark.parametrize("preset", ["tiny", "auto"])
def test_a_hidden_size_too_large_for_memory_is_one_line_before_allocation(tiny_corpus, preset):
    proc = run_cli("train", str(tiny_corpus), "--preset", preset, "--hidden", "100000", "--steps", "5",
                   "--device", "cpu")
    assert_usage_error(proc, "1x100000" if preset == "tiny" else "x100000", "of memory, and", "GiB is free",
                       "smaller --hidden")


def test_the_memory_check_refuses_what_does_not_fit_and_passes_the_presets(monkeypatch):
    for name in ("tiny", "small", "medium", "large", "karpathy"):
        model, train = preset_configs(name)
        model.vocab_size = 200
        footprint.check_fits(model, train, "cpu")         # the presets fit this (small) machine
    model, train = ModelConfig(vocab_size=65, layers=2, hidden=512), TrainConfig(batch_size=128, seq_len=64)
    need = footprint.training_bytes(model, train)
    params = 4 * 512 * (64 + 512 + 2) + 4 * 512 * (512 + 512 + 2) + 65 * 64 + 512 * 65 + 65
    assert need >= (params * 5 + 128 * 64 * 2 * 6 * 512) * 4         # weights, grads, AdamW, a copy; activations
    monkeypatch.setattr(footprint, "available_bytes", lambda device: need - 1)
    with pytest.raises(UsageError, match="needs at least 0.3 GiB of memory, and 0.3 GiB is free"):
        footprint.check_fits(model, train, "cpu")
    monkeypatch.setattr(footprint, "available_bytes", lambda device: need)
    footprint.check_fits(model, train, "cpu")
