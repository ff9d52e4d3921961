"""Earth Engine graphs, built offline with earthengine-api's own test stub and checked in their
serialised form: every parameter the paper (Balaniuk et al. 2020, §3.1) and MapBiomas (mining ATBD, Col. 9) name."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from minescan.acquire import composite, exports, session
from minescan.acquire.config import (
    ChipConfig,
    CompositeConfig,
    ExportConfig,
    LandsatConfig,
)
from minescan.batch import grid


@pytest.fixture()
def ee_offline() -> Iterator[Any]:
    """ee initialised from ee/tests/algorithms.json (ee.apitestcase), no credentials, no network."""
    with session.offline():
        import ee

        yield ee


def calls(graph: Any, name: str) -> list[dict[str, Any]]:
    """Arguments of every invocation of `name` in a (pretty-encoded) graph, constants unwrapped."""
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            inv = node.get("functionInvocationValue")
            if inv and inv["functionName"] == name:
                found.append({k: v.get("constantValue", v) if isinstance(v, dict) else v
                              for k, v in inv["arguments"].items()})
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(graph)
    return found


def s2_graph(ee: Any, **cfg: Any) -> Any:
    region = ee.Geometry.Rectangle([-44.0, -20.5, -43.5, -20.0], "EPSG:4326", False)
    return session.encode_pretty(composite.s2_composite(CompositeConfig(**cfg), region))


def test_s2_composite_reads_the_harmonized_l1c_collection(ee_offline) -> None:
    g = s2_graph(ee_offline)
    assert [c["id"] for c in calls(g, "ImageCollection.load")] == ["COPERNICUS/S2_HARMONIZED"]


def test_s2_composite_filters_two_years_from_january_2018(ee_offline) -> None:
    (dates,) = calls(s2_graph(ee_offline), "DateRange")
    assert (dates["start"], dates["end"]) == ("2018-01-01", "2020-01-01")
    (contains,) = calls(s2_graph(ee_offline), "Filter.dateRangeContains")
    assert contains["rightField"] == "system:time_start"


def test_s2_composite_keeps_granules_at_most_20_percent_cloudy(ee_offline) -> None:
    g = s2_graph(ee_offline)
    # lte(20) is serialised as not(greaterThan(20))
    (gt,) = calls(g, "Filter.greaterThan")
    assert (gt["leftField"], gt["rightValue"]) == ("CLOUDY_PIXEL_PERCENTAGE", 20.0)
    assert len(calls(g, "Filter.not")) == 1
    (gt,) = calls(s2_graph(ee_offline, max_cloud_pct=35), "Filter.greaterThan")
    assert gt["rightValue"] == 35


def test_s2_composite_filters_by_the_scene_region(ee_offline) -> None:
    (rect,) = calls(s2_graph(ee_offline), "GeometryConstructors.Rectangle")
    assert rect["coordinates"] == [-44.0, -20.5, -43.5, -20.0]
    assert len(calls(s2_graph(ee_offline), "Filter.intersects")) == 1


def test_s2_composite_masks_qa60_bits_10_and_11(ee_offline) -> None:
    g = s2_graph(ee_offline)
    selects = [c["bandSelectors"] for c in calls(g, "Image.select")]
    assert ["QA60"] in selects
    constants = [c["value"] for c in calls(g, "Image.constant")]
    assert (1 << 10) | (1 << 11) == 3072 and 3072 in constants
    # pixels with either bit set are masked: bitwiseAnd(3072) == 0 keeps the clear ones
    assert len(calls(g, "Image.bitwiseAnd")) == 1 and 0 in constants
    assert len(calls(g, "Image.updateMask")) == 1
    # the authors' notebook bits 3 and 5 (not QA60 flags) appear nowhere
    assert (1 << 3) | (1 << 5) not in constants


def test_s2_composite_is_a_per_pixel_median_cast_to_uint16(ee_offline) -> None:
    g = s2_graph(ee_offline)
    assert len(calls(g, "reduce.median")) == 1
    assert g["functionInvocationValue"]["functionName"] == "Image.toUint16"
    assert not calls(g, "reduce.mean") and not calls(g, "Image.multiply")


def test_s2_composite_selects_b1_to_b12_with_b10_without_b8a(ee_offline) -> None:
    selects = [c["bandSelectors"] for c in calls(s2_graph(ee_offline), "Image.select")]
    expected = ["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B9", "B10", "B11", "B12"]
    assert expected in selects
    custom = [c["bandSelectors"] for c in calls(s2_graph(ee_offline, bands=("B4", "B3", "B2")), "Image.select")]
    assert ["B4", "B3", "B2"] in custom


def test_cloud_score_plus_is_off_by_default_and_masks_cs_cdf_at_0_6(ee_offline) -> None:
    assert not calls(s2_graph(ee_offline), "Image.linkCollection")
    g = s2_graph(ee_offline, cloud_score_plus=True)
    (link,) = calls(g, "Image.linkCollection")
    assert link["linkedBands"] == ["cs_cdf"]
    assert "GOOGLE/CLOUD_SCORE_PLUS/V1/S2_HARMONIZED" in [c["id"] for c in calls(g, "ImageCollection.load")]
    assert ["cs_cdf"] in [c["bandSelectors"] for c in calls(g, "Image.select")]
    assert len(calls(g, "Image.gte")) == 1 and 0.6 in [c["value"] for c in calls(g, "Image.constant")]


def landsat_graph(year: int, **cfg: Any) -> Any:
    return session.encode_pretty(composite.landsat_mosaic(year, LandsatConfig(**cfg)))


def test_landsat_uses_collection_2_tier_1_toa_of_the_sensors_that_flew(ee_offline) -> None:
    ids = {c["id"] for c in calls(landsat_graph(2015), "ImageCollection.load")}
    assert ids == {"LANDSAT/LC08/C02/T1_TOA", "LANDSAT/LE07/C02/T1_TOA"}
    ids = {c["id"] for c in calls(landsat_graph(1990), "ImageCollection.load")}
    assert ids == {"LANDSAT/LT05/C02/T1_TOA"}


def test_landsat_year_runs_1_january_to_31_december(ee_offline) -> None:
    spans = {(c["start"], c["end"]) for c in calls(landsat_graph(2015), "DateRange")}
    assert spans == {("2015-01-01", "2016-01-01")}


def test_landsat_masks_qa_pixel_bits_1_3_4(ee_offline) -> None:
    g = landsat_graph(2015)
    assert ["QA_PIXEL"] in [c["bandSelectors"] for c in calls(g, "Image.select")]
    assert {c["value"] for c in calls(g, "Image.constant")} == {(1 << 1) | (1 << 3) | (1 << 4), 0}


def test_landsat_maps_each_sensors_band_names_to_common_ones(ee_offline) -> None:
    renames = {tuple(c["bandSelectors"]): c["newNames"] for c in calls(landsat_graph(2015), "Image.select")
               if "newNames" in c}
    # Landsat 8: B3 green, B4 red, B5 NIR, B6 SWIR1; Landsat 7: B2, B3, B4, B5
    assert renames == {("B3", "B4", "B5", "B6"): ["green", "red", "nir", "swir1"],
                       ("B2", "B3", "B4", "B5"): ["green", "red", "nir", "swir1"]}


def test_landsat_indices_follow_design_section_6(ee_offline) -> None:
    g = landsat_graph(2015)
    pairs = {tuple(c["bandNames"]) for c in calls(g, "Image.normalizedDifference")}
    # MNDWI = (G − SWIR1)/(G + SWIR1), NDVI = (NIR − R)/(NIR + R), NDSI = (SWIR1 − NIR)/(SWIR1 + NIR)
    assert pairs == {("green", "swir1"), ("nir", "red"), ("swir1", "nir")}
    assert {tuple(c["names"]) for c in calls(g, "Image.rename")} == {("mndwi",), ("ndvi",), ("ndsi",)}
    assert ["swir1", "nir", "red"] in [c["bandSelectors"] for c in calls(g, "Image.select")]
    assert calls(g, "reduce.median") and g["functionInvocationValue"]["functionName"] == "Image.toFloat"


def test_landsat_year_without_any_of_the_sensors_is_bad_input(ee_offline) -> None:
    from minescan.errors import InputError

    with pytest.raises(InputError, match="flew in 1995"):
        composite.landsat_mosaic(1995, LandsatConfig(sensors=("LC08",)))


def scene_request(ee: Any) -> tuple[grid.Scene, dict[str, Any], Any]:
    s = grid.scene(121, 146)
    job = exports.image_job(composite.s2_composite(CompositeConfig()), s.id, s.window,
                            ExportConfig(destination="gs://minescan-test/s2/2019"), nodata=0)
    request = dict(job.request)
    # the compound encoding is what goes over the wire; decode it back for reading
    from ee import deserializer

    expression = session.encode_pretty(deserializer.decode(request.pop("expression")))
    return s, request, expression


def test_scene_export_is_a_single_cloud_optimized_uint16_geotiff_in_the_bucket(ee_offline) -> None:
    s, request, _ = scene_request(ee_offline)
    options = request["fileExportOptions"]
    assert options["fileFormat"] == "GEO_TIFF"
    assert options["cloudStorageDestination"] == {"bucket": "minescan-test", "filenamePrefix": f"s2/2019/{s.id}"}
    assert options["geoTiffOptions"]["cloudOptimized"] is True
    assert options["geoTiffOptions"]["noData"] == {"floatValue": 0}
    # one file: the file tile is at least the scene, a multiple of Earth Engine's 256-px shard
    tile = options["geoTiffOptions"]["tileDimensions"]
    assert tile["width"] == tile["height"] == 9472 >= grid.SCENE_PX and 9472 % 256 == 0
    assert int(request["maxPixels"]["value"]) >= grid.SCENE_PX ** 2


def test_scene_export_is_exactly_the_scene_on_the_global_10_m_grid(ee_offline) -> None:
    s, _, expression = scene_request(ee_offline)
    # the pretty form repeats the reprojection (image and the region's projection): all the same
    transforms = {tuple(c["crsTransform"]) for c in calls(expression, "Image.reproject")}
    assert transforms == {s.transform}
    assert s.transform[0] == pytest.approx(10 / 40_075_016.686 * 360)
    assert calls(expression, "Projection")[0]["crs"] == "EPSG:4326"
    # the export region is the scene's pixel rectangle in that projection
    assert len(calls(expression, "Image.clipToBoundsAndScale")) == 1
    rects = [c["coordinates"] for c in calls(expression, "GeometryConstructors.Rectangle")]
    assert [0, 0, grid.SCENE_PX, grid.SCENE_PX] in rects
    assert not calls(expression, "Image.resample")


def test_task_descriptions_are_legal_and_unique_per_destination() -> None:
    a = exports.description("s2", "r0001c0002", "gs://b/x")
    b = exports.description("s2", "r0001c0002", "gs://b/y")
    assert a != b and len(a) <= 100
    assert set(a) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,:;_-")
    assert set(exports.description("chip201", "chips201/mine/anm0001", "gs://b/x")) <= set(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,:;_-")


def test_tfrecord_chips_sample_201_px_arrays_centred_on_the_grid(ee_offline) -> None:
    from ee import deserializer
    from minescan.acquire.plan import plan_chips
    from minescan.points import LabelledPoint

    points = [LabelledPoint("a", -43.9429, -20.0648, "mine", "Minério de Ferro")]
    p = plan_chips(points, CompositeConfig(), ChipConfig(sizes=(201,), file_format="TFRecord"),
                   ExportConfig(destination="gs://b/chips"))
    (job,) = p.jobs
    assert job.request["fileExportOptions"]["fileFormat"] == "TF_RECORD_TABLE"
    expression = session.encode_pretty(deserializer.decode(job.request["expression"]))
    (kernel,) = calls(expression, "Kernel.square")
    assert kernel["radius"] == 100 and kernel["units"] == "pixels"
    (sample,) = calls(expression, "Image.sampleRegions")
    assert sample["properties"] == ["id", "label", "ore", "lon", "lat"]
    assert job.request["selectors"][:12] == list(CompositeConfig().bands)


def test_geotiff_chips_are_201_and_21_px_squares_centred_on_the_point(ee_offline) -> None:
    from ee import deserializer
    from minescan.acquire.plan import plan_chips
    from minescan.points import LabelledPoint

    lon, lat = -43.9429, -20.0648
    p = plan_chips([LabelledPoint("a", lon, lat, "mine")], CompositeConfig(), ChipConfig(),
                   ExportConfig(destination="gs://b/chips"))
    assert [j.object_uri for j in p.jobs] == ["gs://b/chips/chips201/mine/a.tif", "gs://b/chips/chips21/mine/a.tif"]
    for job, size in zip(p.jobs, (201, 21)):
        expression = session.encode_pretty(deserializer.decode(job.request["expression"]))
        assert [0, 0, size, size] in [c["coordinates"] for c in calls(expression, "GeometryConstructors.Rectangle")]
        (transform,) = {tuple(c["crsTransform"]) for c in calls(expression, "Image.reproject")}
        # the point lies in the chip's centre pixel
        col = (lon - transform[2]) / transform[0]
        row = (lat - transform[5]) / transform[4]
        assert (int(row), int(col)) == (size // 2, size // 2)


def test_config_rejects_start_not_before_end() -> None:
    from minescan.acquire.config import validated
    from minescan.errors import InputError

    with pytest.raises(InputError, match="must be before end"):
        validated(CompositeConfig, start=date(2020, 1, 1), end=date(2020, 1, 1))
    with pytest.raises(InputError, match="unknown Sentinel-2 band"):
        validated(CompositeConfig, bands=("B1", "B13"))
    with pytest.raises(InputError, match="gs://bucket"):
        validated(ExportConfig, destination="/tmp/out")
