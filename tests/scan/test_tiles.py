"""The tile loop's own steps: the block-wise prepare, the nodata rule, the impact queue, the
order of sub-tiles, and overlapped against sequential stages (docs/ARCHITECTURE.md, "Geometry")."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from minescan.models.card import Normalization
from minescan.scan import geometry, tiles
from minescan.scan.backends import Network
from minescan.scan.scene import valid_mask
from minescan.scan.tiles import ImpactQueue, TileContext, run_tiles

NORM = Normalization(mean=[900.0 + 37 * b for b in range(12)], std=[310.0 + 11 * b for b in range(12)])


def _reference_mask(raw, nodata):
    """The nodata rule as written in one expression: all bands 0, any band at its nodata, any NaN."""
    invalid = np.all(raw == 0, axis=0)
    for band, nd in zip(raw, nodata):
        if nd is not None and not (isinstance(nd, float) and np.isnan(nd)):
            invalid |= band == nd
    if np.issubdtype(raw.dtype, np.floating):
        invalid |= ~np.isfinite(raw).all(axis=0)
    return ~invalid


def _scene(rng, dtype, shape=(12, 97, 131)):
    raw = rng.integers(0, 6, shape).astype(dtype)  # small values: many zeros, many all-zero pixels
    raw[:, :5] = 0
    raw[3, 40:50, 60:70] = 7
    return raw


@pytest.mark.parametrize("dtype", [np.uint16, np.int16, np.uint8, np.float32])
@pytest.mark.parametrize("nodata", [(None,) * 12, (0,) * 12, (5,) * 12, (-32768,) * 12, tuple([None] * 11 + [3]), (float("nan"),) * 12])
def test_valid_mask_follows_the_nodata_rule(dtype, nodata):
    rng = np.random.default_rng(7)
    raw = _scene(rng, dtype)
    if dtype == np.float32:
        raw[2, 10:12, 20:30] = np.nan
    got = valid_mask(raw, nodata)
    assert got.dtype == bool and got.shape == raw.shape[1:]
    np.testing.assert_array_equal(got, _reference_mask(raw, nodata))
    assert 0 < got.sum() < got.size


@pytest.mark.parametrize("channels_first", [False, True])
@pytest.mark.parametrize("workers", [None, 2])
@pytest.mark.parametrize("block_bytes", [tiles.PREPARE_BLOCK_BYTES, 3000])
def test_prepare_is_apply_and_mask_bit_for_bit_in_any_blocks(monkeypatch, workers, block_bytes, channels_first):
    monkeypatch.setattr(tiles, "PREPARE_BLOCK_BYTES", block_bytes)
    rng = np.random.default_rng(11)
    raw = rng.integers(0, 10_000, (12, 83, 119)).astype(np.uint16)
    raw[:, 30:40, 50:70] = 0  # a nodata hole
    raw[4, 60:62, :] = 9  # a band at its declared nodata value
    nodata = tuple([0] * 4 + [9] + [0] * 7)
    ctx = _ctx(nodata, channels_first=channels_first)
    pool = ThreadPoolExecutor(workers) if workers else None
    buffer = np.full(raw.size + 50, np.nan, np.float32)
    prepared = tiles.prepare(ctx, None, raw, buffer=buffer, workers=pool)
    valid = _reference_mask(raw, nodata)
    expected = NORM.apply(np.moveaxis(raw, 0, -1))
    expected[~valid] = 0.0
    np.testing.assert_array_equal(prepared.valid, valid)
    assert prepared.channels_first is channels_first
    if channels_first:
        expected = np.ascontiguousarray(np.moveaxis(expected, -1, 0))
    assert prepared.x.dtype == np.float32 and prepared.x.shape == expected.shape
    assert prepared.x.flags.c_contiguous
    assert np.array_equal(prepared.x, expected)  # bit for bit, not within a tolerance
    assert np.shares_memory(prepared.x, buffer)


def test_an_all_nodata_window_gives_no_network_input():
    prepared = tiles.prepare(_ctx((0,) * 12), None, np.zeros((12, 40, 50), np.uint16))
    assert prepared.x is None and not prepared.valid.any()


class _Recorder:
    """A fake impact network: softmax-like rows that encode each patch, and the batch sizes seen."""

    def __init__(self):
        self.sizes = []

    def __call__(self, batch):
        self.sizes.append(len(batch))
        key = batch[:, 10, 10, 0].astype(np.float64)
        return np.stack([key, -key, key * 2], axis=1).astype(np.float32)


class _FakeTile:
    class _Axis:
        cells = range(0, 10)

    row = col = _Axis()


def _found(tile_id, n, rng):
    """A discovered sub-tile with `n` candidates on the diagonal; `tile_id` rides in its timings."""
    patches = rng.integers(0, 5000, (n, 21, 21, 12)).astype(np.uint16)
    hits = np.stack([np.arange(n), np.arange(n)], axis=1)
    p = np.full((max(n, 1), max(n, 1)), 0.9, np.float32)
    return tiles._Discovered(_FakeTile(), p, n, hits, hits * 27 + 94, patches, {"discovery": float(tile_id)})


def test_impact_queue_batches_across_tiles_in_one_shape_and_keeps_each_tiles_scores():
    rng = np.random.default_rng(5)
    recorder = _Recorder()
    ctx = _ctx((0,) * 12, impact=Network("fake", recorder), batch=64)
    counts = [50, 0, 130, 7, 0, 64, 1]
    found = [_found(i, n, rng) for i, n in enumerate(counts)]
    queue = ImpactQueue(ctx)
    results = [r for f in found for r in queue.add(f)] + queue.flush()
    # every tile comes back once, in order, with its own patches' scores
    assert [r.timings["discovery"] for r in results] == [float(i) for i in range(len(counts))]
    for f, r in zip(found, results):
        x = NORM.apply(f.patches)[:, 10, 10, 0].astype(np.float64)
        np.testing.assert_array_equal(r.candidates.impact, np.stack([x, -x, 2 * x], axis=1).astype(np.float32))
    # full batches of one size, then one remainder
    assert recorder.sizes[:-1] == [64] * (sum(counts) // 64) and recorder.sizes[-1] == sum(counts) % 64
    assert sum(r.timings["impact"] for r in results) > 0


def test_impact_queue_returns_tiles_without_candidates_at_once_when_nothing_waits():
    ctx = _ctx((0,) * 12, impact=Network("fake", _Recorder()), batch=8)
    queue = ImpactQueue(ctx)
    (result,) = queue.add(_found(0, 0, np.random.default_rng(1)))
    assert result.candidates.impact.shape == (0, 3)
    assert queue.flush() == []


def test_largest_sub_tile_goes_first_and_the_rest_keep_plan_order():
    plan = geometry.plan_subtiles(2000, 2300, 700 * 700)
    ordered = tiles._largest_first(plan)
    first = ordered[0]
    assert len(first.row.pixels) == max(len(t.row.pixels) for t in plan)
    assert len(first.col.pixels) == max(len(t.col.pixels) for t in plan)
    assert [t for t in ordered[1:]] == [t for t in plan if t is not first]
    assert tiles._largest_first([]) == []


def test_overlap_only_where_there_are_cores_to_spare(monkeypatch):
    monkeypatch.setattr(tiles, "usable_cpus", lambda: 2)
    assert tiles.overlap_default() is False
    monkeypatch.setattr(tiles, "usable_cpus", lambda: 8)
    assert tiles.overlap_default() is True


@pytest.mark.parametrize("cpu_max, expected", [("max 100000\n", 16), ("400000 100000\n", 4), ("150000 100000\n", 2)])
def test_usable_cpus_honours_a_pods_cpu_quota(monkeypatch, tmp_path, cpu_max, expected):
    real_open = open
    monkeypatch.setattr(tiles.os, "sched_getaffinity", lambda pid: set(range(16)))
    monkeypatch.setattr("builtins.open", lambda path, *a, **k: real_open(tmp_path / "cpu.max", *a, **k)
                        if path == "/sys/fs/cgroup/cpu.max" else real_open(path, *a, **k))
    (tmp_path / "cpu.max").write_text(cpu_max)
    assert tiles.usable_cpus() == expected


def test_overlapped_and_sequential_loops_give_the_same_cells_and_candidates(tiny_models):
    from minescan.models.card import verified_model_dir
    from minescan.scan.backends import load_network

    discovery = load_network(verified_model_dir(tiny_models / "discovery"), "tensorflow")
    impact = load_network(verified_model_dir(tiny_models / "impact"), "tensorflow")
    rng = np.random.default_rng(3)
    raw = rng.integers(0, 4000, (12, 520, 610)).astype(np.uint16)
    raw[:, 100:160, 200:300] = 0
    ctx = TileContext(scene_shape=(520, 610), nodata=(0,) * 12, discovery=discovery, discovery_normalization=NORM,
                      impact=impact, impact_normalization=NORM, n_classes=3, threshold=0.0,
                      max_nodata_fraction=0.25, impact_batch_size=16)
    plan = geometry.plan_subtiles(520, 610, 300 * 300)
    assert len(plan) > 2

    def run(overlap):
        read = lambda t: raw[:, t.row.pixels.start : t.row.pixels.stop, t.col.pixels.start : t.col.pixels.stop]  # noqa: E731
        out = list(run_tiles(ctx, plan, read, overlap=overlap))
        return out

    seq, ovl = run(False), run(True)
    assert [r.tile for r in seq] == [r.tile for r in ovl] == tiles._largest_first(plan)
    for a, b in zip(seq, ovl):
        np.testing.assert_array_equal(a.p_mine, b.p_mine)
        np.testing.assert_array_equal(a.candidates.impact, b.candidates.impact)
    assert sum(len(r.candidates.p_mine) for r in seq) > 16  # several impact batches ran


def _ctx(nodata, impact=None, batch=1024, channels_first=False):
    discovery = Network("fake", lambda batch: batch, channels_first=channels_first)
    return TileContext(scene_shape=(0, 0), nodata=nodata, discovery=discovery, discovery_normalization=NORM,
                       impact=impact, impact_normalization=NORM, n_classes=3, threshold=0.5,
                       max_nodata_fraction=0.25, impact_batch_size=batch)


def test_usable_cells_of_an_all_valid_window_match_the_summed_area_table():
    plan = geometry.plan_subtiles(1000, 1130, 420 * 420)
    assert any(t.row.pixels.stop == 1000 for t in plan)  # edge tiles, whose chips run off the scene
    for tile in plan:
        valid = np.ones((len(tile.row.pixels), len(tile.col.pixels)), bool)
        for fraction in (0.0, 0.1, 0.25):
            fast = tiles._usable_cells(valid, tile, fraction)
            table = tiles._usable_cells(valid, tile, fraction, all_valid=False)
            np.testing.assert_array_equal(fast, table)
    assert not tiles._usable_cells(valid, plan[-1], 0.0).all()  # the last chips count the edge as nodata


def test_a_network_takes_either_layout_and_answers_nhwc():
    seen = []
    net = Network("fake", lambda batch: seen.append(batch.shape) or batch[..., :2, :, :].transpose(0, 2, 3, 1),
                  channels_first=True)
    nhwc = np.arange(2 * 5 * 7 * 3, dtype=np.float32).reshape(2, 5, 7, 3)
    a = net(nhwc)
    b = net(np.moveaxis(nhwc, -1, 1), channels_first=True)
    assert seen == [(2, 3, 5, 7), (2, 3, 5, 7)]  # the runtime got NCHW both times
    np.testing.assert_array_equal(a, b)
