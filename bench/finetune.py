"""Small texts: training from nothing against starting from a base model of other text (--init).

One after the other in this one invocation, each run its own `charlm train` process:
  base     `charlm train BASE_CORPUS --minutes 5` with every default (skipped with --base RUN)
  texts    the first N characters of each --texts corpus (default 20k and 100k of War and Peace,
           which has characters Shakespeare never uses: " ( ) * digits, accents)
  for each text and budget (1 and 2 minutes):
    scratch  `charlm train TEXT --minutes M` with every default
    init     `charlm train TEXT --minutes M --init BASE`
    plain    (with --plain) a plain nn.LSTM loop, 2x256 with dropout 0.3, the same minutes
  each then `charlm eval RUN --json`: one stream over the text's last 10 %, as published figures.

Prints val nats/char of both and the gain, and the machine. `--record FILE` appends the rows
(with the flags each side was given) to a JSON-lines file such as bench/finetune_runs.jsonl, the
runs behind charlm.train.finetune's recipe and its GAINS table.

    python -m bench.finetune [--base RUN] [--texts war-and-peace:20000,war-and-peace:100000]
                             [--minutes 1,2] [--plain] [--init-flags "--lr 5e-3"] [--record FILE]
"""

from __future__ import annotations

import argparse
import json
import shlex
import tempfile
import time
from pathlib import Path

from bench.cli import charlm
from bench.machine import describe

PLAIN_SHAPE = dict(layers=2, hidden=256, embed=64, batch=32, seq=64, lr=2e-3, dropout=0.3)



def train_and_eval(text: str, run: Path, minutes: float, flags: list[str]) -> dict:
    """`charlm train` then `charlm eval`: the figure, and what the run was."""
    out = charlm("train", text, "--minutes", f"{minutes:g}", "--out", str(run), "--quiet", *flags)
    val = json.loads(charlm("eval", str(run), "--json").stdout)["nats_per_char"]
    meta = json.loads((run / "best" / "config.json").read_text())
    last = json.loads((run / "last" / "config.json").read_text())
    m = meta["model"]
    first = next((json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
                  if '"val_loss"' in line), {})
    return {"val": val, "model": f"{m['layers']}x{m['hidden']} d{m['dropout']:g}", "steps": last["metrics"]["step"],
            "best_step": meta["metrics"]["step"], "lr": meta["train"]["lr"], "batch": meta["train"]["batch_size"],
            "start_val": first.get("val_loss") if first.get("step") == 0 else None,
            "auto": next((line.strip() for line in out.stdout.splitlines() if line.startswith(("auto:", "init:"))), "")}


def slice_text(spec: str, directory: Path) -> tuple[str, Path]:
    """CORPUS:CHARS -> a file holding the corpus's first CHARS characters (normalised as trained)."""
    from charlm.corpus.files import iter_text
    from charlm.corpus.names import resolve_corpus
    name, _, chars = spec.rpartition(":")
    n = int(chars)
    text = ""
    for chunk in iter_text(resolve_corpus(name)):
        text += chunk
        if len(text) >= n:
            break
    label = f"{Path(name).stem}-{n // 1000}k"
    path = directory / f"{label}.txt"
    path.write_text(text[:n], encoding="utf-8")
    return label, path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", help="a run to start from (default: train one on --base-corpus first; a --base "
                    "that does not exist yet is trained there, and kept)")
    ap.add_argument("--base-corpus", default="shakespeare")
    ap.add_argument("--base-minutes", type=float, default=5.0)
    ap.add_argument("--texts", default="war-and-peace:20000,war-and-peace:100000",
                    help="CORPUS:CHARS, comma-separated: the first CHARS characters of each")
    ap.add_argument("--minutes", default="1,2", help="budgets, comma-separated")
    ap.add_argument("--plain", action="store_true", help="also a plain nn.LSTM loop (2x256, dropout 0.3) from scratch")
    ap.add_argument("--no-scratch", action="store_true", help="only the init side (recipe search)")
    ap.add_argument("--init-flags", default="", help="extra `charlm train` flags for the init side")
    ap.add_argument("--scratch-flags", default="", help="extra `charlm train` flags for the scratch side")
    ap.add_argument("--record", type=Path, help="append each row as JSON to this file")
    args = ap.parse_args()
    budgets = [float(m) for m in args.minutes.split(",")]
    print(f"machine: {describe()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        base = args.base or str(tmp / "base")
        trained_here = not Path(base).exists()
        if trained_here:
            charlm("train", args.base_corpus, "--minutes", f"{args.base_minutes:g}", "--out", base, "--quiet")
        base_meta = json.loads((Path(base) / "best" / "config.json").read_text()) if (Path(base) / "best").is_dir() \
            else json.loads((Path(base) / "config.json").read_text())
        print(f"base: {base_meta['corpus']['name']}, lstm {base_meta['model']['layers']}x{base_meta['model']['hidden']}, "
              f"{base_meta['metrics']['step']:,} steps, val {base_meta['metrics']['best_val_loss']:.4f} "
              f"({f'trained here, {args.base_minutes:g} min' if trained_here else 'given'})", flush=True)
        texts = [slice_text(spec, tmp) for spec in args.texts.split(",")]
        rows = []
        for label, path in texts:
            for minutes in budgets:
                row = {"text": label, "minutes": minutes, "base": base_meta["corpus"]["name"],
                       "base_steps": base_meta["metrics"]["step"], "init_flags": args.init_flags,
                       "scratch_flags": args.scratch_flags, "date": time.strftime("%Y-%m-%d"), "machine": describe()}
                if not args.no_scratch:
                    row["scratch"] = train_and_eval(str(path), tmp / f"{label}-{minutes:g}-scratch", minutes,
                                                    shlex.split(args.scratch_flags))
                row["init"] = train_and_eval(str(path), tmp / f"{label}-{minutes:g}-init", minutes,
                                             ["--init", base, *shlex.split(args.init_flags)])
                if args.plain:
                    from bench.quality import plain_side
                    row["plain"] = plain_side(str(path), minutes, PLAIN_SHAPE)
                rows.append(row)
                print(line(row), flush=True)
                if args.record:
                    with open(args.record, "a", encoding="utf-8") as f:
                        f.write(json.dumps(row) + "\n")
    print("\ntext            minutes   scratch   init      gain     (val nats/char, lower is better)")
    for row in rows:
        s = row.get("scratch", {}).get("val")
        i = row["init"]["val"]
        print(f"{row['text']:<15} {row['minutes']:7g}   {_f(s)}   {i:.4f}   {_signed(s, i)}")


def line(row: dict) -> str:
    parts = [f"{row['text']}, {row['minutes']:g} min:"]
    for side in ("scratch", "init", "plain"):
        r = row.get(side)
        if r:
            extra = f", starts at {r['start_val']:.3f}" if r.get("start_val") else ""
            parts.append(f"{side} {r['val']:.4f} ({r['model']}, {r['steps']:,} steps{extra})")
    if "scratch" in row:
        parts.append(f"gain {_signed(row['scratch']['val'], row['init']['val'])}")
    return " · ".join(parts)


def _f(x: float | None) -> str:
    return f"{x:.4f}" if x is not None else "   -  "


def _signed(scratch: float | None, init: float) -> str:
    return f"{scratch - init:+.4f}" if scratch is not None else "   -"


if __name__ == "__main__":
    main()
