"""The headless CLI as users and scripts see it: exit codes, one JSON document on stdout with
--json, and the key fields of each command's result.

Everything runs in-process through typer's CliRunner on `cli.main.app`. In this click version
the runner keeps stdout and stderr apart (`result.stdout`, `result.stderr`); `result.output` is
the two interleaved. A small library is synthesised once per module and imported into a template
workspace; tests that change a workspace work on their own copy of it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile
from typer.testing import CliRunner

from cli.main import app
from conftest import copy_workspace
from engine.audio.synth import DEMO_PACKS, synthesize_section_track, write_curated_library
from engine.workspace import Workspace

CLASSES = ("kick", "snare", "hihat_closed")
PACKS = DEMO_PACKS[:2]
PER_PACK = 2
N_CURATED = len(CLASSES) * len(PACKS) * PER_PACK  # 12
BPM, OFFSET = 124.0, 0.1
SECTIONS = [("intro", 2), ("drop", 4), ("outro", 2)]  # 32 beats at 124 bpm: about 15.6 s
TRACK_RATE = 22050

runner = CliRunner()


# -- helpers ----------------------------------------------------------------------------------

def invoke(args: list[str], ws: Path | None = None, *, json_out: bool = True, env: dict | None = None,
           headless: bool = True):
    """Run `workbench [--headless] [--workspace WS] ARGS [--json]` in-process."""
    prefix = (["--headless"] if headless else []) + (["--workspace", str(ws)] if ws is not None else [])
    return runner.invoke(app, [*prefix, *[str(a) for a in args], *(["--json"] if json_out else [])], env=env)


def explain(result) -> str:
    text = f"exit {result.exit_code}\n--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        import traceback

        text += "\n--- exception ---\n" + "".join(traceback.format_exception(*result.exc_info))
    return text


def expect(result, code: int) -> None:
    """The exit code is `code`, and the command did not crash with an unhandled exception."""
    crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
    assert not crashed, explain(result)
    assert result.exit_code == code, explain(result)


def document(result) -> dict:
    """Exactly one JSON document on stdout and nothing else."""
    text = result.stdout
    assert text.strip(), f"nothing on stdout\n{explain(result)}"
    try:
        doc = json.loads(text)  # json.loads refuses anything before or after the document
    except json.JSONDecodeError as error:
        raise AssertionError(f"stdout is not exactly one JSON document ({error})\n{explain(result)}") from None
    assert isinstance(doc, dict), text
    assert doc["exit_code"] == result.exit_code
    return doc


def ok(args: list[str], ws: Path | None = None, **kwargs) -> dict:
    result = invoke(args, ws, **kwargs)
    expect(result, 0)
    doc = document(result)
    assert doc["ok"] is True
    return doc


def failed(args: list[str], ws: Path | None = None, code: int = 1, **kwargs) -> dict:
    """A command that fails with an engine error: exit 1 and a JSON error document."""
    result = invoke(args, ws, **kwargs)
    expect(result, code)
    doc = document(result)
    assert doc["ok"] is False
    assert set(doc["error"]) >= {"type", "message", "busy"}
    assert doc["error"]["message"]
    assert "error" in result.stderr  # the message is also said on stderr for people
    return doc


def usage_error(args: list[str], ws: Path | None = None, *, json_out: bool = True, **kwargs):
    """A usage error: exit 2 and click's message on stderr; with --json also the JSON error document."""
    result = invoke(args, ws, json_out=json_out, **kwargs)
    expect(result, 2)
    if json_out:
        doc = document(result)
        assert doc["ok"] is False and doc["error"]["message"]
    else:
        assert result.stdout == "", "a usage error without --json must not print on stdout"
    assert "Usage" in result.stderr and "Error" in result.stderr
    return result


def write_track(path: Path) -> list[dict]:
    audio, layout = synthesize_section_track(SECTIONS, bpm=BPM, sample_rate=TRACK_RATE, offset_s=OFFSET)
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, audio, TRACK_RATE)
    return layout


def seconds_of(beat: float, bpm: float = BPM, offset: float = OFFSET) -> float:
    return offset + beat * 60.0 / bpm


# -- fixtures ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("library")
    paths = write_curated_library(root / "curated", clips_per_class_per_pack=PER_PACK, classes=CLASSES, packs=PACKS)
    assert len(paths) == N_CURATED
    write_track(root / "tracks" / "track.wav")
    return root


@pytest.fixture(scope="module")
def base_ws(library, tmp_path_factory) -> Path:
    """Curated clips and the section track imported; never changed (tests copy it)."""
    ws = tmp_path_factory.mktemp("base") / "ws"
    ok(["import", library / "curated", "--curated"], ws)
    ok(["import", library / "tracks"], ws)
    return ws


@pytest.fixture
def ws(base_ws, tmp_path) -> Path:
    """A workspace of this test's own, with the library imported."""
    return copy_workspace(base_ws, tmp_path)


@pytest.fixture(scope="module")
def rich_ws(base_ws, tmp_path_factory) -> Path:
    """For read-only tests: a grid on the track, a beat label, a seconds label, dsp features."""
    ws = copy_workspace(base_ws, tmp_path_factory.mktemp("rich"))
    ok(["beats", "set", "track.wav", "--bpm", BPM, "--offset", OFFSET], ws)
    ok(["labels", "add", "track.wav", "--label", "drop", "--start-beat", 8, "--end-beat", 24, "-t", "sections"], ws)
    ok(["labels", "add", "track.wav", "--label", "intro", "--start", 0.1, "--end", 3.9, "-t", "sections"], ws)
    ok(["features", "extract", "--extractor", "dsp", "--workers", 1], ws)
    return ws


# -- the top-level command --------------------------------------------------------------------

def test_no_command_opens_the_terminal_app_on_the_workspace(tmp_path, monkeypatch):
    from tui.app import WorkbenchApp

    opened = []
    monkeypatch.setattr(WorkbenchApp, "run", lambda self: opened.append(self.workspace.root))
    result = runner.invoke(app, ["--workspace", str(tmp_path / "ws")])
    expect(result, 0)
    assert opened == [(tmp_path / "ws").resolve()]


def test_help_lists_the_options():
    result = runner.invoke(app, ["--help"])
    expect(result, 0)
    assert "Usage" in result.stdout
    assert "--headless" in result.stdout and "--workspace" in result.stdout


def test_headless_without_a_command_exits_2():
    result = runner.invoke(app, ["--headless"])
    expect(result, 2)
    assert "needs a command" in result.stderr


def test_unknown_command_is_a_usage_error(tmp_path):
    usage_error(["no-such-command"], tmp_path / "ws")
    usage_error(["no-such-command"], tmp_path / "ws", json_out=False)


@pytest.mark.parametrize("command", [
    "import", "labels import", "labels export", "labels add", "labels list", "labels remove", "beats set", "beats detect",
    "beats show", "stats", "clips list", "features extract", "cache stats", "cache clear", "export-dataset",
    "taxonomy list", "taxonomy show", "taxonomy create", "taxonomy use", "jobs list", "demo",
])
def test_every_command_documents_itself(command):
    result = runner.invoke(app, ["--headless", *command.split(), "--help"])
    expect(result, 0)
    assert "Usage" in result.stdout and "--json" in result.stdout


def test_workspace_from_the_environment(base_ws, tmp_path):
    result = runner.invoke(app, ["--headless", "stats", "--json"], env={"WORKBENCH_WORKSPACE": str(base_ws)})
    expect(result, 0)
    assert document(result)["clips"] == N_CURATED + 1
    # --workspace wins over the environment
    other = tmp_path / "other"
    Workspace.open(other)
    result = runner.invoke(app, ["--headless", "--workspace", str(other), "stats", "--json"],
                           env={"WORKBENCH_WORKSPACE": str(base_ws)})
    expect(result, 0)
    assert document(result)["clips"] == 0


def test_a_folder_that_is_not_a_workspace_is_refused(library, tmp_path):
    folder = tmp_path / "not_a_workspace"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    doc = failed(["stats"], folder)
    assert f"no workspace at {folder}" in doc["error"]["message"]
    doc = failed(["import", library / "curated", "--curated"], folder)  # not even to start one
    assert "not empty" in doc["error"]["message"]
    assert (folder / "notes.txt").read_text() == "mine"
    assert not (folder / "workbench.duckdb").exists()


def test_human_output_goes_to_stdout_and_errors_to_stderr(rich_ws):
    result = invoke(["stats"], rich_ws, json_out=False)
    expect(result, 0)
    assert "clips" in result.stdout
    assert not result.stdout.lstrip().startswith("{")
    result = invoke(["beats", "show", "no-such-clip.wav"], rich_ws, json_out=False)
    expect(result, 1)
    assert result.stdout == ""
    assert "no clip matches" in result.stderr


# -- import -----------------------------------------------------------------------------------

def test_import_curated_labels_clips_by_folder_and_is_idempotent(library, tmp_path):
    ws = tmp_path / "ws"
    doc = ok(["import", library / "curated", "--curated"], ws)
    assert (doc["added"], doc["labelled"], doc["rejected"], doc["duplicates"]) == (N_CURATED, N_CURATED, 0, 0)
    assert doc["rejections"] == []
    again = ok(["import", library / "curated", "--curated"], ws)
    assert again["added"] == 0 and again["unchanged"] == N_CURATED
    stats = ok(["stats"], ws)
    assert stats["clips"] == N_CURATED
    drums = next(t for t in stats["taxonomies"] if t["taxonomy"] == "drums")
    assert drums["label_counts"] == {name: len(PACKS) * PER_PACK for name in CLASSES}
    assert set(stats["sources"]) == {pack.name for pack in PACKS}


def test_import_plain_folder_with_source(library, tmp_path):
    ws = tmp_path / "ws"
    doc = ok(["import", library / "curated" / "kick", "--source", "mypack"], ws)
    assert doc["added"] == len(PACKS) * PER_PACK and doc["labelled"] == 0
    clips = ok(["clips", "list"], ws)
    assert clips["total"] == len(PACKS) * PER_PACK
    assert {clip["source"] for clip in clips["clips"]} == {"mypack"}
    assert all(clip["labels"] == [] for clip in clips["clips"])


def test_import_with_a_rejected_file_exits_3(library, tmp_path):
    folder = tmp_path / "incoming" / "pack"
    folder.mkdir(parents=True)
    (folder / "x.wav").write_text("this is not audio at all\n")
    shutil.copy(library / "curated" / "kick" / PACKS[0].name / f"{PACKS[0].name}_kick_01.wav", folder / "good.wav")
    result = invoke(["import", tmp_path / "incoming"], tmp_path / "ws")
    expect(result, 3)
    doc = document(result)
    assert doc["ok"] is False  # partial
    assert doc["added"] == 1 and doc["rejected"] == 1
    (rejection,) = doc["rejections"]
    assert rejection["path"].endswith("x.wav")
    assert rejection["reason"] == "not audio"
    # Without --json the rejections are listed for people on stderr, with the same exit code.
    result = invoke(["import", tmp_path / "incoming"], tmp_path / "ws2", json_out=False)
    expect(result, 3)
    # (rich hard-wraps stderr at 80 columns when it is not a terminal, so long paths are split)
    unwrapped = result.stderr.replace("\n", "")
    assert "1 rejected" in unwrapped and "x.wav: not audio" in unwrapped


def test_import_of_a_missing_folder_fails(tmp_path):
    doc = failed(["import", tmp_path / "does-not-exist"], tmp_path / "ws")
    assert "no such file or folder" in doc["error"]["message"]
    assert not (tmp_path / "ws").exists()  # and no empty workspace is left behind


def test_import_needs_a_path(tmp_path):
    usage_error(["import"], tmp_path / "ws")


# -- labels -----------------------------------------------------------------------------------

def test_labels_add_whole_seconds_and_beats(ws):
    whole = ok(["labels", "add", f"{PACKS[0].name}_kick_01.wav", "--label", "bd"], ws)["label"]
    assert whole["label"] == "kick"  # the alias resolves
    assert whole["origin"] == "user" and whole["segment"] == "whole"
    assert whole["start_s"] is None and whole["start_beat"] is None

    seconds = ok(["labels", "add", f"{PACKS[0].name}_kick_01.wav", "--label", "kick",
                  "--start", 0.0, "--end", 0.1], ws)["label"]
    assert (seconds["start_s"], seconds["end_s"]) == (0.0, 0.1)
    assert seconds["start_beat"] is None

    ok(["beats", "set", "track.wav", "--bpm", BPM, "--offset", OFFSET], ws)
    beats = ok(["labels", "add", "track.wav", "--label", "drop", "--start-beat", 8, "--end-beat", 24,
                "-t", "sections"], ws)["label"]
    assert (beats["taxonomy"], beats["label"]) == ("sections", "drop")
    assert (beats["start_beat"], beats["end_beat"]) == (8.0, 24.0)
    assert beats["start_s"] == pytest.approx(seconds_of(8))
    assert beats["end_s"] == pytest.approx(seconds_of(24))

    # Editing the grid moves the beat label's seconds and keeps its beats.
    moved = ok(["beats", "set", "track.wav", "--bpm", 120, "--offset", 0.0], ws)
    assert moved["labels_moved"] == 1
    listed = ok(["labels", "list", "track.wav"], ws)
    (label,) = listed["labels"]
    assert (label["start_beat"], label["end_beat"]) == (8.0, 24.0)
    assert label["start_s"] == pytest.approx(4.0) and label["end_s"] == pytest.approx(12.0)


def test_labels_add_snaps_beats_to_the_grid(ws):
    ok(["beats", "set", "track.wav", "--bpm", BPM, "--offset", OFFSET], ws)
    label = ok(["labels", "add", "track.wav", "--label", "outro", "--start-beat", 23.8, "--end-beat", 31.9,
                "--snap", "bar", "-t", "sections"], ws)["label"]
    assert (label["start_beat"], label["end_beat"]) == (24.0, 32.0)


@pytest.mark.parametrize("start,end,message", [
    (16, 8, "start beat must be before the end beat"),
    (8, 8, "start beat must be before the end beat"),
    (8, 100, "past the end of the clip"),
    (-1, 4, "must not be negative"),
])
def test_labels_add_rejects_a_bad_beat_range(ws, start, end, message):
    ok(["beats", "set", "track.wav", "--bpm", BPM, "--offset", OFFSET], ws)
    doc = failed(["labels", "add", "track.wav", "--label", "drop", "--start-beat", start, "--end-beat", end,
                  "-t", "sections"], ws)
    assert message in doc["error"]["message"]
    assert doc["error"]["type"] == "InputError"
    assert ok(["labels", "list", "track.wav"], ws)["count"] == 0


def test_labels_add_beats_on_a_clip_without_a_grid_names_the_problem(ws):
    doc = failed(["labels", "add", "track.wav", "--label", "drop", "--start-beat", 0, "--end-beat", 4,
                  "-t", "sections"], ws)
    message = doc["error"]["message"]
    assert "no beat grid" in message and "track.wav" in message
    assert "beats set" in message  # and says what to do about it


@pytest.mark.parametrize("args,message", [
    (["--start", 0.3, "--end", 0.1], "must be before end"),
    (["--start", 0.0, "--end", 99.0], "past the end of the clip"),
    (["--start", 0.0], "needs both a start and an end"),
])
def test_labels_add_rejects_a_bad_seconds_range(ws, args, message):
    doc = failed(["labels", "add", f"{PACKS[0].name}_kick_01.wav", "--label", "kick", *args], ws)
    assert message in doc["error"]["message"]


def test_labels_add_with_seconds_and_beats_is_a_usage_error(ws):
    result = usage_error(["labels", "add", f"{PACKS[0].name}_kick_01.wav", "--label", "kick",
                          "--start", 0.0, "--end", 0.1, "--start-beat", 0, "--end-beat", 1], ws)
    assert "not both" in document(result)["error"]["message"] and "not both" in result.stderr
    assert ok(["labels", "list", f"{PACKS[0].name}_kick_01.wav"], ws)["count"] == 1  # only the imported one


def test_labels_add_errors(ws):
    doc = failed(["labels", "add", "no-such-clip.wav", "--label", "kick"], ws)
    assert doc["error"]["type"] == "NotFound" and "no-such-clip.wav" in doc["error"]["message"]
    doc = failed(["labels", "add", f"{PACKS[0].name}_kick_01.wav", "--label", "banjo"], ws)
    assert "banjo" in doc["error"]["message"] and "drums" in doc["error"]["message"]
    usage_error(["labels", "add", f"{PACKS[0].name}_kick_01.wav"], ws)  # --label is required
    usage_error(["labels", "add", f"{PACKS[0].name}_kick_01.wav", "--label", "kick", "--confidence", 2], ws)


def test_labels_list(rich_ws):
    everything = ok(["labels", "list"], rich_ws)
    assert everything["count"] == N_CURATED + 2
    assert len(everything["labels"]) == everything["count"]
    kicks = ok(["labels", "list", "--label", "kick"], rich_ws)
    assert kicks["count"] == len(PACKS) * PER_PACK
    assert {label["label"] for label in kicks["labels"]} == {"kick"}
    track = ok(["labels", "list", "track.wav"], rich_ws)
    assert {label["label"] for label in track["labels"]} == {"drop", "intro"}
    drop = next(label for label in track["labels"] if label["label"] == "drop")
    assert (drop["start_beat"], drop["end_beat"], drop["segment"]) == (8.0, 24.0, "b:8-24")
    assert drop["start_s"] == pytest.approx(seconds_of(8)) and drop["end_s"] == pytest.approx(seconds_of(24))
    limited = ok(["labels", "list", "--limit", 3], rich_ws)
    assert limited["count"] == N_CURATED + 2 and len(limited["labels"]) == 3


def test_labels_remove(ws):
    added = ok(["labels", "add", f"{PACKS[0].name}_kick_01.wav", "--label", "snare", "--start", 0, "--end", 0.1], ws)
    label_id = added["label"]["label_id"]
    removed = ok(["labels", "remove", label_id], ws)["removed"]
    assert removed["label_id"] == label_id and removed["label"] == "snare"
    remaining = ok(["labels", "list"], ws)
    assert label_id not in {label["label_id"] for label in remaining["labels"]}
    assert remaining["count"] == N_CURATED
    doc = failed(["labels", "remove", label_id], ws)
    assert doc["error"]["type"] == "NotFound" and str(label_id) in doc["error"]["message"]
    usage_error(["labels", "remove", "not-a-number"], ws)


def test_labels_import_manifest_with_beats_and_a_rejected_row(ws, library, tmp_path):
    ok(["beats", "set", "track.wav", "--bpm", BPM, "--offset", OFFSET], ws)
    manifest = tmp_path / "sections.csv"
    track = library / "tracks" / "track.wav"
    manifest.write_text("path,label,start_beat,end_beat\n"
                        f"{track},intro,0,8\n"
                        f"{track},drop,8,24\n"
                        f"{track},bogus,24,32\n")
    result = invoke(["labels", "import", manifest, "-t", "sections"], ws)
    expect(result, 3)
    doc = document(result)
    assert doc["format"] == "manifest" and doc["labelled"] == 2 and doc["rejected"] == 1
    (rejection,) = doc["rejections"]
    assert rejection["reason"] == "label outside the taxonomy" and "bogus" in rejection["detail"]
    labels = {label["label"]: label for label in ok(["labels", "list", "track.wav"], ws)["labels"]}
    assert set(labels) == {"intro", "drop"}
    assert labels["drop"]["origin"] == "import"
    assert (labels["drop"]["start_beat"], labels["drop"]["end_beat"]) == (8.0, 24.0)
    assert labels["drop"]["end_s"] == pytest.approx(seconds_of(24))


def test_labels_import_audacity_track(ws, library, tmp_path):
    audio = tmp_path / "mix.wav"
    shutil.copy(library / "tracks" / "track.wav", audio)  # a copy of a known clip, at a new path
    (tmp_path / "mix.txt").write_text("0.1\t3.9\tintro\n3.9\t11.7\tdrop\n12.0\t12.0\toutro\n")
    doc = ok(["labels", "import", tmp_path / "mix.txt", "-t", "sections"], ws)
    assert doc["format"] == "audacity" and doc["labelled"] == 3 and doc["rejected"] == 0
    labels = {label["label"]: label for label in ok(["labels", "list", "track.wav"], ws)["labels"]}
    assert set(labels) == {"intro", "drop", "outro"}
    assert labels["outro"]["end_s"] - labels["outro"]["start_s"] == pytest.approx(0.1)  # a point label → a hit


def test_labels_import_missing_file_fails(ws, tmp_path):
    failed(["labels", "import", tmp_path / "nothing.csv"], ws)


# -- beats ------------------------------------------------------------------------------------

def test_beats_set_and_show(ws):
    doc = ok(["beats", "set", "track.wav", "--bpm", BPM, "--offset", OFFSET], ws)
    assert doc["grid"]["bpm"] == BPM and doc["grid"]["offset_s"] == OFFSET and doc["labels_moved"] == 0
    assert doc["grid"]["path"].endswith("track.wav")
    shown = ok(["beats", "show", "track.wav"], ws)
    assert shown["grid"]["bpm"] == BPM
    total_beats = sum(bars for _, bars in SECTIONS) * 4
    assert shown["beats_in_clip"] in (total_beats, total_beats + 1)  # the last beat may sit on the clip's end
    explicit = ok(["beats", "set", "track.wav", "--beat-times", "0.1,0.6,1.1,1.6"], ws)
    assert explicit["grid"]["bpm"] == pytest.approx(120.0) and explicit["grid"]["beat_times"] == [0.1, 0.6, 1.1, 1.6]


def test_beats_set_errors(ws):
    result = usage_error(["beats", "set", "track.wav"], ws)
    assert "--bpm" in document(result)["error"]["message"]
    doc = failed(["beats", "set", "track.wav", "--bpm", BPM, "--offset", 99], ws)
    assert "past the end" in doc["error"]["message"]
    doc = failed(["beats", "set", "track.wav", "--beat-times", "1.0,0.5"], ws)
    assert "increasing" in doc["error"]["message"]
    doc = failed(["beats", "set", "track.wav", "--bpm", -5], ws)
    assert "bpm" in doc["error"]["message"]
    failed(["beats", "set", "no-such-clip.wav", "--bpm", BPM], ws)


def test_beats_show_without_a_grid_fails(ws):
    doc = failed(["beats", "show", "track.wav"], ws)
    assert "no beat grid" in doc["error"]["message"]


def test_beats_detect_on_the_track(ws):
    doc = ok(["beats", "detect", "track.wav", "--workers", 1], ws)
    (grid,) = doc["detected"]
    assert grid["path"].endswith("track.wav")
    assert grid["bpm"] == pytest.approx(BPM, rel=0.03)
    assert doc["skipped"] == []
    shown = ok(["beats", "show", "track.wav"], ws)
    assert shown["grid"]["bpm"] == pytest.approx(grid["bpm"])
    # A hand-set grid is kept unless --overwrite.
    ok(["beats", "set", "track.wav", "--bpm", BPM, "--offset", OFFSET], ws)
    kept = ok(["beats", "detect", "track.wav", "--workers", 1], ws)
    assert kept["detected"] == [] and kept["skipped"][0]["reason"] == "kept as it is"


def test_beats_detect_skips_one_shots(ws):
    doc = ok(["beats", "detect", f"{PACKS[0].name}_kick_01.wav", "--workers", 1], ws)
    assert doc["detected"] == []
    (skipped,) = doc["skipped"]
    assert skipped["reason"] == "too short"


def test_beats_detect_needs_clips_or_all(ws):
    result = usage_error(["beats", "detect"], ws)
    assert "--all" in document(result)["error"]["message"]


# -- stats and clips --------------------------------------------------------------------------

def test_stats(rich_ws):
    doc = ok(["stats"], rich_ws)
    assert doc["clips"] == N_CURATED + 1
    assert doc["clips_labelled"] == N_CURATED + 1 and doc["clips_unlabelled"] == 0
    assert doc["beat_grids"] == 1
    assert doc["label_origins"] == {"import": N_CURATED, "user": 2}
    taxonomies = {t["taxonomy"]: t for t in doc["taxonomies"]}
    assert set(taxonomies) == {"drums", "sections"}
    drums = taxonomies["drums"]
    assert drums["label_counts"] == {name: len(PACKS) * PER_PACK for name in CLASSES}
    assert drums["ready_for_training"] is False  # far below the minimum of 30 per class
    assert any("below minimum" in reason for reason in drums["reasons"])
    assert "hihat_open" in drums["missing_labels"]
    assert taxonomies["sections"]["label_counts"] == {"drop": 1, "intro": 1}
    assert doc["sources"]["tracks"] == {"clips": 1, "labels": 2}
    only = ok(["stats", "-t", "sections"], rich_ws)
    assert [t["taxonomy"] for t in only["taxonomies"]] == ["sections"]
    failed(["stats", "-t", "nope"], rich_ws)


def test_clips_list(rich_ws):
    doc = ok(["clips", "list"], rich_ws)
    assert doc["total"] == N_CURATED + 1 and len(doc["clips"]) == N_CURATED + 1
    track = next(clip for clip in doc["clips"] if clip["path"].endswith("track.wav"))
    assert track["duration_s"] == pytest.approx(OFFSET + 32 * 60 / BPM, abs=0.01)
    assert track["sample_rate"] == TRACK_RATE and track["channels"] == 1
    assert sorted(track["labels"]) == ["drop", "intro"]
    assert len(track["clip_id"]) == 64
    pack = ok(["clips", "list", "--source", PACKS[0].name], rich_ws)
    assert pack["total"] == len(CLASSES) * PER_PACK
    assert all(clip["source"] == PACKS[0].name for clip in pack["clips"])
    limited = ok(["clips", "list", "--limit", 2], rich_ws)
    assert limited["total"] == N_CURATED + 1 and len(limited["clips"]) == 2
    assert ok(["clips", "list", "--unlabelled"], rich_ws)["total"] == 0


def test_clips_list_unlabelled(base_ws):
    doc = ok(["clips", "list", "--unlabelled"], base_ws)
    assert doc["total"] == 1 and doc["clips"][0]["path"].endswith("track.wav")


# -- features and the cache -------------------------------------------------------------------

def test_features_extract_then_warm_cache(ws):
    first = ok(["features", "extract", "--extractor", "dsp", "--workers", 1], ws)
    # 12 labelled one-shots (whole clip) plus the unlabelled track (whole clip)
    assert first["targets"] == N_CURATED + 1
    assert first["extracted"] == first["targets"] and first["cached"] == 0 and first["rejected"] == 0
    assert first["clips_decoded"] == N_CURATED + 1
    second = ok(["features", "extract", "--extractor", "dsp", "--workers", 1], ws)
    assert second["cached"] == first["targets"] and second["extracted"] == 0 and second["clips_decoded"] == 0
    only_labelled = ok(["features", "extract", "--extractor", "dsp", "--workers", 1, "--labelled-only"], ws)
    assert only_labelled["targets"] == N_CURATED
    jobs = ok(["jobs", "list"], ws)["jobs"]
    assert [job["state"] for job in jobs] == ["completed"] * 3
    assert all(job["kind"] == "extract" for job in jobs)


def test_features_extract_errors(ws):
    doc = failed(["features", "extract", "--extractor", "nope", "--workers", 1], ws)
    assert "nope" in doc["error"]["message"]
    usage_error(["features", "extract", "--workers", 0], ws)


def test_cache_stats_and_clear(ws):
    empty = ok(["cache", "stats"], ws)
    assert empty["entries"] == 0 and empty["prefixes"] == []
    ok(["features", "extract", "--extractor", "dsp", "--workers", 1], ws)
    ok(["features", "extract", "--extractor", "mel", "--workers", 1, "--labelled-only"], ws)
    stats = ok(["cache", "stats"], ws)
    by_extractor = {row["extractor"]: row for row in stats["prefixes"]}
    assert set(by_extractor) == {"dsp", "mel"}
    assert by_extractor["dsp"]["entries"] == N_CURATED + 1 and by_extractor["mel"]["entries"] == N_CURATED
    assert stats["entries"] == 2 * N_CURATED + 1 and stats["bytes"] > 0
    assert not any(row["stale"] for row in stats["prefixes"])
    assert stats["path"].endswith("cache.lmdb")
    cleared = ok(["cache", "clear", "--extractor", "mel"], ws)
    assert cleared["removed"] == N_CURATED and cleared["extractor"] == "mel"
    assert {row["extractor"] for row in ok(["cache", "stats"], ws)["prefixes"]} == {"dsp"}
    assert ok(["cache", "clear"], ws)["removed"] == N_CURATED + 1
    assert ok(["cache", "stats"], ws)["entries"] == 0


# -- export -----------------------------------------------------------------------------------

def test_export_dataset(rich_ws, tmp_path):
    out = tmp_path / "dataset"
    doc = ok(["export-dataset", "--out", out, "--extractor", "dsp", "--workers", 1], rich_ws)
    manifest = doc["manifest"]
    assert manifest["classes"] == sorted(CLASSES)
    assert sum(sum(counts.values()) for counts in manifest["counts"].values()) == N_CURATED
    assert json.loads((out / "manifest.json").read_text())["classes"] == manifest["classes"]
    for split, count in manifest["splits"].items():
        features = np.load(out / f"{split}_features.npy")
        labels = np.load(out / f"{split}_labels.npy")
        assert len(features) == len(labels) == count
        assert len((out / f"{split}_items.jsonl").read_text().splitlines()) == count
    # The folder is replaced as a whole on a second export.
    again = ok(["export-dataset", "--out", out, "--extractor", "dsp", "--workers", 1], rich_ws)
    assert again["manifest"]["fingerprint"] == manifest["fingerprint"]


def test_export_dataset_errors(rich_ws, tmp_path):
    usage_error(["export-dataset", "--extractor", "dsp"], rich_ws)  # --out is required
    usage_error(["export-dataset", "--out", tmp_path / "d", "--val", 5], rich_ws)


# -- taxonomies -------------------------------------------------------------------------------

def test_taxonomy_list_and_show(base_ws):
    listed = ok(["taxonomy", "list"], base_ws)["taxonomies"]
    by_name = {item["name"]: item for item in listed}
    assert {"drums", "sections"} <= set(by_name)
    assert by_name["drums"]["default"] is True and by_name["sections"]["default"] is False
    assert set(CLASSES) <= set(by_name["drums"]["labels"])
    shown = ok(["taxonomy", "show", "drums"], base_ws)
    assert shown["name"] == "drums"
    kick = next(label for label in shown["labels"] if label["name"] == "kick")
    assert "bd" in kick["aliases"] and kick["min_count"] >= 1 and kick["colour"].startswith("#")
    doc = failed(["taxonomy", "show", "nope"], base_ws)
    assert doc["error"]["type"] == "NotFound" and "drums" in doc["error"]["message"]


def test_taxonomy_create_and_use(ws):
    created = ok(["taxonomy", "create", "fx", "--labels", "Riser, Impact,downlifter", "--min-count", 5], ws)
    assert [label["name"] for label in created["labels"]] == ["riser", "impact", "downlifter"]
    assert Path(created["path"]).is_file() and Path(created["path"]).parent == ws.resolve() / "taxonomies"
    assert all(label["min_count"] == 5 for label in created["labels"])
    doc = failed(["taxonomy", "create", "fx", "--labels", "a,b"], ws)
    assert "already exists" in doc["error"]["message"]
    usage_error(["taxonomy", "create", "other"], ws)  # --labels is required

    assert ok(["taxonomy", "use", "fx"], ws)["default_taxonomy"] == "fx"
    listed = {item["name"]: item for item in ok(["taxonomy", "list"], ws)["taxonomies"]}
    assert listed["fx"]["default"] is True and listed["drums"]["default"] is False
    # the default taxonomy is the one labels go to without -t
    label = ok(["labels", "add", f"{PACKS[0].name}_kick_01.wav", "--label", "impact"], ws)["label"]
    assert label["taxonomy"] == "fx"
    failed(["taxonomy", "use", "nope"], ws)
    listed = {item["name"]: item for item in ok(["taxonomy", "list"], ws)["taxonomies"]}
    assert listed["fx"]["default"] is True


# -- jobs -------------------------------------------------------------------------------------

def test_jobs_list(rich_ws, base_ws):
    jobs = ok(["jobs", "list"], rich_ws)["jobs"]
    extract = next(job for job in jobs if job["kind"] == "extract")
    assert extract["state"] == "completed" and extract["progress"] == 1.0
    assert extract["result"]["extracted"] == N_CURATED + 2  # 12 one-shots and two labelled regions of the track
    assert extract["params"]["spec"]["kind"] == "dsp"
    assert extract["finished_at"] is not None and extract["error"] is None
    assert ok(["jobs", "list"], base_ws)["jobs"] == []
    usage_error(["jobs", "list", "--limit", 0], rich_ws)


# -- bugs found by these tests, now fixed ------------------------------------------------------
# Each of these once crashed with a traceback instead of exit 1 and a JSON error document.

def test_a_bad_busy_timeout_setting_is_a_clear_error(base_ws):
    doc = failed(["stats"], base_ws, env={"WORKBENCH_BUSY_TIMEOUT": "abc"})
    assert "WORKBENCH_BUSY_TIMEOUT" in doc["error"]["message"]


def test_taxonomy_create_refuses_a_path_like_name(ws):
    doc = failed(["taxonomy", "create", "sub/fx", "--labels", "a,b"], ws)
    assert "name" in doc["error"]["message"]


@pytest.mark.parametrize("name", ["x[/b].wav", "[weird].wav"])
def test_error_messages_with_square_brackets_are_printed_as_they_are(rich_ws, name):
    doc = failed(["labels", "add", name, "--label", "kick"], rich_ws)
    assert name in doc["error"]["message"]
    result = invoke(["labels", "add", name, "--label", "kick"], rich_ws, json_out=False)
    expect(result, 1)
    assert name in result.stderr.replace("\n", "")


def test_features_extract_with_a_badly_typed_param_is_a_clear_error(ws):
    doc = failed(["features", "extract", "--extractor", "mel", "--param", "n_mels=abc", "--workers", 1], ws)
    assert "n_mels" in doc["error"]["message"]
