"""Starting a run from another run (`charlm train TEXT --init RUN`): the weights carried over a
grown vocabulary, the run from the command line end to end, and the tip that suggests a start."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import replace

import pytest
import torch

from charlm.config import ModelConfig
from charlm.corpus.encoded import encode_text
from charlm.corpus.vocab import UNK_ID, CharVocab
from charlm.errors import UsageError
from charlm.model.network import CharRNN
from charlm.runs.listing import list_runs
from charlm.train.finetune import (carried_weights, check_shape, grown_vocab, new_characters, predicted_gain,
                                   suggest_start)

from conftest import TINY_TEXT, run_cli

# The tiny text with characters the parent never saw: a guillemet that closes every sentence,
# an accent and a dash.
NEW_TEXT = TINY_TEXT.replace(".", " »").replace("The", "Thé").replace(";", " —")


def test_carried_weights_keep_every_prediction_and_new_characters_start_as_unk():
    torch.manual_seed(0)
    old = CharVocab.from_chars("abc \n")
    parent = CharRNN(ModelConfig(vocab_size=len(old), layers=1, hidden=16, embed=4)).eval()
    new = grown_vocab(old, "b Axz")                   # "A" sorts before every old letter: ids shift
    assert new_characters(old, new) == ["A", "x", "z"]
    child = CharRNN(ModelConfig(vocab_size=len(new), layers=1, hidden=16, embed=4)).eval()
    child.load_state_dict(carried_weights(parent.state_dict(), old, new))
    text = "abc cab\nba"
    with torch.no_grad():
        p, _ = parent(torch.tensor([old.encode(text)]))
        c, _ = child(torch.tensor([new.encode(text)]))
    for ch in old.chars:
        torch.testing.assert_close(c[..., new.stoi[ch]], p[..., old.stoi[ch]])
    for ch in "Axz":
        torch.testing.assert_close(c[..., new.stoi[ch]], p[..., UNK_ID])
    torch.testing.assert_close(c[..., UNK_ID], p[..., UNK_ID])


def test_a_contradicting_shape_names_both():
    parent = ModelConfig(cell="lstm", layers=2, hidden=256, embed=32)
    check_shape(parent, {"cell": "lstm", "hidden": 256, "dropout": 0.3})      # agreeing flags are fine
    with pytest.raises(UsageError) as e:
        check_shape(parent, {"cell": "gru", "layers": None}, "--init base")
    assert "--init base is lstm 2x256 (embed 32), but --cell gru asks for gru 2x256 (embed 32)" in e.value.problem


def test_predicted_gain_falls_with_the_size_of_the_text():
    gains = [predicted_gain(n) for n in (5_000, 20_000, 100_000, 300_000, 2_000_000)]
    assert gains == sorted(gains, reverse=True) and gains[0] > 0.3 and gains[-1] == 0.0


@pytest.fixture
def child_run(trained_run, tmp_path):
    text = tmp_path / "new.txt"
    text.write_text(NEW_TEXT, encoding="utf-8")
    out = tmp_path / "child"
    r = run_cli("train", str(text), "--init", str(trained_run.run_dir), "--steps", "80", "--out", str(out),
                "--device", "cpu", "--precision", "fp32", "--eval-every", "40", "--seed", "3", env={"COLUMNS": "250"})
    assert r.returncode == 0, r.stdout + r.stderr
    return out, text, r


def _not_json(constant: str):
    raise AssertionError(f"metrics.jsonl holds {constant}, which strict JSON readers refuse")


def test_init_from_a_run_grows_its_vocabulary_and_records_where_it_started(child_run, trained_run):
    out, text, r = child_run
    assert f"init: from {trained_run.run_dir.name} (lstm 1x64 (embed 16)" in r.stdout
    assert "3 new characters (»é—) start as unlikely as <unk>" in r.stdout
    parent_vocab = CharVocab.load(trained_run.run_dir / "best" / "tokenizer.json")
    vocab = CharVocab.load(out / "best" / "tokenizer.json")
    assert set(vocab.chars) == set(parent_vocab.chars) | set(NEW_TEXT)    # nothing the parent knew is lost
    rows = [json.loads(line, parse_constant=_not_json) for line in (out / "metrics.jsonl").read_text().splitlines()]
    val = [row for row in rows if "val_loss" in row]
    assert val[0]["step"] == 0 and val[-1]["val_loss"] < val[0]["val_loss"]     # the curve starts at the start
    init = json.loads((out / "source.json").read_text())["init"]
    assert init["run"] == str(trained_run.run_dir.resolve()) and init["step"] == 60 and init["corpus"] == "tiny"
    info = json.loads(run_cli("info", str(out), "--json").stdout)
    assert info["init"]["name"] == trained_run.run_dir.name
    assert f"started from  {trained_run.run_dir.name}" in run_cli("info", str(out), env={"COLUMNS": "250"}).stdout


def test_a_fine_tuned_model_writes_its_new_characters_and_still_reads_the_parents_text(child_run, trained_run):
    out, text, _ = child_run
    sample = run_cli("sample", str(out), "--length", "400", "--seed", "1", "--temperature", "1")
    assert sample.returncode == 0 and "»" in sample.stdout
    own = json.loads(run_cli("eval", str(out), "--json").stdout)
    parents_text = json.loads(run_cli("eval", str(out), str(trained_run.corpus), "--json").stdout)
    assert own["nats_per_char"] < 2.5 and parents_text["chars"] > 1000 and parents_text["nats_per_char"] < 3.0


def test_the_fine_tune_resumes_with_its_grown_vocabulary(child_run, tmp_path):
    out, _, _ = child_run
    again = tmp_path / "again"
    shutil.copytree(out, again)
    def step() -> int:
        return json.loads((again / "last" / "config.json").read_text())["metrics"]["step"]

    before = step()
    r = run_cli("train", "--resume", str(again), "--steps", "30", "--device", "cpu")     # 30 more
    assert r.returncode == 0, r.stdout + r.stderr
    assert step() == before + 30
    # A budget in minutes alone drops the steps it had (a capped fine-tune's included).
    r = run_cli("train", "--resume", str(again), "--minutes", "0.02", "--device", "cpu")
    assert r.returncode == 0, r.stdout + r.stderr
    assert step() > before + 30


def test_a_small_text_gets_a_tip_naming_a_run_that_knows_its_characters(trained_run, tmp_path, monkeypatch):
    root = tmp_path / "checkpoints"
    shutil.copytree(trained_run.run_dir, root / "base")
    small = encode_text("small", TINY_TEXT[:3000])
    found = suggest_start(small, 2700, root)
    assert found is not None and found.run.name == "base" and found.coverage == 1.0
    assert found.gain == pytest.approx(predicted_gain(2700))
    assert f"base (lstm 1x64, trained on tiny, {len(TINY_TEXT):,} chars) knows 100.0% of its characters" in found.describe()
    greek = encode_text("greek", "αβγ δεζ ηθι. " * 300)
    assert suggest_start(greek, 3500, root) is None                  # knows too few of its characters
    assert suggest_start(encode_text("tiny", TINY_TEXT), 6000, root) is None   # the run's own text
    assert [r.name for r in list_runs(root)] == ["base"]


def test_a_fine_tune_stops_after_its_passes_at_a_quarter_of_the_rate():
    from charlm.config import TrainConfig
    from charlm.train.autosize import AutoChoice, Budget, Shape, option
    from charlm.train.finetune import RECIPE, finetune_configs
    parent = ModelConfig(vocab_size=80, layers=2, hidden=256, embed=32, dropout=0.0)
    budget = TrainConfig(minutes=1.0)
    choice = AutoChoice(option(Shape(256), "fp32", {64: 30_000.0}, Budget.of(budget), 18_000), (), 18_000)
    assert choice.chosen.passes > 50                                   # what a minute would read
    _, train = choice.configs(80, budget)
    model, tuned = finetune_configs(parent, choice, train)
    assert tuned.steps == math.ceil(RECIPE.passes * 18_000 / (32 * 64)) and tuned.minutes == 1.0
    assert tuned.lr == pytest.approx(Shape(256).lr() * RECIPE.lr_scale) and tuned.warmup == RECIPE.warmup
    assert (model.hidden, model.embed, model.dropout) == (256, 32, 0.2)    # the dropout of 10 passes
    assert tuned.eval_every == max(10, tuned.steps // RECIPE.validations) < train.eval_every   # a curve, not 1 point
    _, asked = finetune_configs(parent, choice, replace(train, steps=5000, minutes=None), cap_steps=False)
    assert asked.steps == 5000                                          # a person's --steps is kept
    _, small = finetune_configs(parent, choice, replace(train, batch_size=8))
    assert small.steps == math.ceil(RECIPE.passes * 18_000 / (8 * 64))  # passes counted at the batch it trains with


def test_the_cli_says_once_which_run_would_help_or_how_to_make_one(trained_run, tmp_path):
    small = tmp_path / "small.txt"
    small.write_text(TINY_TEXT[:3000], encoding="utf-8")
    env = {"COLUMNS": "250", "CHARLM_CHECKPOINTS": str(tmp_path / "checkpoints")}
    alone = run_cli("train", str(small), "--preset", "tiny", "--steps", "3", "--out", str(tmp_path / "a"), env=env)
    assert alone.returncode == 0, alone.stderr
    assert alone.stdout.count("tip: ") == 1 and "charlm train english --minutes 30 --out checkpoints/base-english" in alone.stdout
    shutil.copytree(trained_run.run_dir, tmp_path / "checkpoints" / "base")
    helped = run_cli("train", str(small), "--preset", "tiny", "--steps", "3", "--out", str(tmp_path / "b"), env=env)
    assert helped.stdout.count("tip: ") == 1 and "base (lstm 1x64, trained on tiny" in helped.stdout
    assert f"charlm train {small} --init {tmp_path / 'checkpoints' / 'base'}" in helped.stdout
    started = run_cli("train", str(small), "--init", str(tmp_path / "checkpoints" / "base"), "--steps", "3",
                      "--out", str(tmp_path / "c"), env=env)
    assert started.returncode == 0 and "tip: " not in started.stdout


@pytest.mark.parametrize("case", ["missing", "corrupt", "other-cell", "with-resume"])
def test_a_bad_init_writes_nothing(case, trained_run, tmp_path):
    text = tmp_path / "t.txt"
    text.write_text(TINY_TEXT, encoding="utf-8")
    parent = tmp_path / "parent"
    shutil.copytree(trained_run.run_dir, parent)
    args = {"missing": ["--init", str(tmp_path / "nope")],
            "corrupt": ["--init", str(parent)],
            "other-cell": ["--init", str(parent), "--cell", "rnn"],
            "with-resume": ["--init", str(parent), "--resume", str(parent)]}[case]
    if case == "corrupt":
        (parent / "best" / "config.json").write_text("{")
    out = tmp_path / "out"
    r = run_cli("train", str(text), *args, "--steps", "5", "--out", str(out))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert "--init" in r.stderr
    assert not out.exists() and not (tmp_path / "checkpoints").exists()


def test_a_budget_in_minutes_keeps_a_fine_tunes_cap_of_passes():
    """`--init RUN --minutes M`: the flags are applied again after the fine-tune's cap of passes
    (in steps) was set, and minutes alone must not lift it."""
    import argparse

    from charlm.cli.train_cmd import TRAIN_FLAGS, _apply_train_flags
    from charlm.config import TrainConfig
    args = argparse.Namespace(**{name: None for name in TRAIN_FLAGS})
    args.minutes = 5.0
    capped = TrainConfig(steps=880)
    _apply_train_flags(args, capped)
    assert (capped.steps, capped.minutes) == (880, 5.0)
