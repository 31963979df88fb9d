"""How far auto's predicted loss is from what runs reach, on texts that are not Shakespeare.

auto's quality table (charlm.train.autosize.QUALITY) was measured on tinyshakespeare. For each corpus
and budget, one after the other in this one invocation: `charlm train CORPUS --minutes M` with
every default, the val loss auto predicted for its choice (from its "why" line), then
`charlm eval RUN --json` (one stream over the last 10 %), and the text's 5-gram yardstick.

    python -m bench.auto_texts [--corpora war-and-peace,python-stdlib,tagore] [--minutes 2,5]
                               [--record FILE]
    python -m bench.auto_texts --corpora 'war-and-peace[999999:1099999],tagore[600000:630000]'
    python -m bench.auto_texts --shakespeare-sizes     # the table a text's 5-gram is placed against
    python -m bench.auto_texts --corpora war-and-peace,tagore --minutes 2 --hidden auto,128,256 --seeds 1337,2

--hidden trains each text at each width as well as auto's own choice (everything else as auto sets
it for that width), and --seeds repeats each run: whether auto's choice is the best shape for a
text, and how far two runs that differ only in their seed land apart.

A corpus followed by [START:END] is that slice of its text (characters), written to a file first:
the small texts people bring, cut from a verified one.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import tempfile
import time
from pathlib import Path

from bench.cli import charlm
from bench.machine import describe


def one(corpus: str, minutes: float, run: Path, hidden: str = "auto", seed: int | None = None) -> dict:
    extra = ([] if hidden == "auto" else ["--hidden", hidden]) + ([] if seed is None else ["--seed", str(seed)])
    out = charlm("train", corpus, "--minutes", f"{minutes:g}", "--out", str(run), "--quiet", *extra).stdout
    predicted = float(re.search(r"predicted val ≈([\d.]+)", out).group(1))
    auto = next(line.strip() for line in out.splitlines() if line.startswith("auto:"))
    val = json.loads(charlm("eval", str(run), "--json").stdout)["nats_per_char"]
    info = json.loads(charlm("info", str(run), "--json").stdout)
    meta = json.loads((run / "last" / "config.json").read_text())
    return {"corpus": corpus, "minutes": minutes, "hidden": hidden, "seed": meta["train"]["seed"],
            "predicted": predicted, "val": val, "auto": auto, "steps": meta["metrics"]["step"],
            "chars": info["corpus_chars"], "five_gram": (info["yardsticks"] or {}).get("5-gram"),
            "date": time.strftime("%Y-%m-%d"), "machine": describe()}


def sliced(spec: str, folder: Path) -> str:
    """`NAME[START:END]` as a file holding those characters of NAME's text; anything else as given."""
    m = re.fullmatch(r"(.+)\[(\d+):(\d+)\]", spec)
    if not m:
        return spec
    from charlm.corpus.files import read_text
    from charlm.corpus.names import resolve_corpus
    name, start, end = m.group(1), int(m.group(2)), int(m.group(3))
    path = folder / f"{Path(name).stem}-{start}-{end}.txt"
    path.write_text(read_text(resolve_corpus(name))[start:end], encoding="utf-8")
    return str(path)


def shakespeare_sizes() -> None:
    """tinyshakespeare's 5-gram counting the last N characters of its training split, against the
    table in charlm.corpus.yardsticks (seconds)."""
    from charlm.corpus.encoded import encode_corpus
    from charlm.corpus.names import resolve_corpus
    from charlm.corpus.yardsticks import SHAKESPEARE_5GRAM_BY_SIZE, measure
    corpus = encode_corpus(resolve_corpus("shakespeare"))
    train, val = corpus.split(0.1)
    for n, kept in SHAKESPEARE_5GRAM_BY_SIZE:
        found = measure(train[-n:], val, orders=(5,)).ngrams[5]
        print(f"{n:>9,} characters: 5-gram {found:.4f} nats/char (the table: {kept:.4f})", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpora", default="war-and-peace,python-stdlib,tagore")
    ap.add_argument("--minutes", default="2,5")
    ap.add_argument("--hidden", default="auto", help="comma list of widths to train at, `auto` for auto's choice")
    ap.add_argument("--seeds", default="", help="comma list of seeds, each run once per seed (default: charlm's)")
    ap.add_argument("--record", type=Path, help="append each row as JSON to this file")
    ap.add_argument("--shakespeare-sizes", action="store_true",
                    help="only measure tinyshakespeare's 5-gram at the sizes difficulty() places texts against")
    args = ap.parse_args()
    print(f"machine: {describe()}", flush=True)
    if args.shakespeare_sizes:
        shakespeare_sizes()
        return
    rows, seeds = [], [int(s) for s in args.seeds.split(",") if s] or [None]
    with tempfile.TemporaryDirectory() as tmp:
        for spec in args.corpora.split(","):
            corpus = sliced(spec, Path(tmp))
            charlm("corpus", "info", corpus)        # fetched and encoded before any clock runs
            for minutes, hidden, seed in itertools.product((float(m) for m in args.minutes.split(",")),
                                                           args.hidden.split(","), seeds):
                run = Path(tmp) / f"{Path(corpus).stem}-{minutes:g}-{hidden}-{seed}"
                row = {**one(corpus, minutes, run, hidden, seed), "corpus": spec}
                rows.append(row)
                print(f"{spec}, {minutes:g} min, {row['hidden']} (seed {row['seed']}): "
                      f"predicted {row['predicted']:.3f}, "
                      f"reached {row['val']:.4f} ({row['val'] - row['predicted']:+.3f}) · {row['steps']:,} steps · "
                      f"5-gram {row['five_gram']:.3f}"
                      f"\n    {row['auto']}", flush=True)
                if args.record:
                    with open(args.record, "a", encoding="utf-8") as f:
                        f.write(json.dumps(row) + "\n")
    print("\ncorpus            minutes  shape  seed  predicted  reached  off by")
    for r in rows:
        shape = re.search(r"lstm (\d+x\d+)", r["auto"]).group(1) + ("*" if r["hidden"] == "auto" else "")
        print(f"{r['corpus']:<17} {r['minutes']:7g}  {shape:>6} {r['seed']:5}  {r['predicted']:9.3f}  {r['val']:7.4f}  "
              f"{r['val'] - r['predicted']:+.3f}")
    if len(rows) > 1:
        print("(* auto's choice)")


if __name__ == "__main__":
    main()
