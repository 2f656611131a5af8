"""Hugging Face datasets read locally: AudioFolder (metadata files, class folders, split folders) and
parquet shards, each written by hand as the Hugging Face docs describe them; the card's licence
checked against the allowlist; provenance per clip, queryable; and `export-dataset --format
audiofolder` read back by `datasets.load_dataset`."""

from __future__ import annotations

import io
import json
import traceback
from pathlib import Path

import pytest
import soundfile
from typer.testing import CliRunner

from cli.main import app
from conftest import write_hits

runner = CliRunner()
CARD = "---\nlicense: {licence}\npretty_name: Some drums\ntask_categories:\n- audio-classification\n---\n# Some drums\n"


def invoke(args: list, ws: Path, code: int) -> dict:
    result = runner.invoke(app, ["--headless", "--workspace", str(ws), *[str(a) for a in args], "--json"])
    crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
    detail = f"exit {result.exit_code}\n{result.stdout}\n{result.stderr}" + (
        "".join(traceback.format_exception(*result.exc_info)) if crashed else "")
    assert not crashed and result.exit_code == code, detail
    return json.loads(result.stdout)


def audiofolder(root: Path, licence: str = "cc-by-4.0") -> Path:
    """train/ and test/ split folders, each with a metadata.csv (file_name, label) as the AudioFolder
    docs show; train's has a row naming a missing file, one with an unknown label and one without a
    file_name. Plus a card with the licence."""
    root.mkdir(parents=True)
    (root / "README.md").write_text(CARD.format(licence=licence))
    for split, per_class in (("train", 3), ("test", 1)):
        rows = ["file_name,label"]
        for kind in ("kick", "snare"):
            for path in write_hits(root / split / "audio", kind, per_class, seed=len(split)):
                rows.append(f"audio/{path.name},{kind}")
        if split == "train":  # a missing file; a known file listed again with an unknown label; no file_name
            rows += ["audio/missing.wav,kick", f"audio/{path.name},zither", ",snare"]
        (root / split / "metadata.csv").write_text("\n".join(rows) + "\n")
    return root


def test_an_audiofolder_imports_with_labels_splits_licence_and_rejected_rows(tmp_path):
    root = audiofolder(tmp_path / "fsd_subset")
    report = invoke(["import", root], tmp_path / "ws", 3)
    assert report["added"] == 8 and report["labelled"] == 7  # the snare listed again as 'zither': the later row wins and is rejected
    assert report["dataset"] == {"id": "fsd_subset", "license": "cc-by-4.0", "card": str(root / "README.md"),
                                 "parquet_shards": 0, "splits": {"test": 2, "train": 6}}
    rejected = {(r["path"], r["line"], r["reason"]) for r in report["rejections"]}
    metadata = str(root / "train" / "metadata.csv")
    assert (metadata, 8, "bad row") in rejected and (metadata, 10, "bad row") in rejected
    unknown = [r for r in report["rejections"] if r["reason"] == "label outside the taxonomy"]
    assert len(unknown) == 1 and "train/metadata.csv line 9: label 'zither'" in unknown[0]["detail"]
    missing = next(r for r in report["rejections"] if r["line"] == 8)
    assert "'audio/missing.wav': no such file" in missing["detail"]

    listed = invoke(["clips", "list", "--filter", "license:cc-by-4.0 dataset:fsd_subset"], tmp_path / "ws", 0)
    assert listed["total"] == 8
    assert {c["dataset"] for c in listed["clips"]} == {"fsd_subset/default/train", "fsd_subset/default/test"}
    assert {c["license"] for c in listed["clips"]} == {"cc-by-4.0"}
    assert invoke(["clips", "list", "--filter", "license:cc0-1.0"], tmp_path / "ws", 0)["total"] == 0
    labels = invoke(["labels", "list"], tmp_path / "ws", 0)["labels"]
    assert sorted({(lab["label"], lab["split"]) for lab in labels}) == [
        ("kick", "test"), ("kick", "train"), ("snare", "test"), ("snare", "train")]


def test_class_folders_name_the_labels_and_a_licence_outside_the_allowlist_is_refused(tmp_path):
    root = tmp_path / "kit"
    for split in ("train", "test"):
        for kind in ("kick", "hihat_closed"):
            write_hits(root / split / kind, kind, 2, seed=len(split))
    (root / "README.md").write_text(CARD.format(licence="cc-by-sa-4.0"))
    error = invoke(["import", root], tmp_path / "ws", 1)["error"]["message"]
    assert str(root / "README.md") in error and "licence cc-by-sa-4.0, which is not allowed" in error
    assert "--allow-license cc-by-sa-4.0" in error
    assert invoke(["clips", "list"], tmp_path / "ws", 0)["total"] == 0
    report = invoke(["import", root, "--allow-license", "cc-by-sa-4.0"], tmp_path / "ws", 0)
    assert report["added"] == 8 and report["labelled"] == 8 and report["dataset"]["splits"] == {"test": 4, "train": 4}
    listed = invoke(["clips", "list", "--filter", "label:hihat_closed license:cc-by-sa-4.0"], tmp_path / "ws", 0)
    assert listed["total"] == 4 and all("/hihat_closed/" in c["path"] for c in listed["clips"])


def test_a_card_without_a_licence_is_refused(tmp_path):
    root = tmp_path / "nolicence"
    write_hits(root / "kick", "kick", 1)
    (root / "README.md").write_text("---\npretty_name: x\n---\n")
    assert "declares no licence" in invoke(["import", root], tmp_path / "ws", 1)["error"]["message"]


def wav_bytes(folder: Path, kind: str, seed: int) -> bytes:
    return write_hits(folder, kind, 1, seed=seed)[0].read_bytes()


def test_parquet_shards_write_their_audio_bytes_into_the_workspace(tmp_path):
    """data/train-00000-of-00001.parquet as `datasets` pushes it: audio struct<bytes, path>, a ClassLabel
    label (int) whose names are in the shard's `huggingface` schema metadata; and a test shard in a
    config folder whose names come from the card's dataset_info instead."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = tmp_path / "drums_parquet"
    (root / "data").mkdir(parents=True)
    (root / "extra").mkdir()
    names = ["kick", "snare"]
    audio_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    features = {"audio": {"_type": "Audio"}, "label": {"_type": "ClassLabel", "names": names}}
    schema = pa.schema([("audio", audio_type), ("label", pa.int64())],
                       metadata={"huggingface": json.dumps({"info": {"features": features}})})
    rows = [({"bytes": wav_bytes(tmp_path / "bytes", "kick", 1), "path": "k1.wav"}, 0), ({"bytes": wav_bytes(tmp_path / "bytes", "snare", 2), "path": "s2.wav"}, 1),
            ({"bytes": None, "path": "gone.wav"}, 0), ({"bytes": b"not audio at all", "path": "x.wav"}, 1),
            ({"bytes": wav_bytes(tmp_path / "bytes", "kick", 3), "path": None}, 7)]
    pq.write_table(pa.table({"audio": [r[0] for r in rows], "label": [r[1] for r in rows]}, schema=schema),
                   root / "data" / "train-00000-of-00001.parquet")
    pq.write_table(pa.table({"audio": [{"bytes": wav_bytes(tmp_path / "bytes", "snare", 4), "path": "s4.wav"}], "label": [1]},
                            schema=pa.schema([("audio", audio_type), ("label", pa.int64())])),
                   root / "extra" / "test-00000-of-00001.parquet")
    (root / "README.md").write_text(
        "---\nlicense: cc0-1.0\ndataset_info:\n  features:\n  - name: audio\n    dtype: audio\n  - name: label\n"
        "    dtype:\n      class_label:\n        names:\n          '0': kick\n          '1': snare\n---\n")
    ws = tmp_path / "ws"
    report = invoke(["import", root], ws, 3)
    assert report["added"] == 3 and report["labelled"] == 3 and report["dataset"]["parquet_shards"] == 2
    shard = str(root / "data" / "train-00000-of-00001.parquet")
    details = sorted((r["path"], r["detail"]) for r in report["rejections"])
    assert (shard, "row 3: 'audio' holds no audio bytes") in details
    assert (shard, "row 5: 'label' is 7, outside the 2 class names") in details
    assert any("data/train-00000-of-00001.parquet row 4" in d and r["reason"] == "not audio"
               for r in report["rejections"] for d in [r["detail"]])
    listed = invoke(["clips", "list", "--filter", "dataset:drums_parquet"], ws, 0)["clips"]
    assert sorted(c["dataset"] for c in listed) == ["drums_parquet/default/train", "drums_parquet/default/train",
                                                    "drums_parquet/extra/test"]
    for clip in listed:  # content-addressed inside the workspace, the bytes the shard holds
        path = Path(clip["path"])
        assert path.is_relative_to(ws / "datasets" / "drums_parquet") and path.stem == clip["clip_id"]
        assert soundfile.info(io.BytesIO(path.read_bytes())).frames > 0
    assert len(list((ws / "datasets").rglob("*.*"))) == 3  # the row that was not audio left no file
    again = invoke(["import", root], ws, 3)
    assert again["added"] == 0 and again["unchanged"] == 3


def test_export_audiofolder_is_read_back_by_datasets(tmp_path):
    datasets = pytest.importorskip("datasets")
    root = audiofolder(tmp_path / "fsd_subset")
    ws = tmp_path / "ws"
    invoke(["import", root], ws, 3)
    out = tmp_path / "hf_ready"
    report = invoke(["export-dataset", "--format", "audiofolder", "--out", out], ws, 0)
    assert report["clips"] == 7 and report["licenses"] == {"cc-by-4.0": 7}
    card = (out / "README.md").read_text()
    assert card.startswith("---\nlicense: cc-by-4.0\n")
    loaded = datasets.load_dataset("audiofolder", data_dir=str(out)).cast_column("audio", datasets.Audio(decode=False))
    assert sorted(loaded) == ["test", "train"]
    assert loaded["train"].num_rows + loaded["test"].num_rows == 7
    assert sorted(set(loaded["train"]["label"])) == ["kick", "snare"]
    assert set(loaded["train"]["license"]) == {"cc-by-4.0"}


@pytest.mark.parametrize("licences, allowed, refused", [
    (["cc0-1.0"], (), None), (["cc-by-4.0", "cc-by-3.0"], (), None), (["CC-BY-2.0"], (), None),
    (["cc-by-nc-4.0"], (), "cc-by-nc-4.0"), (["cc-by-sa-4.0"], (), "cc-by-sa-4.0"), (["mit"], (), "mit"),
    (["cc-by-4.0", "cc-by-nd-4.0"], (), "cc-by-nd-4.0"), (["cc-by-nc-4.0"], ("CC-BY-NC-4.0",), None),
])
def test_the_licence_allowlist(tmp_path, licences, allowed, refused):
    from engine.errors import InputError
    from engine.library.hf import check_licence, read_card

    listed = "".join(f"\n- {name}" for name in licences)
    (tmp_path / "README.md").write_text(f"---\nlicense:{listed}\n---\n")
    card = read_card(tmp_path)
    assert card.licences == [name.lower() for name in licences]
    if refused is None:
        check_licence(card, allowed)
    else:
        with pytest.raises(InputError, match=f"licence {refused}, which is not allowed"):
            check_licence(card, allowed)


def test_card_configs_metadata_jsonl_and_a_bad_card(tmp_path):
    """A card's `configs` (data_files per split, as the Hugging Face docs write them) place files; a
    metadata.jsonl labels them; a bad line is rejected with its number; broken YAML names its line."""
    from engine.errors import InputError
    from engine.library.hf import read_audiofolder, read_card

    root = tmp_path / "ds"
    for name in ("a.wav", "b.wav", "c.wav"):
        (root / "clips" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "clips" / name).write_bytes(b"RIFF")
    (root / "README.md").write_text(
        "---\nlicense: cc0-1.0\nconfigs:\n- config_name: hits\n  data_files:\n  - split: train\n    path: clips/[ab].wav\n"
        "  - split: test\n    path: clips/c.wav\n---\n")
    (root / "clips" / "metadata.jsonl").write_text(
        '{"file_name": "a.wav", "label": "kick"}\n{"file_name": "b.wav", "label": "snare"}\nnot json\n'
        '{"file_name": "c.wav", "label": null}\n')
    card = read_card(root)
    read = read_audiofolder(root, card, sorted((root / "clips").glob("*.wav")), "label")
    assert [(Path(e.path).name, e.label, e.config, e.split, e.origin) for e in read.entries] == [
        ("a.wav", "kick", "hits", "train", "clips/metadata.jsonl line 1"),
        ("b.wav", "snare", "hits", "train", "clips/metadata.jsonl line 2"),
        ("c.wav", None, "hits", "test", "clips/metadata.jsonl line 4")]
    assert [(r.line, r.reason, r.detail[:14]) for r in read.rejections] == [(3, "bad row", "not valid JSON")]
    (root / "README.md").write_text("---\nlicense: [cc0-1.0\n---\n")
    with pytest.raises(InputError, match=r"README.md: line \d+: the YAML front matter is not valid YAML"):
        read_card(root)


def test_class_folders_are_not_configs_but_parquet_config_folders_are(tmp_path):
    from engine.library.hf import placement, read_card

    card = read_card(tmp_path)  # no card: licence unknown, no configs
    assert card.licences == ["unknown"]
    assert placement(tmp_path, card, tmp_path / "kick" / "a.wav") == ("default", None)
    assert placement(tmp_path, card, tmp_path / "validation" / "kick" / "a.wav") == ("default", "validation")
    assert placement(tmp_path, card, tmp_path / "data" / "test-00000-of-00001.parquet") == ("default", "test")
    assert placement(tmp_path, card, tmp_path / "hits" / "train" / "0000.parquet") == ("hits", "train")


async def test_the_library_status_line_names_a_dataset_clips_provenance(tmp_path):
    from textual.widgets import Label

    from engine.library.importer import import_folder
    from engine.workspace import Workspace
    from tui.app import make_app
    from tui.widgets.cliptable import ClipTable
    from tui_pilot import wait_for

    workspace = Workspace.open(tmp_path / "ws")
    root = tmp_path / "kit"
    write_hits(root / "test" / "kick", "kick", 1)
    (root / "README.md").write_text(CARD.format(licence="cc0-1.0"))
    import_folder(workspace, root, workers=1)
    app = make_app(workspace.root)
    async with app.run_test(size=(80, 24)) as pilot:
        status = app.screen.query_one("#library-status", Label)
        await wait_for(pilot, lambda: app.screen.query_one(ClipTable).row_count == 1, "the clip")
        await wait_for(pilot, lambda: "kit/default/test cc0-1.0" in str(status.content), "the provenance")
        assert str(status.content) == "1 clips · sorted by path · kit/default/test cc0-1.0"
