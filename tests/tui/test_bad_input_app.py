"""Bad input in the app: each is an error notification saying what is wrong, the app keeps
running, nothing starts that should not, and nothing saved is changed."""

from __future__ import annotations

import os

import pytest
from textual.widgets import Input, TextArea

from charlm.tui.app import CharLMApp
from charlm.tui.screens.dialogs import ChartDialog, ConfirmDialog
from charlm.tui.screens.models import ModelsScreen
from charlm.tui.train_session import TrainingSession
from charlm.tui.widgets.loss_chart import LossChart
from charlm.tui.widgets.output import OutputView

from .conftest import SIZE, corpus_ready, install_run, open_generate, tiny_options, wait_for
from conftest import TINY_TEXT
from helpers import held_by_another_process, tree_digest

pytestmark = pytest.mark.xdist_group("tui-train")


def errors(app) -> list[str]:
    return [n.message for n in app._notifications if n.severity == "error"]


def _utf16(d):
    (d / "wide.txt").write_bytes(b"\xff\xfe" + TINY_TEXT.encode("utf-16-le"))
    return d / "wide.txt"


def _loop(d):
    os.symlink("loop.txt", d / "loop.txt")
    return d / "loop.txt"


def _binary(d):
    (d / "a.out").write_bytes(b"\x7fELF\x00\x01" * 100)
    return d / "a.out"


@pytest.mark.parametrize("make, needle", [(_utf16, "--encoding utf-16"), (_loop, "symbolic link that loops"),
                                          (_binary, "binary file")], ids=["utf16", "symlink-loop", "binary"])
async def test_a_bad_corpus_typed_in_the_picker_is_an_error_not_a_run(tiny_app: CharLMApp, tmp_path, make, needle):
    bad = make(tmp_path)
    async with tiny_app.run_test(size=SIZE) as pilot:
        screen = pilot.app.screen
        await corpus_ready(pilot)
        path = screen.query_one("#corpus-path", Input)
        path.value = str(bad)
        path.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: any(needle in m for m in errors(pilot.app)), what="the error notification")
        assert needle in str(screen.query_one("#corpus-info").render())
        await pilot.press("s")
        await pilot.pause()
        assert pilot.app.session.state == TrainingSession.IDLE, "nothing starts on an unreadable corpus"
        assert pilot.app.is_running


async def test_settings_typed_out_of_range_are_refused_out_loud(tiny_corpus, trained_run):
    install_run(trained_run)
    async with CharLMApp(tiny_options(tiny_corpus)).run_test(size=SIZE) as pilot:
        screen = await open_generate(pilot)
        top_p = screen.query_one("#top-p", Input)
        top_p.value = "1.5"
        top_p.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: errors(pilot.app), what="the error notification")
        assert "top-p '1.5' cannot be used: must be between 0.01 and 1.0; still using 1.0" in errors(pilot.app)
        assert screen.live.controls.top_p == 1.0, "the sampler keeps the last good value"

        length = screen.query_one("#length", Input)
        length.value = "-4"
        length.focus()
        screen.query_one("#prompt", TextArea).focus()        # leaving the field is enough to be told
        await wait_for(pilot, lambda: any("length '-4'" in m for m in errors(pilot.app)), what="the length error")
        assert screen.live.length == 1000

        seed = screen.query_one("#seed", Input)
        seed.value = str(10**20)                             # digits, but more than a seed can hold
        screen.query_one("#prompt", TextArea).text = "The cat"
        screen.knobs.length = 30
        screen.live.pace = 0
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: screen.play.end is not None, what="the stream to end")
        assert len(screen.query_one(OutputView).tokens) == 30
        assert screen.play.seed != 10**20, "an out-of-range seed falls back to a random one"
        assert not any("internal error" in m for m in errors(pilot.app))


async def test_a_prompt_the_model_cannot_read_starts_nothing(tiny_corpus, trained_run):
    install_run(trained_run)
    async with CharLMApp(tiny_options(tiny_corpus)).run_test(size=SIZE) as pilot:
        screen = await open_generate(pilot)
        screen.query_one("#prompt", TextArea).text = "ZQ☃€"
        await pilot.press("ctrl+g")
        await pilot.pause()
        assert any("knows none of the prompt's characters" in m for m in errors(pilot.app))
        assert screen.play.job is None and len(screen.query_one(OutputView).tokens) == 0


async def test_a_run_another_charlm_is_training_cannot_be_resumed_renamed_or_deleted(tiny_corpus, trained_run):
    run = install_run(trained_run)
    before = tree_digest(run)
    holder = held_by_another_process(run)
    try:
        async with CharLMApp(tiny_options(tiny_corpus)).run_test(size=SIZE) as pilot:
            app = pilot.app
            await pilot.press("3")
            assert isinstance(app.screen, ModelsScreen)
            for key in ("d", "n"):
                await pilot.press(key)
                await pilot.pause()
                assert not isinstance(app.screen, ConfirmDialog)
            await pilot.press("r")
            await wait_for(pilot, lambda: any(f"(pid {holder.pid})" in m for m in errors(app)),
                           what="the resume refusal")
            warned = [n.message for n in app._notifications if f"another charlm is training into {run}" in n.message]
            assert len(warned) == 3, "delete, rename and resume each say why not"
            assert app.session.state == TrainingSession.IDLE
    finally:
        holder.kill()
        holder.wait()
    assert tree_digest(run) == before


async def test_a_garbage_metrics_file_still_charts(tiny_corpus, trained_run):
    run = install_run(trained_run)
    good = (run / "metrics.jsonl").read_bytes()
    (run / "metrics.jsonl").write_bytes(b"[1, 2]\n42\n\xff\xfe garbage\n" + good)
    async with CharLMApp(tiny_options(tiny_corpus)).run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await pilot.press("c")
        await pilot.pause()
        assert isinstance(pilot.app.screen, ChartDialog)
        assert pilot.app.screen.query_one(LossChart).train, "the good lines are charted"

