"""Suggestions (issue 14 item 8): a model pre-labels the most informative unlabelled clips, a person
accepts, rejects or corrects each, and `stats` shows the acceptance rate per class."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
import soundfile
from typer.testing import CliRunner

from cli.main import app
from conftest import clip_id_of, copy_workspace_with_versions, curated_library, write_hits
from engine.audio.synth import DEMO_PACKS
from engine.concepts import JobState, Origin, Split
from engine.datasets.export import split_items
from engine.jobs.log import JobLog
from engine.library.importer import import_folder
from engine.models.registry import list_versions
from engine.progress import CancelToken
from engine.store.labels import labelled_segments, query_labels
from engine.training.run import TrainRequest, run_training
from engine.datasets.similarity import unit_rows
from engine.triage.suggestions import pick_diverse, uncertainty
from engine.workspace import Workspace

runner = CliRunner()


def ok(ws: Path, *args) -> dict:
    result = runner.invoke(app, ["--headless", "--workspace", str(ws), *map(str, args), "--json"])
    assert result.exit_code == 0, f"{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, list]:
    """drums@1 (logreg) trained on a small curated library, then five unlabelled hits imported, one
    of them twice (the same samples as wav and flac: two clips, identical features)."""
    root = tmp_path_factory.mktemp("suggest")
    workspace = Workspace.open(root / "ws")
    import_folder(workspace, curated_library(root / "curated", per_pack=3, packs=DEMO_PACKS[:2]), curated=True,
                  workers=1)
    params = TrainRequest(name="drums", model="logreg", min_class_samples=2, split_by="clip").__dict__
    run_training(workspace, JobLog(workspace, "train", params, state=JobState.PENDING), params, CancelToken())
    hits = root / "hits"
    for kind, seed in (("kick", 7), ("snare", 7), ("hihat_closed", 7), ("snare", 8)):
        write_hits(hits, kind, 1, pack=DEMO_PACKS[4], seed=seed)
    twin = hits / "snare_7_00.wav"
    audio, rate = soundfile.read(twin)
    soundfile.write(hits / "twin.flac", audio, rate)
    import_folder(workspace, hits, workers=1)
    return workspace.root, list_versions(workspace)


@pytest.fixture
def ws(trained, tmp_path) -> Path:
    base, versions = trained
    return copy_workspace_with_versions(base, versions, tmp_path)


# -- ranking -------------------------------------------------------------------------------------

def test_uncertainty_matches_scipy_entropy_and_a_direct_margin():
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.ones(4), size=50)
    expected_entropy = scipy.stats.entropy(p, axis=1) / np.log(4)
    np.testing.assert_allclose(uncertainty(p, "entropy"), expected_entropy, rtol=1e-12)
    top2 = np.array([sorted(row)[-2:] for row in p])
    np.testing.assert_allclose(uncertainty(p, "margin"), 1 - (top2[:, 1] - top2[:, 0]), rtol=1e-12)
    sure, torn = np.array([[0.98, 0.01, 0.01, 0.0]]), np.array([[0.4, 0.4, 0.1, 0.1]])
    for measure in ("margin", "entropy"):
        assert uncertainty(torn, measure)[0] > uncertainty(sure, measure)[0]
    ordered = pick_diverse(uncertainty(p, "entropy"), rng.normal(size=(50, 8)), 10)
    assert ordered == list(np.argsort(-expected_entropy)[:10])  # distinct features: uncertainty order alone


def test_near_duplicates_are_not_both_in_the_top_k():
    rng = np.random.default_rng(4)
    features = rng.normal(size=(6, 5))
    features[1] = features[0] * 1.0001  # row 1 duplicates row 0
    scores = np.array([0.9, 0.95, 0.1, 0.5, 0.3, 0.2])
    picked = pick_diverse(scores, features, 3)
    assert picked == [1, 3, 4]  # 0 is skipped: it duplicates 1, taken first
    assert pick_diverse(scores, features, 3, similarity=1.0 + 1e-9)[:2] == [1, 0]  # no skipping at all
    features[5] = features[3] * 1.0001  # row 5 stands for a clip suggested earlier, still pending
    assert pick_diverse(scores[:5], features, 3, taken=1) == [1, 4, 2]  # 0 and 3 are near-duplicates of picks


def test_alike_clips_wait_until_every_unlike_one_is_in_and_near_duplicates_still_never_come():
    rng = np.random.default_rng(5)
    features = rng.normal(size=(40, 12))
    features[1] = features[0] + rng.normal(scale=0.25, size=12)  # another layer of sound 0: alike
    features[2] = features[0] * 1.0001  # a gain copy of sound 0: a near-duplicate
    units = unit_rows(features)
    assert 0.9 <= units[0] @ units[1] < 0.999 and units[0] @ units[2] >= 0.999
    assert max(units[0] @ units[k] for k in range(3, 40)) < 0.9  # the rest are unlike
    scores = np.linspace(1.0, 0.0, 40)  # row 0 most uncertain, then 1, 2, …
    assert pick_diverse(scores, features, 4) == [0, 1, 3, 4]  # without alike: the layer comes second
    assert pick_diverse(scores, features, 4, alike=0.9) == [0, 3, 4, 5]  # with it, it waits
    assert pick_diverse(scores, features, 40, alike=0.9)[-1] == 1  # last, after every unlike clip
    assert 2 not in pick_diverse(scores, features, 40, alike=0.9)  # the copy never
    assert pick_diverse(scores, features, 40, alike=1.0) == pick_diverse(scores, features, 40)  # 1: off


# -- the headless flow ---------------------------------------------------------------------------

def test_suggest_accept_reject_correct_and_stats(ws):
    made = ok(ws, "suggest", "--model", "drums", "--limit", "4")
    assert made["candidates"] == 5 and len(made["suggestions"]) == 4
    ranked = made["suggestions"]
    assert [s["rank"] for s in ranked] == [1, 2, 3, 4]
    assert [s["score"] for s in ranked] == sorted((s["score"] for s in ranked), reverse=True)
    names = {s["path"].rsplit("/", 1)[-1] for s in ranked}
    assert not {"snare_7_00.wav", "twin.flac"} <= names  # the twin pair is never suggested together
    workspace = Workspace.open(ws)
    with workspace.db.transaction() as con:  # each suggestion is a model label of its clip, with its confidence
        for s in ranked:
            (label,) = query_labels(con, clip_id=s["clip_id"], taxonomy="drums")
            assert (label.origin, label.label) == (Origin.MODEL, s["label"])
            assert label.confidence == pytest.approx(s["confidence"], abs=1e-6)
    assert ok(ws, "suggest", "list")["suggestions"] == ranked
    with workspace.db.transaction() as con:  # undecided, a suggestion is not a label to train on
        trained_on = {item.clip_id for item in labelled_segments(con, "drums")}
    assert not trained_on & {s["clip_id"] for s in ranked}
    extra = ok(ws, "suggest", "--model", "drums", "--limit", "4")  # pending ones are labelled: one clip is left,
    assert extra["candidates"] == 1 and extra["suggestions"] == []  # the twin of a pending one: not suggested
    left = [ranked[3]["clip_id"]]

    first, second, third = ranked[0], ranked[1], ranked[2]
    accepted = ok(ws, "suggest", "accept", first["clip_id"])["decided"]
    assert [d["outcome"] for d in accepted] == ["accepted"]
    ok(ws, "suggest", "reject", second["clip_id"][:8])
    other = next(c for c in ("kick", "snare", "hihat_closed") if c != third["label"])
    corrected = ok(ws, "suggest", "correct", third["clip_id"], other)["decided"][0]
    assert (corrected["outcome"], corrected["corrected_to"]) == ("corrected", other)
    with workspace.db.transaction() as con:
        (label,) = query_labels(con, clip_id=first["clip_id"], taxonomy="drums")
        assert (label.origin, label.label) == (Origin.USER, first["label"])
        assert query_labels(con, clip_id=second["clip_id"], taxonomy="drums") == []  # the model's label went
        (label,) = query_labels(con, clip_id=third["clip_id"], taxonomy="drums")
        assert (label.origin, label.label) == (Origin.USER, other)
        trained_on = {item.clip_id for item in labelled_segments(con, "drums")}
    assert {first["clip_id"], third["clip_id"]} <= trained_on and ranked[3]["clip_id"] not in trained_on
    with workspace.db.transaction() as con:  # the accepted and the corrected labels answer suggestions: they train
        items = labelled_segments(con, "drums")
    assert {i.clip_id for i in items if i.asked} == {first["clip_id"], third["clip_id"]}
    hits = {i.clip_id for i in items if i.source == "hits"}
    for seed in range(6):
        splits = dict(zip((i.clip_id for i in items), split_items(items, split_by="group", val=0.15, test=0.15,
                                                                   seed=seed)))
        assert {splits[c] for c in hits} == {Split.TRAIN}  # and so does the rest of their source
    unasked = [replace(i, asked=False) for i in items]  # as plain labels the source goes where the split needs it
    assert any(set(split_items(unasked, split_by="group", val=0.15, test=0.15, seed=seed)[k]
                   for k, i in enumerate(unasked) if i.source == "hits") != {Split.TRAIN} for seed in range(6))
    assert [s["clip_id"] for s in ok(ws, "suggest", "list")["suggestions"]] == left  # oldest batch first
    everything = {s["clip_id"]: s["outcome"] for s in ok(ws, "suggest", "list", "--all")["suggestions"]}
    assert everything == {first["clip_id"]: "accepted", second["clip_id"]: "rejected",
                          third["clip_id"]: "corrected", left[0]: None}
    # a rejected clip is not suggested again by the same version
    again = ok(ws, "suggest", "--model", "drums", "--limit", "4")
    assert second["clip_id"] not in {s["clip_id"] for s in again["suggestions"]}

    rates = {t["taxonomy"]: t["suggestions"] for t in ok(ws, "stats")["taxonomies"]}["drums"]
    decided = {first["label"]: [0, 0], second["label"]: [0, 0], third["label"]: [0, 0]}
    decided[first["label"]][0] += 1
    for s in (first, second, third):
        decided[s["label"]][1] += 1
    for name, (accepted_n, decided_n) in decided.items():
        assert rates[name]["decided"] == decided_n
        assert rates[name]["acceptance_rate"] == pytest.approx(accepted_n / decided_n)


def test_accept_all_above_and_bad_input(ws):
    made = ok(ws, "suggest", "--model", "drums", "--limit", "5")["suggestions"]
    confidences = sorted(s["confidence"] for s in made)
    threshold = (confidences[1] + confidences[2]) / 2  # between two of them (they are rounded)
    decided = ok(ws, "suggest", "accept", "--all-above", threshold)["decided"]
    assert {d["clip_id"] for d in decided} == {s["clip_id"] for s in made if s["confidence"] >= threshold}
    result = runner.invoke(app, ["--headless", "--workspace", str(ws), "suggest", "reject", decided[0]["clip_id"]])
    assert result.exit_code == 1 and "no pending suggestion" in result.stderr
    result = runner.invoke(app, ["--headless", "--workspace", str(ws), "suggest", "accept"])
    assert result.exit_code == 2  # neither clips nor --all-above
    result = runner.invoke(app, ["--headless", "--workspace", str(ws), "suggest", "--model", "drums", "--by", "vibes"])
    assert result.exit_code == 1 and "unknown uncertainty measure 'vibes'" in result.stderr


# -- the label screen ----------------------------------------------------------------------------

def store_suggestions(workspace, suggested: list[tuple[str, str]]) -> None:
    """Suggestions as `suggest` stores them (a model label and a ranked row each), without a model:
    (file name, label) in rank order."""
    from engine.library.editing import import_labels
    from engine.store.labels import LabelWrite
    from engine.store.suggestions import NewSuggestion, add_suggestions
    from engine.concepts import Segment

    tax = workspace.taxonomy("drums")
    with workspace.db.transaction() as con:
        ids = [clip_id_of(workspace, name) for name, _ in suggested]
        import_labels(con, tax, [LabelWrite(clip_id, "drums", label, Origin.MODEL, 0.6, Segment.whole())
                                 for clip_id, (_, label) in zip(ids, suggested)])
        add_suggestions(con, [NewSuggestion(clip_id, "drums", Segment.whole(), label, 0.6, 1, "drums@1", rank, 0.8)
                              for rank, (clip_id, (_, label)) in enumerate(zip(ids, suggested), start=1)])


def drums_labels(workspace, name: str) -> list[tuple[str, str]]:
    with workspace.db.transaction() as con:
        return [(str(label.origin), label.label)
                for label in query_labels(con, clip_id=clip_id_of(workspace, name), taxonomy="drums")]


def outcomes(workspace) -> dict[str, tuple]:
    from engine.triage.suggestions import all_suggestions

    return {s.path.rsplit("/", 1)[-1]: (s.outcome, s.corrected_to) for s in all_suggestions(workspace)}


def label_status(app) -> str:
    """The label screen's status line as shown, its runs of spaces made one."""
    from test_tui import shown_text
    from textual.widgets import Label

    return " ".join(shown_text(app.screen.query_one("#label-status", Label)).split())


async def test_the_label_screen_walks_suggestions_and_accepts_rejects_and_corrects(tmp_path, monkeypatch):
    from test_tui import settle
    from tui.app import make_app
    from tui.screens.label import LabelScreen
    from tui.widgets.segments import SegmentTable
    from conftest import track_and_hits

    monkeypatch.setenv("WORKBENCH_SOUND", "off")
    workspace = track_and_hits(Workspace.open(tmp_path / "ws"), tmp_path / "audio")
    store_suggestions(workspace, [("kick_0_01.wav", "snare"), ("track.wav", "kick")])  # kick_0_00.wav opens first
    from engine.concepts import Segment
    from engine.library.editing import import_labels
    from engine.store.labels import LabelWrite

    with workspace.db.transaction() as con:  # the track is labelled in sections more than in drums
        import_labels(con, workspace.taxonomy("sections"), [
            LabelWrite(clip_id_of(workspace, "track.wav"), "sections", name, Origin.IMPORT, 1.0,
                       Segment(start_s=start, end_s=start + 8.0)) for start, name in ((0.0, "intro"), (8.0, "drop"))])
    app = make_app(workspace.root)

    def status() -> str:
        return label_status(app)

    def open_name() -> str:
        return app.screen.state.clip.path.rsplit("/", 1)[-1]

    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("2")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, LabelScreen)
        await pilot.press("S")  # the most informative pending suggestion first
        await settle(app, pilot)
        assert open_name() == "kick_0_01.wav"
        assert "suggested ? snare (60%, drums@1 #1)" in status()
        row = screen.query_one(SegmentTable).get_row_at(0)[0]  # drawn distinct from a label
        assert row.plain == "? snare" and row.style.italic
        assert [band.suggested for band in screen.marks().bands] == [True]

        await pilot.press("k")  # a class key corrects it, and the walk goes on to the next suggestion
        await settle(app, pilot)
        assert drums_labels(workspace, "kick_0_01.wav") == [("user", "kick")]
        assert outcomes(workspace)["kick_0_01.wav"] == ("corrected", "kick")
        assert open_name() == "track.wav"
        assert "corrected: kick" in status() and "next suggestion clip" in status()
        assert "suggested ? kick" in status()  # the next one's own suggestion

        await pilot.press("A")
        await settle(app, pilot)
        assert drums_labels(workspace, "track.wav") == [("user", "kick")]
        assert outcomes(workspace)["track.wav"] == ("accepted", None)
        assert open_name() == "track.wav" and "no pending suggestion left" in status()  # the walk's end
        assert [band.suggested for band in screen.marks().bands] == [False] * 3  # the kick and the two sections
        await pilot.press("u")  # undo makes it pending again
        await settle(app, pilot)
        assert drums_labels(workspace, "track.wav") == [("model", "kick")]
        assert outcomes(workspace)["track.wav"] == (None, None)
        await pilot.press("R")
        await settle(app, pilot)
        assert drums_labels(workspace, "track.wav") == []  # the model's label went
        assert outcomes(workspace)["track.wav"] == ("rejected", None)
        await pilot.press("R")
        await settle(app, pilot)
        assert "no pending suggestion on this clip" in status()
        await pilot.press("S")
        await settle(app, pilot)  # the walk's end offered to ask the active model: there is none here
        assert "no active model is trained on drums" in status()

        await pilot.press("u", "u")  # the rejection, then the correction: back on kick_0_01.wav, pending again
        await settle(app, pilot)
        assert open_name() == "kick_0_01.wav" and outcomes(workspace)["kick_0_01.wav"] == (None, None)
        await pilot.press("A")  # reached by undo, not by S: deciding it stays on it
        await settle(app, pilot)
        assert outcomes(workspace)["kick_0_01.wav"] == ("accepted", None)
        assert open_name() == "kick_0_01.wav" and "next suggestion" not in status()


async def test_s_asks_the_active_model_for_suggestions_once_none_is_pending(ws, monkeypatch):
    from test_tui import settle
    from tui.app import make_app

    monkeypatch.setenv("WORKBENCH_SOUND", "off")
    ok(ws, "models", "activate", "drums@1", "--no-inference")  # the active model of drums
    app = make_app(ws)

    def status() -> str:
        return label_status(app)

    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("2")
        await settle(app, pilot)
        await pilot.press("S")
        await settle(app, pilot)
        assert "no pending suggestion left: S asks the active model for more" in status()
        assert ok(ws, "suggest", "list")["suggestions"] == []  # nothing made yet
        await pilot.press("S")
        for _ in range(3):  # the model's run, then the walk to its first suggestion and that clip's opening
            await settle(app, pilot)
        made = ok(ws, "suggest", "list")["suggestions"]
        assert len(made) == 4 and {s["model"] for s in made} == {"drums@1"}  # the twin of one is left out
        assert "drums@1 suggested 4 of 5 unlabelled clips" in status() and "next suggestion clip" in status()
        assert app.screen.state.clip.clip_id == made[0]["clip_id"]  # the most informative first
        assert f"suggested ? {made[0]['label']}" in status()

        from engine.progress import CancelToken
        app.screen.asking = asking = CancelToken()  # as while the model runs: S waits, escape stops it
        await pilot.press("S")
        assert "still making suggestions" in status()
        await pilot.press("escape")
        assert asking.cancelled and "stopping" in status()
