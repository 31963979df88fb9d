"""The text an inspection command reads: `--text T` or `--text-file F`, normalised as a corpus is
(no BOM, LF line endings), so a file reads here as `charlm eval` reads it."""

from __future__ import annotations

import sys
from pathlib import Path

from charlm.corpus.files import normalise, read_text_file
from charlm.errors import UsageError


def add_text_args(p, required_file: bool = False) -> None:
    if required_file:
        p.add_argument("--text-file", type=Path, required=True, help="the text to read")
    else:
        src = p.add_mutually_exclusive_group(required=True)
        src.add_argument("--text", help="the text itself")
        src.add_argument("--text-file", type=Path, help="read the text from a file")
    p.add_argument("--encoding", default="utf-8", help="the text file's encoding (default utf-8)")


def text_from_args(args) -> tuple[str, str]:
    """(the text, what to call it) from --text / --text-file."""
    if getattr(args, "text", None) is not None:
        text, what = normalise(args.text), "--text"
    else:
        text, what = read_text_file(args.text_file, args.encoding), str(args.text_file)
    if not text:
        raise UsageError(f"{what} is empty", "give some text")
    return text, what


def warn_unknown(vocab, text: str, what: str) -> None:
    """Characters the model has never seen read as <unk>: say so, as `charlm eval` does."""
    unknown = vocab.unknown_chars(text)
    if unknown:
        count = sum(text.count(c) for c in unknown)
        print(f"charlm: warning: {count} character(s) of {what} are not in the model's vocabulary",
              file=sys.stderr)
