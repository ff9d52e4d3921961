"""Labelled scenes for the U-Net, and the training tiles cut from them.

Two sources, one shape: a `LabelledScene` is a (rows, cols, bands) float32 array (NaN where
there is no observation) with a (rows, cols) uint8 label mask: 1 mining, 0 not, `IGNORE`
(255) unlabelled or unobserved.

- a feature cube with a folder of per-year label masks (GeoTIFFs named with their year, on
  the cube's grid; 1 mining, 0 not, 255 unlabelled): one scene per year the two share;
- a folder of `img_NNN.tif` + `mask_NNN.tif` pairs (any bands, named in the file; masks
  0/1 on the image's grid): one scene per pair, named `img_NNN`.

Tiles are drawn per scene from a seeded generator: a share of them centred near a random
mining pixel (mines are rare: about 1–5 % of pixels), the rest anywhere; a tile reaching
past the scene's edge is padded with no-data and IGNORE, so nothing invented is learnt.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..training.loop import IGNORE
from .cube import FeatureCube, describe_grid, file_grid, find_year_files, same_grid

log = logging.getLogger(__name__)

_PAIR = re.compile(r"^img_(\w+)\.tiff?$", re.IGNORECASE)


@dataclass(frozen=True)
class LabelledScene:
    """One scene's inputs and labels on one grid."""

    name: str
    x: np.ndarray  # (rows, cols, bands) float32, NaN = no observation
    labels: np.ndarray  # (rows, cols) uint8: 1 mining, 0 not, IGNORE

    @property
    def mining(self) -> np.ndarray:
        return self.labels == 1


@dataclass(frozen=True)
class TileSet:
    """Training tiles (n, tile, tile, bands) with their label masks and where each came from."""

    x: np.ndarray
    y: np.ndarray
    origins: tuple[str, ...]

    def describe(self) -> dict[str, object]:
        scored = self.y != IGNORE
        return {"n_tiles": int(self.y.shape[0]), "tile": int(self.y.shape[1]),
                "mining_share": round(float((self.y == 1).sum() / max(scored.sum(), 1)), 5),
                "scenes": sorted(set(o.split("@")[0] for o in self.origins))}


def _check_labels(labels: np.ndarray, where: str) -> np.ndarray:
    values = set(np.unique(labels).tolist()) - {0, 1, IGNORE}
    if values:
        raise InputError(f"{where} holds label values {sorted(values)[:5]}: use 1 mining, 0 not, "
                         f"{IGNORE} unlabelled")
    return labels.astype(np.uint8, copy=False)


def _read_mask(path: Path) -> np.ndarray:
    import rasterio

    with rasterio.open(path) as src:
        return _check_labels(src.read(1), str(path))


def cube_scenes(cube: FeatureCube, labels_dir: str | os.PathLike[str],
                features: Sequence[str] | None = None) -> Iterator[LabelledScene]:
    """One scene per year that the cube and the label folder share, read one at a time."""
    masks = {f.year: f.path for f in find_year_files(labels_dir)}
    shared = [y for y in cube.years if y in masks]
    if not shared:
        raise InputError(f"no year of the cube ({cube.years[0]}–{cube.years[-1]}) has a label "
                         f"mask in {labels_dir}")
    for year in shared:
        grid = file_grid(masks[year])
        if not same_grid(grid, cube.grid):
            raise InputError(f"the label mask {masks[year]} is on {describe_grid(grid)}, the cube on "
                             f"{describe_grid(cube.grid)}: rasterise the labels on the cube's grid")
        x = cube.year_features(year, features)
        labels = _read_mask(masks[year])
        labels[np.isnan(x).any(axis=-1)] = IGNORE
        yield LabelledScene(str(year), x, labels)


def image_pairs(images_dir: str | os.PathLike[str]) -> list[tuple[str, Path, Path]]:
    """(name, image, mask) for every img_NNN.tif with a mask_NNN.tif beside it, sorted."""
    root = Path(images_dir)
    if not root.is_dir():
        raise InputError(f"{root} is not a directory of img_NNN.tif + mask_NNN.tif pairs")
    pairs = []
    for image in sorted(root.iterdir()):
        match = _PAIR.match(image.name)
        if not match:
            continue
        mask = next((root / f"mask_{match.group(1)}{s}" for s in (".tif", ".tiff")
                     if (root / f"mask_{match.group(1)}{s}").exists()), None)
        if mask is None:
            raise InputError(f"{image} has no mask_{match.group(1)}.tif beside it")
        pairs.append((image.stem, image, mask))
    if not pairs:
        raise InputError(f"no img_NNN.tif + mask_NNN.tif pairs in {root}")
    return pairs


def image_bands(src) -> tuple[str, ...]:
    """An open raster's band names: its descriptions, else b1, b2, …"""
    return tuple((d or f"b{i + 1}").strip() for i, d in enumerate(src.descriptions))


def read_image_scene(name: str, image: Path, mask: Path,
                     bands: Sequence[str] | None = None) -> tuple[LabelledScene, tuple[str, ...]]:
    """One image/mask pair as a scene, and its band names (from the file, else b1, b2, …)."""
    import rasterio

    with rasterio.open(image) as src:
        names = image_bands(src)
        wanted = names if bands is None else tuple(bands)
        missing = [b for b in wanted if b not in names]
        if missing:
            raise InputError(f"{image} has bands {list(names)} but {list(wanted)} are needed "
                             f"(missing {missing})")
        x = src.read([names.index(b) + 1 for b in wanted], masked=True).astype(np.float32)
    labels = _read_mask(mask)
    if labels.shape != x.shape[1:]:
        raise InputError(f"{mask} is {labels.shape[1]}×{labels.shape[0]} px but {image} is "
                         f"{x.shape[2]}×{x.shape[1]}: a mask must share its image's grid")
    x = np.moveaxis(np.ma.filled(x, np.nan), 0, -1)
    labels[np.isnan(x).any(axis=-1)] = IGNORE
    return LabelledScene(name, np.ascontiguousarray(x), labels), wanted


def image_scenes(images_dir: str | os.PathLike[str],
                 bands: Sequence[str] | None = None) -> tuple[list[LabelledScene], tuple[str, ...]]:
    """Every pair in the folder, all with the same bands (the first image's, or `bands`)."""
    scenes, names = [], None
    for name, image, mask in image_pairs(images_dir):
        scene, got = read_image_scene(name, image, mask, bands if bands is not None else names)
        names = got
        scenes.append(scene)
    assert names is not None  # image_pairs never returns an empty list
    return scenes, names


def sample_tiles(scenes: Iterable[LabelledScene], *, per_scene: int, tile: int,
                 positive_share: float, seed: int) -> TileSet:
    """`per_scene` tiles from each scene (see the module doc); deterministic for a seed."""
    xs, ys, origins = [], [], []
    for i, scene in enumerate(scenes):
        rng = np.random.default_rng(np.random.SeedSequence([seed & 0xFFFFFFFF, 12, i]))
        positives = np.argwhere(scene.mining)
        for _ in range(per_scene):
            if positives.size and rng.random() < positive_share:
                centre = positives[rng.integers(len(positives))] + rng.integers(-tile // 4, tile // 4 + 1, 2)
            else:
                centre = np.array([rng.integers(scene.labels.shape[0]), rng.integers(scene.labels.shape[1])])
            row, col = (int(v) for v in centre - tile // 2)
            x, y = crop(scene, row, col, tile)
            xs.append(x)
            ys.append(y)
            origins.append(f"{scene.name}@{row},{col}")
    if not xs:
        raise InputError("no scene to cut training tiles from")
    return TileSet(np.stack(xs), np.stack(ys), tuple(origins))


def crop(scene: LabelledScene, row: int, col: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The size × size window at (row, col); outside the scene: NaN inputs, IGNORE labels."""
    rows, cols = scene.labels.shape
    x = np.full((size, size, scene.x.shape[-1]), np.nan, np.float32)
    y = np.full((size, size), IGNORE, np.uint8)
    r0, r1 = max(row, 0), min(row + size, rows)
    c0, c1 = max(col, 0), min(col + size, cols)
    if r0 < r1 and c0 < c1:
        x[r0 - row : r1 - row, c0 - col : c1 - col] = scene.x[r0:r1, c0:c1]
        y[r0 - row : r1 - row, c0 - col : c1 - col] = scene.labels[r0:r1, c0:c1]
    return x, y
