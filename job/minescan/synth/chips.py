"""Training chips cut from synthetic scenes, in the authors' folder layout."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..bands import DEFAULT_BANDS
from ..errors import InputError
from ..ores import IMPACT_CLASSES
from ..storage import replace_dir
from .kinds import CRS, NODATA, ChipInfo, SceneTruth, TruthObject
from .plan import _point_in, _rng, scene_transform
from .truth import make_training_scenes

if TYPE_CHECKING:
    from affine import Affine


@dataclass
class _SceneIndex:
    """Targets of one scene in an STRtree, for fast "does this window touch a target"."""

    truth: SceneTruth
    targets: tuple[TruthObject, ...] = field(init=False)
    tree: Any = field(init=False)

    def __post_init__(self):
        from shapely import STRtree

        self.targets = self.truth.targets
        self.tree = STRtree([o.polygon_pixels for o in self.targets])

    def target_area(self, win) -> float:
        return sum(self.targets[i].polygon_pixels.intersection(win).area
                   for i in self.tree.query(win))

    def touches_target(self, win) -> bool:
        return len(self.tree.query(win.buffer(2), predicate="intersects")) > 0


def _as_truths(truth_or_scene) -> tuple[SceneTruth, ...]:
    if isinstance(truth_or_scene, SceneTruth):
        return (truth_or_scene,)
    truths = tuple(truth_or_scene)
    if not truths or not all(isinstance(t, SceneTruth) for t in truths):
        raise InputError("pass a SceneTruth or a non-empty sequence of them (see load_scene_truth)")
    return truths


Proposal = tuple[int, int, int, str, str | None]  # scene index, row, col, source, object id


def _draw(n: int, propose: Callable[[], Proposal | None], readers, truths, size, label,
          what: str) -> list[tuple[np.ndarray, ChipInfo]]:
    """Accept proposals whose window holds no no-data pixel, until `n` are found."""
    from affine import Affine
    from rasterio.windows import Window

    out: list[tuple[np.ndarray, ChipInfo]] = []
    for _ in range(max(200, 60 * n)):
        if len(out) == n:
            break
        cand = propose()
        if cand is None:
            continue
        si, row, col, source, obj = cand
        chip = readers(si).read(window=Window(col, row, size, size))
        if (chip == NODATA).any():
            continue
        t = truths[si]
        out.append((np.moveaxis(chip, 0, -1), ChipInfo(
            t.path, row, col, size, label, source, obj, t.transform @ Affine.translation(col, row))))
    if len(out) < n:
        raise InputError(
            f"found only {len(out)} of {n} {what} windows of {size} px in the given scenes; "
            "use more or larger scenes"
        )
    return out


def _open_readers(stack: ExitStack, truths: Sequence[SceneTruth]):
    import rasterio

    cache: dict[int, Any] = {}

    def reader(i: int):
        if i not in cache:
            cache[i] = stack.enter_context(rasterio.open(truths[i].path))
        return cache[i]

    return reader


def _window_box(row: int, col: int, size: int):
    from shapely.geometry import box

    return box(col, row, col + size, row + size)


def _finish(parts: list[list[tuple[np.ndarray, ChipInfo]]], labels: Sequence[int], rng,
            size: int, bands):
    items = [(x, y, info) for part, y in zip(parts, labels) for x, info in part]
    order = rng.permutation(len(items))
    if not items:
        return np.zeros((0, size, size, len(bands)), np.uint16), np.zeros(0, np.int64), ()
    x = np.stack([items[i][0] for i in order])
    y = np.array([items[i][1] for i in order], np.int64)
    return x, y, tuple(items[i][2] for i in order)


def sample_discovery_chips(
    truth_or_scene: SceneTruth | Sequence[SceneTruth],
    n: int,
    seed: int,
    size: int = 201,
    *,
    min_target_fraction: float = 0.01,
) -> tuple[np.ndarray, np.ndarray, tuple[ChipInfo, ...]]:
    """Balanced mine / not_mine chips: x uint16 (n, size, size, B), y 1 = mine, 0 = not_mine.

    Positives hold ≥ `min_target_fraction` of their pixels on targets, anywhere in the
    chip. Half the negatives are centred near look-alikes (dams, river banks, towns, bare
    soil), half are random background; no negative touches a target, no chip has no-data.
    """
    truths = _as_truths(truth_or_scene)
    idx = [_SceneIndex(t) for t in truths]
    rng = np.random.default_rng(_rng(seed, 3).integers(2**63))
    targets = [(si, o) for si, t in enumerate(truths) for o in t.targets if t.size >= size]
    looks = [(si, o) for si, t in enumerate(truths) for o in t.lookalikes if t.size >= size]
    if not targets:
        raise InputError(f"no target in the given scenes fits a {size} px chip")

    def positive() -> Proposal | None:
        si, o = targets[rng.integers(len(targets))]
        lim = truths[si].size - size
        minx, miny, maxx, maxy = o.polygon_pixels.bounds
        rlo, rhi = max(0, math.ceil(miny) - size + 1), min(lim, math.floor(maxy) - 1)
        clo, chi = max(0, math.ceil(minx) - size + 1), min(lim, math.floor(maxx) - 1)
        if rlo > rhi or clo > chi:
            return None
        row, col = int(rng.integers(rlo, rhi + 1)), int(rng.integers(clo, chi + 1))
        if idx[si].target_area(_window_box(row, col, size)) < min_target_fraction * size * size:
            return None
        return si, row, col, "target", o.id

    def near_lookalike() -> Proposal | None:
        si, o = looks[rng.integers(len(looks))]
        c, lim = o.polygon_pixels.centroid, truths[si].size - size
        # clamped, not rejected: look-alikes near the edge would otherwise never be drawn
        row = int(np.clip(round(c.y - size / 2 + rng.normal(0, size / 6)), 0, lim))
        col = int(np.clip(round(c.x - size / 2 + rng.normal(0, size / 6)), 0, lim))
        return _background(si, row, col, "lookalike", o.id)

    def background() -> Proposal | None:
        si = int(rng.integers(len(truths)))
        lim = truths[si].size - size
        if lim < 0:
            return None
        return _background(si, int(rng.integers(lim + 1)), int(rng.integers(lim + 1)),
                           "background", None)

    def _background(si, row, col, source, obj) -> Proposal | None:
        lim = truths[si].size - size
        if not (0 <= row <= lim and 0 <= col <= lim):
            return None
        if idx[si].touches_target(_window_box(row, col, size)):
            return None
        return si, row, col, source, obj

    n_pos = n // 2
    n_hard = (n - n_pos) // 2 if looks else 0
    n_rand = n - n_pos - n_hard
    with ExitStack() as stack:
        read = _open_readers(stack, truths)
        pos = _draw(n_pos, positive, read, truths, size, "mine", "mine")
        hard = _draw(n_hard, near_lookalike, read, truths, size, "not_mine", "look-alike")
        rand = _draw(n_rand, background, read, truths, size, "not_mine", "background")
    return _finish([pos, hard + rand], [1, 0], rng, size, truths[0].bands)




def sample_impact_patches(
    truth_or_scene: SceneTruth | Sequence[SceneTruth],
    n: int,
    seed: int,
    size: int = 21,
    *,
    min_inside: float = 0.6,
) -> tuple[np.ndarray, np.ndarray, tuple[ChipInfo, ...]]:
    """Balanced impact patches: x uint16 (n, size, size, B), y index into IMPACT_CLASSES.

    high / low patches are centred on a target of that impact with ≥ `min_inside` of the
    patch inside it; no_ore patches are centred on look-alikes (half) or background (half)
    and touch no target.
    """
    if size % 2 == 0:
        raise InputError(f"impact patch size must be odd (it is centred on a pixel), got {size}")
    truths = _as_truths(truth_or_scene)
    idx = [_SceneIndex(t) for t in truths]
    rng = np.random.default_rng(_rng(seed, 4).integers(2**63))
    half = size // 2
    by_impact = {imp: [(si, o) for si, t in enumerate(truths) for o in t.targets
                       if o.impact == imp] for imp in ("high", "low")}
    looks = [(si, o) for si, t in enumerate(truths) for o in t.lookalikes]

    def in_scene(si, row, col) -> bool:
        lim = truths[si].size - size
        return 0 <= row <= lim and 0 <= col <= lim

    def on_target(impact: str) -> Callable[[], Proposal | None]:
        from shapely.geometry import Point

        def propose() -> Proposal | None:
            si, o = by_impact[impact][rng.integers(len(by_impact[impact]))]
            minx, miny, maxx, maxy = o.polygon_pixels.bounds
            r, c = int(rng.integers(math.floor(miny), math.ceil(maxy))), int(
                rng.integers(math.floor(minx), math.ceil(maxx)))
            row, col = r - half, c - half
            if not in_scene(si, row, col) or not o.polygon_pixels.contains(Point(c + .5, r + .5)):
                return None
            inside = o.polygon_pixels.intersection(_window_box(row, col, size)).area
            return (si, row, col, "target", o.id) if inside >= min_inside * size * size else None

        return propose

    def no_ore() -> Proposal | None:
        if looks and rng.random() < 0.5:
            si, o = looks[rng.integers(len(looks))]
            p = _point_in(rng, o.polygon_pixels, tries=5)
            row, col, source, obj = int(p.y) - half, int(p.x) - half, "lookalike", o.id
        else:
            si = int(rng.integers(len(truths)))
            lim = truths[si].size - size
            row, col, source, obj = int(rng.integers(lim + 1)), int(rng.integers(lim + 1)), \
                "background", None
        if not in_scene(si, row, col) or idx[si].touches_target(_window_box(row, col, size)):
            return None
        return si, row, col, source, obj

    counts = [n // 3 + (1 if i < n % 3 else 0) for i in range(3)]
    for impact, k in zip(("high", "low"), counts):
        if k and not by_impact[impact]:
            raise InputError(
                f"no '{impact}'-impact target in the given scenes; use more or larger scenes"
            )
    with ExitStack() as stack:
        read = _open_readers(stack, truths)
        parts = [
            _draw(counts[0], on_target("high"), read, truths, size, "high", "high-impact"),
            _draw(counts[1], on_target("low"), read, truths, size, "low", "low-impact"),
            _draw(counts[2], no_ore, read, truths, size, "no_ore", "no-ore"),
        ]
    return _finish(parts, [0, 1, 2], rng, size, truths[0].bands)


def write_chip_folders(
    out_dir: str | os.PathLike,
    x: np.ndarray,
    y: np.ndarray,
    class_names: Sequence[str],
    transform_fn: Callable[[int], "Affine"] | None = None,
    *,
    bands: Sequence[str] = DEFAULT_BANDS,
    seed: int | None = None,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """The authors' layout: OUT/<class>/<class>_00001.tif (georeferenced) and OUT/chips.json.

    `transform_fn(i)` gives chip i's transform; without it every chip sits at the default
    scene origin (the chips are still valid GeoTIFFs, but not where they came from).
    """
    import rasterio

    if x.ndim != 4 or len(x) != len(y) or x.shape[-1] != len(bands):
        raise InputError(
            f"chips of shape {x.shape} with {len(y)} labels and {len(bands)} bands do not match: "
            "expected (n, rows, cols, bands)"
        )
    out_dir = Path(out_dir)
    counts = {name: 0 for name in class_names}
    default = scene_transform((-44.0, -20.0))
    for i, (chip, label) in enumerate(zip(x, y)):
        name = class_names[int(label)]
        counts[name] += 1
        path = out_dir / name / f"{name}_{counts[name]:05d}.tif"
        path.parent.mkdir(parents=True, exist_ok=True)
        profile = dict(
            driver="GTiff", width=chip.shape[1], height=chip.shape[0], count=len(bands),
            dtype="uint16", crs=CRS, nodata=NODATA, compress="deflate", predictor=2,
            transform=transform_fn(i) if transform_fn else default,
        )
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(np.moveaxis(chip.astype(np.uint16, copy=False), -1, 0))
            for b, band in enumerate(bands, start=1):
                dst.set_band_description(b, band)
    doc = {"classes": list(class_names), "counts": counts, "n": int(len(y)),
           "bands": list(bands), "size": int(x.shape[1]), "seed": seed, **(metadata or {})}
    (out_dir / "chips.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n",
                                        encoding="utf-8")
    return out_dir


def write_chip_set(
    out_dir: str | os.PathLike,
    *,
    n: int,
    seed: int,
    kind: str = "discovery",
    scene_size: int = 1536,
    n_scenes: int = 3,
    bands: Sequence[str] = DEFAULT_BANDS,
    overwrite: bool = False,
) -> dict[str, int]:
    """Synthesise scenes in a temporary directory and write `n` chips in the authors' layout.

    The chips are written to a hidden sibling of `out_dir` and renamed into place, so a
    reader never sees half a set. Returns the count per class.
    """
    import shutil
    import tempfile

    if kind not in ("discovery", "impact"):
        raise InputError(f"chip kind {kind!r} is not 'discovery' or 'impact'")
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise InputError(f"{out} exists and is not empty; it won't be overwritten without --overwrite")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        with tempfile.TemporaryDirectory(prefix="minescan-synth-") as tmp:
            truths = make_training_scenes(tmp, n_scenes, scene_size, seed, bands)
            if kind == "discovery":
                x, y, info = sample_discovery_chips(truths, n, seed)
                names: tuple[str, ...] = ("not_mine", "mine")
            else:
                x, y, info = sample_impact_patches(truths, n, seed)
                names = IMPACT_CLASSES
            write_chip_folders(
                staging, x, y, names, lambda i: info[i].transform, bands=bands, seed=seed,
                metadata={"kind": kind, "scene_size": scene_size, "n_scenes": n_scenes,
                          "source": "minescan synthetic scenes (not real imagery)"},
            )
        replace_dir(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {name: int((y == k).sum()) for k, name in enumerate(names)}
