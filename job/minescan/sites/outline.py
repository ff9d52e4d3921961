"""Outlines of groups of lattice cells: the dissolved union of unit squares, vectorised.

A national run has ~10⁵ sites over ~10⁶ cells. Dissolving squares with GEOS, or tracing
them with GDAL's polygonizer, costs a Python object per site part and took minutes at that
scale, so the outline is traced here with array operations over all sites at once:

1. a cell edge is on the boundary when the neighbouring cell across it is not in the
   same group; each boundary edge is directed so that its cell lies on one fixed side;
2. each edge's successor starts where it ends. Where two cells of a group touch only at
   a corner, two edges leave that corner: the successor is the one of the same cell, so
   diagonal cells stay separate parts (4-connectivity: every ring is simple);
3. rings are the cycles of the successor permutation, found by pointer doubling (the
   ring's smallest edge number and each edge's place after it);
4. corners where the direction does not change are dropped; a ring's signed area says
   whether it bounds a part or a hole.

All arithmetic is on integers, so neighbouring rings share exactly the same vertices.
`geometries` then builds shapely (Multi)Polygons from the rings in one call.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: (dx, dy) of the edge's start and end corner, for the top, right, bottom and left edge
#: of cell [x, x+1] × [y, y+1] (y grows downwards, like raster rows)
_EDGES = (((0, 0), (1, 0)), ((1, 0), (1, 1)), ((1, 1), (0, 1)), ((0, 1), (0, 0)))
#: the neighbour across each edge
_ACROSS = ((0, -1), (1, 0), (0, 1), (-1, 0))


def _doubling_rounds(longest: int) -> int:
    return max(1, int(np.ceil(np.log2(max(longest, 2)))) + 1)


def trace(x: np.ndarray, y: np.ndarray, group: np.ndarray, keep_corners: bool = False):
    """Rings of every group's cells.

    Returns (vx, vy, ring_start, ring_group, ring_area): vertex coordinates of all rings
    one after the other (each ring open: its first vertex is not repeated), the index of
    each ring's first vertex, its group, and its signed area in cells (> 0: the outline of
    a part, < 0: a hole). `keep_corners` keeps every cell corner on straight runs (for
    lattices whose straight lines bend when reprojected).
    """
    x = np.asarray(x, np.int64)
    y = np.asarray(y, np.int64)
    group = np.asarray(group, np.int64)
    xs, ys = x - x.min() + 1, y - y.min() + 1
    width, height = int(xs.max()) + 2, int(ys.max()) + 2
    cell_key = np.unique((group * height + ys) * width + xs)
    g, rest = np.divmod(cell_key, height * width)
    cy, cx = np.divmod(rest, width)
    n = len(cell_key)

    def present(key: np.ndarray) -> np.ndarray:
        at = np.minimum(np.searchsorted(cell_key, key), n - 1)
        return cell_key[at] == key

    starts_x, starts_y, ends_x, ends_y, cell_of, direction = [], [], [], [], [], []
    for d, ((sx, sy), (ex, ey)) in enumerate(_EDGES):
        ax, ay = _ACROSS[d]
        edge = ~present(cell_key + ay * width + ax)
        idx = np.flatnonzero(edge)
        starts_x.append(cx[idx] + sx)
        starts_y.append(cy[idx] + sy)
        ends_x.append(cx[idx] + ex)
        ends_y.append(cy[idx] + ey)
        cell_of.append(idx)
        direction.append(np.full(len(idx), d, np.int8))
    sx, sy = np.concatenate(starts_x), np.concatenate(starts_y)
    ex, ey = np.concatenate(ends_x), np.concatenate(ends_y)
    cell = np.concatenate(cell_of)
    direction = np.concatenate(direction)
    edge_group = g[cell]
    vertex_span = (height + 1) * (width + 1)
    start_key = edge_group * vertex_span + sy * (width + 1) + sx
    end_key = edge_group * vertex_span + ey * (width + 1) + ex

    # successor: the edge leaving the corner this one reaches; at a corner two diagonal
    # cells share, the one of the same cell
    order = np.argsort(start_key, kind="stable")
    sorted_keys = start_key[order]
    lo = np.searchsorted(sorted_keys, end_key, "left")
    count = np.searchsorted(sorted_keys, end_key, "right") - lo
    succ = order[lo]
    pinch = np.flatnonzero(count == 2)
    first = order[lo[pinch]]
    succ[pinch] = np.where(cell[first] == cell[pinch], first, order[lo[pinch] + 1])

    # rings: the smallest edge number of each cycle, and every edge's place after it
    rounds = _doubling_rounds(int(np.bincount(edge_group).max()))
    ring = np.arange(len(succ))
    jump = succ.copy()
    for _ in range(rounds):
        ring = np.minimum(ring, ring[jump])
        jump = jump[jump]
    steps = np.ones(len(succ), np.int64)  # edges from each edge to its ring's first
    nxt = succ.copy()
    done = succ == ring
    for _ in range(rounds):
        steps = np.where(done, steps, steps + steps[nxt])
        done_next = done | done[nxt]
        nxt = np.where(done, nxt, nxt[nxt])
        done = done_next
    length = steps[ring]  # the first edge's walk goes round the whole ring
    place = (length - steps) % length
    walk = np.lexsort((place, ring))

    pred = np.empty_like(succ)
    pred[succ] = np.arange(len(succ))
    turn = direction != direction[pred]
    keep = walk if keep_corners else walk[turn[walk]]
    vx, vy = sx[keep], sy[keep]
    ring_of = ring[keep]
    ring_start = np.flatnonzero(np.r_[True, ring_of[1:] != ring_of[:-1]])
    ring_end = np.r_[ring_start[1:], len(keep)]
    # shoelace, each ring closed on its first vertex
    nx_ = np.roll(vx, -1)
    ny_ = np.roll(vy, -1)
    nx_[ring_end - 1], ny_[ring_end - 1] = vx[ring_start], vy[ring_start]
    cross = vx * ny_ - nx_ * vy
    area = np.add.reduceat(cross, ring_start) / 2.0 if len(cross) else np.zeros(0)
    shift_x, shift_y = x.min() - 1, y.min() - 1
    return vx + shift_x, vy + shift_y, ring_start, edge_group[ring[keep][ring_start]], area


def geometries(x: np.ndarray, y: np.ndarray, group: np.ndarray, n_groups: int,
               project: Callable[[np.ndarray], np.ndarray], keep_corners: bool = False) -> np.ndarray:
    """(n_groups,) shapely geometries: each group's dissolved cells, `project`ed from (x, y).

    Groups without cells get None. Exteriors come out counter-clockwise (RFC 7946).
    """
    import shapely

    out = np.full(n_groups, None, dtype=object)
    if len(x) == 0:
        return out
    vx, vy, ring_start, ring_group, area = trace(x, y, group, keep_corners)
    coords = project(np.column_stack([vx, vy]).astype(np.float64))
    ring_end = np.r_[ring_start[1:], len(vx)]
    hole = area < 0
    parts_per_group = np.bincount(ring_group[~hole], minlength=n_groups)
    holes_per_group = np.bincount(ring_group[hole], minlength=n_groups)
    # a group of several parts with holes needs to know which part each hole is in
    tangled = (parts_per_group > 1) & (holes_per_group > 0)
    simple_rings = np.flatnonzero(~tangled[ring_group])
    # rings in group order, each part's outline first, then (one part only) its holes
    ordered = simple_rings[np.lexsort((hole[simple_rings], ring_group[simple_rings]))]
    if len(ordered):
        # every ring closed on its first vertex
        size = ring_end[ordered] - ring_start[ordered]
        ring_offsets = np.r_[0, np.cumsum(size + 1)]
        place = np.arange(ring_offsets[-1]) - np.repeat(ring_offsets[:-1], size + 1)
        flat = coords[np.repeat(ring_start[ordered], size + 1) + place % np.repeat(size, size + 1)]
        is_part = ~hole[ordered]
        polygon_offsets = np.r_[np.flatnonzero(is_part), len(ordered)]
        groups_of_polygons = ring_group[ordered][is_part]
        geom_offsets = np.r_[0, np.cumsum(np.bincount(groups_of_polygons, minlength=n_groups))]
        built = shapely.from_ragged_array(shapely.GeometryType.MULTIPOLYGON, flat,
                                          (ring_offsets, polygon_offsets, geom_offsets))
        single = shapely.get_num_geometries(built) == 1
        built[single] = shapely.get_geometry(built[single], 0)
        present = np.bincount(ring_group[ordered], minlength=n_groups) > 0
        out[present] = built[present]
    for g in np.flatnonzero(tangled):
        out[g] = _untangle([coords[np.r_[np.arange(ring_start[k], ring_end[k]), ring_start[k]]]
                            for k in np.flatnonzero(ring_group == g)])
    return shapely.orient_polygons(out, exterior_cw=False)


def _untangle(rings: list[np.ndarray]):
    """A group whose several parts have holes (an island in a lake in a pit): the rings nest
    without crossing, so the group is where a point lies inside an odd number of them."""
    import functools

    import shapely

    return functools.reduce(shapely.symmetric_difference, [shapely.Polygon(r) for r in rings])
