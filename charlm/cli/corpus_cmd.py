"""`charlm corpus list|get|info`: the corpora you have, fetching known ones, and what is in a text."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

from charlm.cli import args as A
from charlm.corpus.catalog import find_entry, find_set, load_catalog, load_sets, suggest
from charlm.corpus.fetch import Progress as ProgressCallback
from charlm.corpus.fetch import fetch
from charlm.corpus.names import list_corpora, resolve_corpus
from charlm.corpus.textstats import analyse
from charlm.errors import UsageError
from charlm.paths import corpora_dir

KIND_LABELS = {"user": "yours", "catalog": "catalog", "set": "set", "builtin": "built-in"}
STATUS_STYLES = {"ready": "green", "not downloaded": "yellow", "modified": "red"}


def register(sub) -> None:
    p = sub.add_parser("corpus", help="list, download and inspect corpora",
                       description="Known corpora are fetched from the catalog, checked against their sha256, and "
                       "kept in corpora/ (CHARLM_CORPORA). CHARLM_MIRROR, a directory or base URL, is tried first.")
    p.set_defaults(func=lambda args: p.print_help() or 0)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    ls = actions.add_parser("list", help="your texts in corpora/, the catalog, and what is downloaded")
    ls.add_argument("--json", action="store_true", help="print one JSON array")
    ls.set_defaults(func=run_list)
    get = actions.add_parser("get", help="download catalog corpora into corpora/, verified")
    get.add_argument("names", nargs="+", metavar="NAME", help="catalog name, e.g. shakespeare, or a set (all its parts)")
    get.add_argument("--force", action="store_true", help="download again even if a copy is there")
    get.set_defaults(func=run_get)
    info = actions.add_parser("info", help="bytes, characters, vocabulary, line endings and encoding problems")
    info.add_argument("corpus", metavar="CORPUS", help="text file, directory, glob or corpus name")
    info.add_argument("--encoding", default="utf-8", help="text encoding to read it with (default utf-8)")
    info.add_argument("--top", type=A.nonneg_int, default=10, help="how many of the most common characters to show")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.set_defaults(func=run_info)


@contextmanager
def download_progress(console: Console, what: str = "downloading") -> Iterator[ProgressCallback]:
    """A progress callback drawing a rich download bar, shown only once bytes actually move."""
    bar = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                   TimeRemainingColumn(), console=console, transient=True)
    task = None

    def update(done: int, total: int) -> None:
        nonlocal task
        if task is None:
            bar.start()
            task = bar.add_task(escape(what), total=total)
        bar.update(task, completed=done, total=total)

    try:
        yield update
    finally:
        if task is not None:
            bar.stop()


def run_list(args) -> int:
    entries = list_corpora()
    if args.json:
        print(json.dumps([{**asdict(e), "path": str(e.path) if e.path else None} for e in entries]))
        return 0
    table = Table(box=None, pad_edge=False, header_style="bold")
    for col in ("name", "kind", "size", "status", "description"):
        table.add_column(col, justify="right" if col == "size" else "left")
    for e in entries:
        style = STATUS_STYLES.get(e.status, "")
        table.add_row(escape(e.name), KIND_LABELS.get(e.kind, e.kind), human_bytes(e.size_bytes),
                      f"[{style}]{e.status}[/]", escape(e.description))
    console = Console()
    console.print(table)
    mirror = os.environ.get("CHARLM_MIRROR")
    console.print(f"\nyour texts go in {escape(str(corpora_dir()))} · mirror: {escape(mirror) if mirror else 'none (set CHARLM_MIRROR)'}",
                  style="dim")
    if any(e.status == "not downloaded" for e in entries):
        console.print("download one with `charlm corpus get NAME`, or just train on it: `charlm train NAME`", style="dim")
    return 0


def run_get(args) -> int:
    entries = []
    for name in args.names:     # check every name before downloading anything
        entry = find_entry(name)
        corpus_set = find_set(name) if entry is None else None
        if entry is None and corpus_set is None:
            close = suggest(name, [*load_catalog().values(), *load_sets().values()])
            raise UsageError(f"{name!r} is not in the catalog",
                             f"did you mean {' or '.join(repr(c) for c in close)}?" if close
                             else "see `charlm corpus list` for the names it knows")
        entries += [entry] if entry is not None else [p for p in corpus_set.parts if p not in entries]
    console, err = Console(), Console(stderr=True)
    for entry in entries:
        with download_progress(err, entry.name) as progress:
            result = fetch(entry, progress, force=args.force)
        if result.source is None:
            console.print(f"{entry.name}: already in {escape(str(result.path))} (sha256 verified)")
        else:
            console.print(f"{entry.name}: {human_bytes(entry.size)} from {escape(result.source)}, sha256 verified "
                          f"→ {escape(str(result.path))}")
        if entry.licence:
            console.print(f"  licence: {escape(entry.licence)}", style="dim")
    return 0


def run_info(args) -> int:
    with download_progress(Console(stderr=True), args.corpus) as progress:
        source = resolve_corpus(args.corpus, args.encoding, progress)
    stats = analyse(source)
    if args.json:
        print(json.dumps({**stats.as_dict(args.top), "encoding": source.encoding}))
        return 0
    total = max(stats.characters, 1)
    le = stats.line_endings
    kinds = [k for k in ("lf", "crlf", "cr") if le[k]]
    rows = [
        ("corpus", f"{source.name} · {stats.files} file{'s' * (stats.files != 1)}"
                   + (f" · {source.paths[0]}" if stats.files == 1 else "")),
        ("bytes", f"{stats.bytes:,} ({human_bytes(stats.bytes)})"),
        ("characters", f"{stats.characters:,} as trained (BOM dropped, CRLF and CR read as LF)"),
        ("lines", f"{stats.lines:,}"),
        ("vocabulary", f"{stats.vocab_size} distinct characters"),
        ("most common", " · ".join(f"{show_char(c)} {100 * k / total:.1f}%" for c, k in stats.top(args.top))),
        ("line endings", " · ".join(f"{k.upper()} {le[k]:,}" for k in ("lf", "crlf", "cr"))
                         + (" (mixed)" if len(kinds) > 1 else "")),
        ("BOM", ", ".join(sorted(set(stats.boms.values()))) + f" in {len(stats.boms)} file(s)" if stats.boms else "none"),
        ("encoding", _encoding_line(stats, source.encoding)),
    ]
    if stats.binary_files:
        rows.append(("binary", f"{len(stats.binary_files)} file(s) contain NUL bytes and cannot be trained on: "
                               + ", ".join(stats.binary_files[:3])))
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for k, v in rows:
        table.add_row(k, escape(v))
    Console().print(table)
    return 0


def _encoding_line(stats, encoding: str) -> str:
    if not stats.problem_count:
        return f"valid {encoding}, no problems found"
    shown = "; ".join(f"{p.path} offset {p.offset:,} (line {p.line}) 0x{p.bytes_hex}" for p in stats.problems[:5])
    more = f" and {stats.problem_count - 5:,} more" if stats.problem_count > 5 else ""
    return (f"{stats.problem_count:,} undecodable byte sequence(s) as {encoding}: {shown}{more}; training will stop "
            f"there: pass --encoding (e.g. latin-1) or fix the file")


def show_char(c: str) -> str:
    """A character as people can see it in a list: ␠ for space, escapes for control characters."""
    if c == " ":
        return "␠"
    if c.isprintable():
        return c
    return repr(c)[1:-1]


def human_bytes(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:,} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"
