"""Mining patches take their class_id from the register entries that fall in them."""

from __future__ import annotations

import json

import numpy as np
import pytest
from affine import Affine
from minescan.errors import InputError
from minescan.series.cube_io import CubeGrid, open_class_cube, write_class_cube
from minescan.series.filters import MINING, NOT_MINING
from minescan.series.substance import (
    RegisterColumns,
    code_year,
    entry_pixels,
    read_register,
)

from tests.helpers import run_cli

PX = 0.001
GRID = CubeGrid(years=(2000, 2001), height=30, width=40, transform=Affine(PX, 0, -50.0, 0, -PX, -5.0),
                crs="EPSG:4326")
CPRM = RegisterColumns(substance="SUBSTANCIA", kind="STATUS_ECONOMICO", lon="LONGITUDE", lat="LATITUDE")


def lonlat(row: float, col: float) -> tuple[float, float]:
    """The centre of pixel (row, col) of GRID."""
    return -50.0 + (col + 0.5) * PX, -5.0 - (row + 0.5) * PX


def year_maps() -> np.ndarray:
    one = np.full((30, 40), NOT_MINING, dtype=np.uint8)
    one[2:6, 2:6] = MINING  # A: one industrial iron mine
    one[2:6, 10:16] = MINING  # B: two gold garimpos and one iron mine
    one[10:14, 2:6] = MINING  # C: one gold and one tin garimpo
    one[10:14, 10:14] = MINING  # D: nobody registered
    one[20:24, 20:30] = MINING  # E: a copper polygon touching its corner
    two = one.copy()
    two[6:10, 3] = MINING  # the next year A and C are joined
    return np.stack([one, two])


def write_register(path, rows) -> str:
    lines = ["LONGITUDE;LATITUDE;SUBSTANCIA;STATUS_ECONOMICO"]
    lines += [f"{lon:.6f};{lat:.6f};{substance};{kind}" for (lon, lat), substance, kind in rows]
    path.write_text("\n".join(lines).replace(";", ",") + "\n", encoding="utf-8")
    return str(path)


def point_rows():
    return [
        (lonlat(3, 3), "Minério de Ferro", "Mina"),  # A
        (lonlat(3, 11), "Ouro", "Garimpo"),  # B
        (lonlat(5, 15), "Ouro aluvionar", "Garimpo"),  # B
        (lonlat(4, 12), "Ferro", "Mina"),  # B
        (lonlat(11, 3), "Ouro", "Garimpo"),  # C
        (lonlat(12, 4), "Cassiterita", "Garimpo"),  # C
        (lonlat(27, 2), "Ouro", "Garimpo"),  # on no mining
        (lonlat(27, 60), "Ouro", "Garimpo"),  # outside the grid
        (lonlat(1, 1), "Sedimento", "Mina"),  # no Table 3 class
    ]


def test_patches_take_the_most_voted_class_then_the_lowest_id(tmp_path):
    register = read_register(write_register(tmp_path / "ocorrencias.csv", point_rows()), CPRM)
    assert len(register.entries) == 9 and len(register.usable) == 8
    assert register.unknown_substances == {"Sedimento": 1}
    hits = entry_pixels(register.usable, GRID)
    assert hits.outside == 1
    maps = year_maps()
    first, coded = code_year(maps[0], hits)
    assert (first[2:6, 2:6] == 102).all()
    assert (first[2:6, 10:16] == 215).all()  # two gold garimpo votes beat one iron vote
    assert (first[10:14, 2:6] == 214).all()  # a tie: tin garimpo (214) before gold garimpo (215)
    assert (first[10:14, 10:14] == MINING).all() and (first[20:24, 20:30] == MINING).all()
    assert (first[maps[0] == NOT_MINING] == NOT_MINING).all()
    assert coded == 3
    second, _ = code_year(maps[1], hits)
    # A and C joined: iron, gold garimpo and tin garimpo one vote each: the lowest id, iron
    assert (second[2:6, 2:6] == 102).all() and (second[10:14, 2:6] == 102).all()
    assert (second[6:10, 3] == 102).all()


def test_a_polygon_codes_every_patch_it_touches(tmp_path):
    import geopandas as gpd
    import shapely

    # a copper mine outline that only reaches into E's top-left pixel
    (lon0, lat0), (lon1, lat1) = lonlat(18, 17), lonlat(20.2, 20.2)
    frame = gpd.GeoDataFrame({"substancia": ["Minério de Cobre"], "tipo": ["industrial"]},
                             geometry=[shapely.box(lon0, lat1, lon1, lat0)], crs="EPSG:4326")
    frame.to_file(tmp_path / "mines.geojson")
    register = read_register(tmp_path / "mines.geojson", RegisterColumns(substance="substancia", kind="tipo"))
    coded, n = code_year(year_maps()[0], entry_pixels(register.usable, GRID))
    assert n == 1 and (coded[20:24, 20:30] == 109).all()
    assert (coded[2:6, 2:6] == MINING).all()


def test_the_substance_verb_writes_a_coded_cube(tmp_path):
    write_class_cube(tmp_path / "filtered.zarr", year_maps(), GRID)
    register = write_register(tmp_path / "ocorrencias.csv", point_rows())
    code = run_cli(["series", "substance", tmp_path / "filtered.zarr", "--register", register,
                    "--substance-column", "SUBSTANCIA", "--type-column", "STATUS_ECONOMICO",
                    "--lon-column", "LONGITUDE", "--lat-column", "LATITUDE", "--out", tmp_path / "coded.zarr"])
    assert code == 0
    coded = open_class_cube(tmp_path / "coded.zarr")
    values = coded.read()
    assert values[0, 3, 12] == 215 and values[1, 8, 3] == 102 and values[1, 12, 12] == MINING
    assert coded.attrs["substance"]["patches_coded"] == {"2000": 3, "2001": 2}
    assert coded.grid == GRID


def test_a_register_without_a_usable_substance_fails_through_the_cli(tmp_path, capsys):
    write_class_cube(tmp_path / "filtered.zarr", year_maps(), GRID)
    register = write_register(tmp_path / "bad.csv", [(lonlat(3, 3), "Sedimento", "Mina")] * 3)
    code = run_cli(["series", "substance", tmp_path / "filtered.zarr", "--register", register,
                    "--substance-column", "SUBSTANCIA", "--out", tmp_path / "coded.zarr"])
    assert code == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no entry with a substance Table 3 codes" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv", "filtered.zarr"]


def test_a_table_without_a_named_substance_column_is_refused(tmp_path):
    register = write_register(tmp_path / "ocorrencias.csv", point_rows())
    with pytest.raises(InputError, match="--substance-column"):
        read_register(register)
    with pytest.raises(InputError, match="no column 'SUBST'"):
        read_register(register, RegisterColumns(substance="SUBST"))


def test_the_anm_register_reads_as_industrial_mines(shared_dir):
    register = read_register(shared_dir / "data" / "anm_barragens_mineracao_2019.tsv")
    assert len(register.entries) == 769 and len(register.usable) == 729
    assert {e.kind for e in register.entries} == {"industrial"}
    ids = {e.class_id for e in register.usable}
    assert {102, 115, 117, 109, 114} <= ids and not ids & {214, 215}
    assert json.dumps(register.unknown_substances, ensure_ascii=False).startswith('{"Sedimento": 32')
