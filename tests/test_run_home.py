"""One home for runs and corpora (charlm.paths), and a run's training text found from any
directory (charlm.runs.training_text): by the absolute paths it recorded, by its name, or by its
hash in the cache once the files are gone or changed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from charlm import paths
from charlm.corpus.vocab import CharVocab
from charlm.errors import UsageError
from charlm.runs.checkpoint_dir import resolve_checkpoint
from charlm.runs.directory import RunDir
from charlm.runs.training_text import training_corpus

from conftest import TINY_TEXT, run_cli


@pytest.fixture
def no_overrides(tmp_path, monkeypatch) -> Path:
    """No CHARLM_CHECKPOINTS / CHARLM_CORPORA, and a data directory of this test's own."""
    monkeypatch.delenv("CHARLM_CHECKPOINTS", raising=False)
    monkeypatch.delenv("CHARLM_CORPORA", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "charlm"


def test_outside_a_project_runs_and_corpora_live_in_the_data_directory(no_overrides, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert paths.checkpoints_dir() == no_overrides / "checkpoints"
    assert paths.corpora_dir() == no_overrides / "corpora"
    assert "data directory" in paths.checkpoints_place().why


def test_a_project_directory_keeps_its_own(no_overrides, tmp_path, monkeypatch):
    (tmp_path / "checkpoints").mkdir()
    monkeypatch.chdir(tmp_path)
    assert paths.checkpoints_dir() == tmp_path / "checkpoints" and paths.corpora_dir() == tmp_path / "corpora"
    assert "project" in paths.corpora_place().why


def test_the_variables_override_both(no_overrides, tmp_path, monkeypatch):
    (tmp_path / "checkpoints").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CHARLM_CHECKPOINTS", str(tmp_path / "mine"))
    assert paths.checkpoints_dir() == tmp_path / "mine" and "CHARLM_CHECKPOINTS" in paths.checkpoints_place().why
    assert paths.corpora_dir() == tmp_path / "corpora"


def test_a_run_is_found_by_its_name_from_anywhere(trained_run, tmp_path, monkeypatch):
    monkeypatch.setenv("CHARLM_CHECKPOINTS", str(trained_run.run_dir.parent))
    monkeypatch.chdir(tmp_path)
    assert resolve_checkpoint(trained_run.run_dir.name) == trained_run.run_dir / "best"
    (tmp_path / trained_run.run_dir.name).mkdir()      # a path that exists here is what it names
    with pytest.raises(UsageError, match="not a charlm checkpoint"):
        resolve_checkpoint(trained_run.run_dir.name)


@pytest.fixture
def run_elsewhere(trained_run, tmp_path) -> tuple[Path, Path, CharVocab]:
    """A copy of the session's run whose text is a copy of its own, recorded where it is."""
    text = tmp_path / "text" / "tiny.txt"
    text.parent.mkdir()
    shutil.copy(trained_run.corpus, text)
    run = tmp_path / "run"
    shutil.copytree(trained_run.run_dir, run)
    source = json.loads((run / "source.json").read_text())
    RunDir(run).write_source("tiny.txt", "utf-8", paths=(text,), sha256=source["sha256"])
    return run, text, CharVocab.load(run / "best" / "tokenizer.json")


def test_the_run_records_its_text_as_absolute_paths_and_a_hash(trained_run):
    record = RunDir(trained_run.run_dir).text_record()
    assert record.paths == (trained_run.corpus.resolve(),) and len(record.sha256) == 64


def test_the_recorded_path_serves_from_any_directory(run_elsewhere, tmp_path, monkeypatch):
    run, text, vocab = run_elsewhere
    monkeypatch.chdir(tmp_path)              # "tiny.txt" (the spec) is not here
    assert training_corpus(run, vocab).paths == (text,)


def test_a_text_gone_is_read_from_the_cache_with_a_note(run_elsewhere, monkeypatch):
    run, text, vocab = run_elsewhere
    before = training_corpus(run, vocab)
    notes = []
    monkeypatch.setattr(paths, "say_note", notes.append)
    text.unlink()
    kept = training_corpus(run, vocab)
    assert kept.sha256 == before.sha256 and (kept.ids == before.ids).all()
    assert len(notes) == 1 and "not at" in notes[0] and "cache" in notes[0]


def test_a_text_changed_is_read_from_the_cache_or_refused(run_elsewhere, monkeypatch):
    run, text, vocab = run_elsewhere
    before = training_corpus(run, vocab)
    notes = []
    monkeypatch.setattr(paths, "say_note", notes.append)
    text.write_text(TINY_TEXT.replace("cat", "cow"), encoding="utf-8")
    assert training_corpus(run, vocab).sha256 == before.sha256 and "changed" in notes[0]
    shutil.rmtree(paths.cache_root())
    with pytest.raises(UsageError, match="hash differs"):
        training_corpus(run, vocab)


def test_cli_eval_and_resume_by_name_from_another_directory_with_the_text_gone(trained_run, tmp_path):
    """The CLI as a person uses it: `charlm eval NAME` from elsewhere once the text moved (one
    note, the same figure), and `--resume NAME` trains on from the cached text."""
    root = tmp_path / "runs"
    shutil.copytree(trained_run.run_dir, root / "tiny-run")
    text = tmp_path / "text.txt"
    shutil.copy(trained_run.corpus, text)
    record = json.loads((root / "tiny-run" / "source.json").read_text())
    RunDir(root / "tiny-run").write_source(str(text), paths=(text,), sha256=record["sha256"])
    env = {"CHARLM_CHECKPOINTS": str(root), "CHARLM_OFFLINE": "1"}
    here = tmp_path / "elsewhere"
    here.mkdir()
    first = run_cli("eval", "tiny-run", cwd=here, env=env)
    assert first.returncode == 0, first.stderr
    text.unlink()
    again = run_cli("eval", "tiny-run", cwd=here, env=env)
    assert again.returncode == 0 and again.stdout == first.stdout, again.stderr
    assert again.stderr.count("charlm: note:") == 1 and "cache" in again.stderr
    resumed = run_cli("train", "--resume", "tiny-run", "--steps", "5", cwd=here, env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert RunDir(root / "tiny-run").read_resume().step > 60


def test_info_alone_and_help_say_where_things_are(trained_run, tmp_path):
    env = {"CHARLM_CHECKPOINTS": str(trained_run.run_dir.parent)}
    shown = run_cli("info", cwd=tmp_path, env=env)
    assert shown.returncode == 0, shown.stderr
    assert str(trained_run.run_dir.parent) in shown.stdout.replace("\n", "") and trained_run.run_dir.name in shown.stdout
    where = json.loads(run_cli("info", "--json", cwd=tmp_path, env=env).stdout)
    assert [r["name"] for r in where["checkpoints"]["runs"]] == [trained_run.run_dir.name]
    assert where["checkpoints"]["why"] == "set by CHARLM_CHECKPOINTS"
    assert "runs: " in run_cli("--help", cwd=tmp_path, env=env).stdout
