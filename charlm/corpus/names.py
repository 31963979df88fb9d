"""What a CORPUS argument can name, and the corpus the app trains on by default.

A CORPUS is, in this order: a file, directory or glob; a file or directory inside corpora/
(`mytext.txt`, or just `mytext`); a catalog name (`shakespeare`, fetched on first use); a
catalog set (`english`: its parts fetched and read as one text); or `python-stdlib`, the
running interpreter's own source, which every machine has.
"""

from __future__ import annotations

import functools
import glob as globlib
import os
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from charlm.corpus import files as corpus_mod
from charlm.corpus.catalog import (USER_CATALOG, CatalogEntry, CorpusSet, find_entry, find_set, load_catalog, load_sets,
                                   suggest)
from charlm.corpus.fetch import Progress, fetch
from charlm.corpus.files import CorpusSource
from charlm.corpus.verify import local_path, local_status
from charlm.errors import UsageError
from charlm.paths import corpora_dir, user_path

DEFAULT = "shakespeare"
STDLIB = "python-stdlib"
STDLIB_CAP_BYTES = 2_000_000     # ~2 MB: minutes of training on a CPU, seconds to hash
# Tests, GUI code, generated tables and vendored tools: not the Python people write.
STDLIB_SKIP = {"site-packages", "dist-packages", "test", "tests", "idlelib", "turtledemo", "lib2to3", "ensurepip",
               "pydoc_data", "encodings", "tkinter", "__pycache__", "__phello__"}
NOT_USER_TEXTS = {"readme.md", USER_CATALOG}


@dataclass(frozen=True)
class CorpusEntry:
    """One line of the corpus picker and of `charlm corpus list`."""
    name: str                   # what to type as CORPUS
    description: str
    kind: str                   # "user" (in corpora/), "catalog" (fetchable), "set" (several catalog
                                # corpora as one) or "builtin" (python-stdlib)
    path: Path | None           # the local file or directory; None until a catalog corpus is downloaded
    size_bytes: int
    downloaded: bool            # usable without the network
    status: str = "ready"       # "ready", "not downloaded", or "modified" (catalog file edited locally)
    licence: str = ""
    url: str = ""


def resolve_corpus(spec: str, encoding: str = "utf-8", progress: Progress | None = None) -> CorpusSource:
    """A CORPUS argument as files to read, fetching a catalog corpus on first use.

    `progress(done_bytes, total_bytes)` is called while downloading; raising from it cancels
    the download and leaves nothing behind.
    """
    spec = spec.strip()
    if not spec:
        raise UsageError("empty corpus name", "give a text file, a directory, a glob, or a name from `charlm corpus list`")
    found = _locate(spec)
    if isinstance(found, Path):
        return corpus_mod.source_of_path(str(found), encoding)
    if isinstance(found, CatalogEntry):
        return CorpusSource(found.name, (fetch(found, progress).path,), encoding)
    if isinstance(found, CorpusSet):
        return CorpusSource(found.name, fetch_set(found, progress), encoding)
    if found == STDLIB:
        return stdlib_corpus()
    if not _is_bare_name(spec) or globlib.has_magic(spec):
        return corpus_mod.source_of_path(spec, encoding)      # its own precise error (no such file, no match...)
    raise _unknown(spec)


class _WouldFetch(Exception):
    pass


def resolve_here(spec: str, encoding: str = "utf-8") -> CorpusSource | None:
    """resolve_corpus without fetching anything: None where the text is not on this machine."""
    def refuse(_done: int, _total: int) -> None:
        raise _WouldFetch()         # called before the first byte is copied
    try:
        return resolve_corpus(spec, encoding, progress=refuse)
    except _WouldFetch:
        return None


def fetch_set(corpus_set: CorpusSet, progress: Progress | None = None) -> tuple[Path, ...]:
    """Every part of a set in corpora/, verified, fetched where missing; `progress` sees the
    bytes of the whole set."""
    paths, before = [], 0
    for part in corpus_set.parts:
        offset = before
        paths.append(fetch(part, progress and (lambda done, _total: progress(offset + done, corpus_set.size))).path)
        before += part.size
    return tuple(paths)


def list_corpora() -> list[CorpusEntry]:
    """The user's texts in corpora/ first (by name), then the catalog and its sets, then python-stdlib."""
    catalog = load_catalog()
    out = _user_texts({e.filename for e in catalog.values()})
    rows = {entry.name: _catalog_row(entry) for entry in catalog.values()}
    out += rows.values()
    for corpus_set in load_sets().values():
        out.append(_set_row(corpus_set, [rows[p.name] for p in corpus_set.parts]))
    files = _stdlib_files()
    out.append(CorpusEntry(STDLIB, "the Python standard library's source, on every machine (offline fallback)",
                           "builtin", _stdlib_root(), sum(p.stat().st_size for p in files), True))
    return out


def default_corpus(progress: Progress | None = None) -> tuple[CorpusSource, str | None]:
    """Shakespeare, or the stdlib fallback plus a plain sentence saying why it could not be had."""
    try:
        return resolve_corpus(DEFAULT, progress=progress), None
    except UsageError as e:
        reason = e.problem
    source = stdlib_corpus()
    return source, (f"{DEFAULT} is not available ({reason}); training on the Python standard library's source "
                    f"instead ({source.n_bytes / 1e6:.1f} MB). Set CHARLM_MIRROR or pick a text file to change that.")


def stdlib_corpus() -> CorpusSource:
    """The running interpreter's standard library .py files, sorted, up to STDLIB_CAP_BYTES."""
    files = _stdlib_files()
    if not files:
        raise UsageError("this Python has no standard library source to fall back on",
                         "pass a text file, or set CHARLM_MIRROR to a directory holding the catalog's files")
    return CorpusSource(STDLIB, files)


def record_spec(spec: str) -> str:
    """How a run remembers its corpus: names stay names, paths become absolute."""
    found = _locate(spec.strip())
    return str(found.resolve()) if isinstance(found, Path) else spec


def _locate(spec: str) -> Path | CatalogEntry | CorpusSet | str | None:
    """A path, a catalog entry or set, STDLIB, or None: the first reading of `spec` that exists."""
    path = user_path(spec)
    if os.path.lexists(path):       # a broken or looping link too: resolving it says what is wrong
        return path
    if globlib.has_magic(spec) or not _is_bare_name(spec):
        return None                             # a glob, or a path that does not exist
    root = corpora_dir()
    if os.path.exists(root / spec):
        return root / spec
    entry = find_entry(spec) or find_set(spec)
    if entry is not None:
        return entry
    if spec.lower() == STDLIB:
        return STDLIB
    # `mytext` for corpora/mytext.txt, when exactly one file has that stem.
    stems = [p for p in root.iterdir() if p.is_file() and p.stem == spec and not p.name.startswith(".")] \
        if root.is_dir() else []
    return stems[0] if len(stems) == 1 else None


def _is_bare_name(spec: str) -> bool:
    return os.sep not in spec and "/" not in spec and not spec.startswith(("~", "."))


def _user_texts(catalog_files: set[str]) -> list[CorpusEntry]:
    root = corpora_dir()
    if not root.is_dir():
        return []
    out = []
    for p in sorted(root.iterdir(), key=lambda p: p.name.lower()):
        if p.name.startswith(".") or p.name.lower() in NOT_USER_TEXTS or p.name in catalog_files:
            continue
        if p.is_file() and corpus_mod.looks_textual(p):
            out.append(CorpusEntry(p.name, "your text", "user", p, p.stat().st_size, True))
        elif p.is_dir():
            try:
                files = corpus_mod.text_files_under(p)
            except UsageError:
                continue                                # a folder too big to be a corpus: not listed
            if files:
                out.append(CorpusEntry(p.name, f"your texts: {len(files)} file{'s' * (len(files) != 1)}", "user", p,
                                       sum(f.stat().st_size for f in files), True))
    return out


def _catalog_row(entry: CatalogEntry) -> CorpusEntry:
    status = local_status(entry)
    here = status == "ok"
    return CorpusEntry(entry.name, entry.description, "catalog", local_path(entry) if status != "missing" else None,
                       entry.size, here, {"ok": "ready", "missing": "not downloaded"}.get(status, status),
                       entry.licence, entry.url)


def _set_row(corpus_set: CorpusSet, parts: list[CorpusEntry]) -> CorpusEntry:
    missing = sum(not p.downloaded for p in parts)
    status = "ready" if not missing else "not downloaded" if missing == len(parts) else f"{missing} of {len(parts)} parts to download"
    names = " + ".join(p.name for p in corpus_set.parts)
    return CorpusEntry(corpus_set.name, f"{corpus_set.description} ({names})", "set", None, corpus_set.size,
                       not missing, status, "; ".join(dict.fromkeys(p.licence for p in parts if p.licence)))


def _unknown(spec: str) -> UsageError:
    catalog = load_catalog()
    users = _user_texts({e.filename for e in catalog.values()})
    close = suggest(spec, [*catalog.values(), *load_sets().values(), STDLIB, *(e.name for e in users)])
    problem = f"no file, directory or known corpus called {spec!r}"
    if close:
        return UsageError(problem, f"did you mean {' or '.join(repr(c) for c in close)}? (`charlm corpus list` shows them all)")
    return UsageError(problem, "give a text file, a directory, a glob, or a name from `charlm corpus list`")


def _stdlib_root() -> Path:
    return Path(sysconfig.get_paths().get("stdlib") or os.path.dirname(os.__file__))


@functools.lru_cache(maxsize=1)
def _stdlib_files() -> tuple[Path, ...]:
    root = _stdlib_root()
    files, total = [], 0
    for p in _stdlib_candidates(root):
        try:
            size = p.stat().st_size
            # Training reads strictly as UTF-8: one odd file must not break the fallback.
            p.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if total + size > STDLIB_CAP_BYTES:
            break
        files.append(p)
        total += size
    return tuple(files)


def _stdlib_candidates(root: Path) -> list[Path]:
    """Every wanted .py file under `root`, sorted by relative path; skipped trees are never walked
    (site-packages can be huge)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in STDLIB_SKIP and not d.startswith(("config-", "."))]
        out += [Path(dirpath, f) for f in filenames if f.endswith(".py")]
    return sorted(out, key=lambda p: p.relative_to(root).as_posix())
