"""The headless CLI's errors about the command line itself.

- A path that holds no workspace is an error for every command that only reads or changes one (exit 1,
  naming the path and how to start a workspace there), and nothing is created at that path; only the
  commands that bring content in from nothing (import, labels import, taxonomy create, embeddings
  install-aisfx) start one.
- A usage error (click's, or options that are each fine but not together) exits 2; with --json it
  also prints the one JSON error document on stdout that every other error prints.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from conftest import write_hits
from engine.workspace import DATABASE_FILE, Workspace

runner = CliRunner()


def invoke(args: list, ws: Path | None, *, json_out: bool = True, env: dict | None = None):
    prefix = ["--headless"] + (["--workspace", str(ws)] if ws is not None else [])
    return runner.invoke(app, [*prefix, *[str(a) for a in args], *(["--json"] if json_out else [])], env=env)


def explain(result) -> str:
    return f"exit {result.exit_code}\n--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"


def exits(result, code: int) -> None:
    crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
    assert not crashed, f"{explain(result)}\n{result.exc_info}"
    assert result.exit_code == code, explain(result)


def error_document(result, code: int) -> dict:
    """Exactly one JSON error document on stdout, with the exit code the process ends with."""
    exits(result, code)
    try:
        document = json.loads(result.stdout)  # refuses anything before or after one document
    except json.JSONDecodeError as error:
        raise AssertionError(f"stdout is not exactly one JSON document ({error})\n{explain(result)}") from None
    assert document["ok"] is False and document["exit_code"] == code, explain(result)
    assert set(document["error"]) == {"type", "message", "busy"} and document["error"]["busy"] is False
    return document["error"]


# -- a path that holds no workspace -------------------------------------------------------------

NOT_CREATING = [
    ["stats"], ["clips", "list"], ["labels", "list"], ["labels", "add", "a.wav", "-l", "kick"],
    ["label", "add", "a.wav", "-l", "kick"], ["labels", "remove", "1"], ["beats", "show", "a.wav"],
    ["beats", "set", "a.wav", "--bpm", "120"], ["beats", "detect", "--all"], ["features", "extract"],
    ["cache", "stats"], ["cache", "clear"], ["export-dataset", "--out", "OUT"], ["dataset", "info", "OUT"],
    ["embeddings", "list"], ["taxonomy", "list"], ["taxonomy", "show", "drums"], ["taxonomy", "use", "drums"],
    ["jobs", "list"], ["jobs", "show", "abcdef"], ["jobs", "follow", "abcdef"], ["jobs", "cancel", "abcdef"],
    ["train", "--name", "drums"], ["eval", "--model", "drums", "--dataset", "OUT"], ["models", "list"],
    ["models", "show", "drums"], ["models", "activate", "drums", "1"], ["models", "rollback", "drums"],
    ["models", "delete", "drums", "1"], ["models", "export", "drums@1", "--out", "OUT"],
    ["predict", "a.wav", "--model", "drums"], ["infer", "--library"], ["gates", "run"], ["triage", "suspects"],
    ["triage", "hard-negatives", "--model", "drums", "--out", "OUT"], ["weights", "derive", "--out", "OUT"],
]


@pytest.mark.parametrize("command", NOT_CREATING, ids=" ".join)
def test_a_command_on_a_path_without_a_workspace_fails_and_creates_nothing(tmp_path, command):
    typo = tmp_path / "wrokspace"
    args = [str(tmp_path / "out") if arg == "OUT" else arg for arg in command]
    error = error_document(invoke(args, typo), 1)
    assert error["type"] == "NotFound"
    assert error["message"] == (f"no workspace at {typo}; "
                                f"`workbench --headless --workspace {typo} import FOLDER` starts one")
    assert not typo.exists() and not (tmp_path / "out").exists()


def test_without_json_the_message_goes_to_stderr(tmp_path):
    typo = tmp_path / "nested" / "ws"
    result = invoke(["stats"], typo, json_out=False)
    exits(result, 1)
    assert result.stdout == ""
    assert f"no workspace at {typo}" in result.stderr.replace("\n", "")
    assert not (tmp_path / "nested").exists()


def test_a_folder_of_other_files_is_not_taken_for_a_workspace(tmp_path):
    folder = tmp_path / "music"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    error = error_document(invoke(["labels", "list"], folder), 1)
    assert error["message"].startswith(f"no workspace at {folder};")
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]


def test_the_default_workspace_is_named_as_the_default(tmp_path):
    env = {"XDG_DATA_HOME": str(tmp_path / "data"), "WORKBENCH_WORKSPACE": None}
    error = error_document(invoke(["stats"], None, env=env), 1)
    default = tmp_path / "data" / "workbench" / "workspace"
    assert error["message"] == (f"no workspace at {default} (the default; choose another with --workspace or "
                                "$WORKBENCH_WORKSPACE); `workbench --headless import FOLDER` starts one")
    assert not (tmp_path / "data").exists()


def test_a_workspace_is_found_once_it_exists(tmp_path):
    Workspace.open(tmp_path / "ws")
    assert json.loads(invoke(["stats"], tmp_path / "ws").stdout)["clips"] == 0


# -- the commands that start a workspace ------------------------------------------------------------

def test_import_starts_a_workspace(tmp_path):
    write_hits(tmp_path / "hits" / "kick", "kick", 2)
    result = invoke(["import", tmp_path / "hits", "--curated"], tmp_path / "new" / "ws")
    exits(result, 0)
    assert (tmp_path / "new" / "ws" / DATABASE_FILE).is_file()
    assert json.loads(invoke(["stats"], tmp_path / "new" / "ws").stdout)["clips"] == 2


def test_labels_import_starts_a_workspace_with_the_audio_it_names(tmp_path):
    (hit,) = write_hits(tmp_path / "audio", "snare", 1)
    manifest = tmp_path / "labels.csv"
    manifest.write_text(f"path,label\naudio/{hit.name},snare\n")
    result = invoke(["labels", "import", manifest], tmp_path / "ws")
    exits(result, 0)
    assert json.loads(result.stdout)["clips_added"] == 1
    labels = json.loads(invoke(["labels", "list"], tmp_path / "ws").stdout)["labels"]
    assert [label["label"] for label in labels] == ["snare"]


def test_taxonomy_create_starts_a_workspace(tmp_path):
    exits(invoke(["taxonomy", "create", "fx", "--labels", "riser,impact"], tmp_path / "ws"), 0)
    exits(invoke(["taxonomy", "use", "fx"], tmp_path / "ws"), 0)
    assert json.loads(invoke(["stats"], tmp_path / "ws").stdout)["clips"] == 0


def test_embeddings_install_aisfx_starts_a_workspace(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from test_aisfx import synthetic_checkpoint

    checkpoint = synthetic_checkpoint(tmp_path / "checkpoint.pth")
    exits(invoke(["embeddings", "install-aisfx", "--source", checkpoint], tmp_path / "ws"), 0)
    (listed,) = json.loads(invoke(["embeddings", "list"], tmp_path / "ws").stdout)["embeddings"]
    assert listed["name"] == "aisfx"


def test_a_starting_command_still_refuses_a_folder_of_other_files(tmp_path):
    folder = tmp_path / "music"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    error = error_document(invoke(["taxonomy", "create", "fx", "--labels", "a,b"], folder), 1)
    assert "not empty" in error["message"]
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]


# -- usage errors -------------------------------------------------------------------------------

CLICK_USAGE_ERRORS = [
    (["stats", "--bogus"], "NoSuchOption", "No such option: --bogus"),
    (["labels", "add", "a.wav"], "MissingParameter", "Missing option '--label'"),
    (["import"], "MissingParameter", "Missing argument"),
    (["labels", "add", "a.wav", "-l", "kick", "--confidence", "2"], "BadParameter", "--confidence"),
    (["jobs", "list", "--limit", "0"], "BadParameter", "--limit"),
    (["no-such-command"], "UsageError", "No such command 'no-such-command'"),
]


@pytest.mark.parametrize("args,kind,message", CLICK_USAGE_ERRORS, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_a_usage_error_with_json_prints_one_json_document_and_exits_2(workspace, args, kind, message):
    result = invoke(args, workspace.root)
    error = error_document(result, 2)
    assert error["type"] == kind and message in error["message"]
    assert "Usage:" in result.stderr and message in result.stderr  # people still get click's message


def test_json_before_the_command_is_itself_the_usage_error(workspace):
    # --json belongs to each command, not to `workbench`; said as JSON all the same
    result = runner.invoke(app, ["--headless", "--workspace", str(workspace.root), "--json", "stats", "--bogus"])
    error = error_document(result, 2)
    assert error == {"type": "NoSuchOption", "message": "No such option: --json", "busy": False}


@pytest.mark.parametrize("args,kind,message", CLICK_USAGE_ERRORS, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_a_usage_error_without_json_says_it_on_stderr_only(workspace, args, kind, message):
    result = invoke(args, workspace.root, json_out=False)
    exits(result, 2)
    assert result.stdout == ""
    assert "Usage:" in result.stderr and "Error: " in result.stderr and message in result.stderr


BAD_COMBINATIONS = [
    (["beats", "set", "track.wav"], "give either --bpm (with --offset) or --beat-times"),
    (["beats", "set", "track.wav", "--bpm", "120", "--beat-times", "0,0.5,1"], "give either --bpm"),
    (["labels", "add", "track.wav", "-l", "drop", "--start", "0", "--end", "1", "--start-beat", "0", "--end-beat", "4"],
     "give either seconds (--start/--end) or beats (--start-beat/--end-beat), not both"),
    (["label", "add", "track.wav", "-l", "drop", "--start", "0", "--end-beat", "4"], "not both"),
    (["beats", "detect"], "name clips to detect, or use --all"),
    (["infer"], "say what to run over: --library"),
    (["models", "activate", "drums"], "say which version to activate"),
    (["models", "delete", "drums"], "say which version to delete"),
    (["triage", "suspects", "--model", "drums", "--features", "dsp"], "give --model (its features and task) or --features"),
]


@pytest.mark.parametrize("args,message", BAD_COMBINATIONS, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_options_that_do_not_go_together_are_a_usage_error(workspace, args, message):
    result = invoke(args, workspace.root)
    error = error_document(result, 2)
    assert error["type"] == "BadArguments" and message in error["message"]
    assert "Usage:" in result.stderr and message in result.stderr
    result = invoke(args, workspace.root, json_out=False)
    exits(result, 2)
    assert result.stdout == "" and "Error: " in result.stderr and message in result.stderr
