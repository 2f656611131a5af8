"""The feature cache and extraction: keys, invalidation, the warm path, ONNX and hybrid, cancel."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from conftest import curated_library, write_hits
from engine.features import extract as extract_module
from engine.features.base import source_fingerprint
from engine.features.dsp import DspExtractor
from engine.features.extract import load_features
from engine.features.mel import MelExtractor
from engine.features.service import extract_workspace, workspace_targets
from engine.features.spec import FeatureSpec
from engine.library.importer import import_folder
from engine.progress import CancelToken


@pytest.fixture
def library(workspace, tmp_path):
    curated_library(tmp_path / "curated", classes=("kick", "hihat_closed"), per_pack=3)
    import_folder(workspace, tmp_path / "curated", curated=True, workers=1)
    return workspace


def test_extract_then_warm_run_decodes_nothing(library, monkeypatch):
    spec = FeatureSpec.parse("dsp")
    cold = extract_workspace(library, spec, workers=1)
    assert (cold.extracted, cold.cached, cold.clips_decoded) == (18, 0, 18)

    def no_decoding(*args, **kwargs):
        raise AssertionError("the warm path decoded audio")

    monkeypatch.setattr(extract_module, "decode", no_decoding)
    monkeypatch.setattr(extract_module, "read_range", no_decoding)
    warm = extract_workspace(library, spec, workers=1)
    assert (warm.extracted, warm.cached, warm.clips_decoded) == (0, 18, 0)
    extractors = spec.extractors(library.embeddings_dir)
    features, kept = load_features(library.cache, workspace_targets(library), extractors)
    assert features.shape == (18, len(DspExtractor().feature_names())) and len(kept) == 18
    assert np.isfinite(features).all()


def test_a_new_extractor_code_version_invalidates_its_entries(library, monkeypatch):
    extract_workspace(library, FeatureSpec.parse("dsp"), workers=1)
    monkeypatch.setattr(DspExtractor, "code_version", property(lambda self: "edited-source-0001"))
    again = extract_workspace(library, FeatureSpec.parse("dsp"), workers=1)
    assert (again.extracted, again.cached) == (18, 0)
    prefixes = {s.prefix for s in library.cache.stats()}
    assert len(prefixes) == 2 and any(p.endswith("edited-source-0001") for p in prefixes)


def test_code_version_is_a_fingerprint_of_the_source(tmp_path, monkeypatch):
    module = tmp_path / "fake_extractor_module.py"
    module.write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = source_fingerprint("fake_extractor_module")
    module.write_text("VALUE = 2\n")
    source_fingerprint.cache_clear()
    assert source_fingerprint("fake_extractor_module") != before


def test_params_change_the_key_and_bad_params_are_refused(library):
    default, short = FeatureSpec.parse("dsp"), FeatureSpec.parse("dsp", {"region_s": 0.5})
    first = default.extractors(library.embeddings_dir)[0]
    second = short.extractors(library.embeddings_dir)[0]
    assert first.cache_prefix != second.cache_prefix
    from engine.errors import InputError

    with pytest.raises(InputError, match="unknown parameter"):
        FeatureSpec.parse("dsp", {"wobble": 1}).extractors(library.embeddings_dir)
    with pytest.raises(InputError):
        FeatureSpec.parse("onnx")


def test_mel_patches_have_a_fixed_shape(library):
    report = extract_workspace(library, FeatureSpec.parse("mel"), workers=2)
    assert report.extracted == 18 and not report.rejections
    extractors = FeatureSpec.parse("mel").extractors(library.embeddings_dir)
    features, _ = load_features(library.cache, workspace_targets(library), extractors)
    assert features.shape == (18, 64, 96)


def build_onnx_embedding(folder, name="tiny", dim=8, sample_rate=16000, seconds=0.5):
    """A small audio-embedding ONNX model built here with torch (no download)."""
    torch = pytest.importorskip("torch")

    class TinyEmbedding(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.conv = torch.nn.Conv1d(1, dim, kernel_size=400, stride=160)

        def forward(self, waveform):
            frames = torch.relu(self.conv(waveform.unsqueeze(1)))
            return frames.mean(dim=2)

    folder.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(1, int(sample_rate * seconds))
    torch.onnx.export(TinyEmbedding(), (example,), str(folder / f"{name}.onnx"), input_names=["waveform"],
                      output_names=["embedding"], dynamo=False)
    (folder / f"{name}.json").write_text(json.dumps({"sample_rate": sample_rate}))
    return folder / f"{name}.onnx"


def test_onnx_and_hybrid_features(library):
    build_onnx_embedding(library.embeddings_dir)
    onnx = extract_workspace(library, FeatureSpec.parse("onnx:tiny"), workers=1)
    assert onnx.extracted == 18 and not onnx.rejections
    dsp_length = len(DspExtractor().feature_names())
    hybrid = FeatureSpec.parse("hybrid:tiny")
    report = extract_workspace(library, hybrid, workers=1)
    assert report.extracted == 18 and report.cached == 18  # the onnx half came from the cache
    features, _ = load_features(library.cache, workspace_targets(library), hybrid.extractors(library.embeddings_dir))
    assert features.shape == (18, 8 + dsp_length)
    with pytest.raises(Exception, match="no such embedding model"):
        FeatureSpec.parse("onnx:absent").extractors(library.embeddings_dir)


def test_a_standardized_embedding_is_scipys_zscore_of_the_plain_one_and_aisfx_defaults_to_it(library):
    from scipy import stats

    build_onnx_embedding(library.embeddings_dir)
    targets = workspace_targets(library)
    plain, standard = FeatureSpec.parse("onnx:tiny"), FeatureSpec.parse("onnx:tiny", {"onnx.standardize": True})
    for spec in (plain, standard):
        extract_workspace(library, spec, workers=1)
    raw, _ = load_features(library.cache, targets, plain.extractors(library.embeddings_dir))
    scaled, _ = load_features(library.cache, targets, standard.extractors(library.embeddings_dir))
    np.testing.assert_allclose(scaled, stats.zscore(raw.astype(np.float64), axis=1), atol=1e-5)
    assert not np.allclose(scaled, raw)
    assert FeatureSpec.parse("hybrid:aisfx").with_embedding_defaults().params == {"onnx.standardize": True}
    assert FeatureSpec.parse("onnx:aisfx").with_embedding_defaults().params == {"onnx.standardize": True}
    kept = FeatureSpec.parse("hybrid:aisfx", {"onnx.standardize": False})  # a spec that says: left as it is
    assert kept.with_embedding_defaults() == kept
    for other in ("dsp", "onnx:tiny", "hybrid:tiny"):
        assert FeatureSpec.parse(other).with_embedding_defaults() == FeatureSpec.parse(other)
    from engine.training.run import TrainRequest

    assert TrainRequest(name="x", features="hybrid:aisfx").spec(library).params == {"onnx.standardize": True}


def test_replacing_an_onnx_model_invalidates_its_features(library):
    build_onnx_embedding(library.embeddings_dir)
    first = FeatureSpec.parse("onnx:tiny").extractors(library.embeddings_dir)[0].cache_prefix
    from engine.features.onnx_embed import _file_sha256

    build_onnx_embedding(library.embeddings_dir, dim=4)
    _file_sha256.cache_clear()
    assert FeatureSpec.parse("onnx:tiny").extractors(library.embeddings_dir)[0].cache_prefix != first


def test_cancel_keeps_what_was_finished(workspace, tmp_path, monkeypatch):
    write_hits(tmp_path / "pack", "snare", 40)
    import_folder(workspace, tmp_path / "pack", workers=1)
    cancel = CancelToken()
    calls = []
    original = extract_module._decode_clip

    def cancel_after_ten(job):
        calls.append(job)
        if len(calls) == 10:
            cancel.cancel()  # as Ctrl-C does, while the tenth clip is being worked on
        return original(job)

    monkeypatch.setattr(extract_module, "_decode_clip", cancel_after_ten)
    spec = FeatureSpec.parse("dsp")
    report = extract_workspace(workspace, spec, workers=1, cancel=cancel)
    # the batch that held the tenth clip is finished and kept; no later batch starts
    assert report.cancelled and 10 <= report.extracted < 40 and len(calls) == report.extracted
    extractors = spec.extractors(workspace.embeddings_dir)
    _, kept = load_features(workspace.cache, workspace_targets(workspace), extractors)
    assert len(kept) == report.extracted
    resumed = extract_workspace(workspace, spec, workers=1)
    assert (resumed.cached, resumed.extracted) == (report.extracted, 40 - report.extracted)


def test_batched_extraction_matches_one_clip_at_a_time(library):
    """Clips extracted in one batch (one STFT over all their frames) get the features each gets alone."""
    from engine.audio.decode import decode

    for kind in ("dsp", "mel"):
        spec = FeatureSpec.parse(kind)
        extractors = spec.extractors(library.embeddings_dir)
        report = extract_workspace(library, spec, workers=1)
        assert report.extracted == 18
        targets = workspace_targets(library)
        batched, kept = load_features(library.cache, targets, extractors)
        alone = np.stack([extractors[0].extract(decode(targets[k].path, extractors[0].sample_rate)[0]) for k in kept])
        np.testing.assert_allclose(batched, alone, rtol=1e-4, atol=1e-4)


def test_cache_stats_and_clear(library):
    extract_workspace(library, FeatureSpec.parse("dsp"), workers=1)
    extract_workspace(library, FeatureSpec.parse("mel"), workers=1)
    by_extractor = {s.extractor: s.entries for s in library.cache.stats()}
    assert by_extractor == {"dsp": 18, "mel": 18}
    removed = library.cache.clear(keep=lambda prefix: not prefix.startswith("mel:"))
    assert removed == 18 and {s.extractor for s in library.cache.stats()} == {"dsp"}


def test_one_cache_path_opened_twice_in_a_process_is_shared(tmp_path):
    """LMDB refuses a second open of one file in a process; two workspaces objects on one folder
    (a CLI command after another, in one test process) must both work."""
    from engine.features.cache import FeatureCache

    first, second = FeatureCache(tmp_path / "cache.lmdb"), FeatureCache(tmp_path / "cache.lmdb")
    first.put_many({"dsp:x:1|clip|whole": np.arange(3.0)})
    first.close()
    assert np.array_equal(second.get_many(["dsp:x:1|clip|whole"])["dsp:x:1|clip|whole"], np.arange(3.0))
    second.close()
    third = FeatureCache(tmp_path / "cache.lmdb")
    assert third.missing(["dsp:x:1|clip|whole", "other|clip|whole"]) == ["other|clip|whole"]
    third.close()


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without CUDA")
def test_extracting_on_cuda_without_it_is_a_clear_error_and_auto_takes_the_cpu(library):
    from engine.errors import InputError

    with pytest.raises(InputError, match="CUDA"):
        extract_workspace(library, FeatureSpec.parse("mel"), workers=1, device="cuda")
    report = extract_workspace(library, FeatureSpec.parse("mel"), workers=1, device="auto")
    assert report.extracted == 18


class _ParentOnlyMel(MelExtractor):
    """A log-mel extractor that says it runs on a device: extraction must run it in the parent
    process only, over the samples the workers decoded, in as few calls as the samples allow."""

    parent_pid = os.getpid()
    calls: list[int] = []

    def runs_on_device(self) -> bool:
        return True

    def extract_batch(self, batch):
        assert os.getpid() == self.parent_pid, "a worker ran an extractor meant for the device"
        self.calls.append(len(batch))
        return super().extract_batch(batch)


def test_extractors_on_a_device_run_in_this_process_over_what_the_workers_decoded(library, monkeypatch):
    targets = workspace_targets(library)
    spec = FeatureSpec.parse("mel")
    expected = extract_workspace(library, spec, workers=1)
    reference = load_features(library.cache, targets, [MelExtractor()])[0]
    library.cache.clear()

    on_device = _ParentOnlyMel()
    report = extract_module.extract_features(library.cache, targets, spec, [DspExtractor(), on_device], workers=2)
    assert report.extracted == 2 * expected.extracted == 36 and not report.rejections
    assert _ParentOnlyMel.calls == [18]  # one call over every clip: under DEVICE_BATCH_SAMPLES
    np.testing.assert_array_equal(load_features(library.cache, targets, [on_device])[0], reference)
    assert load_features(library.cache, targets, [DspExtractor()])[0].shape[0] == 18

    library.cache.clear()
    _ParentOnlyMel.calls.clear()
    monkeypatch.setattr(extract_module, "DEVICE_BATCH_SAMPLES", 1)  # run as soon as anything waits
    extract_module.extract_features(library.cache, targets, spec, [on_device], workers=2)
    assert sum(_ParentOnlyMel.calls) == 18 and len(_ParentOnlyMel.calls) > 1


def test_cached_arrays_are_the_bytes_np_save_writes():
    import io

    from engine.features.cache import decode_array, encode_array

    for array in (np.arange(99, dtype=np.float32), np.ones((64, 96), np.float32), np.zeros(0, np.float32),
                  np.arange(6.0).reshape(2, 3).T, np.arange(5, dtype=">i4")):
        saved = io.BytesIO()
        np.save(saved, np.ascontiguousarray(array), allow_pickle=False)
        assert encode_array(array) == saved.getvalue()
        np.testing.assert_array_equal(decode_array(encode_array(array)), array)
    with pytest.raises(ValueError):
        encode_array(np.array([None, 1], dtype=object))
