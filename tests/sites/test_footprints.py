"""Site footprints, their ellipsoidal areas, stable ids and the cells that may form a site."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import shapely
from minescan.bands import PIXEL_DEG
from minescan.outputs import coerce_detections
from minescan.sites.footprints import SceneGrid
from minescan.sites.ids import cell_centre_lonlat
from minescan.sites.national import build_national
from pyproj import Geod

from tests.helpers import grid_detections

WGS84 = Geod(ellps="WGS84")
HALF = 13.5 * PIXEL_DEG  # half a 27-px stride square, degrees


def quadrangle_m2(west: float, south: float, east: float, north: float) -> float:
    """Closed-form area of a lon/lat quadrangle on the WGS84 ellipsoid (Snyder 1987, eq. 3-12)."""
    a, f = 6378137.0, 1 / 298.257223563
    b, e = a * (1 - f), math.sqrt(f * (2 - f))

    def zone(phi: float) -> float:
        s = math.sin(math.radians(phi))
        return b * b / 2 * (s / (1 - e * e * s * s) + math.log((1 + e * s) / (1 - e * s)) / (2 * e))

    return math.radians(east - west) * (zone(north) - zone(south))


def cell_square(lon: float, lat: float) -> tuple[float, float, float, float]:
    return lon - HALF, lat - HALF, lon + HALF, lat + HALF


def test_footprint_area_at_30_s_matches_an_independent_ellipsoidal_computation():
    dets, scenes = grid_detections([(0, 0), (0, 1), (1, 0)], lon=-50.3, lat=-30.0)  # an L of three cells
    site = build_national(dets, scenes).sites.iloc[0]
    expected = sum(quadrangle_m2(*cell_square(lo, la)) for lo, la in zip(dets["lon"], dets["lat"], strict=True))
    assert site["area_ha"] == pytest.approx(expected / 1e4, rel=1e-3)  # the bar: 0.1 %
    assert site["area_ha"] == pytest.approx(expected / 1e4, rel=1e-5)  # and in fact far closer
    # the perimeter: eight cell edges, each a geodesic between two cell corners
    ring = np.asarray(site.geometry.exterior.coords)
    edges = WGS84.inv(ring[:-1, 0], ring[:-1, 1], ring[1:, 0], ring[1:, 1])[2]
    assert site["perimeter_m"] == pytest.approx(edges.sum(), abs=0.1)
    assert len(ring) == 7  # six corners of the L, collinear cell corners dissolved


# 27 px of 10 m (of the equator's length) in longitude; a degree of latitude is shorter,
# and longitude shrinks with cos(latitude): never the nominal 7.29 ha of a 270 m square
@pytest.mark.parametrize(("lat", "ha"), [(-20.0, 6.82), (-30.0, 6.29), (0.0, 7.24)])
def test_a_cell_covers_its_true_ground_area_not_a_nominal_square(lat, ha):
    dets, scenes = grid_detections([(0, 0)], lon=-45.0, lat=lat)  # the middle cell of the scene there
    area = build_national(dets, scenes).sites["area_ha"].iloc[0]
    assert area == pytest.approx(quadrangle_m2(*cell_square(dets["lon"][0], dets["lat"][0])) / 1e4, rel=1e-5)
    assert area == pytest.approx(ha, abs=0.05)


def test_cells_dissolve_into_polygons_with_holes_and_separate_diagonal_parts():
    ring = [(r, c) for r in range(3) for c in range(3) if (r, c) != (1, 1)]
    dets, scenes = grid_detections(ring + [(5, 5), (6, 6)], lon=-47.0, lat=-12.0)
    sites = build_national(dets, scenes, None).sites.set_index("n_detections")
    holed = sites.loc[8].geometry
    assert holed.geom_type == "Polygon" and len(holed.interiors) == 1 and holed.is_valid
    cell = sites.loc[2]["area_ha"] / 2
    assert sites.loc[8]["area_ha"] == pytest.approx(8 * cell, rel=1e-4)
    diagonal = sites.loc[2].geometry
    assert diagonal.geom_type == "MultiPolygon" and len(diagonal.geoms) == 2 and diagonal.is_valid


def test_a_site_across_two_overlapping_scenes_is_one_polygon_without_slivers():
    # a scene's local cells 341 and 342 are its east neighbour's cells 0 and 1 (offsets
    # from the middle cell 171: +170, +171 west, −171, −170 east)
    west, scenes = grid_detections([(0, k) for k in range(160, 172)], lon=-46.0, lat=-19.0)
    scene_id = next(iter(scenes))
    row, col = int(scene_id[1:5]), int(scene_id[6:])
    east, east_scene = grid_detections([(0, k) for k in range(-171, -160)], scene_rc=(row, col + 1))
    both = pd.concat([west, east], ignore_index=True)
    national = build_national(both, {**scenes, **east_scene})
    assert len(national.sites) == 1
    site = national.sites.iloc[0]
    assert site.geometry.geom_type == "Polygon" and len(site.geometry.interiors) == 0
    assert site["n_detections"] == 21 and len(site.geometry.exterior.coords) == 5  # one long rectangle
    assert site["scenes"] == ";".join(sorted([scene_id, *east_scene]))


def test_cells_of_a_projected_scene_are_their_270_m_squares_on_the_ground():
    # a hand-made UTM 23S scene, not on the national grid: 10 m pixels, 27 px = 270 m
    transform = (10.0, 0.0, 600_000.0, 0.0, -10.0, 7_800_000.0)
    grid = SceneGrid(cell_shape=(40, 40), crs="EPSG:32723", transform=transform)
    from pyproj import Transformer

    to_ll = Transformer.from_crs("EPSG:32723", "EPSG:4326", always_xy=True)
    rows = []
    for i, j in [(10, 10), (10, 11), (11, 10), (11, 11)]:
        x, y = 600_000.0 + (27 * j + 100.5) * 10, 7_800_000.0 - (27 * i + 100.5) * 10
        lon, lat = to_ll.transform(x, y)
        rows.append(dict(scene_id="utm", cell_row=i, cell_col=j, pixel_row=27 * i + 100, pixel_col=27 * j + 100,
                         lon=lon, lat=lat, p_mine=0.9, impact_class="high", p_high=0.7, p_low=0.2,
                         p_no_ore=0.1, kept=True, model_version="m", global_row=None, global_col=None))
    national = build_national(coerce_detections(pd.DataFrame(rows)), {"utm": grid})
    # a UTM metre is a ground metre × the scale factor (0.9996 at the central meridian, more off it)
    area = national.sites["area_ha"].iloc[0]
    assert 4 * 7.29 * 0.998 < area < 4 * 7.29 * 1.002
    assert national.sites.geometry.iloc[0].geom_type == "Polygon"


def test_cells_flagged_no_ore_never_form_or_grow_a_site():
    flagged = dict(kept=False, impact_class="no_ore", p_high=0.1, p_low=0.1, p_no_ore=0.8)
    cells = [(0, 0), (0, 1), {"drow": 0, "dcol": 2, **flagged}, {"drow": 20, "dcol": 20, **flagged}]
    dets, scenes = grid_detections(cells, lon=-44.0, lat=-20.0)
    national = build_national(dets, scenes)
    assert len(national.sites) == 1
    site = national.sites.iloc[0]
    assert site["n_detections"] == 2 and site["impact_class"] == "high"
    two_cells = build_national(dets[dets["kept"]], scenes).sites["area_ha"].iloc[0]
    assert site["area_ha"] == two_cells
    assert national.detections["site_id"].isna().tolist() == [False, False, True, True]
    assert national.summary["detections_flagged_no_ore"] == 2


def test_a_site_of_ore_bearing_cells_is_high_or_low_never_no_ore():
    # each cell's winner is high or low, but the mean of no_ore is the largest
    cells = [{"drow": 0, "dcol": 0, "p_high": 0.40, "p_low": 0.22, "p_no_ore": 0.38},
             {"drow": 0, "dcol": 1, "p_high": 0.22, "p_low": 0.40, "p_no_ore": 0.38, "impact_class": "low"}]
    dets, scenes = grid_detections(cells, lon=-44.0, lat=-20.0)
    assert build_national(dets, scenes).sites["impact_class"].iloc[0] in ("high", "low")


def test_site_id_names_the_national_cell_of_the_north_westernmost_cell():
    dets, scenes = grid_detections([(2, 0), (0, 3), (0, 1), (1, 1)], lon=-44.0, lat=-20.0)
    site = build_national(dets, scenes).sites.iloc[0]
    first = dets.sort_values(["global_row", "global_col"]).iloc[0]
    assert site["site_id"] == f"S{first['global_row']:05d}-{first['global_col']:06d}"
    lon, lat = cell_centre_lonlat(site["site_id"])
    assert (lon, lat) == pytest.approx((first["lon"], first["lat"]), abs=1e-9)


def test_the_site_point_is_a_member_cell_centre_inside_its_footprint():
    # a ring of cells: its centroid is the empty middle
    ring = [(r, c) for r in range(5) for c in range(5) if r in (0, 4) or c in (0, 4)]
    dets, scenes = grid_detections(ring, lon=-44.0, lat=-20.0)
    site = build_national(dets, scenes).sites.iloc[0]
    assert shapely.contains_xy(site.geometry, site["lon"], site["lat"])
    assert ((dets["lon"] == site["lon"]) & (dets["lat"] == site["lat"])).any()


def test_ids_survive_a_rerun_with_an_extra_scene():
    # run 1 holds one scene; run 2 adds its east neighbour, which sees the shared overlap
    # columns again, holds a new site of its own and lets one site grow eastwards
    west_cells = [(0, 0), (0, 1), (1, 0), (40, 40), (41, 41), (-50, 169), (-50, 170), (-50, 171)]
    west, scenes = grid_detections(west_cells, lon=-46.0, lat=-19.0)
    scene_id = next(iter(scenes))
    row, col = int(scene_id[1:5]), int(scene_id[6:])
    east_cells = [(-50, -171), (-50, -170), (-50, -169), (-49, -169), (60, 0), (60, 1)]
    east, east_scene = grid_detections(east_cells, scene_rc=(row, col + 1))
    run1 = build_national(west, scenes).sites.set_index("site_id")
    both = {**scenes, **east_scene}
    run2 = build_national(pd.concat([west, east], ignore_index=True), both).sites.set_index("site_id")
    assert set(run1.index) <= set(run2.index)
    grown = run2.loc[run2["scenes"].str.contains(";")]
    assert len(grown) == 1 and grown.iloc[0]["n_detections"] == 5
    assert grown.iloc[0]["area_ha"] > run1.loc[grown.index[0], "area_ha"]
    for site_id in run1.index.difference(grown.index):
        assert run2.loc[site_id, "geometry"].equals(run1.loc[site_id, "geometry"])
    assert len(run2) == len(run1) + 1  # the new site of the east scene
    # and the ids do not depend on the order the shards were read in
    shuffled = pd.concat([east, west], ignore_index=True)
    assert set(build_national(shuffled, both).sites["site_id"]) == set(run2.index)


def test_growth_to_the_north_renames_a_site_as_documented():
    before, scenes = grid_detections([(0, 0), (0, 1)], lon=-46.0, lat=-19.0)
    after, _ = grid_detections([(-1, 1), (0, 0), (0, 1)], lon=-46.0, lat=-19.0)
    old_id = build_national(before, scenes).sites["site_id"].iloc[0]
    new_id = build_national(after, scenes).sites["site_id"].iloc[0]
    assert new_id != old_id and int(new_id[1:6]) == int(old_id[1:6]) - 1


def test_traced_outlines_equal_the_union_of_the_cell_squares():
    from minescan.sites import outline

    rng = np.random.default_rng(5)
    xs, ys, groups = [], [], []
    for g in range(40):  # random walks: pinches, holes, several parts
        x, y = rng.integers(0, 8, 2) + 20 * g
        for _ in range(int(rng.integers(1, 60))):
            xs.append(x)
            ys.append(y)
            groups.append(g)
            dx, dy = ((0, 1), (1, 0), (0, -1), (-1, 0), (1, 1))[int(rng.integers(5))]
            x, y = x + dx, y + dy
    # a ring with an island inside its hole: several parts and a hole in one group
    ring = [(r, c) for r in range(7) for c in range(7) if r in (0, 6) or c in (0, 6)]
    for r, c in [*ring, (3, 3)]:
        xs.append(2000 + c)
        ys.append(r)
        groups.append(40)
    x, y, g = np.array(xs), np.array(ys), np.array(groups)
    got = outline.geometries(x, y, g, 41, lambda xy: xy)
    for k in range(41):
        expected = shapely.union_all(shapely.box(x[g == k], y[g == k], x[g == k] + 1, y[g == k] + 1))
        assert got[k].is_valid and shapely.symmetric_difference(got[k], expected).area == 0, k
        assert shapely.is_ccw(got[k].exterior if got[k].geom_type == "Polygon" else got[k].geoms[0].exterior)
    assert got[40].geom_type == "MultiPolygon" and got[40].area == 25
