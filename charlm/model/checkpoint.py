"""Checkpoints: a directory of plain formats, written atomically, never unpickled.

    model.safetensors   the model's weights
    config.json         model + training config, corpus, vocab size, metrics, versions
    tokenizer.json      the character vocabulary (tokenizers format)
    resume.safetensors  optimizer moments, RNG states, carried hidden state   } only in
    resume.json         charlm.runs.directory.ResumeState: step, elapsed, data order  } resumable ones

Checkpoints live in run directories (charlm.runs.directory: best/ and last/); wherever a checkpoint
is expected a run directory means its best/.
"""

from __future__ import annotations

import errno
import json
import math
import os
import platform
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

import charlm
from charlm.config import ModelConfig, TrainConfig, param_count, to_dict
from charlm.corpus.vocab import CharVocab
from charlm.errors import UsageError
from charlm.model.network import CharRNN
from charlm.runs.checkpoint_dir import FORMAT, FORMAT_VERSION, read_meta, resolve_checkpoint
from charlm.runs.directory import (CONFIG, RESUME_JSON, RESUME_TENSORS, VOCAB, WEIGHTS, ResumeState, read_resume_json,
                                   swap_in, temp_copy)


@dataclass
class Checkpoint:
    path: Path
    model: CharRNN
    vocab: CharVocab
    model_config: ModelConfig
    train_config: TrainConfig
    meta: dict = field(default_factory=dict)   # the whole config.json

    @property
    def corpus(self) -> dict:
        return self.meta.get("corpus", {})

    @property
    def metrics(self) -> dict:
        return self.meta.get("metrics", {})


def save_checkpoint(path: Path, model: CharRNN, vocab: CharVocab, train_config: TrainConfig, corpus: dict,
                    metrics: dict, resume: tuple[dict[str, torch.Tensor], ResumeState] | None = None) -> Path:
    """Write a checkpoint directory atomically: it is written whole beside `path`, then swapped
    in (charlm.runs.directory.swap_in), so a crash or a full disk mid-save leaves the old one whole."""
    path = Path(path)
    tmp = temp_copy(path)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        weights = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
        _save_tensors(weights, tmp / WEIGHTS)
        vocab.save(tmp / VOCAB)
        meta = {
            "format": FORMAT, "format_version": FORMAT_VERSION,
            "model": to_dict(model.config), "train": to_dict(train_config),
            "corpus": corpus, "vocab_size": len(vocab), "params": model.num_params(),
            "metrics": metrics, "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "versions": {"charlm": charlm.__version__, "torch": torch.__version__, "python": platform.python_version()},
        }
        (tmp / CONFIG).write_text(json.dumps(meta, indent=2))
        if resume is not None:
            tensors, state = resume
            _save_tensors({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}, tmp / RESUME_TENSORS)
            (tmp / RESUME_JSON).write_text(json.dumps(state.to_json(), indent=2))
        _fsync_dir(tmp)
        swap_in(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _save_tensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    """safetensors' save_file, its failed writes (a full disk) raised as the OSError they are."""
    try:
        save_file(tensors, path)
    except SafetensorError as e:
        code = re.search(r"os error (\d+)", str(e))
        code = int(code.group(1)) if code else errno.EIO
        raise OSError(code, os.strerror(code), str(path)) from e


def _fsync_dir(d: Path) -> None:
    for f in d.iterdir():
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> Checkpoint:
    """Rebuild the model from config.json and load its weights; any device to any device."""
    path = resolve_checkpoint(path)
    meta = read_meta(path)
    model_config = ModelConfig.from_dict(meta.get("model", {}))
    vocab = _load_vocab(path)
    model_config.vocab_size = len(vocab)
    mismatch = "the files come from different runs; use a checkpoint as `charlm train` wrote it"
    try:
        model_config.validate()
    except UsageError as e:
        raise UsageError(f"checkpoint {path}: its config.json names no model charlm can build ({e.problem})",
                         mismatch) from None
    try:
        stored = _stored_params(path / WEIGHTS)
        if stored != param_count(model_config):    # checked before allocating (a hand-edited hidden: 10**12)
            raise UsageError(f"checkpoint {path}: weights do not match its config.json and tokenizer.json "
                             f"({param_count(model_config):,} parameters named, model.safetensors holds {stored:,})",
                             mismatch)
        model = CharRNN(model_config)
        model.load_state_dict(load_file(path / WEIGHTS, device="cpu"), strict=True)
    except FileNotFoundError:
        raise UsageError(f"checkpoint {path} has no model.safetensors", "the checkpoint is incomplete; use another one") from None
    except (SafetensorError, OSError) as e:
        raise UsageError(f"checkpoint {path} has a corrupt or truncated model.safetensors ({_short(e)})",
                         "use another checkpoint, e.g. the run's last/") from None
    except RuntimeError as e:
        raise UsageError(f"checkpoint {path}: weights do not match its config.json ({_short(e)})", mismatch) from None
    model.to(device)
    return Checkpoint(path, model, vocab, model_config, TrainConfig.from_dict(meta.get("train", {})), meta)


def _stored_params(weights: Path) -> int:
    """How many numbers a safetensors file holds, read from its header alone."""
    with safe_open(weights, framework="pt") as f:
        return sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())


def load_resume_state(path: Path) -> tuple[dict[str, torch.Tensor], ResumeState]:
    """The resume state of checkpoint `path`: its tensors and `ResumeState`."""
    state = read_resume_json(path)
    try:
        tensors = load_file(path / RESUME_TENSORS, device="cpu")
    except FileNotFoundError:
        raise UsageError(f"{path} holds no resume state", "resume from a run directory written by `charlm train`") from None
    except (SafetensorError, OSError) as e:
        raise UsageError(f"the resume state in {path} is corrupt ({_short(e)})", "start a new run instead") from None
    return tensors, state


def _load_vocab(path: Path) -> CharVocab:
    if not (path / VOCAB).exists():
        raise UsageError(f"checkpoint {path} has no tokenizer.json", "the checkpoint is incomplete; use another one")
    return CharVocab.load(path / VOCAB)


def _short(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:100]
