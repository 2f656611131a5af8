"""The CLI as a new user meets it (issue 11, items 16–18, 20, 22): `jobs show` as a table and JSON
lines, `clips list` with the library's filter words and sort orders, `predict` in the order given
with a clean stderr, `beats detect` naming what it skipped, and each person's label timed from
the clip opened to the label saved (its lead time), shown in `stats` and exported with the labels.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from cli.main import app
from conftest import clip_id_of, copy_workspace, copy_workspace_with_versions, curated_library, track_and_hits, write_hits
from engine.audio.synth import DEMO_PACKS
from engine.concepts import JobState, Origin
from engine.jobs.log import JobLog
from engine.library.importer import import_folder
from engine.library.session import LabelHistory, load_clip_state
from engine.models.registry import list_versions
from engine.progress import CancelToken
from engine.store.labels import query_labels
from engine.store.schema import MIGRATIONS, migrate
from engine.training.run import TrainRequest, run_training
from engine.workspace import Workspace

runner = CliRunner()
CLASSES = ("kick", "snare", "hihat_closed")


def run(args: list, ws: Path, *, json_out: bool = True):
    return runner.invoke(app, ["--headless", "--workspace", str(ws), *map(str, args), *(["--json"] if json_out else [])])


def ok(args: list, ws: Path) -> dict:
    result = run(args, ws)
    assert result.exit_code == 0, f"{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout)


def text(args: list, ws: Path) -> str:
    """A command's human output (stdout), which must succeed; rich wraps at 80 columns in the runner."""
    result = run(args, ws, json_out=False)
    assert result.exit_code == 0, f"{result.stdout}\n{result.stderr}"
    return result.stdout


# -- fixtures ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ux_library")
    curated_library(root / "curated", classes=CLASSES, per_pack=3, packs=DEMO_PACKS[:2])
    write_hits(root / "hits", "kick", 2, pack=DEMO_PACKS[4], seed=5)
    write_hits(root / "hits", "snare", 1, pack=DEMO_PACKS[4], seed=5)
    return root


@pytest.fixture(scope="module")
def trained(library, tmp_path_factory) -> tuple[Path, list]:
    """A base workspace (the curated library imported) and drums@1 (logreg) trained in a scratch copy."""
    base = Workspace.open(tmp_path_factory.mktemp("ux_base") / "ws")
    import_folder(base, library / "curated", curated=True, workers=1)
    scratch = Workspace.open(copy_workspace(base.root, tmp_path_factory.mktemp("ux_scratch")))
    params = TrainRequest(name="drums", model="logreg", min_class_samples=2, split_by="clip").__dict__
    run_training(scratch, JobLog(scratch, "train", params, state="pending"), params, CancelToken())
    return base.root, list_versions(scratch)


@pytest.fixture
def ws(trained, tmp_path) -> Path:
    """This test's own copy of the base workspace, with drums@1 registered (its artifacts copied)."""
    base, versions = trained
    return copy_workspace_with_versions(base, versions, tmp_path)


# -- 18: the top-level help -------------------------------------------------------------------

def test_the_top_level_help_describes_the_whole_terminal_app():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "for now" not in result.stdout
    assert "labelling, training, gates and models" in " ".join(result.stdout.split())


# -- 16: jobs show ----------------------------------------------------------------------------

def recorded_job(ws: Path) -> str:
    job = JobLog(Workspace.open(ws), "train", {"name": "drums"}, state=JobState.PENDING)
    job.state(JobState.TRAINING, "mlp on 12 examples")
    job.event("epoch", {"epoch": 1, "total_epochs": 2, "train_loss": 0.693147, "val_loss": None})
    job.event("data", {"sizes": {"train": 12, "val": 3}, "classes": ["kick", "snare"], "notes": []})
    job.finish(JobState.COMPLETED, result={"model": "drums@9"})
    return job.job_id


def test_jobs_show_prints_a_table_of_events(ws):
    job_id = recorded_job(ws)
    shown = text(["jobs", "show", job_id[-6:]], ws)
    assert shown.splitlines()[0].split()[:3] == [job_id, "train", "completed"]
    assert "{'" not in shown and "':" not in shown  # no Python reprs
    rows = " ".join(shown.split())
    assert "state: training message: mlp on 12 examples" in rows
    assert "epoch: 1 total_epochs: 2 train_loss: 0.6931" in rows and "val_loss" not in rows  # empty fields left out
    assert "sizes: train=12, val=3 classes: kick, snare" in rows and "notes" not in rows


def test_jobs_show_json_prints_the_record_then_one_line_per_event(ws):
    job_id = recorded_job(ws)
    result = run(["jobs", "show", job_id], ws)
    assert result.exit_code == 0, result.stderr
    record, *events = [json.loads(line) for line in result.stdout.splitlines()]
    assert record["ok"] is True and record["exit_code"] == 0
    assert record["job"]["job_id"] == job_id and record["job"]["result"] == {"model": "drums@9"}
    assert [(e["seq"], e["kind"]) for e in events] == [(1, "state"), (2, "epoch"), (3, "data")]
    assert {e["job_id"] for e in events} == {job_id}
    assert events[1]["train_loss"] == 0.693147 and events[2]["sizes"] == {"train": 12, "val": 3}


def test_jobs_show_of_an_unknown_job_is_one_json_error_document(ws):
    result = run(["jobs", "show", "train-no-such-job"], ws)
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"]["type"] == "NotFound"


# -- 17: clips list, predict ------------------------------------------------------------------

@pytest.fixture
def listed_ws(ws, library, tmp_path) -> Path:
    """The curated clips, plus two unlabelled hits of a source named extra (one file named low_tom.wav)."""
    hits = tmp_path / "extra"
    write_hits(hits, "kick", 1, pack=DEMO_PACKS[3], seed=3)
    write_hits(hits, "tom", 1, pack=DEMO_PACKS[3], seed=3)
    (hits / "tom_3_00.wav").rename(hits / "low_tom.wav")
    ok(["import", hits, "--workers", 1], ws)
    return ws


def paths(doc: dict) -> list[str]:
    return [Path(clip["path"]).name for clip in doc["clips"]]


def test_clips_list_takes_the_library_filter_words(listed_ws):
    kicks = ok(["clips", "list", "--filter", "label:kick"], listed_ws)
    assert kicks["total"] == 6 and all(clip["labels"] == ["kick"] for clip in kicks["clips"])
    assert ok(["clips", "list", "--filter", f"label:kick {DEMO_PACKS[0].name}"], listed_ws)["total"] == 3
    assert paths(ok(["clips", "list", "-f", "unlabelled"], listed_ws)) == ["kick_3_00.wav", "low_tom.wav"]
    assert ok(["clips", "list", "-f", "source:xtr"], listed_ws)["total"] == 2


def test_a_quoted_filter_word_is_searched_as_text(listed_ws):
    assert ok(["clips", "list", "-f", "low"], listed_ws)["total"] == 0  # no prediction is low: nothing yet
    assert paths(ok(["clips", "list", "-f", '"low"'], listed_ws)) == ["low_tom.wav"]
    assert paths(ok(["clips", "list", "-f", '"unlabelled"'], listed_ws)) == []
    # --filter on the whole library: the filter word `low` reads the active model's predictions
    ok(["models", "activate", "drums", "1", "--force", "--reason", "test", "--workers", 1], listed_ws)
    every = ok(["clips", "list"], listed_ws)["clips"]
    assert all(clip["predicted"] for clip in every)
    unsure = [Path(clip["path"]).name for clip in every if clip["confidence"] < 0.6]
    assert paths(ok(["clips", "list", "-f", "low"], listed_ws)) == unsure


def test_clips_list_sorts(listed_ws):
    by_duration = ok(["clips", "list", "--sort", "duration"], listed_ws)["clips"]
    durations = [clip["duration_s"] for clip in by_duration]
    assert durations == sorted(durations, reverse=True) and len(durations) == 20
    by_source = [clip["source"] for clip in ok(["clips", "list", "--sort", "source"], listed_ws)["clips"]]
    assert by_source == sorted(by_source)
    result = run(["clips", "list", "--sort", "loudness"], listed_ws)
    assert result.exit_code == 2 and "--sort must be one of path, source, duration" in result.stderr


def test_clips_list_options_document_themselves():
    result = runner.invoke(app, ["--headless", "clips", "list", "--help"], env={"COLUMNS": "200"})
    help_text = " ".join(result.stdout.split())
    assert "--filter" in help_text and "label:kick" in help_text and "--sort" in help_text
    assert "Only clips of this source (pack)" in help_text


def test_predict_keeps_the_order_given_and_leaves_stderr_clean(ws, library):
    hits = sorted((library / "hits").iterdir(), reverse=True)  # snare first: not alphabetical
    doc = ok(["predict", *hits, "--model", "drums", "--workers", 1], ws)
    assert [p["path"] for p in doc["predictions"]] == [str(h) for h in hits]
    result = run(["predict", *hits, hits[0], "--model", "drums", "--workers", 1], ws, json_out=False)
    assert result.exit_code == 0
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == [str(h) for h in hits]  # each file once
    assert result.stderr == ""  # no blank line left by the progress bar


# -- 20: beats detect names what it skipped ---------------------------------------------------

def test_beats_detect_names_each_skipped_clip_and_why(tmp_path):
    workspace = track_and_hits(Workspace.open(tmp_path / "ws"), tmp_path / "audio")  # a hand-set grid on the track
    shown = " ".join(text(["beats", "detect", "--all", "--workers", 1], workspace.root).split())
    assert "0 grids detected, 3 clips skipped (2 too short, 1 kept as it is):" in shown
    for name in ("kick_0_00.wav", "kick_0_01.wav"):
        assert f"skipped {tmp_path / 'audio' / 'hits' / name}: too short (" in shown
    assert f"skipped {tmp_path / 'audio' / 'track.wav'}: kept as it is (has a hand-set grid (use --overwrite))" in shown


# -- 22: labelling speed ----------------------------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_each_label_is_timed_from_the_clip_opened_or_its_previous_label(ws):
    workspace = Workspace.open(ws)
    clock = Clock()
    history = LabelHistory(workspace, clock=clock)
    kick = clip_id_of(workspace, f"{DEMO_PACKS[0].name}/kick_0_01.wav")
    snare = clip_id_of(workspace, f"{DEMO_PACKS[0].name}/snare_0_01.wav")
    history.opened(kick)
    clock.now += 12.0
    history.label(load_clip_state(workspace, kick), "snare", taxonomy="drums")
    clock.now += 3.0  # a second label on the same clip counts from the first
    history.label(load_clip_state(workspace, kick), "kick", taxonomy="drums")
    history.opened(snare)
    clock.now += 45.0
    change = history.label(load_clip_state(workspace, snare), "snare", taxonomy="drums")
    with workspace.db.transaction() as con:
        timed = {(label.clip_id, label.label): label.lead_time_s
                 for label in query_labels(con, origin=Origin.USER)}
    assert timed == {(kick, "kick"): 3.0, (snare, "snare"): 45.0}  # the second kick label replaced the first

    history.undo()  # undo restores the label it replaced, lead time and all
    with workspace.db.transaction() as con:
        assert [label.lead_time_s for label in query_labels(con, clip_id=snare, origin=Origin.USER)] == []
    history.undo()
    with workspace.db.transaction() as con:
        assert [(label.label, label.lead_time_s) for label in query_labels(con, clip_id=kick, origin=Origin.USER)] \
            == [("snare", 12.0)]
    assert change.added[0].lead_time_s == 45.0


def label_timed(ws: Path, seconds: list[float]) -> None:
    workspace = Workspace.open(ws)
    clock = Clock()
    history = LabelHistory(workspace, clock=clock)
    for number, lead in enumerate(seconds, start=1):
        clip_id = clip_id_of(workspace, f"{DEMO_PACKS[1].name}/kick_1_0{number - 1}.wav")
        history.opened(clip_id)
        clock.now += lead
        history.label(load_clip_state(workspace, clip_id), "kick", taxonomy="drums")


def test_stats_show_labels_per_hour_and_time_per_label(ws):
    assert ok(["stats"], ws)["labelling_speed"] == {
        "timed_labels": 0, "labelling_s": 0.0, "labels_per_hour": None, "seconds_per_label": None,
        "median_seconds_per_label": None}
    assert "labelling speed: no timed labels yet" in " ".join(text(["stats"], ws).split())
    label_timed(ws, [10.0, 20.0, 60.0])
    speed = ok(["stats"], ws)["labelling_speed"]
    assert speed == {"timed_labels": 3, "labelling_s": 90.0, "labels_per_hour": 120.0, "seconds_per_label": 30.0,
                     "median_seconds_per_label": 20.0}
    assert ("labelling speed: 120 labels/hour, 30.0 s per label (median 20.0 s) over 3 timed labels"
            in " ".join(text(["stats"], ws).split()))


def test_lead_times_are_exported_with_the_labels(ws, tmp_path):
    label_timed(ws, [10.0, 20.0])
    listed = ok(["labels", "list", "--all-origins", "--limit", 500], ws)["labels"]
    timed = sorted(label["lead_time_s"] for label in listed if label["origin"] == "user")
    assert timed == [10.0, 20.0]
    assert all(label["lead_time_s"] is None for label in listed if label["origin"] == "import")
    out = tmp_path / "export"
    ok(["export-dataset", "--out", out, "--taxonomy", "drums", "--split", "clip", "--workers", 1], ws)
    rows = [json.loads(line) for split in ("train", "val", "test") for line in
            (out / f"{split}_items.jsonl").read_text().splitlines()]
    assert sorted(row["lead_time_s"] for row in rows if row["lead_time_s"] is not None) == [10.0, 20.0]
    assert sum(row["lead_time_s"] is None for row in rows) == len(rows) - 2


def test_a_workspace_from_before_lead_times_is_migrated(tmp_path):
    con = duckdb.connect(str(tmp_path / "old.duckdb"))
    con.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, "
                "applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp)")
    for version, (name, sql) in enumerate(MIGRATIONS[:2], start=1):
        con.execute(sql)
        con.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", [version, name])
    con.execute("INSERT INTO labels (clip_id, taxonomy, segment_key, label, origin, confidence) "
                "VALUES ('c', 'drums', 'whole', 'kick', 'user', 1.0)")
    migrate(con)
    (label,) = query_labels(con)
    assert label.label == "kick" and label.lead_time_s is None


async def test_the_label_screen_saves_each_label_with_its_lead_time(tmp_path, monkeypatch):
    from test_tui_label import open_in_label_screen, settle
    from tui.app import make_app
    from tui.widgets.readiness import ReadinessPanel
    from tui_pilot import shown_text, wait_for

    monkeypatch.setenv("WORKBENCH_SOUND", "off")
    workspace = track_and_hits(Workspace.open(tmp_path / "ws"), tmp_path / "audio")
    app = make_app(workspace.root)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_in_label_screen(app, pilot, "kick_0_00.wav")
        await pilot.press("k")
        await settle(app, pilot)
        await pilot.press("1")  # the library's counts panel shows the labelling speed
        await wait_for(pilot, lambda: "labels/hour" in shown_text(app.screen.query_one(ReadinessPanel)),
                       "the labelling speed in the counts panel")
    with workspace.db.transaction() as con:
        (label,) = query_labels(con, clip_id=clip_id_of(workspace, "kick_0_00.wav"), origin=Origin.USER)
    assert label.label == "kick" and 0 < label.lead_time_s < 60
    assert ok(["stats"], workspace.root)["labelling_speed"]["timed_labels"] == 1
