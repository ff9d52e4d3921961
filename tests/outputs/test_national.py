"""The national outputs as their users meet them: GDAL's command-line tools, a browser, a PDF
viewer, a STAC reader. One small national run is written once per module."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from affine import Affine
from minescan.outputs import (
    RunFacts,
    SceneFacts,
    build_mosaic,
    scene_tile,
    write_detections_geoparquet,
    write_national,
    write_probability_cog,
    write_probability_zarr,
)
from minescan.outputs.facts import SYNTHETIC_WARNING, ModelFacts, run_facts
from minescan.outputs.rasters import CellWindow, mosaic_block

from tests.outputs.test_outputs import detections, sites

#: 0.0025° cells, 2 × 2 scenes of 10 × 10 cells whose origins are 8 cells apart
CELL = 0.0025
ORIGIN = Affine(CELL, 0, -44.3, 0, -CELL, -19.9)
SCENE_CELLS, STEP, OWNED_OFFSET, OWNED = 10, 8, 1, 8
SCENES = {f"r{r:04d}c{c:04d}": (r * STEP, c * STEP) for r in range(2) for c in range(2)}
CHROMIUM = shutil.which("chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


def scene_grid(scene_id: str) -> np.ndarray:
    """A scene's p(mine): distinct per scene, NaN in one corner cell (nodata)."""
    k = list(SCENES).index(scene_id)
    grid = np.random.default_rng(k).random((SCENE_CELLS, SCENE_CELLS), dtype=np.float32)
    grid[0, 0] = np.nan
    return grid


def write_scene_shards(run: Path) -> list:
    """Each scene's zarr and COG as a shard holds them; the tiles the reduce would build."""
    tiles = []
    for scene_id, (row, col) in SCENES.items():
        shard = run / "scenes" / scene_id
        transform = ORIGIN @ Affine.translation(col, row)
        write_probability_zarr(shard / "probability.zarr", scene_grid(scene_id), cell_transform=transform,
                               crs="EPSG:4326", attrs={"scene_id": scene_id})
        write_probability_cog(shard / "probability.tif", scene_grid(scene_id), cell_transform=transform,
                              crs="EPSG:4326")
        write_detections_geoparquet(shard / "detections.parquet", detections(3))
        tiles.append(scene_tile(scene_id, shard / "probability.zarr", f"../scenes/{scene_id}/probability.tif",
                                offset=(row, col), shape=(SCENE_CELLS, SCENE_CELLS),
                                owned_offset=OWNED_OFFSET, owned_cells=OWNED))
    return tiles


def expected_mosaic() -> np.ndarray:
    """The mosaic by the rule, cell by cell: the owning scene's value, else the value of the
    last scene (in manifest order) that has the cell."""
    size = STEP + SCENE_CELLS
    out = np.full((size, size), np.nan, dtype=np.float32)
    for r in range(size):
        for c in range(size):
            owners, others = [], []
            for scene_id, (row, col) in SCENES.items():
                local = (r - row, c - col)
                if all(0 <= v < SCENE_CELLS for v in local) and not np.isnan(scene_grid(scene_id)[local]):
                    owned = all(OWNED_OFFSET <= v < OWNED_OFFSET + OWNED for v in local)
                    (owners if owned else others).append(scene_grid(scene_id)[local])
            if owners or others:
                out[r, c] = (owners or others)[-1]
    return out


def run_facts_for(run: Path, *, synthetic: bool, missing: str | None = "r0001c0001") -> RunFacts:
    scenes = tuple(
        SceneFacts(
            scene_id=scene_id,
            bounds=(-44.3 + col * CELL, -19.9 - (row + SCENE_CELLS) * CELL,
                    -44.3 + (col + SCENE_CELLS) * CELL, -19.9 - row * CELL),
            committed=scene_id != missing,
            data=None if scene_id == missing else f"scenes/{scene_id}",
        )
        for scene_id, (row, col) in SCENES.items()
    )
    models = (
        ModelFacts("discovery", "demo-discovery@demo-2#9fdabf1724b8", synthetic, {"folds": 0}, {"n_chips": 1000}),
        ModelFacts("impact", "field-impact@v3#0123456789ab", False, {"accuracy": 0.91}, {"n_chips": 2400}),
    )
    return RunFacts(title="Minas Gerais <test>", run=str(run), aoi="Minas Gerais", period="2018-01-01 to 2020-01-01",
                    imagery="Sentinel-2 L1C", scenes=scenes, models=models, link_m=800.0)


def national_sites(n: int = 9) -> pd.DataFrame:
    """Sites on the contract of the sites stage: footprints, register and protected flags."""
    import geopandas as gpd
    import shapely

    df = sites(n=n, seed=3)
    df["lon"] = np.linspace(-44.29, -44.26, n)
    df["lat"] = np.linspace(-19.91, -19.94, n)
    registered = np.array([k % 3 == 0 for k in range(n)])
    df["registered"] = registered
    df["register_source"] = pd.array(np.where(registered, "anm", None), dtype="string")
    df["register_id"] = pd.array([f"anm{k:04d}" if r else None for k, r in enumerate(registered)], dtype="string")
    df["area_ha"] = np.linspace(50, 5, n)
    df["protected"] = [k % 4 == 1 for k in range(n)]
    df["protected_names"] = pd.array(["Terra Indígena Kayapó" if k % 4 == 1 else None for k in range(n)],
                                     dtype="string")
    df["regions"] = pd.array(["Minas Gerais"] * n, dtype="string")
    boxes = [shapely.box(x - 0.002, y - 0.001, x + 0.002, y + 0.001) for x, y in zip(df["lon"], df["lat"])]
    return gpd.GeoDataFrame(df, geometry=boxes, crs="EPSG:4326")


def register_layer():
    """An ANM-like register: the first site's entry (anm0000) and two that no site matched."""
    import geopandas as gpd
    from minescan.sites.registers import ENTRY_COLUMNS, Register

    entries = pd.DataFrame({column: pd.array([None] * 3, dtype="string") for column in ENTRY_COLUMNS})
    entries["entry_id"] = pd.array(["anm0000", "anm0900", "anm0901"], dtype="string")
    entries["name"] = pd.array(["B1", "Barragem São João", "B3"], dtype="string")
    points = gpd.points_from_xy([-44.29, -44.27, -44.31], [-19.91, -19.93, -19.95])
    return Register("anm", "anm.tsv", "anm", gpd.GeoDataFrame(entries, geometry=points, crs="EPSG:4326"), 500.0, ())


def protected_layer():
    import geopandas as gpd
    import shapely
    from minescan.sites.layers import PolygonLayer

    frame = gpd.GeoDataFrame({"name": ["Terra Indígena Kayapó"], "type": ["indigenous"]},
                             geometry=[shapely.box(-44.29, -19.935, -44.275, -19.915)], crs="EPSG:4326")
    return PolygonLayer("territories", "territories.geojson", frame, 0, 0)


def national_of(site_table: pd.DataFrame, dets: pd.DataFrame, **tables):
    """A NationalSites as the sites stage builds it, around the given tables."""
    import geopandas as gpd
    from minescan.sites.national import NationalSites

    unmatched = gpd.GeoDataFrame({"source": pd.array([], dtype="string"), "scanned": np.zeros(0, bool)},
                                 geometry=gpd.points_from_xy([], []), crs="EPSG:4326")
    empty = pd.DataFrame({"name": pd.array([], dtype="string"), "sites": np.zeros(0, int)})
    return NationalSites(
        sites=site_table, detections=dets.assign(site_id=pd.array([None] * len(dets), dtype="string")),
        register_unmatched=unmatched, site_areas=pd.DataFrame(columns=["site_id", "layer", "name", "type", "ha"]),
        protected_areas=tables.get("protected_areas", empty), regions=tables.get("regions", empty), summary={},
    )


@pytest.fixture(scope="module")
def national(tmp_path_factory):
    from minescan.sites.diff import diff_sites
    from minescan.sites.national import SitesInputs

    run = tmp_path_factory.mktemp("run")
    tiles = write_scene_shards(run)
    tiles = [tile for tile in tiles if tile.scene_id != "r0001c0001"]  # one scene missing
    facts = run_facts_for(run, synthetic=True)
    regions = pd.DataFrame({"region": ["Minas Gerais", "Pará"], "sites": [9, 0], "area_ha": [250.0, 0.0]})
    protected = pd.DataFrame({"name": ["Terra Indígena Kayapó"], "sites": [2], "ha": [12.5]})
    inputs = SitesInputs(registers=(register_layer(),), protected=(protected_layer(),), regions=protected_layer())
    change = diff_sites(national_sites().iloc[:3], national_sites())  # the sites after three: new
    files = write_national(run / "national", national_of(national_sites(), detections(12), regions=regions,
                                                         protected_areas=protected),
                           facts=facts, summary={"run": str(run)}, tiles=tiles, inputs=inputs,
                           changes=change.changes, changes_summary={**change.summary, "before": "runs/2019"})
    return run, files, facts


# --- rasters --------------------------------------------------------------------------------


def test_scene_cog_is_a_cog_with_the_zarr_values_and_georeferencing(tmp_path):
    import rasterio

    grid = scene_grid("r0000c0000")
    write_probability_cog(tmp_path / "p.tif", grid, cell_transform=ORIGIN, crs="EPSG:4326")
    with rasterio.open(tmp_path / "p.tif") as src:
        np.testing.assert_array_equal(src.read(1), grid)
        assert src.transform == ORIGIN and src.crs.to_epsg() == 4326
        assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG" and np.isnan(src.nodata)
        assert src.compression.name == "deflate"


def test_mosaic_block_takes_owned_cells_first_then_any_scene(tmp_path):
    tiles = write_scene_shards(tmp_path)
    grids = {scene_id: scene_grid(scene_id) for scene_id in SCENES}

    def read(tile, w):
        return grids[tile.scene_id][w.row: w.row + w.rows, w.col: w.col + w.cols]

    size = STEP + SCENE_CELLS
    whole = mosaic_block(tiles, CellWindow(0, 0, size, size), read)
    np.testing.assert_array_equal(whole, expected_mosaic())
    # any block of it is the same cells
    np.testing.assert_array_equal(mosaic_block(tiles, CellWindow(3, 5, 7, 11), read), whole[3:10, 5:16])


def test_mosaic_cog_and_vrt_hold_the_same_cells_at_the_right_place(tmp_path):
    import rasterio

    run = tmp_path / "run"
    tiles = write_scene_shards(run)
    mosaic = build_mosaic(run / "national", tiles, block=7)  # blocks that straddle scenes

    size = STEP + SCENE_CELLS
    for path in (mosaic.cog, mosaic.vrt):
        with rasterio.open(path) as src:
            assert (src.height, src.width) == (size, size)
            assert src.transform.almost_equals(ORIGIN, precision=1e-12) and src.crs.to_epsg() == 4326
            np.testing.assert_array_equal(src.read(1), expected_mosaic())
    assert mosaic.window == CellWindow(0, 0, size, size)


def test_mosaic_rejects_scenes_on_different_grids(tmp_path):
    from minescan.errors import InputError

    tiles = write_scene_shards(tmp_path)
    shifted = tiles[1]
    write_probability_zarr(shifted.zarr, scene_grid("r0000c0001"), cell_transform=ORIGIN @ Affine.translation(8.5, 0),
                           crs="EPSG:4326", attrs={})
    with pytest.raises(InputError, match="different cell grids"):
        build_mosaic(tmp_path / "out", tiles)
    assert not (tmp_path / "out" / "p_mine_mosaic.tif").exists()


@pytest.mark.skipif(shutil.which("gdalinfo") is None, reason="GDAL command-line tools not installed")
def test_system_gdalinfo_opens_the_scene_cogs_and_the_mosaic_with_its_georeferencing(national):
    run, files, _ = national
    for path in [files["mosaic_cog"], files["mosaic_vrt"], run / "scenes" / "r0000c0000" / "probability.tif"]:
        info = json.loads(subprocess.run(["gdalinfo", "-json", str(path)], capture_output=True, check=True,
                                         text=True).stdout)
        assert info["geoTransform"][:2] == pytest.approx([-44.3, CELL], abs=1e-12)
        assert info["geoTransform"][3:] == pytest.approx([-19.9, 0, -CELL], abs=1e-12)
        assert "4326" in info["coordinateSystem"]["wkt"]
        assert info["bands"][0]["type"] == "Float32"
    stats = subprocess.run(["gdalinfo", "-stats", str(files["mosaic_cog"])], capture_output=True, check=True, text=True)
    assert "STATISTICS_MAXIMUM" in stats.stdout


# --- GeoPackage -----------------------------------------------------------------------------


def test_geopackage_holds_sites_detections_register_protected_scenes_and_changes(national):
    import pyogrio

    _, files, _ = national
    layers = dict(pyogrio.list_layers(files["gpkg"]))
    assert set(layers) == {"sites", "detections", "register_matched", "register_not_detected",
                           "protected_areas", "scenes", "changes"}
    assert len(pyogrio.read_dataframe(files["gpkg"], layer="changes")) == 9  # 3 unchanged, 6 new
    sites_layer = pyogrio.read_dataframe(files["gpkg"], layer="sites")
    assert len(sites_layer) == 9 and sites_layer.crs.to_epsg() == 4326
    assert set(sites_layer.geometry.geom_type) == {"MultiPolygon"}
    assert sites_layer["p_mine_max"].dtype.kind == "f" and sites_layer["registered"].dtype == bool
    assert len(pyogrio.read_dataframe(files["gpkg"], layer="register_matched")) == 1
    assert len(pyogrio.read_dataframe(files["gpkg"], layer="register_not_detected")) == 2
    scenes = pyogrio.read_dataframe(files["gpkg"], layer="scenes")
    assert sorted(scenes["scene_id"][~scenes["committed"]]) == ["r0001c0001"]


@pytest.mark.skipif(shutil.which("ogrinfo") is None, reason="GDAL command-line tools not installed")
def test_system_ogrinfo_opens_the_geopackage(national):
    _, files, _ = national
    done = subprocess.run(["ogrinfo", "-ro", "-so", "-al", str(files["gpkg"])], capture_output=True, text=True,
                          check=True)
    assert "Layer name: sites" in done.stdout and "Feature Count: 9" in done.stdout
    assert "Layer name: detections" in done.stdout and "Feature Count: 12" in done.stdout
    assert "p_mine_max: Real" in done.stdout
    assert "Warning" not in done.stderr  # a GeoPackage version this GDAL fully supports


@pytest.mark.skipif(shutil.which("ogrinfo") is None, reason="GDAL command-line tools not installed")
def test_system_ogrinfo_reads_kml_numbers_as_numbers(national):
    _, files, _ = national
    done = subprocess.run(["ogrinfo", "-ro", "-so", str(files["kml"]), "high"], capture_output=True, text=True,
                          check=True)
    assert "p_mine_max: Real" in done.stdout and "n_detections: Integer" in done.stdout


# --- synthetic warning, summary, ranking ----------------------------------------------------


def test_every_output_people_read_says_synthetic_when_the_demo_models_were_used(national):
    _, files, facts = national
    assert facts.synthetic and SYNTHETIC_WARNING in facts.warnings
    for key in ("summary", "map", "report", "kml"):
        text = files[key].read_text("utf-8")
        assert "SYNTHETIC" in text, key
    collection = json.loads(files["stac"].read_text())
    assert collection["minescan:synthetic"] is True and "SYNTHETIC" in collection["title"]


def test_real_models_give_no_synthetic_warning(tmp_path):
    facts = run_facts_for(tmp_path, synthetic=False, missing=None)
    files = write_national(tmp_path / "national", national_of(national_sites(4), detections(3)), facts=facts,
                           summary={})
    assert not facts.synthetic
    for key in ("summary", "map", "report", "kml"):
        assert "SYNTHETIC" not in files[key].read_text("utf-8"), key
    assert "mosaic_cog" not in files  # no tiles given: no mosaic, and the map says nothing of one


def test_run_facts_recognise_the_bundled_demo_models_by_their_hash(tmp_path):
    from minescan.models.bundled import DEMO_MODELS
    from minescan.models.card import read_model_card

    cards = {kind: read_model_card(DEMO_MODELS / kind, verify=False) for kind in ("discovery", "impact")}
    record = {
        "manifest": {"scenes": [{"id": "a", "uri": "x", "bounds": [-44.0, -20.0, -43.0, -19.0]},
                                {"id": "b", "uri": "y", "transform": [0.1, 0, -43.0, 0, -0.1, -19.0],
                                 "width": 10, "height": 10}],
                     "source": {"sensor": "Sentinel-2 L1C", "start": "2018-01-01", "end": "2020-01-01"}},
        "models": {kind: {"ref": card.ref, "sha256": card.weights_sha256, "path": str(DEMO_MODELS / kind)}
                   for kind, card in cards.items()},
    }
    facts = run_facts(record, {"a": "scenes/a"}, title="t")
    assert facts.synthetic_models and not facts.synthetic_imagery
    assert facts.missing == ("b",) and facts.scenes[1].bounds == pytest.approx((-43.0, -20.0, -42.0, -19.0))
    assert facts.period.startswith("2018-01-01 to 2020-01-01")
    assert facts.models[0].training["n_chips"] == 1000
    record["models"]["discovery"]["sha256"] = "0" * 64
    record["models"]["impact"]["sha256"] = "1" * 64
    assert not run_facts(record, {}, title="t").synthetic


def test_ranking_puts_unregistered_protected_high_impact_large_sites_first():
    from minescan.outputs._site_view import rank_sites

    df = national_sites(9)
    ranked = rank_sites(df)
    assert list(ranked["rank"]) == list(range(1, 10))
    keys = list(zip(ranked["registered"], ~ranked["protected"], ranked["impact_class"].map(
        {"high": 0, "low": 1, "no_ore": 2}), -ranked["area_ha"], strict=True))
    assert keys == sorted(keys)  # each criterion in turn, no ties left to p(mine) max


# --- the map in a browser -------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


def test_map_loads_offline_with_every_layer_footprints_legend_and_popups(national, browser, tmp_path):
    _, files, _ = national
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    errors, requests = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(files["map"].resolve().as_uri())
    page.wait_for_function("window.minescan !== undefined")

    assert errors == []
    assert [url for url in requests if not url.startswith("data:")] == [files["map"].resolve().as_uri()]
    assert page.locator("path.site-footprint").count() == 9
    assert page.locator("path.protected-area").count() == 1
    assert page.locator("path.change.new").count() == 6 and page.locator("path.change").count() == 6
    assert page.locator("path.register").count() == 3
    assert page.locator("path.scene.missing").count() == 1 and page.locator("path.scene.committed").count() == 3
    assert page.locator("img.pmine-overlay").count() == 1
    assert page.locator("path.boundary").count() > 0
    labels = page.locator(".leaflet-control-layers label").all_inner_texts()
    for name in ("p(mine) surface", "Scenes committed (3)", "Scenes missing (1)", "Protected / indigenous land (1)",
                 "Register entries (3)", "Changes since the previous run (6)", "Site footprints (9)", "Site markers, clustered (9)", "OpenStreetMap (online)",
                 "Country outlines"):
        assert any(name in label for label in labels), name
    legend = page.locator(".legend").inner_text()
    assert "not in any register" in legend and "p(mine)" in legend and "new since the previous run" in legend
    assert "SYNTHETIC" in page.locator(".info").inner_text()

    page.locator("path.site-footprint").first.click(force=True)
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for()
    text = popup.inner_text()
    assert "site_id" in text and "Review:" in text and "Google Earth" in text and "Google Maps" in text
    page.screenshot(path=str(tmp_path / "map.png"))
    assert (tmp_path / "map.png").stat().st_size > 10_000
    assert [url for url in requests if not url.startswith("data:")] == [files["map"].resolve().as_uri()]
    page.close()


# --- report ---------------------------------------------------------------------------------


def test_report_says_what_a_reader_must_know(national):
    _, files, facts = national
    text = files["report"].read_text("utf-8")
    for needed in ("Minas Gerais", "2018-01-01 to 2020-01-01", "r0001c0001", "Balaniuk", "Sensors 2020",
                   "Limitations", "accuracy: 0.91", "not in any register", "Terra Indígena Kayapó",
                   "Pará", "Changes since the previous run", SYNTHETIC_WARNING, "data:image/png;base64,"):
        assert needed in text, needed
    assert "<test>" not in text and "&lt;test&gt;" in text  # the title is escaped
    # the first ranked site is the first by the rule, not the highest p(mine)
    from minescan.outputs._site_view import rank_sites

    first = rank_sites(national_sites())["site_id"].iloc[0]
    assert text.index(f"<td>{first}</td>") < min(text.index(f"<td>{s}</td>") for s in national_sites()["site_id"]
                                                  if s != first and f"<td>{s}</td>" in text)


@pytest.mark.skipif(shutil.which("pdftoppm") is None or CHROMIUM is None, reason="poppler-utils or chromium missing")
def test_report_pdf_first_page_renders_and_is_not_blank(national, tmp_path):
    from PIL import Image

    _, files, _ = national
    assert files["report_pdf"].read_bytes()[:5] == b"%PDF-"
    subprocess.run(["pdftoppm", "-png", "-r", "50", "-f", "1", "-l", "1", str(files["report_pdf"]),
                    str(tmp_path / "page")], check=True)
    page = np.asarray(Image.open(next(tmp_path.glob("page*.png"))).convert("L"))
    assert page.shape[0] > page.shape[1]  # portrait A4
    assert (page < 128).mean() > 0.01  # text and the warning box, not a white page
    red = np.asarray(Image.open(next(tmp_path.glob("page*.png"))).convert("RGB")).astype(int)
    assert ((red[..., 0] > 150) & (red[..., 1] < 60) & (red[..., 2] < 80)).sum() > 100  # the warning's red box


# --- STAC -----------------------------------------------------------------------------------


def test_stac_collection_lists_the_national_and_scene_products_with_working_hrefs(national):
    import pystac

    run, files, _ = national
    collection = pystac.Collection.from_file(str(files["stac"]))
    items = {item.id: item for item in collection.get_items()}
    assert set(items) == {"national", "r0000c0000", "r0000c0001", "r0001c0000"}  # the missing scene has none
    for item in items.values():
        for asset in item.assets.values():
            assert Path(asset.get_absolute_href()).exists(), asset.href
            assert not Path(asset.href).is_absolute()
    assert items["national"].assets["mosaic_cog"].media_type.startswith("image/tiff")
    assert items["r0000c0000"].bbox == pytest.approx([-44.3, -19.925, -44.275, -19.9])


def test_stac_collection_and_items_are_valid_stac(national):
    """stac-pydantic's models of the STAC 1.x spec (offline: the JSON schemas need a network)."""
    from stac_pydantic import Collection, Item

    _, files, _ = national
    collection = json.loads(files["stac"].read_text())
    Collection.model_validate(collection)
    links = [link["href"] for link in collection["links"] if link["rel"] == "item"]
    assert len(links) == 4
    for href in links:
        item = json.loads((files["stac"].parent / href).resolve().read_text())
        Item.model_validate(item)
        assert item["properties"]["minescan:synthetic"] is True and item["stac_version"].startswith("1.")


def test_a_large_run_draws_on_canvas_clusters_markers_and_footprints_near_the_view(browser, tmp_path):
    """Above CANVAS_ABOVE sites the map switches to canvas, clustering and culled footprints."""
    import shapely
    from minescan.outputs.webmap import CANVAS_ABOVE, FOOTPRINT_MIN_ZOOM, map_html

    n = CANVAS_ABOVE + 500
    rng = np.random.default_rng(5)
    df = national_sites(n)
    df["site_id"] = [f"S{i:05d}" for i in range(n)]
    df["lon"], df["lat"] = rng.uniform(-60, -40, n), rng.uniform(-22, -2, n)
    df["geometry"] = [shapely.box(x - 0.003, y - 0.002, x + 0.003, y + 0.002) for x, y in zip(df["lon"], df["lat"])]
    page_path = tmp_path / "map.html"
    page_path.write_text(map_html(df, run_facts_for(tmp_path, synthetic=False, missing=None)), encoding="utf-8")

    page = browser.new_page(viewport={"width": 1280, "height": 860})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(page_path.resolve().as_uri())
    page.wait_for_function("window.minescan !== undefined")
    assert errors == []
    assert page.locator("canvas.leaflet-zoom-animated").count() >= 1 and page.locator("path.site-footprint").count() == 0
    assert page.evaluate("window.minescan.markers.getLayers().length") == n
    assert page.locator(".marker-cluster").count() > 0  # clustered at country scale
    assert page.evaluate("window.minescan.footprints.getLayers().length") == 0  # too far out to draw them
    lat, lon = float(df["lat"][0]), float(df["lon"][0])
    page.evaluate(f"window.minescan.map.setView([{lat}, {lon}], {FOOTPRINT_MIN_ZOOM + 3}, {{animate: false}})")
    drawn = page.evaluate("window.minescan.footprints.getLayers().length")
    assert 1 <= drawn < n / 10  # the one in view and its neighbours, not the country
    assert errors == []
    page.close()


def test_a_run_with_no_sites_writes_every_output_and_its_map_still_loads(browser, tmp_path):
    from minescan.outputs import empty_sites, empty_detections

    facts = run_facts_for(tmp_path, synthetic=True)
    files = write_national(tmp_path / "national", national_of(empty_sites(), empty_detections()), facts=facts,
                           summary={})
    assert {"gpkg", "map", "report", "stac", "summary"} <= set(files)
    assert "No sites." in files["report"].read_text("utf-8")
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(files["map"].resolve().as_uri())
    page.wait_for_function("window.minescan !== undefined")
    assert errors == [] and page.locator("path.scene.missing").count() == 1
    page.close()


def test_sites_kml_with_footprints_and_unregistered_styles_validates_against_ogc_kml_2_2(national):
    from lxml import etree

    from tests.outputs.test_outputs import kml_schema

    _, files, _ = national
    schema = kml_schema()
    assert schema.validate(etree.parse(str(files["kml"]))), schema.error_log
    text = files["kml"].read_text("utf-8")
    assert "<MultiGeometry><Point>" in text and "-unregistered</styleUrl>" in text
