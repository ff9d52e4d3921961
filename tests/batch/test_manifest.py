"""The scene manifest `minescan map` reads: JSON and plain-text forms, and what it guarantees."""

from __future__ import annotations

from pathlib import Path

import pytest
from minescan.batch import grid
from minescan.batch.manifest import (
    GridDef,
    Manifest,
    SceneEntry,
    read_manifest,
    write_manifest,
)
from minescan.errors import InputError


def make_manifest() -> Manifest:
    scenes = [grid.scene(121, 146), grid.scene(121, 147)]
    return Manifest(
        grid=GridDef.from_spec(grid.S2_GRID),
        bands=["B1", "B2"],
        dtype="uint16",
        nodata=0,
        scenes=[SceneEntry.from_scene(s, f"gs://b/s2/{s.id}.tif") for s in scenes],
    )


def test_json_manifest_round_trips_through_a_file(tmp_path: Path) -> None:
    m = make_manifest()
    json_uri, text_uri = write_manifest(m, str(tmp_path / "manifest.json"))
    assert read_manifest(json_uri) == m
    assert read_manifest(Path(json_uri)) == m
    assert Path(text_uri).read_text() == "gs://b/s2/r0121c0146.tif\ngs://b/s2/r0121c0147.tif\n"


def test_manifest_text_content_is_read_directly() -> None:
    m = make_manifest()
    assert read_manifest(m.model_dump_json()) == m
    plain = read_manifest("# scenes\ngs://b/s2/r0001c0002.tif\n\n/data/other.tif\n")
    assert [(s.id, s.uri) for s in plain.scenes] == [("r0001c0002", "gs://b/s2/r0001c0002.tif"),
                                                      ("other", "/data/other.tif")]
    assert plain.grid is None


def test_grid_in_the_manifest_gives_global_cell_indices() -> None:
    m = make_manifest()
    g = m.grid
    a, b = m.scenes
    # local cell j of scene a and local cell j - step/stride of its east neighbour are one cell
    j = g.owned_cells + 1
    assert a.pixel_col // g.stride_px + j == b.pixel_col // g.stride_px + (j - g.scene_step_px // g.stride_px)
    # the transform puts the scene's first pixel where the grid says
    assert a.transform[2] == pytest.approx(g.origin_lon + a.pixel_col * g.pixel_deg)
    assert a.transform[5] == pytest.approx(g.origin_lat - a.pixel_row * g.pixel_deg)
    assert (g.stride_px, g.overlap_px, g.scene_px, g.owned_cell_offset, g.owned_cells) == (27, 216, 9423, 1, 341)


def test_repeated_scene_ids_are_refused() -> None:
    with pytest.raises(InputError, match="repeat"):
        read_manifest("gs://b/a/r1.tif\ngs://b/b/r1.tif\n")


def test_scene_off_the_stride_is_refused() -> None:
    m = make_manifest()
    bad = m.model_dump(mode="json")
    bad["scenes"][0]["pixel_col"] += 1
    import json

    with pytest.raises(InputError, match="not a multiple of the grid stride"):
        read_manifest(json.dumps(bad))


def test_missing_or_malformed_manifest_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        read_manifest(str(tmp_path / "nope.json"))
    with pytest.raises(InputError, match="malformed at scenes"):
        read_manifest('{"scenes": 3}')
    with pytest.raises(InputError, match="no scenes"):
        read_manifest("# nothing\n\n")


def test_unknown_scene_is_bad_input() -> None:
    with pytest.raises(InputError, match="not in the manifest"):
        make_manifest().scene("r9999c9999")
    assert make_manifest().scene("r0121c0147").col == 147
