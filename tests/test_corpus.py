"""Reading a corpus: file, directory or glob; encodings; BOM and line-ending normalisation, also
where a CRLF or a character is cut by a chunk boundary; precise errors for unusable input."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from charlm.corpus import files as corpus_mod
from charlm.corpus.files import normalise, read_text, source_of_path
from charlm.errors import UsageError


@pytest.fixture
def small_chunks(monkeypatch):
    """Read files a few bytes at a time, so every chunk-boundary case shows up in tiny files."""
    def set_sizes(sniff: int, chunk: int):
        monkeypatch.setattr(corpus_mod, "SNIFF_BYTES", sniff)
        monkeypatch.setattr(corpus_mod, "CHUNK_BYTES", chunk)
    return set_sizes


def test_a_file(tmp_path):
    path = tmp_path / "poems.txt"
    path.write_text("roses are red\n", encoding="utf-8")
    src = source_of_path(str(path))
    assert src.name == "poems" and src.paths == (path,)
    assert read_text(src) == "roses are red\n"


def test_a_directory_is_every_text_file_below_it_sorted_and_joined_with_a_blank_line(tmp_path):
    d = tmp_path / "books"
    (d / "sub").mkdir(parents=True)
    (d / "b.txt").write_text("second\n", encoding="utf-8")
    (d / "a.txt").write_text("first", encoding="utf-8")           # no final newline
    (d / "sub" / "c.md").write_text("third\n", encoding="utf-8")
    (d / ".hidden.txt").write_text("secret\n", encoding="utf-8")   # skipped: hidden
    (d / "cover.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")   # skipped: not text
    src = source_of_path(str(d))
    assert src.name == "books"
    assert [p.relative_to(d).as_posix() for p in src.paths] == ["a.txt", "b.txt", "sub/c.md"]
    assert read_text(src) == "first\n\nsecond\n\nthird\n"


def test_a_folder_under_a_hidden_one_is_read_and_its_own_hidden_folders_skipped(tmp_path):
    d = tmp_path / ".config" / "diary"
    (d / ".git").mkdir(parents=True)
    (d / "monday.txt").write_text("rain\n", encoding="utf-8")
    (d / ".git" / "HEAD").write_text("ref: refs/heads/main\n", encoding="utf-8")
    assert source_of_path(str(d)).paths == (d / "monday.txt",)


def test_a_folder_too_big_to_be_a_corpus_is_refused_not_walked(tmp_path, monkeypatch):
    """`charlm train ~` or `/` typed in the app walked the whole disk (and met /proc's unreadable links)."""
    monkeypatch.setattr(corpus_mod, "MAX_DIR_ENTRIES", 5)
    for i in range(6):
        (tmp_path / f"{i}.txt").write_text("x\n", encoding="utf-8")
    with pytest.raises(UsageError, match=r"holds more than 5 files and folders; point at the folder that holds"):
        source_of_path(str(tmp_path))


def test_a_glob_picks_the_matching_files_in_sorted_order(tmp_path):
    d = tmp_path / "letters"
    d.mkdir()
    for name, text in [("2.txt", "two\n"), ("1.txt", "one\n"), ("notes.md", "not me\n")]:
        (d / name).write_text(text, encoding="utf-8")
    src = source_of_path(str(d / "*.txt"))
    assert src.name == "letters"
    assert read_text(src) == "one\n\ntwo\n"


@pytest.mark.parametrize("encoding, data, text", [
    ("latin-1", "café über\n".encode("latin-1"), "café über\n"),
    ("cp1252", "“quoted” – dash\n".encode("cp1252"), "“quoted” – dash\n"),
    ("utf-16", "hello ☃\r\nworld\n".encode("utf-16"), "hello ☃\nworld\n"),   # NULs, yet text
    ("utf-32", "hello ☃\r\nworld\n".encode("utf-32"), "hello ☃\nworld\n"),
    ("utf-16-le", "\ufeffhello ☃\n".encode("utf-16-le"), "hello ☃\n"),          # its BOM dropped too
])
def test_other_encodings(tmp_path, encoding, data, text):
    path = tmp_path / "old.txt"
    path.write_bytes(data)
    assert read_text(source_of_path(str(path), encoding)) == text


def test_utf8_is_the_default_and_a_bom_is_dropped(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeffhello \ufeff inside".encode("utf-8"))
    assert read_text(source_of_path(str(path))) == "hello \ufeff inside"   # only the leading BOM is a BOM


def test_every_file_of_a_directory_loses_its_bom(tmp_path):
    for name in ("a.txt", "b.txt"):
        (tmp_path / name).write_bytes("\ufeff".encode() + name.encode() + b"\r\n")
    assert read_text(source_of_path(str(tmp_path))) == "a.txt\n\nb.txt\n"


def test_crlf_and_bare_cr_become_lf(tmp_path):
    path = tmp_path / "dos.txt"
    path.write_bytes(b"one\r\ntwo\rthree\n\r\n\r\rend\r")
    assert read_text(source_of_path(str(path))) == "one\ntwo\nthree\n\n\n\nend\n"


@pytest.mark.parametrize("cut", range(1, 9))
def test_crlf_split_across_a_chunk_boundary_is_one_newline(tmp_path, small_chunks, cut):
    # "ab" + "\r\n" ... : with a first block of `cut` bytes the boundary falls before, inside
    # and after the CRLF; it must always come out as exactly one "\n".
    small_chunks(sniff=cut, chunk=3)
    path = tmp_path / "x.txt"
    path.write_bytes(b"ab\r\ncd\r\n\r\nef\r")
    assert read_text(source_of_path(str(path))) == "ab\ncd\n\nef\n"


@pytest.mark.parametrize("sniff", [1, 2, 3, 4])
def test_bom_split_across_chunks_is_still_dropped(tmp_path, small_chunks, sniff):
    small_chunks(sniff=sniff, chunk=1)
    path = tmp_path / "x.txt"
    path.write_bytes("\ufeffé\r\n".encode("utf-8"))
    assert read_text(source_of_path(str(path))) == "é\n"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=st.sampled_from(["a", "\r", "\n", "é", "☃", "😀", " "]), max_size=40),
       bom=st.booleans(), sniff=st.integers(1, 9), chunk=st.integers(1, 9))
def test_chunked_reading_equals_reading_whole(tmp_path_factory, monkeypatch, text, bom, sniff, chunk):
    monkeypatch.setattr(corpus_mod, "SNIFF_BYTES", sniff)
    monkeypatch.setattr(corpus_mod, "CHUNK_BYTES", chunk)
    path = tmp_path_factory.mktemp("chunks") / "x.txt"
    path.write_bytes((("\ufeff" if bom else "") + text).encode("utf-8"))
    assert read_text(source_of_path(str(path))) == normalise(text)


def test_invalid_utf8_says_where(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"line one\nline two\n\xffbad")
    with pytest.raises(UsageError) as e:
        read_text(source_of_path(str(path)))
    msg = e.value.message
    assert "not valid utf-8" in msg and "0xff" in msg and "offset 18" in msg and "line 3" in msg
    assert "--encoding" in msg


@pytest.mark.parametrize("chunk", range(1, 8))
def test_invalid_utf8_cut_by_a_chunk_boundary_still_says_where(tmp_path, small_chunks, chunk):
    # 0xe2 0x82 starts a three-byte character that "A" breaks off; wherever the chunk boundary
    # falls, the bad sequence is the one at offset 8, on line 3.
    small_chunks(sniff=chunk, chunk=chunk)
    path = tmp_path / "bad.txt"
    path.write_bytes(b"abc\nabc\n\xe2\x82A\nxyz\n")
    with pytest.raises(UsageError) as e:
        read_text(source_of_path(str(path)))
    assert "byte 0xe2 at offset 8 (line 3)" in e.value.message


def test_a_file_cut_in_the_middle_of_a_character(tmp_path):
    path = tmp_path / "cut.txt"
    path.write_bytes("snow\nman ☃".encode("utf-8")[:-1])
    with pytest.raises(UsageError, match=r"ends in the middle of a character \(byte 0xe2 at offset 9 \(line 2\)\)"):
        read_text(source_of_path(str(path)))


def test_binary_file_is_refused(tmp_path):
    path = tmp_path / "data.txt"
    path.write_bytes(b"abc\x00\x01\x02" * 10)
    with pytest.raises(UsageError, match="binary"):
        read_text(source_of_path(str(path)))


@pytest.mark.parametrize("make, needle", [
    (lambda d: d / "missing.txt", "no such file or directory"),
    (lambda d: (d / "empty").mkdir() or d / "empty", "has no text files"),
    (lambda d: d / "nothing*.txt", "no files match"),
])
def test_unusable_specs(tmp_path, make, needle):
    with pytest.raises(UsageError, match=needle):
        source_of_path(str(make(tmp_path)))


def test_unknown_encoding(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("a", encoding="utf-8")
    with pytest.raises(UsageError, match="unknown encoding"):
        source_of_path(str(path), "no-such-codec")
