"""Is my loss good? References on the same split and a plain-language reading, in the CLI."""

from __future__ import annotations

import json

import torch

from charlm.analysis import references as R
from charlm.config import ModelConfig, TrainConfig
from charlm.corpus.vocab import CharVocab
from charlm.model.checkpoint import save_checkpoint
from charlm.model.network import CharRNN

from conftest import run_cli

SHAKESPEARE = R.TINYSHAKESPEARE_SHA256


def test_tinyshakespeare_has_nanogpts_published_figure_and_other_texts_none():
    assert [r.nats_per_char for r in R.references(SHAKESPEARE)] == [1.4697]
    assert R.references("0" * 64) == [] and R.references(None) == []


def test_the_catalogs_shakespeare_is_the_one_recognised():
    from charlm.corpus.catalog import find_entry
    assert find_entry("shakespeare").sha256 == SHAKESPEARE


def test_figures_a_benchmark_measured_here_are_shown_beside_the_published_one():
    R.record(SHAKESPEARE, "plain nn.LSTM loop, 5 min here", 1.61234, "bench/quality.py on this machine")
    refs = R.references(SHAKESPEARE)
    assert [(r.label, r.nats_per_char) for r in refs][1:] == [("plain nn.LSTM loop, 5 min here", 1.6123)]
    lines = R.verdict(1.50, SHAKESPEARE)
    assert lines[0].startswith("behind nanoGPT") and "(+0.030" in lines[0]
    assert lines[1].startswith("better than plain nn.LSTM loop, 5 min here: 1.6123 (-0.112")
    assert lines[-1].startswith("reads like: ")


def test_the_reading_moves_from_noise_to_verse_as_the_loss_falls():
    losses = [4.0, 3.0, 2.5, 2.2, 1.9, 1.6, 1.5, 1.4, 1.3]
    readings = [R.reading(x) for x in losses]
    order = [text for _, text in R.READINGS]
    assert [order.index(r) for r in readings] == sorted(order.index(r) for r in readings)
    assert len(set(readings)) == len(R.READINGS)
    assert "no words" in R.reading(3.5) and "pastiche" in R.reading(1.40)


def test_info_compares_a_tinyshakespeare_run_and_says_what_its_loss_reads_like(tmp_path):
    vocab = CharVocab.from_chars("abc \n")
    torch.manual_seed(0)
    model = CharRNN(ModelConfig(vocab_size=len(vocab), layers=1, hidden=8, embed=4))
    ckpt = save_checkpoint(tmp_path / "run" / "best", model, vocab, TrainConfig(), {"name": "tinyshakespeare", "sha256": SHAKESPEARE},
                           {"step": 10, "best_val_loss": 1.48})
    out = run_cli("info", str(ckpt), env={"COLUMNS": "250"})
    assert out.returncode == 0, out.stderr
    assert "behind nanoGPT's baby GPT" in out.stdout and "1.4697 (+0.010" in out.stdout
    assert f"reads like  {R.reading(1.48)}" in " ".join(out.stdout.split()).replace("reads like ", "reads like  ")
    info = json.loads(run_cli("info", str(ckpt), "--json").stdout)
    assert info["references"][0]["nats_per_char"] == 1.4697 and info["reading"] == R.reading(1.48)
