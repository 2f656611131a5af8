"""Suggestions (active learning): a model pre-labels unlabelled clips, the most informative first,
and a person accepts, rejects or corrects each one.

`suggest` runs a model version over the clips with no label of its taxonomy (and none whose
suggestion from this version a person rejected), and keeps `limit` of them:

- uncertainty, per clip, from the model's class probabilities p (sorted, p1 ≥ p2 ≥ …):
  margin  = 1 - (p1 - p2)          (default; 1 when the top two tie, 0 when the model is sure)
  entropy = H(p) / log(K)          (Shannon entropy over K classes, scaled to [0, 1]);
- diversity: clips are taken most uncertain first, by the cosine similarity of z-scored feature
  vectors (the measure of `engine.datasets.similarity`) to the clips already taken or still
  pending from an earlier run:
  - at or above `similarity` (0.999, near-duplicates: the same sound at another gain or format)
    a clip is skipped, so near-duplicates are never suggested together;
  - at or above `alike` (0.9: another velocity layer or round-robin of one drum, say) it waits
    until every clip unlike those taken is in, so one batch asks about as many different sounds
    as it can: labelling one teaches the model about the others. `bench/bench_labeling_loop.py`
    measured this against skipping near-duplicates alone: equal or better in 15 of 15
    comparisons on real and synthetic kits (+0.00 to +0.015 macro-F1 of the kit's labels).

Each kept clip gets the model's top label as a label of origin `model` (with its probability as
confidence: the library shows it until a person decides) and a row in `suggestions` with its rank.
Deciding goes through the label-edit service, so the TUI can undo it: accept puts the suggested
label as the person's own, correct puts another label, reject removes the model's label; each
outcome is recorded, and undoing a decision makes the suggestion pending again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.concepts import Origin, Rejection, Segment
from engine.datasets.similarity import DEFAULT_SIMILARITY, unit_rows
from engine.errors import InputError, NotFound
from engine.features.extract import Target
from engine.library.editing import Change, import_labels, put_label, remove_label, undo_change
from engine.library.labels import resolve_label_name
from engine.progress import CancelToken, Reporter
from engine.store.clips import all_clips
from engine.store.labels import LabelWrite, clip_ids_labelled_in, labels_at
from engine.store.suggestions import (NewSuggestion, Suggestion, add_suggestions, decide_suggestion, get_suggestion,
                                      query_suggestions, rejected_clip_ids)

MEASURES = ("margin", "entropy")
DEFAULT_ALIKE = 0.9


def uncertainty(probabilities: np.ndarray, measure: str = "margin") -> np.ndarray:
    """Per row of class probabilities, how unsure the model is, in [0, 1] (see the module's formulas)."""
    p = np.asarray(probabilities, dtype=np.float64)
    if measure == "margin":
        if p.shape[1] < 2:
            return np.zeros(len(p))
        top = -np.sort(-p, axis=1)
        return 1.0 - (top[:, 0] - top[:, 1])
    if measure == "entropy":
        if p.shape[1] < 2:
            return np.zeros(len(p))
        safe = np.clip(p, 1e-300, None)
        return -(p * np.log(safe)).sum(axis=1) / np.log(p.shape[1])
    raise InputError(f"unknown uncertainty measure {measure!r}; choose {' or '.join(MEASURES)}")


def pick_diverse(scores: np.ndarray, features: np.ndarray, limit: int, similarity: float = DEFAULT_SIMILARITY,
                 taken: int = 0, alike: float | None = None) -> list[int]:
    """Up to `limit` row indices, highest score first (ties by index), skipping a row whose cosine
    similarity (z-scored features) to a row already picked is at least `similarity`; with `alike`,
    a row at least that similar to one picked waits until no other row is left (then it comes in
    score order, still skipped as a near-duplicate). The last `taken` rows of `features` (beyond
    `scores`) count as picked already and are never returned."""
    units = unit_rows(features)
    picked = list(range(len(scores), len(scores) + taken))
    chosen: list[int] = []
    waiting: list[int] = []

    def nearest(row: int) -> float:
        return float(np.max(units[picked] @ units[row])) if picked else -1.0

    for row in np.lexsort((np.arange(len(scores)), -np.asarray(scores))):
        if len(chosen) >= limit:
            break
        closest = nearest(int(row))
        if closest >= similarity:
            continue
        if alike is not None and closest >= alike:
            waiting.append(int(row))
            continue
        picked.append(int(row))
        chosen.append(int(row))
    for row in waiting:
        if len(chosen) >= limit:
            break
        if nearest(row) < similarity:
            picked.append(row)
            chosen.append(row)
    return chosen


def suggesting_model(workspace, taxonomy: str) -> str | None:
    """The model to ask for suggestions in `taxonomy` where none is named (the label screen): the
    active version trained on it, the newest when several models are; None when there is none."""
    from engine.models.registry import list_versions

    active = [v for v in list_versions(workspace) if v.is_active and v.task == taxonomy]
    return max(active, key=lambda v: v.created_at).ref if active else None


@dataclass
class SuggestRun:
    model: str
    taxonomy: str
    candidates: int  # unlabelled clips the model looked at
    suggestions: list[Suggestion]
    rejections: list[Rejection]


def suggest(workspace, ref: str, *, limit: int = 20, measure: str = "margin", similarity: float = DEFAULT_SIMILARITY,
            alike: float | None = DEFAULT_ALIKE, workers: int | None = None, reporter: Reporter | None = None,
            cancel: CancelToken | None = None) -> SuggestRun:
    """Pre-label the `limit` most informative unlabelled clips of the version's taxonomy (see above)."""
    from engine.inference import load

    if limit < 1:
        raise InputError(f"--limit must be at least 1, got {limit}")
    if not 0.0 < similarity <= 1.0:
        raise InputError(f"--similarity must be within (0, 1], got {similarity:g}")
    if alike is not None and not 0.0 < alike <= 1.0:
        raise InputError(f"--alike must be within (0, 1], got {alike:g}")
    uncertainty(np.zeros((0, 2)), measure)  # an unknown measure fails before any work
    model = load(workspace, ref)
    version = model.version
    taxonomy = version.task_taxonomy(workspace)
    if taxonomy is None:
        raise InputError(f"{version.ref} was trained on {version.task!r}, not a taxonomy of this workspace: "
                         "its suggestions would have no label set to go in")
    if model.window_s:
        raise InputError(f"{version.ref} is a section model (windows of {model.window_s:g} s); suggestions "
                         "label whole clips")
    tax = workspace.taxonomy(taxonomy)
    with workspace.db.transaction(read_only=True) as con:
        skip = clip_ids_labelled_in(con, taxonomy) | rejected_clip_ids(con, version.model_id, taxonomy)
        waiting = {s.clip_id for s in query_suggestions(con, taxonomy=taxonomy)}
        library = all_clips(con)
    clips = [clip for clip in library if clip.clip_id not in skip]
    if not clips:
        return SuggestRun(version.ref, taxonomy, 0, [], [])
    targets = [Target(clip.clip_id, clip.path, clip.size_bytes) for clip in clips]
    suggested = [Target(clip.clip_id, clip.path, clip.size_bytes) for clip in library if clip.clip_id in waiting]
    features, kept, rejections = model.features(workspace, targets + suggested, workers=workers, reporter=reporter,
                                                cancel=cancel)
    fresh = sum(1 for k in kept if k < len(targets))  # kept indices come in order: the candidates first
    if not fresh:
        return SuggestRun(version.ref, taxonomy, len(clips), [], rejections)
    probabilities = model.classifier.predict_proba(features[:fresh])
    scores = uncertainty(probabilities, measure)
    classes = version.label_set
    chosen = pick_diverse(scores, features, limit, similarity, taken=len(kept) - fresh, alike=alike)
    new, writes = [], []
    for rank, row in enumerate(chosen, start=1):
        clip_id, best = targets[kept[row]].clip_id, int(np.argmax(probabilities[row]))
        label = resolve_label_name(tax, classes[best])
        confidence = float(probabilities[row, best])
        new.append(NewSuggestion(clip_id, taxonomy, Segment.whole(), label, confidence, version.model_id,
                                 version.ref, rank, float(scores[row])))
        writes.append(LabelWrite(clip_id, taxonomy, label, Origin.MODEL, confidence, Segment.whole()))
    with workspace.db.transaction() as con:
        import_labels(con, tax, writes)  # the model's labels, beside the suggestion rows, in one commit
        add_suggestions(con, new)
        batch = {s.clip_id for s in new}
        stored = [s for s in query_suggestions(con, taxonomy=taxonomy) if s.clip_id in batch
                  and s.model_id == version.model_id]
    return SuggestRun(version.ref, taxonomy, len(clips), sorted(stored, key=lambda s: s.rank), rejections)


# -- deciding ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Decision:
    """A person's outcome on a suggestion and the label edit it made (what undo takes back)."""

    suggestion: Suggestion
    outcome: str
    change: Change
    corrected_to: str | None = None

    def to_dict(self) -> dict:
        return {**self.suggestion.to_dict(), "outcome": self.outcome, "corrected_to": self.corrected_to,
                "change": self.change.description}


def pending(workspace, *, taxonomy: str | None = None, clip_id: str | None = None) -> list[Suggestion]:
    """Pending suggestions, in the order to walk them (oldest batch first, then by rank)."""
    with workspace.db.transaction(read_only=True) as con:
        return query_suggestions(con, pending=True, taxonomy=taxonomy, clip_id=clip_id)


def all_suggestions(workspace, *, taxonomy: str | None = None) -> list[Suggestion]:
    with workspace.db.transaction(read_only=True) as con:
        return query_suggestions(con, pending=None, taxonomy=taxonomy)


def _pending_one(workspace, suggestion_id: int) -> Suggestion:
    with workspace.db.transaction(read_only=True) as con:
        found = get_suggestion(con, suggestion_id)
    if found is None:
        raise NotFound(f"no suggestion with id {suggestion_id}")
    if found.outcome is not None:
        raise InputError(f"the suggestion of {found.label} on {found.path} was {found.outcome} already")
    return found


def decide(workspace, suggestion_id: int, outcome: str, label: str | None = None) -> Decision:
    """Accept (the suggested label becomes the person's), correct (`label` becomes the person's) or
    reject (the model's label goes) a pending suggestion, through the label-edit service; the outcome
    is recorded after the edit is saved."""
    s = _pending_one(workspace, suggestion_id)
    bounds = {} if s.segment.is_whole else {"start_s": s.segment.start_s, "end_s": s.segment.end_s}
    corrected_to = None
    if outcome == "accepted":
        change = put_label(workspace, s.clip_id, s.label, taxonomy=s.taxonomy, **bounds)
    elif outcome == "corrected":
        if label is None:
            raise InputError("a correction needs the label to put instead")
        corrected_to = resolve_label_name(workspace.taxonomy(s.taxonomy), label)
        if corrected_to == s.label:
            outcome, corrected_to = "accepted", None
        change = put_label(workspace, s.clip_id, label, taxonomy=s.taxonomy, **bounds)
    elif outcome == "rejected":
        probe = LabelWrite(s.clip_id, s.taxonomy, s.label, Origin.MODEL, s.confidence, s.segment)
        with workspace.db.transaction(read_only=True) as con:
            model_labels = labels_at(con, probe)
        change = (remove_label(workspace, model_labels[0].label_id) if model_labels
                  else Change(s.clip_id, f"no model label of {s.label} left", (), ()))
    else:
        raise InputError(f"unknown outcome {outcome!r}")
    with workspace.db.transaction() as con:
        decide_suggestion(con, suggestion_id, outcome, corrected_to)
    return Decision(s, outcome, change, corrected_to)


def undo_decision(workspace, decision: Decision) -> Change:
    """Take back a decision: its label edit is undone and the suggestion is pending again."""
    undo_change(workspace, decision.change)
    with workspace.db.transaction() as con:
        decide_suggestion(con, decision.suggestion.suggestion_id, None)
    return decision.change


def decide_many(workspace, outcome: str, *, clip_ids: list[str] | None = None, above: float | None = None,
                taxonomy: str | None = None) -> list[Decision]:
    """Accept or reject the pending suggestions of `clip_ids`, or of at least `above` confidence."""
    if (clip_ids is None) == (above is None):
        raise InputError("name the clips, or give --all-above P (not both)")
    if above is not None and not 0.0 <= above <= 1.0:
        raise InputError(f"--all-above must be within [0, 1], got {above:g}")
    waiting = pending(workspace, taxonomy=taxonomy)
    if clip_ids is not None:
        chosen = []
        for clip_id in clip_ids:
            found = [s for s in waiting if s.clip_id == clip_id]
            if not found:
                raise NotFound(f"no pending suggestion on clip {clip_id}")
            chosen += found
    else:
        chosen = [s for s in waiting if s.confidence >= above]
    return [decide(workspace, s.suggestion_id, outcome) for s in chosen]
