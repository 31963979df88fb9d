"""`charlm probe CKPT (--text T | --text-file F)`: what the model expected at every character."""

from __future__ import annotations

import json

from charlm.cli import args as A
from charlm.cli.textarg import add_text_args, text_from_args, warn_unknown
from charlm.config import DEVICES

SURPRISES_LISTED = 10


def register(sub) -> None:
    p = sub.add_parser("probe", help="show how surprised the model is by each character of a text",
                       description="Read a text through the model as `charlm eval` does (one stream from its "
                       "first character, which is read but not predicted) and show, per character, the "
                       "probability the model gave it and its top-k guesses, with the text's nats/char.")
    p.add_argument("checkpoint", help="checkpoint or run directory")
    add_text_args(p)
    p.add_argument("--top-k", type=A.positive_int, default=5, help="guesses kept per position (default 5)")
    p.add_argument("--json", action="store_true",
                   help='print {"nats_per_char", "bits_per_char", "chars": [{"char", "prob", "top": [[char, prob], ...]}]}')
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.set_defaults(func=run)


def run(args) -> int:
    from charlm.analysis.probe import probe
    from charlm.machine.device import pick_device
    from charlm.model.checkpoint import load_checkpoint
    text, what = text_from_args(args)
    device = pick_device(args.device)
    ckpt = load_checkpoint(args.checkpoint, device)
    result = probe(ckpt.model, ckpt.vocab, text, args.top_k, device)
    warn_unknown(ckpt.vocab, text, what)
    if args.json:
        print(json.dumps(result.as_dict(), ensure_ascii=False))
    else:
        _show(result, what)
    return 0


def _show(result, what: str) -> None:
    import numpy as np
    from rich.console import Console

    from charlm.analysis.shading import surprise_legend, surprise_text
    console = Console(highlight=False)
    bits = result.surprise_bits
    console.print(surprise_text(result.chars, bits))
    console.print(surprise_legend())
    console.print(f"{what}: {result.nats_per_char:.4f} nats/char · {result.bits_per_char:.4f} bits/char · "
                  f"{len(result.chars):,} chars", markup=False)
    worst = np.argsort(-np.nan_to_num(bits, nan=-1.0), kind="stable")[:SURPRISES_LISTED]
    console.print("most surprising:", style="bold")
    for t in sorted(worst):
        guesses = " · ".join(f"{c!r} {p:.3f}" for c, p in result.top(t))
        console.print(f"  {result.chars[t]!r} at {t}: p={result.probs[t]:.2e} ({bits[t]:.1f} bits); "
                      f"expected {guesses}", markup=False)
