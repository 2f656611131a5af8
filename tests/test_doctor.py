"""`doctor` and the reconciling of model folders a kill left half-registered."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from conftest import copy_workspace, curated_library, write_hits
from engine.concepts import JobState
from engine.jobs.log import STALE_AFTER_S, JobLog, get_job, new_job_id
from engine.library.importer import import_folder
from engine.models.orphans import NOTE_FILE, REGISTRATION_FILE, orphans_dir
from engine.models.registry import delete, list_versions, register, resolve
from engine.progress import CancelToken
from engine.store import jobs as job_store
from engine.store.clips import all_clips
from engine.training.run import TrainRequest, run_training
from engine.workspace import Workspace


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A workspace with a library, its dsp features and one trained version, drums@1."""
    root = tmp_path_factory.mktemp("doctor")
    workspace = Workspace.open(root / "ws")
    import_folder(workspace, curated_library(root / "curated", per_pack=3), curated=True, workers=1)
    params = TrainRequest(name="drums", model="logreg", min_class_samples=2, split_by="clip").__dict__
    run_training(workspace, JobLog(workspace, "train", params, state=JobState.PENDING), params, CancelToken())
    return workspace.root


@pytest.fixture
def ws(trained, tmp_path) -> Path:
    return copy_workspace(trained, tmp_path)


def doctor(ws: Path, *args: str) -> tuple[int, dict]:
    result = CliRunner().invoke(app, ["--headless", "--workspace", str(ws), "doctor", *args, "--json"])
    document = json.loads(result.stdout)
    assert document["exit_code"] == result.exit_code, result.output
    return result.exit_code, document


def findings(document: dict, check: str) -> list[dict]:
    return next(c for c in document["checks"] if c["name"] == check)["findings"]


def cut_short_registration(ws: Path, version: int = 2) -> Path:
    """What a kill leaves between moving a model folder to models/drums/vN and committing its row:
    the trained folder in place and no row naming it."""
    folder = ws / "models" / "drums" / f"v{version}"
    shutil.copytree(ws / "models" / "drums" / "v1", folder)
    return folder


# -- reconciling --------------------------------------------------------------------------------

def test_a_complete_folder_without_its_row_is_registered_when_the_workspace_opens(ws):
    folder = cut_short_registration(ws)
    workspace = Workspace.open(ws)
    version = resolve(workspace, "drums@2")
    first = resolve(workspace, "drums@1")
    assert Path(version.artifact_dir) == folder and (folder / REGISTRATION_FILE).is_file()
    assert version.metrics == first.metrics and version.label_set == first.label_set
    assert version.spec == first.spec and version.job_id == first.job_id
    assert not orphans_dir(workspace).exists() or not any(orphans_dir(workspace).iterdir())


def test_an_incomplete_folder_is_set_aside_with_a_note_and_the_next_version_takes_its_number(ws):
    folder = cut_short_registration(ws)
    (folder / "model.json").unlink()
    workspace = Workspace.open(ws)
    assert [v.version for v in list_versions(workspace, "drums")] == [1]
    [aside] = orphans_dir(workspace).iterdir()
    assert not folder.exists() and aside.name.startswith("drums-v2-")
    note = (aside / NOTE_FILE).read_text()
    assert str(folder) in note and "model.json is missing" in note
    assert (aside / REGISTRATION_FILE).is_file()  # everything else is kept as it was
    Workspace.open(ws)  # a folder with a note is never looked at again
    assert [v.version for v in list_versions(workspace, "drums")] == [1]
    assert list(orphans_dir(workspace).iterdir()) == [aside]


def test_a_changed_file_makes_a_folder_incomplete(ws):
    folder = cut_short_registration(ws)
    model_file = next(p for p in folder.iterdir() if p.name not in (REGISTRATION_FILE, "model.json"))
    model_file.write_bytes(b"x" + model_file.read_bytes()[1:])  # same size, other content
    workspace = Workspace.open(ws)
    [aside] = orphans_dir(workspace).iterdir()
    assert "changed after training" in (aside / NOTE_FILE).read_text()


def test_registering_sets_a_folder_in_its_way_aside_instead_of_deleting_it(ws, tmp_path):
    in_the_way = cut_short_registration(ws)
    (in_the_way / "extra.txt").write_text("a trained model someone cares about")
    workspace = Workspace(ws)  # opened without reconciling, as by a workbench from before this
    first = resolve(workspace, "drums@1")
    artifact = tmp_path / "artifact"
    shutil.copytree(first.artifact_dir, artifact)
    version = register(workspace, name="drums", task=first.task, kind=first.kind, artifact_dir=artifact,
                       feature_spec=first.spec, classes=first.label_set, label_counts=first.label_counts,
                       hyperparams=first.hyperparams, metrics=first.metrics,
                       dataset_fingerprint=first.dataset_fingerprint, job_id=None)
    assert version.version == 2
    [aside] = orphans_dir(workspace).iterdir()
    assert (aside / "extra.txt").read_text() == "a trained model someone cares about"
    assert "in the way of registering drums@2" in (aside / NOTE_FILE).read_text()


def test_the_folder_of_a_deleted_version_is_not_registered_again(ws):
    workspace = Workspace.open(ws)
    kept = cut_short_registration(ws)
    Workspace.open(ws)  # drums@2
    shutil.copytree(kept, ws / "models" / "keep")
    delete(workspace, "drums@2")
    shutil.copytree(ws / "models" / "keep", kept)  # a deletion a kill cut short leaves its folder
    shutil.rmtree(ws / "models" / "keep")
    Workspace.open(ws)
    assert [v.version for v in list_versions(workspace, "drums")] == [1]
    [aside] = orphans_dir(workspace).iterdir()
    assert "number is used up" in (aside / NOTE_FILE).read_text()


# -- doctor -----------------------------------------------------------------------------------

def test_a_healthy_workspace_is_clean(ws):
    code, document = doctor(ws)
    assert code == 0 and document["ok"] and document["found"] == 0
    assert [c["name"] for c in document["checks"]] == ["database", "jobs", "models", "model folders",
                                                       "feature cache", "clips"]
    assert all(c["ok"] for c in document["checks"])


def _stale_job(ws: Path) -> str:
    workspace = Workspace(ws)
    job_id = new_job_id("train")
    with workspace.db.transaction() as con:
        job_store.insert_job(con, job_id, "train", JobState.TRAINING, {}, 4242, "gone-host",
                             time.time() - STALE_AFTER_S - 10)
    return job_id


def _garbage_cache_entry(ws: Path) -> None:
    cache = Workspace(ws).cache
    with cache._env.begin(write=True) as txn:  # bytes that are no .npy array, as a torn write leaves
        txn.put(b"dsp:0:1|deadbeef|whole", b"\x93NUMPY garbage")
    cache.close()


def test_doctor_finds_and_repair_fixes_stale_jobs_unregistered_folders_and_unreadable_cache_entries(ws):
    job_id = _stale_job(ws)
    cut_short_registration(ws)
    _garbage_cache_entry(ws)
    code, document = doctor(ws)
    assert code == 1 and document["found"] == 3 and document["fixed"] == 0
    assert job_id in findings(document, "jobs")[0]["problem"]
    assert "complete: --repair registers it" in findings(document, "model folders")[0]["problem"]
    assert "deadbeef" in findings(document, "feature cache")[0]["problem"]
    workspace = Workspace(ws)
    assert get_job(workspace, job_id).state == JobState.INTERRUPTED  # reading the jobs list marks it too
    with workspace.db.transaction() as con:
        job_store.set_state(con, job_id, JobState.TRAINING, None)
    assert [v.version for v in list_versions(workspace, "drums")] == [1]  # looking changed nothing

    code, document = doctor(ws, "--repair")
    assert code == 0 and document["ok"] and document["found"] == document["fixed"] == 3
    assert findings(document, "jobs")[0]["fixed"] == "marked interrupted"
    assert findings(document, "model folders")[0]["fixed"] == "registered as drums@2"
    assert findings(document, "feature cache")[0]["fixed"].startswith("dropped")
    assert [v.version for v in list_versions(workspace, "drums")] == [1, 2]
    code, document = doctor(ws)
    assert code == 0 and document["found"] == 0


def own_clips(ws: Path, folder: Path, count: int) -> list:
    """`count` clips of this test's own, imported into its workspace (the shared library stays as it is)."""
    workspace = Workspace.open(ws)
    paths = {str(path.resolve()) for path in write_hits(folder, "tom", count)}
    import_folder(workspace, folder, workers=1)
    with workspace.db.transaction() as con:
        return sorted((clip for clip in all_clips(con) if clip.path in paths), key=lambda clip: clip.path)


def test_damaged_model_files_and_missing_clips_are_reported_and_never_touched(ws, tmp_path):
    workspace = Workspace(ws)
    version = resolve(workspace, "drums@1")
    damaged = Path(version.artifact_dir) / "model.json"
    damaged.write_text(damaged.read_text() + " ")
    clips = own_clips(ws, tmp_path / "hits", 1)
    Path(clips[0].path).unlink()
    code, document = doctor(ws, "--repair")
    assert code == 1 and not document["ok"] and document["fixed"] == 0
    [model] = findings(document, "models")
    assert model["problem"].startswith("drums@1: model files damaged: model.json (") and model["fixed"] is None
    [clip] = findings(document, "clips")
    assert clip["problem"].endswith("file missing") and clips[0].path in clip["problem"]
    assert damaged.is_file()


def test_a_touched_clip_is_reported_by_time_and_deep_compares_its_contents(ws, tmp_path):
    touched, edited = own_clips(ws, tmp_path / "hits", 2)
    os.utime(touched.path, ns=(time.time_ns(), time.time_ns() + 10**9))
    content = bytearray(Path(edited.path).read_bytes())
    content[-1] ^= 0xFF  # same size, another last sample
    stat = os.stat(edited.path)
    Path(edited.path).write_bytes(bytes(content))
    os.utime(edited.path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # and the same time
    code, document = doctor(ws)
    assert code == 1 and [f["problem"] for f in findings(document, "clips")] == [
        f"clip {touched.short_id} {touched.path}: modified since import (its time changed; --deep compares contents)"]
    code, document = doctor(ws, "--deep")
    assert code == 1 and [f["problem"] for f in findings(document, "clips")] == [
        f"clip {edited.short_id} {edited.path}: changed since import (its contents differ)"]


def test_a_database_that_does_not_open_is_reported_and_nothing_else_is_checked(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "workbench.duckdb").write_bytes(b"not a database" * 100)
    code, document = doctor(ws)
    assert code == 1 and [c["name"] for c in document["checks"]] == ["database"]
    assert "cannot be opened or migrated" in findings(document, "database")[0]["problem"]


def test_doctor_on_a_folder_without_a_workspace_says_so(tmp_path):
    result = CliRunner().invoke(app, ["--headless", "--workspace", str(tmp_path / "nowhere"), "doctor", "--json"])
    assert result.exit_code == 1 and "no workspace at" in json.loads(result.stdout)["error"]["message"]
