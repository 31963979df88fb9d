"""The training benchmark runs end to end and prints every side, the ratios and the machine."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from conftest import ROOT


def test_train_speed_prints_each_side_and_the_ratios(tiny_corpus):
    out = subprocess.run([sys.executable, "-m", "bench.train_speed", "--preset", "tiny", "--rounds", "1",
                          "--seconds", "0.3", "--corpus", str(tiny_corpus)],
                         capture_output=True, text=True, cwd=ROOT, timeout=300, env=os.environ.copy())
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("machine: ")
    for label in ("charlm trainer", "plain nn.LSTM loop", "plain loop + allocator setting"):
        rate = re.search(rf"^{re.escape(label)}: ([\d,]+) chars/s \(median\)$", out.stdout, re.M)
        assert rate and int(rate.group(1).replace(",", "")) > 0, out.stdout
    assert re.search(r"^ratio charlm/plain: \d+\.\d{3}", out.stdout, re.M), out.stdout
