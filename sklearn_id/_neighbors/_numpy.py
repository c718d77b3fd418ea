"""The backend for rows on the host: numpy and BLAS, a symmetric float32 screen, float64 refinement; never torch.

The search spends almost all of its time in float32 matrix products. Squared
distances are first approximated by one float32 product of the centred,
rescaled data with an augmented copy of itself
(``[c_i, |c_i|^2, 1] . [-2 c_j, 1, |c_j|^2]``), tile by tile, so memory stays
``O(block_size * n_samples)``. The distance matrix is treated as symmetric:
each off-diagonal tile is computed once and serves both its rows and its
columns. Each row keeps a running upper bound on its ``n_neighbors``-th
distance, so a tile only costs a comparison per entry, never a selection over
a whole row. The candidates that the rounding bound (:mod:`._exact`) cannot
rule out are refined in float64.

Two variants share that pass: the nested search serves every group of a
nested halving of the rows at once (decimation curves), and the search at
ranks refines only the candidates that may sit at the requested ranks (GRIDE),
not all ``n_neighbors`` of them.
"""

import math

import numpy as np

from sklearn_id._neighbors._backends import DEFAULT_BLOCK_SIZE, NeighborBackend, check_n_neighbors
from sklearn_id._neighbors._exact import (
    REFINE_BUFFER_ENTRIES,
    UNIT_ROUNDOFF_32,
    candidate_threshold,
    centred_float32,
    exact_squared_distances,
    exact_squared_pairs,
    rounding_bound_factor,
    select_nearest,
    subnormal_floor,
)
from sklearn_id._neighbors._groups import group_edges
from sklearn_id._neighbors._units import unit_for, unit_scaled, unscaled

__all__ = ["HostBackend", "first_occurrences"]

# Columns of a first tile that seed each row's threshold.
_SEED_COLUMNS = 256
# Searches of at least this many neighbours run in the locality order (see _locality_order).
_LOCALITY_MIN_NEIGHBORS = 16


class HostBackend(NeighborBackend):
    """Rows of a numpy array (float32 or float64), searched on the CPU."""

    name = "numpy"

    def is_usable_for(self, X, *, metric, device):
        return metric == "euclidean" and device == "cpu"

    def kneighbors(self, X, n_neighbors, *, Y=None, device="cpu", block_size=DEFAULT_BLOCK_SIZE):
        # Queries and references at one common scale (see unit_scaled).
        Y = None if Y is None else np.asarray(Y)
        unit = unit_for(X) if Y is None else unit_for(X, Y)
        if unit == 1.0:
            return _kneighbors_cpu(X, n_neighbors, Y=Y, block_size=block_size)
        scaled_Y = None if Y is None else Y * Y.dtype.type(unit)
        scaled = _kneighbors_cpu(X * X.dtype.type(unit), n_neighbors, Y=scaled_Y, block_size=block_size)
        return unscaled(scaled, unit)

    def distances_at(self, X, ranks, *, device="cpu", block_size=DEFAULT_BLOCK_SIZE):
        n_neighbors = int(ranks.max())
        check_n_neighbors(n_neighbors, X.shape[0] - 1)
        order = _locality_order(X, n_neighbors, block_size)
        bounds = _nested_search(X, n_neighbors, 1, block_size, order=order)[0]
        return _refine_ranks(X, bounds, ranks, search_order=order)

    def nested(self, X, n_neighbors, n_levels, *, device="cpu", block_size=DEFAULT_BLOCK_SIZE):
        return _nested_cpu(X, n_neighbors, n_levels, block_size)

    def distinct_rows(self, X):
        return first_occurrences(X)

    def pair_distances(self, X, rows, cols):
        X, unit = unit_scaled(X)
        pairs_rows = np.repeat(rows, cols.size)
        pairs_cols = np.tile(cols, rows.size)
        return np.sqrt(exact_squared_distances(X, X, pairs_rows, pairs_cols)).reshape(rows.size, cols.size) / unit

    def distance_matrix(self, X, rows, *, device="cpu"):
        # The Gram matrix of the centred points in float64: an absolute error near 1e-16 of the points' spread,
        # far below any distance the callers (spanning trees) sum, at a fraction of the pairs' differences' cost.
        points, unit = unit_scaled(np.asarray(X[rows], dtype=np.float64))
        centred = points - points.mean(axis=0)
        norms = np.einsum("ij,ij->i", centred, centred)
        squared = norms[:, None] + norms[None, :] - 2.0 * (centred @ centred.T)
        np.maximum(squared, 0.0, out=squared)
        np.fill_diagonal(squared, 0.0)
        return np.sqrt(squared, out=squared) / unit

    def unit_scaled(self, X):
        return unit_scaled(X)


def first_occurrences(X, groups=None):
    """Indices of the first occurrence of each distinct row (``-0.0 == 0.0``), and each row's representative.

    Each row's bits get an integer hash (a weighted sum modulo 2**64, equal
    for equal rows), chunk by chunk; a row whose hash repeats is compared,
    bit for bit and all such rows at once, with the first row of its hash,
    and only the rare rows that differ from it (collisions) are matched one
    by one. No copy of ``X`` beyond a 4 MB chunk and the repeated rows. With
    ``groups`` (an integer per row), only rows of one group can be equal.
    """
    n_rows, n_features = X.shape
    weights = np.random.default_rng(0).integers(0, 2**62, size=n_features + 1, dtype=np.uint64) * np.uint64(2) + 1
    hashes = np.zeros(n_rows, dtype=np.uint64) if groups is None else np.asarray(groups, np.uint64) * weights[-1]
    step = max(1, REFINE_BUFFER_ENTRIES // max(1, n_features))
    for start in range(0, n_rows, step):
        hashes[start : start + step] += (_bits(X[start : start + step]) * weights[:-1]).sum(axis=1, dtype=np.uint64)
    _, first_of_hash, inverse, counts = np.unique(hashes, return_index=True, return_inverse=True, return_counts=True)
    first_row = np.arange(n_rows)
    repeated = np.flatnonzero(counts[inverse.ravel()] > 1)
    first = first_of_hash[inverse.ravel()[repeated]]
    same = (_bits(X[repeated]) == _bits(X[first])).all(axis=1)
    if groups is not None:
        same &= np.asarray(groups)[repeated] == np.asarray(groups)[first]
    first_row[repeated[same]] = first[same]
    collided = repeated[~same]
    if collided.size:  # a hash shared by rows that differ: match those rows by their bytes
        seen = {}
        for row in np.flatnonzero(np.isin(inverse.ravel(), inverse.ravel()[collided])):
            key = _bits(X[row : row + 1]).tobytes(), None if groups is None else int(groups[row])
            first_row[row] = seen.setdefault(key, row)
    keep = np.flatnonzero(first_row == np.arange(n_rows))
    position = np.empty(n_rows, dtype=np.int64)
    position[keep] = np.arange(keep.size)
    return keep, position[first_row]


def _bits(rows):
    """The float64 bits of ``rows``, ``-0.0`` mapped to ``0.0`` (adding 0.0 does it): equal values, equal bits."""
    return (np.asarray(rows, dtype=np.float64) + 0.0).view(np.uint64)


def _kneighbors_cpu(X, n_neighbors, *, Y, block_size):
    if Y is None:
        return _nested_cpu(X, n_neighbors, 1, block_size)[0]
    left_query, left_reference = centred_float32(X, Y, extra_columns=2)
    norms_query = _augment(left_query)
    norms_reference = _augment(left_reference)
    n_features = X.shape[1]
    bounds = _RunningBounds(norms_query, norms_reference, n_neighbors, rounding_bound_factor(n_features), n_features)
    query_blocks = _balanced_blocks(left_query.shape[0], block_size, n_neighbors + 1)
    reference_blocks = _balanced_blocks(left_reference.shape[0], block_size, n_neighbors)
    _search_cross(left_query, left_reference, query_blocks, reference_blocks, bounds)
    rows, cols, _ = bounds.candidates()
    squared = exact_squared_distances(X, Y, rows, cols)
    return select_nearest(rows, cols, squared, X.shape[0], n_neighbors, squared=True)


def _nested_cpu(X, n_neighbors, n_levels, block_size):
    """The symmetric search, at every level of a nested halving at once."""
    order = _locality_order(X, n_neighbors, block_size) if n_levels == 1 else None
    levels = _nested_search(X, n_neighbors, n_levels, block_size, order=order)
    candidates = [bounds.candidates()[:2] for bounds in levels]
    if order is not None:  # back to the caller's rows before refining: ties and values as without the order
        candidates = [(order[rows], order[cols]) for rows, cols in candidates]
    # A pair found at several levels is refined once.
    squared = exact_squared_pairs(X, candidates)
    return [
        select_nearest(rows, cols, values, X.shape[0], n_neighbors, squared=True)
        for (rows, cols), values in zip(candidates, squared)
    ]


def _locality_order(X, n_neighbors, block_size):
    """Rows sorted along the data's first principal direction, for searches of many neighbours; else None.

    The running bounds start from each block's diagonal tile. In the given
    order a block holds points from all over the data, and its ``k``-th
    nearest is far, so many entries of the next tiles pass the threshold
    and must be stored and merged, which costs more than the products at
    large ``k``. Blocks of points that lie together along the direction of
    largest spread give tight thresholds at once: 1.8x faster at
    ``k = 100`` on 20,000 points in 40-D, 1.3x at 50,000. The order changes
    which tile comes first, never the result: the candidates are mapped back
    before the exact refinement and the selection (ties by column). The
    direction comes from 8 power iterations on at most 2,048 rows.
    """
    n_samples = X.shape[0]
    if n_neighbors < _LOCALITY_MIN_NEIGHBORS or n_samples <= 2 * block_size:
        return None
    sample = np.array(X[:: max(1, n_samples // 2048)], dtype=np.float64)  # a copy: centred in place below
    sample -= sample.mean(axis=0)
    direction = np.random.default_rng(0).standard_normal(X.shape[1])
    for _ in range(8):
        direction = sample.T @ (sample @ direction)
        norm = np.linalg.norm(direction)
        if not np.isfinite(norm) or norm == 0:
            return None
        direction /= norm
    # In X's own dtype: no float64 copy of a float32 layer (the order needs no more digits).
    return np.argsort(X @ direction.astype(X.dtype), kind="stable")


def _nested_search(X, n_neighbors, n_levels, block_size, order=None):
    """The float32 pass of the nested search: one ``_RunningBounds`` per level, holding its candidates.

    With ``order``, the rows are searched in that order (their indices in
    the bounds are positions in it).
    """
    left, _ = centred_float32(X, extra_columns=2)
    if order is not None:
        left = left[order]
    norms = _augment(left)
    n_samples, n_features = X.shape
    gamma = rounding_bound_factor(n_features)
    levels = [_RunningBounds(norms, norms, n_neighbors, gamma, n_features) for _ in range(n_levels)]
    edges = [group_edges(n_samples, level) for level in range(n_levels)]
    blocks, n_tiled = _nested_blocks(edges, block_size, n_neighbors)
    # Which group of each tiled level every block lies in.
    group_of = np.array([np.searchsorted(e, [start for start, _ in blocks], side="right") for e in edges[:n_tiled]])
    # One buffer for every tile's product spares the allocator a page fault per entry.
    largest = max(stop - start for start, stop in blocks)
    buffer = np.empty(largest * largest, dtype=np.float32)

    def product(rows, right):
        out = buffer[: (rows.stop - rows.start) * right.shape[0]].reshape(rows.stop - rows.start, right.shape[0])
        return np.matmul(left[rows], right.T, out=out)

    # Diagonal tiles first: they give every row a finite threshold at every level.
    for start, stop in blocks:
        approx = product(slice(start, stop), _right_factor(left[start:stop]))
        np.fill_diagonal(approx, np.inf)
        for bounds in levels[:n_tiled]:
            _seed_thresholds(approx, start, start, bounds)
        # Deeper levels' groups are smaller than a block: each is one sub-tile.
        for level in range(n_tiled, n_levels):
            e = edges[level]
            first, last = np.searchsorted(e, [start, stop])
            for a, b in zip(e[first:last].tolist(), e[first + 1 : last + 1].tolist()):
                _seed_thresholds(approx[a - start : b - start, a - start : b - start], a, a, levels[level])
    # Then the upper triangle: each off-diagonal tile serves its rows and its
    # columns, at every level where both blocks share a group.
    for j, (col_start, col_stop) in enumerate(blocks[1:], start=1):
        right = _right_factor(left[col_start:col_stop])
        for i, (row_start, row_stop) in enumerate(blocks[:j]):
            shared = group_of[:, i] == group_of[:, j]
            if not shared.any():
                continue
            approx = product(slice(row_start, row_stop), right)
            for level in np.flatnonzero(shared):
                _collect_both(approx, row_start, col_start, levels[level])
    return levels


def _nested_blocks(edges, block_size, n_neighbors):
    """Row blocks that never straddle a group of the first ``n_tiled`` levels.

    The blocks are the groups of the first level whose groups fit a tile; if
    none does, the deepest level's groups split into balanced blocks. Symmetry
    only pays across tiles, so data that fit one tile are split in four.
    """
    n_samples = edges[0][-1]
    limit = min(block_size, max(_SEED_COLUMNS, -(-n_samples // 4)))
    for level, e in enumerate(edges):
        if np.diff(e).max() <= limit:
            return list(zip(e[:-1].tolist(), e[1:].tolist())), level + 1
    e = edges[-1]
    blocks = [
        (a + start, a + stop)
        for a, b in zip(e[:-1].tolist(), e[1:].tolist())
        for start, stop in _balanced_blocks(b - a, limit, n_neighbors + 1)
    ]
    return blocks, len(edges)


def _balanced_blocks(n_rows, block_size, min_size):
    """Contiguous ``(start, stop)`` blocks of near-equal size, each at least ``min_size`` rows."""
    n_blocks = max(1, min(math.ceil(n_rows / block_size), n_rows // max(min_size, 1)))
    bounds = np.linspace(0, n_rows, n_blocks + 1).round().astype(np.int64)
    return list(zip(bounds[:-1], bounds[1:]))


def _search_cross(left_query, left_reference, query_blocks, reference_blocks, bounds):
    for col_index, (col_start, col_stop) in enumerate(reference_blocks):
        right = _right_factor(left_reference[col_start:col_stop])
        for row_start, row_stop in query_blocks:
            approx = left_query[row_start:row_stop] @ right.T
            if col_index == 0:
                _seed_thresholds(approx, row_start, col_start, bounds)
            else:
                _collect(approx, row_start, col_start, bounds)


def _seed_thresholds(approx, row_start, col_start, bounds):
    """First tile of a row block: some of its columns give each row a finite threshold.

    The bound from the first ``max(_SEED_COLUMNS, 16 k)`` columns is loose,
    but collecting the whole tile under it, then merging, leaves each row
    with the tile's true ``k`` best: as tight as a selection over the whole
    tile, at a fraction of its cost.
    """
    k = bounds.k
    n_seed = min(approx.shape[1], max(_SEED_COLUMNS, 16 * k))
    rows = np.arange(row_start, row_start + approx.shape[0])
    # The k smallest approximations, each within gamma (n_i + n_j) of its distance:
    # the k-th plus the widest such bound over the seed columns bounds the k-th distance.
    kth = np.partition(approx[:, :n_seed], k - 1, axis=1)[:, k - 1]
    widest = bounds.norms_reference[col_start : col_start + n_seed].max()
    upper = kth + bounds.gamma * (bounds.norms_query[rows] + widest)
    bounds.set_threshold(rows, upper)
    _collect(approx, row_start, col_start, bounds)


def _collect(approx, row_start, col_start, bounds):
    """Keep the tile's entries under their row's threshold.

    A min-reduction first finds the rows with any entry under threshold;
    only those are compared entry by entry.
    """
    threshold = bounds.threshold[row_start : row_start + approx.shape[0]]
    hit = np.flatnonzero(approx.min(axis=1) <= threshold)
    rows, cols = np.nonzero(approx[hit] <= threshold[hit, None])
    bounds.add(hit[rows] + row_start, cols + col_start, approx[hit[rows], cols])


def _collect_both(approx, row_start, col_start, bounds):
    """Keep an off-diagonal tile's entries under the threshold of their row or of their column.

    The symmetric search's tile serves both blocks; one scan finds the
    entries for either, since the two blocks' thresholds are independent.
    """
    row_threshold = bounds.threshold[row_start : row_start + approx.shape[0]]
    column_threshold = bounds.threshold[col_start : col_start + approx.shape[1]]
    under_row = approx <= row_threshold[:, None]
    under_column = approx <= column_threshold
    rows, cols = np.nonzero(under_row | under_column)
    values = approx[rows, cols]
    for_row = under_row[rows, cols]
    for_column = under_column[rows, cols]
    bounds.add(rows[for_row] + row_start, cols[for_row] + col_start, values[for_row])
    bounds.add(cols[for_column] + col_start, rows[for_column] + row_start, values[for_column])


class _RunningBounds:
    """Per-row upper bounds on the ``k`` nearest squared distances, and the candidates.

    ``best[i]`` holds the ``k`` smallest upper bounds ``a_ij + gamma (n_i + n_j)``
    seen for row ``i``; its last column bounds the true ``k``-th squared
    distance from above. Any column that may still be among the ``k`` nearest
    has ``a_ij <= threshold[i]``; such entries are kept as candidates.
    """

    def __init__(self, norms_query, norms_reference, k, gamma, n_features):
        self.norms_query = norms_query.astype(np.float64)
        self.norms_reference = norms_reference.astype(np.float64)
        self.k = k
        self.gamma = gamma
        self.floor = subnormal_floor(n_features)
        n_rows = norms_query.shape[0]
        self.best = np.full((n_rows, k), np.inf)
        self.threshold = np.full(n_rows, np.inf, dtype=np.float32)
        self._rows, self._cols, self._approx = [], [], []
        self._n_stored = 0

    def add(self, rows, cols, approx):
        """Record candidate entries (global row, global column, float32 approximation)."""
        if rows.size == 0:
            return
        self._rows.append(rows)
        self._cols.append(cols)
        self._approx.append(approx)
        self._n_stored += rows.size
        upper = approx + self.gamma * (self.norms_query[rows] + self.norms_reference[cols])
        self._merge_best(rows, upper)
        if self._n_stored > 8 * self.k * self.best.shape[0] + (1 << 20):
            self._prune()

    def _merge_best(self, rows, upper):
        if np.any(rows[1:] < rows[:-1]):
            order = np.argsort(rows, kind="stable")
            rows, upper = rows[order], upper[order]
        starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
        if np.diff(np.r_[starts, rows.size]).max() > self.k:
            # Some rows bring more than k bounds: order each row's by value.
            # One float key does it (rows are 8 apart, unit-scaled bounds lie
            # in [-1, 5]); its rounding may swap bounds within 1e-9 of each
            # other, which is harmless: the largest of any k bounds still
            # bounds the k-th distance from above.
            order = np.argsort(_row_key(rows, upper), kind="stable")
            rows, upper = rows[order], upper[order]
        counts = np.diff(np.r_[starts, rows.size])
        segment = np.repeat(np.arange(starts.size), counts)
        rank = np.arange(rows.size) - starts[segment]
        keep = rank < self.k
        touched = rows[starts]
        incoming = np.full((touched.size, self.k), np.inf)
        incoming[segment[keep], rank[keep]] = upper[keep]
        merged = np.sort(np.concatenate([self.best[touched], incoming], axis=1), axis=1)
        self.best[touched] = merged[:, : self.k]
        self._update_threshold(touched)

    def _update_threshold(self, rows):
        self.set_threshold(rows, self.best[rows, -1])

    def set_threshold(self, rows, kth):
        """Threshold of ``rows`` given an upper bound ``kth`` on their k-th squared distance."""
        threshold = candidate_threshold(kth, self.norms_query[rows], self.gamma, self.floor, 1.0 + 4 * UNIT_ROUNDOFF_32)
        self.threshold[rows] = threshold.astype(np.float32)

    def _prune(self):
        rows, cols, approx = self.candidates()
        self._rows, self._cols, self._approx = [rows], [cols], [approx]
        self._n_stored = rows.size

    def candidates(self):
        """The stored entries still under their row's threshold."""
        rows = np.concatenate(self._rows)
        cols = np.concatenate(self._cols)
        approx = np.concatenate(self._approx)
        keep = approx <= self.threshold[rows]
        return rows[keep], cols[keep], approx[keep]


def _augment(left):
    """Fill the two spare columns of centred rows: ``[c, |c|^2, 1]``; return the squared norms."""
    data = left[:, :-2]
    norms = np.einsum("ij,ij->i", data, data, dtype=np.float64)
    left[:, -2] = norms
    left[:, -1] = 1.0
    return left[:, -2].copy()


def _right_factor(left_block):
    """``[-2 c, 1, |c|^2]`` rows matching :func:`_augment`'s left factor."""
    right = np.empty_like(left_block)
    np.multiply(left_block[:, :-2], np.float32(-2.0), out=right[:, :-2])
    right[:, -2] = 1.0
    right[:, -1] = left_block[:, -2]
    return right


def _row_key(rows, values):
    """A float64 key sorted by row, then value: values of unit-scaled data lie in [-1, 5], rows are 8 apart.

    Exact up to ``8 * n_rows * 2**-52`` (2e-9 for a million rows).
    """
    return rows * 8.0 + values


def _refine_ranks(X, bounds, ranks, search_order=None):
    """Exact distances at ``ranks`` from a search's candidates, refining only the ambiguous ones.

    Per row, sorted by approximation ``a``, with ``E`` the row's largest
    rounding bound: the true value at rank ``r`` lies within ``E`` of
    ``a_(r)``, so a candidate more than ``2 E`` below ``a_(r)`` is certainly
    nearer and one more than ``2 E`` above certainly farther. The value at
    rank ``r`` is then the ``(r - below)``-th smallest exact value of the
    window in between. With ``search_order`` (the search's row order), the
    pairs are refined and the rows returned in the caller's order.
    """
    rows, cols, approx = bounds.candidates()
    n_samples = X.shape[0]
    key = _row_key(rows, approx)
    order = np.argsort(key, kind="stable")
    rows, cols, key = rows[order], cols[order], key[order]
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    if starts.size != n_samples or np.diff(np.r_[starts, rows.size]).min() < ranks.max():
        raise RuntimeError("neighbour search lost candidates; please report this as a bug")
    error = bounds.gamma * (bounds.norms_query[rows] + bounds.norms_reference[cols]) + bounds.floor
    # The pad covers the key's rounding (see _row_key).
    half_width = 2.001 * np.maximum.reduceat(error, starts) * (1 + 4 * UNIT_ROUNDOFF_32) + 1e-8
    first = starts[:, None] + ranks - 1
    low = np.searchsorted(key, key[first] - half_width[:, None], side="left")
    high = np.searchsorted(key, key[first] + half_width[:, None], side="right")
    ambiguous = np.zeros(rows.size + 1, dtype=np.int64)
    np.add.at(ambiguous, low.ravel(), 1)
    np.add.at(ambiguous, high.ravel(), -1)
    refine = np.flatnonzero(np.cumsum(ambiguous[:-1]) > 0)
    exact = np.full(rows.size, np.inf)
    pairs = (rows[refine], cols[refine])
    if search_order is not None:
        pairs = (search_order[pairs[0]], search_order[pairs[1]])
    (exact[refine],) = exact_squared_pairs(X, [pairs])
    width = int((high - low).max())
    positions = low[..., None] + np.arange(width)
    window = np.where(positions < high[..., None], exact[np.minimum(positions, rows.size - 1)], np.inf)
    window.sort(axis=-1)
    nth = (first - low)[..., None]
    distances = np.sqrt(np.take_along_axis(window, nth, axis=-1)[..., 0])
    if search_order is None:
        return distances
    unordered = np.empty_like(distances)
    unordered[search_order] = distances  # row i of the search is the caller's row search_order[i]
    return unordered
