"""charlm probe: per-character probabilities that sum to 1, from the model's own forward pass,
whose mean surprise is `charlm eval`'s figure to the last digit."""

from __future__ import annotations

import json
import math
import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from charlm.analysis.probe import probe
from charlm.cancel import Cancelled
from charlm.model.checkpoint import load_checkpoint
from charlm.train.evaluate import evaluate

from conftest import TINY_TEXT, run_cli

# Longer than one evaluation chunk (512), so the state carried across chunks is part of the check.
TEXT = TINY_TEXT[:1500] + "Zebras é\n"


@pytest.fixture(scope="module")
def ckpt(trained_run):
    return load_checkpoint(trained_run.run_dir)


def test_every_position_is_a_distribution_over_the_vocabulary_from_one_forward_pass(ckpt):
    V = len(ckpt.vocab)
    result = probe(ckpt.model, ckpt.vocab, TEXT, top_k=V)
    ids = ckpt.vocab.encode_array(TEXT)
    assert math.isnan(result.probs[0]) and result.top(0) == []
    np.testing.assert_allclose(result.top_probs[1:].sum(1), 1.0, atol=1e-9)       # the whole distribution
    assert (np.diff(result.top_probs[1:], axis=1) <= 0).all()                      # likeliest first
    # the probability of each character is its entry in that distribution...
    picked = np.take_along_axis(result.top_probs, np.argsort(result.top_ids, 1), 1)[np.arange(len(ids)), ids]
    np.testing.assert_allclose(result.probs[1:], picked[1:], rtol=1e-12)
    # ...and what the model computes reading the whole text at once from a zero state
    with torch.no_grad():
        logits, _ = ckpt.model.eval()(torch.from_numpy(ids)[None])
    direct = F.softmax(logits[0, :-1].double(), -1).gather(1, torch.from_numpy(ids[1:])[:, None])[:, 0]
    np.testing.assert_allclose(result.probs[1:], direct.numpy(), rtol=1e-5)


def test_nats_per_char_is_evals_figure(ckpt):
    result = probe(ckpt.model, ckpt.vocab, TEXT, top_k=3)
    ids = ckpt.vocab.encode_array(TEXT)
    assert result.nats_per_char == evaluate(ckpt.model, ids, torch.device("cpu"), streams=1).nats_per_char
    assert result.nats_per_char == pytest.approx(-np.log(result.probs[1:]).mean(), rel=1e-6)
    assert result.bits_per_char == pytest.approx(result.nats_per_char / math.log(2))
    assert result.top_ids.shape == (len(TEXT), 3)


def test_progress_counts_characters_and_cancel_stops(ckpt):
    seen = []
    probe(ckpt.model, ckpt.vocab, TEXT, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(513, len(TEXT)), (1025, len(TEXT)), (len(TEXT), len(TEXT))]   # chunks of 512 predictions
    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled):
        probe(ckpt.model, ckpt.vocab, TEXT, cancel=stop)


def test_cli_json_agrees_with_eval_on_the_same_file(trained_run, tmp_path):
    path = tmp_path / "text.txt"
    path.write_text(TEXT, encoding="utf-8")
    proc = run_cli("probe", str(trained_run.run_dir), "--text-file", str(path), "--top-k", "4", "--json")
    assert proc.returncode == 0, proc.stderr
    assert "3 character(s)" in proc.stderr and "not in the model's vocabulary" in proc.stderr   # Z, b, é
    out = json.loads(proc.stdout)
    ev = json.loads(run_cli("eval", str(trained_run.run_dir), str(path), "--json").stdout)
    assert out["nats_per_char"] == ev["nats_per_char"]
    assert out["bits_per_char"] == ev["bits_per_char"]
    chars = out["chars"]
    assert "".join(c["char"] for c in chars) == TEXT
    assert chars[0] == {"char": TEXT[0], "prob": None, "top": []}
    assert all(len(c["top"]) == 4 and 0 < c["prob"] <= 1 for c in chars[1:])
    assert [c for c, _ in chars[-1]["top"]] and chars[-1]["top"][0][1] >= chars[-1]["top"][-1][1]
    mean = -sum(math.log(c["prob"]) for c in chars[1:]) / (len(chars) - 1)
    assert mean == pytest.approx(out["nats_per_char"], rel=1e-6)


def test_cli_colours_the_text_with_a_legend(trained_run):
    text = "The cat sat.\nThe dog ran."
    proc = run_cli("probe", str(trained_run.run_dir), "--text", text, env={"FORCE_COLOR": "1", "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "\x1b[" in out                                         # coloured
    plain = __import__("re").sub(r"\x1b\[[0-9;]*m", "", out)
    assert plain.startswith("The cat sat.↵\nThe dog ran.")        # newlines shown, kept
    assert "surprise, bits (-log2 p):" in plain and ">= 8" in plain
    result = probe(load_checkpoint(trained_run.run_dir).model, load_checkpoint(trained_run.run_dir).vocab, text)
    assert f"--text: {result.nats_per_char:.4f} nats/char · {result.bits_per_char:.4f} bits/char" in plain
    assert "most surprising:" in plain
