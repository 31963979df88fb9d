"""`charlm neurons CKPT --text-file F --pattern P`: which recurrent units track a pattern."""

from __future__ import annotations

import json

from charlm.cli import args as A
from charlm.cli.textarg import add_text_args, text_from_args, warn_unknown
from charlm.errors import UsageError


def register(sub) -> None:
    from charlm.analysis.patterns import PATTERNS
    names = "; ".join(f"{k}: {v}" for k, v in PATTERNS.items())
    p = sub.add_parser("neurons", help="find the units that track a pattern (quotes, nesting, column...)",
                       description="Rank every recurrent unit (layer, h or c, index) by the Pearson correlation "
                       "of its activation after each character of the text with the pattern's value there "
                       "(best = largest in size; the sign says whether it rises or falls with it).")
    p.add_argument("checkpoint", help="checkpoint or run directory")
    add_text_args(p, required_file=True)
    p.add_argument("--pattern", help=f"{names}; anything else is a regular expression (1 on the characters it "
                   "matches)")
    p.add_argument("--top", type=A.positive_int, default=10, help="units listed (default 10)")
    p.add_argument("--show", metavar="LAYER:KIND:INDEX",
                   help="print the text coloured by this unit's activation (layers from 0; kind h or c)")
    p.add_argument("--json", action="store_true", help='print [{"layer", "kind", "index", "score"}, ...], best first')
    p.set_defaults(func=run)


def run(args) -> int:
    from charlm.analysis.neurons import parse_unit, rank_units
    from charlm.analysis.patterns import varying_pattern
    from charlm.model.checkpoint import load_checkpoint
    if args.pattern is None and args.show is None:
        raise UsageError("neither --pattern nor --show was given", "rank units with --pattern quote, or show one "
                         "with --show 0:h:3")
    text, what = text_from_args(args)
    if args.pattern is not None:
        varying_pattern(text, args.pattern)         # a bad pattern is refused before the model loads
    ckpt = load_checkpoint(args.checkpoint, "cpu")
    unit = parse_unit(args.show, ckpt.model) if args.show is not None else None
    if args.json and unit is not None:
        raise UsageError("--show draws the text and cannot go with --json", "drop one of them")
    ranked = rank_units(ckpt.model, ckpt.vocab, text, args.pattern) if args.pattern is not None else None
    warn_unknown(ckpt.vocab, text, what)
    if args.json:
        print(json.dumps([s.as_dict() for s in ranked[:args.top]]))
        return 0
    if ranked is not None:
        _table(ranked[:args.top], len(ranked), args.pattern, len(text))
    if unit is not None:
        _show(ckpt, text, unit, next((s.score for s in ranked or [] if s.unit == unit), None))
    return 0


def _table(top, total: int, pattern: str, chars: int) -> None:
    from rich.console import Console
    from rich.table import Table

    from charlm.analysis.patterns import PATTERNS
    console = Console(highlight=False)
    meaning = PATTERNS.get(pattern, f"1 on characters matching the regex {pattern!r}")
    console.print(f"pattern {pattern}: {meaning}", markup=False)
    console.print(f"score: Pearson correlation of each unit's activation after each character with that value, "
                  f"over {chars:,} characters; best {len(top)} of {total:,} units", style="dim", markup=False)
    table = Table(box=None, pad_edge=False)
    for col in ("rank", "unit", "score", ""):
        table.add_column(col, justify="right" if col in ("rank", "score") else "left")
    for i, s in enumerate(top, 1):
        bar = "█" * int(round(abs(s.score) * 20))
        table.add_row(str(i), str(s.unit), f"{s.score:+.3f}", f"[{'red' if s.score > 0 else 'blue'}]{bar}[/]")
    console.print(table)
    if top:
        console.print(f"see the best one: --show {top[0].unit}", style="dim")


def _show(ckpt, text: str, unit, score: float | None) -> None:
    from rich.console import Console

    from charlm.analysis.neurons import unit_trace
    from charlm.analysis.shading import activation_legend, activation_scale, activation_text
    values = unit_trace(ckpt.model, ckpt.vocab, text, unit)
    scale = activation_scale(unit.kind, values)
    console = Console(highlight=False)
    console.print(activation_text(list(text), values, scale))
    console.print(activation_legend(scale))
    console.print(f"unit {unit}" + (f": score {score:+.3f} for the pattern" if score is not None else ""))
