"""A model's evaluation (headline with 95% CIs, per-class table, confusion matrix), or two versions
compared side by side (settings, headline and per-class F1 with deltas)."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from engine.evaluation.comparison import Comparison
from engine.evaluation.metrics import Evaluation


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}"


def _delta(value: float | None, percent: bool = True, higher_is_better: bool = True) -> Text:
    if value is None:
        return Text("")
    shown = f"{value * 100:+.1f}" if percent else f"{value:+g}"
    better = value > 0 if higher_is_better else value < 0
    return Text(shown, style="" if abs(value) < 1e-9 else ("green" if better else "red"))


def headline(evaluation: Evaluation) -> Text:
    low, high = evaluation.accuracy_ci
    f1_low, f1_high = evaluation.macro_f1_ci
    return Text.assemble(
        ("accuracy ", "bold"), f"{evaluation.accuracy:.1%} ({low * 100:.0f}–{high * 100:.0f})  ",
        ("macro-F1 ", "bold"), f"{evaluation.macro_f1:.1%} ({f1_low * 100:.0f}–{f1_high * 100:.0f})  ",
        ("ECE ", "bold"), f"{evaluation.ece:.3f}  ", ("n ", "bold"), str(evaluation.n))


def per_class_table(evaluation: Evaluation) -> Table:
    table = Table("class", "precision", "recall", "F1", "n", box=None, padding=(0, 1), header_style="bold")
    for m in evaluation.per_class:
        table.add_row(m.label, _pct(m.precision), _pct(m.recall), _pct(m.f1), str(m.support))
    return table


def confusion_table(evaluation: Evaluation) -> Table:
    """Rows = true class, columns = predicted (names cut to 5 characters); the diagonal in green."""
    table = Table("true\\pred", *(c[:5] for c in evaluation.classes), box=None, padding=(0, 1), header_style="bold")
    for i, (name, row) in enumerate(zip(evaluation.classes, evaluation.confusion)):
        cells = [Text(str(v), style=("green" if i == j else ("red" if v else "dim"))) for j, v in enumerate(row)]
        table.add_row(name, *cells)
    return table


class MetricsView(Static):
    def show_text(self, text: str | Text) -> None:
        self.update(text)

    def show_evaluation(self, title: str, evaluation: Evaluation, notes: list[str] | None = None) -> None:
        parts: list[RenderableType] = [Text(title, style="bold"), headline(evaluation), Text(""),
                                       per_class_table(evaluation), Text(""), Text("confusion (rows true)", style="bold"),
                                       confusion_table(evaluation)]
        parts += [Text(f"note: {note}", style="dim") for note in notes or []]
        self.update(Group(*parts))

    def show_comparison(self, comparison: Comparison) -> None:
        settings = Table("", comparison.a, comparison.b, box=None, padding=(0, 1), header_style="bold")
        for what, a, b in comparison.settings:
            settings.add_row(what, a, b, style="" if a == b else "yellow")
        numbers = Table("test", comparison.a, comparison.b, "Δ", box=None, padding=(0, 1), header_style="bold")
        for row in comparison.headline:
            if row.name == "test examples":
                numbers.add_row(row.name, *(str(v) if v is not None else "—" for v in (row.a, row.b)),
                                _delta(row.delta, percent=False))
            elif row.name == "ECE":
                numbers.add_row(row.name, *(f"{v:.3f}" if v is not None else "—" for v in (row.a, row.b)),
                                _delta(row.delta, percent=False, higher_is_better=False))
            else:
                numbers.add_row(row.name, _pct(row.a), _pct(row.b), _delta(row.delta))
        per_class = Table("F1 per class", comparison.a, comparison.b, "Δ", box=None, padding=(0, 1),
                          header_style="bold")
        for row in comparison.per_class:
            per_class.add_row(row.name, _pct(row.a), _pct(row.b), _delta(row.delta))
        self.update(Group(Text(f"{comparison.a} → {comparison.b}", style="bold"), settings, Text(""), numbers,
                          Text(""), per_class))
