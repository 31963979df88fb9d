"""`charlm eval CKPT [TEXT]`: nats/char, bits/char and perplexity."""

from __future__ import annotations

import json
import sys

from charlm.cli import args as A
from charlm.config import DEVICES
from charlm.corpus.names import resolve_corpus
from charlm.errors import UsageError
from charlm.runs.training_text import training_corpus


def register(sub) -> None:
    p = sub.add_parser("eval", help="measure nats/char and bits/char",
                       description="Evaluate a checkpoint on its own validation split (the last 10%% of its corpus), "
                       "or on TEXT, as a stream with carried state.")
    p.add_argument("checkpoint", help="checkpoint or run directory")
    p.add_argument("text", nargs="?", help="text file to evaluate on (default: the checkpoint's validation split)")
    p.add_argument("--corpus", help="where the checkpoint's corpus is now, if it moved")
    p.add_argument("--encoding", default="utf-8")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--streams", type=A.positive_int, default=1,
                   help="evaluate N pieces side by side (faster; 1 = one exact stream, the default)")
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="fp32",
                   help="fp32 by default: the reference figure")
    p.add_argument("--weights", choices=("fp32", "bf16", "int8"),
                   help="evaluate through the sampler's per-character step with weights in this precision "
                   "(what `charlm sample` computes), instead of the model's own forward pass")
    p.set_defaults(func=run)


def run(args) -> int:
    from charlm.machine.threads import ThreadGovernor
    from charlm.model.checkpoint import load_checkpoint
    threads = ThreadGovernor().watch()      # the load is measured while the model loads
    from charlm.corpus.encoded import count_unknown, encode_corpus
    from charlm.machine.device import pick_device
    from charlm.train.evaluate import evaluate, evaluate_stepped
    from charlm.train.speed import pick_precision
    device = pick_device(args.device)
    ckpt = load_checkpoint(args.checkpoint, device)
    if args.text:
        corpus = encode_corpus(resolve_corpus(args.text, args.encoding), ckpt.vocab)
        ids, what = corpus.ids, args.text
        unknown = count_unknown(corpus.ids)
        if unknown:
            print(f"charlm: warning: {unknown} character(s) of {args.text} are not in the model's vocabulary",
                  file=sys.stderr)
    else:
        corpus = training_corpus(ckpt.path.parent, ckpt.vocab, args.corpus, args.encoding,
                                 how="--corpus (or give a TEXT file)", sha256=ckpt.corpus.get("sha256"))
        ids = corpus.split(ckpt.corpus.get("val_fraction", ckpt.train_config.val_fraction))[1]
        what = f"validation split of {corpus.name}"
    if len(ids) < 2:
        raise UsageError(f"{what} is too short to evaluate", "give a text of at least two characters")
    threads.start()      # one thread per free core: a busy core would stall every step
    if args.weights:
        result = evaluate_stepped(ckpt.model.cpu(), ids, args.weights, streams=args.streams)
    else:
        result = evaluate(ckpt.model, ids, device, pick_precision(args.precision, device), streams=args.streams)
    if args.json:
        print(json.dumps(result.as_dict()))
    else:
        print(f"{what}: {result.nats_per_char:.4f} nats/char · {result.bits_per_char:.4f} bits/char · "
              f"perplexity {result.perplexity:.3f} · {result.chars:,} chars")
    return 0

