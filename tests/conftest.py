"""Shared fixtures: tiny models and scenes from fixed seeds."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

pytest_plugins = ["tests.gcs_emulator"]

from tests.helpers import SHARED  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _derived_model_cache(tmp_path_factory):
    """Derived backend models go to a session directory, never the user's ~/.cache."""
    previous = os.environ.get("MINESCAN_CACHE_DIR")
    os.environ["MINESCAN_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if previous is None:
        os.environ.pop("MINESCAN_CACHE_DIR", None)
    else:
        os.environ["MINESCAN_CACHE_DIR"] = previous


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared (real reference data) is not beside this checkout")
    return SHARED


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """Untrained 12-band models, threshold 0: every valid cell is a candidate, so scan tests
    see the full cell geometry. Fixed seed, built once per session."""
    import keras
    from minescan.bands import DEFAULT_BANDS
    from minescan.models.card import Normalization, save_model_dir
    from minescan.models.networks import (
        DISCOVERY_CLASSES,
        IMPACT_CLASSES,
        build_discovery_fcn,
        build_impact_cnn,
    )

    keras.utils.set_random_seed(11)
    root = tmp_path_factory.mktemp("models")
    norm = Normalization(mean=[1500.0] * 12, std=[800.0] * 12)
    common = dict(bands=DEFAULT_BANDS, normalization=norm, version="test")
    save_model_dir(build_discovery_fcn(12), root / "discovery", kind="discovery", name="tiny-discovery",
                   class_names=DISCOVERY_CLASSES, input_size=201, threshold=0.0, **common)
    save_model_dir(build_impact_cnn(12), root / "impact", kind="impact", name="tiny-impact",
                   class_names=IMPACT_CLASSES, input_size=21, **common)
    return root


@pytest.fixture(params=["local", "gcs"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty storage root: a local directory or a new emulated bucket."""
    if request.param == "local":
        return str(tmp_path / "store")
    return request.getfixturevalue("gcs_emulator").make_bucket() + "/store"
