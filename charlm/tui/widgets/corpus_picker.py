"""Choose what to train on: the default corpus, a text under corpora/, a catalog corpus, or a
typed path (→ completes). The chosen corpus is read and encoded in a worker; its size,
characters and vocabulary then show below, and `CorpusReady` goes up to the screen."""

from __future__ import annotations

import os

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.suggester import Suggester
from textual.widgets import Input, Label, ProgressBar, Static
from textual.worker import Worker, WorkerState

from charlm.corpus import names as corpora
from charlm.corpus.encoded import encode_corpus
from charlm.corpus.yardsticks import yardsticks_for
from charlm.errors import UsageError
from charlm.tui import format as fmt
from charlm.tui.messages import CorpusFailed, CorpusPreparing, CorpusReady
from charlm.tui.widgets.select import Select

DEFAULT = "__default__"


class PathSuggester(Suggester):
    """Completes the last path component from the filesystem; directories end in '/'."""

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        if not value:
            return None
        expanded = os.path.expanduser(value)
        head, prefix = os.path.split(expanded)
        try:
            names = sorted(n for n in os.listdir(head or ".") if n.startswith(prefix) and not n.startswith("."))
        except OSError:
            return None
        if not names:
            return None
        common = os.path.commonprefix(names)
        if len(names) == 1 and os.path.isdir(os.path.join(head or ".", names[0])):
            common += "/"
        return value + common[len(prefix):] if len(common) > len(prefix) else None


class PathInput(Input):
    """The path field. Focus selects its whole value, so typing replaces it (Tab in, type a new
    path); `start_typing` focuses it with a first character typed, to go on from instead."""

    def start_typing(self, text: str) -> None:
        self.value = text
        self.cursor_position = len(text)
        if self.screen.focused is not self:
            self.select_on_focus = False
            # At once, not as focus() does (later): the rest of a path typed fast, or a terminal's
            # burst, is already queued behind this key and must reach the field, not Start.
            self.screen.set_focus(self)

    def on_focus(self) -> None:
        # Runs before Input's own focus handler (the subclass's first), which reads the flag: restore it after.
        if not self.select_on_focus:
            self.call_next(setattr, self, "select_on_focus", True)


class CorpusPicker(Vertical):
    """The corpus select, the path input, and what the chosen text holds."""

    def __init__(self, initial: str | None, val_fraction: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        self.initial, self.val_fraction = initial, val_fraction
        self.spec: str | None = None
        self._to_download: set[str] = set()
        self._values: set[str] = set()           # what the list offers

    def compose(self) -> ComposeResult:
        yield Label("Corpus", classes="field-title")
        yield Select([], id="corpus-select", prompt="loading the list…", compact=True, allow_blank=True)
        yield PathInput(id="corpus-path", placeholder="…or type a path: / or ~", suggester=PathSuggester(),
                    compact=True)
        yield ProgressBar(id="corpus-download", total=1, show_eta=False, show_percentage=True)
        yield Static("", id="corpus-info", classes="info")

    def on_mount(self) -> None:
        self.query_one("#corpus-download").display = False
        self._list_corpora()

    @work(thread=True, exclusive=True, exit_on_error=False, group="corpus-list")
    def _list_corpora(self) -> list[corpora.CorpusEntry]:
        return corpora.list_corpora()

    @on(Worker.StateChanged)
    def _worker_done(self, event: Worker.StateChanged) -> None:
        """Fill the list when it is read; report a corpus that could not be prepared."""
        worker = event.worker
        if worker.group == "corpus-list" and worker.state == WorkerState.SUCCESS:
            self._fill(worker.result)
        elif worker.state == WorkerState.ERROR:
            error = worker.error
            message = error.message if isinstance(error, UsageError) else f"{type(error).__name__}: {error}"
            if worker.group == "corpus-list":
                self.notify(f"could not list corpora: {message}", severity="error")
            elif worker.group == "corpus":
                self.post_message(CorpusFailed(self.spec or "?", message))

    def _fill(self, entries: list[corpora.CorpusEntry]) -> None:
        self._to_download = {e.name for e in entries if not e.downloaded}
        self._values = set()
        options = []
        for e in entries:
            value = str(e.path) if e.kind == "user" and e.path else e.name
            where = "" if e.downloaded else " (download)"
            options.append((Text(f"{e.name} · {fmt.size(e.size_bytes)}{where}"), value))
            self._values.add(value)
        select = self.query_one("#corpus-select", Select)
        current = select.value
        with self.prevent(Select.Changed):
            select.set_options(options)
            select.prompt = "pick a corpus"
            if any(v == current for _, v in options):
                select.value = current
                select.mutate_reactive(Select.value)     # relabel even when the value stayed the same
        if self.spec is not None:
            return                  # a refresh (a corpus was just downloaded): keep the choice
        initial = self.initial
        if initial is None:
            initial = corpora.DEFAULT
        if not self._show_in_list(initial) and self.initial is not None:
            self.query_one("#corpus-path", Input).value = self.initial
        self.choose(self.initial if self.initial is not None else DEFAULT)

    def type_path(self, start: str) -> None:
        """Focus the path field with `start` typed in it (the screen's / ~ . keys)."""
        self.query_one("#corpus-path", PathInput).start_typing(start)

    @on(Select.Changed, "#corpus-select")
    def _picked(self, event: Select.Changed) -> None:
        """A corpus picked from the list."""
        if isinstance(event.value, str):
            self.query_one("#corpus-path", Input).value = ""
            self.choose(event.value)

    @on(Input.Submitted, "#corpus-path")
    def _typed(self, event: Input.Submitted) -> None:
        """A path typed and Enter pressed."""
        spec = event.value.strip()
        if spec:
            self._show_in_list(spec)
            self.choose(spec)

    def _show_in_list(self, spec: str) -> bool:
        """The list names `spec` where it offers it, else nothing; whether it offers it."""
        select, offered = self.query_one("#corpus-select", Select), spec in self._values
        with self.prevent(Select.Changed):
            if offered:
                select.value = spec
            else:
                select.clear()
        return offered

    def choose(self, spec: str) -> None:
        self.spec = spec
        self.query_one("#corpus-info", Static).update("[dim]reading…[/]")
        self._prepare(spec)

    @work(thread=True, exclusive=True, exit_on_error=False, group="corpus")
    def _prepare(self, spec: str) -> None:
        def progress(done: int, total: int) -> None:
            self.post_message(CorpusPreparing(spec, done, total))

        notice = None
        if spec == DEFAULT:
            source, notice = corpora.default_corpus(progress)
            record = source.name
        else:
            source, record = corpora.resolve_corpus(spec, progress=progress), corpora.record_spec(spec)
        encoded = encode_corpus(source)
        self.post_message(CorpusReady(spec, record, source, encoded, yardsticks_for(encoded, self.val_fraction), notice))

    def on_corpus_preparing(self, event: CorpusPreparing) -> None:
        bar = self.query_one("#corpus-download", ProgressBar)
        bar.display = True
        bar.update(total=max(event.total, 1), progress=event.done)
        self.query_one("#corpus-info", Static).update(f"[dim]downloading {fmt.size(event.done)}…[/]")

    def on_corpus_ready(self, event: CorpusReady) -> None:
        if event.spec != self.spec:
            event.stop()            # an earlier choice finished late: not the one on screen
            return
        self.query_one("#corpus-download").display = False
        c = event.corpus
        described = Text.assemble((c.name, "bold"), f" · {fmt.size(c.n_bytes)} · {len(c):,} chars · "
                                  f"vocabulary {len(c.vocab) - 1}")      # a file's name as written: no markup
        if event.yardsticks.ngrams:
            n, nats = event.yardsticks.best()
            described.append(f"\na {n}-gram of this text reaches {nats:.3f} nats/char on its split", style="dim")
        self.query_one("#corpus-info", Static).update(described)
        if event.notice:
            self.notify(event.notice, severity="warning", timeout=10)
            select = self.query_one("#corpus-select", Select)
            if event.source.name in self._values:
                with self.prevent(Select.Changed):
                    select.value = event.source.name       # the fallback, not the corpus it stands in for
        if {event.spec, corpora.DEFAULT if event.spec == DEFAULT else None} & self._to_download:
            self._list_corpora()    # it is downloaded now: say so in the list

    def on_corpus_failed(self, event: CorpusFailed) -> None:
        self.query_one("#corpus-download").display = False
        self.query_one("#corpus-info", Static).update(Text(event.error, style="red"))      # typed text: no markup
        self.notify(event.error, title="Corpus", severity="error", timeout=8)
