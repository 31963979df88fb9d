"""Reading a corpus: a file, a directory of text files, or a glob, as one normalised text stream.

Text is decoded incrementally in chunks so a corpus larger than memory can be hashed and
encoded in bounded memory. Normalisation: a UTF-8 BOM is dropped, CRLF and bare CR become
LF, and files are joined with a blank line, in sorted order.
"""

from __future__ import annotations

import codecs
import glob as globlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from charlm.errors import UsageError
from charlm.paths import missing_path_problem, shown_path, user_path

CHUNK_BYTES = 1 << 22        # 4 MiB per read: bounded memory whatever the corpus size
SNIFF_BYTES = 8192           # like git: a NUL in the first 8 KiB means binary
MAX_DIR_ENTRIES = 100_000    # a corpus folder larger than this is a mistake (python's stdlib: ~10k)
TEXT_SUFFIXES_SKIPPED = {".pyc", ".so", ".o", ".png", ".jpg", ".jpeg", ".gif", ".zip", ".gz", ".pdf",
                         ".bin", ".safetensors", ".npy", ".ids", ".exe", ".dll", ".whl", ".tar"}


@dataclass(frozen=True)
class CorpusSource:
    """Where a corpus comes from: a display name and the files, in reading order."""
    name: str
    paths: tuple[Path, ...]
    encoding: str = "utf-8"

    @property
    def n_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.paths)


def source_of_path(spec: str, encoding: str = "utf-8") -> CorpusSource:
    """A CORPUS argument that names files (a file, a directory or a glob) as its list of files;
    charlm.corpus.names.resolve_corpus also knows catalog names and sets."""
    _check_encoding(encoding)
    path = user_path(spec)
    # os.path's tests, not Path's: they answer False where Path's raise (a folder we may not enter).
    if os.path.isfile(path):
        return CorpusSource(path.stem, (path,), encoding)
    if os.path.isdir(path):
        files = text_files_under(path)
        if not files:
            raise UsageError(f"directory {spec} has no text files", "point at a .txt file or a directory that holds some")
        return CorpusSource(path.name or "corpus", files, encoding)
    if globlib.has_magic(spec):
        files = tuple(sorted(Path(p) for p in globlib.glob(os.path.expanduser(spec), recursive=True) if Path(p).is_file()))
        if not files:
            raise UsageError(f"no files match {spec}", "check the pattern, or quote it so your shell does not expand it")
        return CorpusSource(_glob_name(spec), files, encoding)
    if os.path.exists(path):
        raise UsageError(f"{spec} is not a regular file or directory", "give a text file, a directory or a glob")
    raise UsageError(missing_path_problem(path), "check the path, or run `charlm corpus list` for known corpora")


def iter_text(source: CorpusSource) -> Iterator[str]:
    """The normalised text of every file in order, in chunks, files separated by a blank line."""
    ends_with_newline = True
    for i, path in enumerate(source.paths):
        if i > 0:
            yield "\n" if ends_with_newline else "\n\n"
        last = ""
        for chunk in _iter_file(path, source.encoding):
            if chunk:
                last = chunk
                yield chunk
        ends_with_newline = last.endswith("\n") if last else True


def read_text(source: CorpusSource) -> str:
    """The whole normalised text in memory: for small corpora and prompt files."""
    return "".join(iter_text(source))


def normalise(text: str) -> str:
    """Line endings to LF and no BOM: what every corpus chunk goes through."""
    return text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def _iter_file(path: Path, encoding: str) -> Iterator[str]:
    try:
        f = open(path, "rb")
    except OSError as e:
        raise UsageError(f"cannot read {shown_path(path)}: {e.strerror}", "check the file's permissions") from None
    with f:
        head = _read(f, SNIFF_BYTES, path)
        _check_head(path, head, encoding)
        decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
        offset, pending_cr, first = 0, False, True
        block = head
        while True:
            final = not block
            held = decoder.getstate()[0]    # bytes of a character cut off at the previous block's end
            try:
                text = decoder.decode(block, final=final)
            except UnicodeDecodeError as e:
                data = held + block         # e.start counts from the held bytes, not from `block`
                where = offset - len(held) + e.start
                problem = f"byte 0x{data[e.start]:02x} at offset {where} (line {1 + _count_newlines(path, where)})"
                if final:
                    problem = f"it ends in the middle of a character ({problem})"
                raise UsageError(f"{path} is not valid {encoding}: {problem}",
                                 "pass --encoding with the file's real encoding (e.g. latin-1), or fix the file") from None
            offset += len(block)
            if first and text:
                text, first = text.removeprefix("\ufeff"), False
            text, pending_cr = carry_cr(text, pending_cr, final)
            yield text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text   # one scan, not two
            if final:
                return
            block = _read(f, CHUNK_BYTES, path)


def _read(f, size: int, path: Path) -> bytes:
    """A read that fails (a device error, a /proc file that cannot be read whole) as a UsageError."""
    try:
        return f.read(size)
    except OSError as e:
        raise UsageError(f"cannot read {shown_path(path)}: {e.strerror}",
                         "train on ordinary text files (this one failed to read)") from None


def _count_newlines(path: Path, end: int) -> int:
    """Newlines in the first `end` bytes of `path`: an error's line number, counted only when
    there is an error (counting every block as it is read cost 10% of encoding a corpus)."""
    count = 0
    with open(path, "rb") as f:
        while end > 0 and (block := f.read(min(CHUNK_BYTES, end))):
            count += block.count(b"\n")
            end -= len(block)
    return count


def carry_cr(text: str, pending: bool, final: bool) -> tuple[str, bool]:
    """A CR at a chunk's end may be the first half of a CRLF: hold it back for the next chunk.
    Returns the text to use now and whether a CR is held."""
    if pending:
        text = "\r" + text
    pending = text.endswith("\r") and not final
    return (text[:-1] if pending else text), pending


def text_files_under(folder: Path) -> tuple[Path, ...]:
    """The text files in `folder` and its subfolders, in path order: hidden files and folders
    (within `folder`: it may itself sit under ~/.local) and those that cannot be read past are left
    out, links to folders are not followed, and a folder of more than MAX_DIR_ENTRIES entries (a
    home folder, `/`) is refused rather than walked for minutes."""
    found, seen = [], 0
    for root, dirs, names in os.walk(folder):                  # errors (a folder we may not enter): skipped
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        seen += len(dirs) + len(names)
        if seen > MAX_DIR_ENTRIES:
            raise UsageError(f"directory {shown_path(folder)} holds more than {MAX_DIR_ENTRIES:,} files and folders",
                             "point at the folder that holds your texts")
        found.extend(p for p in (Path(root) / n for n in names) if os.path.isfile(p) and looks_textual(p))
    return tuple(sorted(found))


def looks_textual(path: Path) -> bool:
    """By its name: not hidden, and not a kind of file that is never text."""
    return not path.name.startswith(".") and path.suffix.lower() not in TEXT_SUFFIXES_SKIPPED


def _glob_name(spec: str) -> str:
    head = spec.split("*")[0].rstrip("/") or "corpus"
    return Path(head).name or "corpus"


def _check_encoding(encoding: str) -> None:
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise UsageError(f"unknown encoding {encoding!r}", "use a Python codec name such as utf-8, latin-1 or cp1252") from None


# Byte-order marks of the encodings that read as NUL-riddled nonsense in UTF-8, longest first
# (a UTF-32-LE mark starts with the UTF-16-LE one).
WIDE_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
             (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def _check_head(path: Path, head: bytes, encoding: str) -> None:
    """Refuse, before decoding, a file that is UTF-16/32 read as something else, or binary."""
    codec = codecs.lookup(encoding).name
    if codec.startswith(("utf-16", "utf-32")):
        return                                      # NUL bytes are part of the text
    wide = next((name for bom, name in WIDE_BOMS if head.startswith(bom)), None)
    if wide and (codec.startswith("utf-8") or b"\x00" in head):
        raise UsageError(f"{path} is {wide.upper()} text (it starts with a {wide.upper()} byte-order mark), "
                         f"not {encoding}", f"pass --encoding {wide}")
    if b"\x00" in head:
        raise UsageError(f"{path} looks like a binary file (it contains NUL bytes)", "use text files only")


def read_text_file(path: str | Path, encoding: str = "utf-8") -> str:
    """One text file read as a corpus is (no BOM, LF line endings): the text an inspection reads."""
    path = user_path(path)
    if not os.path.isfile(path):
        raise UsageError(f"no such text file: {shown_path(path)}", "check the path")
    return read_text(CorpusSource(path.stem, (path,), encoding))
