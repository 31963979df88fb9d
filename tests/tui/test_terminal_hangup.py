"""The real app in a pseudo-terminal that goes away while it trains (the window closed, tmux
killed), or that is told to end (SIGTERM): it saves the run and exits, instead of training on
with no one to see it, or dying with the terminal left in raw mode."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from bench.tui_pty import PtyApp
from charlm.runs.directory import METRICS

pytestmark = [pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX"),
              pytest.mark.xdist_group("tui-train")]

ROOT = Path(__file__).resolve().parents[2]
# The app as `charlm` runs it (run_app), with the tiny options the other app tests use, and a
# budget it cannot spend before the terminal goes.
CHILD = """
import sys
sys.path.insert(0, sys.argv[2])
from tui.conftest import tiny_options
from charlm.tui.run import run_app
sys.exit(run_app(tiny_options(sys.argv[1], budget=1_000_000, step_hz=10, chart_interval=1.0)))
"""


def test_a_terminal_that_hangs_up_mid_run_saves_the_run_and_ends_the_app(tiny_corpus, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env.update(CHARLM_CHECKPOINTS=str(tmp_path / "checkpoints"), CHARLM_CACHE=str(tmp_path / "cache"),
               TERM="xterm-256color", PYTHONPATH=str(ROOT))
    # start_new_session: the app leads a session with no controlling terminal, so it is sent
    # no SIGHUP (as under `make run`, where make leads): only the terminal's state tells it.
    app = PtyApp([sys.executable, "-c", CHILD, str(tiny_corpus), str(ROOT / "tests")], cwd=tmp_path, env=env)
    try:
        app.wait_for(r"vocabulary \d+", regex=True, timeout=60)
        app.send("s")
        app.wait_for(r"step \d+ · loss", regex=True, timeout=60)
        time.sleep(0.5)
        app.hang_up()
        try:
            code = app.wait_exit(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail("the app went on running after its terminal hung up")
        assert code == 128 + signal.SIGHUP, "ended as a hangup ends a program"
        runs = [p for p in (tmp_path / "checkpoints").iterdir() if p.is_dir()]
        assert len(runs) == 1
        saved = json.loads((runs[0] / "last" / "config.json").read_text())["metrics"]["step"]
        log = [json.loads(line) for line in (runs[0] / METRICS).read_text().splitlines()]
        assert saved == max(entry["step"] for entry in log) > 0, "saved at the step where it stopped"
    finally:
        app.close()


def test_sigterm_saves_the_run_and_gives_the_terminal_back(tiny_corpus, tmp_path):
    """`kill PID`, `docker stop`, a logout: the run is saved at the step it reached and the
    terminal is left as it was found (main screen, cursor shown, cooked mode)."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env.update(CHARLM_CHECKPOINTS=str(tmp_path / "checkpoints"), CHARLM_CACHE=str(tmp_path / "cache"),
               TERM="xterm-256color", PYTHONPATH=str(ROOT))
    app = PtyApp([sys.executable, "-c", CHILD, str(tiny_corpus), str(ROOT / "tests")], cwd=tmp_path, env=env)
    try:
        cooked = termios.tcgetattr(app.master)
        app.wait_for(r"vocabulary \d+", regex=True, timeout=60)
        assert termios.tcgetattr(app.master)[3] & termios.ICANON == 0, "the app runs in raw mode"
        app.send("s")
        app.wait_for(r"step \d+ · loss", regex=True, timeout=60)
        time.sleep(0.5)
        app.proc.send_signal(signal.SIGTERM)
        try:
            code = app.wait_exit(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail("the app went on running after SIGTERM")
        assert code == 128 + signal.SIGTERM
        runs = [p for p in (tmp_path / "checkpoints").iterdir() if p.is_dir()]
        saved = json.loads((runs[0] / "last" / "config.json").read_text())["metrics"]["step"]
        log = [json.loads(line) for line in (runs[0] / METRICS).read_text().splitlines()]
        assert saved == max(entry["step"] for entry in log) > 0, "saved at the step where it stopped"
        time.sleep(0.2)                                   # the last bytes reach the reader
        output = b"".join(data for _, data in app.chunks)
        assert output.rfind(b"\x1b[?1049l") > output.rfind(b"\x1b[?1049h"), "left the alternate screen"
        assert output.rfind(b"\x1b[?25h") > output.rfind(b"\x1b[?25l"), "the cursor shown again"
        assert termios.tcgetattr(app.master) == cooked, "the terminal's modes as they were"
        assert b"Traceback" not in output
    finally:
        app.close()
