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


@pytest.fixture
def a_and_b(workspace, tmp_path):
    """library/a.wav (labelled kick) and library/b.wav, imported: (the folder, a's clip id, b's clip id)."""
    library = tmp_path / "library"
    write_tone(library / "a.wav", seconds=1.0, freq=220.0)
    write_tone(library / "b.wav", seconds=1.5, freq=330.0)
    import_folder(workspace, library, workers=1)
    a_id, b_id = clip_id_of(workspace, "a.wav"), clip_id_of(workspace, "b.wav")
    add_label(workspace, "a.wav", "kick")
    return library, a_id, b_id


def test_swapped_files_move_and_reverted_content_comes_back(workspace, a_and_b):
    library, a_id, b_id = a_and_b
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


# -- item 5: an unwritable workspace ----------------------------------------------------------------

def run_cli_without_privileges(*args: str) -> subprocess.CompletedProcess:
    """The CLI as a user whom file permissions bind: root gives up its right to ignore them (capsh)."""
    command = [sys.executable, "-m", "cli.main", "--headless", *args]
    if os.geteuid() == 0:
        import shlex
        import shutil

        capsh = shutil.which("capsh")
        if capsh is None:
            pytest.skip("running as root without capsh: file permissions do not apply")
        command = [capsh, "--drop=cap_dac_override,cap_dac_read_search", "--", "-c", shlex.join(command)]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_an_unwritable_workspace_is_a_clear_error_with_its_json_document(workspace, tmp_path):
    library = tmp_path / "library"
    write_tone(library / "a.wav", seconds=0.5)
    import_folder(workspace, library, workers=1)
    locked = tmp_path / "locked"
    locked.mkdir()
    os.chmod(locked, 0o555)
    os.chmod(workspace.root, 0o555)
    try:
        unwritable = f"{workspace.root}: workspace folder is not writable"
        cases = [(("--workspace", str(locked / "ws"), "import", str(library)),
                  f"cannot create the workspace {locked / 'ws'}: {locked} is not writable"),
                 (("--workspace", str(workspace.root), "features", "extract"), unwritable),
                 (("--workspace", str(workspace.root), "stats"), unwritable)]
        for args, message in cases:
            result = run_cli_without_privileges(*args, "--json")
            assert result.returncode == 1, result.stdout + result.stderr
            document = json.loads(result.stdout)
            assert document["ok"] is False and document["error"]["message"].startswith(message)
            assert "Traceback" not in result.stderr and message in result.stderr
        assert not (locked / "ws").exists()
    finally:
        os.chmod(workspace.root, 0o755)
        os.chmod(locked, 0o755)
    os.chmod(workspace.taxonomies_dir, 0o555)  # a folder inside a writable workspace
    try:
        result = run_cli_without_privileges("--workspace", str(workspace.root), "taxonomy", "create", "fx",
                                            "--labels", "whoosh,impact", "--json")
    finally:
        os.chmod(workspace.taxonomies_dir, 0o755)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stdout + result.stderr
    assert json.loads(result.stdout)["error"]["message"] == f"{workspace.taxonomies_dir / 'fx.toml.tmp'}: permission denied"


# -- item 6: taxonomies and embedding sidecars --------------------------------------------------

GOOD_TAXONOMY = 'name = "fx"\nmin_count = 5\n[labels.whoosh]\ncolour = "#112233"\n[labels.impact]\naliases = ["hit"]\n'


@pytest.mark.parametrize(("text", "problem"), [
    ('name = "fx"\n[labels]\nkick = "x"\nsnare = "y"\n', "label kick must be a table"),
    ('name = "fx"\nwindow_s = nan\n[labels.a]\n[labels.b]\n', "window_s must be a positive number"),
    ('name = "fx"\nwindow_s = inf\n[labels.a]\n[labels.b]\n', "window_s must be a positive number"),
    ('name = "fx"\nwindow_s = true\n[labels.a]\n[labels.b]\n', "window_s must be a positive number"),
    ('name = "fx"\nmin_count = -3\n[labels.a]\n[labels.b]\n', "min_count must be a positive whole number"),
    ('name = "fx"\n[labels.a]\nmin_count = true\n[labels.b]\n', "label a: min_count must be a positive whole"),
    ('name = "fx"\n[labels.a]\nmin_count = 1.5\n[labels.b]\n', "label a: min_count must be a positive whole"),
    ('name = "fx"\n[labels.a]\ncolur = "#112233"\n[labels.b]\n', "label a: unknown key 'colur'"),
    ('name = "fx"\nwindow = 4\n[labels.a]\n[labels.b]\n', "unknown key 'window'"),
    ('name = "fx"\ndescription = 5\n[labels.a]\n[labels.b]\n', "description must be text"),
    ('name = "fx"\n[labels.a]\naliases = ["", "x"]\n[labels.b]\n', "aliases must be a list of non-empty strings"),
    ('name = "fx"\n[labels.a]\naliases = "x"\n[labels.b]\n', "aliases must be a list"),
    ('name = "fx"\n[labels.a]\ncolour = 3\n[labels.b]\n', "colour must look like #12abef"),
    ('name = "fx"\n[labels.a]\naliases = ["b"]\n[labels.b]\n', "'b' names both"),
    ("a = " + "[" * 5000 + "]" * 5000, "not valid TOML"),
])
def test_a_bad_taxonomy_is_reported_with_its_file_and_problem(tmp_path, text, problem):
    from engine.errors import InputError
    from engine.taxonomy import load_taxonomy_file

    path = tmp_path / "fx.toml"
    path.write_text(text)
    with pytest.raises(InputError, match="^" + str(path).replace(".", r"\.") + ".*" + problem.replace("(", r"\(")):
        load_taxonomy_file(path)


def test_a_taxonomy_that_is_not_text_or_not_a_regular_file_is_refused_without_reading_it(tmp_path):
    from engine.errors import InputError
    from engine.taxonomy import load_taxonomy_file

    binary = tmp_path / "binary.toml"
    binary.write_bytes(b'name = "\xff\xfe"\n')
    with pytest.raises(InputError, match="binary.toml: not valid TOML"):
        load_taxonomy_file(binary)
    endless = tmp_path / "zero.toml"
    endless.symlink_to("/dev/zero")
    with pytest.raises(InputError, match="zero.toml: not a regular file"):
        load_taxonomy_file(endless)
    large = tmp_path / "large.toml"
    large.write_text("# padding\n" * 200_000)
    with pytest.raises(InputError, match="large.toml: too large"):
        load_taxonomy_file(large)


def test_random_taxonomy_tables_give_a_taxonomy_or_an_input_error(tmp_path):
    import random

    from engine.errors import InputError
    from engine.taxonomy import Taxonomy, parse_taxonomy

    rng = random.Random(0)
    scalars = [0, 1, -1, 7, 10**12, 0.5, -0.5, float("nan"), float("inf"), True, "", "x", "#112233", "Kick"]

    def value(depth: int = 0):
        roll = rng.random()
        if depth < 2 and roll < 0.15:
            return [value(depth + 1) for _ in range(rng.randrange(3))]
        if depth < 2 and roll < 0.3:
            return {rng.choice(["colour", "aliases", "min_count", "description", "a", "b"]): value(depth + 1)
                    for _ in range(rng.randrange(3))}
        return rng.choice(scalars)

    def maybe(good):  # half the time a good value, else any value
        return good if rng.random() < 0.5 else value()

    outcomes = {"taxonomy": 0, "refused": 0}
    for _ in range(3000):
        data = {"name": maybe("fx"),
                "labels": rng.choice([value(), {rng.choice(["a", "b", "c", "Bad"]): value() for _ in range(3)},
                                      {"a": {"colour": maybe("#112233")}, "b": {"aliases": maybe(["x"])}}])}
        good = {"description": "d", "min_count": 3, "window_s": 2.0, "x": None}
        data.update({key: value() if key == "x" else maybe(good[key]) for key in rng.sample(sorted(good), 2)})
        try:
            assert isinstance(parse_taxonomy(data, "random.toml"), Taxonomy)
            outcomes["taxonomy"] += 1
        except InputError as error:
            assert str(error).startswith("random.toml: "), error
            outcomes["refused"] += 1
    assert outcomes["taxonomy"] > 10 and outcomes["refused"] > 1000


def test_a_bad_workspace_taxonomy_is_skipped_and_named_while_the_rest_works(workspace, tmp_path):
    from engine.errors import InputError

    library = tmp_path / "library"
    write_tone(library / "a.wav", seconds=0.5)
    (workspace.taxonomies_dir / "fx.toml").write_text(GOOD_TAXONOMY)
    import_folder(workspace, library, workers=1)
    add_label(workspace, "a.wav", "whoosh", taxonomy="fx")
    (workspace.taxonomies_dir / "fx.toml").write_text('name = "fx"\n[labels]\nkick = "x"\nsnare = "y"\n')
    (workspace.taxonomies_dir / "drums.toml").write_text('name = "drums"\nwindow_s = nan\n[labels.a]\n[labels.b]\n')
    fresh = type(workspace).open(workspace.root)
    assert fresh.taxonomies.names() == ["drums", "sections"]  # the built-in drums, not the bad override
    assert fresh.taxonomy("drums").path.parent != workspace.taxonomies_dir
    assert sorted(Path(problem.split(":")[0]).name for problem in fresh.taxonomies.problems) == ["drums.toml",
                                                                                                 "fx.toml"]
    with pytest.raises(InputError, match=r"taxonomy 'fx' cannot be used: .*fx\.toml: label kick must be a table"):
        fresh.taxonomy("fx")
    stats = workspace_stats(fresh)
    assert [(t.taxonomy, t.ready) for t in stats.taxonomies] == [("fx", False)]
    assert "fx.toml: label kick must be a table" in stats.taxonomies[0].reasons[0]
    for args in (("taxonomy", "list"), ("stats",), ("clips", "list")):
        result = run_cli("--workspace", str(workspace.root), *args, "--json")
        assert result.returncode == 0, result.stdout + result.stderr
        assert json.loads(result.stdout)["ok"] is True
        assert "warning: taxonomy skipped:" in result.stderr and "fx.toml: label kick must be a table" in result.stderr


@pytest.mark.parametrize(("sidecar", "problem"), [
    ('{"input_seconds": 1e9}', "input_seconds must be a number of seconds above 0 and at most 300"),
    ('{"input_seconds": NaN}', "input_seconds must be a number of seconds"),
    ('{"region_s": -1}', "region_s must be a number of seconds"),
    ('{"sample_rate": 0}', "sample_rate must be a whole number of Hz"),
    ('{"sample_rate": 1e12}', "sample_rate must be a whole number of Hz"),
    ('{"sample_rate": true}', "sample_rate must be a whole number of Hz"),
    ('{"dim": 0}', "dim must be a whole number"),
    ('{"source": 5}', "source must be text"),
    ('{"input_second": 1}', "unknown setting"),
    ("[16000, 1.0]", "must be a JSON object"),
    ("{not json", "cannot read the model's settings"),
])
def test_a_bad_embedding_sidecar_is_refused_before_anything_is_allocated(tmp_path, sidecar, problem):
    from engine.errors import InputError
    from engine.features.spec import FeatureSpec

    (tmp_path / "tiny.onnx").write_bytes(b"not loaded before the settings are checked")
    (tmp_path / "tiny.json").write_text(sidecar)
    with pytest.raises(InputError, match=r"tiny\.json: .*" + problem):
        FeatureSpec.parse("onnx:tiny").extractors(tmp_path)


def test_embedding_settings_are_checked_wherever_they_come_from(tmp_path):
    from types import SimpleNamespace

    from engine.errors import InputError
    from engine.features.onnx_embed import OnnxExtractor
    from engine.features.spec import FeatureSpec

    (tmp_path / "tiny.onnx").write_bytes(b"onnx")
    (tmp_path / "tiny.json").symlink_to("/dev/zero")
    with pytest.raises(InputError, match=r"tiny\.json: not a regular file"):
        FeatureSpec.parse("onnx:tiny").extractors(tmp_path)
    (tmp_path / "tiny.json").unlink()
    (tmp_path / "tiny.json").write_text('{"sample_rate": 44100, "dim": 512, "source": "aisfx"}')
    assert FeatureSpec.parse("onnx:tiny").extractors(tmp_path)[0].sample_rate == 44100
    with pytest.raises(InputError, match="input_seconds must be a number of seconds"):
        FeatureSpec.parse("onnx:tiny", {"input_seconds": 1e9}).extractors(tmp_path)
    extractor = OnnxExtractor(model_path=str(tmp_path / "tiny.onnx"))
    with pytest.raises(InputError, match="takes 1,000,000,000,000 samples"):
        extractor._input_length(SimpleNamespace(name="waveform", shape=[1, 10**12]), 100)


def test_a_label_file_naming_a_file_edited_in_place_labels_the_new_clip(workspace, edited):
    from engine.library.importer import import_label_file

    library, old_id = edited
    manifest = library / "labels.csv"
    manifest.write_text("path,label\na.wav,snare\n")
    report = import_label_file(workspace, manifest, workers=1)
    new_id = clip_id_of(workspace, "a.wav")
    assert report.labelled == 1 and any("changed since it was imported" in note for note in report.to_dict()["notes"])
    with workspace.db.transaction() as con:
        assert {(label.label, label.origin) for label in query_labels(con, clip_id=new_id, effective=False)
                if label.segment.is_whole} == {("kick", Origin.USER), ("snare", Origin.IMPORT)}
        assert old_id not in {clip.clip_id for clip in all_clips(con)}


def test_a_file_overwritten_by_a_copy_of_another_clip_retires_its_clip_and_carries_nothing(workspace, a_and_b):
    library, a_id, b_id = a_and_b
    (library / "a.wav").write_bytes((library / "b.wav").read_bytes())
    report = import_folder(workspace, library, workers=1)
    assert (report.retired, report.labels_carried, report.duplicates, report.added) == (1, 0, 1, 0)
    assert any("already has" in note for note in report.notes)
    with workspace.db.transaction() as con:
        assert [clip.clip_id for clip in all_clips(con)] == [b_id]
        assert query_labels(con, clip_id=b_id) == [] and labelled_segments(con) == []
        assert con.execute("SELECT replaced_by FROM retired_clips WHERE clip_id = ?", [a_id]).fetchone() == (b_id,)
