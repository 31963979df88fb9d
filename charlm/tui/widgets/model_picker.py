"""Choose the model: auto (the shape that learns most in this budget on this machine, timed
here) or a preset (with its size and speed on this machine), the budget, and the advanced
fields, each validated as it is typed."""

from __future__ import annotations

from dataclasses import replace

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Input, Label, Static
from textual.worker import Worker, WorkerState

from charlm.config import AUTO, PRESETS, ModelConfig, TrainConfig, preset_configs
from charlm.errors import UsageError
from charlm.model.network import param_count
from charlm.train.autosize import AutoChoice
from charlm.train.finetune import SHAPE_FIELDS, describe_finetune, finetune_configs, fixed_shape, shape_text
from charlm.tui import format as fmt
from charlm.tui.errors import describe_error
from charlm.tui.machine_timing import GROUP, MachineTiming, timed_speed
from charlm.tui.widgets.advanced_fields import NAMES, AdvancedFields
from charlm.tui.widgets.budget_field import BudgetField
from charlm.tui.widgets.select import Select

AUTO_PLACEHOLDER = "small"      # what the fields hold until auto has chosen


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
        self.timing = MachineTiming(self, busy=lambda: self.app.session.active)

    def compose(self) -> ComposeResult:
        yield Label("Model", classes="field-title")
        yield Select(preset_options(self.vocab_size), id="preset", value=self.initial[0], allow_blank=False, compact=True)
        yield Static("", id="model-info", classes="info")
        yield BudgetField(self.budget, self.unit)
        yield AdvancedFields(id="advanced")
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
                                    cap_steps=not self.query_one(BudgetField).in_steps)
            self._steps_cap = t.steps       # the fine-tune's passes end it before a minutes budget does
        self.filled = preset
        self.query_one(AdvancedFields).show(m, t)
        self._train_extra = {k: v for k, v in vars(t).items() if k not in NAMES}
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
            self.auto, self.timing.choosing = None, None
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
        self.auto, self.timing.choosing = None, None
        select = self.query_one("#preset", Select)
        select.disabled = parent is not None
        self.query_one(AdvancedFields).hold(SHAPE_FIELDS, parent is not None)
        if parent is not None and select.value != AUTO:
            with self.prevent(Select.Changed):
                select.value = AUTO
        self.fill(self.preset)

    def set_corpus(self, train_chars: int, vocab_size: int, difficulty: float = 1.0) -> None:
        """The corpus is read: its size sizes auto's model, its vocabulary every model, and how
        hard it is (charlm.corpus.yardsticks) places auto's predictions."""
        self.train_chars, self.vocab_size, self.difficulty = train_chars, vocab_size, difficulty
        self.auto, self.timing.choosing = None, None
        self.refresh_presets()
        if self.preset == AUTO:
            self._choose_soon()

    def refresh_presets(self) -> None:
        """Relabel the presets (the vocabulary or the timed speeds changed)."""
        select = self.query_one("#preset", Select)
        value = select.value
        with self.prevent(Select.Changed):
            select.set_options(preset_options(self.vocab_size))
            select.value = value
            select.mutate_reactive(Select.value)     # relabel even when the value stayed the same
        self.update_info()

    def errors(self) -> list[str]:
        budget = self.query_one(BudgetField).error()
        return ([budget] if budget else []) + self.query_one(AdvancedFields).errors()

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
        cps = timed_speed(m, t)
        if not cps and self.app.options.time_presets:     # a second after the fields stop changing
            self.timing.later(1.0, lambda: self.timing.time(m, t))
        info.update(preset_info(self.preset, m, cps))

    # -- timing this machine, while nothing else runs ---------------------------------------
    def _choose_soon(self) -> None:
        """Let auto choose half a second after the budget stops changing, unless a run is on."""
        if self.train_chars <= 0 or self.app.session.active:
            return
        self._auto_note = "auto: timing model shapes on this machine (once per machine)…"
        self.timing.later(0.5, self._start_choosing)

    def _start_choosing(self) -> None:
        if self.preset != AUTO:
            return
        try:
            budget = self._budget_config()
        except UsageError:
            return              # the budget field is being edited: its error shows already
        fixed = fixed_shape(self.parent_shape) if self.parent_shape is not None else dict(self.initial[1])
        self.timing.choose(self.train_chars, self.vocab_size, budget, fixed, self.difficulty)

    def on_unmount(self) -> None:
        self.timing.cancel()

    @on(Worker.StateChanged)
    def _measured(self, event: Worker.StateChanged) -> None:
        """Show what timing found: auto's choice, or a preset's speed (or why there is none)."""
        worker = event.worker
        if worker.group != GROUP:
            return
        if worker.state == WorkerState.SUCCESS and isinstance(worker.result, AutoChoice):
            if worker is not self.timing.choosing:
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
        """The budget as a TrainConfig (everything else as filled in)."""
        t = TrainConfig(**{k: v for k, v in self._train_extra.items() if k not in ("steps", "minutes")})
        for name, value in self.query_one(BudgetField).fields().items():
            setattr(t, name, value)
        return t

    def configs(self) -> tuple[ModelConfig, TrainConfig]:
        """The configs the fields describe; UsageError naming the fields that are wrong."""
        errors = self.errors()
        if errors:
            raise UsageError("some model settings are invalid: " + "; ".join(errors), "fix the fields in red")
        if self.preset == AUTO and self.auto is None:
            raise UsageError("auto is still choosing a model for this budget", "wait a moment, or pick a preset")
        m, t = ModelConfig(vocab_size=self.vocab_size), self._budget_config()
        self.query_one(AdvancedFields).apply(m, t)
        if self._steps_cap is not None and t.minutes is not None:
            t.steps = self._steps_cap
        t.sample_length = self.app.options.sample_length
        t.sample_every = self.app.options.sample_every
        return m, t


def preset_options(vocab_size: int) -> list[tuple[str, str]]:
    """auto, then each preset with its size and its speed on this machine (when timed)."""
    options = [(f"{AUTO:<8} chosen for your budget", AUTO)]
    for name in PRESETS:
        m, t = preset_configs(name)
        m.vocab_size = vocab_size
        cps = timed_speed(m, t)
        speed_text = f" {fmt.count(cps)}/s" if cps else ""
        options.append((f"{name:<8} {m.layers}x{m.hidden:<4} {fmt.count(param_count(m)):>5}{speed_text}", name))
    return options


def preset_info(name: str, m: ModelConfig, chars_per_sec: float | None) -> str:
    """A preset's size, its speed here (once timed) and what it is for."""
    speed_text = f"{fmt.count(chars_per_sec)} chars/s here" if chars_per_sec else "speed: timing…"
    preset = PRESETS.get(name)
    desc = preset.description.split(": ", 1)[-1] if preset else ""
    return f"{fmt.count(param_count(m))} params · {speed_text}\n[dim]{desc}[/]"
