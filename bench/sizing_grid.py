"""The runs behind charlm.train.autosize.QUALITY: each shape trained with its auto recipe for a fixed
number of characters on tinyshakespeare, its final validation loss recorded.

Quality at a fixed number of steps does not depend on the machine (only how long it takes
does; fp32 and bf16 agree to 0.001), so these runs, made on any CPU, size models for every CPU.
A row per run is appended to bench/sizing_runs.jsonl, with the recipe and the machine. Rows
with "recipe": false are the runs that chose the recipe (other batch sizes, rates, dropouts).

    python -m bench.sizing_grid HIDDEN:CHARS [HIDDEN:CHARS ...]    e.g. 384:8e6 512:16e6
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from bench.machine import describe
from charlm.config import TrainConfig
from charlm.corpus.encoded import encode_corpus
from charlm.corpus.names import resolve_corpus
from charlm.train.autosize import SEQ_LEN, Shape, batch_size_for, dropout_for
from charlm.train.trainer import Trainer

RUNS = Path(__file__).with_name("sizing_runs.jsonl")


def recipe(hidden: int, chars: float, train_chars: int):
    """The model and training configs auto gives `hidden` for a budget of `chars` characters."""
    shape = Shape(hidden)
    batch = batch_size_for(chars / (64 * SEQ_LEN))
    steps = max(1, int(chars // (batch * SEQ_LEN)))
    model = shape.model_config(0, dropout_for(chars / train_chars, hidden))
    train = TrainConfig(batch_size=batch, seq_len=SEQ_LEN, lr=shape.lr(), steps=steps, minutes=None,
                        eval_every=max(500, steps // 4), precision="auto")
    return model, train


def run(hidden: int, chars: float, corpus) -> dict:
    train_chars = len(corpus.split(0.1)[0])
    model, train = recipe(hidden, chars, train_chars)
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(corpus, model, train, Path(tmp) / "run")
        result = trainer.run()
    return {"hidden": hidden, "layers": model.layers, "embed": model.embed, "dropout": model.dropout,
            "chars": result.steps * train.batch_size * train.seq_len, "steps": result.steps,
            "batch_size": train.batch_size, "seq_len": train.seq_len, "lr": train.lr,
            "precision": trainer.precision, "val": round(result.last_val_loss, 4),
            "train": round(trainer.train_loss, 4), "minutes": round((time.time() - t0) / 60, 1),
            "recipe": True, "machine": describe()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("points", nargs="+", help="HIDDEN:CHARS, e.g. 384:8e6")
    args = ap.parse_args()
    # tinyshakespeare or nothing: the table is figures on its split (no fallback corpus here).
    corpus = encode_corpus(resolve_corpus("shakespeare"))
    for point in args.points:
        hidden, chars = point.split(":")
        row = run(int(hidden), float(chars), corpus)
        with open(RUNS, "a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
