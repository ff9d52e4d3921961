"""Output writers, each format read back with the reader its users will use."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from affine import Affine
from minescan.errors import InputError
from minescan.models.networks import IMPACT_CLASSES
from minescan.outputs import (
    DETECTION_COLUMNS,
    IMPACT_RGB,
    SITE_COLUMNS,
    SITE_FILES,
    atomic_dir,
    atomic_path,
    coerce_detections,
    empty_detections,
    empty_sites,
    read_detections,
    read_probability_zarr,
    write_detections_csv,
    write_detections_geoparquet,
    write_detections_kml,
    write_probability_zarr,
    write_sites,
)

KML_NS = {"k": "http://www.opengis.net/kml/2.2"}
# 270 m cells (the discovery network's 27-px stride at 10 m), UTM 23S over Minas Gerais
CELL_TRANSFORM = Affine(270.0, 0.0, 600_000.0, 0.0, -270.0, 7_800_000.0)
UTM = {"cell_transform": CELL_TRANSFORM, "crs": "EPSG:32723", "attrs": {}}


def detections(n: int = 7, seed: int = 0) -> pd.DataFrame:
    """A detections table as the map step builds it, with one kept-and-flagged `no_ore` row."""
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet([1, 1, 1], size=n).astype(np.float32)
    impact = np.array(IMPACT_CLASSES)[probs.argmax(axis=1)]
    cell_row, cell_col = rng.integers(0, 300, n), rng.integers(0, 300, n)
    global_row = pd.array([int(r) + 1000 if i % 3 else None for i, r in enumerate(cell_row)], dtype="Int64")
    return pd.DataFrame(
        {
            "scene_id": ["23KPS_São_Félix"] * (n - 1) + ["23KPT"],
            "cell_row": cell_row,
            "cell_col": cell_col,
            "pixel_row": 27 * cell_row + 100,
            "pixel_col": 27 * cell_col + 100,
            "lon": rng.uniform(-44.5, -43.5, n),
            "lat": rng.uniform(-20.5, -19.5, n),
            "p_mine": rng.uniform(0.6, 1.0, n).astype(np.float32),
            "impact_class": impact,
            "p_high": probs[:, 0],
            "p_low": probs[:, 1],
            "p_no_ore": probs[:, 2],
            "kept": impact != "no_ore",
            "model_version": "discovery-v3@sha256:ab12+impact-v2@sha256:cd34",
            "global_row": global_row,
            "global_col": global_row,
        }
    )


def sites(n: int = 5, seed: int = 1) -> pd.DataFrame:
    """A sites table as the reduce builds it (points only), plus one extra column to pass through."""
    rng = np.random.default_rng(seed)
    lon, lat = rng.uniform(-48, -43, n), rng.uniform(-21, -15, n)
    probs = rng.dirichlet([1, 1, 1], size=n).astype(np.float32)
    p_max = rng.uniform(0.6, 1.0, n).astype(np.float32)
    registered = np.array([True, False] * (n // 2) + [False] * (n % 2))
    text = lambda values: pd.array(values, dtype="string")  # noqa: E731
    return pd.DataFrame(
        {
            "site_id": [f"MG-{i:04d}" for i in range(n - 1)] + ["A&B<tailings>"],
            "lon": lon,
            "lat": lat,
            "n_detections": rng.integers(1, 40, n),
            "p_mine_max": p_max,
            "p_mine_mean": p_max - np.float32(0.05),
            "p_high": probs[:, 0],
            "p_low": probs[:, 1],
            "p_no_ore": probs[:, 2],
            "impact_class": np.array(IMPACT_CLASSES)[probs.argmax(axis=1)],
            "area_ha": rng.uniform(7, 300.0, n),
            "perimeter_m": rng.uniform(1000, 9000.0, n),
            "scenes": ["23KPS;23KPT"] + ["23KPS"] * (n - 1),
            "registered": registered,
            "register_source": text(np.where(registered, "anm_barragens", None)),
            "register_id": text(np.where(registered, "anm0042", None)),
            "register_name": text(np.where(registered, "Barragem B1", None)),
            "register_ore": text(np.where(registered, "Minério de Ferro", None)),
            "register_impact": text(np.where(registered, "high", None)),
            "register_risk": text(np.where(registered, "Baixa", None)),
            "register_damage": text(np.where(registered, "Alta", None)),
            "register_height_m": pd.array(np.where(registered, 31.5, None), dtype="Float64"),
            "register_volume_m3": pd.array(np.where(registered, 2.56e6, None), dtype="Float64"),
            "register_distance_m": pd.array(np.where(registered, 120.0, None), dtype="Float64"),
            "protected": [False] * (n - 1) + [True],
            "protected_names": text([None] * (n - 1) + ["Kayapó"]),
            "protected_types": text([None] * (n - 1) + ["indigenous territory"]),
            "protected_ha": [0.0] * (n - 1) + [12.5],
            "protected_ha_each": text([None] * (n - 1) + ["12.50"]),
            "regions": text(["MG"] * n),
            "review": text(["confirmed"] + [None] * (n - 1)),
            "review_note": text(["seen on 2020 imagery"] + [None] * (n - 1)),
            "analyst": ["ana"] * n,
        }
    )


def kml_layers(path: Path) -> dict[str, pd.DataFrame]:
    import pyogrio

    return {name: pyogrio.read_dataframe(path, layer=name) for name in pyogrio.list_layers(path)[:, 0]}


def only_files(directory: Path) -> set[str]:
    """Names in `directory`: any left-over temp file of an atomic write would show up here."""
    return {p.name for p in directory.iterdir()}


# --- probability.zarr --------------------------------------------------------------------


def probability_grid(rows: int = 9, cols: int = 13, seed: int = 2) -> np.ndarray:
    grid = np.random.default_rng(seed).random((rows, cols), dtype=np.float32)
    grid[0, :3] = np.nan  # nodata cells at the scene's clipped corner
    return grid


def test_probability_zarr_is_v3_and_xarray_reads_values_coords_and_crs(tmp_path):
    import pyproj
    import xarray as xr
    import zarr

    grid = probability_grid()
    path = tmp_path / "scenes" / "23KPS" / "probability.zarr"
    attrs = {"scene_id": "23KPS", "models": {"discovery": "discovery-v3", "impact": "impact-v2"}}
    write_probability_zarr(path, grid, cell_transform=CELL_TRANSFORM, crs="EPSG:32723", attrs=attrs)

    assert zarr.open_group(path, mode="r").metadata.zarr_format == 3
    ds = xr.open_zarr(path)
    np.testing.assert_array_equal(ds["p_mine"].values, grid)  # NaN where NaN
    assert ds["p_mine"].dtype == np.float32 and ds["p_mine"].dims == ("y", "x")
    rows, cols = grid.shape
    centre_x = [(CELL_TRANSFORM @ (col + 0.5, 0.5))[0] for col in range(cols)]
    centre_y = [(CELL_TRANSFORM @ (0.5, row + 0.5))[1] for row in range(rows)]
    np.testing.assert_allclose(ds["x"].values, centre_x, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ds["y"].values, centre_y, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(ds["cell_row"].values, np.arange(rows))
    np.testing.assert_array_equal(ds["cell_col"].values, np.arange(cols))
    assert ds["cell_row"].dims == ("y",) and ds["cell_col"].dims == ("x",)

    assert ds["p_mine"].attrs["grid_mapping"] == "spatial_ref"
    ref = ds["spatial_ref"].attrs
    assert pyproj.CRS.from_wkt(ref["crs_wkt"]) == pyproj.CRS.from_epsg(32723)
    assert ref["spatial_ref"] == ref["crs_wkt"]
    assert pyproj.CRS.from_cf(ref) == pyproj.CRS.from_epsg(32723)
    assert [float(v) for v in ref["GeoTransform"].split()] == [600000.0, 270.0, 0.0, 7800000.0, 0.0, -270.0]
    assert pyproj.CRS.from_user_input(ds.attrs["crs"]) == pyproj.CRS.from_epsg(32723)
    assert ds.attrs["transform"] == [270.0, 0.0, 600000.0, 0.0, -270.0, 7800000.0]
    assert ds.attrs["scene_id"] == "23KPS" and ds.attrs["models"] == attrs["models"]


def test_read_probability_zarr_returns_grid_transform_crs_and_attrs(tmp_path):
    import pyproj

    grid = probability_grid()
    path = tmp_path / "probability.zarr"
    attrs = {"scene_id": "23KPS", "threshold": 0.6, "global_offset": None, "scene_transform": [10.0, 0, 6e5]}
    wkt = pyproj.CRS.from_epsg(32723).to_wkt()  # what a GeoTIFF's CRS gives the map step
    write_probability_zarr(path, grid, cell_transform=CELL_TRANSFORM, crs=wkt, attrs=attrs)

    p_mine, transform, crs, read_attrs = read_probability_zarr(path)

    np.testing.assert_array_equal(p_mine, grid)
    assert p_mine.dtype == np.float32
    assert transform == CELL_TRANSFORM
    assert crs == "EPSG:32723"
    assert read_attrs == attrs


def test_probability_zarr_in_geographic_crs_labels_lon_lat_axes(tmp_path):
    import xarray as xr

    transform = Affine(0.0025, 0.0, -44.5, 0.0, -0.0025, -19.5)
    path = tmp_path / "probability.zarr"
    write_probability_zarr(path, probability_grid(4, 5), cell_transform=transform, crs="EPSG:4326", attrs={})

    ds = xr.open_zarr(path)
    assert ds["x"].attrs["standard_name"] == "longitude"
    assert ds["y"].attrs["standard_name"] == "latitude"
    assert ds["x"].values[0] == pytest.approx(-44.5 + 0.00125)


def test_probability_zarr_chunks_are_at_most_512_cells(tmp_path):
    import zarr

    path = tmp_path / "probability.zarr"
    write_probability_zarr(path, probability_grid(600, 3), **UTM)

    assert zarr.open_group(path, mode="r")["p_mine"].chunks == (512, 3)


def test_probability_zarr_rewrite_replaces_the_store_and_leaves_no_temp(tmp_path):
    path = tmp_path / "probability.zarr"
    write_probability_zarr(path, probability_grid(seed=1), **UTM)
    second = probability_grid(seed=5)
    write_probability_zarr(path, second, cell_transform=CELL_TRANSFORM, crs="EPSG:32723", attrs={"run": 2})

    p_mine, _, _, attrs = read_probability_zarr(path)
    np.testing.assert_array_equal(p_mine, second)
    assert attrs == {"run": 2}
    assert only_files(tmp_path) == {"probability.zarr"}


@pytest.mark.parametrize(
    ("grid", "transform", "crs", "attrs", "message"),
    [
        (probability_grid(), Affine(270, 10, 0, 0, -270, 0), "EPSG:32723", {}, "rotated"),
        (probability_grid() + 1.5, CELL_TRANSFORM, "EPSG:32723", {}, "outside"),
        (probability_grid()[0], CELL_TRANSFORM, "EPSG:32723", {}, "2-D"),
        (probability_grid(), CELL_TRANSFORM, "EPSG:32723", {"crs": "EPSG:4326"}, "may not set"),
        (probability_grid(), CELL_TRANSFORM, "EPSG:32723", {"when": object()}, "JSON"),
        (probability_grid(), CELL_TRANSFORM, "EPSG:999999", {}, "not a CRS"),
    ],
)
def test_probability_zarr_rejects_bad_input_and_writes_nothing(
    tmp_path, grid, transform, crs, attrs, message
):
    with pytest.raises(InputError, match=message):
        write_probability_zarr(tmp_path / "p.zarr", grid, cell_transform=transform, crs=crs, attrs=attrs)
    assert only_files(tmp_path) == set()


# --- detections --------------------------------------------------------------------------


def test_detections_geoparquet_is_geoparquet_1_1_points_with_covering_bbox(tmp_path):
    import geopandas as gpd
    import pyarrow.parquet as pq

    df = detections()
    path = tmp_path / "scenes" / "23KPS" / "detections.parquet"
    write_detections_geoparquet(path, df)

    gdf = gpd.read_parquet(path)
    assert gdf.crs.to_epsg() == 4326
    assert (gdf.geometry.geom_type == "Point").all()
    np.testing.assert_array_equal(gdf.geometry.x, df["lon"])
    np.testing.assert_array_equal(gdf.geometry.y, df["lat"])
    geo = json.loads(pq.read_schema(path).metadata[b"geo"])
    assert geo["version"] == "1.1.0"
    column = geo["columns"][geo["primary_column"]]
    assert column["encoding"] == "WKB" and column["geometry_types"] == ["Point"]
    assert column["covering"]["bbox"]["xmin"] == ["bbox", "xmin"]
    bbox = pq.read_table(path, columns=["bbox"]).column("bbox").combine_chunks()
    np.testing.assert_array_equal(bbox.field("xmin").to_numpy(), df["lon"])


def test_read_detections_round_trips_schema_dtypes_and_nulls(tmp_path):
    df = detections()
    path = tmp_path / "detections.parquet"
    write_detections_geoparquet(path, df)

    back = read_detections(path)

    assert {name: str(back[name].dtype) for name in DETECTION_COLUMNS} == {
        name: str(pd.Series([], dtype=dtype).dtype) for name, dtype in DETECTION_COLUMNS.items()
    }
    pd.testing.assert_frame_equal(back, coerce_detections(df))
    assert back["global_row"].isna().sum() == df["global_row"].isna().sum() > 0
    assert list(back["kept"]) == list(df["impact_class"] != "no_ore")


def test_empty_detections_write_every_format_with_the_schema(tmp_path):
    import geopandas as gpd

    empty = empty_detections()
    write_detections_geoparquet(tmp_path / "d.parquet", empty)
    write_detections_csv(tmp_path / "d.csv", empty)
    write_detections_kml(tmp_path / "d.kml", empty, name="no mines here")

    gdf = gpd.read_parquet(tmp_path / "d.parquet")
    assert len(gdf) == 0 and gdf.crs.to_epsg() == 4326
    back = read_detections(tmp_path / "d.parquet")
    assert len(back) == 0 and list(back.columns) == list(DETECTION_COLUMNS)
    assert back["global_row"].dtype == "Int64" and back["cell_row"].dtype == np.int32
    assert list(pd.read_csv(tmp_path / "d.csv").columns) == list(DETECTION_COLUMNS)
    layers = kml_layers(tmp_path / "d.kml")
    assert list(layers) == list(IMPACT_CLASSES)
    assert all(len(layer) == 0 for layer in layers.values())


def test_detections_csv_reads_back_with_pandas_as_utf8_without_geometry(tmp_path):
    df = detections()
    path = tmp_path / "detections.csv"
    write_detections_csv(path, df)

    back = pd.read_csv(path, encoding="utf-8")
    assert list(back.columns) == list(DETECTION_COLUMNS)
    assert back["scene_id"].iloc[0] == "23KPS_São_Félix"
    np.testing.assert_array_equal(back["lon"], df["lon"])
    np.testing.assert_array_equal(back["lat"], df["lat"])
    np.testing.assert_array_equal(back["p_mine"].astype(np.float32), df["p_mine"])
    assert back["global_row"].isna().sum() == df["global_row"].isna().sum()


def test_detections_kml_has_a_placemark_per_detection_in_its_impact_folder(tmp_path):
    df = detections(n=9)
    path = tmp_path / "detections.kml"
    write_detections_kml(path, df, name="scene 23KPS")

    layers = kml_layers(path)
    assert list(layers) == list(IMPACT_CLASSES)
    assert sum(len(layer) for layer in layers.values()) == len(df)
    for cls, layer in layers.items():
        expected = df[df["impact_class"] == cls].reset_index(drop=True)
        assert len(layer) == len(expected)
        np.testing.assert_allclose(layer.geometry.x, expected["lon"], rtol=0, atol=1e-7)
        np.testing.assert_allclose(layer.geometry.y, expected["lat"], rtol=0, atol=1e-7)
        # ExtendedData carries the row, so GIS users get the attributes as columns
        np.testing.assert_allclose(layer["p_mine"], expected["p_mine"], atol=1e-6)
        assert all("p(mine)" in text and "scene" in text for text in layer["description"])
    flagged = layers["no_ore"]["Name"]
    assert len(flagged) > 0 and all(name.endswith("(flagged)") for name in flagged)


def test_kml_placemarks_are_coloured_by_impact_class(tmp_path):
    path = tmp_path / "detections.kml"
    write_detections_kml(path, detections(n=9), name="scene")

    root = ET.parse(path).getroot()
    colours = {
        style.get("id"): style.find("k:IconStyle/k:color", KML_NS).text
        for style in root.iter(f"{{{KML_NS['k']}}}Style")
    }
    for folder in root.iter(f"{{{KML_NS['k']}}}Folder"):
        r, g, b = IMPACT_RGB[folder.find("k:name", KML_NS).text]
        for placemark in folder.findall("k:Placemark", KML_NS):
            style_id = placemark.find("k:styleUrl", KML_NS).text.lstrip("#")
            assert colours[style_id] == f"ff{b:02x}{g:02x}{r:02x}"  # KML is aabbggrr
    assert IMPACT_RGB["high"][0] > 200 > IMPACT_RGB["high"][1]  # red
    assert min(IMPACT_RGB["low"][:2]) > 150 > IMPACT_RGB["low"][2]  # yellow
    assert len(set(IMPACT_RGB["no_ore"])) == 1  # grey


def kml_schema():
    """The OGC KML 2.2 schema (with its atom and xAL imports) as pykml ships it."""
    import importlib.resources

    from lxml import etree

    xsd = importlib.resources.files("pykml") / "schemas" / "ogckml22.xsd"
    return etree.XMLSchema(etree.parse(str(xsd)))


def test_kml_validates_against_the_ogc_kml_2_2_schema(tmp_path):
    from lxml import etree

    schema = kml_schema()
    write_detections_kml(tmp_path / "d.kml", detections(n=9), name="scene <23KPS> & more")
    paths = write_sites(tmp_path / "national", sites(), title="Minas Gerais", summary={})
    for path in (tmp_path / "d.kml", paths["kml"]):
        doc = etree.parse(str(path))
        assert schema.validate(doc), schema.error_log


def test_kml_extended_data_is_typed_so_gdal_reads_numbers_as_numbers(tmp_path):
    path = tmp_path / "detections.kml"
    write_detections_kml(path, detections(n=12), name="scene")

    layer = pd.concat(kml_layers(path).values(), ignore_index=True)
    assert layer["p_mine"].dtype.kind == "f" and layer["lon"].dtype.kind == "f"
    assert layer["cell_row"].dtype.kind == "i" and layer["kept"].dtype == bool
    assert layer["scene_id"].dtype.kind in "OU" or str(layer["scene_id"].dtype) == "str"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda df: df.drop(columns="lon"), "lacks columns"),
        (lambda df: df.assign(impact_class="gold"), "impact_class"),
        (lambda df: df.assign(cell_row=np.where(df.index == 0, np.nan, df.cell_row)), "'cell_row' has missing"),
        (lambda df: df.assign(kept=np.where(df.index == 0, None, df["kept"])), "'kept' has missing"),
        (lambda df: df.assign(p_mine="high"), "'p_mine' cannot be float32"),
    ],
)
def test_detection_writers_reject_a_table_off_schema(tmp_path, change, message):
    with pytest.raises(InputError, match=message):
        write_detections_geoparquet(tmp_path / "d.parquet", change(detections()))
    assert only_files(tmp_path) == set()


def test_detections_geoparquet_rebuilds_geometry_from_lon_lat(tmp_path):
    import geopandas as gpd

    df = detections()
    stale = gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df["lon"] + 1, df["lat"]), crs="EPSG:4326")
    write_detections_geoparquet(tmp_path / "d.parquet", stale)

    np.testing.assert_array_equal(gpd.read_parquet(tmp_path / "d.parquet").geometry.x, df["lon"])


def test_readers_say_which_file_is_missing(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_detections(tmp_path / "detections.parquet")
    with pytest.raises(InputError, match="does not exist"):
        read_probability_zarr(tmp_path / "probability.zarr")


def test_read_detections_rejects_plain_parquet(tmp_path):
    path = tmp_path / "plain.parquet"
    detections().to_parquet(path)
    with pytest.raises(InputError, match="GeoParquet"):
        read_detections(path)


# --- sites ----------------------------------------------------------------------------------


def test_write_sites_writes_every_output_and_nothing_else(tmp_path):
    out = tmp_path / "run" / "national"
    paths = write_sites(out, sites(), title="Minas Gerais", summary={"run": "r1"})

    assert set(paths) == set(SITE_FILES)
    assert {p.name for p in paths.values()} == set(SITE_FILES.values())
    assert all(p.parent == out and p.stat().st_size > 0 for p in paths.values())
    assert only_files(out) == set(SITE_FILES.values())


def test_sites_geoparquet_has_points_schema_and_extra_columns(tmp_path):
    import geopandas as gpd
    import pyarrow.parquet as pq

    df = sites()
    paths = write_sites(tmp_path, df, title="t", summary={})

    gdf = gpd.read_parquet(paths["parquet"])
    assert gdf.crs.to_epsg() == 4326
    np.testing.assert_array_equal(gdf.geometry.x, df["lon"])
    np.testing.assert_array_equal(gdf.geometry.y, df["lat"])
    assert list(gdf.columns[: len(SITE_COLUMNS)]) == list(SITE_COLUMNS)
    assert list(gdf["registered"]) == list(df["registered"]) and list(gdf["analyst"]) == ["ana"] * len(df)
    assert gdf["register_height_m"].isna().tolist() == (~df["registered"]).tolist()
    assert gdf["p_mine_max"].dtype == np.float32 and gdf["n_detections"].dtype == np.int64
    geo = json.loads(pq.read_schema(paths["parquet"]).metadata[b"geo"])
    assert geo["version"] == "1.1.0" and "covering" in geo["columns"]["geometry"]


def test_sites_geojson_is_rfc7946_and_gdal_reads_it(tmp_path):
    import pyogrio

    df = sites()
    paths = write_sites(tmp_path, df, title="t", summary={})

    doc = json.loads(paths["geojson"].read_text(encoding="utf-8"))
    assert doc["type"] == "FeatureCollection" and "crs" not in doc
    first = doc["features"][0]
    assert first["geometry"]["coordinates"] == [df["lon"][0], df["lat"][0]]  # lon, lat order
    assert first["properties"]["p_mine_max"] == float(str(df["p_mine_max"][0]))  # float32's own text
    gdf = pyogrio.read_dataframe(paths["geojson"])
    assert list(gdf["site_id"]) == list(df["site_id"])
    np.testing.assert_allclose(gdf.geometry.x, df["lon"], rtol=0, atol=1e-7)
    np.testing.assert_allclose(gdf.geometry.y, df["lat"], rtol=0, atol=1e-7)
    assert gdf.crs.to_epsg() == 4326


def test_sites_kml_and_csv_read_back(tmp_path):
    df = sites()
    paths = write_sites(tmp_path, df, title="t", summary={})

    layers = kml_layers(paths["kml"])
    placemarks = pd.concat(layers.values(), ignore_index=True)
    assert sorted(placemarks["Name"]) == sorted(df["site_id"])
    assert sorted(placemarks["site_id"]) == sorted(df["site_id"])  # ExtendedData, escaped right
    by_name = placemarks.set_index("Name").loc[df["site_id"]]
    np.testing.assert_allclose(by_name.geometry.x, df["lon"], rtol=0, atol=1e-7)
    np.testing.assert_allclose(by_name.geometry.y, df["lat"], rtol=0, atol=1e-7)
    csv = pd.read_csv(paths["csv"])
    assert list(csv["site_id"]) == list(df["site_id"])
    np.testing.assert_array_equal(csv["lat"], df["lat"])


def test_summary_md_counts_classes_and_ranks_sites_by_the_stated_rule(tmp_path):
    df = sites(n=8)
    text = write_sites(
        tmp_path, df, title="MG", summary={"run_id": "r-42", "models": {"d": "v3"}}, warnings=("SYNTHETIC: demo",)
    )["summary"].read_text("utf-8")

    assert text.index("SYNTHETIC: demo") < text.index("## Sites per impact class")
    for cls in IMPACT_CLASSES:
        of_class = df[df["impact_class"] == cls]
        assert f"| {cls} | {len(of_class)} | {of_class['n_detections'].sum()} |" in text
    shown = {site_id: site_id for site_id in df["site_id"]} | {"A&B<tailings>": "A&B\\<tailings\\>"}
    # unregistered first, then on protected land, then high impact, then larger area, then p(mine) mean
    order = df.assign(
        unreg=~df["registered"], impact=df["impact_class"].map({"high": 0, "low": 1, "no_ore": 2})
    ).sort_values(["unreg", "protected", "impact", "area_ha", "p_mine_mean"],
                  ascending=[False, False, True, False, False])
    positions = [text.index(f"| {shown[site_id]} |") for site_id in order["site_id"]]
    assert positions == sorted(positions)
    assert "not in any register before registered" in text
    assert "**run_id**: r-42" in text and '"d": "v3"' in text


def test_write_sites_with_no_sites_writes_readable_empty_outputs(tmp_path):
    import geopandas as gpd
    import pyogrio

    paths = write_sites(tmp_path, empty_sites(), title="nothing found", summary={})

    assert len(gpd.read_parquet(paths["parquet"])) == 0
    assert json.loads(paths["geojson"].read_text("utf-8"))["features"] == []
    assert len(pyogrio.read_dataframe(paths["geojson"])) == 0
    assert all(len(layer) == 0 for layer in kml_layers(paths["kml"]).values())
    assert len(pd.read_csv(paths["csv"])) == 0
    assert "0 sites from 0 detections" in paths["summary"].read_text("utf-8")


def test_write_sites_rejects_repeated_site_ids(tmp_path):
    df = sites()
    df.loc[1, "site_id"] = df.loc[0, "site_id"]
    with pytest.raises(InputError, match="repeats site_id"):
        write_sites(tmp_path, df, title="t", summary={})


# --- atomic writes ---------------------------------------------------------------------------


def test_atomic_path_keeps_the_old_file_when_a_write_fails(tmp_path):
    target = tmp_path / "detections.csv"
    target.write_text("old", encoding="utf-8")

    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half a fi", encoding="utf-8")
        raise RuntimeError("crash mid-write")

    assert target.read_text(encoding="utf-8") == "old"
    assert only_files(tmp_path) == {"detections.csv"}


def test_atomic_dir_keeps_the_old_store_when_a_write_fails(tmp_path):
    target = tmp_path / "probability.zarr"
    write_probability_zarr(target, probability_grid(), **UTM)

    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "zarr.json").parent.mkdir()
        (tmp / "zarr.json").write_text("{", encoding="utf-8")
        raise RuntimeError("crash mid-write")

    np.testing.assert_array_equal(read_probability_zarr(target)[0], probability_grid())
    assert only_files(tmp_path) == {"probability.zarr"}


def test_kml_bytes_are_the_same_when_written_twice_in_one_process(tmp_path):
    df = detections(5)
    write_detections_kml(tmp_path / "a.kml", df, name="x")
    write_detections_kml(tmp_path / "b.kml", df, name="x")
    assert (tmp_path / "a.kml").read_bytes() == (tmp_path / "b.kml").read_bytes()
