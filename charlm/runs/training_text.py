"""Where a run's training text is now: where its source.json says, or where the person says
it went. One rule for every command that reads a run's text again (eval, resume, novelty)."""

from __future__ import annotations

from pathlib import Path

from charlm.corpus.files import CorpusSource
from charlm.corpus.names import resolve_corpus
from charlm.errors import UsageError
from charlm.runs.directory import RunDir


def training_source(run_dir: Path, spec: str | None = None, encoding: str = "utf-8", *,
                    how: str = "--corpus") -> CorpusSource:
    """The text `run_dir` trained on: at `spec` when the caller names it (the text moved), else
    where the run's source.json says. `how` is how a person names it to this command (e.g.
    "--corpus"): a UsageError says so when the run does not record it or it cannot be read there."""
    if spec is not None:
        return resolve_corpus(spec, encoding)
    source = RunDir(run_dir).read_source()
    if source is None:
        raise UsageError(f"{run_dir} does not say where its training text is (no readable source.json)",
                         f"pass the text it was trained on with {how}")
    try:
        return resolve_corpus(*source)
    except UsageError as e:
        raise UsageError(f"the training text of {run_dir} cannot be read ({e.problem})",
                         f"pass its new location with {how}") from None
