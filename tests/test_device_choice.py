"""`--device auto` by measurement (charlm.train.speed.training_device): the accelerator only
where it trains the shape faster than the CPU; one that cannot run it is passed over with a
note. No accelerator here: availability and timings are patched."""

from __future__ import annotations

import pytest
import torch

from charlm import paths
from charlm.config import ModelConfig, TrainConfig
from charlm.train import speed


@pytest.fixture
def machine(monkeypatch):
    """A machine with a CUDA GPU whose rates (chars/s) the test sets; the devices timed, in order."""
    rates, timed = {}, []

    def pick(name="auto"):
        return torch.device("cuda" if name in ("auto", "cuda") else name)

    def rate(m, t, precision, cancel=None):
        timed.append(t.device)
        found = rates[t.device]
        if isinstance(found, BaseException):
            raise found
        return found

    monkeypatch.setattr(speed, "pick_device", pick)
    monkeypatch.setattr(speed, "speed", rate)
    monkeypatch.setattr(speed, "pick_precision", lambda name, device, m=None, t=None: "fp32")
    return rates, timed


SHAPE, AUTO = ModelConfig(vocab_size=65, layers=2, hidden=128), TrainConfig(device="auto")


def test_the_gpu_when_it_trains_the_shape_faster(machine):
    rates, timed = machine
    rates.update(cuda=90_000.0, cpu=40_000.0)
    assert speed.training_device(SHAPE, AUTO).type == "cuda" and timed == ["cuda", "cpu"]


def test_the_cpu_when_it_is_faster_than_the_gpu(machine):
    rates, _ = machine
    rates.update(cuda=20_000.0, cpu=40_000.0)
    assert speed.training_device(SHAPE, AUTO).type == "cpu"


def test_a_gpu_that_cannot_run_the_model_is_passed_over_with_one_note(machine, monkeypatch):
    rates, _ = machine
    notes = []
    monkeypatch.setattr(paths, "say_note", notes.append)
    rates.update(cuda=NotImplementedError("The operator 'aten::_thnn_fused_lstm_cell' is not implemented\nmore"),
                 cpu=40_000.0)
    assert speed.training_device(SHAPE, AUTO).type == "cpu"
    assert len(notes) == 1 and "aten::_thnn_fused_lstm_cell" in notes[0] and "CPU" in notes[0]


def test_a_named_device_is_not_timed(machine):
    _, timed = machine
    assert speed.training_device(SHAPE, TrainConfig(device="cpu")).type == "cpu" and timed == []


def test_without_an_accelerator_nothing_is_timed(monkeypatch):
    monkeypatch.setattr(speed, "speed", lambda *a, **k: pytest.fail("timed on a CPU-only machine"))
    monkeypatch.setattr(speed, "pick_device", lambda name="auto": torch.device("cpu"))
    assert speed.training_device(SHAPE, AUTO).type == "cpu"


def test_the_trainer_trains_where_training_device_says(tiny_corpus, tmp_path, monkeypatch):
    """Wired in: the one-process trainer asks training_device (here answering the CPU)."""
    from charlm.corpus.encoded import encode_corpus
    from charlm.corpus.files import source_of_path
    from charlm.train import trainer as trainer_module
    asked = []
    monkeypatch.setattr(trainer_module, "training_device", lambda m, t: asked.append(t.device) or torch.device("cpu"))
    corpus = encode_corpus(source_of_path(str(tiny_corpus)))
    t = trainer_module.Trainer(corpus, ModelConfig(layers=1, hidden=16, embed=8),
                               TrainConfig(steps=2, batch_size=4, seq_len=16, device="auto", precision="fp32"),
                               tmp_path / "run")
    assert asked == ["auto"] and t.device.type == "cpu"


def test_seed_all_seeds_as_manual_seed_does_without_formatting_the_stack(monkeypatch):
    """Where no accelerator is present torch.manual_seed formats the whole stack three times a call
    (and keeps every frame's source file in linecache); seed_all seeds the same stream without it."""
    import traceback

    from charlm.machine.device import accelerator_present, seed_all
    seed_all(123)
    ours = torch.rand(5)
    torch.manual_seed(123)
    assert torch.equal(ours, torch.rand(5))
    formatted = []
    monkeypatch.setattr(traceback, "format_stack", lambda *a, **k: formatted.append(1) or [])
    seed_all(7)
    if accelerator_present():
        return                                # with a GPU, torch.manual_seed's own path is the right one
    assert formatted == []
    torch.manual_seed(7)
    assert formatted, "torch.manual_seed no longer formats the stack: seed_all can go back to it"
