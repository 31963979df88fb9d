"""Pilot tests of the Models screen: list, open in Generate, resume (chart continues), chart,
rename, delete with confirmation, and an unreadable run shown rather than fatal."""

from __future__ import annotations

import json

import pytest
from textual.widgets import DataTable

from charlm.runs.listing import loss_history
from charlm.runs.metrics import read_metrics
from charlm.tui.app import CharLMApp
from charlm.tui.screens.dialogs import ChartDialog, ConfirmDialog, TextPrompt
from charlm.tui.screens.generate import GenerateScreen
from charlm.tui.screens.models import ModelsScreen
from charlm.tui.screens.train import TrainScreen
from charlm.tui.widgets.loss_chart import LossChart

from .conftest import SIZE, checkpoints, fake_run, install_run, tiny_options, wait_for

pytestmark = pytest.mark.xdist_group("tui-train")


async def open_models(pilot) -> ModelsScreen:
    await pilot.press("3")
    screen = pilot.app.screen
    assert isinstance(screen, ModelsScreen)
    await pilot.pause()
    return screen


def cells(screen: ModelsScreen) -> list[list[str]]:
    table = screen.query_one(DataTable)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


async def test_lists_runs_with_their_numbers(tiny_corpus):
    fake_run("older", saved_at="2024-01-01T10:00:00+0000", step=200, best=1.386)
    fake_run("newer", saved_at="2024-02-01T10:00:00+0000", step=500, best=0.693, hidden=48)
    (checkpoints() / "junk").mkdir()
    (checkpoints() / "junk" / "last").mkdir()
    (checkpoints() / "junk" / "last" / "config.json").write_text("{not json")
    async with CharLMApp(tiny_options(tiny_corpus)).run_test(size=SIZE) as pilot:
        screen = await open_models(pilot)
        rows = cells(screen)
        assert [r[0] for r in rows[:2]] == ["newer", "older"], "newest first"
        assert rows[0][1:] == ["tiny", "–", "lstm 1x48", rows[0][4], "500", "1.000", "2024-02-01 10:00"]
        assert rows[1][6] == "2.000"
        assert rows[2][0] == "junk" and "unreadable" in rows[2][1]


async def test_open_in_generate(tiny_corpus):
    fake_run("a", saved_at="2024-01-01T10:00:00+0000", step=100, best=1.5)
    fake_run("b", saved_at="2024-03-01T10:00:00+0000", step=100, best=1.5)
    async with CharLMApp(tiny_options(tiny_corpus)).run_test(size=SIZE) as pilot:
        screen = await open_models(pilot)
        screen.query_one(DataTable).move_cursor(row=1)
        await pilot.press("g")
        gen = pilot.app.screen
        assert isinstance(gen, GenerateScreen)
        await wait_for(pilot, lambda: gen.source is not None and gen.source.label == "a", what="run a to load")


async def test_enter_on_a_run_opens_it_in_generate(tiny_corpus):
    """Enter (DataTable's RowSelected) opens the run: it once made a coroutine it never awaited
    and did nothing (the monkey's seed 8 saw the warning)."""
    fake_run("a", saved_at="2024-01-01T10:00:00+0000", step=100, best=1.5)
    async with CharLMApp(tiny_options(tiny_corpus)).run_test(size=SIZE) as pilot:
        screen = await open_models(pilot)
        screen.query_one(DataTable).focus()
        await pilot.press("enter")
        gen = pilot.app.screen
        assert isinstance(gen, GenerateScreen)
        await wait_for(pilot, lambda: gen.source is not None and gen.source.label == "a", what="run a to load")


async def test_open_in_generate_with_a_dialog_left_open_there(tiny_corpus):
    """The monkey's seed 17: Generate's "Save the text to" prompt left open, then Models' Open.
    The run opens in the Generate screen under the prompt (it was asked of the prompt)."""
    fake_run("a", saved_at="2024-01-01T10:00:00+0000", step=100, best=1.5)
    async with CharLMApp(tiny_options(tiny_corpus)).run_test(size=SIZE) as pilot:
        await pilot.press("2")
        gen = pilot.app.screen
        await pilot.app.push_screen(TextPrompt("Save the text to", "text.txt"))    # as Save (ctrl+s) does
        await pilot.app.switch_mode("models")       # as the palette's "Go to Models" does (3 types in the prompt)
        screen = pilot.app.screen
        screen.query_one(DataTable).move_cursor(row=0)
        await pilot.press("g")
        await wait_for(pilot, lambda: gen.source is not None and gen.source.label == "a", what="run a to load")
        assert isinstance(pilot.app.screen, TextPrompt), "the prompt is still the person's to answer"


async def test_resume_continues_the_run_and_its_chart(tiny_corpus, trained_run):
    run = install_run(trained_run)
    steps_before = json.loads((run / "last" / "config.json").read_text())["metrics"]["step"]
    history = len(loss_history(run)[0])
    app = CharLMApp(tiny_options(tiny_corpus, budget=20))
    async with app.run_test(size=SIZE) as pilot:
        await open_models(pilot)
        await pilot.press("r")
        train = app.screen
        assert isinstance(train, TrainScreen)
        session = app.session
        assert history > 0 and session.val_points, "the chart starts from the run's history"
        assert train.query_one(LossChart).train[:history] == session.train_points[:history]
        await wait_for(pilot, lambda: not session.active, timeout=60, what="the resumed run to finish")
        assert session.last_step.step == steps_before + 20, "a finished run goes on for the budget set"
        assert session.train_points[history][0] > steps_before
    rows = read_metrics(run / "metrics.jsonl")
    assert max(r["step"] for r in rows) == steps_before + 20
    meta = json.loads((run / "last" / "config.json").read_text())
    assert meta["metrics"]["step"] == steps_before + 20


async def test_chart_rename_and_delete_with_confirmation(tiny_corpus):
    fake_run("keep", saved_at="2024-01-01T10:00:00+0000", step=100, best=1.5)
    async with CharLMApp(tiny_options(tiny_corpus)).run_test(size=SIZE) as pilot:
        app = pilot.app
        await open_models(pilot)
        await pilot.press("c")
        assert isinstance(app.screen, ChartDialog)
        chart = app.screen.query_one(LossChart)
        assert len(chart.train) == 10 and len(chart.val) == 2
        await pilot.press("escape")

        await pilot.press("n")
        assert isinstance(app.screen, TextPrompt)
        app.screen.query_one("#answer").value = "renamed"
        await pilot.press("enter")
        await pilot.pause()
        assert (checkpoints() / "renamed").is_dir() and not (checkpoints() / "keep").exists()
        assert cells(app.screen)[0][0] == "renamed"

        await pilot.press("d")
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("escape")
        assert (checkpoints() / "renamed").is_dir(), "escape keeps it"
        await pilot.press("d")
        await pilot.click("#yes")
        await pilot.pause()
        assert not (checkpoints() / "renamed").exists()
        assert cells(app.screen) == []
        assert "No runs yet" in str(app.screen.query_one("#run-detail").render())


async def test_rename_refuses_a_bad_name(tiny_corpus):
    fake_run("one", saved_at="2024-01-01T10:00:00+0000", step=100, best=1.5)
    fake_run("two", saved_at="2024-01-02T10:00:00+0000", step=100, best=1.5)
    async with CharLMApp(tiny_options(tiny_corpus)).run_test(size=SIZE) as pilot:
        await open_models(pilot)
        await pilot.press("n")
        pilot.app.screen.query_one("#answer").value = "one"
        await pilot.press("enter")
        await pilot.pause()
        assert any("already exists" in n.message for n in pilot.app._notifications)
        assert (checkpoints() / "two").is_dir()


async def test_a_run_started_from_another_shows_where_it_started(tiny_corpus, trained_run):
    """Train screen: Start from a saved run; the chart starts at step 0 from the run's own loss on
    this text; the Models screen then names the run it started from."""
    from textual.widgets import Select

    from charlm.tui.widgets.model_picker import ModelPicker
    from charlm.tui.widgets.start_from import StartFrom
    base = install_run(trained_run, "base")
    async with CharLMApp(tiny_options(tiny_corpus)).run_test(size=(120, 40)) as pilot:
        screen = pilot.app.screen
        assert isinstance(screen, TrainScreen)
        start = screen.query_one(StartFrom)
        await wait_for(pilot, lambda: str(base) in start.runs, what="the saved run to be listed")
        screen.query_one("#start-from", Select).value = str(base)
        picker = screen.query_one(ModelPicker)
        await wait_for(pilot, lambda: screen.start_run is not None and picker.auto is not None,
                       what="the run to load and auto to size its fine-tune")
        assert picker.query_one("#preset", Select).disabled and picker.query_one("#hidden").disabled
        assert "fine-tune of lstm 1x64 (embed 16)" in str(picker.query_one("#model-info").render())
        await pilot.press("s")
        session = pilot.app.session
        await wait_for(pilot, lambda: len(session.val_points) >= 2, what="two evaluations")
        assert session.val_points[0][0] == 0, "the chart starts where the run it came from stood"
        await pilot.press("x")
        await wait_for(pilot, lambda: not session.active, what="the run to stop")
        run_dir = session.run_dir
        models = await open_models(pilot)
        row = next(r for r in cells(models) if r[0] == run_dir.name)
        assert row[2] == "base"
        models.query_one(DataTable).move_cursor(row=[r[0] for r in cells(models)].index(run_dir.name))
        await pilot.pause()
        assert "started from base (lstm 1x64 (embed 16), trained on tiny at step 60" in str(
            models.query_one("#run-detail").render())


async def test_a_start_run_deleted_meanwhile_leaves_nothing_chosen(tiny_corpus, trained_run):
    """The run picked in Start from is deleted (on the Models screen, or anywhere): back on the
    Train screen the start is nothing again, the model free, and Start trains from random weights."""
    from textual.widgets import Select

    from charlm.runs.listing import delete_run
    from charlm.tui.widgets.model_picker import ModelPicker
    from charlm.tui.widgets.start_from import NOTHING, StartFrom
    base = install_run(trained_run, "base")
    async with CharLMApp(tiny_options(tiny_corpus)).run_test(size=(120, 40)) as pilot:
        screen = pilot.app.screen
        start = screen.query_one(StartFrom)
        await wait_for(pilot, lambda: str(base) in start.runs, what="the saved run to be listed")
        screen.query_one("#start-from", Select).value = str(base)
        await wait_for(pilot, lambda: screen.start_run is not None, what="the run to load")
        delete_run(base)
        await open_models(pilot)
        await pilot.press("1")
        picker = screen.query_one(ModelPicker)
        await wait_for(pilot, lambda: screen.start_run is None, what="the deleted run to be let go")
        assert screen.query_one("#start-from", Select).value == NOTHING
        assert not picker.query_one("#hidden").disabled and picker.parent_shape is None


async def test_nothing_picked_while_a_run_loads_wins(tiny_corpus, trained_run, monkeypatch):
    """A run picked, then nothing before it has loaded: the late load does not bring it back."""
    import time

    from textual.widgets import Select

    from charlm.tui.widgets import start_from as start_from_module
    from charlm.tui.widgets.start_from import NOTHING, StartFrom
    base = install_run(trained_run, "base")
    load = start_from_module.load_parent
    monkeypatch.setattr(start_from_module, "load_parent", lambda path: (time.sleep(0.5), load(path))[1])  # a big run
    async with CharLMApp(tiny_options(tiny_corpus)).run_test(size=(120, 40)) as pilot:
        screen = pilot.app.screen
        start = screen.query_one(StartFrom)
        await wait_for(pilot, lambda: str(base) in start.runs, what="the saved run to be listed")
        select = screen.query_one("#start-from", Select)
        select.value = str(base)
        loading = await wait_for(pilot, lambda: start.loading, what="the run's load to start")  # (pause() alone
        # did not always let the select's message through on a loaded machine: CI, once)
        await pilot.press("s")
        await pilot.pause()
        assert not pilot.app.session.active, "Start waits for the run to start from"
        select.value = NOTHING
        await pilot.pause()
        await wait_for(pilot, lambda: loading.is_finished, what="the first load to end")
        await pilot.pause(0.2)
        assert screen.start_run is None and start.chosen is None and start.loading is None


async def test_says_where_the_runs_are_and_lists_the_data_directorys_from_anywhere(tiny_corpus, tmp_path, monkeypatch):
    """Outside a project the runs live in the per-user data directory: the screen lists them
    from any working directory and says where they are and why."""
    fake_run("kept", saved_at="2024-01-01T10:00:00+0000", step=200, best=1.386)
    home = tmp_path / "xdg" / "charlm" / "checkpoints"
    home.parent.mkdir(parents=True)
    checkpoints().rename(home)
    monkeypatch.delenv("CHARLM_CHECKPOINTS")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    (tmp_path / "somewhere").mkdir()
    monkeypatch.chdir(tmp_path / "somewhere")
    async with CharLMApp(tiny_options(tiny_corpus)).run_test(size=(160, 30)) as pilot:
        screen = await open_models(pilot)
        assert [r[0] for r in cells(screen)] == ["kept"]
        said = str(screen.query_one("#runs-home").render())
        assert str(home) in said and "data directory" in said


async def test_names_are_shown_as_written_not_read_as_markup(tiny_corpus):
    """A run (or its text) may be called "lyrics [v2] :fire:": Rich and Textual read a plain string as
    markup, which dropped "[v2]" as a style, drew an emoji for ":fire:" (and a "[/]" in a path raised)."""
    from rich.text import Text
    from textual.content import Content
    from textual.widgets import Label, Select
    from textual.widgets._data_table import default_cell_formatter

    from charlm.tui.widgets.output import OutputView

    def prompts(select: Select) -> list[str]:       # as its option list shows them: a str is markup
        return [p.plain if isinstance(p, Text) else Content.from_markup(p).plain for p, _ in select._options]

    name = "lyrics [v2] :fire: [red]"
    fake_run(name, saved_at="2024-01-01T10:00:00+0000", step=100, best=1.5)
    corpus = tiny_corpus.with_name(f"{name}.txt")
    corpus.write_text(tiny_corpus.read_text(encoding="utf-8"), encoding="utf-8")
    async with CharLMApp(tiny_options(corpus)).run_test(size=SIZE) as pilot:
        app = pilot.app
        screen = await open_models(pilot)
        table = screen.query_one(DataTable)
        assert default_cell_formatter(table.get_row_at(0)[0]).plain == name, "as the table draws the cell"
        assert name in str(screen.query_one("#run-detail").render())
        await pilot.press("d")
        assert name in str(app.screen.query_one(".dialog-question", Label).render())
        await pilot.press("escape")
        await pilot.press("c")
        assert name in str(app.screen.query_one(".dialog-question", Label).render())
        await pilot.press("escape")
        await pilot.press("1")
        info = app.screen.query_one("#corpus-info")
        await wait_for(pilot, lambda: "chars" in str(info.render()), what="the corpus read")
        assert str(info.render()).startswith(f"{name} · "), "the corpus's name as written"
        await wait_for(pilot, lambda: len(app.screen.query_one("#start-from", Select)._options) > 1, what="runs listed")
        assert any(p.startswith(f"{name} · ") for p in prompts(app.screen.query_one("#start-from", Select)))
        await pilot.press("2")
        await pilot.pause()
        assert any(p.startswith(f"{name} · ") for p in prompts(app.screen.query_one("#gen-model", Select)))
        out = app.screen.query_one(OutputView)
        await wait_for(pilot, lambda: "·" in str(out.border_subtitle), what="the model loaded")
        assert name in Content.from_markup(out.border_subtitle).plain, "the output's caption names the model"
