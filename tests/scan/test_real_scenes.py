"""The scan on real Sentinel-2 files from ../shared (3-band 2021 composites around Brazilian
mines): their quirks are real ones (named bands, no declared nodata, non-square pixels,
a WKT with latitude-first axis order). Skipped where ../shared is absent."""

from __future__ import annotations

import numpy as np
import pytest
from minescan.errors import InputError
from minescan.models.card import load_model_dir
from minescan.scan import geometry
from minescan.scan.config import ScanConfig
from minescan.scan.scanner import scan_scene

from tests.helpers import write_scene

RGB = ("B2", "B3", "B4")


@pytest.fixture(scope="module")
def rgb_models(tmp_path_factory):
    import keras
    from minescan.models.card import Normalization, save_model_dir
    from minescan.models.networks import (
        DISCOVERY_CLASSES,
        IMPACT_CLASSES,
        build_discovery_fcn,
        build_impact_cnn,
    )

    keras.utils.set_random_seed(5)
    root = tmp_path_factory.mktemp("rgb-models")
    norm = Normalization(mean=[900.0, 900.0, 900.0], std=[400.0, 400.0, 400.0])
    save_model_dir(build_discovery_fcn(3), root / "d", kind="discovery", name="rgb-d", version="t", bands=RGB,
                   normalization=norm, class_names=DISCOVERY_CLASSES, input_size=201, threshold=0.0)
    save_model_dir(build_impact_cnn(3), root / "i", kind="impact", name="rgb-i", version="t", bands=RGB,
                   normalization=norm, class_names=IMPACT_CLASSES, input_size=21)
    return load_model_dir(root / "d"), load_model_dir(root / "i")


@pytest.fixture(scope="module")
def real_scene(shared_dir):
    return shared_dir / "data" / "tailings_seg_dev" / "img_001.tif"


def test_real_scene_detections_lie_on_their_cell_centres_inside_the_scene(real_scene, rgb_models):
    import rasterio

    result = scan_scene(str(real_scene), *rgb_models, ScanConfig(drop_no_ore=False))
    with rasterio.open(real_scene) as src:
        t, bounds = src.transform, src.bounds
    det = result.detections
    assert result.p_mine.shape == (geometry.n_cells(448), geometry.n_cells(448))
    assert len(det) == result.p_mine.size  # no nodata in these composites, threshold 0
    np.testing.assert_allclose(det["lon"], t.c + t.a * (det["pixel_col"] + 0.5), atol=1e-12)
    np.testing.assert_allclose(det["lat"], t.f + t.e * (det["pixel_row"] + 0.5), atol=1e-12)
    assert det["lon"].between(bounds.left, bounds.right).all()
    assert det["lat"].between(bounds.bottom, bounds.top).all()


def test_bands_are_picked_by_name_not_position(real_scene, rgb_models, tmp_path):
    import rasterio

    with rasterio.open(real_scene) as src:
        data, profile = src.read(), src.profile
    reordered = write_scene(tmp_path / "bgr.tif", data[::-1].copy(), crs=profile["crs"],
                            transform=profile["transform"], nodata=None, descriptions=("B4", "B3", "B2"))
    a = scan_scene(str(real_scene), *rgb_models, ScanConfig())
    b = scan_scene(str(reordered), *rgb_models, ScanConfig())
    np.testing.assert_array_equal(a.p_mine, b.p_mine)


def test_a_twelve_band_model_names_the_missing_bands(real_scene, tiny_models):
    from minescan.models.bundled import load_models

    with pytest.raises(InputError, match=r"missing \['B1', 'B5', 'B6'"):
        scan_scene(str(real_scene), *load_models(str(tiny_models / "discovery"), str(tiny_models / "impact")))
