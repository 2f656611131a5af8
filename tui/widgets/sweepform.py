"""The new-sweep dialog: a name, what to search (grid items `lr=1e-3,1e-2`, or a sampler's space
`lr=loguniform(1e-4,1e-2)` with a number of trials), the training every trial starts from and the
pruner (on per-epoch validation accuracy). It gives back a SweepConfig; the engine checks the rest
when the sweep starts."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Select

from engine.errors import InputError
from engine.sweeps.space import parse_grid, parse_space, split_search
from engine.sweeps.study import PRUNERS, SweepConfig
from engine.text import printable
from engine.training.run import TrainRequest
from tui.widgets.trainform import MIN_CLASS, SPLITS, parse_number

SWEEP_MODEL = "mlp"  # as `sweep run`
# (key, label, placeholder)
FIELDS = (("name", "name", "lr-grid"), ("search", "search", "lr=1e-3,1e-2 epochs=5,10"),
          ("trials", "trials", "tpe/random: how many"), ("model", "model", SWEEP_MODEL),
          ("features", "features", "the model's default"), ("min-class", MIN_CLASS[0], "10"))


class SweepDialog(ModalScreen[SweepConfig | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="sweep-dialog"):
            yield Label("New sweep: every grid point, or each sampled trial, is a training job",
                        classes="dialog-question")
            for key, label, placeholder in FIELDS:
                yield Horizontal(Label(label, classes="form-label"),
                                 Input(placeholder=placeholder, id=f"sweep-{key}", compact=True), classes="form-row")
            yield Horizontal(Label("split", classes="form-label"),
                             Select(SPLITS, value="group", allow_blank=False, id="sweep-split", compact=True),
                             classes="form-row")
            yield Horizontal(Label("prune", classes="form-label"),
                             Select([(p, p) for p in PRUNERS], value="none", allow_blank=False, id="sweep-prune",
                                    compact=True), classes="form-row")
            yield Label("", id="sweep-form-message")
            yield Label("enter: start · escape: cancel", classes="dialog-hint")

    def _text(self, key: str) -> str:
        return self.query_one(f"#sweep-{key}", Input).value.strip()

    def config(self) -> SweepConfig:
        """The sweep the form describes; InputError names what is wrong."""
        name = self._text("name")
        if not name:
            raise InputError("name: give the sweep a name")
        grid_specs, space_specs = split_search(self._text("search"))
        if not grid_specs and not space_specs:
            raise InputError("search: say what to search, e.g. lr=1e-3,1e-2 (a grid) or lr=loguniform(1e-4,1e-2)")
        if grid_specs and space_specs:
            raise InputError("search: either grid items (lr=1e-3,1e-2) or a space (lr=loguniform(…)), not both")
        trials = parse_number(self._text("trials"), "trials", int, 1) if self._text("trials") else None
        min_class = self._text("min-class")
        request = TrainRequest(
            name=name.replace("-", "_"), model=self._text("model") or SWEEP_MODEL,
            features=self._text("features") or None, split_by=str(self.query_one("#sweep-split", Select).value),
            min_class_samples=parse_number(min_class, *MIN_CLASS) if min_class else TrainRequest.min_class_samples)
        return SweepConfig(name=name, sampler="grid" if grid_specs else "tpe", grid=parse_grid(grid_specs),
                           space=[d.to_dict() for d in parse_space(space_specs)], trials=trials,
                           prune=str(self.query_one("#sweep-prune", Select).value), seed=request.seed,
                           request=request.__dict__)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            config = self.config()
        except InputError as error:
            self.query_one("#sweep-form-message", Label).update(Text(printable(str(error))))
            return
        self.dismiss(config)

    def action_cancel(self) -> None:
        self.dismiss(None)
