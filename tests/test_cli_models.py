"""The model commands of the headless CLI: train, jobs, eval, models, predict, infer, embeddings.

Every command runs in-process through typer's CliRunner on `cli.main.app` (training jobs still run
in worker processes of their own) and is checked for its exit code and, with --json, for exactly
one JSON document on stdout. A template workspace per module holds a small drum library, and three
versions trained in-process once (drums@1, drums@2: logreg; gbm@1: lgbm) are registered into each
test's own copy of it.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from conftest import copy_workspace, copy_workspace_with_versions, curated_library, write_hits
from engine.audio.synth import DEMO_PACKS
from engine.jobs.log import FINAL_STATES, JobLog, get_job
from engine.library.importer import import_folder
from engine.progress import CancelToken
from engine.models.registry import list_versions
from engine.training.run import TrainRequest, run_training
from engine.workspace import Workspace

CLASSES = ["hihat_closed", "kick", "snare"]
N_CLIPS = 3 * 3 * 4
# logreg: the fastest kind, one "epoch" event; these tests are about jobs, not the default model
FEW_CLIPS = ["--min-class-samples", "2", "--split", "clip"]  # three packs would leave the test split empty
SMALL = ["--model", "logreg", *FEW_CLIPS]

runner = CliRunner()


# -- helpers ----------------------------------------------------------------------------------

def run(args: list, ws: Path | None = None, *, json_out: bool = True):
    prefix = ["--headless"] + (["--workspace", str(ws)] if ws is not None else [])
    return runner.invoke(app, [*prefix, *[str(a) for a in args], *(["--json"] if json_out else [])])


def explain(result) -> str:
    text = f"exit {result.exit_code}\n--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        text += "\n--- exception ---\n" + "".join(traceback.format_exception(*result.exc_info))
    return text


def exits(result, code: int) -> None:
    crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
    assert not crashed, explain(result)
    assert result.exit_code == code, explain(result)


def one_document(result) -> dict:
    try:
        document = json.loads(result.stdout)  # refuses anything before or after one document
    except json.JSONDecodeError as error:
        raise AssertionError(f"stdout is not exactly one JSON document ({error})\n{explain(result)}") from None
    assert isinstance(document, dict) and document["exit_code"] == result.exit_code, explain(result)
    return document


def ok(args: list, ws: Path | None = None) -> dict:
    result = run(args, ws)
    exits(result, 0)
    document = one_document(result)
    assert document["ok"] is True
    return document


def fails(args: list, ws: Path | None = None, *, kind: str | None = None) -> str:
    """A command that fails with an engine error: exit 1, a JSON error document; returns the message."""
    result = run(args, ws)
    exits(result, 1)
    document = one_document(result)
    assert document["ok"] is False and document["error"]["busy"] is False
    if kind is not None:
        assert document["error"]["type"] == kind, document
    assert "error" in result.stderr
    return document["error"]["message"]


def json_lines(result) -> list[dict]:
    lines = result.stdout.splitlines()
    assert lines, explain(result)
    return [json.loads(line) for line in lines]


def wait_for(ws: Path, job_id: str, done, timeout: float = 90.0):
    workspace = Workspace.open(ws)
    deadline = time.monotonic() + timeout
    while True:
        record = get_job(workspace, job_id)
        if done(record):
            return record
        assert time.monotonic() < deadline, f"job {job_id} still {record.state} after {timeout} s"
        time.sleep(0.2)


def reap(pid: int | None, timeout: float = 30.0) -> None:
    """Collect a worker that this (test) process started, so it does not stay behind as a zombie."""
    deadline = time.monotonic() + timeout
    while pid and time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0]:
                return
        except ChildProcessError:
            return
        time.sleep(0.05)


# -- fixtures ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli_models_library")
    curated_library(root / "curated", classes=tuple(CLASSES), per_pack=4, packs=DEMO_PACKS[:3])
    # An unseen kit for `eval`, with a class the models do not know.
    curated_library(root / "new_kit", classes=(*CLASSES, "tom"), per_pack=2, packs=DEMO_PACKS[3:4])
    write_hits(root / "hits", "kick", 1, pack=DEMO_PACKS[4], seed=5)
    write_hits(root / "hits", "hihat_closed", 1, pack=DEMO_PACKS[4], seed=5)
    return root


@pytest.fixture(scope="module")
def trained(library, tmp_path_factory) -> tuple[Path, list]:
    """A base workspace (the library imported, dsp features cached, no models) and three versions
    trained in a scratch copy of it: drums@1, drums@2 (logreg), gbm@1 (lgbm)."""
    base = Workspace.open(tmp_path_factory.mktemp("cli_models_base") / "ws")
    import_folder(base, library / "curated", curated=True, workers=1)
    scratch = Workspace.open(copy_workspace(base.root, tmp_path_factory.mktemp("cli_models_scratch")))
    for name, model, hyperparams in (("drums", "logreg", {}), ("drums", "logreg", {"C": 0.5}),
                                     ("gbm", "lgbm", {"n_estimators": 10, "patience": 10})):
        params = TrainRequest(name=name, model=model, min_class_samples=2, split_by="clip",
                              hyperparams=hyperparams).__dict__
        run_training(scratch, JobLog(scratch, "train", params, state="pending"), params, CancelToken())
    return base.root, list_versions(scratch)


@pytest.fixture
def ws(trained, tmp_path) -> Path:
    """A copy of the base workspace with the three versions registered into it. (Copying a
    workspace that holds versions would not do: versions keep absolute artifact paths, so the copy
    would load, and delete, the original's files; see test_registry.py.)"""
    base, versions = trained
    return copy_workspace_with_versions(base, versions, tmp_path)


# -- train and jobs ---------------------------------------------------------------------------

def test_train_follows_its_job_and_prints_one_document(ws):
    document = ok(["train", "--name", "fresh", *SMALL], ws)
    job = document["job"]
    assert job["state"] == "completed" and job["kind"] == "train" and job["error"] is None
    assert job["result"]["model"] == "fresh@1"
    assert set(job["result"]["test"]) == {"accuracy", "macro_f1", "ci", "n"}
    assert job["params"]["name"] == "fresh" and job["params"]["model"] == "logreg"
    reap(job["pid"])
    (version,) = ok(["models", "list", "fresh"], ws)["models"]
    assert version["ref"] == "fresh@1" and version["job_id"] == job["job_id"] and version["active"] is False


def test_a_failed_training_job_exits_1_with_the_reason(ws):
    result = run(["train", "--name", "bad", "--model", "cnn", "--features", "dsp", "--epochs", "2",
                  "--device", "cpu", *FEW_CLIPS], ws)
    exits(result, 1)
    document = one_document(result)
    assert document["ok"] is False and document["job"]["state"] == "failed"
    assert "cnn trains on mel patches (--features mel), not dsp" in document["job"]["error"]
    reap(document["job"]["pid"])
    assert ok(["models", "list", "bad"], ws)["models"] == []


def test_train_detach_then_follow_show_and_list_the_job(ws):
    started = ok(["train", "--name", "quick", "--detach", *SMALL], ws)
    assert set(started) == {"ok", "exit_code", "job_id", "state"} and started["state"] == "pending"
    job_id = started["job_id"]

    followed = run(["jobs", "follow", job_id], ws)  # --json: one JSON line per event, then exit 0
    exits(followed, 0)
    events = json_lines(followed)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert {e["job_id"] for e in events} == {job_id}
    assert [e["state"] for e in events if e["kind"] == "state"] == ["preparing", "training", "evaluating"]
    assert [e["epoch"] for e in events if e["kind"] == "epoch"] == [1]

    shown = run(["jobs", "show", job_id[-6:]], ws)  # the last six characters are enough
    exits(shown, 0)
    record, *shown_events = json_lines(shown)  # --json: the job's record, then its events as `follow` prints them
    assert record["ok"] is True and record["job"]["job_id"] == job_id and record["job"]["state"] == "completed"
    assert record["job"]["result"]["model"] == "quick@1"
    assert shown_events == events
    reap(record["job"]["pid"])

    listed = ok(["jobs", "list"], ws)["jobs"]
    assert listed[0]["job_id"] == job_id and listed[0]["state"] == "completed"
    assert fails(["jobs", "show", "train-no-such-job"], ws, kind="NotFound").startswith("no job")


def test_jobs_cancel_stops_a_running_job_and_follow_exits_130(ws):
    started = ok(["train", "--name", "long", "--model", "mlp", "--epochs", "500", "--patience", "500",
                  "--device", "cpu", "--detach", *FEW_CLIPS], ws)
    job_id = started["job_id"]
    # Once the job is preparing its worker listens for the cancel signal.
    wait_for(ws, job_id, lambda r: r.state not in ("pending",))
    cancelled = ok(["jobs", "cancel", job_id], ws)
    assert cancelled["job"]["job_id"] == job_id

    followed = run(["jobs", "follow", job_id], ws)
    exits(followed, 130)
    assert all(line["job_id"] == job_id for line in json_lines(followed))
    record = wait_for(ws, job_id, lambda r: r.state in FINAL_STATES)
    reap(record.pid)
    assert record.state == "cancelled" and "cancelled" in record.error
    assert ok(["models", "list", "long"], ws)["models"] == []
    assert ok(["jobs", "cancel", job_id], ws)["job"]["state"] == "cancelled"  # again: nothing changes
    human = run(["jobs", "follow", job_id], ws, json_out=False)
    exits(human, 130)
    assert f"{job_id}: cancelled" in human.stdout


# -- eval -------------------------------------------------------------------------------------

def test_eval_on_a_curated_folder_reports_metrics_and_what_it_left_out(ws, library):
    document = ok(["eval", "--model", "drums@1", "--dataset", library / "new_kit", "--workers", 1], ws)
    assert document["model"] == "drums@1" and document["dataset"] == str(library / "new_kit")
    metrics = document["metrics"]
    assert metrics["classes"] == CLASSES and metrics["n"] == 6
    assert set(metrics["ci"]) == {"accuracy", "macro_f1"} and 0.0 <= metrics["ece"] <= 1.0
    assert document["notes"] == ["left out 2 rows with labels the model does not know: tom"]
    assert document["rejections"] == []
    assert ok(["eval", "--model", "drums", "--dataset", library / "curated"], ws)["metrics"]["n"] == N_CLIPS


def test_eval_with_a_rejected_file_exits_3(ws, library, tmp_path):
    kit = tmp_path / "kit"
    curated_library(kit, classes=("kick", "snare"), per_pack=2, packs=DEMO_PACKS[3:4])
    (kit / "kick" / "broken.wav").write_text("not audio")
    result = run(["eval", "--model", "drums", "--dataset", kit, "--workers", 1], ws)
    exits(result, 3)
    document = one_document(result)
    assert document["ok"] is False and document["metrics"]["n"] == 4
    assert [Path(r["path"]).name for r in document["rejections"]] == ["broken.wav"]


# -- models -----------------------------------------------------------------------------------

def test_models_list_and_show(ws):
    listed = ok(["models", "list"], ws)["models"]
    assert [m["ref"] for m in listed] == ["drums@1", "drums@2", "gbm@1"]
    assert [m["kind"] for m in listed] == ["logreg", "logreg", "lgbm"]
    assert all(m["classes"] == CLASSES and m["features"] == "dsp" and not m["active"] for m in listed)
    assert listed[1]["hyperparams"]["C"] == 0.5
    shown = ok(["models", "show", "drums"], ws)  # nothing active: the newest
    assert shown["model"]["ref"] == "drums@2" and shown["activations"] == []
    assert set(shown["model"]["metrics"]["test"]) >= {"accuracy", "macro_f1", "ci", "per_class", "confusion", "ece"}
    human = run(["models", "show", "drums@1"], ws, json_out=False)
    exits(human, 0)
    assert "drums@1" in human.stdout and "hihat_closed, kick, snare" in human.stdout
    calibration = ok(["models", "show", "drums@1"], ws)["model"]["metrics"]["calibration"]
    assert f"calibration: temperature {calibration['temperature']:.3f} (fitted on val)" in human.stdout


def test_models_activate_rollback_and_delete(ws):
    first = ok(["models", "activate", "drums", "1", "--reason", "first one", "--workers", 1], ws)
    assert (first["active"], first["previous_version"], first["predictions"]) == ("drums@1", None, N_CLIPS)
    second = ok(["models", "activate", "drums@2", "--no-inference"], ws)
    assert (second["active"], second["previous_version"], second["predictions"]) == ("drums@2", 1, 0)
    back = ok(["models", "rollback", "drums", "--reason", "v2 is worse", "--workers", 1], ws)
    assert (back["active"], back["previous_version"], back["predictions"]) == ("drums@1", 2, N_CLIPS)

    history = ok(["models", "show", "drums"], ws)["activations"]
    assert [(h["version"], h["previous_version"], h["reason"]) for h in history] == [
        (1, None, "first one"), (2, 1, None), (1, 2, "v2 is worse")]
    assert all(h["at"] for h in history)

    assert "drums@1 is active" in fails(["models", "delete", "drums", "1"], ws, kind="InputError")
    assert ok(["models", "delete", "drums", "2"], ws) == {"ok": True, "exit_code": 0, "deleted": "drums@2"}
    assert [m["ref"] for m in ok(["models", "list", "drums"], ws)["models"]] == ["drums@1"]
    assert "no earlier active version" in fails(["models", "rollback", "drums"], ws, kind="InputError")
    assert "has no version 2 (versions: 1)" in fails(["models", "show", "drums@2"], ws, kind="NotFound")


def test_models_export_writes_onnx_and_a_sidecar(ws, tmp_path):
    pytest.importorskip("onnx")
    document = ok(["models", "export", "drums@1", "--out", tmp_path / "drums.onnx"], ws)
    assert document["path"] == str(tmp_path / "drums.onnx") and Path(document["path"]).is_file()
    sidecar = json.loads(Path(document["sidecar"]).read_text())
    assert sidecar["classes"] == CLASSES and sidecar["taxonomy"] == "drums" and sidecar["features"]["kind"] == "dsp"
    message = fails(["models", "export", "drums", "--out", tmp_path / "x", "--format", "pt"], ws)
    assert "unknown export format 'pt'" in message


def with_job(ws: Path, ref: str, name: str, folder: Path) -> None:
    """`ref` registered again as `name` with a record of the training job that made it (the copies of
    the template's versions come without their jobs), so its splits can be reproduced."""
    import shutil

    from engine.concepts import JobState
    from engine.models.registry import register, resolve

    workspace = Workspace.open(ws)
    version = resolve(workspace, ref)
    params = TrainRequest(name=version.name, model=version.kind, min_class_samples=2, split_by="clip",
                          hyperparams={"n_estimators": 10, "patience": 10}).__dict__
    job = JobLog(workspace, "train", params, state=JobState.COMPLETED)
    shutil.copytree(version.artifact_dir, folder / "artifact")
    register(workspace, name=name, task=version.task, kind=version.kind, artifact_dir=folder / "artifact",
             feature_spec=version.spec, classes=version.label_set, label_counts=version.label_counts,
             hyperparams=version.hyperparams, metrics=version.metrics, dataset_fingerprint=version.dataset_fingerprint,
             job_id=job.job_id, meta=version.meta)


def test_lgbm_exports_to_onnx_with_parity_on_its_held_out_split(ws, tmp_path, monkeypatch):
    """The parity the command reports is the one measured here, independently, on the test split that
    the model gates reproduce: the native LightGBM model against ONNX Runtime on the written file."""
    import numpy as np
    import onnxruntime

    from engine.gates.model import ModelContext
    from engine.models.registry import resolve

    with_job(ws, "gbm", "boosted", tmp_path)  # its training job's record, to reproduce its split
    document = ok(["models", "export", "boosted", "--out", tmp_path / "gbm.onnx"], ws)
    parity = document["parity"]
    rows = ModelContext(Workspace.open(ws), resolve(Workspace.open(ws), "boosted")).rows
    session = onnxruntime.InferenceSession(str(tmp_path / "gbm.onnx"), providers=["CPUExecutionProvider"])
    exported = session.run(["probabilities"], {"features": rows.features.astype(np.float32)})[0]
    assert parity["split"] == "test split" and parity["rows"] == len(rows.y) > 0
    assert parity["max_abs_difference"] == pytest.approx(float(np.abs(exported - rows.probabilities).max()), abs=1e-9)
    assert parity["ok"] and parity["max_abs_difference"] <= parity["tolerance"] == 1e-4
    assert parity["same_top_class"] == 1.0
    assert "parity on the test split" in run(["models", "export", "boosted", "--out", tmp_path / "g2.onnx"], ws,
                                             json_out=False).stdout
    assert "parity not measured: no job" in ok(["models", "export", "gbm", "--out", tmp_path / "g3.onnx"], ws)["notes"][0]

    from engine.models.external import OnnxClassifier  # a graph that strays past the tolerance is not written

    real = OnnxClassifier.graph_outputs
    monkeypatch.setattr(OnnxClassifier, "graph_outputs", lambda self, X: real(self, X) + 1e-3)
    message = fails(["models", "export", "boosted", "--out", tmp_path / "off.onnx"], ws, kind="ParityFailed")
    assert "misses parity" in message and "tolerance 0.0001" in message
    assert not (tmp_path / "off.onnx").exists() and not (tmp_path / "off.json").exists()


# -- models import: external ONNX models, written by hand as the sidecar format says --------------

def write_external(folder: Path, *, classes=CLASSES, width: int = 3, softmax: bool = True,
                   sidecar: dict | None = None) -> Path:
    """A hand-made ONNX classifier of dsp feature vectors: the first `width` features, softmaxed
    (or not), as 'probabilities'; and its sidecar JSON as README.md documents it."""
    import onnx
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Slice", ["features", "starts", "ends", "axes"], ["head"])]
    nodes.append(helper.make_node("Softmax", ["head"], ["probabilities"], axis=1) if softmax
                 else helper.make_node("Identity", ["head"], ["probabilities"]))
    constants = [helper.make_tensor(name, TensorProto.INT64, [1], [value])
                 for name, value in (("starts", 0), ("ends", width), ("axes", 1))]
    graph = helper.make_graph(nodes, "external", [helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, None])],
                              [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, width])],
                              initializer=constants)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "ext.onnx"
    path.write_bytes(model.SerializeToString())
    document = {"classes": list(classes), "taxonomy": "drums", "features": "dsp"} if sidecar is None else sidecar
    (folder / "ext.json").write_text(json.dumps(document))
    return path


def test_models_import_registers_an_external_onnx_model_after_trying_it(ws, tmp_path):
    import numpy as np

    path = write_external(tmp_path / "ext")
    document = ok(["models", "import", path, "--name", "ext"], ws)
    assert document["model"] == "ext@1" and document["classes"] == CLASSES and document["features"] == "dsp"
    assert document["trial"]["shape"] == [4, 3] and len(document["trial"]["clips"]) == 4
    version = next(m for m in ok(["models", "list", "ext"], ws)["models"])
    assert version["kind"] == "onnx" and version["classes"] == CLASSES and version["feature_spec"]["kind"] == "dsp"
    assert ok(["models", "verify", "ext@1"], ws)["versions"][0]["status"] == "ok"
    listed = ok(["clips", "list", "--limit", "1"], ws)["clips"][0]
    predicted = ok(["predict", listed["path"], "--model", "ext"], ws)["predictions"][0]
    confidences = [t["confidence"] for t in predicted["top"]]
    assert predicted["label"] in CLASSES and np.isclose(sum(confidences), 1.0, atol=1e-5)


def test_an_exported_version_imports_back_with_the_same_predictions(ws, tmp_path):
    ok(["models", "export", "gbm", "--out", tmp_path / "gbm.onnx"], ws)
    assert ok(["models", "import", tmp_path / "gbm.onnx", "--name", "gbm_again"], ws)["model"] == "gbm_again@1"
    path = ok(["clips", "list", "--limit", "1"], ws)["clips"][0]["path"]
    native = ok(["predict", path, "--model", "gbm"], ws)["predictions"][0]["top"]
    imported = ok(["predict", path, "--model", "gbm_again"], ws)["predictions"][0]["top"]
    assert [t["label"] for t in imported] == [t["label"] for t in native]
    assert [t["confidence"] for t in imported] == pytest.approx([t["confidence"] for t in native], abs=1e-4)


REFUSED_IMPORTS = [
    (lambda d: write_external(d, softmax=False), "not probabilities"),
    (lambda d: write_external(d, width=2), "output of shape (4, 2), not (4, 3)"),
    (lambda d: write_external(d, sidecar={"classes": ["kick"], "features": "dsp"}), "at least 2 class names"),
    (lambda d: write_external(d, sidecar={"classes": CLASSES}), "'features' must name the feature set"),
    (lambda d: write_external(d, sidecar={"classes": ["kick", "cowbell", "snare"], "taxonomy": "drums",
                                          "features": "dsp"}), "cowbell"),
    (lambda d: write_external(d, sidecar={"classes": CLASSES, "features": "mel"}), "input has rank 2"),
    (lambda d: (write_external(d), (d / "ext.onnx").write_bytes(b"not a graph"))[0], "ONNX Runtime cannot load it"),
    (lambda d: (write_external(d), (d / "ext.json").unlink())[0], "model sidecar not found"),
]


def test_models_import_refuses_a_model_that_does_not_fit(ws, tmp_path):
    for case, (make, reason) in enumerate(REFUSED_IMPORTS):
        path = make(tmp_path / f"ext{case}")
        message = fails(["models", "import", path, "--name", "ext"], ws, kind="InputError")
        assert reason in message and str(tmp_path / f"ext{case}") in message, (reason, message)
    assert ok(["models", "list", "ext"], ws)["models"] == []


# -- predict and infer ------------------------------------------------------------------------

def test_predict_gives_labels_and_top_k(ws, library):
    hits = sorted((library / "hits").iterdir())
    document = ok(["predict", *hits, "--model", "drums@1", "--top", 2, "--workers", 1], ws)
    assert document["model"] == "drums@1" and document["rejections"] == []
    predictions = document["predictions"]
    assert [p["path"] for p in predictions] == [str(h) for h in hits]
    for prediction in predictions:
        assert prediction["label"] == prediction["top"][0]["label"] and len(prediction["top"]) == 2
        assert prediction["top"][0]["confidence"] >= prediction["top"][1]["confidence"]
        assert "sections" not in prediction  # not a section model


def test_predict_with_a_file_that_is_not_audio_exits_3(ws, library, tmp_path):
    junk = tmp_path / "junk.wav"
    junk.write_text("no")
    result = run(["predict", junk, sorted((library / "hits").iterdir())[0], "--model", "drums", "--workers", 1], ws)
    exits(result, 3)
    document = one_document(result)
    assert len(document["predictions"]) == 1 and [Path(r["path"]).name for r in document["rejections"]] == ["junk.wav"]


def test_infer_library_stores_predictions_for_active_models(ws):
    assert "no active model" in fails(["infer", "--library"], ws, kind="InputError")
    result = run(["infer"], ws)
    exits(result, 2)
    assert "--library" in one_document(result)["error"]["message"]
    document = ok(["infer", "--library", "--model", "drums@2", "--workers", 1], ws)
    assert document["results"] == [{"model": "drums@2", "predictions": N_CLIPS}] and document["rejections"] == []
    ok(["models", "activate", "gbm", "1", "--no-inference"], ws)
    ok(["models", "activate", "drums", "1", "--no-inference"], ws)
    document = ok(["infer", "--library", "--workers", 1], ws)
    assert document["results"] == [{"model": "drums@1", "predictions": N_CLIPS},
                                   {"model": "gbm@1", "predictions": N_CLIPS}]


# -- embeddings -------------------------------------------------------------------------------

def test_embeddings_list_and_install_aisfx_from_a_checkpoint(ws, tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from test_aisfx import synthetic_checkpoint  # the aiSFX tests' own fake checkpoint

    assert ok(["embeddings", "list"], ws)["embeddings"] == []
    message = fails(["embeddings", "install-aisfx", "--source", tmp_path / "missing.whl"], ws, kind="NotFound")
    assert "pip install --no-deps aisfx==0.1.2" in message

    checkpoint = synthetic_checkpoint(tmp_path / "checkpoint.pth")
    installed = ok(["embeddings", "install-aisfx", "--source", checkpoint], ws)
    assert installed["name"] == "aisfx" and installed["path"].endswith("models/embeddings/aisfx.onnx")
    (listed,) = ok(["embeddings", "list"], ws)["embeddings"]
    assert (listed["name"], listed["sample_rate"], listed["dim"]) == ("aisfx", 44100, 512)
    assert listed["path"] == installed["path"] and listed["bytes"] > 0


# -- errors -----------------------------------------------------------------------------------

def test_train_with_an_unknown_model_kind_exits_1_and_starts_no_job(ws):
    jobs_before = ok(["jobs", "list"], ws)["jobs"]
    message = fails(["train", "--name", "x", "--model", "svm"], ws, kind="InputError")
    assert message == "unknown model 'svm'; choose one of auto, logreg, lgbm, mlp, cnn, finetune"
    assert "unknown extractor" in fails(["train", "--name", "x", "--features", "wavelets"], ws, kind="InputError")
    assert "model name" in fails(["train", "--name", "Not A Name"], ws, kind="InputError")
    assert ok(["jobs", "list"], ws)["jobs"] == jobs_before


def test_train_usage_errors_exit_2(ws):
    for args in (["train"], ["train", "--name", "x", "--epochs", "0"], ["train", "--name", "x", "--val", "2"]):
        result = run(args, ws)
        exits(result, 2)
        assert one_document(result)["ok"] is False and "Usage" in result.stderr
        result = run(args, ws, json_out=False)
        exits(result, 2)
        assert result.stdout == "" and "Usage" in result.stderr


def test_an_unknown_model_name_exits_1_listing_the_models(ws, library):
    for args in (["models", "show", "snares"], ["models", "activate", "snares", "1"],
                 ["predict", sorted((library / "hits").iterdir())[0], "--model", "snares"]):
        message = fails(args, ws, kind="NotFound")
        assert message == "no model named 'snares' (models: drums, gbm)"


def test_activate_or_delete_without_a_version_is_a_usage_error_with_a_clear_message(ws):
    for verb in ("activate", "delete"):
        result = run(["models", verb, "drums"], ws)
        exits(result, 2)
        error = one_document(result)["error"]
        assert error["type"] == "BadArguments"
        assert error["message"] == f"say which version to {verb}: `models {verb} NAME VERSION` or NAME@VERSION"
        assert error["message"] in result.stderr
    show = ok(["models", "show", "drums"], ws)
    assert show["activations"] == [] and len(ok(["models", "list", "drums"], ws)["models"]) == 2  # none deleted


def test_batch_size_takes_a_number_or_auto_and_refuses_anything_else(tmp_path):
    result = run(["train", "--name", "x", "--model", "cnn", "--batch-size", "lots"], tmp_path / "ws")
    exits(result, 1)
    assert "--batch-size must be a positive whole number or auto" in one_document(result)["error"]["message"]
    from cli.commands_models import _batch_size

    assert (_batch_size("auto"), _batch_size("AUTO"), _batch_size("48"), _batch_size(None)) == ("auto", "auto", 48, None)
