"""The monkey (bench/monkey.py) in the suite: random keys, clicks, pastes, palette commands,
resizes and quits over all four screens while a tiny model trains, from fixed seeds; no exception,
no failed worker, no error logged, nothing left running, every saved run loads. A failure prints
the events before it and the command that replays them."""

from __future__ import annotations

import shutil
import threading
from types import SimpleNamespace

import pytest

from bench.monkey import render_caches, run_monkey, write_corpus
from charlm.tui.app import CharLMApp

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("tui-train")]

# Seeds that find nothing today. Those that do (and the bug each finds) are in the notes on the
# monkey's findings: once a bug is fixed, its seed belongs here.
SEEDS = (25, 40)
EVENTS = 70           # per seed: 12-20 s on a 2-core machine, start-up and final checks included
SECONDS = 40.0        # but no longer, on a slower machine


@pytest.fixture
def monkey_dir(tmp_path, monkeypatch):
    """Where whatever the monkey types may write: Generate's Save, a path typed as ~/…; and no
    download of a catalog corpus picked at random."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("CHARLM_OFFLINE", "1")
    return tmp_path


@pytest.mark.parametrize("seed", SEEDS)
async def test_random_events_break_nothing(monkey_dir, seed):
    report = await run_monkey(write_corpus(monkey_dir), seed, EVENTS, seconds=SECONDS)
    assert not report.findings, report.describe()
    assert {"TrainScreen", "GenerateScreen", "ModelsScreen", "InspectScreen"} <= report.screens, report.screens
    assert report.runs_loaded >= 1, report.describe()
    assert report.apps_alive == 0 and not report.held_between, \
        f"a closed app is still in memory (at events {report.held_between}): the soak's RSS would count it"
    assert report.cache_entries_emptied > 0 and not any(c.cache_info().currsize for c in render_caches()), \
        "Textual's and Rich's caches were left full after the last app: the soak's RSS between apps would count them"


async def test_the_monkey_catches_an_exception_in_a_screen_handler(monkey_dir, monkeypatch):
    """The checks can fail: an action that raises ends the app, and the report says how to replay it."""
    def broken(self) -> None:
        raise RuntimeError("planted by the test")

    monkeypatch.setattr(CharLMApp, "action_help", broken)      # `?`, bound on every screen
    report = await run_monkey(write_corpus(monkey_dir), 12, 200, seconds=SECONDS)    # ends at the first finding
    assert "exception" in [f.kind for f in report.findings], report.describe()
    text = report.describe()
    assert "RuntimeError: planted by the test" in text and "in broken" in text
    assert f"replay: python -m bench.monkey --seed 12 --events {report.findings[0].event + 1}" in text


def test_one_app_asks_for_no_quit_and_its_replay_says_so(tmp_path):
    """--one-app (one app's memory through a whole soak): no quit events, and a finding's replay
    command keeps the flag, or it would replay a different run."""
    from bench.monkey import Monkey
    corpus = write_corpus(tmp_path)
    assert "quit" in Monkey(corpus, 7, 10).kinds
    one = Monkey(corpus, 7, 10, one_app=True)
    assert "quit" not in one.kinds
    assert one.report.replay() == "python -m bench.monkey --seed 7 --events 10 --one-app"


def test_each_saved_checkpoint_is_loaded_once_and_again_once_saved_anew(tmp_path, monkeypatch, trained_run):
    """After every app the monkey loads the runs under checkpoints/: each checkpoint once as saved
    (loading all of them after every app grew with the soak, in the process it measures), and
    again once it has changed, so a later save that broke it is still found."""
    from bench.monkey import Monkey
    root = tmp_path / "checkpoints"
    run = shutil.copytree(trained_run.run_dir, root / "tiny")
    monkeypatch.setenv("CHARLM_CHECKPOINTS", str(root))
    monkey = Monkey(write_corpus(tmp_path), 7, 10)
    session = SimpleNamespace(run_dir=run, abandon=threading.Event())
    monkey.check_runs(session)
    assert monkey.report.runs_loaded == 2                   # best/ and last/
    monkey.check_runs(session)
    assert monkey.report.runs_loaded == 2 and not monkey.report.findings
    weights = run / "last" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])       # a later save, broken
    monkey.check_runs(session)
    assert monkey.report.runs_loaded == 2 and [f.kind for f in monkey.report.findings] == ["unsaved"], \
        monkey.report.describe()
