"""`minescan acquire ... --dry-run`: the whole plan offline, for real Brazilian areas; bad input
and missing credentials fail with exit code 3 and a line that says what to do."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from minescan.cli.main import main
from minescan.errors import EXIT_BAD_INPUT

from tests.helpers import DATA

BRAZIL_EAST = DATA / "amw_brazil_east_simplified.geojson"


@pytest.fixture()
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[:2]}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def run(args: list[str]) -> int:
    try:
        main(["acquire", *args])
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_dry_run_plans_scenes_over_a_real_brazilian_area_offline(no_network, tmp_path: Path) -> None:
    plan_path = tmp_path / "plan.json"
    rc = run(["scenes", "--aoi", str(BRAZIL_EAST), "--bucket", "gs://my-bucket/s2/2019",
              "--dry-run", "--json", str(plan_path)])
    assert rc == 0
    plan = json.loads(plan_path.read_text())
    scenes = plan["manifest"]["scenes"]
    assert plan["n_exports"] == len(plan["exports"]) == len(scenes) == 41
    assert plan["manifest"]["grid"]["stride_px"] == 27 and plan["manifest"]["grid"]["overlap_px"] == 216
    assert plan["manifest"]["bands"] == ["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B9", "B10", "B11", "B12"]
    assert plan["manifest_uri"] == "gs://my-bucket/s2/2019/manifest.json"
    assert "COPERNICUS/S2_HARMONIZED" in json.dumps(plan["image_graph"])
    first = plan["exports"][0]
    assert first["object_uri"] == scenes[0]["uri"] == f"gs://my-bucket/s2/2019/{scenes[0]['id']}.tif"
    dest = first["request"]["fileExportOptions"]["cloudStorageDestination"]
    assert dest == {"bucket": "my-bucket", "filenamePrefix": f"s2/2019/{scenes[0]['id']}"}
    # every scene lies on the global grid, on the stride
    assert all(s["pixel_row"] % 27 == 0 and s["pixel_col"] % 27 == 0 for s in scenes)
    # the plan's manifest is a manifest the map job reads
    from minescan.batch.manifest import Manifest

    assert len(Manifest.model_validate(plan["manifest"]).scenes) == 41


def test_dry_run_plans_chips_from_the_anm_register(no_network, tmp_path: Path) -> None:
    plan_path = tmp_path / "chips.json"
    rc = run(["chips", "--points", str(DATA / "anm_barragens_sample.tsv"), "--bucket", "gs://b/chips",
              "--dry-run", "--json", str(plan_path)])
    assert rc == 0
    plan = json.loads(plan_path.read_text())
    uris = [e["object_uri"] for e in plan["exports"]]
    assert len(uris) == 12 and "gs://b/chips/chips201/mine/anm0001.tif" in uris
    assert "gs://b/chips/chips21/mine/anm0006.tif" in uris
    index = plan["chip_index_csv"].splitlines()
    assert index[0].startswith("id,name,label,ore,lon,lat,size")
    assert "Minério de Ferro" in plan["chip_index_csv"]


def test_dry_run_plans_landsat_mosaics_for_the_kayapo_region(no_network, tmp_path: Path) -> None:
    plan_path = tmp_path / "landsat.json"
    rc = run(["landsat", "--aoi", str(DATA / "amw_para_kayapo.geojson"), "--first-year", "2019",
              "--last-year", "2020", "--bucket", "gs://b/landsat", "--dry-run", "--json", str(plan_path)])
    assert rc == 0
    plan = json.loads(plan_path.read_text())
    years = {e["key"].split("/")[0] for e in plan["exports"]}
    assert years == {"2019", "2020"}
    assert plan["manifest"]["bands"] == ["swir1", "nir", "red", "mndwi", "ndvi", "ndsi"]


def write_geojson(path: Path, features: list[dict]) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


@pytest.mark.parametrize(
    ("features", "message"),
    [
        ([{"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [-50, -10]}}],
         "not a polygon"),
        ([], "is empty"),
        ([{"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [
            [[500000, 9000000], [510000, 9000000], [510000, 9010000], [500000, 9000000]]]}}],
         "outside lon"),
    ],
)
def test_bad_aoi_is_bad_input(tmp_path: Path, capsys, features: list[dict], message: str) -> None:
    aoi = write_geojson(tmp_path / "aoi.geojson", features)
    rc = run(["scenes", "--aoi", str(aoi), "--bucket", "gs://b/x", "--dry-run"])
    assert rc == EXIT_BAD_INPUT
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--start", "2020-01-01", "--end", "2019-06-01"], "must be before end"),
        (["--bands", "B1,B2,B13"], "unknown Sentinel-2 band"),
    ],
)
def test_bad_composite_options_are_bad_input(capsys, extra: list[str], message: str) -> None:
    rc = run(["scenes", "--aoi", str(BRAZIL_EAST), "--bucket", "gs://b/x", "--dry-run", *extra])
    assert rc == EXIT_BAD_INPUT
    assert message in capsys.readouterr().err


def test_a_malformed_date_is_a_usage_error_not_bad_input(capsys) -> None:
    """A value the command line cannot parse is exit 2 (issue 9), like click's own checks."""
    rc = run(["scenes", "--aoi", str(BRAZIL_EAST), "--bucket", "gs://b/x", "--dry-run", "--start", "01/02/2019"])
    assert rc == 2
    assert "is not a date" in capsys.readouterr().err


def test_points_file_without_coordinates_is_bad_input(tmp_path: Path, capsys) -> None:
    points = tmp_path / "p.csv"
    points.write_text("name,label\nA,mine\n")
    rc = run(["chips", "--points", str(points), "--bucket", "gs://b/x", "--dry-run"])
    assert rc == EXIT_BAD_INPUT
    assert "no coordinate columns" in capsys.readouterr().err


def test_missing_credentials_say_how_to_authenticate(tmp_path: Path, monkeypatch, capsys, no_network) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    # not on Google Cloud: google-auth would otherwise probe the metadata server for pod credentials
    from google.auth.compute_engine import _metadata

    monkeypatch.setattr(_metadata, "_NO_GCE_CHECK", True)
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.delenv("EE_CREDENTIALS", raising=False)
    import ee.oauth

    monkeypatch.setattr(ee.oauth, "get_credentials_path", lambda: str(tmp_path / "ee" / "credentials"))
    rc = run(["scenes", "--aoi", str(BRAZIL_EAST), "--bucket", "gs://b/x"])
    assert rc == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "earthengine authenticate" in err and "Workload Identity" in err
