"""The headless CLI end to end, as a subprocess: train, eval, info, sample, resume, Ctrl-C."""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.signals import signals_delivered
import torch

from charlm.config import TrainConfig
from charlm.corpus.encoded import encode_corpus
from charlm.corpus.files import source_of_path
from charlm.generate.sampler import SampleControls, Sampler
from charlm.model.checkpoint import load_checkpoint, save_checkpoint
from charlm.model.network import CharRNN, param_count
from charlm.runs.metrics import read_metrics
from charlm.train.evaluate import evaluate

from conftest import TINY_TEXT, run_cli, words_in_random_order

FAST = ("--preset", "tiny", "--batch-size", "4", "--seq-len", "16", "--steps", "3", "--eval-every", "2",
        "--device", "cpu", "--precision", "fp32", "--quiet")
# Texts compared with the in-process fp32 Sampler: the step in fp32 whatever auto would pick here.
EXACT = ("--weights", "fp32")
EVAL_KEYS = {"nats_per_char", "bits_per_char", "perplexity", "chars"}


def ok(proc) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    assert "Traceback" not in proc.stderr
    return proc


# -- train -------------------------------------------------------------------------------

def test_train_writes_a_run_directory(trained_run):
    run, out = trained_run.run_dir, trained_run.result.stdout
    assert f"run directory: {run}" in out
    assert re.search(r"done: 60 steps .* best val \d\.\d{4} nats/char", out.replace("\n", " "))
    assert "step 30" in out and "step 60" in out                          # samples as it learns
    assert json.loads((run / "source.json").read_text())["spec"] == str(trained_run.corpus.resolve())
    rows = read_metrics(run / "metrics.jsonl")
    assert [r["step"] for r in rows if "val_loss" in r] == [30, 60]
    meta = json.loads((run / "best" / "config.json").read_text())
    assert meta["train"]["steps"] == 60 and meta["train"]["precision"] == "fp32"
    assert meta["corpus"]["sha256"] == hashlib.sha256(TINY_TEXT.encode()).hexdigest()


def test_train_with_defaults_sizes_the_model_itself_and_says_what_it_chose_and_why(tmp_path, tiny_corpus):
    run = tmp_path / "auto"
    out = ok(run_cli("train", str(tiny_corpus), "--minutes", "0.03", "--layers", "1", "--hidden", "32",
                     "--device", "cpu", "--precision", "fp32", "--out", str(run), "--quiet",
                     env={"COLUMNS": "250"})).stdout
    auto = next(line for line in out.splitlines() if line.startswith("auto:"))
    assert re.search(r"auto: lstm 1x32, (\d+)x64 fp32: ~[\d.]+[kM]? chars/s here, ~[\d,]+ steps, [\d.]+ passes", auto), auto
    assert re.search(r"^  why: predicted val ≈\d\.\d\d nats/char", out, re.M)
    assert re.search(r"^threads: \d thread", out, re.M)
    assert re.search(r"^  (\d\.\d\d nats/char (better than|behind)|level with) a 5-gram of this text", out, re.M)
    meta = json.loads((run / "last" / "config.json").read_text())
    batch = int(re.search(r"(\d+)x64", auto).group(1))
    assert (meta["model"]["hidden"], meta["model"]["layers"], meta["train"]["batch_size"]) == (32, 1, batch)
    assert meta["train"]["seq_len"] == 64 and meta["train"]["minutes"] == 0.03


def test_a_named_preset_is_not_sized(trained_run):
    assert "auto:" not in trained_run.result.stdout


def joined(*parts: str) -> str:
    """Files joined with a blank line between them."""
    out = parts[0]
    for part in parts[1:]:
        out += ("\n" if out.endswith("\n") else "\n\n") + part
    return out


def _directory(tmp):
    d = tmp / "shelf"
    (d / "vol2").mkdir(parents=True)
    a, b, c = TINY_TEXT[:2000] + "and", TINY_TEXT[2000:4000], TINY_TEXT[4000:]
    (d / "a.txt").write_text(a, encoding="utf-8")
    (d / "vol2" / "b.txt").write_bytes(b.replace("\n", "\r\n").encode("utf-8"))
    (d / "z.txt").write_text(c, encoding="utf-8")
    (d / "picture.png").write_bytes(b"\x89PNG\x00\x00")
    return str(d), "shelf", joined(a, b, c)


def _glob_in_latin1(tmp):
    d = tmp / "parts"
    d.mkdir()
    text = TINY_TEXT.replace("cat", "café")
    half = len(text) // 2
    (d / "part1.txt").write_bytes(text[:half].replace("\n", "\r\n").encode("latin-1"))
    (d / "part2.txt").write_bytes(text[half:].encode("latin-1"))
    (d / "skip.md").write_text("not this one\n", encoding="utf-8")
    return str(d / "part*.txt"), "part", joined(text[:half], text[half:])


@pytest.mark.parametrize("make, extra", [(_directory, ()), (_glob_in_latin1, ("--encoding", "latin-1"))],
                         ids=["directory", "glob-latin-1"])
def test_train_on_a_directory_or_a_glob_in_another_encoding(tmp_path, make, extra):
    spec, name, text = make(tmp_path)
    ok(run_cli("train", spec, *extra, *FAST))
    (run,) = (tmp_path / "checkpoints").iterdir()                # default: checkpoints/<name>-<time>
    assert re.fullmatch(re.escape(name) + r"-\d{8}-\d{6}", run.name)
    meta = json.loads((run / "last" / "config.json").read_text())
    assert meta["corpus"]["name"] == name and meta["corpus"]["chars"] == len(text)
    assert meta["corpus"]["sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert load_checkpoint(run).vocab.chars == sorted(set(text))


@pytest.mark.slow
def test_a_run_that_learns_its_text_by_heart_says_where_its_best_was(tmp_path):
    """Validation rising after its best (a small text read many times over) is said at the end,
    with the step best/ keeps."""
    corpus = tmp_path / "words.txt"
    corpus.write_text(words_in_random_order(), encoding="utf-8")
    run = tmp_path / "run"
    out = ok(run_cli("train", str(corpus), "--out", str(run), "--preset", "tiny", "--steps", "150",
                     "--eval-every", "25", "--device", "cpu", "--precision", "fp32", "--seed", "7", "--quiet",
                     env={"COLUMNS": "300"})).stdout
    vals = [(r["step"], r["val_loss"]) for r in read_metrics(run / "metrics.jsonl") if "val_loss" in r]
    best_step, best = min(vals, key=lambda v: v[1])
    assert vals[-1][1] - best >= 0.02 and best_step < 150, f"the text was not learned by heart: {vals}"
    done = next(line for line in out.splitlines() if line.startswith("done:"))
    assert f"after step {best_step} val rose to {vals[-1][1]:.3f}" in done and f"best/ keeps step {best_step}" in done
    assert json.loads((run / "best" / "config.json").read_text())["metrics"]["step"] == best_step


def test_resume_continues_a_run_from_its_own_record(trained_run, tmp_path):
    run = Path(shutil.copytree(trained_run.run_dir, tmp_path / "run"))
    proc = ok(run_cli("train", "--resume", str(run), "--steps", "20", "--eval-every", "10", "--quiet"))   # 20 more
    assert "resuming at step 60" in proc.stdout and "done: 80 steps" in proc.stdout
    assert json.loads((run / "last" / "resume.json").read_text())["step"] == 80
    assert [r["step"] for r in read_metrics(run / "metrics.jsonl") if "val_loss" in r] == [30, 60, 70, 80]
    meta = json.loads((run / "last" / "config.json").read_text())
    assert meta["model"]["hidden"] == 64 and meta["train"]["batch_size"] == 32   # the run's own config


@pytest.mark.slow
def test_ctrl_c_stops_saves_and_exits_cleanly(tmp_path, tiny_corpus):
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "charlm", "train", str(tiny_corpus), "--preset", "tiny",
                             "--batch-size", "8", "--seq-len", "32", "--minutes", "5", "--eval-every", "100000",
                             "--device", "cpu", "--precision", "fp32", "--quiet", "--out", str(run)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=signals_delivered)
    try:
        deadline = time.monotonic() + 60
        while not (run / "metrics.jsonl").exists():          # the first log line: training is under way
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"training never got going: {proc.communicate()}")
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "stopped early; saved" in out
    step = json.loads((run / "last" / "resume.json").read_text())["step"]
    assert step >= 20
    assert load_checkpoint(run).metrics["step"] == step


# -- eval --------------------------------------------------------------------------------

def test_eval_json_on_the_validation_split(trained_run):
    result = json.loads(ok(run_cli("eval", str(trained_run.run_dir), "--json", "--device", "cpu")).stdout)
    assert set(result) == EVAL_KEYS
    nats = result["nats_per_char"]
    assert result["bits_per_char"] == pytest.approx(nats / math.log(2), rel=1e-12)
    assert result["perplexity"] == pytest.approx(math.exp(nats), rel=1e-12)
    # by default one exact stream over the last 10% of the corpus the run recorded
    ck = load_checkpoint(trained_run.run_dir)
    val = encode_corpus(source_of_path(str(trained_run.corpus)), ck.vocab).split(0.1)[1]
    assert result["chars"] == len(val) - 1 == len(TINY_TEXT) - int(len(TINY_TEXT) * 0.9) - 1
    assert nats == pytest.approx(evaluate(ck.model, val, torch.device("cpu"), streams=1).nats_per_char, rel=1e-9)


def test_eval_on_a_text_file_with_an_unknown_character(trained_run, tmp_path):
    text = "The dog sat on the mat; the cat said hello.\n" * 10 + "The cat ate a ☃.\n"
    path = tmp_path / "other.txt"
    path.write_text(text, encoding="utf-8")
    proc = ok(run_cli("eval", str(trained_run.run_dir), str(path), "--json", "--device", "cpu"))
    result = json.loads(proc.stdout)
    assert set(result) == EVAL_KEYS and result["chars"] == len(text) - 1
    ck = load_checkpoint(trained_run.run_dir)
    ids = encode_corpus(source_of_path(str(path)), ck.vocab).ids
    assert result["nats_per_char"] == pytest.approx(
        evaluate(ck.model, ids, torch.device("cpu"), streams=1).nats_per_char, rel=1e-9)
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("charlm: warning: 1 character(s)")


def test_eval_human_readable(trained_run):
    out = ok(run_cli("eval", str(trained_run.run_dir / "best"))).stdout
    assert re.search(r"validation split of tiny: \d\.\d{4} nats/char · \d\.\d{4} bits/char · perplexity", out)


# -- info --------------------------------------------------------------------------------

def test_info_json_and_text(trained_run):
    info = json.loads(ok(run_cli("info", str(trained_run.run_dir), "--json")).stdout)
    meta = json.loads((trained_run.run_dir / "best" / "config.json").read_text())
    assert info["path"] == str(trained_run.run_dir / "best")
    assert (info["cell"], info["layers"], info["hidden"], info["embed"]) == ("lstm", 1, 64, 16)
    assert info["vocab_size"] == 22 and info["corpus"] == "tiny" and info["corpus_chars"] == len(TINY_TEXT)
    assert info["params"] == param_count(load_checkpoint(trained_run.run_dir).model_config) == 22_774
    assert info["steps"] == 60 and info["best_val_loss"] == meta["metrics"]["best_val_loss"]
    assert info["best_val_bpc"] == pytest.approx(info["best_val_loss"] / math.log(2))
    assert info["train"]["steps"] == 60
    text = ok(run_cli("info", str(trained_run.run_dir))).stdout
    for needle in ("lstm 1x64", "22,774", "22 characters", "tiny", "60 steps", "nats/char"):
        assert needle in text


# -- sample ------------------------------------------------------------------------------

@pytest.mark.parametrize("controls", [("--temperature", "0"), ("--temperature", "2", "--top-k", "1", "--seed", "3"),
                                      ("--temperature", "1.5", "--top-p", "1e-9", "--seed", "4")],
                         ids=["temperature-0", "top-k-1", "tiny-top-p"])
def test_sample_greedy_prints_the_prime_and_the_argmax_text(trained_run, controls):
    out = ok(run_cli("sample", str(trained_run.run_dir), "--prime", "The ", *controls, "--length", "80",
                     *EXACT)).stdout
    ck = load_checkpoint(trained_run.run_dir)
    assert out == "The " + Sampler(ck.model, ck.vocab).generate("The ", 80, SampleControls(0.0)) + "\n"


def test_sample_same_seed_same_text(trained_run):
    args = ("sample", str(trained_run.run_dir), "--length", "150", "--temperature", "1.0", "--seed", "3", *EXACT)
    a = ok(run_cli(*args)).stdout
    assert a == ok(run_cli(*args)).stdout and len(a) == 150 + 1
    ck = load_checkpoint(trained_run.run_dir)
    sampler, c = Sampler(ck.model, ck.vocab), SampleControls(1.0)
    assert a == sampler.generate("", 150, c, seed=3) + "\n"
    assert a != sampler.generate("", 150, c, seed=4) + "\n"


def test_sample_num_samples_and_stop(trained_run):
    out = ok(run_cli("sample", str(trained_run.run_dir), "--num-samples", "3", "--prime", "A cat",
                     "--seed", "1", "--length", "200", "--stop", ".")).stdout
    parts = re.split(r"--- sample (\d) ---\n", out)
    assert parts[0] == "" and parts[1::2] == ["1", "2", "3"]
    for body in parts[2::2]:
        assert body.startswith("A cat") and body.endswith(".\n") and body.count(".") == 1


def test_sample_stop_ends_a_single_sample(trained_run):
    ck = load_checkpoint(trained_run.run_dir)
    full = Sampler(ck.model, ck.vocab).generate("The ", 300, SampleControls(0.0))
    out = ok(run_cli("sample", str(trained_run.run_dir), "--prime", "The ", "--temperature", "0",
                     "--length", "300", "--stop", "mat", *EXACT)).stdout
    assert out == "The " + full[:full.index("mat") + 3] + "\n"


def test_sample_prime_file_with_an_unknown_character(trained_run, tmp_path):
    prime = tmp_path / "prime.txt"
    prime.write_bytes("The ☃ sat\r\non the €".encode("utf-8"))
    proc = ok(run_cli("sample", str(trained_run.run_dir), "--prime-file", str(prime), "--no-prime",
                      "--seed", "2", "--length", "60", *EXACT))
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("charlm: warning:") and "2 character(s)" in line and "☃€" in line
    ck = load_checkpoint(trained_run.run_dir)
    expected = Sampler(ck.model, ck.vocab).generate("The ☃ sat\non the €", 60, SampleControls(0.8), seed=2)
    assert proc.stdout == expected + "\n"


def test_sample_from_a_run_directory_uses_best(trained_run, tmp_path):
    run = Path(shutil.copytree(trained_run.run_dir, tmp_path / "run"))
    ck = load_checkpoint(run / "best")
    torch.manual_seed(0)
    untrained = CharRNN(ck.model_config)            # make last/ differ from best/
    save_checkpoint(run / "last", untrained, ck.vocab, TrainConfig(), ck.corpus, {"step": 1})
    out = ok(run_cli("sample", str(run), "--seed", "9", "--length", "100", *EXACT)).stdout
    c = SampleControls(0.8)
    assert out == Sampler(ck.model, ck.vocab).generate("", 100, c, seed=9) + "\n"
    assert out != Sampler(untrained, ck.vocab).generate("", 100, c, seed=9) + "\n"


# What the person typed, and what charlm says before any command has imported torch (~2 s).
ANSWERED_WITHOUT_TORCH = {
    "help": ["--help"],
    "a command's help": ["train", "--help"],
    "a flag out of range": ["sample", "run", "--temperature", "-1"],
    "a mistyped text to train on": ["train", "no-such-text.txt", "--steps", "5"],
    "flags that contradict each other": ["train", "text.txt", "--deterministic", "--minutes", "1"],
    "a mistyped checkpoint": ["sample", "no-such-run"],
    "a mistyped checkpoint to eval": ["eval", "no-such-run"],
    "a folder that holds no run": ["info", "."],
}


@pytest.mark.parametrize("argv", ANSWERED_WITHOUT_TORCH.values(), ids=ANSWERED_WITHOUT_TORCH.keys())
def test_help_and_usage_errors_answer_without_importing_torch(argv, tmp_path):
    """`charlm --help` or a typo answered in a fraction of a second: torch is not imported for them."""
    code = ("import sys\nfrom charlm.cli.main import main\ntry:\n    status = main(sys.argv[1:])\n"
            "except SystemExit as e:\n    status = e.code\nprint('torch' in sys.modules, status, file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=tmp_path,
                          timeout=60)
    imported, status = proc.stderr.strip().splitlines()[-1].split()
    assert status in ("0", "2"), proc.stderr
    assert imported == "False", f"charlm {' '.join(argv)} imported torch: {proc.stderr}"
