"""Checkpoints: a directory of safetensors and JSON, written atomically, loaded without pickle,
tolerant of config keys it does not know, and refusing damaged or foreign directories clearly."""

from __future__ import annotations

import ast
import json
import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

import charlm
from charlm.config import ModelConfig, TrainConfig
from charlm.corpus.vocab import CharVocab
from charlm.errors import UsageError
from charlm.model import checkpoint as ckpt_mod
from charlm.model.checkpoint import load_checkpoint, load_resume_state, save_checkpoint
from charlm.model.network import CharRNN
from charlm.runs.checkpoint_dir import resolve_checkpoint

PACKAGE = Path(charlm.__file__).parent


@pytest.fixture
def run(trained_run, tmp_path) -> Path:
    """A private copy of the session's trained run, free to damage."""
    return Path(shutil.copytree(trained_run.run_dir, tmp_path / "run"))


def make_model(hidden=16, seed=0) -> tuple[CharRNN, CharVocab]:
    vocab = CharVocab.from_chars("abc \n")
    torch.manual_seed(seed)
    return CharRNN(ModelConfig(vocab_size=len(vocab), layers=1, hidden=hidden, embed=4)), vocab


def save(path, model, vocab, **kw):
    return save_checkpoint(path, model, vocab, TrainConfig(), {"name": "abc"}, {"step": 1}, **kw)


def test_a_checkpoint_is_safetensors_and_json(trained_run):
    best, last = trained_run.run_dir / "best", trained_run.run_dir / "last"
    assert sorted(p.name for p in best.iterdir()) == ["config.json", "model.safetensors", "tokenizer.json"]
    assert sorted(p.name for p in last.iterdir()) == ["config.json", "model.safetensors", "resume.json",
                                                      "resume.safetensors", "tokenizer.json"]
    meta = json.loads((best / "config.json").read_text())
    assert meta["format"] == "charlm-checkpoint" and meta["format_version"] == 1
    assert meta["model"]["hidden"] == 64 and meta["vocab_size"] == 22 and meta["corpus"]["name"] == "tiny"
    with safe_open(str(best / "model.safetensors"), framework="pt") as f:
        assert set(f.keys()) == set(load_checkpoint(best).model.state_dict())
    json.loads((last / "resume.json").read_text())
    json.loads((best / "tokenizer.json").read_text())


def test_save_and_load_round_trip(tmp_path):
    model, vocab = make_model()
    path = save(tmp_path / "ck", model, vocab)
    ck = load_checkpoint(path)
    assert ck.model_config == model.config
    assert ck.vocab.itos == vocab.itos
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), ck.model.state_dict().values()))
    assert ck.corpus == {"name": "abc"} and ck.metrics == {"step": 1}
    assert ck.train_config == TrainConfig()


def test_no_pickle_in_the_package():
    """No module imports pickle (or its relatives) or calls torch.save / torch.load."""
    banned_modules = {"pickle", "cPickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                offenders += [f"{path.name}: import {a.name}" for a in node.names if a.name.split(".")[0] in banned_modules]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in banned_modules:
                offenders.append(f"{path.name}: from {node.module} import")
            elif isinstance(node, ast.Attribute) and node.attr in ("load", "save") and \
                    isinstance(node.value, ast.Name) and node.value.id == "torch":
                offenders.append(f"{path.name}: torch.{node.attr}")
    assert offenders == []


def test_loading_never_unpickles(run, monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("unpickling")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    assert load_checkpoint(run).model.num_params() > 0
    tensors, state = load_resume_state(run / "last")
    assert "rng.torch" in tensors and state.step == 60
    assert not [p for p in run.rglob("*") if p.suffix in (".pt", ".pth", ".pkl", ".bin", ".ckpt")]


def test_a_crash_mid_save_leaves_the_old_checkpoint_whole(tmp_path, monkeypatch):
    old_model, vocab = make_model(seed=1)
    path = save(tmp_path / "ck", old_model, vocab)
    before = {p.name: p.read_bytes() for p in path.iterdir()}
    seen = []

    def crash(tensors, filename, *a, **k):
        seen.append(Path(filename).parent)
        assert Path(filename).parent.is_dir()             # the temp directory exists
        (Path(filename).parent / "model.safetensors").write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt_mod, "save_file", crash)
    new_model, _ = make_model(seed=2)
    with pytest.raises(OSError, match="disk full"):
        save(tmp_path / "ck", new_model, vocab)
    assert seen and seen[0] != path
    assert {p.name: p.read_bytes() for p in path.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]          # no temp directory left
    loaded = load_checkpoint(path).model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in old_model.state_dict().items())


def test_a_crash_between_the_two_renames_keeps_a_loadable_copy(tmp_path, monkeypatch):
    run = tmp_path / "run"
    old_model, vocab = make_model(seed=1)
    save(run / "best", old_model, vocab)
    real_replace, calls = os.replace, []

    def second_fails(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:
            raise OSError("power cut")
        return real_replace(src, dst)

    monkeypatch.setattr(ckpt_mod.os, "replace", second_fails)
    with pytest.raises(OSError, match="power cut"):
        save(run / "best", make_model(seed=2)[0], vocab)
    monkeypatch.undo()
    assert resolve_checkpoint(run) == run / ".best.old"
    loaded = load_checkpoint(run).model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in old_model.state_dict().items())
    assert not [p for p in run.iterdir() if ".tmp-" in p.name]


def test_saving_over_a_checkpoint_replaces_it(tmp_path):
    model, vocab = make_model(seed=1)
    save(tmp_path / "ck", model, vocab)
    newer, _ = make_model(seed=2)
    save(tmp_path / "ck", newer, vocab)
    loaded = load_checkpoint(tmp_path / "ck").model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in newer.state_dict().items())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]


def test_model_config_tolerates_unknown_and_missing_keys():
    cfg = ModelConfig.from_dict({"cell": "gru", "layers": 3, "attention_heads": 8, "rope": True})
    assert cfg == ModelConfig(cell="gru", layers=3)
    assert ModelConfig.from_dict({}) == ModelConfig()
    assert TrainConfig.from_dict({"lr": 0.5, "scheduler": "linear"}) == TrainConfig(lr=0.5)


def test_a_config_json_from_another_version_still_loads(run):
    cfg = run / "best" / "config.json"
    meta = json.loads(cfg.read_text())
    meta["model"].pop("dropout")                          # older: a key it did not have yet
    meta["model"]["layer_norm"] = False                   # newer: keys we do not know
    meta["tokenizer_kind"] = "char"
    del meta["train"]
    cfg.write_text(json.dumps(meta))
    ck = load_checkpoint(run / "best")
    assert ck.model_config.dropout == 0.0 and ck.model_config.hidden == 64
    assert ck.train_config == TrainConfig()


def test_a_run_directory_means_its_best(run):
    assert resolve_checkpoint(run) == run / "best"
    assert resolve_checkpoint(run / "last") == run / "last"
    assert resolve_checkpoint(run / "best" / "model.safetensors") == run / "best"
    shutil.rmtree(run / "best")
    assert resolve_checkpoint(run) == run / "last"


def _corrupt_config(d):
    (d / "config.json").write_text('{"format": "charlm-checkpoint", "model": {', encoding="utf-8")


def _foreign_config(d):
    (d / "config.json").write_text(json.dumps({"architectures": ["BertModel"], "model_type": "bert"}))


def _newer_format(d):
    meta = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps(meta | {"format_version": 99}))


def _truncated_weights(d):
    data = (d / "model.safetensors").read_bytes()
    (d / "model.safetensors").write_bytes(data[: len(data) // 2])


def _garbage_weights(d):
    (d / "model.safetensors").write_bytes(b"\x00" * 64)


def _wrong_shape(d):
    meta = json.loads((d / "config.json").read_text())
    meta["model"]["hidden"] = 128
    (d / "config.json").write_text(json.dumps(meta))


def _no_tokenizer(d):
    (d / "tokenizer.json").unlink()


def _corrupt_tokenizer(d):
    (d / "tokenizer.json").write_text("not json at all", encoding="utf-8")


def _no_weights(d):
    (d / "model.safetensors").unlink()


def _not_a_checkpoint(d):
    for p in d.iterdir():
        p.unlink()
    (d / "notes.txt").write_text("hello")


@pytest.mark.parametrize("damage, needle", [
    (_corrupt_config, "corrupt config.json"), (_foreign_config, "not a charlm checkpoint"),
    (_newer_format, "newer charlm"), (_truncated_weights, "truncated model.safetensors"),
    (_garbage_weights, "truncated model.safetensors"), (_wrong_shape, "do not match"),
    (_no_tokenizer, "no tokenizer.json"), (_corrupt_tokenizer, "not a valid tokenizer.json"),
    (_no_weights, "no model.safetensors"), (_not_a_checkpoint, "not a charlm checkpoint or run directory"),
])
def test_damaged_checkpoints_are_usage_errors(run, damage, needle):
    damage(run / "best")
    with pytest.raises(UsageError, match=needle):
        load_checkpoint(run / "best")


def test_a_missing_checkpoint_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "nope")
