"""Two model versions side by side: their headline metrics and per-class F1 on the test split,
each with the change from the first to the second."""

from __future__ import annotations

from dataclasses import dataclass

from engine.models.registry import ModelVersion

HEADLINE = (("accuracy", "accuracy"), ("macro_f1", "macro-F1"), ("ece", "ECE"), ("n", "test examples"))


@dataclass(frozen=True)
class Row:
    name: str
    a: float | None
    b: float | None

    @property
    def delta(self) -> float | None:
        return None if self.a is None or self.b is None else self.b - self.a


@dataclass(frozen=True)
class Comparison:
    a: str  # refs
    b: str
    settings: list[tuple[str, str, str]]  # (what, a, b): kind, features, task, hyperparameters that differ
    headline: list[Row]
    per_class: list[Row]  # F1 per class; a class one version does not know has None on its side


def _differing_hyperparams(a: ModelVersion, b: ModelVersion) -> list[tuple[str, str, str]]:
    if a.kind != b.kind:
        return []  # different kinds take different hyperparameters
    keys = sorted(set(a.hyperparams) | set(b.hyperparams))
    return [(key, str(a.hyperparams.get(key, "—")), str(b.hyperparams.get(key, "—")))
            for key in keys if a.hyperparams.get(key) != b.hyperparams.get(key)]


def compare_versions(a: ModelVersion, b: ModelVersion, split: str = "test") -> Comparison:
    metrics_a, metrics_b = a.metrics.get(split) or {}, b.metrics.get(split) or {}
    settings = [("kind", a.kind, b.kind), ("features", str(a.spec), str(b.spec)), ("task", a.task, b.task),
                *_differing_hyperparams(a, b)]
    headline = [Row(title, metrics_a.get(key), metrics_b.get(key)) for key, title in HEADLINE]
    per_class_a, per_class_b = metrics_a.get("per_class") or {}, metrics_b.get("per_class") or {}
    classes = sorted(set(per_class_a) | set(per_class_b))
    per_class = [Row(label, (per_class_a.get(label) or {}).get("f1"), (per_class_b.get(label) or {}).get("f1"))
                 for label in classes]
    return Comparison(a.ref, b.ref, settings, headline, per_class)
