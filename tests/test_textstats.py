"""`charlm corpus info`'s analysis: exact counts and byte offsets, whatever the chunk boundaries."""

from __future__ import annotations

import pytest

from charlm.corpus import textstats
from charlm.corpus.files import CorpusSource
from charlm.corpus.textstats import analyse

RAW = "\ufeffHé llo\r\nwörld\rcafé 🙂\n".encode() + b"bad \xe9 byte\nlast \xf0\x9f"


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 1 << 20])
def test_counts_and_problems_do_not_depend_on_chunking(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(textstats, "CHUNK_BYTES", chunk)
    monkeypatch.setattr(textstats, "SNIFF_BYTES", chunk)
    path = tmp_path / "t.txt"
    path.write_bytes(RAW)
    s = analyse(CorpusSource("t", (path,)))
    assert s.bytes == len(RAW)
    assert s.line_endings == {"lf": 2, "crlf": 1, "cr": 1}
    assert s.boms == {str(path): "utf-8"}
    # Two problems: the lone 0xe9, and the emoji cut off at the end of the file.
    assert s.problem_count == 2
    assert [(p.offset, p.line, p.bytes_hex) for p in s.problems] == [
        (RAW.index(b"\xe9 byte"), 3, "e9"), (len(RAW) - 2, 4, "f09f")]
    assert s.characters == len("Hé llo\nwörld\ncafé 🙂\nbad \ufffd byte\nlast \ufffd")
    assert s.lines == 5 and s.counts["\n"] == 4 and "\r" not in s.counts and "\ufeff" not in s.counts


def test_binary_files_are_flagged_not_fatal(tmp_path):
    path = tmp_path / "b.bin"
    path.write_bytes(b"abc\x00\x01\x02")
    s = analyse(CorpusSource("b", (path,)))
    assert s.binary_files == [str(path)] and s.bytes == 6


def test_several_files_add_up(tmp_path):
    paths = []
    for i, text in enumerate(["aab\n", "bc"]):
        paths.append(tmp_path / f"{i}.txt")
        paths[-1].write_text(text)
    s = analyse(CorpusSource("d", tuple(paths)))
    assert (s.files, s.bytes, s.characters, s.lines, s.vocab_size) == (2, 6, 6, 2, 4)
    assert s.top(2) == [("a", 2), ("b", 2)]
    assert s.as_dict(1)["top_characters"] == [{"char": "a", "count": 2}]
