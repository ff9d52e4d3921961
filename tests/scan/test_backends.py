"""Backends: chosen by name or fastest installed, derived only from a verified Keras file,
cached under its hash, re-derived when the cache is damaged, and exact at scene level."""

from __future__ import annotations

import json

import numpy as np
import pytest
from minescan.errors import EXIT_USAGE, InputError
from minescan.models.card import verified_model_dir
from minescan.scan import backends
from minescan.scan.config import ScanConfig
from minescan.scan.scanner import scan_scene

from tests.helpers import random_scene, run_cli, write_scene

needs_openvino = pytest.mark.skipif("openvino" not in backends.installed_backends(), reason="openvino not installed")


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("MINESCAN_CACHE_DIR", str(root))
    return root


def test_auto_is_the_fastest_installed_and_a_named_backend_must_exist(monkeypatch):
    assert backends.resolve_backend("auto") == backends.installed_backends()[0]
    assert backends.resolve_backend("tensorflow") == "tensorflow"
    monkeypatch.setattr(backends, "installed_backends", lambda: ("tensorflow",))
    assert backends.resolve_backend("auto") == "tensorflow"
    with pytest.raises(InputError, match="openvino is not installed"):
        backends.resolve_backend("openvino")


def test_mixed_precision_is_refused_off_tensorflow(tiny_models):
    with pytest.raises(InputError, match="tensorflow backend only"):
        backends.load_network(verified_model_dir(tiny_models / "impact"), "openvino", mixed_precision=True)


@needs_openvino
def test_derived_model_is_cached_under_the_keras_hash_and_reused_without_keras(tiny_models, cache):
    first = verified_model_dir(tiny_models / "impact")
    backends.load_network(first, "openvino")
    (entry,) = (cache / "derived" / first.card.weights_sha256).iterdir()
    record = json.loads((entry / "derived.json").read_text())
    assert record["source_sha256"] == first.card.weights_sha256
    assert set(record["files"]) == {"model.xml", "model.bin"}
    assert not [p for p in entry.parent.iterdir() if p.name.startswith(".")]  # no staging left
    again = verified_model_dir(tiny_models / "impact")
    backends.load_network(again, "openvino")
    assert "model" not in again.__dict__  # the Keras file was never read: the cache served


@needs_openvino
def test_a_damaged_cache_entry_is_derived_again(tiny_models, cache):
    model = verified_model_dir(tiny_models / "impact")
    backends.load_network(model, "openvino")
    (entry,) = (cache / "derived" / model.card.weights_sha256).iterdir()
    weights = entry / "model.bin"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    patches = np.random.default_rng(0).normal(size=(5, 21, 21, 12)).astype(np.float32)
    fresh = verified_model_dir(tiny_models / "impact")
    out = backends.load_network(fresh, "openvino")(patches)
    assert "model" in fresh.__dict__  # re-derived from the verified Keras file
    np.testing.assert_allclose(out, backends.tensorflow_network(fresh.model)(patches), atol=1e-5)
    assert backends._entry_is_valid(entry, model.card.weights_sha256)


@needs_openvino
def test_an_unwritable_cache_falls_back_to_a_temporary_directory(tiny_models, cache):
    cache.write_text("a file where the cache directory should be\n")  # unwritable, even for root
    network = backends.load_network(verified_model_dir(tiny_models / "impact"), "openvino")
    assert network(np.zeros((1, 21, 21, 12), np.float32)).shape == (1, 3)
    assert cache.read_text().startswith("a file")


@pytest.mark.parametrize("backend", backends.installed_backends())
def test_scene_scan_is_seamless_for_every_backend(tmp_path, tiny_models, backend):
    from minescan.models.bundled import load_models

    models = load_models(str(tiny_models / "discovery"), str(tiny_models / "impact"))
    path = write_scene(tmp_path / "big.tif", random_scene(np.random.default_rng(3), 700, 911))
    whole = scan_scene(str(path), *models, ScanConfig(memory_budget_mb=4000, backend="tensorflow"))
    tiled = scan_scene(str(path), *models, ScanConfig(memory_budget_mb=64, backend=backend))
    assert whole.n_tiles == 1 and tiled.n_tiles > 1 and tiled.backend == backend
    assert np.max(np.abs(whole.p_mine - tiled.p_mine)) <= 1e-5
    cols = ["p_high", "p_low", "p_no_ore"]
    np.testing.assert_allclose(whole.detections[cols].to_numpy(), tiled.detections[cols].to_numpy(), atol=1e-5)


def test_cli_backend_is_recorded_and_an_unknown_one_is_a_usage_error(tmp_path, tiny_models):
    path = write_scene(tmp_path / "s.tif", random_scene(np.random.default_rng(5), 230, 230))
    models = ["--discovery-model", tiny_models / "discovery", "--impact-model", tiny_models / "impact"]
    assert run_cli(["scan", path, "--out", tmp_path / "tf", "--backend", "tensorflow", *models]) == 0
    success = json.loads((tmp_path / "tf" / "_SUCCESS.json").read_text())
    assert success["backend"] == "tensorflow" and success["config"]["backend"] == "tensorflow"
    assert success["memory_mib"]["budget_mib"] == ScanConfig().memory_budget_mb
    assert run_cli(["scan", path, "--out", tmp_path / "x", "--backend", "cuda", *models]) == EXIT_USAGE


def test_mixed_precision_stays_close_to_float32_and_returns_float32(tiny_models):
    model = verified_model_dir(tiny_models / "impact").model
    patches = np.random.default_rng(4).normal(size=(32, 21, 21, 12)).astype(np.float32)
    full = backends.tensorflow_network(model)(patches)
    half = backends.tensorflow_network(model, mixed_precision=True)(patches)
    assert half.dtype == np.float32 and half.shape == full.shape
    assert 0 < np.max(np.abs(full - half)) < 1e-2  # float16 really ran, and stayed close
