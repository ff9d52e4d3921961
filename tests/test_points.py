"""Reading labelled points: CSV, GeoJSON, and the real ANM register's quirks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from minescan.errors import InputError
from minescan.points import parse_dms, read_points

from tests.helpers import DATA


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("-20°03'53.300\"", -(20 + 3 / 60 + 53.3 / 3600)),
        ("-0°44'00.100\"", -(44 / 60 + 0.1 / 3600)),  # the sign of a zero-degree value survives
        ("0°48'03.009\"", 48 / 60 + 3.009 / 3600),
        ("20°03'53,3\" S", -(20 + 3 / 60 + 53.3 / 3600)),
        ("43°56'33\" O", -(43 + 56 / 60 + 33 / 3600)),  # Portuguese oeste
        ("-20,0648", -20.0648),
        ("-43.9429", -43.9429),
    ],
)
def test_coordinates_parse_from_dms_and_decimal_text(text: str, value: float) -> None:
    assert parse_dms(text) == pytest.approx(value, abs=1e-9)


def test_garbage_is_not_a_coordinate() -> None:
    with pytest.raises(ValueError, match="not a coordinate"):
        parse_dms("twenty south")


def test_anm_register_sample_reads_with_its_quirks() -> None:
    points = read_points(DATA / "anm_barragens_sample.tsv")
    assert len(points) == 6
    first = points[0]
    assert first.lat == pytest.approx(-0.733361, abs=1e-6) and first.lon == pytest.approx(-60.138389, abs=1e-6)
    assert first.label == "mine" and first.ore == "Minério de Estanho Primário" and first.name == "0-1"
    north = next(p for p in points if p.name == "Mario Cruz")
    assert north.lat > 0  # 'Norte do Equador'
    assert {p.ore for p in points if p.lat < -19} == {"Minério de Ferro"}
    assert all("\r" not in (p.ore or "") and "\r" not in (p.name or "") for p in points)


def test_whole_anm_register_reads(shared_dir: Path) -> None:
    points = read_points(shared_dir / "data" / "anm_barragens_mineracao_2019.tsv")
    assert len(points) == 769
    assert all(-34 < p.lat < 6 and -74 < p.lon < -34 for p in points)  # all inside Brazil's box
    assert len({p.id for p in points}) == 769


def test_csv_with_header_lon_lat_label_ore(tmp_path: Path) -> None:
    path = tmp_path / "mines.csv"
    path.write_text("lon,lat,label,ore\n-43.94,-20.06,mine,Minério de Ferro\n-49.1,-6.0,not_mine,\n",
                    encoding="utf-8")
    a, b = read_points(path)
    assert (a.lon, a.lat, a.label, a.ore) == (-43.94, -20.06, "mine", "Minério de Ferro")
    assert b.label == "not_mine" and b.ore is None


def test_csv_without_header_is_lon_lat_label(tmp_path: Path) -> None:
    path = tmp_path / "mines.csv"
    path.write_text("-43.94,-20.06,mine\n", encoding="utf-8")
    (p,) = read_points(path)
    assert (p.lon, p.lat, p.label) == (-43.94, -20.06, "mine")


def test_csv_without_coordinates_is_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "names.csv"
    path.write_text("name,label\nA,mine\n", encoding="utf-8")
    with pytest.raises(InputError, match="no coordinate columns"):
        read_points(path)


def test_csv_coordinate_out_of_range_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "mines.csv"
    path.write_text("lat,lon,label\n-20.06,-43.94,mine\n-20.06,-243.94,mine\n", encoding="utf-8")
    with pytest.raises(InputError, match="mines.csv:3.*outside"):
        read_points(path)


def test_geojson_points_take_a_default_label(tmp_path: Path) -> None:
    path = tmp_path / "positives.geojson"
    features = [{"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [-55.1, -6.2]}}]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    with pytest.raises(InputError, match="no label"):
        read_points(path)
    (p,) = read_points(path, default_label="mine")
    assert (p.lon, p.lat, p.label) == (-55.1, -6.2, "mine")


def test_polygon_file_is_not_a_points_file() -> None:
    with pytest.raises(InputError, match="give point geometries"):
        read_points(DATA / "amw_para_kayapo.geojson", default_label="mine")


def test_one_reader_serves_acquire_and_training_the_anm_register_included() -> None:
    """`train --points` reads the ANM register as published, through the same reader as
    `acquire chips`: DMS coordinates parsed, ores kept, every dam labelled mine."""
    from minescan.ores import load_ore_mapping
    from minescan.points import read_points_table
    from minescan.training.data import point_labels

    table = read_points_table(DATA / "anm_barragens_sample.tsv")
    points = read_points(DATA / "anm_barragens_sample.tsv")
    assert list(table["id"]) == [p.id for p in points]
    assert table["lon"].tolist() == [p.lon for p in points] and table["lat"].between(-34, 6).all()
    assert set(table["label"]) == {"mine"} and table["ore"].notna().all()
    labels, unknown = point_labels(table, kind="impact", class_names=("high", "low", "no_ore"),
                                   label_column="impact", ore_column="ore",
                                   ore_mapping=load_ore_mapping(), where="anm")
    assert (labels >= 0).sum() + sum(unknown.values()) == len(table) and (labels >= 0).any()
