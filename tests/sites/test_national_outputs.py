"""The national files: footprints in GeoParquet/GeoJSON/KML, the register and area tables."""

from __future__ import annotations

import json
import shutil

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely
from minescan.outputs import NATIONAL_FILES, SITE_COLUMNS, SITE_FILES, write_national
from minescan.outputs.report import CHROMIUM_NAMES
from minescan.sites.national import SitesOptions, build_national, load_inputs
from minescan.sites.registers import RegisterSpec

from tests.helpers import grid_detections


@pytest.fixture()
def written(tmp_path):
    ring = [(r, c) for r in range(3) for c in range(3) if (r, c) != (1, 1)]
    dets, scenes = grid_detections(ring + [(20, 20), (20, 21)], lon=-50.0, lat=-8.0)
    far = dets.iloc[-1]
    register = tmp_path / "reg.csv"
    # A is on the two-cell site; B lies in the scene where nothing was detected; C outside it
    register.write_text(f"id,name,lon,lat\nA,Mina A,{far['lon']},{far['lat']}\n"
                        f"B,Mina B,{far['lon'] + 0.1},{far['lat']}\nC,Mina C,-40.0,-20.0\n", encoding="utf-8")
    national = build_national(dets, scenes, load_inputs(SitesOptions(registers=(RegisterSpec(path=str(register)),))))
    paths = write_national(tmp_path / "national", national, title="t", summary={"run": "r"})
    return national, paths


def test_every_national_file_is_written(written):
    _, paths = written
    # beside the tables: the report (and its PDF where Chromium prints it) and the STAC catalog
    printed = {"report_pdf"} if any(shutil.which(name) for name in CHROMIUM_NAMES) else set()
    assert set(paths) == set(SITE_FILES) | set(NATIONAL_FILES) | {"report", "stac"} | printed
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths.values())


def test_sites_geoparquet_holds_the_footprint_polygons_and_the_schema(written):
    national, paths = written
    frame = gpd.read_parquet(paths["parquet"])
    assert list(frame.columns[: len(SITE_COLUMNS)]) == list(SITE_COLUMNS) and frame.crs.to_epsg() == 4326
    holed = frame.set_index("n_detections").loc[8].geometry
    assert holed.geom_type == "Polygon" and len(holed.interiors) == 1
    assert holed.equals(national.sites.set_index("n_detections").loc[8].geometry)
    import pyarrow.parquet as pq

    geo = json.loads(pq.read_schema(paths["parquet"]).metadata[b"geo"])
    assert geo["version"] == "1.1.0" and "Polygon" in geo["columns"]["geometry"]["geometry_types"]


def test_sites_geojson_and_kml_carry_polygons_that_gdal_reads(written):
    national, paths = written
    doc = json.loads(paths["geojson"].read_text("utf-8"))
    assert {f["geometry"]["type"] for f in doc["features"]} == {"Polygon"}
    exterior = doc["features"][0]["geometry"]["coordinates"][0]
    assert shapely.is_ccw(shapely.LinearRing(exterior))  # RFC 7946: exteriors counter-clockwise
    read = pyogrio.read_dataframe(paths["geojson"])
    assert sorted(read["site_id"]) == sorted(national.sites["site_id"])
    layers = {name: pyogrio.read_dataframe(paths["kml"], layer=name) for name in pyogrio.list_layers(paths["kml"])[:, 0]}
    placemarks = pd.concat(layers.values(), ignore_index=True)
    assert sorted(placemarks["site_id"]) == sorted(national.sites["site_id"])
    assert set(placemarks["registered"].astype(str).str.lower()) == {"true", "false"}
    kml = paths["kml"].read_text("utf-8")
    assert kml.count("<Polygon>") == len(national.sites) and "<BalloonStyle>" in kml and "$[attributes/register_name]" in kml


def test_register_and_area_tables_are_written(written):
    national, paths = written
    unmatched = pd.read_csv(paths["register_unmatched_csv"])
    assert list(unmatched["entry_id"]) == ["B", "C"] and unmatched["scanned"].tolist() == [True, False]
    assert gpd.read_parquet(paths["register_unmatched"]).geometry.iloc[1].x == pytest.approx(-40.0)
    csv = pd.read_csv(paths["csv"])
    assert "geometry" not in csv.columns and csv["registered"].sum() == 1
    assert national.summary["register_entries_not_detected_in_scanned_area"] == 1
    assert pd.read_csv(paths["site_areas"]).empty and pd.read_csv(paths["protected_areas"]).empty
