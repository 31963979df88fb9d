"""How long seeing inside the model takes: `probe` and `neurons` over tinyshakespeare's
validation split (its last 10%) with a trained checkpoint, and `novelty` against a large corpus:
building its index once, then a query for a 10,000-character text.

The large corpus is word salad: tinyshakespeare's words (and line breaks) drawn at their own
frequencies, so long repeats are as rare as in real prose (tinyshakespeare repeated would be
one passage a thousand times over). It is made in the temp directory if missing. The index is
built in a child process under /usr/bin/time -v, for its wall-clock time and peak RSS.

    python -m bench.inspect_speed [--checkpoint RUN] [--text FILE] [--mb 1000] [--skip-model] [--skip-novelty]

Without --checkpoint a model is trained first (`charlm train shakespeare --minutes 2`).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench.machine import describe
from charlm.corpus.names import default_corpus

ROOT = Path(__file__).resolve().parent.parent
QUERY_CHARS = 10_000


def time_model(checkpoint: Path, text_path: Path | None) -> None:
    from charlm.analysis.neurons import rank_units
    from charlm.analysis.probe import probe
    from charlm.corpus.files import read_text
    from charlm.model.checkpoint import load_checkpoint
    from charlm.train.evaluate import evaluate
    ckpt = load_checkpoint(checkpoint)
    m = ckpt.model_config
    if text_path is None:
        source, _ = default_corpus()
        whole = read_text(source)
        text = whole[int(len(whole) * 0.9):]
        what = f"the last 10% of {source.name}"
    else:
        text, what = text_path.read_text(encoding="utf-8"), str(text_path)
    print(f"model: {checkpoint} ({m.cell} {m.layers}x{m.hidden}, {ckpt.model.num_params():,} params); "
          f"text: {what}, {len(text):,} chars; {torch.get_num_threads()} torch threads")
    t0 = time.perf_counter()
    result = probe(ckpt.model, ckpt.vocab, text, top_k=5)
    seconds = time.perf_counter() - t0
    ev = evaluate(ckpt.model, ckpt.vocab.encode_array(text), torch.device("cpu"), streams=1).nats_per_char
    print(f"probe: {seconds:.2f} s ({len(text) / seconds:,.0f} chars/s), {result.nats_per_char:.4f} nats/char "
          f"(charlm eval: {ev:.4f})")
    for pattern in ("line-position", "after-newline"):
        t0 = time.perf_counter()
        ranked = rank_units(ckpt.model, ckpt.vocab, text, pattern)
        seconds = time.perf_counter() - t0
        print(f"neurons --pattern {pattern}: {seconds:.2f} s ({len(text) / seconds:,.0f} chars/s), "
              f"{len(ranked):,} units, best {ranked[0].unit} at {ranked[0].score:+.3f}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "text.txt"
        path.write_text(text, encoding="utf-8")
        for cmd in (["probe", str(checkpoint), "--text-file", str(path), "--json"],
                    ["neurons", str(checkpoint), "--text-file", str(path), "--pattern", "line-position", "--json"]):
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "charlm", *cmd], capture_output=True, text=True, cwd=ROOT)
            if proc.returncode:
                sys.exit(f"charlm {cmd[0]} failed: {proc.stderr}")
            print(f"charlm {cmd[0]} ... --json: {time.perf_counter() - t0:.2f} s wall-clock, start-up included "
                  f"({len(proc.stdout) / 1e6:.1f} MB of JSON)")


def train_checkpoint(out: Path, cache: Path) -> Path:
    env = {**os.environ, "CHARLM_CACHE": str(cache)}
    cmd = [sys.executable, "-m", "charlm", "train", "shakespeare", "--minutes", "2", "--out", str(out), "--quiet"]
    print(f"training: charlm {' '.join(cmd[3:])}", flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if proc.returncode:
        sys.exit(f"charlm train failed:\n{proc.stdout}\n{proc.stderr}")
    return out


def make_salad(path: Path, mb: float, seed: int = 0) -> None:
    source, _ = default_corpus()
    words = re.findall(r"[^\s]+|\n", "".join(p.read_text(encoding="utf-8") for p in source.paths))
    vocab, counts = np.unique(np.array(words), return_counts=True)
    rng = np.random.default_rng(seed)
    tmp, written = path.with_suffix(".tmp"), 0
    with open(tmp, "w", encoding="utf-8") as f:
        while written < mb * 1e6:
            piece = " ".join(vocab[rng.choice(len(vocab), 200_000, p=counts / counts.sum())]).replace(" \n ", "\n")
            f.write(piece)
            written += len(piece)
    tmp.replace(path)


def build_in_child(corpus: Path, cache: Path) -> tuple[float, float, str]:
    """Encode the corpus and build its index in a fresh process: (seconds, peak RSS MB, its report)."""
    report = cache / "build.time"
    env = {**os.environ, "CHARLM_CACHE": str(cache)}
    cmd = ["/usr/bin/time", "-v", "-o", str(report), sys.executable, "-m", "bench.inspect_speed",
           "--build-only", str(corpus)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    seconds = time.perf_counter() - t0
    if proc.returncode:
        sys.exit(f"index build failed:\n{proc.stdout}\n{proc.stderr}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", report.read_text()).group(1)) / 1000
    return seconds, rss, proc.stdout.strip()


def build_only(corpus: Path) -> None:
    from charlm.analysis.novelty import CopyIndex
    from charlm.corpus.encoded import encode_corpus
    from charlm.corpus.files import source_of_path
    t0 = time.perf_counter()
    encoded = encode_corpus(source_of_path(str(corpus)))
    train, _ = encoded.split(0.1)
    t1 = time.perf_counter()
    CopyIndex.of(train, encoded.vocab)
    t2 = time.perf_counter()
    print(f"encoding {t1 - t0:.1f} s, index {t2 - t1:.1f} s for {len(train):,} training characters")


def time_novelty(mb: float, corpus: Path | None) -> None:
    from charlm.analysis.novelty import CopyIndex
    from charlm.corpus.encoded import encode_corpus
    from charlm.corpus.files import source_of_path
    corpus = (corpus or Path(tempfile.gettempdir()) / f"charlm-salad-{mb:g}mb.txt").resolve()
    if not corpus.exists():
        make_salad(corpus, mb)
    size = corpus.stat().st_size / 1e6
    with tempfile.TemporaryDirectory(prefix="charlm-novelty-", dir=corpus.parent) as tmp:
        cache = Path(tmp)
        seconds, rss, report = build_in_child(corpus, cache)
        index_mb = sum(p.stat().st_size for p in cache.rglob("*.sa-*.npy")) / 1e6
        print(f"novelty corpus: {corpus} ({size:,.1f} MB); first use: {seconds:.1f} s wall-clock ({report}), "
              f"peak RSS {rss:,.0f} MB, index {index_mb:,.0f} MB on disk")
        os.environ["CHARLM_CACHE"] = str(cache)
        encoded = encode_corpus(source_of_path(str(corpus)))
        train, _ = encoded.split(0.1)
        t0 = time.perf_counter()
        index = CopyIndex.of(train, encoded.vocab)
        print(f"opening the cached index: {time.perf_counter() - t0:.3f} s")
        other = corpus.with_name("charlm-salad-query.txt")
        if not other.exists():
            make_salad(other, 0.05, seed=1)
        queries = {"a new text (other words drawn the same way)": other.read_text()[:QUERY_CHARS],
                   "a passage of the training text": encoded.vocab.decode(np.asarray(train[len(train) // 2:][:QUERY_CHARS]))}
        for what, text in queries.items():
            for attempt in ("first", "again"):
                t0 = time.perf_counter()
                result = index.novelty_of(text, 20)
                seconds = time.perf_counter() - t0
                span = result.longest_copied
                print(f"query, {what}, {attempt}: {seconds:.3f} s; {result.fraction_copied:.2%} of 20-char windows "
                      f"copied, longest span {span.length:,} chars")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", type=Path, help="a run or checkpoint (default: train one for 2 minutes)")
    ap.add_argument("--text", type=Path, help="text for probe and neurons (default: tinyshakespeare's last 10%%)")
    ap.add_argument("--mb", type=float, default=1000, help="megabytes of word salad for novelty (default 1000)")
    ap.add_argument("--corpus", type=Path, help="the novelty corpus (default: TMPDIR/charlm-salad-<mb>mb.txt)")
    ap.add_argument("--skip-model", action="store_true")
    ap.add_argument("--skip-novelty", action="store_true")
    ap.add_argument("--build-only", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.build_only:
        build_only(args.build_only)
        return
    print(f"machine: {describe()}", flush=True)
    if not args.skip_model:
        with tempfile.TemporaryDirectory(prefix="charlm-inspect-") as tmp:
            ckpt = args.checkpoint or train_checkpoint(Path(tmp) / "run", Path(tmp) / "cache")
            time_model(ckpt, args.text)
    if not args.skip_novelty:
        time_novelty(args.mb, args.corpus)


if __name__ == "__main__":
    main()
