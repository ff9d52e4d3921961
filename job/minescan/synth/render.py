"""Rendering a planned scene block by block into a uint16 GeoTIFF (L1C reflectance × 10000)."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..bands import DEFAULT_BANDS, S2_BANDS, check_bands
from ..errors import InputError
from ..outputs import atomic_path
from .kinds import (
    _HAZE,
    _NOISE,
    BLOCK,
    CRS,
    FIELD_STEP,
    NODATA,
    SPECTRA,
    SPECTRA_BANDS,
    TEXTURE,
    SceneTruth,
)
from .plan import _Plan, _plan_scene, _rng, _truth_objects, scene_transform

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class _Fields:
    """Smooth noise, one node every FIELD_STEP px, ~unit variance: shared by all blocks."""

    forest: np.ndarray
    soil: np.ndarray
    texture: np.ndarray
    vigour: np.ndarray
    haze: np.ndarray


def _fractal(rng, n: int, octaves: Sequence[tuple[int, float]]) -> np.ndarray:
    """Sum of random grids `cell` field nodes apart, cubic-interpolated, normalised."""
    out = np.zeros((n, n), np.float32)
    for cell, amp in octaves:
        if cell <= 1:
            out += amp * rng.standard_normal((n, n), dtype=np.float32)
            continue
        coarse = rng.standard_normal((n // cell + 4,) * 2, dtype=np.float32)
        out += amp * _catmull_rom(_catmull_rom(coarse, n, cell).T, n, cell).T
    out -= out.mean()
    out /= out.std() + 1e-6
    return out


def _catmull_rom(a: np.ndarray, n: int, cell: int) -> np.ndarray:
    """Rows 0…n-1 of `a` upsampled by `cell` along axis 0 (a C¹ cubic, separable)."""
    pos = np.arange(n, dtype=np.float32) / cell
    i = pos.astype(np.int64) + 1
    t = (pos - (i - 1))[:, None]
    t2, t3 = t * t, t * t * t
    return (
        a[i - 1] * ((-t3 + 2 * t2 - t) / 2)
        + a[i] * ((3 * t3 - 5 * t2 + 2) / 2)
        + a[i + 1] * ((-3 * t3 + 4 * t2 + t) / 2)
        + a[i + 2] * ((t3 - t2) / 2)
    )


def _make_fields(size: int, seed: int) -> _Fields:
    rng = _rng(seed, 1)
    n = size // FIELD_STEP + 3
    return _Fields(
        forest=_fractal(rng, n, [(512, 1.0), (128, 0.8), (32, 0.5), (8, 0.25), (2, 0.12)]),
        soil=_fractal(rng, n, [(64, 1.0), (16, 0.5), (4, 0.2)]),
        texture=_fractal(rng, n, [(16, 0.6), (4, 0.45), (1, 0.35)]),
        vigour=_fractal(rng, n, [(128, 1.0), (16, 0.5)]),
        haze=_fractal(rng, n, [(1024, 1.0), (256, 0.4)]),
    )


def _upsample(low: np.ndarray, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    """Bilinear values of a field at pixel centres rows [r0, r1) × cols [c0, c1)."""

    def axis(a0, a1):
        pos = (np.arange(a0, a1, dtype=np.float32) + 0.5) / FIELD_STEP
        i = pos.astype(np.int64)
        return i, (pos - i).astype(np.float32)

    ri, rt = axis(r0, r1)
    ci, ct = axis(c0, c1)
    rows = low[ri] * (1 - rt)[:, None] + low[ri + 1] * rt[:, None]
    return rows[:, ci] * (1 - ct) + rows[:, ci + 1] * ct


def _sigmoid(x: np.ndarray) -> np.ndarray:
    from scipy.special import expit  # no overflow warning for very negative x

    return expit(x)


def _spectrum(material: str, band_idx: np.ndarray, gain: float = 1.0, tilt=None) -> np.ndarray:
    s = np.asarray(SPECTRA[material], np.float32)[band_idx] * np.float32(gain)
    if tilt is not None:
        s = s * np.asarray(tilt, np.float32)[band_idx]
    return s[:, None, None]


def _alpha(poly, r0: int, r1: int, c0: int, c1: int):
    """Coverage of `poly` over the block, edge pixels mixed by a 3×3 mean; None if outside.

    The mask is rasterised one pixel beyond the window so the mean is exact at the block
    edge: neighbouring blocks then agree, and no seam appears.
    """
    from affine import Affine
    from rasterio.features import rasterize
    from scipy.ndimage import uniform_filter

    minx, miny, maxx, maxy = poly.bounds
    wr0, wr1 = max(r0, math.floor(miny) - 1), min(r1, math.ceil(maxy) + 1)
    wc0, wc1 = max(c0, math.floor(minx) - 1), min(c1, math.ceil(maxx) + 1)
    if wr0 >= wr1 or wc0 >= wc1:
        return None
    mask = rasterize(
        [(poly, 1)], out_shape=(wr1 - wr0 + 2, wc1 - wc0 + 2),
        transform=Affine.translation(wc0 - 1, wr0 - 1), fill=0, dtype="uint8",
    )
    if not mask.any():
        return None
    a = uniform_filter(mask.astype(np.float32), 3, mode="constant")[1:-1, 1:-1]
    return (slice(wr0 - r0, wr1 - r0), slice(wc0 - c0, wc1 - c0)), a


def _hash_noise(seed: int, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    """Zero-mean unit-variance noise that depends only on (seed, row, col): splitmix64."""
    rows = np.arange(r0, r1, dtype=np.int64).astype(np.uint64)[:, None]
    cols = np.arange(c0, c1, dtype=np.int64).astype(np.uint64)[None, :]
    x = (rows << np.uint64(32)) ^ cols ^ np.uint64((seed * 0x9E3779B97F4A7C15) & (2**64 - 1))
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    u = (x >> np.uint64(40)).astype(np.float32) * np.float32(2.0**-24)
    return (u - np.float32(0.5)) * np.float32(math.sqrt(12))


def _coarsen(a: np.ndarray, f: int) -> np.ndarray:
    """Average f×f cells and repeat them: a 20 m / 60 m band seen on the 10 m grid.

    Blocks start on multiples of 6 px, so the cells line up across blocks.
    """
    if f == 1:
        return a
    h, w = a.shape
    ph, pw = -h % f, -w % f
    p = np.pad(a, ((0, ph), (0, pw)), mode="edge") if ph or pw else a
    m = p.reshape(p.shape[0] // f, f, p.shape[1] // f, f).mean(axis=(1, 3), dtype=np.float32)
    full = np.broadcast_to(m[:, None, :, None], (m.shape[0], f, m.shape[1], f))
    return full.reshape(p.shape)[:h, :w].copy()


def _render_block(plan: _Plan, fields: _Fields, prim_bounds: np.ndarray, band_idx: np.ndarray,
                  seed: int, block: tuple[int, int], r0: int, r1: int, c0: int, c1: int):
    """uint16 (bands, rows, cols) for one block: background, objects, haze, noise, no-data."""
    from scipy.ndimage import gaussian_filter

    rng = _rng(seed, 2, *block)
    h, w = r1 - r0, c1 - c0
    # fine grain: smoothed noise of the global pixel position, with a halo, so no seam
    halo = 4
    grain = gaussian_filter(_hash_noise(seed, r0 - halo, r1 + halo, c0 - halo, c1 + halo), 1.0,
                            truncate=4.0)[halo:-halo, halo:-halo] * 2.0
    tex = 0.75 * _upsample(fields.texture, r0, r1, c0, c1) + 0.4 * grain

    forest = _upsample(fields.forest, r0, r1, c0, c1) + 0.08 * grain
    wf = _sigmoid((forest - plan.forest_threshold) / 0.05)
    ws = (1 - wf) * _sigmoid((_upsample(fields.soil, r0, r1, c0, c1) - 1.4) / 0.15)
    wp = 1 - wf - ws
    vig = 0.06 * _upsample(fields.vigour, r0, r1, c0, c1)
    af = wf * (1 + TEXTURE["forest"] * tex)
    ap = wp * (1 + TEXTURE["pasture"] * tex)
    weights = np.stack([af, ap, ws * (1 + TEXTURE["bare_soil"] * tex), af * vig, ap * vig])
    # healthier vegetation: brighter red edge / NIR, darker visible and SWIR
    nir = np.array([0.72 < S2_BANDS[b].centre_um < 1.0 for b in SPECTRA_BANDS])[band_idx]
    gain = np.where(nir, 1.0, -0.5).astype(np.float32)
    sf, sp, ss = (_spectrum(m, band_idx)[:, 0, 0] for m in ("forest", "pasture", "bare_soil"))
    mix = np.stack([sf, sp, ss, gain * sf, gain * sp], axis=1)  # (bands, 5)
    img = (mix @ weights.reshape(5, -1)).reshape(len(band_idx), h, w)

    hits = np.nonzero(
        (prim_bounds[:, 0] < c1 + 1) & (prim_bounds[:, 2] > c0 - 1)
        & (prim_bounds[:, 1] < r1 + 1) & (prim_bounds[:, 3] > r0 - 1)
    )[0]
    for i in hits:
        p = plan.primitives[i]
        cov = _alpha(p.polygon, r0, r1, c0, c1)
        if cov is None:
            continue
        win, a = cov
        t = 1 + TEXTURE[p.material] * tex[win]
        layer = _spectrum(p.material, band_idx, p.brightness, p.tilt) * t
        if p.mix_material is not None:
            f = np.clip(p.mix + 0.3 * grain[win], 0, 1)
            other = _spectrum(p.mix_material, band_idx, p.brightness, p.tilt) * t
            layer = layer * (1 - f) + other * f
        img[:, win[0], win[1]] = img[:, win[0], win[1]] * (1 - a) + layer * a

    haze = _sigmoid(_upsample(fields.haze, r0, r1, c0, c1))
    out = np.empty(img.shape, np.uint16)
    for k, b in enumerate(band_idx):
        band = img[k]
        band += np.float32(_HAZE[b]) * haze
        band = _coarsen(band, S2_BANDS[SPECTRA_BANDS[b]].resolution_m // 10)
        band += rng.standard_normal((h, w), dtype=np.float32) * np.float32(_NOISE[b])
        band += 0.5
        np.clip(band, 1, 65535, out=band)  # 0 is reserved for no-data
        out[k] = band
    if plan.wedge is not None:
        corner_r, corner_c, leg = plan.wedge
        rr = np.arange(r0, r1)[:, None] + 0.5
        cc = np.arange(c0, c1)[None, :] + 0.5
        rr = rr if corner_r == 0 else plan.size - rr
        cc = cc if corner_c == 0 else plan.size - cc
        out[:, (rr + cc) < leg] = NODATA
    return out


def _blocks(size: int) -> Iterator[tuple[tuple[int, int], int, int, int, int]]:
    for bi, r0 in enumerate(range(0, size, BLOCK)):
        for bj, c0 in enumerate(range(0, size, BLOCK)):
            yield (bi, bj), r0, min(size, r0 + BLOCK), c0, min(size, c0 + BLOCK)


def synthesize_scene(
    path: str | os.PathLike,
    *,
    size: int,
    seed: int,
    bands: Sequence[str] = DEFAULT_BANDS,
    origin_lonlat: tuple[float, float] = (-44.0, -20.0),
    n_mines: int | None = None,
    n_dams: int | None = None,
    n_lookalikes: int | None = None,
    nodata_fraction: float = 0.0,
) -> SceneTruth:
    """Write a synthetic L1C scene (tiled deflate GeoTIFF, uint16) and return its truth.

    The same arguments give the same bytes. Memory stays at one 768² block plus the plan
    and the low-resolution fields, whatever the size.
    """
    try:
        bands = check_bands(list(bands))
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if size < 64:
        raise InputError(f"scene size {size} px is too small: use at least 64")
    if not 0 <= nodata_fraction <= 0.5:
        raise InputError(f"nodata_fraction {nodata_fraction} must be between 0 and 0.5")
    for name, n in (("n_mines", n_mines), ("n_dams", n_dams), ("n_lookalikes", n_lookalikes)):
        if n is not None and n < 0:
            raise InputError(f"{name} must be ≥ 0, got {n}")

    transform = scene_transform(origin_lonlat)
    plan = _plan_scene(size, seed, n_mines=n_mines, n_dams=n_dams, n_lookalikes=n_lookalikes,
                      nodata_fraction=nodata_fraction)
    render_plan(path, plan, seed, bands, transform)
    truth = SceneTruth(str(path), size, transform, CRS, bands, _truth_objects(plan, transform))
    log.info("synthesised %s: %d px, %d targets, %d look-alikes", path, size,
             len(truth.targets), len(truth.lookalikes))
    return truth


def render_plan(path: str | os.PathLike, plan: _Plan, seed: int, bands: Sequence[str], transform) -> None:
    """Write a planned scene as a tiled deflate GeoTIFF, block by block (see synthesize_scene)."""
    import rasterio
    from rasterio.windows import Window

    from ..log import progress

    size = plan.size
    fields = _make_fields(size, seed)
    band_idx = np.array([SPECTRA_BANDS.index(b) for b in bands])
    prim_bounds = np.array([p.polygon.bounds for p in plan.primitives]).reshape(-1, 4)

    path = Path(path)
    profile = dict(
        driver="GTiff", width=size, height=size, count=len(bands), dtype="uint16", crs=CRS,
        transform=transform, nodata=NODATA, tiled=True, blockxsize=256, blockysize=256,
        compress="deflate", predictor=2, zlevel=1, interleave="band", bigtiff="IF_SAFER",
        num_threads=2,
    )
    blocks = list(_blocks(size))
    with atomic_path(path) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        for i, name in enumerate(bands, start=1):
            dst.set_band_description(i, name)
        dst.update_tags(SYNTHETIC="minescan.synth.scene", SEED=str(seed))
        for key, r0, r1, c0, c1 in progress(blocks, len(blocks), "synthesising scene"):
            arr = _render_block(plan, fields, prim_bounds, band_idx, seed, key, r0, r1, c0, c1)
            dst.write(arr, window=Window(c0, r0, c1 - c0, r1 - r0))
