"""Where a run's training text is now, from any working directory: where the person says it
went, else the files source.json recorded (absolute paths), else its spec as given (a catalog
name, or a path from where the run was started); and where none of these can be read, the
encoded text in charlm's cache, found by the hash the run recorded. One rule for every command
that reads a run's text again (eval, resume, novelty, info's yardsticks; the app's resume and novelty)."""

from __future__ import annotations

import os
from pathlib import Path

from charlm import paths
from charlm.corpus.encoded import EncodedCorpus, cached_corpus, encode_corpus
from charlm.corpus.files import CorpusSource
from charlm.corpus.names import resolve_corpus, resolve_here
from charlm.corpus.vocab import CharVocab
from charlm.errors import UsageError
from charlm.runs.directory import RunDir, TextRecord


def training_source(run_dir: Path, spec: str | None = None, encoding: str = "utf-8", *,
                    how: str = "--corpus", download: bool = True) -> CorpusSource:
    """The files `run_dir` trained on: at `spec` when the caller names it (the text moved), else
    where the run's source.json says. `how` is how a person names it to this command (e.g.
    "--corpus"): a UsageError says so when the run does not record it or it cannot be read there.
    Without `download`, a catalog text not on this machine is not fetched (a UsageError)."""
    if spec is not None:
        return _resolve(spec, encoding, download)
    record = _record(run_dir, how)
    if record.paths and all(os.path.isfile(p) for p in record.paths):
        return CorpusSource(_name(record), record.paths, record.encoding)
    try:
        return _resolve(record.spec, record.encoding, download)
    except UsageError as e:
        raise UsageError(f"the training text of {run_dir} cannot be read ({e.problem})",
                         f"pass its new location with {how}") from None


def training_corpus(run_dir: Path, vocab: CharVocab, spec: str | None = None, encoding: str = "utf-8", *,
                    how: str = "--corpus", sha256: str | None = None, download: bool = True) -> EncodedCorpus:
    """The text `run_dir` trained on, as ids in `vocab`: read from its files (`training_source`),
    or, where they cannot be read or no longer hold that text, from the cache by the run's hash
    (`sha256`, else source.json's), with a note saying so (charlm.paths.say_note). A text the
    person names (`spec`) is taken as given: one that is not the run's is a UsageError, as is a
    recorded text that changed and is not in the cache (a run's numbers, and its resumption,
    mean something only on the text it trained on)."""
    record = RunDir(run_dir).text_record()
    sha256 = sha256 or (record.sha256 if record else None)
    try:
        corpus = encode_corpus(training_source(run_dir, spec, encoding, how=how, download=download), vocab)
    except UsageError:
        kept = cached_corpus(sha256, vocab) if sha256 and spec is None else None
        if kept is None:
            raise
        paths.say_note(f"the training text of {run_dir.name} is not at {_where(record)} any more: "
                       "using its copy in charlm's cache")
        return kept
    if sha256 is None or corpus.sha256 == sha256:
        return corpus
    where = _describe(corpus)
    kept = cached_corpus(sha256, vocab) if spec is None else None
    if kept is None:
        raise UsageError(f"{where} is not the text {run_dir.name} was trained on (its hash differs: it changed, or it is another text)",
                         f"pass the original with {how}")
    paths.say_note(f"{where} changed since {run_dir.name} trained on it: using the text it trained on (its copy "
                   "in charlm's cache)")
    return kept


def _resolve(spec: str, encoding: str, download: bool) -> CorpusSource:
    if download:
        return resolve_corpus(spec, encoding)
    found = resolve_here(spec, encoding)
    if found is None:
        raise UsageError(f"{spec} is not on this machine", f"charlm corpus get {spec}")
    return found


def _record(run_dir: Path, how: str) -> TextRecord:
    record = RunDir(run_dir).text_record()
    if record is None:
        raise UsageError(f"{run_dir} does not say where its training text is (no readable source.json)",
                         f"pass the text it was trained on with {how}")
    return record


def _name(record: TextRecord) -> str:
    """The corpus's display name, as resolving its spec would give it."""
    return record.paths[0].stem if len(record.paths) == 1 else (Path(record.spec).name or "corpus")


def _where(record: TextRecord | None) -> str:
    return "where it was" if record is None else _shown(record.paths, record.spec)


def _describe(corpus: EncodedCorpus) -> str:
    return _shown(corpus.paths, f"the text {corpus.name!r}")


def _shown(files: tuple[Path, ...], otherwise: str) -> str:
    """A text as a person knows it: its one file, else its name."""
    return str(files[0]) if len(files) == 1 else otherwise
