"""Training speed per model shape on this machine: measured by real runs, or estimated.

A run's steady chars/s is recorded under its shape ("measured"). A shape never trained here
is timed for a few steps when the app is idle ("quick"). Until then the time of a step is
estimated ("estimated") as

    seconds/step = T * layers * c  +  B * T * w * weights

the first term the recurrence's sequential cost (T time steps through each layer, whatever the
batch), the second the arithmetic (about 6 FLOPs per weight and character). c and w are fitted
once per machine by timing a few steps of two small models. Kept in $CHARLM_CACHE/speeds.json
(no textual here).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from charlm.config import ModelConfig, TrainConfig
from charlm.device import autocast, pick_device, pick_precision
from charlm.model import CharRNN, param_count

# Two shapes far apart in arithmetic per step: one dominated by the recurrence, one by matmuls.
CALIBRATION = ((ModelConfig(vocab_size=96, layers=1, hidden=32, embed=8), 8, 64),
               (ModelConfig(vocab_size=96, layers=2, hidden=256, embed=32), 64, 128))


class Cancelled(Exception):
    """Calibration gave way (a run started: it would only measure the two competing)."""


def speeds_path() -> Path:
    return Path(os.environ.get("CHARLM_CACHE") or Path.home() / ".cache" / "charlm") / "speeds.json"


# Bumped when charlm's own training speed changes (2: the allocator setting, ~1.5x), so figures
# cached by an older version are measured again rather than shown as "tested".
SPEED_REVISION = 2


def _machine() -> str:
    return f"{pick_device('auto').type}-{torch.get_num_threads()}t-torch{torch.__version__}-r{SPEED_REVISION}"


def shape_key(m: ModelConfig, t: TrainConfig) -> str:
    return f"{m.cell}:{m.layers}x{m.hidden}:e{m.embed}:b{t.batch_size}x{t.seq_len}:{t.device}:{t.precision}"


def load() -> dict:
    try:
        data = json.loads(speeds_path().read_text())
    except (OSError, ValueError):
        return {}
    return data.get(_machine(), {}) if isinstance(data, dict) else {}


def _save(entry: dict) -> None:
    path = speeds_path()
    try:
        data = json.loads(path.read_text())
        data = data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        data = {}
    data[_machine()] = entry
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def record(m: ModelConfig, t: TrainConfig, chars_per_sec: float) -> None:
    """Remember what a real run of this shape did."""
    if chars_per_sec > 0:
        entry = load()
        entry.setdefault("measured", {})[shape_key(m, t)] = round(chars_per_sec)
        _save(entry)


def work_per_char(m: ModelConfig) -> int:
    """Weights touched per character, embedding excluded (a lookup, not a matmul)."""
    return max(param_count(m) - m.vocab_size * m.embed, 1)


def estimate(m: ModelConfig, t: TrainConfig) -> tuple[float | None, str]:
    """(chars/s, how it was had: "measured" by a run, a "quick" test, or "estimated");
    (None, "") before calibration."""
    entry, key = load(), shape_key(m, t)
    for kind in ("measured", "quick"):
        value = entry.get(kind, {}).get(key)
        if value:
            return float(value), kind
    fit = entry.get("fit")
    if not fit:
        return None, ""
    seconds = t.seq_len * m.layers * fit["c"] + t.batch_size * t.seq_len * work_per_char(m) * fit["w"]
    return t.batch_size * t.seq_len / seconds, "estimated"


def quick_measure(m: ModelConfig, t: TrainConfig, cancel=None, steps: int = 3) -> float:
    """Time a few steps of this very shape (random data) and remember the chars/s."""
    cfg = ModelConfig(**{**vars(m), "vocab_size": max(m.vocab_size, 2)})
    cps = t.batch_size * t.seq_len / _time_steps(cfg, t.batch_size, t.seq_len, steps, cancel)
    entry = load()
    entry.setdefault("quick", {})[shape_key(m, t)] = round(cps)
    _save(entry)
    return cps


def calibrated() -> bool:
    return bool(load().get("fit"))


def _time_steps(cfg: ModelConfig, batch: int, seq: int, steps: int, cancel=None) -> float:
    """The fastest of `steps` training steps (after two warm-ups): on a shared machine the
    slower ones measure the neighbours."""
    device = pick_device("auto")
    precision = pick_precision("auto", device)
    model = CharRNN(ModelConfig(**vars(cfg))).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randint(1, cfg.vocab_size, (batch, seq + 1), device=device)
    best = float("inf")
    for i in range(steps + 2):
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        t0 = time.perf_counter()
        with autocast(device, precision):
            logits, _ = model(x[:, :-1])
        loss = F.cross_entropy(logits.float().flatten(0, 1), x[:, 1:].flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= 2:
            best = min(best, time.perf_counter() - t0)
    return best


def calibrate(steps: int = 3, cancel=None) -> dict:
    """Fit c and w (see the module doc) from two timed shapes; store and return them.
    `cancel` (a threading.Event) stops it between steps, raising Cancelled."""
    _time_steps(*CALIBRATION[1], steps=1, cancel=cancel)   # a process's first steps are slow, whatever the shape
    rows = [(seq * cfg.layers, batch * seq * work_per_char(cfg), _time_steps(cfg, batch, seq, steps, cancel))
            for cfg, batch, seq in CALIBRATION]
    (a1, b1, y1), (a2, b2, y2) = rows
    det = a1 * b2 - a2 * b1
    c, w = (y1 * b2 - y2 * b1) / det, (a1 * y2 - a2 * y1) / det
    if c < 0 or w <= 0:                  # noise beat the fit: all cost in the arithmetic term
        c, w = 0.0, y2 / b2
    fit = {"c": c, "w": w}
    entry = load()
    entry["fit"] = fit
    _save(entry)
    return fit
