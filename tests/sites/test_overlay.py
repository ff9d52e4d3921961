"""Protected areas and regions: repaired polygons, hectares counted once, per-area totals."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import shapely
from minescan.sites.layers import LayerSpec
from minescan.sites.national import SitesOptions, build_national, load_inputs
from minescan.sites.registers import RegisterSpec
from shapely.geometry import mapping

from tests.helpers import grid_detections


def write_layer(path, features):
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": geometry if geometry is None or isinstance(geometry, dict) else mapping(geometry),
         "properties": props} for geometry, props in features]}), encoding="utf-8")
    return str(path)


@pytest.fixture()
def sites_and_cells():
    # a 4-cell site, a 1-cell site 20 cells east, one 40 cells south (low impact)
    cells = [(0, 0), (0, 1), (1, 0), (1, 1), (0, 20), {"drow": 40, "dcol": 0, "impact_class": "low",
                                                        "p_high": 0.2, "p_low": 0.7}]
    return grid_detections(cells, lon=-52.0, lat=-7.0)


def test_an_invalid_polygon_is_repaired_and_counted_never_dropped(tmp_path, sites_and_cells, caplog):
    dets, scenes = sites_and_cells
    x, y = dets["lon"].iloc[0], dets["lat"].iloc[0]
    # a bow-tie: self-intersecting, so invalid; each of its two lobes holds one site
    bowtie = {"type": "Polygon", "coordinates": [[[x - 0.01, y - 0.01], [x + 0.1, y + 0.01], [x + 0.1, y - 0.01],
                                                  [x - 0.01, y + 0.01], [x - 0.01, y - 0.01]]]}
    layer = write_layer(tmp_path / "ti.geojson", [(bowtie, {"nome": "TI Borboleta"}), (None, {"nome": "vazia"})])
    inputs = load_inputs(SitesOptions(protected=(LayerSpec(path=layer, type="indigenous territory"),)))
    assert inputs.protected[0].repaired == 1 and inputs.protected[0].empty == 1
    assert "repaired 1 invalid polygon(s), skipped 1 empty" in caplog.text
    national = build_national(dets, scenes, inputs)
    assert national.summary["protected_layers"]["ti"] == {"path": layer, "areas": 1, "repaired_polygons": 1,
                                                          "empty_geometries": 1}
    assert national.sites["protected"].sum() == 2


def test_overlapping_areas_name_both_but_count_hectares_once(tmp_path, sites_and_cells):
    dets, scenes = sites_and_cells
    x, y = dets["lon"].iloc[0], dets["lat"].iloc[0]
    big = shapely.box(x - 0.05, y - 0.05, x + 0.01, y + 0.05)
    half = shapely.box(x - 0.05, y - 0.05, x + 0.0012, y + 0.05)  # cuts the 4-cell site in two
    layer = write_layer(tmp_path / "areas.geojson", [
        (big, {"name": "Parque Grande", "categoria": "conservation unit"}),
        (half, {"name": "TI Metade", "categoria": "indigenous territory"})])
    national = build_national(dets, scenes, load_inputs(SitesOptions(protected=(LayerSpec(path=layer),))))
    site = national.sites.set_index("n_detections").loc[4]
    assert site["protected_names"] == "Parque Grande;TI Metade"
    assert site["protected_types"] == "conservation unit;indigenous territory"
    each = [float(v) for v in site["protected_ha_each"].split(";")]
    assert each[0] == pytest.approx(site["area_ha"], abs=1e-4) and 0 < each[1] < each[0]
    assert site["protected_ha"] == pytest.approx(site["area_ha"], rel=1e-9)  # not the sum of both
    per_site = national.site_areas[national.site_areas["site_id"] == site["site_id"]]
    assert list(per_site["name"]) == ["Parque Grande", "TI Metade"] and per_site["ha"].tolist() == pytest.approx(each, abs=1e-3)


def test_per_area_and_per_region_totals_split_by_impact_and_registration(tmp_path, sites_and_cells):
    dets, scenes = sites_and_cells
    x, y = dets["lon"].iloc[0], dets["lat"].iloc[0]
    territory = write_layer(tmp_path / "ti.geojson", [(shapely.box(x - 0.5, y - 0.5, x + 0.5, y + 0.5),
                                                       {"terrai_nom": "Kayapó"})])
    regions = write_layer(tmp_path / "uf.geojson", [
        (shapely.box(x - 1, y - 0.05, x + 1, y + 1), {"NM_UF": "Pará"}),
        (shapely.box(x - 1, y - 1, x + 1, y - 0.05), {"NM_UF": "Mato Grosso"})])
    register = tmp_path / "reg.csv"
    register.write_text(f"id,name,lon,lat\nR1,Mina,{x},{y}\n", encoding="utf-8")
    inputs = load_inputs(SitesOptions(registers=(RegisterSpec(path=str(register)),),
                                      protected=(LayerSpec(path=territory),), regions=LayerSpec(path=regions)))
    national = build_national(dets, scenes, inputs)
    sites = national.sites
    kayapo = national.protected_areas.iloc[0]
    assert (kayapo["name"], kayapo["type"], kayapo["sites"]) == ("Kayapó", "ti", 3)
    assert (kayapo["sites_high"], kayapo["sites_low"], kayapo["sites_registered"], kayapo["sites_unregistered"]) == (2, 1, 1, 2)
    assert kayapo["ha"] == pytest.approx(sites["area_ha"].sum(), abs=0.01)
    assert kayapo["ha_registered"] == pytest.approx(sites.loc[sites["registered"], "area_ha"].sum(), abs=0.01)
    by_region = national.regions.set_index("name")
    assert by_region.loc["Pará", "sites"] == 2 and by_region.loc["Mato Grosso", "sites"] == 1
    assert by_region.loc["Mato Grosso", "sites_low"] == 1
    assert set(sites["regions"]) == {"Pará", "Mato Grosso"}
    assert national.summary["regions"]["regions_with_sites"] == 2


def test_a_layer_in_another_crs_is_reprojected(tmp_path, sites_and_cells):
    import geopandas as gpd

    dets, scenes = sites_and_cells
    x, y = dets["lon"].iloc[0], dets["lat"].iloc[0]
    frame = gpd.GeoDataFrame({"nome": ["UC"]}, geometry=[shapely.box(x - 0.02, y - 0.02, x + 0.02, y + 0.02)],
                             crs="EPSG:4326").to_crs("EPSG:5880")  # SIRGAS 2000 / Brazil Polyconic
    frame.to_file(tmp_path / "uc.gpkg")
    national = build_national(dets, scenes, load_inputs(SitesOptions(protected=(LayerSpec(path=str(tmp_path / "uc.gpkg")),))))
    site = national.sites.set_index("n_detections").loc[4]
    assert site["protected_names"] == "UC" and site["protected_ha"] == pytest.approx(site["area_ha"], rel=1e-6)
    assert pd.isna(national.sites.set_index("n_detections").loc[1, "protected_names"]).all()
