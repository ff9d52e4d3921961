"""Hectares per year, class and region match independent computations on the ellipsoid."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from affine import Affine
from minescan.series.cube_io import CubeGrid, Window, write_class_cube
from minescan.series.filters import MINING, NODATA, NOT_MINING
from minescan.series.stats import pixel_areas_m2, row_areas_m2

from tests.helpers import run_cli

WGS84_A, WGS84_F = 6378137.0, 1 / 298.257223563


def zone_area_m2(lat0: float, lat1: float, dlon: float) -> float:
    """Area of a latitude/longitude quadrangle on the WGS84 ellipsoid (closed form, authalic)."""
    e2 = WGS84_F * (2 - WGS84_F)
    e = np.sqrt(e2)
    b2 = (WGS84_A * (1 - WGS84_F)) ** 2

    def q(lat):
        s = np.sin(np.radians(lat))
        return s / (1 - e2 * s * s) + np.log((1 + e * s) / (1 - e * s)) / (2 * e)

    return abs(b2 / 2 * np.radians(dlon) * (q(lat1) - q(lat0)))


def geod_pixel_area_m2(transform: Affine, row: int, col: int, crs: str = "EPSG:4326") -> float:
    """A pixel as a shapely polygon in lon/lat, measured with Geod.geometry_area_perimeter."""
    import pyproj
    import shapely

    corners = [transform @ (col + dc, row + dr) for dc, dr in ((0, 0), (1, 0), (1, 1), (0, 1))]
    if crs != "EPSG:4326":
        to_lonlat = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
        # densify the edges: a projected straight edge is not a geodesic
        ring = shapely.segmentize(shapely.Polygon(corners), abs(transform.a) / 8)
        corners = [to_lonlat.transform(x, y) for x, y in ring.exterior.coords]
    area, _ = pyproj.Geod(ellps="WGS84").geometry_area_perimeter(shapely.Polygon(corners))
    return abs(area)


def test_row_areas_are_the_ellipsoids_and_shrink_towards_the_pole():
    grid = CubeGrid(years=(2000,), height=600, width=3, transform=Affine(0.1, 0, 10.0, 0, -0.1, 60.0),
                    crs="EPSG:4326")
    areas = row_areas_m2(grid, slice(0, 600))
    for row in (0, 137, 599):
        lat0 = 60.0 - 0.1 * row
        assert areas[row] == pytest.approx(zone_area_m2(lat0, lat0 - 0.1, 0.1), rel=1e-6)
    assert areas[0] < 0.51 * areas[599]  # 60°N against the equator: a constant would be 2× wrong
    assert pixel_areas_m2(grid, Window(10, 0, 5, 3)).shape == (5, 1)


def make_cube(tmp_path, transform, crs, *, synthetic=False):
    rng = np.random.default_rng(7)
    cube = np.where(rng.random((3, 60, 80)) < 0.1, MINING, NOT_MINING).astype(np.uint8)
    cube[1, 10:20, 10:30] = 115  # industrial gold
    cube[2, 40:50, 50:70] = 215  # garimpo gold
    cube[0, :5, :5] = NODATA
    grid = CubeGrid(years=(1985, 1986, 1987), height=60, width=80, transform=transform, crs=crs)
    write_class_cube(tmp_path / "coded.zarr", cube, grid, attrs={"synthetic": synthetic})
    return cube, grid


def region_file(tmp_path, grid, crs):
    import geopandas as gpd
    import shapely

    # a triangle over part of the grid and a square beside it, in the cube's CRS
    pt = lambda col, row: grid.transform @ (col, row)
    triangle = shapely.Polygon([pt(3.2, 2.7), pt(71.4, 9.9), pt(22.6, 57.3)])
    square = shapely.box(*pt(45, 58), *pt(79, 30))
    gpd.GeoDataFrame({"nome": ["Terra A", "Terra B"]}, geometry=[triangle, square], crs=crs).to_file(
        tmp_path / "lands.geojson")
    return tmp_path / "lands.geojson", {"Terra A": triangle, "Terra B": square}


def independent_hectares(cube, grid, polygon, crs) -> dict[tuple[int, int], float]:
    import shapely

    totals: dict[tuple[int, int], float] = {}
    for t, year in enumerate(grid.years):
        for row, col in zip(*np.nonzero(np.isin(cube[t], [MINING, 115, 215]))):
            centre = shapely.Point(grid.transform @ (col + 0.5, row + 0.5))
            if polygon.contains(centre):
                key = (year, int(cube[t, row, col]))
                totals[key] = totals.get(key, 0.0) + geod_pixel_area_m2(grid.transform, row, col, crs) / 1e4
    return totals


@pytest.mark.parametrize(
    ("crs", "transform"),
    [
        ("EPSG:4326", Affine(0.00027, 0, -52.1, 0, -0.00027, -7.3)),  # ~30 m in the Kayapó lands
        ("EPSG:32722", Affine(30.0, 0, 400000.0, 0, -30.0, 9200000.0)),  # UTM 22S, 30 m
    ],
)
def test_hectares_per_region_match_pixel_polygons_on_the_ellipsoid(tmp_path, crs, transform):
    cube, grid = make_cube(tmp_path, transform, crs)
    layer, polygons = region_file(tmp_path, grid, crs)
    code = run_cli(["series", "stats", tmp_path / "coded.zarr", "--regions", f"{layer}:nome", "--out", tmp_path / "stats"])
    assert code == 0
    table = pd.read_csv(tmp_path / "stats" / "mining_area.csv")
    for name, polygon in polygons.items():
        expected = independent_hectares(cube, grid, polygon, crs)
        got = table[table.region == name].set_index(["year", "class_id"])["area_ha"]
        assert expected, name
        for key, hectares in expected.items():
            assert got[key] == pytest.approx(hectares, rel=0.005), (name, key)
        assert got[got > 0].size == len(expected)


def test_stats_writes_csv_parquet_and_a_figure_per_region_labelled_synthetic(tmp_path):
    cube, grid = make_cube(tmp_path, Affine(0.00027, 0, -52.1, 0, -0.00027, -7.3), "EPSG:4326", synthetic=True)
    layer, _ = region_file(tmp_path, grid, "EPSG:4326")
    assert run_cli(["series", "stats", tmp_path / "coded.zarr", "--regions", str(layer), "--out", tmp_path / "s"]) == 0
    csv = pd.read_csv(tmp_path / "s" / "mining_area.csv", keep_default_na=False)
    parquet = pd.read_parquet(tmp_path / "s" / "mining_area.parquet")
    pd.testing.assert_frame_equal(csv, parquet, check_dtype=False)
    assert set(csv.region) == {"all", "Terra A", "Terra B"} and csv.synthetic.all()
    whole = csv[csv.layer == "grid"].set_index(["year", "class_id"])
    assert whole.loc[(1985, 30), "pixels"] == int((cube[0] == MINING).sum())
    assert whole.loc[(1985, 115), "pixels"] == 0 and whole.loc[(1986, 115), "pixels"] == 200
    assert whole.loc[(1986, 115), "level_3"] == "2.2.14 Ouro" and whole.loc[(1987, 215), "level_1"] == "1. Garimpo"
    figures = sorted(p.relative_to(tmp_path / "s").as_posix() for p in (tmp_path / "s" / "figures").rglob("*.png"))
    assert figures == ["figures/grid/all-all.png", "figures/lands/terra-a-0.png", "figures/lands/terra-b-1.png"]


def test_stats_over_a_real_indigenous_lands_layer(tmp_path, shared_dir):
    make_cube(tmp_path, Affine(0.00027, 0, -52.1, 0, -0.00027, -7.3), "EPSG:4326")
    layer = shared_dir / "data" / "amw" / "indigenous_territories_impacts.geojson"
    assert run_cli(["series", "stats", tmp_path / "coded.zarr", "--regions", f"{layer}:name_field",
                    "--out", tmp_path / "s", "--no-figures"]) == 0
    table = pd.read_csv(tmp_path / "s" / "mining_area.csv")
    lands = table[table.layer == "indigenous_territories_impacts"]
    assert set(lands.region) == {"Kayapó"}
    total = table[(table.layer == "grid")].groupby("year").area_ha.sum()
    assert (lands.groupby("year").area_ha.sum() <= total + 1e-9).all()


def test_an_existing_stats_folder_is_kept(tmp_path, capsys):
    make_cube(tmp_path, Affine(0.00027, 0, -52.1, 0, -0.00027, -7.3), "EPSG:4326")
    (tmp_path / "s").mkdir()
    assert run_cli(["series", "stats", tmp_path / "coded.zarr", "--out", tmp_path / "s"]) == 3
    assert "--overwrite" in capsys.readouterr().err
