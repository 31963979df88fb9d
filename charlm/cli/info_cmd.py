"""`charlm info CKPT`: what a checkpoint is; `charlm info` alone: where charlm keeps things."""

from __future__ import annotations

import json
import os

from rich.console import Console
from rich.table import Table

from charlm.analysis.references import reading_for, references, verdict
from charlm.errors import UsageError
from charlm.runs.directory import RunDir
from charlm.train.finetune import lineage_text
from charlm.units import bits


def register(sub) -> None:
    p = sub.add_parser("info", help="show a checkpoint's config, size, corpus and scores; alone: where runs, "
                       "corpora and the cache are")
    p.add_argument("checkpoint", nargs="?", help="checkpoint or run directory (none: where charlm keeps things)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def summary(ckpt) -> dict:
    m, metrics = ckpt.model_config, ckpt.metrics
    best = metrics.get("best_val_loss")
    yardsticks = _yardsticks(ckpt)
    reads = reading_for(best, ckpt.corpus.get("sha256"), yardsticks) if best is not None else None
    return {
        "path": str(ckpt.path), "cell": m.cell, "layers": m.layers, "hidden": m.hidden, "embed": m.embed,
        "dropout": m.dropout, "vocab_size": m.vocab_size, "params": ckpt.model.num_params(),
        "corpus": ckpt.corpus.get("name"), "corpus_chars": ckpt.corpus.get("chars"),
        "corpus_sha256": ckpt.corpus.get("sha256"), "steps": metrics.get("step"),
        "elapsed_s": metrics.get("elapsed"), "best_val_loss": best,
        "best_val_bpc": bits(best) if best is not None else None,
        "train": ckpt.meta.get("train", {}), "saved_at": ckpt.meta.get("saved_at"),
        "versions": ckpt.meta.get("versions", {}),
        "references": [{"label": r.label, "nats_per_char": r.nats_per_char, "source": r.source}
                       for r in references(ckpt.corpus.get("sha256"))],
        "yardsticks": None if yardsticks is None else {f"{n}-gram": v for n, v in sorted(yardsticks.ngrams.items())},
        "yardsticks_verdict": yardsticks.compare(best) if yardsticks and best is not None else None,
        "reading": reads,
        "compared": [line for line in verdict(best, ckpt.corpus.get("sha256"), yardsticks)
                     if not line.startswith("reads like")] if best is not None else [],
        "init": RunDir(ckpt.path.parent).read_lineage(),
    }


def _yardsticks(ckpt):
    """The n-gram yardsticks of the run's text: kept from an earlier measure, or measured now when
    the text is on this machine (seconds, then kept); None when neither."""
    from charlm.corpus.yardsticks import cached_yardsticks, yardsticks_for
    val_fraction = ckpt.corpus.get("val_fraction", ckpt.train_config.val_fraction)
    found = cached_yardsticks(ckpt.corpus.get("sha256"), val_fraction)
    if found is not None:
        return found
    from charlm.runs.training_text import training_corpus
    try:                        # `info` reads; it never downloads
        corpus = training_corpus(ckpt.path.parent, ckpt.vocab, sha256=ckpt.corpus.get("sha256"), download=False)
    except (UsageError, OSError):
        return None
    return yardsticks_for(corpus, val_fraction)


def places() -> dict:
    """Where runs, corpora and the cache are, each with why there, and how many runs."""
    from charlm.paths import cache_root, checkpoints_place, corpora_place
    from charlm.runs.listing import list_runs
    runs, corpora = checkpoints_place(), corpora_place()
    listed = [{"name": r.name, "corpus": r.corpus, "model": r.shape, "best_val_loss": r.best_val_loss,
               "saved_at": r.saved_at} for r in list_runs(runs.path) if not r.problem]
    return {"checkpoints": {"path": str(runs.path), "why": runs.why, "runs": listed},
            "corpora": {"path": str(corpora.path), "why": corpora.why},
            "cache": {"path": str(cache_root()), "why": "set by CHARLM_CACHE" if os.environ.get("CHARLM_CACHE")
                      else "rebuilt when missing (encoded texts, timings, the compiled sampler)"}}


def run(args) -> int:
    if args.checkpoint is None:
        return _show_places(args.json)
    from charlm.model.checkpoint import load_checkpoint
    info = summary(load_checkpoint(args.checkpoint))
    if args.json:
        print(json.dumps(info))
        return 0
    best = info["best_val_loss"]
    t = info["train"]
    rows = [
        ("checkpoint", info["path"]),
        ("model", f"{info['cell']} {info['layers']}x{info['hidden']}, embed {info['embed']}, dropout {info['dropout']}"),
        ("parameters", f"{info['params']:,}"),
        ("vocabulary", f"{info['vocab_size']} characters (incl. <unk>)"),
        ("corpus", f"{info['corpus']} · {info['corpus_chars'] or 0:,} chars · sha256 {str(info['corpus_sha256'])[:12]}…"),
        *([("started from", lineage_text(info["init"]))] if info["init"] else []),
        ("training", f"{info['steps']} steps · {(info['elapsed_s'] or 0) / 60:.1f} min · {t.get('optimizer')} lr {t.get('lr')} · "
                     f"batch {t.get('batch_size')}x{t.get('seq_len')}"),
        ("best val", f"{best:.4f} nats/char · {info['best_val_bpc']:.4f} bits/char" if best is not None else "not evaluated"),
        ("saved", f"{info['saved_at']} · charlm {info['versions'].get('charlm')} · torch {info['versions'].get('torch')}"),
    ]
    rows += [("compared", line) for line in info["compared"]]
    if info["yardsticks"]:
        rows.append(("yardsticks", " · ".join(f"{k} {v:.3f}" for k, v in info["yardsticks"].items())
                     + " nats/char (n-gram models of the same text, on its own split)"))
    if info["reading"]:
        rows.append(("reads like", info["reading"]))
    Console().print(_fields(rows))
    return 0


def _fields(rows: list[tuple[str, str]]) -> Table:
    """Name-value lines, names in bold."""
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for name, value in rows:
        table.add_row(name, value)
    return table


SHOWN_RUNS = 10


def _show_places(as_json: bool) -> int:
    where = places()
    if as_json:
        print(json.dumps(where))
        return 0
    runs = where["checkpoints"]
    Console().print(_fields([("runs", f"{runs['path']} · {len(runs['runs'])} run(s) · {runs['why']}"),
                             ("corpora", f"{where['corpora']['path']} · {where['corpora']['why']}"),
                             ("cache", f"{where['cache']['path']} · {where['cache']['why']}")]))
    if runs["runs"]:
        newest = Table(box=None, pad_edge=False, title=f"the newest runs (of {len(runs['runs'])}), by name",
                       title_justify="left", title_style="bold")
        for column in ("run", "corpus", "model", "best bits/char", "saved"):
            newest.add_column(column)
        for r in runs["runs"][:SHOWN_RUNS]:
            loss = r["best_val_loss"]
            newest.add_row(r["name"], r["corpus"] or "?", r["model"], f"{bits(loss):.3f}" if loss is not None else "–",
                           (r["saved_at"] or "")[:16])
        Console().print(newest)
    Console().print("CHARLM_CHECKPOINTS, CHARLM_CORPORA and CHARLM_CACHE move them; a directory with a checkpoints/ "
                    "folder keeps its own runs and corpora.", style="dim", highlight=False)
    return 0
