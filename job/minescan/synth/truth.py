"""Planted truth as GeoJSON: written beside each scene, read back for scoring and chips."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..bands import DEFAULT_BANDS, PIXEL_DEG
from ..errors import InputError
from .kinds import SceneTruth, TruthObject
from .plan import _to_pixels
from .render import synthesize_scene

if TYPE_CHECKING:
    from affine import Affine


def write_truth_geojson(truth: SceneTruth, path: str | os.PathLike) -> Path:
    """RFC 7946 FeatureCollection (EPSG:4326, counter-clockwise exteriors) of the truth.

    The scene's grid travels as a foreign member so that pixel polygons can be rebuilt.
    """
    from shapely.geometry import mapping

    features = [
        {
            "type": "Feature",
            "id": o.id,
            "geometry": mapping(o.polygon_lonlat),
            "properties": {"id": o.id, "kind": o.kind, "is_target": o.is_target,
                           "impact": o.impact, "ore": o.ore},
        }
        for o in truth.objects
    ]
    doc = {
        "type": "FeatureCollection",
        "features": features,
        "scene": {"path": Path(truth.path).name, "size": truth.size,
                  "transform": list(truth.transform)[:6], "bands": list(truth.bands)},
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return path


def read_truth_geojson(path: str | os.PathLike, transform: "Affine | None" = None
                       ) -> tuple[TruthObject, ...]:
    """Truth objects from `write_truth_geojson`; pixel polygons from `transform` or the file."""
    from affine import Affine
    from shapely.geometry import shape

    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        if transform is None:
            if "scene" not in doc:
                raise InputError(f"truth GeoJSON {path} does not record its scene grid: pass "
                                 "the scene's transform (or use load_scene_truth)")
            transform = Affine(*doc["scene"]["transform"])
        objects = []
        for feat in doc["features"]:
            props = feat["properties"]
            poly = shape(feat["geometry"])
            objects.append(TruthObject(
                str(props["id"]), str(props["kind"]), bool(props["is_target"]),
                props.get("impact"), props.get("ore"), _to_pixels(poly, transform), poly,
            ))
    except InputError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(
            f"cannot read truth GeoJSON {path}: {exc}; write it with write_truth_geojson"
        ) from None
    return tuple(objects)


def load_scene_truth(scene_path: str | os.PathLike, truth_path: str | os.PathLike) -> SceneTruth:
    """A `SceneTruth` from a scene GeoTIFF and its truth GeoJSON (grid taken from the TIFF)."""
    import rasterio

    with rasterio.open(scene_path) as src:
        if src.width != src.height:
            raise InputError(f"{scene_path} is {src.width}×{src.height}: synthetic scenes are square")
        bands = tuple(src.descriptions)
        transform, size, crs = src.transform, src.width, src.crs.to_string()
    return SceneTruth(str(scene_path), size, transform, crs, bands,
                      read_truth_geojson(truth_path, transform))


def make_training_scenes(
    out_dir: str | os.PathLike, n_scenes: int, size: int, seed: int,
    bands: Sequence[str] = DEFAULT_BANDS,
) -> tuple[SceneTruth, ...]:
    """`n_scenes` scenes (each with a `.truth.geojson` beside it) at distinct origins."""
    out_dir = Path(out_dir)
    truths = []
    for i in range(n_scenes):
        scene_seed = int(np.random.SeedSequence([seed & 0xFFFFFFFF, 7, i]).generate_state(1)[0])
        origin = (-44.0 + i * size * PIXEL_DEG * 1.1, -20.0)
        truth = synthesize_scene(out_dir / f"scene_{i:03d}.tif", size=size, seed=scene_seed,
                                 bands=bands, origin_lonlat=origin)
        write_truth_geojson(truth, out_dir / f"scene_{i:03d}.truth.geojson")
        truths.append(truth)
    return tuple(truths)


