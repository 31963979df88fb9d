"""Memory kept by oneDNN's kernel cache in one long-lived process (issue 20's soak).

Short training runs of random model shapes, one after another in one process, each on a new
thread as the app trains; after each, the resident size (after gc and malloc_trim). Two
processes side by side: oneDNN's default cache (1,024 kernels) and the app's bound
(charlm.machine.kernel_cache). Prints the growth after each run and the kernels built.

    python -m bench.kernel_cache [--runs 24] [--corpus PATH]
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from bench.machine import describe, rss_mb
from charlm.machine.kernel_cache import APP_CAPACITY, CAPACITY_ENV


def child(runs: int, corpus_path: str, bounded: bool) -> None:
    """Train `runs` short runs of random shapes; print the RSS after each."""
    from charlm.machine.allocator import give_back_freed_memory, keep_freed_memory
    from charlm.machine.kernel_cache import bound_kernel_cache
    keep_freed_memory()
    if bounded:
        bound_kernel_cache()
    from charlm.config import ModelConfig, TrainConfig
    from charlm.corpus.encoded import encode_corpus
    from charlm.corpus.names import resolve_corpus
    from charlm.train.trainer import Trainer
    corpus = encode_corpus(resolve_corpus(corpus_path))
    rng = random.Random(7)                       # the same shapes in both processes

    def one() -> None:
        model = ModelConfig(layers=rng.choice([1, 2, 3]), hidden=rng.choice(range(96, 1025, 32)),
                            embed=rng.choice([16, 32, 64, 96]))
        train = TrainConfig(batch_size=rng.choice([16, 32, 48, 64]), seq_len=rng.choice([32, 64, 96]), steps=6,
                            eval_every=3, sample_length=50)
        with tempfile.TemporaryDirectory() as d:
            Trainer(corpus, model, train, Path(d) / "run").run()

    for _ in range(runs):
        worker = threading.Thread(target=one)
        worker.start()
        worker.join()
        gc.collect()
        give_back_freed_memory()
        print(f"{rss_mb():.1f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=24)
    ap.add_argument("--corpus", default="tinyshakespeare")
    ap.add_argument("--child", choices=["default", "bounded"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.runs < 5:
        ap.error("--runs must be at least 5: the first two settle torch, the growth is read after")
    if args.child:
        child(args.runs, args.corpus, args.child == "bounded")
        return
    print(f"machine: {describe()}")
    env = {k: v for k, v in os.environ.items() if not k.endswith("PRIMITIVE_CACHE_CAPACITY")}
    procs = {name: subprocess.Popen([sys.executable, "-m", "bench.kernel_cache", "--child", name, "--runs",
                                     str(args.runs), "--corpus", args.corpus], stdout=subprocess.PIPE, text=True,
                                    env=env)
             for name in ("default", "bounded")}                # side by side: the same load on both
    rows = {name: [float(x) for x in p.communicate()[0].split()] for name, p in procs.items()}
    for name, p in procs.items():
        if p.returncode:
            sys.exit(f"the {name} process failed (exit {p.returncode})")
    base = 2                                     # after the first runs: torch's own start-up is settled
    print(f"RSS after each run of a new shape, MB above run {base + 1}'s "
          f"(default: oneDNN's 1,024 kernels; bounded: {CAPACITY_ENV}={APP_CAPACITY}, as the app sets)")
    print(f"{'run':>4} {'default':>9} {'bounded':>9}")
    for i in range(base, args.runs):
        print(f"{i + 1:>4} {rows['default'][i] - rows['default'][base]:>+9.1f} "
              f"{rows['bounded'][i] - rows['bounded'][base]:>+9.1f}")
    half = base + (args.runs - base) // 2
    for name in ("default", "bounded"):
        r = rows[name]
        print(f"{name}: {r[-1] - r[base]:+.1f} MB in {args.runs - base - 1} runs; "
              f"{(r[-1] - r[half]) / (args.runs - 1 - half):+.2f} MB a run over the last {args.runs - 1 - half}")


if __name__ == "__main__":
    main()
