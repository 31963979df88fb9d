"""Choose the model: auto (the shape that learns most in this budget on this machine, timed
here) or a preset (with its size and speed on this machine), the budget, and the advanced
fields, each validated as it is typed."""

from __future__ import annotations

import threading
from dataclasses import replace

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.validation import Integer, Number
from textual.widgets import Collapsible, Input, Label, Select, Static
from textual.worker import Worker, WorkerState

from charlm import speed
from charlm.autosize import AutoChoice, plan
from charlm.config import AUTO, CELLS, PRESETS, ModelConfig, TrainConfig, preset_configs
from charlm.device import pick_device, precision_candidates
from charlm.errors import UsageError
from charlm.finetune import SHAPE_FIELDS, describe_finetune, finetune_configs, fixed_shape, shape_text
from charlm.model import param_count
from charlm.tui import format as fmt
from charlm.tui.errors import describe_error

AUTO_PLACEHOLDER = "small"      # what the fields hold until auto has chosen

# (field, label, int?, which config, validator)
FIELDS = (
    ("layers", "layers", True, "model", Integer(1, 8)),
    ("hidden", "hidden", True, "model", Integer(4, 4096)),
    ("embed", "embed", True, "model", Integer(1, 1024)),
    ("dropout", "dropout", False, "model", Number(0.0, 0.95)),
    ("seq_len", "seq-len", True, "train", Integer(2, 4096)),
    ("batch_size", "batch", True, "train", Integer(1, 4096)),
    ("lr", "lr", False, "train", Number(1e-6, 10.0)),
    ("eval_every", "eval every", True, "train", Integer(1, 1_000_000)),
)


def _text(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


class ModelPicker(Vertical):
    """Preset select (auto first), model info, budget, and an Advanced section."""

    def __init__(self, preset: str, model: dict, train: dict, budget: float, unit: str, **kwargs):
        super().__init__(**kwargs)
        self.initial = (preset, model, train)
        self.budget, self.unit = budget, unit
        self.vocab_size, self.train_chars, self.difficulty = 66, 0, 1.0
        self.filled: str | None = None      # the preset whose values are in the fields
        self.auto: AutoChoice | None = None  # what auto chose for the corpus and budget shown
        self._auto_note = "auto: waiting for the corpus"
        self.parent_shape: ModelConfig | None = None   # the shape of the run a new run starts from (fine-tune)
        self._steps_cap: int | None = None
        self._cancel = threading.Event()
        self._timer = None
        self._choosing: Worker | None = None    # auto's choice for the current corpus, shape and budget

    def compose(self) -> ComposeResult:
        yield Label("Model", classes="field-title")
        yield Select(self._preset_options(), id="preset", value=self.initial[0], allow_blank=False, compact=True)
        yield Static("", id="model-info", classes="info")
        with Horizontal(classes="field-row"):
            yield Label("budget", classes="field-label")
            yield Input(_text(self.budget), id="budget", type="number", compact=True,
                        validators=[Number(minimum=0.01, maximum=1e7)])
            yield Select([("minutes", "minutes"), ("steps", "steps")], id="budget-unit", value=self.unit,
                         allow_blank=False, compact=True)
        with Collapsible(title="Advanced", id="advanced"):
            with Horizontal(classes="field-row"):
                yield Label("cell", classes="field-label")
                yield Select([(c, c) for c in CELLS], id="cell", value="lstm", allow_blank=False, compact=True)
            for name, label, is_int, _, validator in FIELDS:
                with Horizontal(classes="field-row"):
                    yield Label(label, classes="field-label")
                    yield Input(id=name, type="integer" if is_int else "number", compact=True, validators=[validator])
        yield Static("", id="model-errors", classes="errors")

    def on_mount(self) -> None:
        name, model, train = self.initial
        self.fill(name, model, train)

    @property
    def preset(self) -> str:
        return str(self.query_one("#preset", Select).value)

    def fill(self, preset: str, model: dict | None = None, train: dict | None = None) -> None:
        """Put a preset's values (plus overrides) into the fields; for auto, what it chose (or,
        until it has, a placeholder) and a new choice is made."""
        if preset == AUTO and self.auto is not None:
            m, t = self.auto.configs(self.vocab_size, TrainConfig())
        else:
            m, t = preset_configs(AUTO_PLACEHOLDER if preset == AUTO else preset)
        if preset == AUTO:      # what the app was started with holds for auto's choices too
            model, train = model or self.initial[1], train or self.initial[2]
        for k, v in (model or {}).items():
            setattr(m, k, v)
        for k, v in (train or {}).items():
            setattr(t, k, v)
        if "eval_every" not in (train or {}):
            t.eval_every = self.app.options.eval_every     # (a short fine-tune validates more often: below)
        self._steps_cap = None
        if preset == AUTO and self.parent_shape is not None and self.auto is not None:
            m, t = finetune_configs(replace(self.parent_shape, vocab_size=m.vocab_size), self.auto, t,
                                    cap_steps=self.query_one("#budget-unit", Select).value != "steps")
            self._steps_cap = t.steps       # the fine-tune's passes end it before a minutes budget does
        self.filled = preset
        with self.prevent(Select.Changed, Input.Changed):
            self.query_one("#cell", Select).value = m.cell
            for name, _, _, which, _ in FIELDS:
                self.query_one(f"#{name}", Input).value = _text(getattr(m if which == "model" else t, name))
        self._train_extra = {k: v for k, v in vars(t).items() if k not in {f[0] for f in FIELDS}}
        if preset == AUTO and self.auto is None:
            self._choose_soon()
        self.update_info()

    @on(Select.Changed, "#preset")
    def _preset_changed(self, event: Select.Changed) -> None:
        """A preset picked: its values fill the fields (auto: its choice, made now if need be)."""
        if event.value != self.filled:
            self.fill(str(event.value))

    @on(Input.Changed, "#budget")
    @on(Select.Changed, "#budget-unit")
    def _budget_changed(self) -> None:
        """A new budget: auto chooses again."""
        if self.preset == AUTO:
            self.auto, self._choosing = None, None
            self._choose_soon()
        self.update_info()

    @on(Input.Changed)
    @on(Select.Changed, "#cell")
    def _field_changed(self) -> None:
        """Any field edited: re-check and show size and speed."""
        self.update_info()

    def set_parent(self, parent: ModelConfig | None) -> None:
        """A new run starts from a run of this shape (or, with None, from random weights): its
        shape fixes the model, auto sizes the fine-tune for the budget."""
        if parent == self.parent_shape:
            return                      # nothing changed: the fields (and what was typed) stay
        self.parent_shape = parent
        self.auto, self._choosing = None, None
        select = self.query_one("#preset", Select)
        select.disabled = parent is not None
        for name in SHAPE_FIELDS:
            self.query_one(f"#{name}").disabled = parent is not None
        if parent is not None and select.value != AUTO:
            with self.prevent(Select.Changed):
                select.value = AUTO
        self.fill(self.preset)

    def set_corpus(self, train_chars: int, vocab_size: int, difficulty: float = 1.0) -> None:
        """The corpus is read: its size sizes auto's model, its vocabulary every model, and how
        hard it is (charlm.yardsticks) places auto's predictions."""
        self.train_chars, self.vocab_size, self.difficulty = train_chars, vocab_size, difficulty
        self.auto, self._choosing = None, None
        self.refresh_presets()
        if self.preset == AUTO:
            self._choose_soon()

    def _preset_options(self) -> list[tuple[str, str]]:
        """auto, then each preset with its size and its speed on this machine (when timed)."""
        options = [(f"{AUTO:<8} chosen for your budget", AUTO)]
        for name, p in PRESETS.items():
            m, t = preset_configs(name)
            m.vocab_size = self.vocab_size
            cps = _timed_speed(m, t)
            speed_text = f" {fmt.count(cps)}/s" if cps else ""
            options.append((f"{name:<8} {m.layers}x{m.hidden:<4} {fmt.count(param_count(m)):>5}{speed_text}", name))
        return options

    def refresh_presets(self) -> None:
        """Relabel the presets (the vocabulary or the timed speeds changed)."""
        select = self.query_one("#preset", Select)
        value = select.value
        with self.prevent(Select.Changed):
            select.set_options(self._preset_options())
            select.value = value
            select.mutate_reactive(Select.value)     # relabel even when the value stayed the same
        self.update_info()

    def errors(self) -> list[str]:
        out = []
        for inp in self.query(Input):
            result = inp.validate(inp.value)
            if result is not None and not result.is_valid:
                label = "budget" if inp.id == "budget" else next(f[1] for f in FIELDS if f[0] == inp.id)
                out.append(f"{label}: {'; '.join(result.failure_descriptions) or 'invalid'}")
        return out

    def update_info(self) -> None:
        errors = self.errors()
        self.query_one("#model-errors", Static).update("\n".join(errors))
        info = self.query_one("#model-info", Static)
        if errors:
            info.update("[dim]fix the fields in red[/]")
            return
        if self.preset == AUTO:
            if self.auto is None:
                info.update(f"[dim]{self._auto_note}[/]", layout=True)
            elif self.parent_shape is not None:
                _, t = self.configs()
                info.update(f"fine-tune of {shape_text(self.parent_shape)}\n[dim]{describe_finetune(self.auto, t)}[/]")
            else:
                info.update(f"{self.auto.summary()}\n[dim]why: {self.auto.reason()}[/]")
            return
        m, t = self.configs()
        cps = _timed_speed(m, t)
        speed_text = f"{fmt.count(cps)} chars/s here" if cps else "speed: timing…"
        if not cps:
            self._time_soon(m, t)
        preset = PRESETS.get(self.preset)
        desc = preset.description.split(": ", 1)[-1] if preset else ""
        info.update(f"{fmt.count(param_count(m))} params · {speed_text}\n[dim]{desc}[/]")

    # -- timing this machine, while nothing else runs ---------------------------------------
    def _choose_soon(self) -> None:
        """Let auto choose half a second after the budget stops changing, unless a run is on."""
        if self.train_chars <= 0 or self.app.session.active:
            return
        self._auto_note = "auto: timing model shapes on this machine (once per machine)…"
        self._later(0.5, self._start_choosing)

    def _time_soon(self, m: ModelConfig, t: TrainConfig) -> None:
        """Time this shape a second after the fields stop changing, unless a run is on."""
        if self.app.options.time_presets and not self.app.session.active:
            self._later(1.0, lambda: self._start_timing(m, t))

    def _later(self, delay: float, callback) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(delay, callback)

    def _fresh_cancel(self) -> threading.Event:
        self.cancel_measure()
        self._cancel = threading.Event()
        return self._cancel

    def _start_choosing(self) -> None:
        if self.app.session.active or self.preset != AUTO:
            return
        try:
            budget = self._budget_config()
        except UsageError:
            return              # the budget field is being edited: its error shows already
        fixed = fixed_shape(self.parent_shape) if self.parent_shape is not None else dict(self.initial[1])
        self._choosing = self._choose(budget, fixed, self._fresh_cancel())

    def _start_timing(self, m: ModelConfig, t: TrainConfig) -> None:
        if not self.app.session.active:
            self._time(m, t, self._fresh_cancel())

    def on_unmount(self) -> None:
        self.cancel_measure()

    def cancel_measure(self) -> None:
        """A run starts: timing now would only measure the two competing for the CPU."""
        self._cancel.set()
        if self._timer is not None:
            self._timer.stop()

    @work(thread=True, exclusive=True, exit_on_error=False, group="measure")
    def _choose(self, budget: TrainConfig, fixed: dict, cancel: threading.Event) -> AutoChoice | None:
        try:
            return plan(self.train_chars, self.vocab_size, budget, fixed, cancel=cancel, difficulty=self.difficulty)
        except speed.Cancelled:
            return None

    @work(thread=True, exclusive=True, exit_on_error=False, group="measure")
    def _time(self, m: ModelConfig, t: TrainConfig, cancel: threading.Event) -> None:
        try:
            for precision in _precisions(t):
                speed.speed(m, t, precision, cancel)
        except speed.Cancelled:
            pass        # the run's own measured speed will be recorded instead

    @on(Worker.StateChanged)
    def _measured(self, event: Worker.StateChanged) -> None:
        """Show what timing found: auto's choice, or a preset's speed (or why there is none)."""
        worker = event.worker
        if worker.group != "measure":
            return
        if worker.state == WorkerState.SUCCESS and isinstance(worker.result, AutoChoice):
            if worker is not self._choosing:
                return              # chosen for a corpus, start or budget that has changed since
            self.auto = worker.result
            if self.preset == AUTO:
                self.fill(AUTO)
        elif worker.state == WorkerState.SUCCESS:
            self.refresh_presets()
        elif worker.state == WorkerState.ERROR:
            self._auto_note = f"auto could not time this machine: {describe_error(worker.error)}"
            self.notify(f"could not time this machine: {describe_error(worker.error)}", severity="warning")
            self.update_info()

    def _budget_config(self) -> TrainConfig:
        """The budget fields as a TrainConfig (everything else at its default)."""
        raw = self.query_one("#budget", Input)
        result = raw.validate(raw.value)
        if result is not None and not result.is_valid:
            raise UsageError("the budget is invalid", "fix the budget field")
        t = TrainConfig(**{k: v for k, v in self._train_extra.items() if k not in ("steps", "minutes")})
        budget = float(raw.value)
        if self.query_one("#budget-unit", Select).value == "steps":
            t.steps, t.minutes = max(1, int(budget)), None
        else:
            t.steps, t.minutes = None, budget
        return t

    def configs(self) -> tuple[ModelConfig, TrainConfig]:
        """The configs the fields describe; UsageError naming the fields that are wrong."""
        errors = self.errors()
        if errors:
            raise UsageError("some model settings are invalid: " + "; ".join(errors), "fix the fields in red")
        if self.preset == AUTO and self.auto is None:
            raise UsageError("auto is still choosing a model for this budget", "wait a moment, or pick a preset")
        m = ModelConfig(vocab_size=self.vocab_size, cell=str(self.query_one("#cell", Select).value))
        t = self._budget_config()
        for name, _, is_int, which, _ in FIELDS:
            raw = self.query_one(f"#{name}", Input).value
            setattr(m if which == "model" else t, name, int(raw) if is_int else float(raw))
        if self._steps_cap is not None and t.minutes is not None:
            t.steps = self._steps_cap
        t.sample_length = self.app.options.sample_length
        t.sample_every = self.app.options.sample_every
        return m, t


def _precisions(t: TrainConfig) -> tuple[str, ...]:
    return (t.precision,) if t.precision != "auto" else precision_candidates(pick_device(t.device))


def _timed_speed(m: ModelConfig, t: TrainConfig) -> float | None:
    """The best chars/s timed (or reached by a run) for this shape here, in any precision."""
    found = [v for p in _precisions(t) for v in (speed.cached(m, t, p), speed.run_speed(m, t, p)) if v]
    return max(found) if found else None
