"""Vector layers a user passes (protected land, regions, register polygons): read and checked.

Every check runs when the layer is loaded, before the reduce reads a single shard: a file
that does not exist, is not a vector layer or has no CRS is an `InputError` (exit 3).
Invalid polygons (self-intersections are common in official layers) are repaired with
`shapely.make_valid`, and every repair and every empty geometry is counted and logged,
never dropped in silence.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from .. import storage
from ..errors import InputError

if TYPE_CHECKING:
    import geopandas as gpd

log = logging.getLogger(__name__)

#: attribute names tried, case-insensitively, when a layer's name column is not given
#: (FUNAI's indigenous lands: `terrai_nom`; ICMBio's conservation units: `nome_uc1`;
#: IBGE's states and municipalities: `NM_UF`, `NM_MUN`; Amazon Mining Watch: `name_field`)
NAME_COLUMNS = ("name", "nome", "name_field", "terrai_nom", "nome_uc1", "nm_mun", "nm_uf", "nm_regiao", "bioma")
TYPE_COLUMNS = ("type", "tipo", "type_field", "categoria", "fase_ti", "categoria_")


class LayerSpec(BaseModel):
    """One polygon layer and how to read it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(description="vector file (GeoPackage, GeoJSON, shapefile, ...), local or gs://")
    layer: str | None = Field(None, description="layer inside a multi-layer file (GeoPackage)")
    name_column: str | None = Field(None, description=f"attribute naming each area; default: first of {NAME_COLUMNS}")
    type_column: str | None = Field(None, description=f"attribute typing each area; default: first of {TYPE_COLUMNS}")
    type: str | None = Field(None, description="type for areas whose type attribute is empty (e.g. 'indigenous territory')")
    source: str | None = Field(None, description="name of the layer in the outputs; default: the file's stem")


@dataclass(frozen=True)
class PolygonLayer:
    """Valid polygons in EPSG:4326, each with a name and a type."""

    source: str
    path: str
    #: columns `name`, `type`, geometry
    frame: gpd.GeoDataFrame
    repaired: int
    empty: int


def localize_input(path: str, workdir: str, what: str, *, file: bool = False) -> Path:
    """`path` (local or `gs://`) as a local path inside `workdir`, or an InputError naming
    `what` when it does not exist (or, with `file`, is not a file)."""
    try:
        local = Path(storage.localize(path, workdir))
    except storage.NotFoundError:
        raise InputError(f"{what} {path} does not exist") from None
    if not (local.is_file() if file else local.exists()):
        raise InputError(f"{what} {path} does not exist")
    return local


def read_vector(path: str, layer: str | None, what: str) -> gpd.GeoDataFrame:
    """A vector layer in EPSG:4326, or an InputError saying why it cannot be one."""
    import geopandas as gpd

    with tempfile.TemporaryDirectory(prefix="minescan-layer-") as tmp:
        local = localize_input(path, tmp, what)
        try:
            frame = gpd.read_file(local, layer=layer)
        except Exception as exc:  # noqa: BLE001 - pyogrio's DataSourceError, DataLayerError and friends
            raise InputError(
                f"{what} {path} is not a vector layer GDAL can read ({exc}); give a GeoPackage, "
                "GeoJSON or shapefile"
            ) from None
    if "geometry" not in frame or not isinstance(frame, gpd.GeoDataFrame):
        raise InputError(f"{what} {path} has no geometry column: give a vector layer, not a table")
    if frame.crs is None:
        raise InputError(
            f"{what} {path} has no CRS, so its coordinates cannot be placed; assign one "
            "(ogr2ogr -a_srs EPSG:4674 OUT IN for SIRGAS 2000) and pass the new file"
        )
    if not frame.crs.equals("EPSG:4326"):
        frame = frame.to_crs("EPSG:4326")
    return frame


def pick_column(frame, given: str | None, candidates: Sequence[str], what: str) -> str | None:
    """The column named `given` (InputError if absent) or the first candidate present."""
    if given is not None:
        if given not in frame.columns:
            raise InputError(f"{what} has no column {given!r}; its columns are {list(frame.columns)[:20]}")
        return given
    lower = {str(c).lower(): c for c in frame.columns}
    return next((lower[c] for c in candidates if c in lower), None)


def repair_polygons(frame: gpd.GeoDataFrame, what: str) -> tuple[gpd.GeoDataFrame, int, int]:
    """Polygon rows made valid; (frame, repaired count, empty count). Lines or points: InputError."""
    import shapely

    geoms = frame.geometry.to_numpy()
    empty = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    kinds = set(shapely.get_type_id(geoms[~empty]).tolist())
    polygonal = {3, 6}  # Polygon, MultiPolygon
    if kinds - polygonal:
        names = sorted({shapely.GeometryType(k).name for k in kinds - polygonal})
        raise InputError(f"{what} holds {names} geometries: give polygons")
    invalid = ~empty & ~shapely.is_valid(geoms)
    if invalid.any():
        fixed = shapely.make_valid(geoms[invalid])
        # make_valid may return a collection with stray lines where rings touched: keep area
        geoms = geoms.copy()
        geoms[invalid] = [_polygonal(g) for g in fixed]
    out = frame.copy()
    out[out.geometry.name] = geoms
    out = out[~empty].reset_index(drop=True)
    if invalid.any() or empty.any():
        log.warning("%s: repaired %d invalid polygon(s), skipped %d empty geometry(ies)",
                    what, int(invalid.sum()), int(empty.sum()),
                    extra={"layer": what, "repaired": int(invalid.sum()), "empty": int(empty.sum())})
    return out, int(invalid.sum()), int(empty.sum())


def _polygonal(geom):
    import shapely

    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else shapely.MultiPolygon()


def read_polygon_layer(spec: LayerSpec, what: str) -> PolygonLayer:
    """A protected-area or region layer: valid polygons with `name` and `type`."""
    import geopandas as gpd

    source = spec.source or Path(spec.path.rstrip("/")).stem
    label = f"{what} {spec.path}"
    frame = read_vector(spec.path, spec.layer, what)
    frame, repaired, empty = repair_polygons(frame, label)
    name_col = pick_column(frame, spec.name_column, NAME_COLUMNS, label)
    type_col = pick_column(frame, spec.type_column, TYPE_COLUMNS, label)
    names = [f"{source} #{i + 1}" for i in range(len(frame))]
    if name_col is not None:
        names = [str(v) if _present(v) else names[i] for i, v in enumerate(frame[name_col])]
    else:
        log.warning("%s has no name column (tried %s): areas are numbered", label, ", ".join(NAME_COLUMNS))
    default_type = spec.type or source
    types = [default_type] * len(frame)
    if type_col is not None:
        types = [str(v) if _present(v) else default_type for v in frame[type_col]]
    out = gpd.GeoDataFrame({"name": names, "type": types}, geometry=frame.geometry.to_numpy(), crs="EPSG:4326")
    return PolygonLayer(source=source, path=spec.path, frame=out, repaired=repaired, empty=empty)


def _present(value: object) -> bool:
    import pandas as pd

    return value is not None and not (not isinstance(value, str) and pd.isna(value)) and str(value).strip() != ""
