"""The new-training form: model kind, features, task, the kind's main hyperparameters, device,
split and name. It checks what it can (numbers) and hands a TrainRequest up; the engine checks the rest."""

from __future__ import annotations

import math

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Input, Label, Select

from engine.errors import InputError
from engine.text import printable
from engine.training.auto import AUTO
from engine.training.launch import DEVICES, MAIN_HYPERPARAMETERS, kind_defaults
from engine.training.run import TrainRequest

# key: (label, type, lowest allowed; floats must be above it, whole numbers at least it)
NUMBER_FIELDS = {
    "epochs": ("epochs", int, 1),
    "lr": ("learn rate", float, 0.0),
    "hidden": ("hidden", int, 1),
    "patience": ("patience", int, 1),
    "C": ("C", float, 0.0),
    "n_estimators": ("trees", int, 1),
    "learning_rate": ("learn rate", float, 0.0),
    "num_leaves": ("leaves", int, 2),
}
MIN_CLASS = ("min/class", int, 1)
SPLITS = (("by pack", "group"), ("by clip", "clip"))


def parse_number(text: str, label: str, kind: type, lowest: float) -> int | float:
    whole = kind is int
    wanted = f"a whole number ≥ {lowest}" if whole else f"a number > {lowest:g}"
    try:
        value = kind(text)
    except ValueError:
        raise InputError(f"{label}: {wanted}, not {text!r}") from None
    if (whole and value < lowest) or (not whole and (not math.isfinite(value) or value <= lowest)):
        raise InputError(f"{label}: {wanted}, not {text}")
    return value


class TrainForm(Vertical):
    class Submitted(Message):
        def __init__(self, request: TrainRequest) -> None:
            super().__init__()
            self.request = request

    def __init__(self, *, kinds: list[str], features: list[str], default_features: dict[str, str],
                 tasks: list[str], default_task: str, default_kind: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.kinds = kinds
        self.features = features
        self.default_features = default_features
        self.tasks = tasks
        self.default_task = default_task
        self.default_kind = default_kind

    def _row(self, label: str, control, key: str) -> Horizontal:
        return Horizontal(Label(label, classes="form-label"), control, classes="form-row", id=f"row-{key}")

    def compose(self) -> ComposeResult:
        yield Label("New training", classes="form-title")
        yield self._row("name", Input(self.default_task, id="train-name", compact=True), "name")
        yield self._row("model", Select([(k, k) for k in self.kinds], value=self.default_kind, allow_blank=False,
                                        id="train-model", compact=True), "model")
        yield self._row("features", Select([(f, f) for f in self.features], value=self.default_features[self.default_kind],
                                           allow_blank=False, id="train-features", compact=True), "features")
        yield self._row("task", Select([(t, t) for t in self.tasks], value=self.default_task, allow_blank=False,
                                       id="train-task", compact=True), "task")
        for key, (label, _, _) in NUMBER_FIELDS.items():
            yield self._row(label, Input(id=f"train-{key}", compact=True), key)
        yield self._row("device", Select([(d, d) for d in DEVICES], value="auto", allow_blank=False,
                                         id="train-device", compact=True), "device")
        yield self._row("split", Select(SPLITS, value="group", allow_blank=False, id="train-split", compact=True),
                        "split")
        yield self._row(MIN_CLASS[0], Input(placeholder="10", id="train-min-class", compact=True), "min-class")
        yield Button("Start training (s)", id="train-start", variant="primary", compact=True)
        yield Label("", id="train-form-message")

    def on_mount(self) -> None:
        self.show_kind(self.default_kind)

    @property
    def model(self) -> str:
        return str(self.query_one("#train-model", Select).value)

    def show_kind(self, kind: str) -> None:
        """Only the hyperparameters this kind takes, with its defaults as placeholders."""
        defaults = kind_defaults(kind)
        wanted = MAIN_HYPERPARAMETERS.get(kind, ())
        for key in (*NUMBER_FIELDS, "device"):
            self.query_one(f"#row-{key}").display = key in wanted
            if key in NUMBER_FIELDS:
                self.query_one(f"#train-{key}", Input).placeholder = str(defaults.get(key, ""))

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "train-model" and event.value in self.default_features:
            self.show_kind(str(event.value))
            self.query_one("#train-features", Select).value = self.default_features[str(event.value)]

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.submit()

    def submit(self) -> None:
        try:
            request = self.request()
        except InputError as error:
            self.show_error(str(error))
            return
        self.show_error("")
        self.post_message(self.Submitted(request))

    def show_error(self, message: str) -> None:
        self.query_one("#train-form-message", Label).update(Text(printable(message)))  # it may quote a path

    def _text(self, key: str) -> str:
        return self.query_one(f"#train-{key}", Input).value.strip()

    def request(self) -> TrainRequest:
        """The request the form describes; InputError names the field that is wrong."""
        model = self.model
        hyperparams: dict = {}
        for key in MAIN_HYPERPARAMETERS.get(model, ()):
            if key == "device":
                hyperparams["device"] = str(self.query_one("#train-device", Select).value)
            elif self._text(key):
                hyperparams[key] = parse_number(self._text(key), *NUMBER_FIELDS[key])
        min_class = self._text("min-class")
        features = str(self.query_one("#train-features", Select).value)
        return TrainRequest(
            name=self._text("name"), model=model, features=None if features == AUTO else features,
            taxonomy=str(self.query_one("#train-task", Select).value),
            split_by=str(self.query_one("#train-split", Select).value),
            min_class_samples=parse_number(min_class, *MIN_CLASS) if min_class else TrainRequest.min_class_samples,
            hyperparams=hyperparams)
