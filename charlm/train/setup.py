"""A run's set-up from its configs, before its first step: the threads it computes with, the
text as training streams and a validation sample, the precision, and the network."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from charlm.config import ModelConfig, TrainConfig
from charlm.corpus.encoded import EncodedCorpus, validation_sample
from charlm.errors import UsageError
from charlm.machine.device import seed_all
from charlm.machine.threads import ThreadGovernor, usable_cores
from charlm.model.network import CharRNN
from charlm.train.batches import StreamBatches
from charlm.train.distributed import Team
from charlm.train.speed import pick_precision


def thread_governor(cfg: TrainConfig, team: Team) -> ThreadGovernor:
    if cfg.deterministic:
        # CPU kernels split their sums by thread: the count is fixed, and recorded with the run
        # (the config is saved), so a resumed run computes alike.
        cfg.threads = cfg.threads or ThreadGovernor().fixed or max(1, int(usable_cores()))
    return ThreadGovernor(cfg.threads or team.threads())


@dataclass
class TrainingData:
    batches: StreamBatches     # this rank's streams of the training split
    val_ids: np.ndarray        # the validation split (the last val_fraction)
    val_sample: np.ndarray     # bounded: the same windows at every validation
    streams: slice             # which of the batch's streams are this rank's (all on one process)


def training_data(corpus: EncodedCorpus, cfg: TrainConfig, team: Team) -> TrainingData:
    train_ids, val_ids = corpus.split(cfg.val_fraction)
    if len(val_ids) < 2:
        raise UsageError(f"the validation split of {corpus.name} is empty", "use a longer text or a larger --val-fraction")
    streams = team.streams(cfg.batch_size)
    return TrainingData(StreamBatches(train_ids, cfg.batch_size, cfg.seq_len, streams), val_ids,
                        validation_sample(val_ids), streams)


def training_precision(model_config: ModelConfig, cfg: TrainConfig, device: torch.device, team: Team) -> str:
    """fp32 for a deterministic run; else what --precision says, auto settled once for all ranks."""
    if cfg.deterministic:
        return "fp32"
    return team.decide(lambda: pick_precision(cfg.precision, device, model_config, cfg))


def new_model(model_config: ModelConfig, cfg: TrainConfig, device: torch.device, team: Team,
              init_weights: dict[str, torch.Tensor] | None = None) -> CharRNN:
    """The network from the seed (or from `init_weights`), on `device`; then each rank's own
    random stream for its dropout masks."""
    seed_all(cfg.seed)
    model = CharRNN(model_config)
    if init_weights is not None:
        model.load_state_dict(init_weights)
    model.to(device)
    if not team.solo:
        seed_all(cfg.seed * 1_000_003 + team.rank)   # each rank its own dropout masks
    return model
