"""What is in a corpus, before training on it: size, characters, vocabulary, line endings, and the
encoding problems that would stop training, with their byte offsets. Never raises on bad bytes.

Counts of characters and the vocabulary are of the text as charlm trains on it (BOM dropped,
CRLF and CR read as LF); line endings are counted as they are in the file.
"""

from __future__ import annotations

import codecs
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from charlm.corpus.files import CHUNK_BYTES, SNIFF_BYTES, CorpusSource, carry_cr

MAX_PROBLEMS = 20           # positions listed; all are counted
BOMS = ((codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"), (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
_seen = threading.local()   # where the error handler below records what it replaced


@dataclass
class Problem:
    path: str
    offset: int                 # byte offset in the file
    line: int                   # 1-based
    bytes_hex: str              # the undecodable bytes, e.g. "e9"


@dataclass
class TextStats:
    name: str
    files: int = 0
    bytes: int = 0
    characters: int = 0
    lines: int = 0
    counts: Counter = field(default_factory=Counter)
    line_endings: dict = field(default_factory=lambda: {"lf": 0, "crlf": 0, "cr": 0})
    boms: dict = field(default_factory=dict)            # path -> "utf-8", ...
    binary_files: list = field(default_factory=list)    # paths with NUL bytes: charlm refuses them
    problem_count: int = 0
    problems: list = field(default_factory=list)        # the first MAX_PROBLEMS, as Problem

    @property
    def vocab_size(self) -> int:
        return len(self.counts)

    def top(self, n: int = 10) -> list[tuple[str, int]]:
        return self.counts.most_common(n)

    def as_dict(self, top: int = 20) -> dict:
        return {"name": self.name, "files": self.files, "bytes": self.bytes, "characters": self.characters,
                "lines": self.lines, "vocab_size": self.vocab_size,
                "top_characters": [{"char": c, "count": k} for c, k in self.top(top)],
                "line_endings": self.line_endings, "boms": self.boms, "binary_files": self.binary_files,
                "encoding_problems": self.problem_count, "problems": [vars(p) for p in self.problems]}


def analyse(source: CorpusSource) -> TextStats:
    """Read every file of `source` once, in bounded memory."""
    stats = TextStats(source.name)
    for path in source.paths:
        _analyse_file(Path(path), source.encoding, stats)
    return stats


def _record(exc: UnicodeDecodeError):
    _seen.found.append((exc.object, exc.start, exc.end))
    return "\ufffd", exc.end


codecs.register_error("charlm-record", _record)


def _analyse_file(path: Path, encoding: str, stats: TextStats) -> None:
    stats.files += 1
    decoder = codecs.getincrementaldecoder(encoding)(errors="charlm-record")
    offset, newlines, pending_cr, first, last = 0, 0, False, True, "\n"
    with open(path, "rb") as f:
        block = f.read(max(SNIFF_BYTES, 4))      # 4: room for the longest BOM
        if b"\x00" in block and not encoding.lower().replace("-", "").startswith(("utf16", "utf32")):
            stats.binary_files.append(str(path))
        for bom, name in BOMS:
            if block.startswith(bom):
                stats.boms[str(path)] = name
                break
        while True:
            final = not block
            # The decoder may hold back the bytes of an unfinished character from the last block:
            # offsets the handler reports are relative to those bytes followed by this block.
            held = len(decoder.getstate()[0])
            _seen.found = []
            text = decoder.decode(block, final=final)
            for obj, start, end in _seen.found:
                stats.problem_count += 1
                if len(stats.problems) < MAX_PROBLEMS:
                    where = offset - held + start
                    line = newlines + 1 + bytes(obj[:start]).count(b"\n") - bytes(obj[:held]).count(b"\n")
                    stats.problems.append(Problem(str(path), where, line, bytes(obj[start:end]).hex()))
            stats.bytes += len(block)
            offset += len(block)
            newlines += block.count(b"\n")
            if first and text:
                text, first = text.removeprefix("\ufeff"), False
            text, pending_cr = carry_cr(text, pending_cr, final)
            crlf = text.count("\r\n")
            stats.line_endings["crlf"] += crlf
            stats.line_endings["cr"] += text.count("\r") - crlf
            stats.line_endings["lf"] += text.count("\n") - crlf
            text = text.replace("\r\n", "\n").replace("\r", "\n")
            stats.counts.update(text)
            stats.characters += len(text)
            stats.lines += text.count("\n")
            last = text[-1:] or last
            if final:
                break
            block = f.read(CHUNK_BYTES)
        if last != "\n":
            stats.lines += 1     # a last line without a newline is still a line
