"""Trust under hostile inputs: files edited in place, unwritable workspaces, bad taxonomies and
embedding sidecars, and damaged model files at activation (issue 10, items 4–6 and 8)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import clip_id_of, write_tone
from engine.audio.beatgrid import BeatGrid
from engine.concepts import Origin
from engine.features.service import workspace_targets
from engine.library.editing import add_label
from engine.library.grids import set_grid
from engine.library.importer import import_folder
from engine.library.stats import workspace_stats
from engine.store.clips import all_clips
from engine.store.labels import labelled_segments, query_labels

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.main", "--headless", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


# -- item 4: a file edited in place ---------------------------------------------------------------

@pytest.fixture
def edited(workspace, tmp_path):
    """A 4-second `a.wav` with three user labels, a beat grid and an imported label, and `b.wav`; then
    `a.wav` is rewritten (3 seconds, another pitch) in place."""
    library = tmp_path / "library"
    write_tone(library / "a.wav", seconds=4.0, freq=220.0)
    write_tone(library / "b.wav", seconds=1.0, freq=330.0)
    import_folder(workspace, library, workers=1)
    old_id = clip_id_of(workspace, "a.wav")
    set_grid(workspace, "a.wav", BeatGrid.constant(120.0))
    add_label(workspace, "a.wav", "kick")
    add_label(workspace, "a.wav", "snare", start_s=0.5, end_s=1.0)
    add_label(workspace, "a.wav", "tom", start_s=3.2, end_s=3.8)  # past the end of the new file
    add_label(workspace, "a.wav", "crash", start_beat=2, end_beat=4)
    add_label(workspace, "a.wav", "clap", origin=Origin.IMPORT)
    write_tone(library / "a.wav", seconds=3.0, freq=440.0)
    return library, old_id


def test_a_file_edited_in_place_retires_its_clip_and_carries_the_user_labels(workspace, edited):
    library, old_id = edited
    report = import_folder(workspace, library, workers=1)
    new_id = clip_id_of(workspace, "a.wav")
    assert new_id != old_id
    assert (report.added, report.retired, report.labels_carried, report.unchanged) == (1, 1, 3, 1)
    assert report.to_dict()["retired"] == 1 and report.to_dict()["labels_carried"] == 3
    assert any("changed since it was imported" in note and old_id[:12] in note for note in report.notes)
    assert any("not carried: tom" in note and "past the end" in note for note in report.notes)
    with workspace.db.transaction() as con:
        clips = all_clips(con)
        assert sorted(Path(c.path).name for c in clips) == ["a.wav", "b.wav"]  # one clip per path
        carried = {(label.label, label.segment.key) for label in query_labels(con, clip_id=new_id)}
        assert carried == {("kick", "whole"), ("snare", "t:0.500-1.000"), ("crash", "b:2-4")}
        assert all(label.origin == Origin.USER for label in query_labels(con, clip_id=new_id))
        assert {item.clip_id for item in labelled_segments(con)} == {new_id}  # training never sees the old clip
        history = con.execute("SELECT path, replaced_by FROM retired_clips WHERE clip_id = ?", [old_id]).fetchone()
        assert history == (str(library / "a.wav"), new_id)
        kept = con.execute("SELECT count(*) FROM labels WHERE clip_id = ?", [old_id]).fetchone()[0]
        assert kept == 5  # the old clip's labels stay in the history
    stats = workspace_stats(workspace)
    assert (stats.clips, stats.clips_labelled, stats.origins, stats.beat_grids) == (2, 1, {"user": 3}, 1)
    assert {target.clip_id for target in workspace_targets(workspace)} == {new_id, clip_id_of(workspace, "b.wav")}
    again = import_folder(workspace, library, workers=1)
    assert (again.retired, again.unchanged, again.added) == (0, 2, 0)


def test_the_cli_reports_the_retired_clip_and_features_extract_succeeds(workspace, edited):
    library, _ = edited
    document = json.loads(run_cli("--workspace", str(workspace.root), "import", str(library), "--json").stdout)
    assert (document["retired"], document["labels_carried"], document["exit_code"]) == (1, 3, 0)
    extract = run_cli("--workspace", str(workspace.root), "features", "extract", "--workers", "1", "--json")
    assert extract.returncode == 0, extract.stdout + extract.stderr
    assert json.loads(extract.stdout)["rejected"] == 0


def test_swapped_files_move_and_reverted_content_comes_back(workspace, tmp_path):
    library = tmp_path / "library"
    write_tone(library / "a.wav", seconds=1.0, freq=220.0)
    write_tone(library / "b.wav", seconds=1.5, freq=330.0)
    import_folder(workspace, library, workers=1)
    a_id, b_id = clip_id_of(workspace, "a.wav"), clip_id_of(workspace, "b.wav")
    add_label(workspace, "a.wav", "kick")
    os.rename(library / "a.wav", library / "tmp.wav")
    os.rename(library / "b.wav", library / "a.wav")
    os.rename(library / "tmp.wav", library / "b.wav")
    swapped = import_folder(workspace, library, workers=1)
    assert (swapped.moved, swapped.retired, swapped.added) == (2, 0, 0)
    assert (clip_id_of(workspace, "a.wav"), clip_id_of(workspace, "b.wav")) == (b_id, a_id)
    original = (library / "b.wav").read_bytes()
    write_tone(library / "b.wav", seconds=0.5, freq=880.0)
    assert import_folder(workspace, library, workers=1).retired == 1
    (library / "b.wav").write_bytes(original)
    reverted = import_folder(workspace, library, workers=1)
    assert (reverted.retired, reverted.added) == (1, 1)
    assert clip_id_of(workspace, "b.wav") == a_id  # back from the history, with its own label
    with workspace.db.transaction() as con:
        assert [label.label for label in query_labels(con, clip_id=a_id)] == ["kick"]
        assert con.execute("SELECT count(*) FROM retired_clips WHERE clip_id = ?", [a_id]).fetchone()[0] == 0
        assert len(all_clips(con)) == 2


def test_a_clip_with_an_unchanged_copy_moves_to_the_copy_instead_of_retiring(workspace, tmp_path):
    library = tmp_path / "library"
    write_tone(library / "a.wav", seconds=1.0)
    (library / "copy").mkdir()
    (library / "copy" / "a.wav").write_bytes((library / "a.wav").read_bytes())
    import_folder(workspace, library, workers=1)
    a_id = clip_id_of(workspace, "/library/a.wav")
    write_tone(library / "a.wav", seconds=2.0, freq=500.0)
    report = import_folder(workspace, library, workers=1)
    assert (report.retired, report.moved, report.added) == (0, 1, 1)
    assert clip_id_of(workspace, "copy/a.wav") == a_id


# -- item 8: activation tries the model before the registry changes --------------------------------

CLASSES = ["hihat_closed", "kick", "snare"]


@pytest.fixture
def two_versions(workspace, tmp_path):
    """drums@1 (active) and drums@2: logreg models fitted on random rows of the dsp feature width."""
    import numpy as np

    from engine.features.dsp import DspExtractor
    from engine.features.spec import FeatureSpec
    from engine.models.kinds import make_model, save_model
    from engine.models.registry import register
    from engine.services.activation import activate

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((30, len(DspExtractor().feature_names()))), np.arange(30) % 3
    for number in (1, 2):
        folder = tmp_path / f"artifact{number}"
        save_model(make_model("logreg").fit(X, y, n_classes=3), folder)
        register(workspace, name="drums", task="drums", kind="logreg", artifact_dir=folder,
                 feature_spec=FeatureSpec.parse("dsp"), classes=CLASSES, label_counts={c: 10 for c in CLASSES},
                 hyperparams={}, metrics={}, dataset_fingerprint="f", job_id=None, meta={"window_s": None})
    activate(workspace, "drums@1")
    return workspace.models_dir / "drums"


def active_version(workspace) -> int:
    from engine.models.registry import resolve

    return resolve(workspace, "drums").version


def test_activation_tries_the_model_and_refuses_damaged_files(workspace, two_versions):
    from engine.errors import InputError
    from engine.services.activation import activate

    params = two_versions / "v2" / "logreg.json"
    good = params.read_text()
    params.write_text(good[: len(good) // 2])  # cut in half
    with pytest.raises(InputError, match="^model files damaged: drums@2"):
        activate(workspace, "drums@2")
    assert active_version(workspace) == 1
    saved = json.loads(good)
    saved["coef"] = [row[:5] for row in saved["coef"]]  # a wrong coef shape: loads, but cannot run
    params.write_text(json.dumps(saved))
    with pytest.raises(InputError, match="model files damaged: drums@2"):
        activate(workspace, "drums@2")
    assert active_version(workspace) == 1
    params.write_text(good)
    assert activate(workspace, "drums@2")[0].version == 2


def test_rollback_to_a_damaged_version_is_refused_and_the_cli_says_so(workspace, two_versions):
    from engine.errors import InputError
    from engine.services.activation import activate, activate_and_infer

    activate(workspace, "drums@2")
    (two_versions / "v1" / "model.json").write_text("{not json")
    with pytest.raises(InputError, match="model files damaged: drums@1"):
        activate_and_infer(workspace, "drums", rollback=True, infer=False)
    assert active_version(workspace) == 2
    result = run_cli("--workspace", str(workspace.root), "models", "activate", "drums@1", "--json")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    document = json.loads(result.stdout)
    assert document["error"]["message"].startswith("model files damaged: drums@1")
    assert active_version(workspace) == 2
