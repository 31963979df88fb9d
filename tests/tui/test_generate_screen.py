"""Pilot tests of the Generate screen: streaming from a checkpoint and from the live run, with
the temperature changed mid-stream and checked through the controls the sampler reads."""

from __future__ import annotations

import re
import threading

import pytest
from textual.widgets import Select, TextArea

from charlm.generate.sampler import SampleControls
from charlm.tui.app import CharLMApp
from charlm.tui.screens.dialogs import TextPrompt
from charlm.tui.screens.generate import LIVE
from charlm.tui.widgets import output
from charlm.tui.widgets.output import OutputView

from .conftest import SIZE, install_run, open_generate, start_training, tiny_options, wait_for

pytestmark = pytest.mark.xdist_group("tui-train")


class RecordingControls(SampleControls):
    """Logs every value of `temperature` the sampler's thread reads, in order (one per character)."""

    def __getattribute__(self, name):
        value = object.__getattribute__(self, name)
        if name == "temperature" and threading.current_thread() is not threading.main_thread():
            self.__dict__.setdefault("reads", []).append(value)
        return value

    @property
    def sampler_reads(self) -> list[float]:
        return list(self.__dict__.get("reads", []))


async def test_stream_change_temperature_continue_clear_save(tiny_corpus, trained_run, tmp_path, monkeypatch):
    install_run(trained_run)
    monkeypatch.chdir(tmp_path)
    app = CharLMApp(tiny_options(tiny_corpus))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_generate(pilot)
        assert screen.source.label == "demo"
        controls = RecordingControls(temperature=0.8)
        screen.live.controls = controls
        screen.live.pace = 60          # slow enough to change settings while it streams
        screen.query_one("#prompt", TextArea).text = "The cat"
        await pilot.press("ctrl+g")
        out = screen.query_one(OutputView)
        await wait_for(pilot, lambda: len(out.tokens) >= 5, what="streamed characters")
        assert out.text.startswith("The cat")
        await pilot.press("right", "right", "right", "right")
        assert screen.knobs.temperature == pytest.approx(1.0) and controls.temperature == pytest.approx(1.0)
        reads_at_change = len(controls.sampler_reads)
        await wait_for(pilot, lambda: len(controls.sampler_reads) >= reads_at_change + 5,
                       what="characters after the change")
        before, after = controls.sampler_reads[:reads_at_change], controls.sampler_reads[reads_at_change:]
        assert before[0] == pytest.approx(0.8), "the first characters used 0.8"
        assert before == sorted(before), "then each step up, as the keys were pressed"
        assert after and all(t == pytest.approx(1.0) for t in after), "every character since uses 1.0"
        assert "1.00" in str(screen.query_one("#temperature").render()), "the gauge shows the new value"

        await pilot.press("escape")
        await wait_for(pilot, lambda: screen.play.end is not None, what="the stream to stop")
        shown = out.text
        assert screen.play.end.stopped and screen.play.end.produced == len(out.tokens)

        screen.live.pace = 0
        screen.knobs.length = 30
        await pilot.press("c")
        await wait_for(pilot, lambda: screen.play.end is not None and len(out.text) == len(shown) + 30,
                       what="30 more characters")
        assert out.text.startswith(shown), "continue appends to what was there"

        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, TextPrompt), what="the save dialog")
        app.screen.query_one("#answer").value = str(tmp_path / "out.txt")
        await pilot.press("enter")
        await wait_for(pilot, lambda: (tmp_path / "out.txt").exists(), what="the saved file")
        assert (tmp_path / "out.txt").read_text() == out.text

        await pilot.press("x")
        assert out.text == ""


async def test_p_goes_into_the_prompt_and_a_model_loading_meanwhile_leaves_the_keys_there(tiny_corpus, trained_run):
    runs = [install_run(trained_run, name) for name in ("demo", "other")]
    app = CharLMApp(tiny_options(tiny_corpus))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_generate(pilot)
        run = next(r for r in runs if r.name != screen.source.label)
        prompt, out = screen.query_one("#prompt", TextArea), screen.query_one(OutputView)
        await pilot.press("p", *"Once")
        loaded = screen.source
        screen.open_run(run)                         # a model loads while the prompt is being typed
        await wait_for(pilot, lambda: screen.source is not loaded, what="the model to load again")
        await pilot.press(*" upon a cat")
        assert prompt.text == "Once upon a cat" and not out.colour, "every letter went into the prompt"
        await pilot.press("escape", "3")
        assert pilot.app.current_mode == "models", "esc leaves the prompt: keys are the app's again"
        await pilot.press("2", "ctrl+g")
        await wait_for(pilot, lambda: len(out.tokens) >= 5, what="streamed characters")
        assert out.text.startswith("Once upon a cat")


async def test_top_k_top_p_length_change_live(tiny_corpus, trained_run):
    install_run(trained_run)
    async with CharLMApp(tiny_options(tiny_corpus)).run_test(size=SIZE) as pilot:
        screen = await open_generate(pilot)
        screen.query_one(OutputView).focus()
        await pilot.press("right_square_bracket", "right_square_bracket", "left_curly_bracket", "less_than_sign")
        assert screen.live.controls.top_k == 10 and screen.query_one("#top-k").value == "10"
        assert screen.live.controls.top_p == pytest.approx(0.95)
        assert screen.live.length == 900
        screen.query_one("#top-k").value = "3"
        await pilot.pause()
        assert screen.live.controls.top_k == 3
        for _ in range(30):
            await pilot.press("left")
        assert screen.knobs.temperature == 0.0, "clamped at 0 (greedy)"
        screen.query_one("#seed").value = "7"
        await pilot.pause()
        assert screen.live.controls.seed == 7, "a typed seed reaches the controls the sampler reads"
        screen.knobs.length = 40
        screen.live.pace = 0
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: screen.play.end is not None, what="the stream to end")
        first = screen.query_one(OutputView).text
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: screen.play.end is not None, what="the second stream to end")
        assert screen.query_one(OutputView).text == first, "greedy with the same seed repeats itself"
        await pilot.press("o")
        assert screen.query_one(OutputView).colour


async def test_fast_pace_streams_thousands_of_characters_in_blocks_and_shows_the_models_speed(tiny_corpus, trained_run):
    install_run(trained_run)
    async with CharLMApp(tiny_options(tiny_corpus)).run_test(size=SIZE) as pilot:
        screen = await open_generate(pilot)
        screen.query_one("#pace", Select).value = 0.0                 # "fast": as fast as the model goes
        await pilot.pause()
        assert screen.live.pace == 0.0
        screen.knobs.length = 6000
        screen.query_one("#prompt", TextArea).text = "The cat"
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: screen.play.end is not None, timeout=60, what="6,000 characters")
        out = screen.query_one(OutputView)
        assert len(out.tokens) == 6000 and out.text == "The cat" + "".join(t.char for t in out.tokens)
        blocks = list(out.query(".output-block"))
        assert len(blocks) >= 3, "long output is kept in blocks, only the last redrawn"
        assert "".join(str(b.render()) for b in blocks) == out.text, "the blocks, in order, are the text"
        assert re.search(r"model [\d,]+ chars/s", str(out.border_title)), out.border_title
        assert screen.play.end.chars_per_sec > 100


async def test_a_long_output_keeps_the_last_blocks_in_view_and_the_whole_text(tiny_corpus, trained_run, tmp_path,
                                                                             monkeypatch):
    """The view holds at most SHOWN_BLOCKS blocks (memory stays bounded however long the text),
    says how much it no longer shows, and Save still writes every character; colours redraw the same."""
    monkeypatch.setattr(output, "BLOCK_CHARS", 100)
    monkeypatch.setattr(output, "SHOWN_BLOCKS", 5)
    monkeypatch.chdir(tmp_path)
    install_run(trained_run)
    async with CharLMApp(tiny_options(tiny_corpus)).run_test(size=SIZE) as pilot:
        screen = await open_generate(pilot)
        screen.query_one("#pace", Select).value = 0.0
        screen.knobs.length = 3000
        screen.query_one("#prompt", TextArea).text = "The cat"
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: screen.play.end is not None, timeout=60, what="3,000 characters")
        out = screen.query_one(OutputView)
        for colour in (False, True):                  # as streamed, then redrawn in colour
            await pilot.pause()
            blocks = list(out.query(".output-block"))
            assert len(blocks) <= 5 + 1, "at most SHOWN_BLOCKS frozen blocks and the last"
            shown = "".join(str(b.render()) for b in blocks)
            hidden = len(out.text) - len(shown)
            most_shown = (5 + 1) * 2 * 100                 # a block ends at a newline past 100 chars, or at 200
            assert hidden >= len(out.text) - most_shown and out.text.endswith(shown), \
                "the newest text is what stays in view"
            note = out.query_one("#output-hidden")
            assert note.display and f"the first {hidden:,} characters are not shown" in str(note.render())
            out.colour = not colour
        assert len(out.tokens) == 3000 and out.text == "The cat" + out.generated
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, TextPrompt), what="the save dialog")
        path = tmp_path / "all.txt"
        pilot.app.screen.query_one("#answer").value = str(path)
        await pilot.press("enter")
        await wait_for(pilot, path.exists, what="the saved text")
        assert path.read_text(encoding="utf-8") == out.text, "Save writes every character, shown or not"
        await pilot.press("x")                        # cleared: the note goes with the text
        await pilot.pause()
        assert not out.query_one("#output-hidden").display


async def test_generate_from_the_run_being_trained(tiny_corpus):
    app = CharLMApp(tiny_options(tiny_corpus))
    async with app.run_test(size=SIZE) as pilot:
        session = await start_training(pilot)
        await pilot.press("2")
        screen = app.screen
        await wait_for(pilot, lambda: screen.source is not None, what="the live run to be picked")
        assert screen.query_one("#gen-model").value == LIVE
        step_before = session.trainer.step
        screen.live.pace = 0                                   # fast: as fast as the model writes
        screen.knobs.length = 10_000_000                             # streams until stopped
        await pilot.press("ctrl+g")
        out = screen.query_one(OutputView)
        await wait_for(pilot, lambda: len(out.tokens) > 0, what="text from the live weights")
        shown_step, shown_chars = session.last_step.step, len(out.tokens)
        await wait_for(pilot, lambda: session.last_step.step > shown_step + 3,
                       what="the training steps shown to advance while text streams")
        assert screen.play.end is None and len(out.tokens) > shown_chars, "…and the text went on streaming"
        await pilot.press("escape")
        await wait_for(pilot, lambda: screen.play.end is not None, what="the stream to stop")
        await wait_for(pilot, lambda: session.trainer.step > step_before + 5, what="training to go on meanwhile")
        await pilot.press("1", "x")
        await wait_for(pilot, lambda: not session.active, what="the run to stop")


async def test_corrupt_checkpoint_is_a_notification(tiny_corpus, trained_run):
    run = install_run(trained_run, "broken")
    (run / "best" / "model.safetensors").write_bytes(b"not a tensor file")
    (run / "last" / "model.safetensors").write_bytes(b"not a tensor file")
    async with CharLMApp(tiny_options(tiny_corpus)).run_test(size=SIZE) as pilot:
        await pilot.press("2")
        screen = pilot.app.screen
        await wait_for(pilot, lambda: any("corrupt" in n.message for n in pilot.app._notifications),
                       what="the error notification")
        assert screen.source is None
        await pilot.press("ctrl+g")
        await pilot.pause()
        assert any("pick a model" in n.message for n in pilot.app._notifications)
