"""The real `charlm` command in a real terminal (tmux): open it, pick the tiny preset from the
command palette, train until a sample shows, stop (saves), see the run in Models, generate
from it, inspect what it wrote, quit. Reads the screen with `tmux capture-pane`, as a person would see it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid

import pytest

from conftest import SHARED_CORPORA

pytestmark = [pytest.mark.xdist_group("tui-train"),
              pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")]


class Tmux:
    def __init__(self, name: str):
        self.name = name

    def send(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def screen(self) -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name], capture_output=True,
                              text=True).stdout

    def wait_for(self, pattern: str, timeout: float = 60.0) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.screen())
            if match:
                return match
            time.sleep(0.2)
        raise AssertionError(f"{pattern!r} never appeared; the screen:\n{self.screen()}")


@pytest.fixture
def tmux(tmp_path):
    name = f"charlm-e2e-{uuid.uuid4().hex[:8]}"
    env = {"CHARLM_CHECKPOINTS": tmp_path / "checkpoints", "CHARLM_CORPORA": tmp_path / "corpora",
           "CHARLM_CACHE": tmp_path / "cache", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
           "TERM": "xterm-256color"}
    if SHARED_CORPORA.is_dir():
        env["CHARLM_MIRROR"] = SHARED_CORPORA
    exports = " ".join(f"{k}={str(v)!r}" for k, v in env.items())
    status = tmp_path / "exit-status"
    # COLUMNS/LINES (the test suite sets COLUMNS) would override the terminal's real size.
    command = (f"cd {str(tmp_path)!r} && env -u COLUMNS -u LINES {exports} {sys.executable!r} -m charlm;"
               f" echo $? > {str(status)!r}")
    subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", "100", "-y", "30", command], check=True)
    session = Tmux(name)
    session.status = status
    try:
        yield session
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)


def test_train_watch_generate_quit(tmux, tmp_path):
    tmux.wait_for(r"Corpus.*\n(.*\n)*.*chars · vocabulary \d+", timeout=90)     # the default corpus is read
    tmux.send("C-p")
    tmux.wait_for(r"Search for commands")
    tmux.send("-l", "use the tiny preset")
    time.sleep(0.5)
    tmux.send("Enter")
    tmux.wait_for(r"tiny\s+1x64")
    tmux.send("s")
    tmux.wait_for(r"step \d+ · loss \d\.\d{3}")
    # A full validation (every 500 steps) shows in the stats; the samples (every 100) carry its loss.
    tmux.wait_for(r"· val \d\.\d{3} \(\d\.\d{3} bits/char\)", timeout=120)
    tmux.wait_for(r"── step [\d,]+ · (last )?val \d\.\d{3}", timeout=30)
    tmux.send("x")
    tmux.wait_for(r"saved \S+ at step \d+", timeout=60)

    tmux.send("3")
    tmux.wait_for(r"lstm 1x64")
    runs = list((tmp_path / "checkpoints").iterdir())
    assert len(runs) == 1 and (runs[0] / "last" / "model.safetensors").exists()

    tmux.send("2")
    tmux.wait_for(rf"{re.escape(runs[0].name)} · lstm 1x64 · step \d+")
    tmux.send("C-g")
    tmux.wait_for(r"Output · [1-9][\d,]* chars")
    tmux.send("Right", "Right")
    tmux.wait_for(r"temperature [━─●]+ 0\.90")
    tmux.send("Escape")
    time.sleep(0.5)                                  # or ESC and 4 arrive as one key, alt+4
    tmux.send("4")                                   # Inspect the text just made
    tmux.wait_for(r"4 Inspect")
    time.sleep(0.5)
    tmux.send("C-l")
    tmux.wait_for(r"[\d,]+ characters · \d\.\d{4} nats/char · \d\.\d{4} bits/char", timeout=60)
    tmux.send("Right", "Right")
    tmux.wait_for(r"character 3 of the text")
    tmux.send("C-q")
    deadline = time.monotonic() + 30
    while not tmux.status.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert tmux.status.read_text().strip() == "0"
