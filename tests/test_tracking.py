"""`train --log`: one training logged to TensorBoard, MLflow and W&B (offline) at once, each read back
from its local files with its own reader (EventAccumulator, MlflowClient on the SQLite store, the
records of the W&B run file); a missing package or an unknown logger is a clear error before any job
starts. Nothing here touches the network."""

from __future__ import annotations

import importlib.util
import struct
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from conftest import curated_library
from engine.audio.synth import DEMO_PACKS
from engine.errors import InputError
from engine.library.importer import import_folder
from engine.models.registry import list_versions
from engine.training import tracking
from engine.workspace import Workspace

EPOCHS = 4
HAS_WANDB = importlib.util.find_spec("wandb") is not None
LOGGERS = ["tensorboard", "mlflow"] + (["wandb"] if HAS_WANDB else [])
runner = CliRunner()


def train(ws: Path, *args) -> object:
    return runner.invoke(app, ["--headless", "--workspace", str(ws), "train", "--name", "drums", "--model", "mlp",
                               "--features", "dsp", "--epochs", str(EPOCHS), "--patience", str(EPOCHS),
                               "--device", "cpu", "--min-class-samples", "2", "--split", "clip", *args, "--json"])


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """A workspace whose one training was logged to every installed logger; its JSON document."""
    home = tmp_path_factory.mktemp("tracking")
    library = curated_library(home / "library", per_pack=3, packs=DEMO_PACKS[:3])
    ws = Workspace.open(home / "ws")
    import_folder(ws, library, curated=True, workers=1)
    with pytest.MonkeyPatch.context() as patch:  # W&B keeps its own files in the test's folder, offline
        for variable, folder in (("WANDB_CONFIG_DIR", "wandb_config"), ("WANDB_CACHE_DIR", "wandb_cache"),
                                 ("WANDB_DATA_DIR", "wandb_data")):
            patch.setenv(variable, str(home / folder))
        patch.setenv("WANDB_MODE", "offline")
        result = train(ws.root, *[arg for name in LOGGERS for arg in ("--log", name)])
    assert result.exit_code == 0, result.stdout + result.stderr
    (version,) = list_versions(ws, "drums")
    return ws, version


def test_tensorboard_event_files_hold_the_epochs_hyperparameters_and_final_metrics(logged):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ws, version = logged
    (run,) = (ws.tracking_dir / "tensorboard" / "drums").iterdir()
    assert run.name == version.job_id
    events = EventAccumulator(str(run), size_guidance={"scalars": 0, "tensors": 0}).Reload()
    tags = events.Tags()
    assert {"train_loss", "val_loss", "val_accuracy", "final/test_accuracy", "final/temperature"} <= set(tags["scalars"])
    train_loss = events.Scalars("train_loss")
    assert [e.step for e in train_loss] == list(range(1, len(train_loss) + 1)) and 1 <= len(train_loss) <= EPOCHS
    (final,) = events.Scalars("final/test_accuracy")
    assert final.value == pytest.approx(version.metrics["test"]["accuracy"])
    (temperature,) = events.Scalars("final/temperature")
    assert temperature.value == pytest.approx(version.metrics["calibration"]["temperature"], rel=1e-6)
    assert "hyperparameters/text_summary" in tags["tensors"] and "model_version/text_summary" in tags["tensors"]
    (model_version,) = events.Tensors("model_version/text_summary")
    assert model_version.tensor_proto.string_val[0].decode() == version.ref
    # the HParams dashboard's session: hyperparameters of the run
    from tensorboard.plugins.hparams import plugin_data_pb2

    plugin = events.PluginTagToContent("hparams")
    session = plugin_data_pb2.HParamsPluginData.FromString(plugin["_hparams_/session_start_info"]).session_start_info
    assert session.hparams["hidden"].number_value == version.hyperparams["hidden"]
    assert session.hparams["features"].string_value == "dsp"


def test_mlflow_sqlite_store_holds_the_run(logged):
    from mlflow.tracking import MlflowClient

    ws, version = logged
    assert not (Path.cwd() / "mlruns").exists()  # never the deprecated file store
    client = MlflowClient(tracking_uri=f"sqlite:///{ws.tracking_dir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("drums")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == version.job_id and run.info.status == "FINISHED"
    assert run.data.tags["model_version"] == version.ref and run.data.tags["task"] == "drums"
    assert run.data.params["lr"] == str(version.hyperparams["lr"]) and run.data.params["model"] == "mlp"
    assert run.data.metrics["test_accuracy"] == pytest.approx(version.metrics["test"]["accuracy"])
    assert run.data.metrics["test_ece"] == pytest.approx(version.metrics["test"]["ece"])
    history = client.get_metric_history(run.info.run_id, "train_loss")
    assert sorted(m.step for m in history) == list(range(1, len(history) + 1))


def wandb_records(path: Path):
    """The protobuf records of a W&B run file (a LevelDB-style log: 32 KiB blocks of checksummed
    chunks after a 7-byte header)."""
    from wandb.proto import wandb_internal_pb2

    data, position, pending = path.read_bytes(), 7, b""
    assert data[:4] == b":W&B"
    while position + 7 <= len(data):
        if (left := 32768 - position % 32768) < 7:
            position += left
            continue
        _, length, kind = struct.unpack("<IHB", data[position:position + 7])
        pending += data[position + 7:position + 7 + length]
        position += 7 + length
        if kind in (1, 4):  # a full record, or the last chunk of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def key_of(item) -> str:
    return item.key or "/".join(item.nested_key)


@pytest.mark.skipif(not HAS_WANDB, reason="wandb is not installed (pip install 'workbench[wandb]')")
def test_wandb_offline_run_holds_config_history_and_summary(logged):
    import json

    ws, version = logged
    (run_file,) = (ws.tracking_dir / "wandb").glob("offline-run-*/run-*.wandb")
    config, history, summary, name = {}, [], {}, None
    for record in wandb_records(run_file):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            name, project = record.run.display_name, record.run.project
            config.update({item.key: json.loads(item.value_json) for item in record.run.config.update})
        elif kind == "history":
            history.append({key_of(item): json.loads(item.value_json) for item in record.history.item})
        elif kind == "summary":
            summary.update({key_of(item): json.loads(item.value_json) for item in record.summary.update})
    assert (name, project) == (version.job_id, "drums")
    assert config["lr"] == version.hyperparams["lr"] and config["model"] == "mlp"
    assert [h["_step"] for h in history] == list(range(1, len(history) + 1)) and "train_loss" in history[0]
    assert summary["model_version"] == version.ref and summary["status"] == "completed"
    assert summary["final/test_accuracy"] == pytest.approx(version.metrics["test"]["accuracy"])


def test_an_unknown_or_missing_logger_fails_before_a_job_starts(tmp_path, monkeypatch):
    with pytest.raises(InputError, match="unknown experiment logger 'neptune'"):
        tracking.check_loggers(["neptune"])
    monkeypatch.setitem(tracking._MODULES, "mlflow", "no_such_package_here")
    with pytest.raises(InputError, match=r"pip install 'workbench\[mlflow\]'"):
        tracking.check_loggers(["tensorboard", "mlflow"])
    ws = Workspace.open(tmp_path / "ws")
    result = train(ws.root, "--log", "mlflow")
    assert result.exit_code == 1 and "pip install 'workbench[mlflow]'" in result.stdout
    assert not ws.tracking_dir.exists()


def test_a_logger_that_fails_is_dropped_with_a_note_and_the_others_go_on(tmp_path, monkeypatch):
    class Broken:
        def __init__(self, *args):
            pass

        def log_epoch(self, epoch, values):
            raise OSError("disk full")

    monkeypatch.setitem(tracking._BACKENDS, "wandb", Broken)
    monkeypatch.setitem(tracking._MODULES, "wandb", "json")
    with tracking.open_experiment_log(tmp_path, ["tensorboard", "wandb"], experiment="x", run_name="r",
                                      hyperparams={"lr": 0.1, "hidden": None}) as log:
        log.log_epoch(1, {"train_loss": 0.5, "val_loss": None})
        log.log_epoch(2, {"train_loss": 0.4, "val_loss": None})
    assert log.notes == ["wandb logging stopped: OSError: disk full"] and list(log.backends) == ["tensorboard"]
