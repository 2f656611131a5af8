"""The settings object: defaults, the settings file, WORKBENCH_* variables, and clear errors."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from engine.audio.playback import open_player
from engine.errors import InputError
from engine.settings import Settings, cpu_threads, load_settings, settings_file
from engine.taxonomy import builtin_taxonomy_dir
from engine.workspace import Workspace, default_workspace_path


@pytest.fixture
def environ(tmp_path) -> dict[str, str]:
    """An environment of no WORKBENCH_* variables whose settings file is under tmp_path."""
    return {"XDG_CONFIG_HOME": str(tmp_path / "config")}


def write_settings(environ: dict[str, str], text: str) -> Path:
    path = settings_file(environ)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_without_a_file_or_variables_every_setting_is_its_default(environ):
    settings = load_settings(environ)
    assert settings == Settings()
    assert settings.workspace is None and settings.busy_timeout == 15.0 and settings.sound
    assert not settings.tui_strict and (settings.data / "taxonomies" / "drums.toml").is_file()
    assert settings_file(environ) == Path(environ["XDG_CONFIG_HOME"]) / "workbench" / "settings.toml"


def test_the_settings_file_lives_in_the_users_config_folder_by_default():
    assert settings_file({}) == Path.home() / ".config" / "workbench" / "settings.toml"


def test_environment_variables_set_each_setting(environ, tmp_path):
    environ.update(WORKBENCH_WORKSPACE=str(tmp_path / "ws"), WORKBENCH_BUSY_TIMEOUT="2.5", WORKBENCH_SOUND="off",
                   WORKBENCH_DATA=str(tmp_path / "data"), WORKBENCH_TUI_STRICT="1")
    assert load_settings(environ) == Settings(workspace=tmp_path / "ws", busy_timeout=2.5, sound=False,
                                              data=tmp_path / "data", tui_strict=True)


@pytest.mark.parametrize(("text", "sound"), [("off", False), ("0", False), ("No", False), ("false", False),
                                              ("on", True), ("1", True), ("yes", True), ("TRUE", True)])
def test_a_flag_is_on_or_off_in_the_usual_spellings(environ, text, sound):
    assert load_settings({**environ, "WORKBENCH_SOUND": text}).sound is sound


def test_an_empty_variable_counts_as_unset(environ):
    write_settings(environ, "busy_timeout = 4\n")
    unset = {"WORKBENCH_BUSY_TIMEOUT": "", "WORKBENCH_WORKSPACE": ""}
    assert load_settings({**environ, **unset}) == Settings(busy_timeout=4.0)


def test_the_settings_file_sets_every_setting_and_the_environment_wins_over_it(environ, tmp_path):
    write_settings(environ, f'workspace = "{tmp_path / "from_file"}"\nbusy_timeout = 30\nsound = false\n'
                            f'data = "{tmp_path / "data"}"\ntui_strict = true\nthreads = 4\n')
    from_file = load_settings(environ)
    assert from_file == Settings(workspace=tmp_path / "from_file", busy_timeout=30.0, sound=False,
                                 data=tmp_path / "data", tui_strict=True, threads=4)
    assert {f.name for f in fields(Settings)} == {"workspace", "busy_timeout", "sound", "data", "tui_strict", "threads"}
    environ.update(WORKBENCH_WORKSPACE=str(tmp_path / "from_env"), WORKBENCH_SOUND="on", WORKBENCH_THREADS="2")
    assert load_settings(environ) == Settings(workspace=tmp_path / "from_env", busy_timeout=30.0, sound=True,
                                              data=tmp_path / "data", tui_strict=True, threads=2)


def test_an_unknown_key_in_the_settings_file_is_an_error_naming_the_file_and_the_key(environ):
    path = write_settings(environ, "busy_timeout = 3\nbusy_timout = 30\n")
    with pytest.raises(InputError) as error:
        load_settings(environ)
    assert str(error.value).startswith(f"{path}: unknown setting 'busy_timout' (known: busy_timeout, data, ")


@pytest.mark.parametrize(("name", "value", "message"), [
    ("WORKBENCH_BUSY_TIMEOUT", "abc", "WORKBENCH_BUSY_TIMEOUT must be a number of seconds, not 'abc'"),
    ("WORKBENCH_BUSY_TIMEOUT", "-1", "WORKBENCH_BUSY_TIMEOUT must be a number of seconds, not '-1'"),
    ("WORKBENCH_BUSY_TIMEOUT", "inf", "WORKBENCH_BUSY_TIMEOUT must be a number of seconds, not 'inf'"),
    ("WORKBENCH_SOUND", "maybe", "WORKBENCH_SOUND must be on or off (or 1/0, yes/no, true/false), not 'maybe'"),
    ("WORKBENCH_DATA", "  ", "WORKBENCH_DATA must be a folder, not '  '"),
    ("WORKBENCH_THREADS", "0", "WORKBENCH_THREADS must be a whole number of at least 1, not '0'"),
    ("WORKBENCH_THREADS", "2.5", "WORKBENCH_THREADS must be a whole number of at least 1, not '2.5'"),
])
def test_a_bad_variable_is_an_error_naming_it(environ, name, value, message):
    with pytest.raises(InputError) as error:
        load_settings({**environ, name: value})
    assert str(error.value) == message


@pytest.mark.parametrize(("line", "message"), [
    ('busy_timeout = "soon"', "busy_timeout must be a number of seconds, not 'soon'"),
    ("busy_timeout = -2", "busy_timeout must be a number of seconds, not -2"),
    ("busy_timeout = true", "busy_timeout must be a number of seconds, not True"),
    ('sound = "off"', "sound must be true or false, not 'off'"),
    ("workspace = 3", "workspace must be a folder (a string), not 3"),
    ("threads = 0", "threads must be a whole number of at least 1, not 0"),
    ("threads = true", "threads must be a whole number of at least 1, not True"),
])
def test_a_bad_value_in_the_settings_file_is_an_error_naming_the_file_and_the_key(environ, line, message):
    path = write_settings(environ, line + "\n")
    with pytest.raises(InputError) as error:
        load_settings(environ)
    assert str(error.value) == f"{path}: {message}"


def test_a_settings_file_that_is_not_toml_is_an_error_naming_it(environ):
    path = write_settings(environ, "sound = \n")
    with pytest.raises(InputError, match=f"^{path}: cannot read the settings file: "):
        load_settings(environ)


def test_the_engine_reads_its_settings_when_it_needs_them(environ, tmp_path, monkeypatch):
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    for name in ("WORKBENCH_WORKSPACE", "WORKBENCH_BUSY_TIMEOUT", "WORKBENCH_SOUND", "WORKBENCH_DATA"):
        monkeypatch.delenv(name, raising=False)
    write_settings(environ, f'workspace = "{tmp_path / "mine"}"\nbusy_timeout = 0.5\nsound = false\n'
                            f'data = "{tmp_path / "data"}"\n')
    assert default_workspace_path() == tmp_path / "mine"
    assert Workspace(tmp_path / "ws").db.busy_timeout_s == 0.5
    assert not open_player().available
    assert builtin_taxonomy_dir() == tmp_path / "data" / "taxonomies"
    monkeypatch.setenv("WORKBENCH_BUSY_TIMEOUT", "7")
    assert Workspace(tmp_path / "ws").db.busy_timeout_s == 7.0


def test_work_uses_every_core_it_may_run_on_unless_threads_limits_it(environ, monkeypatch):
    import os

    import torch

    from engine.jobs.parallel import default_workers
    from engine.models.mlp import MlpClassifier

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5})
    assert cpu_threads(load_settings(environ)) == 6
    assert cpu_threads(load_settings({**environ, "WORKBENCH_THREADS": "3"})) == 3
    monkeypatch.setenv("WORKBENCH_THREADS", "3")
    assert default_workers() == 3
    before = torch.get_num_threads()
    try:
        rng = np.random.default_rng(0)
        MlpClassifier(epochs=1, device="cpu").fit(rng.normal(size=(40, 4)).astype(np.float32), np.arange(40) % 2)
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)
