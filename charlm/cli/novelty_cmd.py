"""`charlm novelty RUN TEXT_FILE`: how much of a text the run's training text already holds."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from charlm.cli import args as A
from charlm.cli.textarg import warn_unknown
from charlm.corpus.files import read_text_file
from charlm.paths import cache_failed


def register(sub) -> None:
    p = sub.add_parser("novelty", help="how much of a text is copied from a run's training text",
                       description="The fraction of the text's n-character windows that occur in the run's "
                       "training text (its corpus minus the validation split), and the longest span copied "
                       "from it. The first time, an index of the training text is built and cached next to "
                       "the encoded corpus (minutes for a gigabyte); after that a query takes well under a second.")
    p.add_argument("run", help="run directory (or one of its checkpoints)")
    p.add_argument("text_file", type=Path, help="the text to check, e.g. a sample")
    p.add_argument("--n", type=A.positive_int, default=20, help="window length in characters (default 20)")
    p.add_argument("--corpus", help="where the run's corpus is now, if it moved")
    p.add_argument("--encoding", default="utf-8", help="the text file's encoding (default utf-8)")
    p.add_argument("--json", action="store_true",
                   help='print {"n", "fraction_copied", "longest_copied": {"length", "text_start", "corpus_start"}}')
    p.set_defaults(func=run)


def run(args) -> int:
    from charlm.analysis.novelty import check_length, open_training_index
    from charlm.errors import UsageError
    text = read_text_file(args.text_file, args.encoding)
    if not text:
        raise UsageError(f"{args.text_file} is empty", "give some text")
    check_length(len(text), args.n)                 # before a long first indexing, not after
    with _BuildProgress() as progress:
        index = open_training_index(args.run, args.corpus, progress)
    result = index.novelty_of(text, args.n)
    warn_unknown(index.vocab, text, str(args.text_file))
    if args.json:
        print(json.dumps(result.as_dict()))
        return 0
    span = result.longest_copied
    print(f"{result.fraction_copied:.1%} of the {len(result.copied):,} windows of {result.n} characters in "
          f"{args.text_file} occur in {index.name}")
    if span.length:
        excerpt = text[span.text_start:span.text_start + span.length]
        shown = excerpt if len(excerpt) <= 200 else excerpt[:120] + " … " + excerpt[-60:]
        print(f"longest copied span: {span.length:,} characters, at {span.text_start:,} in the text and "
              f"{span.corpus_start:,} in the training text: {shown!r}")
    else:
        print("no character of the text occurs in the training text")
    return 0


class _BuildProgress:
    """Says so when the index has to be built: a progress bar on a terminal, one line otherwise."""

    def __enter__(self):
        self.bar = None
        self.started = False
        return self

    def __call__(self, done: int, total: int) -> None:
        if not self.started:
            self.started = True
            from rich.console import Console
            console = Console(stderr=True)
            # By the first report the index knows whether it can be kept (keep_cached said so).
            when = "without a cache: again next time" if cache_failed() else "once: it is cached for next time"
            if not console.is_terminal:
                print(f"charlm: indexing the training text ({when})", file=sys.stderr)
                return
            from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
            label = f"indexing the training text ({when.split(':')[0]})"
            self.bar = Progress(TextColumn(label), BarColumn(), TaskProgressColumn(),
                                TimeRemainingColumn(), console=console, transient=True)
            self.bar.start()
            self.task = self.bar.add_task("index", total=total)
        if self.bar is not None:
            self.bar.update(self.task, completed=done)

    def __exit__(self, *_) -> None:
        if self.bar is not None:
            self.bar.stop()
