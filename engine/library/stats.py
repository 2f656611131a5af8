"""What a workspace holds and whether its label set is ready to train: counts per label, per
source, coverage, and readiness (at least two classes, every class at its minimum)."""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.errors import WorkbenchError
from engine.store.labels import technique_counts
from engine.store.library_view import library_counts
from engine.store.suggestions import OutcomeCount, outcome_counts
from engine.taxonomy import Taxonomy


@dataclass
class LabelCount:
    label: str
    count: int
    minimum: int
    colour: str

    @property
    def ready(self) -> bool:
        return self.count >= self.minimum


@dataclass
class TaxonomyStats:
    taxonomy: str
    labels: list[LabelCount]
    missing: list[str]  # labels of the taxonomy with no example yet
    segments: int
    clips_covered: int
    ready: bool
    reasons: list[str]
    techniques: dict[str, dict[str, int]] = field(default_factory=dict)  # technique → label → segments
    suggestions: list[SuggestionOutcomes] = field(default_factory=list)  # per suggested label

    def to_dict(self) -> dict:
        return {
            "taxonomy": self.taxonomy, "segments": self.segments, "clips_covered": self.clips_covered,
            "label_counts": {c.label: c.count for c in self.labels},
            "minimums": {c.label: c.minimum for c in self.labels},
            "missing_labels": self.missing, "ready_for_training": self.ready, "reasons": self.reasons,
            "technique_counts": {name: sum(by_label.values()) for name, by_label in self.techniques.items()},
            "technique_counts_by_label": self.techniques,
            "suggestions": {s.label: s.to_dict() for s in self.suggestions},
        }


@dataclass(frozen=True)
class SuggestionOutcomes:
    """What people decided on a model's suggestions of one label: acceptance rate = accepted / decided
    (accepted, rejected or corrected to another label)."""

    label: str
    accepted: int
    rejected: int
    corrected: int
    pending: int

    @property
    def decided(self) -> int:
        return self.accepted + self.rejected + self.corrected

    @property
    def acceptance_rate(self) -> float | None:
        return self.accepted / self.decided if self.decided else None

    @classmethod
    def of(cls, count: OutcomeCount) -> SuggestionOutcomes:
        return cls(count.label, count.accepted, count.rejected, count.corrected, count.pending)

    def to_dict(self) -> dict:
        rate = self.acceptance_rate
        return {"accepted": self.accepted, "rejected": self.rejected, "corrected": self.corrected,
                "pending": self.pending, "decided": self.decided,
                "acceptance_rate": None if rate is None else round(rate, 4)}


@dataclass(frozen=True)
class LabellingSpeed:
    """How fast a person labels, from the lead time saved with each label made in the label screen
    (clip opened, or previous label saved on it, to label saved)."""

    timed_labels: int
    total_s: float
    median_s: float | None

    @property
    def seconds_per_label(self) -> float | None:
        return self.total_s / self.timed_labels if self.timed_labels else None

    @property
    def labels_per_hour(self) -> float | None:
        return 3600.0 * self.timed_labels / self.total_s if self.total_s > 0 else None

    def to_dict(self) -> dict:
        def rounded(value: float | None, digits: int) -> float | None:
            return None if value is None else round(value, digits)

        return {"timed_labels": self.timed_labels, "labelling_s": round(self.total_s, 3),
                "labels_per_hour": rounded(self.labels_per_hour, 1),
                "seconds_per_label": rounded(self.seconds_per_label, 3),
                "median_seconds_per_label": rounded(self.median_s, 3)}

    def describe(self) -> str:
        if not self.timed_labels:
            return "no timed labels yet (labels made in the label screen are timed)"
        return (f"{self.labels_per_hour:.0f} labels/hour, {self.seconds_per_label:.1f} s per label "
                f"(median {self.median_s:.1f} s) over {self.timed_labels} timed labels")


@dataclass
class WorkspaceStats:
    clips: int
    total_duration_s: float
    clips_labelled: int
    labels_per_clip: float
    sources: dict[str, dict[str, int]]  # source → {"clips": n, "labels": n}
    origins: dict[str, int]
    beat_grids: int
    labelling: LabellingSpeed
    taxonomies: list[TaxonomyStats] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "clips": self.clips, "total_duration_s": round(self.total_duration_s, 3),
            "clips_labelled": self.clips_labelled, "clips_unlabelled": self.clips - self.clips_labelled,
            "labels_per_clip": round(self.labels_per_clip, 3), "sources": self.sources,
            "label_origins": self.origins, "beat_grids": self.beat_grids, "labelling_speed": self.labelling.to_dict(),
            "taxonomies": [t.to_dict() for t in self.taxonomies],
        }


def readiness(taxonomy: Taxonomy, counts: dict[str, int]) -> tuple[bool, list[str]]:
    """Ready when at least two classes have examples and every class with examples has its minimum."""
    reasons = []
    if len(counts) < 2:
        reasons.append(f"need at least 2 labelled classes, have {len(counts)}")
    short = [f"{label} {count}/{taxonomy.min_count(label)}" for label, count in sorted(counts.items())
             if count < taxonomy.min_count(label)]
    if short:
        reasons.append("below minimum: " + ", ".join(short))
    return not reasons, reasons


def workspace_stats(workspace, taxonomy: str | None = None) -> WorkspaceStats:
    with workspace.db.transaction(read_only=True) as con:
        counts = library_counts(con)
        techniques = {row.taxonomy: technique_counts(con, row.taxonomy) for row in counts.per_taxonomy}
        outcomes = outcome_counts(con)
    stats = WorkspaceStats(
        clips=counts.clips, total_duration_s=counts.total_duration_s, clips_labelled=counts.clips_labelled,
        labels_per_clip=counts.labels / counts.clips_labelled if counts.clips_labelled else 0.0,
        sources={row.source: {"clips": row.clips, "labels": row.labels} for row in counts.sources},
        origins=counts.origins, beat_grids=counts.beat_grids,
        labelling=LabellingSpeed(counts.lead_times.labels, counts.lead_times.total_s, counts.lead_times.median_s),
    )
    per_taxonomy = {row.taxonomy: row for row in counts.per_taxonomy}
    names = [taxonomy] if taxonomy else sorted(per_taxonomy) or [workspace.default_taxonomy_name]
    for name in names:
        covered = per_taxonomy.get(name)
        try:
            tax = workspace.taxonomy(name)
        except WorkbenchError as error:  # labels of a taxonomy whose file is gone or bad: say so, count the rest
            if name == taxonomy:
                raise
            stats.taxonomies.append(TaxonomyStats(
                taxonomy=name, labels=[], missing=[], segments=covered.segments if covered else 0,
                clips_covered=covered.clips if covered else 0, ready=False, reasons=[str(error)]))
            continue
        label_counts = {row.label: row.segments for row in counts.per_label if row.taxonomy == name}
        known = {label: n for label, n in label_counts.items() if label in tax.names}
        ready, reasons = readiness(tax, known)
        stats.taxonomies.append(TaxonomyStats(
            taxonomy=name,
            labels=[LabelCount(label, n, tax.min_count(label), tax.spec(label).colour) for label, n in known.items()],
            missing=[label for label in tax.names if label not in label_counts],
            segments=covered.segments if covered else 0, clips_covered=covered.clips if covered else 0,
            ready=ready, reasons=reasons, techniques=techniques.get(name, {}),
            suggestions=[SuggestionOutcomes.of(count) for count in outcomes if count.taxonomy == name],
        ))
    return stats
