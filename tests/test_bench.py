"""The benchmarks run end to end and print every side, the ratios and the machine."""

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


def test_big_corpus_prints_both_runs_and_the_goals(tmp_path, tiny_corpus):
    text = tmp_path / "big.txt"
    text.write_text(tiny_corpus.read_text() * 40, encoding="utf-8")      # ~290 kB: one batch of `small` fits
    out = subprocess.run([sys.executable, "-m", "bench.big_corpus", "--path", str(text)],
                         capture_output=True, text=True, cwd=ROOT, timeout=300, env=os.environ.copy())
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("machine: ")
    assert re.search(r"^this code: first run [\d.]+ s \([\d.]+ MB/s, start-up included\), peak RSS [\d,]+ MB; "
                     r"second run [\d.]+ s, peak RSS [\d,]+ MB$", out.stdout, re.M), out.stdout
    assert re.search(r"^this code: goals: first >= 50 MB/s \w+, second < 10 s \w+, peak RSS < 2 GB \w+$",
                     out.stdout, re.M), out.stdout


def test_busy_prints_idle_and_beside_a_hog_and_the_ratio(tiny_corpus):
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}      # the sides choose threads
    out = subprocess.run([sys.executable, "-m", "bench.busy", "--preset", "tiny", "--rounds", "1",
                          "--seconds", "0.5", "--corpus", str(tiny_corpus)],
                         capture_output=True, text=True, cwd=ROOT, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("machine: ")
    for label in ("idle machine", "beside a one-core hog", "beside the hog, a thread per core"):
        assert re.search(rf"^{re.escape(label)}: [\d,]+ chars/s \(median\)$", out.stdout, re.M), out.stdout
    assert re.search(r"^ratio hog/idle: \d\.\d\d", out.stdout, re.M), out.stdout
    assert re.search(r"round 1: idle [\d,]+ \(\d thr\) · hog [\d,]+ \(\d thr\) · hog-fixed [\d,]+ \(\d thr\)",
                     out.stdout), out.stdout


def test_quality_prints_both_sides_per_budget(tiny_corpus):
    text = tiny_corpus.parent / "longer.txt"
    text.write_text(tiny_corpus.read_text() * 20, encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "bench.quality", "--minutes", "0.02", "--corpus", str(text)],
                         capture_output=True, text=True, cwd=ROOT, timeout=300, env=os.environ.copy())
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("machine: ")
    assert re.search(r"^0\.02 min: charlm \d\.\d{4} nats/char \(lstm \d+x\d+, [\d,]+ steps, [\d,]+ chars/s\) · "
                     r"plain loop \d\.\d{4} \([\d,]+ steps, [\d,]+ chars/s\)", out.stdout, re.M), out.stdout
    assert "auto: lstm" in out.stdout


def test_inspect_speed_prints_probe_neurons_and_novelty(trained_run, tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("The cat sat on the mat.\nThe dog sat on the log.\n" * 20, encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "bench.inspect_speed", "--checkpoint", str(trained_run.run_dir),
                          "--text", str(text), "--mb", "0.3", "--corpus", str(tmp_path / "salad.txt")],
                         capture_output=True, text=True, cwd=ROOT, timeout=300, env=os.environ.copy())
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("machine: ")
    probe = re.search(r"^probe: [\d.]+ s \([\d,]+ chars/s\), (\d\.\d{4}) nats/char \(charlm eval: (\d\.\d{4})\)$",
                      out.stdout, re.M)
    assert probe and probe.group(1) == probe.group(2), out.stdout
    assert re.search(r"^neurons --pattern line-position: [\d.]+ s \([\d,]+ chars/s\), 128 units, best \d:[hc]:\d+",
                     out.stdout, re.M), out.stdout
    assert re.search(r"^charlm probe \.\.\. --json: [\d.]+ s wall-clock", out.stdout, re.M), out.stdout
    assert re.search(r"^novelty corpus: .* first use: [\d.]+ s wall-clock \(encoding [\d.]+ s, index [\d.]+ s for "
                     r"[\d,]+ training characters\), peak RSS [\d,]+ MB, index [\d,]+ MB on disk$", out.stdout, re.M)
    assert re.search(r"^query, a passage of the training text, again: [\d.]+ s; 100\.00% of 20-char windows copied, "
                     r"longest span 10,000 chars$", out.stdout, re.M), out.stdout


def test_ddp_speed_prints_one_process_n_ranks_and_the_communication_share(tiny_corpus):
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}
    out = subprocess.run([sys.executable, "-m", "bench.ddp_speed", "--preset", "tiny", "--steps", "12",
                          "--batch-size", "8", "--seq-len", "32", "--corpus", str(tiny_corpus)],
                         capture_output=True, text=True, cwd=ROOT, timeout=300, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith("machine: ")
    one = re.search(r"^  1 process \(\d+ threads\): ([\d,]+) chars/s$", out.stdout, re.M)
    two = re.search(r"^  2 ranks .*: ([\d,]+) chars/s · (\d+\.\d\d)x one process", out.stdout, re.M)
    assert one and two and int(two.group(1).replace(",", "")) > 0, out.stdout
    assert re.search(r"communication \d+% of a step$", out.stdout, re.M), out.stdout


def test_finetune_prints_both_sides_and_the_gain(tiny_corpus, trained_run):
    out = subprocess.run([sys.executable, "-m", "bench.finetune", "--base", str(trained_run.run_dir),
                          "--texts", f"{tiny_corpus}:4000", "--minutes", "0.02"],
                         capture_output=True, text=True, cwd=ROOT, timeout=300, env=os.environ.copy())
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("machine: ") and "base: tiny, lstm 1x64, 60 steps" in out.stdout
    assert re.search(r"^tiny-4k, 0\.02 min: · scratch \d\.\d{4} \(\d+x\d+ d[\d.]+, [\d,]+ steps\) · init \d\.\d{4} "
                     r"\(1x64 d[\d.]+, [\d,]+ steps, starts at \d\.\d{3}\) · gain [+-]\d\.\d{4}$", out.stdout, re.M), \
        out.stdout


def test_auto_texts_prints_the_prediction_and_what_was_reached_at_a_width_given(tmp_path, tiny_corpus):
    text = tmp_path / "longer.txt"
    text.write_text(tiny_corpus.read_text() * 10, encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "bench.auto_texts", "--corpora", str(text), "--minutes", "0.02",
                          "--hidden", "64", "--seeds", "3"],
                         capture_output=True, text=True, cwd=ROOT, timeout=300, env=os.environ.copy())
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("machine: ")
    assert re.search(rf"^{re.escape(str(text))}, 0\.02 min, 64 \(seed 3\): predicted \d\.\d{{3}}, "
                     r"reached \d\.\d{4} \([+-]\d\.\d{3}\) · [\d,]+ steps · 5-gram \d\.\d{3}$", out.stdout, re.M), out.stdout
    assert re.search(r" 2x64 +3 +\d\.\d{3} ", out.stdout.split("off by")[1]), out.stdout     # and in the table


def test_signals_prints_the_exit_times_and_the_training_a_stopped_run_got(tiny_corpus):
    out = subprocess.run([sys.executable, "-m", "bench.signals", "--corpus", str(tiny_corpus), "--shape", "1x32",
                          "--after", "1", "--budget", "5", "--stopped", "3"],
                         capture_output=True, text=True, cwd=ROOT, timeout=300, env=os.environ.copy())
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("machine: ")
    for name in ("SIGTERM", "SIGINT"):
        assert re.search(rf"^  {name}: exit 0 [\d.]+ s after the signal, last/ at step [1-9]\d*$", out.stdout, re.M), out.stdout
    assert re.search(r"^SIGSTOP 3 s in a 5 s run: trained [\d.]+ s \(goal: 5 s within 10 %: [\w ]+\); it said: .*paused 3 s "
                     r"\(not counted\)", out.stdout, re.M), out.stdout


def test_kernel_cache_prints_the_growth_of_both_processes_run_by_run(tiny_corpus):
    out = subprocess.run([sys.executable, "-m", "bench.kernel_cache", "--runs", "5", "--corpus", str(tiny_corpus)],
                         capture_output=True, text=True, cwd=ROOT, timeout=300, env=os.environ.copy())
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("machine: ")
    assert len(re.findall(r"^ +[345] +[+-]\d+\.\d +[+-]\d+\.\d$", out.stdout, re.M)) == 3, out.stdout
    for name in ("default", "bounded"):
        assert re.search(rf"^{name}: [+-]\d+\.\d MB in 2 runs; [+-]\d+\.\d\d MB a run over the last 1$", out.stdout,
                         re.M), out.stdout

