"""The run directory's rules, in one module: which checkpoint a reader gets, what a crash leaves
and how the next writer settles it, one writer at a time, the resume state of old and new runs,
and the refusals of rename and delete."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from charlm.errors import UsageError
from charlm.model.checkpoint import load_checkpoint
from charlm.runs.checkpoint_dir import resolve_checkpoint
from charlm.runs.directory import BEST, LAST, ResumeState, RunDir, previous_copy
from charlm.runs.listing import list_runs
from charlm.runs.metrics import read_metrics
from charlm.train.launch import resume_trainer

from helpers import Recorder, make_trainer, tree_digest


@pytest.fixture
def run(trained_run, tmp_path) -> Path:
    """A private copy of the session's trained run (60 steps; best/ and last/ both at step 60)."""
    return Path(shutil.copytree(trained_run.run_dir, tmp_path / "run"))


def _step(ckpt: Path) -> int:
    return json.loads((ckpt / "config.json").read_text())["metrics"]["step"]


def _mark(ckpt: Path, step: int) -> Path:
    """Make `ckpt` recognisable by its metrics step."""
    meta = json.loads((ckpt / "config.json").read_text())
    meta["metrics"]["step"] = step
    (ckpt / "config.json").write_text(json.dumps(meta))
    return ckpt


# -- which checkpoint ---------------------------------------------------------------------

def test_the_lookup_order_prefers_the_asked_one_then_its_previous_copy_then_the_other(run):
    r = RunDir(run)
    _mark(r.best, 1), _mark(r.last, 2)
    assert r.checkpoint(BEST) == r.best and r.checkpoint(LAST) == r.last
    assert resolve_checkpoint(run) == r.best                      # readers of a run get best/ ...
    assert list_runs(run.parent)[0].steps == 2                    # ... the run list the newest figures
    shutil.copytree(r.last, previous_copy(r.last))
    _mark(previous_copy(r.last), 3)
    shutil.rmtree(r.last)                                         # a save cut off between its renames
    assert r.checkpoint(LAST) == previous_copy(r.last) and r.resumable() == previous_copy(r.last)
    assert r.checkpoint(BEST) == r.best
    shutil.rmtree(r.best)
    assert r.checkpoint(BEST) == previous_copy(r.last)
    shutil.rmtree(previous_copy(r.last))
    assert r.checkpoint(BEST) is None and r.resumable() is None and not r.is_run()


def test_a_reader_never_picks_a_temporary_copy(run):
    r = RunDir(run)
    shutil.rmtree(r.best)
    shutil.move(r.last, run / ".last.tmp-999")                     # a save in progress, nothing whole yet
    assert r.checkpoint(BEST) is None and r.checkpoint(LAST) is None
    with pytest.raises(UsageError, match="not a charlm checkpoint or run directory"):
        resolve_checkpoint(run)


# -- what a crash leaves, settled by the next writer --------------------------------------

def test_claiming_settles_a_save_cut_off_between_its_renames(run):
    r = RunDir(run)
    shutil.move(r.last, previous_copy(r.last))                     # the old copy moved aside, the new one not in
    (run / ".last.tmp-12345").mkdir()                              # ... and the new one half-written
    (run / ".last.tmp-12345" / "model.safetensors").write_bytes(b"half")
    with r.claim():
        pass
    assert sorted(p.name for p in run.iterdir()) == ["best", "last", "metrics.jsonl", "source.json"]
    assert _step(r.last) == 60 and load_checkpoint(r.last).model.num_params() > 0


def test_claiming_drops_a_previous_copy_whose_successor_is_whole(run):
    r = RunDir(run)
    shutil.copytree(r.best, previous_copy(r.best))                 # cut off while deleting the old copy
    (previous_copy(r.best) / "model.safetensors").unlink()
    with r.claim():
        pass
    assert not previous_copy(r.best).exists() and r.checkpoint(BEST) == r.best


def test_a_resume_after_a_cut_off_save_continues_from_the_whole_copy(run):
    r = RunDir(run)
    shutil.move(r.last, previous_copy(r.last))
    rec = Recorder()
    trainer = resume_trainer(run, rec, {"steps": 70, "eval_every": 10})
    assert trainer.step == 60
    trainer.run()
    assert [s.step for s in rec.steps] == list(range(61, 71))
    assert _step(r.last) == 70 and not previous_copy(r.last).exists()


# -- one writer ---------------------------------------------------------------------------

def test_one_writer_at_a_time_and_no_rename_or_delete_meanwhile(run):
    r = RunDir(run)
    before = tree_digest(run)
    with r.claim():
        with pytest.raises(UsageError, match="another charlm is training into"):
            with RunDir(run).claim():
                pass
        with pytest.raises(UsageError, match="another charlm is training into"):
            r.delete()
        with pytest.raises(UsageError, match="another charlm is training into"):
            r.rename("elsewhere")
        assert {k: v for k, v in tree_digest(run).items() if k != ".lock"} == before
    assert not (run / ".lock").exists()                            # let go: no lock file left behind
    with r.claim():
        pass


# Holds the run, then starts a child that shares the lock for a moment, as a trainer starting the
# compiler does between fork and exec (here for 0.5 s, to be seen).
_HOLDER_WITH_CHILD = """import os, sys, time
from charlm.runs.directory import RunDir
with RunDir(sys.argv[1]).claim():
    if os.fork() == 0:
        time.sleep(0.5)
        os._exit(0)
    print("locked", flush=True)
    time.sleep(300)
"""


def test_a_killed_writers_lock_still_shared_by_its_starting_child_is_waited_for(tmp_path):
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER_WITH_CHILD, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        with pytest.raises(UsageError, match=f"another charlm is training into .* \\(pid {holder.pid}\\)"):
            with RunDir(run).claim():
                pass
        assert time.monotonic() - started < 1.0, "a live writer is named at once, not waited for"
    finally:
        holder.kill()
        holder.wait()
    with RunDir(run).claim():          # its child still holds the lock for a moment: waited for
        pass


def test_a_trainer_refuses_a_run_another_trainer_is_writing(tmp_path):
    started, release = threading.Event(), threading.Event()

    def hold(trainer, report):
        started.set()
        release.wait(10)

    first = make_trainer(tmp_path / "run", callbacks=Recorder(hold), steps=3, eval_every=3)
    worker = threading.Thread(target=first.run)
    worker.start()
    try:
        assert started.wait(30)
        with pytest.raises(UsageError, match="another charlm is training into"):
            make_trainer(tmp_path / "run", resume=True, steps=10).run()
    finally:
        release.set()
        worker.join()
    assert _step(tmp_path / "run" / "last") == 3


# -- rename and delete --------------------------------------------------------------------

@pytest.mark.parametrize("name", ["", "   ", ".", "..", "a/b", "../escape", ".hidden"])
def test_rename_refuses_a_name_that_would_move_or_hide_the_run(run, name):
    before = tree_digest(run)
    with pytest.raises(UsageError, match="not a usable run name"):
        RunDir(run).rename(name)
    assert tree_digest(run) == before and sorted(p.name for p in run.parent.iterdir()) == ["run"]


def test_rename_refuses_a_name_that_is_taken(run, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match="a run called other already exists"):
        RunDir(run).rename("other")
    assert (other / "notes.txt").read_text() == "mine" and RunDir(run).is_run()


def test_rename_moves_the_run_whole(run):
    before = tree_digest(run)
    renamed = RunDir(run).rename("  renamed ")
    assert renamed.path == run.parent / "renamed" and not run.exists()
    assert tree_digest(renamed.path) == before


def test_deleting_a_directory_that_is_not_a_run_is_refused(tmp_path):
    mine = tmp_path / "mine"
    (mine / "sub").mkdir(parents=True)
    (mine / "notes.txt").write_text("keep me")
    (mine / "sub" / "best.txt").write_text("a file called best is not a checkpoint")
    before = tree_digest(mine)
    for target in (mine, mine / "notes.txt", tmp_path / "missing"):
        with pytest.raises(UsageError, match="is not a charlm run directory; nothing was deleted"):
            RunDir(target).delete()
    assert tree_digest(mine) == before


def test_deleting_a_run_removes_it(run):
    RunDir(run).delete()
    assert not run.exists()


# -- what it records ----------------------------------------------------------------------

def test_source_round_trip_and_a_damaged_record(tmp_path):
    r = RunDir(tmp_path / "run")
    r.path.mkdir()
    assert r.read_source() is None
    r.write_source("shakespeare", "latin-1")
    assert r.read_source() == ("shakespeare", "latin-1")
    (r.path / "source.json").write_text('{"spec": ')
    assert r.read_source() is None
    (r.path / "source.json").write_text('{"spec": 42}')
    assert r.read_source() is None


def test_trimming_metrics_drops_undone_steps_and_a_cut_off_line(tmp_path):
    r = RunDir(tmp_path)
    rows = [{"step": s, "train_loss": 1.0 / s} for s in (10, 20, 30)] + [{"note": "no step"}]
    r.metrics_path.write_text("".join(json.dumps(x) + "\n" for x in rows) + '{"step": 40, "tra')
    r.trim_metrics(20)
    assert read_metrics(r.metrics_path) == [rows[0], rows[1], rows[3]]
    assert r.metrics_path.read_text().endswith("\n")
    unchanged = r.metrics_path.stat().st_mtime_ns
    r.trim_metrics(20)
    assert r.metrics_path.stat().st_mtime_ns == unchanged          # nothing to drop: not rewritten


def test_resume_state_of_an_older_run_takes_the_defaults(run):
    state = json.loads((run / "last" / "resume.json").read_text())
    old = {k: state[k] for k in ("step", "elapsed", "chunk", "best_val_loss", "train_loss", "optimizer")}
    (run / "last" / "resume.json").write_text(json.dumps(old))     # as charlm wrote it before rundir.py
    got = RunDir(run).read_resume()
    assert (got.step, got.chunk, got.lr_scale, got.rollbacks, got.log_window) == (60, old["chunk"], 1.0, 0, [0.0, 0])


@pytest.mark.parametrize("damage", [
    lambda s: "not json",
    lambda s: json.dumps([1, 2]),
    lambda s: json.dumps({k: v for k, v in s.items() if k != "step"}),
    lambda s: json.dumps(s | {"step": "sixty"}),
    lambda s: json.dumps(s | {"elapsed": None}),
    lambda s: json.dumps(s | {"optimizer": {}}),
    lambda s: json.dumps(s | {"lr_scale": 0}),
    lambda s: json.dumps(s | {"log_window": [0.0]}),
])
def test_a_damaged_resume_state_is_a_usage_error(run, damage):
    path = run / "last" / "resume.json"
    path.write_text(damage(json.loads(path.read_text())))
    with pytest.raises(UsageError, match="resume state in .* is corrupt"):
        RunDir(run).read_resume()


def test_resume_state_round_trips_through_json():
    state = ResumeState(7, 1.5, 3, {"param_groups": []}, 2.0, None, [0.25, 2], 0.5, 1)
    assert ResumeState.from_json(json.loads(json.dumps(state.to_json()))) == state
