"""Registers and protected land: the real ANM register and indigenous territories, and bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import shapely
from minescan.batch.bench_reduce import write_run
from minescan.errors import EXIT_BAD_INPUT, InputError
from minescan.sites.footprints import national_cells
from minescan.sites.layers import LayerSpec
from minescan.sites.national import SitesOptions, build_national, load_inputs
from minescan.sites.registers import RegisterSpec, parse_number, read_register
from pyproj import Geod

from tests.helpers import DATA, grid_detections, run_cli

WGS84 = Geod(ellps="WGS84")


def detections_at(points, shape=((0, 0),)):
    """One site per (lon, lat): the national cell holding the point plus `shape` offsets."""
    from minescan.batch.grid import OWNED_CELL_OFFSET, S2_GRID
    from minescan.scan.geometry import n_cells

    frames, scenes = [], {}
    middle = n_cells(S2_GRID.size_px) // 2
    for lon, lat in points:
        row, col = (int(v[0]) for v in national_cells([lon], [lat]))
        rc = ((row - OWNED_CELL_OFFSET) * 27 // S2_GRID.step_px, (col - OWNED_CELL_OFFSET) * 27 // S2_GRID.step_px)
        r_off, c_off = rc[0] * S2_GRID.step_px // 27, rc[1] * S2_GRID.step_px // 27
        cells = [(row - r_off - middle + dr, col - c_off - middle + dc) for dr, dc in shape]
        dets, grid = grid_detections(cells, scene_rc=rc)
        frames.append(dets)
        scenes.update(grid)
    return pd.concat(frames, ignore_index=True), scenes


# --- parsing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "value"), [("27.700.000,00", 27_700_000.0), ("10,3", 10.3), ("5", 5.0),
                                             ("48.873,00", 48_873.0), ("", None), ("108.444.833,89", 108_444_833.89)])
def test_brazilian_numbers(text, value):
    assert parse_number(text, brazilian=True) == value


def test_plain_and_mixed_numbers_of_other_registers():
    assert parse_number("1,234.5", brazilian=False) == 1234.5
    assert parse_number("1.234,5", brazilian=False) == 1234.5
    assert parse_number("12,5", brazilian=False) == 12.5
    with pytest.raises(ValueError, match="not a number"):
        parse_number("n/a", brazilian=False)


def test_the_real_anm_register_reads_whole_with_dms_portuguese_numbers_and_ores(shared_dir):
    register = read_register(RegisterSpec(path=str(shared_dir / "data" / "anm_barragens_mineracao_2019.tsv")))
    entries = register.entries
    assert register.kind == "anm" and len(entries) == 769 and register.skipped == ()
    assert register.match_m == 500.0 and register.source == "anm_barragens_mineracao_2019"
    first = entries.iloc[0]
    assert (first["entry_id"], first["name"], first["ore"]) == ("anm0001", "0-1", "Minério de Estanho Primário")
    assert first["height_m"] == 22.0 and first["volume_m3"] == 27_700_000.0
    assert first.geometry.y == pytest.approx(-(44 / 60 + 0.1 / 3600)) and first.geometry.x < -60
    sossego = entries[entries["name"] == "BARRAGEM DO SOSSEGO"].iloc[0]
    assert sossego["height_m"] == 42.1 and sossego["volume_m3"] == 108_444_833.89
    assert (sossego["ore"], sossego["impact"], sossego["risk"], sossego["damage"]) == (
        "Minério de Cobre", "high", "Baixa", "Alta")
    assert set(entries.loc[entries["ore"] == "Areia", "impact"]) == {"low"}
    north = entries[entries.geometry.y > 0]
    assert len(north) == 9  # the nine dams "Norte do Equador"
    assert entries["impact"].isna().sum() > 0  # ores the paper's table does not know stay unknown


def test_a_register_row_with_an_unreadable_coordinate_is_named_skipped_and_counted(tmp_path, caplog):
    lines = (DATA / "anm_barragens_sample.tsv").read_bytes().split(b"\r\n")
    fields = lines[2].split(b"\t")
    fields[2] = "-19°58'xx\"".encode()  # LATITUDE of the second dam
    lines[2] = b"\t".join(fields)
    bad = tmp_path / "anm_bad.tsv"
    bad.write_bytes(b"\r\n".join(lines))
    register = read_register(RegisterSpec(path=str(bad)))
    assert len(register.entries) == 5 and len(register.skipped) == 1
    assert f"{bad}:3" in register.skipped[0] and "103 (Cruz)" in register.skipped[0]
    assert "skipped 1 row" in caplog.text


# --- the real register and the real indigenous territories -----------------------------------


@pytest.fixture(scope="module")
def real_inputs(shared_dir):
    return load_inputs(SitesOptions(
        registers=(RegisterSpec(path=str(shared_dir / "data" / "anm_barragens_mineracao_2019.tsv")),),
        protected=(LayerSpec(path=str(shared_dir / "data" / "amw" / "indigenous_territories_impacts.geojson"),
                             type="indigenous territory"),),
    ))


def test_sites_at_near_and_far_from_real_register_dams_and_in_real_territories(real_inputs):
    entries = real_inputs.registers[0].entries.set_index("entry_id")
    territories = real_inputs.protected[0].frame.set_index("name")
    b1 = entries.loc["anm0084"].geometry  # Barragem B1, Brumadinho (its B2 lies 200 m away)
    gelado = entries.loc["anm0336"].geometry  # Gelado, Parauapebas
    kayapo = territories.loc["Kayapó"].geometry
    inside = kayapo.representative_point()
    edge = shapely.Point(kayapo.exterior.coords[0] if kayapo.geom_type == "Polygon"
                         else kayapo.geoms[0].exterior.coords[0])
    munduruku = territories.loc["Munduruku"].geometry.representative_point()
    far = shapely.Point(-45.5, -19.5)  # farmland in western Minas Gerais
    lon_g = WGS84.fwd(gelado.x, gelado.y, 90, 2 * 0.002425 * 104_000)[0]  # two cells east of Gelado
    points = [(b1.x, b1.y), (lon_g, gelado.y), (far.x, far.y), (inside.x, inside.y), (munduruku.x, munduruku.y)]
    dets, scenes = detections_at(points)
    edge_dets, edge_scene = detections_at([(edge.x, edge.y)], shape=[(r, c) for r in (-1, 0, 1) for c in (-1, 0, 1)])
    national = build_national(pd.concat([dets, edge_dets], ignore_index=True), {**scenes, **edge_scene}, real_inputs)
    sites = national.sites
    at = {name: sites[shapely.contains_xy(sites.geometry.to_numpy(), x, y)].iloc[0]
          for name, (x, y) in zip(["b1", "gelado", "far", "kayapo", "munduruku"], points, strict=True)}

    site = at["b1"]  # at the register coordinate: the dam itself, not its neighbour B2
    assert site["registered"] and site["register_id"] == "anm0084" and site["register_name"] == "Barragem B1"
    assert site["register_distance_m"] == 0 and site["register_source"] == "anm_barragens_mineracao_2019"
    assert (site["register_ore"], site["register_impact"], site["register_height_m"],
            site["register_volume_m3"], site["register_risk"]) == ("Minério de Ferro", "high", 47.0, 190_000.0, "Baixa")
    site = at["gelado"]  # two cells east: the distance is to the footprint's west edge
    west_edge = shapely.get_coordinates(site.geometry)[:, 0].min()
    expected = WGS84.inv(gelado.x, gelado.y, west_edge, gelado.y)[2]
    assert site["registered"] and site["register_name"] == "Gelado"
    assert site["register_distance_m"] == pytest.approx(expected, abs=1.0) and 300 < expected < 500
    site = at["far"]
    assert not site["registered"] and pd.isna(site["register_id"]) and pd.isna(site["register_distance_m"])

    site = at["kayapo"]
    assert site["protected"] and site["protected_names"] == "Kayapó"
    assert site["protected_types"] == "indigenous territory" and site["protected_ha"] == pytest.approx(site["area_ha"])
    assert not site["registered"]
    assert at["munduruku"]["protected_names"] == "Munduruku"
    assert not at["far"]["protected"] and pd.isna(at["far"]["protected_names"]) and at["far"]["protected_ha"] == 0
    across = sites[sites["n_detections"] == 9].iloc[0]  # 3×3 cells on Kayapó's boundary
    assert across["protected_names"] == "Kayapó" and 0 < across["protected_ha"] < across["area_ha"]
    assert float(across["protected_ha_each"]) == pytest.approx(across["protected_ha"], abs=0.01)

    totals = national.protected_areas.set_index("name")
    assert totals.loc["Kayapó", "sites"] == 2 and totals.loc["Kayapó", "sites_unregistered"] == 2
    assert totals.loc["Kayapó", "ha"] == pytest.approx(site["area_ha"] + across["protected_ha"], abs=0.01)
    assert totals.loc["Kayapó", "ha_high"] == totals.loc["Kayapó", "ha"] and totals.loc["Kayapó", "sites_low"] == 0
    # "registered, not detected": every dam no site reaches; B2, 200 m from the site at B1,
    # is reached (a mine with two dams) though the site names the nearer B1
    unmatched = national.register_unmatched
    assert len(unmatched) == 769 - 3 and not {"anm0084", "anm0090", "anm0336"} & set(unmatched["entry_id"])
    scanned = unmatched[unmatched["scanned"]]
    assert "anm0085" in set(scanned["entry_id"])  # B1 - Mina Ipê, 29 km west, in the same scene
    assert "anm0001" not in set(scanned["entry_id"])  # Amazonas: no scene of this run covers it
    assert national.summary["register_entries_not_detected_in_scanned_area"] == len(scanned)
    assert national.summary["sites_unregistered_in_protected_areas"] == 3


# --- other registers ---------------------------------------------------------------------------


def test_a_semicolon_csv_register_with_named_columns_and_dms(tmp_path):
    dets, scenes = detections_at([(-44.0, -20.0), (-44.3, -20.2)])
    lon, lat = dets["lon"].iloc[0], dets["lat"].iloc[0]
    csv = tmp_path / "cadastro.csv"
    deg, minutes = int(abs(lat)), (abs(lat) - int(abs(lat))) * 60
    csv.write_text(
        "codigo;Nome da mina;Substância;X;Y\n"
        f"MG-7;Mina Velha;Areia;{str(lon).replace('.', ',')};-{deg}°{minutes:.6f}'\n"
        "MG-8;sem coordenada;Ouro;;\n",
        encoding="utf-8",
    )
    spec = RegisterSpec(path=str(csv), id_column="codigo", name_column="Nome da mina", ore_column="Substância",
                        lon_column="X", lat_column="Y")
    inputs = load_inputs(SitesOptions(registers=(spec,), match_m=100))
    assert inputs.registers[0].match_m == 100 and len(inputs.registers[0].skipped) == 1
    sites = build_national(dets, scenes, inputs).sites
    hit = sites[sites["registered"]]
    assert len(hit) == 1 and hit.iloc[0]["register_id"] == "MG-7" and hit.iloc[0]["register_impact"] == "low"


def test_a_polygon_register_matches_the_footprints_it_intersects(tmp_path):
    dets, scenes = detections_at([(-44.0, -20.0), (-44.3, -20.2)], shape=[(0, 0), (0, 1)])
    first = dets.iloc[0]
    concession = shapely.box(first["lon"] + 0.002, first["lat"] - 0.01, first["lon"] + 0.05, first["lat"] + 0.01)
    path = tmp_path / "concessoes.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": shapely.geometry.mapping(concession),
         "properties": {"processo": "831.234/2010", "nome": "Lavra X", "subs": "Minério de Ferro"}}]}))
    sites = build_national(dets, scenes, load_inputs(SitesOptions(registers=(RegisterSpec(path=str(path)),)))).sites
    hit = sites[sites["registered"]]
    assert len(hit) == 1 and hit.iloc[0]["register_id"] == "831.234/2010"
    assert hit.iloc[0]["register_distance_m"] == 0 and hit.iloc[0]["register_impact"] == "high"


# --- bad layers fail before any work, and nothing is written -----------------------------------


@pytest.fixture()
def small_run(tmp_path):
    dets, scenes = grid_detections([(0, 0), (0, 1)], lon=-44.0, lat=-20.0)
    run = tmp_path / "run"
    write_run(str(run), {sid: dets for sid in scenes}, scenes)
    return run


@pytest.mark.filterwarnings("ignore:'crs' was not provided")
def test_a_layer_without_crs_exits_3_before_any_work(tmp_path, small_run, capsys):
    import geopandas as gpd

    nocrs = tmp_path / "ti.shp"
    gpd.GeoDataFrame({"nome": ["TI"]}, geometry=[shapely.box(-45, -21, -43, -19)]).to_file(nocrs)
    assert run_cli(["reduce", "--run", small_run, "--protected", nocrs]) == EXIT_BAD_INPUT
    assert "has no CRS" in capsys.readouterr().err
    assert not (small_run / "national").exists()


@pytest.mark.parametrize("content", [b"not a vector layer at all\n", b"\x89PNG\r\n\x1a\n"])
def test_a_file_that_is_not_a_vector_layer_exits_3(tmp_path, small_run, capsys, content):
    bogus = tmp_path / "areas.gpkg"
    bogus.write_bytes(content)
    assert run_cli(["reduce", "--run", small_run, "--regions", bogus]) == EXIT_BAD_INPUT
    assert "not a vector layer" in capsys.readouterr().err
    assert not (small_run / "national").exists()


def test_a_missing_register_or_a_line_layer_is_bad_input(tmp_path, small_run, capsys):
    assert run_cli(["reduce", "--run", small_run, "--register", tmp_path / "nope.tsv"]) == EXIT_BAD_INPUT
    lines = tmp_path / "rivers.geojson"
    lines.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[-44, -20], [-43, -19]]},
         "properties": {}}]}))
    with pytest.raises(InputError, match="give polygons"):
        load_inputs(SitesOptions(protected=(LayerSpec(path=str(lines)),)))
    assert not (small_run / "national").exists()


def test_reduce_with_a_bad_register_row_uses_the_rest_and_reports_the_count(tmp_path, small_run):
    lines = (DATA / "anm_barragens_sample.tsv").read_bytes().split(b"\r\n")
    lines[3] = lines[3].replace(b"-0\xc2\xb047'22.800\"", b"-0\xc2\xb047'xx\"")
    bad = tmp_path / "anm.tsv"
    bad.write_bytes(b"\r\n".join(lines))
    assert run_cli(["reduce", "--run", small_run, "--register", bad]) == 0
    summary = json.loads((small_run / "national" / "summary.json").read_text())
    stats = summary["registers"]["anm"]
    assert stats["entries"] == 5 and stats["skipped_rows"] == 1 and f"{bad}:4" in stats["skipped_examples"][0]
    assert summary["sites_unregistered"] == 1 and np.isclose(summary["link_m"], 800)


def test_a_sites_config_keeps_its_registers_and_layers_and_the_command_line_adds_to_them(tmp_path):
    from minescan.cli.options import sites_options_from

    config = tmp_path / "sites.yaml"
    config.write_text("registers:\n  - path: anm.tsv\nprotected:\n  - path: ti.gpkg\nlink_m: 600\n")
    kept = sites_options_from(sites_config=str(config))
    assert [r.path for r in kept.registers] == ["anm.tsv"] and [p.path for p in kept.protected] == ["ti.gpkg"]
    assert kept.link_m == 600
    added = sites_options_from(sites_config=str(config), registers=("more.csv",), link_m=900)
    assert [r.path for r in added.registers] == ["anm.tsv", "more.csv"] and added.link_m == 900
