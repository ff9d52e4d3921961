"""The scene manifest: which scenes exist, where they are, and the global grid they sit on.

Written by `minescan acquire scenes`, read by `minescan map` (one pod per scene). Two forms:

* JSON (`manifest.json`): `grid` (CRS, origin, pixel size, stride, scene step and size,
  owned cells) and `scenes: [{id, uri, row, col, pixel_row, pixel_col, width, height,
  bounds, transform}]`. With the grid, a scene's local output cell (i, j) is the global
  cell (pixel_row/stride + i, pixel_col/stride + j), the same in every scene that has it.
* plain text (`manifest.txt`): one scene URI per line (`#` comments allowed), for hand-made
  runs over scenes from elsewhere; ids are the file names without extension, and no grid.

`read_manifest` accepts a path or URI (local or `gs://`, through `storage`) or the text itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from ..errors import InputError
from ..validation import validate
from . import grid as grid_mod
from .layout import SCENE_ID_PATTERN, check_scene_id, scene_id_from_name

FORMAT = "minescan.scene-manifest"
VERSION = 1


class GridDef(BaseModel):
    """The global pixel grid every scene of the manifest lies on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    crs: str = Field(description="CRS of the pixel grid, e.g. EPSG:4326")
    origin_lon: float = Field(description="x of the grid's top-left corner (global pixel 0, 0)")
    origin_lat: float = Field(description="y of the grid's top-left corner")
    pixel_deg: float = Field(gt=0, description="pixel edge in CRS units (degrees)")
    stride_px: int = Field(gt=0, description="scene origins are multiples of this; the scan's output stride")
    scene_step_px: int = Field(gt=0, description="distance between neighbouring scene origins, px")
    scene_px: int = Field(gt=0, description="scene edge, px (step plus overlap)")
    overlap_px: int = Field(ge=0, description="overlap of neighbouring scenes, px")
    owned_cell_offset: int = Field(
        ge=0, description="first local output cell (per axis) a scene owns; earlier cells see the scene edge"
    )
    owned_cells: int = Field(
        ge=0, description="output cells per axis a scene owns; owned cells of all scenes tile the global grid once"
    )

    @classmethod
    def from_spec(cls, spec: grid_mod.GridSpec) -> "GridDef":
        return cls(
            crs=spec.crs,
            origin_lon=spec.origin_lon,
            origin_lat=spec.origin_lat,
            pixel_deg=spec.pixel_deg,
            stride_px=spec.align_px,
            scene_step_px=spec.step_px,
            scene_px=spec.size_px,
            overlap_px=spec.overlap_px,
            owned_cell_offset=grid_mod.OWNED_CELL_OFFSET if spec == grid_mod.S2_GRID else 0,
            owned_cells=spec.step_px // spec.align_px,
        )


class SceneEntry(BaseModel):
    """One exported scene. Only `id` and `uri` are known for a plain-text manifest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="stable scene id, r{row:04d}c{col:04d} on the grid; "
                   f"a path segment, so it matches {SCENE_ID_PATTERN}")
    uri: str = Field(min_length=1, description="GeoTIFF location, gs:// or local")
    row: int | None = Field(default=None, description="scene row of the grid")
    col: int | None = Field(default=None, description="scene column of the grid")
    pixel_row: int | None = Field(default=None, description="global pixel row of the scene's top edge")
    pixel_col: int | None = Field(default=None, description="global pixel column of the scene's left edge")
    width: int | None = Field(default=None, gt=0, description="pixels")
    height: int | None = Field(default=None, gt=0, description="pixels")
    bounds: tuple[float, float, float, float] | None = Field(
        default=None, description="west, south, east, north in the grid CRS"
    )
    transform: tuple[float, float, float, float, float, float] | None = Field(
        default=None, description="a, b, c, d, e, f of the affine pixel→CRS transform (rasterio order)"
    )

    @field_validator("id")
    @classmethod
    def _id_is_a_safe_path_segment(cls, value: str) -> str:
        try:
            return check_scene_id(value)
        except InputError as exc:
            raise ValueError(str(exc)) from None

    @classmethod
    def from_scene(cls, s: grid_mod.Scene, uri: str) -> "SceneEntry":
        b = s.bounds
        return cls(
            id=s.id, uri=uri, row=s.row, col=s.col, pixel_row=s.pixel_row, pixel_col=s.pixel_col,
            width=s.size, height=s.size, bounds=(b.west, b.south, b.east, b.north),
            transform=s.transform,
        )


class Manifest(BaseModel):
    """Scenes of one acquisition, and how they were made."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["minescan.scene-manifest"] = Field(default=FORMAT, description="file type tag")
    version: Literal[1] = Field(default=VERSION, description="manifest format version")
    grid: GridDef | None = Field(default=None, description="the global grid; absent for a plain-text manifest")
    bands: list[str] | None = Field(default=None, description="band names in file order")
    dtype: str | None = Field(default=None, description="pixel type of the files, e.g. uint16")
    nodata: float | None = Field(default=None, description="value of pixels with no cloud-free observation")
    source: dict[str, object] | None = Field(
        default=None, description="how the scenes were made (collection, dates, filters)"
    )
    scenes: list[SceneEntry] = Field(description="scenes in a stable order (row-major)")

    @model_validator(mode="after")
    def _unique_ids_on_grid(self) -> "Manifest":
        ids = [s.id for s in self.scenes]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"scene ids repeat: {dup[:5]}")
        if self.grid is not None:
            for s in self.scenes:
                for origin in (s.pixel_row, s.pixel_col):
                    if origin is not None and origin % self.grid.stride_px:
                        raise ValueError(f"scene {s.id} origin {origin} is not a multiple of the "
                                         f"grid stride {self.grid.stride_px}")
        return self

    def scene(self, scene_id: str) -> SceneEntry:
        for s in self.scenes:
            if s.id == scene_id:
                return s
        raise InputError(f"scene {scene_id!r} is not in the manifest; it lists {len(self.scenes)} scenes")

    def to_text(self) -> str:
        return "".join(f"{s.uri}\n" for s in self.scenes)


def read_manifest(path_or_text: str | Path) -> Manifest:
    """Parse a manifest from a path/URI (JSON or text file) or from the text itself.

    A `str` is taken as content when it starts with `{` or holds a newline, otherwise as a
    path or URI.
    """
    if isinstance(path_or_text, Path) or not _looks_like_content(path_or_text):
        text = _read_text(str(path_or_text))
    else:
        text = path_or_text
    if text.lstrip().startswith("{"):
        return _parse_json(text)
    return _parse_text(text)


def write_manifest(manifest: Manifest, json_uri: str) -> tuple[str, str]:
    """Write `manifest.json` and its plain-text sibling (`.txt`); return both URIs."""
    from .. import storage

    text_uri = json_uri[: -len(".json")] + ".txt" if json_uri.endswith(".json") else json_uri + ".txt"
    for uri, body in ((json_uri, manifest.model_dump_json(indent=1)), (text_uri, manifest.to_text())):
        storage.write_text(uri, body)
    return json_uri, text_uri


def _looks_like_content(s: str) -> bool:
    return s.lstrip().startswith("{") or "\n" in s


def _read_text(uri: str) -> str:
    from .. import storage

    try:
        return storage.read_text(uri)
    except storage.NotFoundError:
        raise InputError(
            f"manifest {storage.redact(uri)} does not exist: give the path `acquire scenes` wrote"
        ) from None
    except UnicodeDecodeError:
        raise InputError(f"manifest {storage.redact(uri)} is not UTF-8 text: give a JSON or "
                         "one-URI-per-line manifest") from None


def _parse_json(text: str) -> Manifest:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"manifest is not valid JSON ({exc}); fix or re-create it") from None
    return validate(Manifest, data, "manifest is malformed")


def _parse_text(text: str) -> Manifest:
    uris = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not uris:
        raise InputError("manifest lists no scenes: one scene URI per line expected")
    entries = [{"id": scene_id_from_name(u), "uri": u} for u in uris]
    return validate(Manifest, {"scenes": entries}, "plain-text manifest (name scene files uniquely) is invalid")
