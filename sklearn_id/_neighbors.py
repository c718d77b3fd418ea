"""Exact nearest-neighbour distances: the one place where distances, and the policy around them, live.

The module reads in call order. First the policy that every estimator,
:func:`~sklearn_id.id_scaling` and :class:`~sklearn_id.DepthProfile` go
through: duplicates (:func:`collapse_duplicates`, applied once, in
:func:`_on_distinct_points`), searches among distinct points (plain, at chosen
ranks, nested), neighbours within a subsample read off a full search, and
distance matrices (checked, or accumulated from feature slices). Then the
searches, then the float32 pass, then the exact refinement.

The search is exact in float64 but spends almost all of its time in float32
matrix products. Squared distances are first approximated by one float32
product of the centred, rescaled data with an augmented copy of itself
(``[c_i, |c_i|^2, 1] . [-2 c_j, 1, |c_j|^2]``), tile by tile, so memory stays
``O(block_size * n_samples)``. A deterministic rounding-error bound (see
:mod:`sklearn_id._bounds`) tells, for each row, which entries could still
belong to its ``n_neighbors`` nearest; only those candidates are refined with
an exact float64 difference of the original rows. The result therefore
equals a float64 brute force, whatever the data's offset, scale or rotation.

On the CPU the distance matrix is treated as symmetric: each off-diagonal tile
is computed once and serves both its rows and its columns. Each row keeps a
running upper bound on its ``n_neighbors``-th distance, so a tile only costs a
comparison per entry, never a selection over a whole row. On CUDA the search
runs in :mod:`sklearn_id._neighbors_torch`.

Two variants share that pass: :func:`nested_kneighbors` searches every group
of a nested halving of the rows at once (decimation curves), and
:func:`neighbor_distances_at` refines only the candidates that may sit at the
requested ranks (GRIDE), not all ``n_neighbors`` of them.
"""

import math
import os
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from sklearn.utils.validation import check_non_negative

from sklearn_id._bounds import (
    REFINE_BUFFER_ENTRIES,
    UNIT_ROUNDOFF_32,
    candidate_threshold,
    centred_float32,
    rounding_bound_factor,
    select_nearest,
    subnormal_floor,
)
from sklearn_id._device import is_tensor
from sklearn_id._warnings import find_stack_level

__all__ = [
    "DuplicatePointsWarning",
    "PiecewiseDistances",
    "check_distance_matrix",
    "collapse_duplicates",
    "distinct_kneighbors",
    "distinct_nested_kneighbors",
    "distinct_neighbor_distances",
    "group_edges",
    "kneighbors",
    "kneighbors_precomputed",
    "n_halving_levels",
    "neighbor_distances_at",
    "nested_kneighbors",
    "restrict_points",
    "stack_groups",
    "subsample_neighbor_distances",
]

_DEFAULT_BLOCK_SIZE = 2048
# Columns of a first tile that seed each row's threshold.
_SEED_COLUMNS = 256

# --- Policy: what the estimators, id_scaling and DepthProfile call ---------------------------


class DuplicatePointsWarning(UserWarning):
    """Warning raised when exact duplicate rows are collapsed before estimation."""


def distinct_neighbor_distances(X, ranks, *, metric="euclidean", device="cpu"):
    """Distances to the neighbours of ``ranks`` among the distinct points of ``X``.

    Duplicates are handled by the one policy of this module (see
    :func:`collapse_duplicates`): the search runs once on all rows; only when
    it finds a first-neighbour distance of zero are the duplicates collapsed
    and the search repeated on the distinct rows.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features) or (n_samples, n_samples)
        Data, or a square distance matrix when ``metric="precomputed"``.
    ranks : sequence of int
        Neighbour ranks, from 1.
    metric : {"euclidean", "precomputed"}, default="euclidean"
    device : str, default="cpu"

    Returns
    -------
    distances : ndarray of shape (n_distinct, len(ranks))
    distinct : ndarray of shape (n_distinct,)
        Row indices of ``X`` kept, in increasing order.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_id._neighbors import distinct_neighbor_distances
    >>> X = np.array([[0.0], [1.0], [3.0], [7.0]])
    >>> distances, distinct = distinct_neighbor_distances(X, [1, 2])
    >>> distances[:, 1] / distances[:, 0]
    array([3. , 2. , 1.5, 1.5])
    """
    ranks = np.asarray(ranks, dtype=np.int64)
    # Rank 1 tells duplicates apart.
    searched = np.union1d([1], ranks)

    def search(points):
        if metric == "precomputed":
            return kneighbors_precomputed(points, int(searched.max()))[0][:, searched - 1]
        return neighbor_distances_at(points, searched, device=device)

    distances, distinct, _ = _on_distinct_points(X, int(ranks.max()), metric, search, lambda found: found[:, 0])
    return distances[:, np.searchsorted(searched, ranks)], distinct


def distinct_kneighbors(X, n_neighbors, *, min_neighbors=None, metric="euclidean", device="cpu"):
    """Nearest neighbours among the distinct points of ``X``, collapsed as in :func:`distinct_neighbor_distances`.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features) or (n_samples, n_samples)
    n_neighbors : int
        Neighbours listed per point, at most the number of distinct points
        minus one.
    min_neighbors : int, default=None
        With fewer distinct points, ``n_neighbors`` shrinks to what they allow,
        but never below ``min_neighbors`` (an error); None means ``n_neighbors``.
    metric : {"euclidean", "precomputed"}, default="euclidean"
    device : str, default="cpu"

    Returns
    -------
    distances : ndarray of shape (n_distinct, n_listed), float64
    indices : ndarray of shape (n_distinct, n_listed), int64
        Neighbours as positions in ``distinct``.
    distinct : ndarray of shape (n_distinct,)
        Row indices of ``X`` kept, in increasing order.
    representative : ndarray of shape (n_samples,)
        For each row of ``X``, the position in ``distinct`` of its value.
    """
    required = n_neighbors if min_neighbors is None else min_neighbors

    def search(points):
        k = min(n_neighbors, points.shape[0] - 1)
        if metric == "precomputed":
            return kneighbors_precomputed(points, k)
        return kneighbors(points, k, device=device)

    (distances, indices), distinct, representative = _on_distinct_points(
        X, required, metric, search, lambda found: found[0][:, 0]
    )
    return distances, indices, distinct, representative


def distinct_nested_kneighbors(X, n_neighbors, n_min, *, metric="euclidean", device="cpu"):
    """Neighbours within each group of a nested halving of the distinct points of ``X``.

    The halving goes as deep as keeps every group at ``n_min`` points or more
    (see :func:`nested_kneighbors`); duplicates are collapsed first, as in
    :func:`distinct_neighbor_distances`.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features) or (n_samples, n_samples)
    n_neighbors : int
    n_min : int
        Smallest group size.
    metric : {"euclidean", "precomputed"}, default="euclidean"
    device : str, default="cpu"

    Returns
    -------
    levels : list of (distances, indices)
        One pair per level, rows of the distinct points; group ``i`` of level
        ``j`` is rows ``group_edges(n_distinct, j)[i:i + 2]``.
    distinct : ndarray of shape (n_distinct,)
    """

    def search(points):
        n_points = points.shape[0]
        n_levels = n_halving_levels(n_points, n_min)
        if metric == "precomputed":
            return [
                stack_groups(
                    lambda a, b: kneighbors_precomputed(points[a:b, a:b], n_neighbors), group_edges(n_points, level)
                )
                for level in range(n_levels)
            ]
        return nested_kneighbors(points, n_neighbors, n_levels, device=device)

    levels, distinct, _ = _on_distinct_points(X, n_neighbors, metric, search, lambda found: found[0][0][:, 0])
    return levels, distinct


def subsample_neighbor_distances(neighbor_distances, indices, subset, ranks, *, X, metric="euclidean"):
    """Distances from each point of ``subset`` to its neighbours of ``ranks`` within the subset.

    A point's neighbours within a subset are its neighbours overall that
    belong to it, in the same order, so they are read off a search on all
    points. A point with fewer than ``max(ranks)`` of its listed neighbours in
    the subset gets its exact distances to the whole subset instead (rare
    when the search listed a few more neighbours than the largest rank).

    Parameters
    ----------
    neighbor_distances, indices : ndarray of shape (n_points, n_listed)
        A search on all points, as :func:`kneighbors` returns it.
    subset : ndarray of int
        Sorted rows of the points.
    ranks : sequence of int
        Neighbour ranks within the subset, from 1.
    X : ndarray of shape (n_points, n_features) or (n_points, n_points)
        The points, or their distance matrix when ``metric="precomputed"``.
    metric : {"euclidean", "precomputed"}, default="euclidean"

    Returns
    -------
    distances : ndarray of shape (len(subset), len(ranks)), float64

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_id._neighbors import kneighbors, subsample_neighbor_distances
    >>> X = np.array([[0.0], [1.0], [3.0], [7.0]])
    >>> distances, indices = kneighbors(X, 3)
    >>> subsample_neighbor_distances(distances, indices, np.array([0, 2, 3]), [1, 2], X=X)
    array([[3., 7.],
           [3., 4.],
           [4., 7.]])
    """
    ranks = np.asarray(ranks, dtype=np.int64)
    if subset.size <= ranks.max():
        raise ValueError(
            f"A subsample of {subset.size} distinct points has no neighbour of rank {ranks.max()}; "
            "draw larger subsamples (subsample closer to 1) or use smaller neighbour ranks."
        )
    member = np.zeros(neighbor_distances.shape[0], dtype=bool)
    member[subset] = True
    found = np.cumsum(member[indices[subset]], axis=1)
    columns = np.stack([np.argmax(found >= rank, axis=1) for rank in ranks], axis=1)
    result = np.take_along_axis(neighbor_distances[subset], columns, axis=1)
    missing = np.flatnonzero(found[:, -1] < ranks.max())
    if missing.size:
        to_subset = _distances_between(X, subset[missing], subset, metric)
        to_subset[np.arange(missing.size), missing] = np.inf  # the point itself
        result[missing] = np.sort(to_subset, axis=1)[:, ranks - 1]
    return result


def collapse_duplicates(X, n_neighbors, *, metric="euclidean"):
    """Rows of ``X`` that remain once exact duplicates are collapsed (first occurrence kept).

    The one duplicate policy of the package: exact duplicates have a first
    neighbour distance of exactly zero, which no estimator can use, so they
    are collapsed with a :class:`DuplicatePointsWarning` that gives their
    number, and fewer than ``n_neighbors + 1`` distinct points are an error.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features) or (n_samples, n_samples)
        Data, or a square distance matrix when ``metric="precomputed"``.
    n_neighbors : int
    metric : {"euclidean", "precomputed"}, default="euclidean"

    Returns
    -------
    distinct : ndarray of shape (n_distinct,)
        Row indices of ``X`` kept, in increasing order.
    representative : ndarray of shape (n_samples,)
        For each row, the position in ``distinct`` of its value.
    """
    n_samples = X.shape[0]
    if metric == "precomputed":
        zero = X == 0
        # A row's value is that of the first row at distance zero from it.
        first = np.argmax(zero | np.eye(n_samples, dtype=bool), axis=1)
        distinct = np.flatnonzero(first == np.arange(n_samples))
        representative = np.searchsorted(distinct, first)
    else:
        distinct, representative = _first_occurrences(X)
    n_distinct = distinct.size
    if n_distinct < n_samples:
        warnings.warn(
            f"{n_samples - n_distinct} exact duplicate rows were collapsed: the "
            f"estimate uses the {n_distinct} distinct points.",
            DuplicatePointsWarning,
            stacklevel=find_stack_level(),
        )
    if n_distinct == 1:
        raise ValueError(
            f"All {n_samples} points are identical: their intrinsic dimension is undefined. Check the input data."
        )
    if n_distinct <= n_neighbors:
        raise ValueError(
            f"Only {n_distinct} distinct points were found, but at least "
            f"{n_neighbors + 1} are needed to find {n_neighbors} neighbours of each; "
            "provide more distinct points."
        )
    return distinct, representative


def _on_distinct_points(X, n_neighbors, metric, search, nearest):
    """``search(points)`` on the distinct points of ``X``: the duplicate policy, in one place.

    The search runs once on all rows; only when ``nearest(result)``, its
    first-neighbour distances, holds a zero are duplicates collapsed and the
    search repeated on the distinct rows. Returns the result, the distinct
    rows and each row's representative among them.
    """
    n_samples = X.shape[0]
    X, unit = (X, 1.0) if metric == "precomputed" else _unit_scaled(X)
    if n_neighbors < n_samples:
        result = search(X)
        if nearest(result).min() > 0:
            everything = np.arange(n_samples)
            return _unscaled(result, unit), everything, everything
    distinct, representative = collapse_duplicates(X, n_neighbors, metric=metric)
    return _unscaled(search(restrict_points(X, distinct, metric=metric)), unit), distinct, representative


def _unit_scaled(X):
    """``X`` times a power of two that brings it near unit size, and that power, when it is far from it.

    Multiplying by a power of two is exact, so distances scale exactly and
    their ratios do not change; it keeps squared distances clear of float64's
    underflow (data near 1e-170) and the float32 screen clear of overflow
    (data near 1e39). Ordinary data are returned as they are, without a copy.
    """
    if is_tensor(X) or X.size == 0:
        return X, 1.0
    unit = _unit_for(X)
    return (X, 1.0) if unit == 1.0 else (X * X.dtype.type(unit), unit)


def _unit_for(*arrays):
    """The power of two that brings arrays of their largest magnitude near unit size; 1.0 for ordinary data."""
    # max and min rather than abs(A).max(): no temporary the size of the data on this hot path.
    largest = max(max(float(A.max()), -float(A.min())) for A in arrays)
    if largest == 0 or 2.0**-60 <= largest <= 2.0**60:
        return 1.0
    return 2.0 ** -np.frexp(largest)[1]


def _unscaled(result, unit):
    """A search's result with its distances in the data's own units again (indices unchanged)."""
    if unit == 1.0:
        return result
    if isinstance(result, list):
        return [_unscaled(level, unit) for level in result]
    if isinstance(result, tuple):
        return (result[0] / unit, *result[1:])
    return result / unit


def restrict_points(X, rows, *, metric="euclidean"):
    """The points ``rows`` (sorted, distinct) of ``X``: rows of data, or the sub-matrix of a distance matrix."""
    if rows.size == X.shape[0]:
        return X
    if is_tensor(X):
        import torch

        return X[torch.as_tensor(rows, device=X.device)]
    return X[np.ix_(rows, rows)] if metric == "precomputed" else X[rows]


def _first_occurrences(X):
    """Indices of the first occurrence of each distinct row (``-0.0 == 0.0``), and each row's representative."""
    if is_tensor(X):
        # Rare (duplicates were found): the rows are compared on the host.
        X = X.cpu().numpy()
    first_of = {}
    keep = []
    representative = np.empty(X.shape[0], dtype=np.int64)
    step = max(1, REFINE_BUFFER_ENTRIES // max(1, X.shape[1]))
    for start in range(0, X.shape[0], step):
        # Adding 0.0 maps -0.0 to 0.0, so rows equal in value hash alike.
        chunk = np.asarray(X[start : start + step], dtype=np.float64) + 0.0
        for offset, row in enumerate(chunk):
            key = row.tobytes()
            position = first_of.setdefault(key, len(keep))
            if position == len(keep):
                keep.append(start + offset)
            representative[start + offset] = position
    return np.asarray(keep, dtype=np.int64), representative


def check_distance_matrix(D, owner, *, square=True):
    """Raise a ``ValueError`` unless ``D`` can be a matrix of distances.

    Parameters
    ----------
    D : ndarray
    owner : str
        Who asks, for the message (e.g. ``"TwoNNDimension(metric='precomputed')"``).
    square : bool, default=True
        Whether ``D`` holds the distances among the samples (``fit``), rather
        than from new samples to fitted ones (``transform``).
    """
    if square and D.shape[0] != D.shape[1]:
        raise ValueError(
            f"{owner} needs a square distance matrix, got shape {D.shape}; "
            "pass the pairwise distances of the samples, or use metric='euclidean'."
        )
    check_non_negative(D, owner)
    if square:
        if np.diagonal(D).any():
            raise ValueError(
                f"{owner} needs zeros on the diagonal (each sample's distance to itself), but "
                f"{np.count_nonzero(np.diagonal(D))} diagonal entries are not zero; a similarity or "
                "kernel matrix is not a distance matrix."
            )
        asymmetry = np.abs(D - D.T).max() if D.size else 0.0
        if asymmetry > 1e-9 * max(D.max(), np.finfo(np.float64).tiny):
            raise ValueError(
                f"{owner} needs a symmetric distance matrix, but D[i, j] and D[j, i] differ by up to "
                f"{asymmetry:.3g}; pass (D + D.T) / 2 if the difference is rounding."
            )


class PiecewiseDistances:
    """Exact distances among samples whose features arrive in slices.

    Squared distances are sums over features, so each slice adds its share in
    float64 (centred first, so the Gram formula does not cancel), and the
    samples never need to be held whole. Memory: one ``n_samples`` squared
    float64 matrix.

    Parameters
    ----------
    n_samples : int
    """

    def __init__(self, n_samples):
        self.squared = np.zeros((n_samples, n_samples))

    def add(self, piece, chunk=1024):
        """Add the share of a (n_samples, n_piece_features) slice."""
        for start in range(0, piece.shape[1], chunk):
            centred = piece[:, start : start + chunk].astype(np.float64)
            centred -= centred.mean(axis=0)
            norms = np.einsum("ij,ij->i", centred, centred)
            self.squared += norms[:, None] + norms[None, :] - 2 * (centred @ centred.T)

    def distances(self):
        """The distance matrix (rounding below zero clipped)."""
        squared = np.maximum(self.squared, 0.0)
        np.fill_diagonal(squared, 0.0)
        return np.sqrt(squared)


def _distances_between(X, rows, cols, metric):
    """Exact distances of the points ``rows`` to the points ``cols``, as a (len(rows), len(cols)) array."""
    if metric == "precomputed":
        return np.array(X[np.ix_(rows, cols)], dtype=np.float64)
    if is_tensor(X):
        import torch

        targets = X[torch.as_tensor(cols, device=X.device)].double()
        return np.stack([((targets - X[int(row)].double()) ** 2).sum(1).sqrt().cpu().numpy() for row in rows])
    X, unit = _unit_scaled(X)
    pairs_rows = np.repeat(rows, cols.size)
    pairs_cols = np.tile(cols, rows.size)
    return np.sqrt(_exact_squared_distances(X, X, pairs_rows, pairs_cols)).reshape(rows.size, cols.size) / unit


# --- Searches --------------------------------------------------------------------------------


def kneighbors(X, n_neighbors, *, Y=None, device="cpu", block_size=None):
    """Exact Euclidean distances to the ``n_neighbors`` nearest neighbours.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Query points (float32 or float64).
    n_neighbors : int
        Number of neighbours per query point.
    Y : ndarray of shape (n_reference, n_features), default=None
        Reference points. When None, the neighbours of each row of ``X`` are
        searched among the other rows of ``X`` (the point itself excluded).
    device : str, default="cpu"
        ``"cpu"`` (numpy and BLAS, no torch import) or a CUDA device, as
        :func:`sklearn_id._device.resolve_device` returns it. A torch tensor
        ``X`` (and ``Y``) is searched by torch on its own device instead.
    block_size : int, default=None
        Rows per tile; None picks a size that keeps BLAS efficient.

    Returns
    -------
    distances : ndarray of shape (n_samples, n_neighbors), float64
        Distances in ascending order; ties are broken by the lower index.
    indices : ndarray of shape (n_samples, n_neighbors), int64
        Row indices (into ``Y``, or ``X`` when ``Y`` is None) of the neighbours.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_id._neighbors import kneighbors
    >>> X = np.array([[0.0], [1.0], [3.0], [7.0]])
    >>> distances, indices = kneighbors(X, 2)
    >>> distances
    array([[1., 3.],
           [1., 2.],
           [2., 3.],
           [4., 6.]])
    >>> indices
    array([[1, 2],
           [0, 2],
           [1, 0],
           [2, 1]])
    """
    on_device = is_tensor(X)
    if not on_device:
        X = np.asarray(X)
    reference = X if Y is None else Y
    n_reference = reference.shape[0] - (1 if Y is None else 0)
    if n_neighbors > n_reference:
        raise ValueError(
            f"n_neighbors={n_neighbors} neighbours were asked for, but only "
            f"{n_reference} reference points are available; use fewer neighbours "
            "or more points."
        )
    block_size = _DEFAULT_BLOCK_SIZE if block_size is None else block_size
    if on_device or device != "cpu":
        # A tensor is searched by torch where it lives: no host round trip.
        from sklearn_id._neighbors_torch import kneighbors_torch

        return kneighbors_torch(X, n_neighbors, Y=Y, device=device, block_size=block_size)
    if Y is None:
        return _kneighbors_cpu(X, n_neighbors, Y=None, block_size=block_size)
    # Queries and references at one common scale (see _unit_scaled).
    Y = np.asarray(Y)
    unit = _unit_for(X, Y)
    if unit == 1.0:
        return _kneighbors_cpu(X, n_neighbors, Y=Y, block_size=block_size)
    scaled = _kneighbors_cpu(X * X.dtype.type(unit), n_neighbors, Y=Y * Y.dtype.type(unit), block_size=block_size)
    return _unscaled(scaled, unit)


def nested_kneighbors(X, n_neighbors, n_levels, *, device="cpu", block_size=None):
    """Exact neighbours within each group of a nested halving of the rows.

    Level ``j`` cuts the rows into ``2**j`` consecutive groups of near-equal
    size (boundaries ``round(i * n_samples / 2**j)``, see
    :func:`group_edges`), and each group is searched as a data set of its
    own; level 0 is the plain search. On the CPU one pass over the tiles of
    the level-0 search serves every level, and a pair found at several
    levels is refined once.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    n_neighbors : int
    n_levels : int
        Number of levels, so the smallest groups have about
        ``n_samples / 2**(n_levels - 1)`` rows.
    device : str, default="cpu"
    block_size : int, default=None

    Returns
    -------
    neighbors : list of (distances, indices)
        One pair per level, as :func:`kneighbors` returns them; indices are
        rows of ``X``, always within the row's group.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_id._neighbors import nested_kneighbors
    >>> X = np.array([[0.0], [1.0], [3.0], [7.0]])
    >>> (_, whole), (_, halves) = nested_kneighbors(X, 1, 2)
    >>> whole.ravel(), halves.ravel()
    (array([1, 0, 1, 2]), array([1, 0, 3, 2]))
    """
    X = np.asarray(X)
    smallest = int(np.diff(group_edges(X.shape[0], n_levels - 1)).min())
    if smallest <= n_neighbors:
        raise ValueError(
            f"{n_levels} levels of halving leave groups of {smallest} rows, too few "
            f"for {n_neighbors} neighbours each; use fewer levels or more points."
        )
    block_size = _DEFAULT_BLOCK_SIZE if block_size is None else block_size
    if device == "cpu":
        return _nested_cpu(X, n_neighbors, n_levels, block_size)
    from sklearn_id._neighbors_torch import kneighbors_torch

    return [
        stack_groups(
            lambda a, b: kneighbors_torch(X[a:b], n_neighbors, device=device, block_size=block_size),
            group_edges(X.shape[0], level),
        )
        for level in range(n_levels)
    ]


def n_halving_levels(n_points, n_min):
    """Levels of halving whose groups all keep at least ``n_min`` of ``n_points`` points.

    Examples
    --------
    >>> from sklearn_id._neighbors import n_halving_levels
    >>> n_halving_levels(1500, 100)
    4
    """
    if n_min > n_points // 2:
        raise ValueError(
            f"Decimation with n_min={n_min} needs at least {2 * n_min} distinct points "
            f"to split them once, got {n_points}; lower n_min or provide more points."
        )
    n_levels = 1 + int(math.log2(n_points / n_min))
    while np.diff(group_edges(n_points, n_levels - 1)).min() < n_min:
        n_levels -= 1
    return n_levels


def group_edges(n_samples, level):
    """Boundaries of the ``2**level`` consecutive near-equal groups of a nested halving."""
    return np.round(np.arange(2**level + 1) * (n_samples / 2**level)).astype(np.int64)


def stack_groups(search, edges):
    """``search(a, b)`` run on each group of rows ``a:b``, stacked, with indices made global.

    Parameters
    ----------
    search : callable
        Returns ``(distances, indices)`` of the group's rows, indices local.
    edges : ndarray
        Group boundaries, as :func:`group_edges` gives them.

    Returns
    -------
    distances, indices : ndarray
    """
    groups = [search(a, b) for a, b in zip(edges[:-1], edges[1:])]
    return (
        np.concatenate([distances for distances, _ in groups]),
        np.concatenate([indices + a for (_, indices), a in zip(groups, edges[:-1])]),
    )


def neighbor_distances_at(X, ranks, *, device="cpu", block_size=None):
    """Exact distances to each row's neighbours of the given ranks only (the point itself excluded).

    The search is that of :func:`kneighbors` with ``n_neighbors = max(ranks)``,
    but only the candidates whose rounding interval overlaps one of the
    ``ranks`` are refined in float64: the others are certainly nearer or
    farther than it. For distant ranks (GRIDE) that is a fraction of them.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    ranks : sequence of int
        Neighbour ranks, from 1.
    device : str, default="cpu"
    block_size : int, default=None

    Returns
    -------
    distances : ndarray of shape (n_samples, len(ranks)), float64

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_id._neighbors import neighbor_distances_at
    >>> X = np.array([[0.0], [1.0], [3.0], [7.0]])
    >>> neighbor_distances_at(X, [1, 3])
    array([[1., 7.],
           [1., 6.],
           [2., 4.],
           [4., 7.]])
    """
    ranks = np.asarray(ranks, dtype=np.int64)
    n_neighbors = int(ranks.max())
    if is_tensor(X) or device != "cpu" or n_neighbors >= X.shape[0]:
        return kneighbors(X, n_neighbors, device=device, block_size=block_size)[0][:, ranks - 1]
    bounds = _nested_search(X, n_neighbors, 1, _DEFAULT_BLOCK_SIZE if block_size is None else block_size)[0]
    return _refine_ranks(X, bounds, ranks)


def kneighbors_precomputed(distances, n_neighbors, *, exclude_self=True):
    """Nearest neighbours read off a matrix of distances.

    Parameters
    ----------
    distances : ndarray of shape (n_samples, n_reference)
        With ``exclude_self``, the square symmetric distances among the
        samples (zeros on the diagonal, which is skipped); otherwise the
        distances from query samples to reference points.
    n_neighbors : int
        Number of neighbours per point.
    exclude_self : bool, default=True

    Returns
    -------
    distances : ndarray of shape (n_samples, n_neighbors), float64
    indices : ndarray of shape (n_samples, n_neighbors), int64
    """
    n_samples = distances.shape[0]
    masked = np.array(distances, dtype=np.float64)
    if exclude_self:
        np.fill_diagonal(masked, np.inf)
    indices = np.argpartition(masked, n_neighbors - 1, axis=1)[:, :n_neighbors]
    rows = np.repeat(np.arange(n_samples), n_neighbors)
    return select_nearest(rows, indices.ravel(), masked[rows, indices.ravel()], n_samples, n_neighbors)


# --- The float32 pass on the CPU -------------------------------------------------------------


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
    squared = _exact_squared_distances(X, Y, rows, cols)
    return select_nearest(rows, cols, squared, X.shape[0], n_neighbors, squared=True)


def _nested_cpu(X, n_neighbors, n_levels, block_size):
    """The symmetric search, at every level of a nested halving at once."""
    levels = _nested_search(X, n_neighbors, n_levels, block_size)
    candidates = [bounds.candidates()[:2] for bounds in levels]
    # A pair found at several levels is refined once.
    squared = _exact_squared_pairs(X, candidates)
    return [
        select_nearest(rows, cols, values, X.shape[0], n_neighbors, squared=True)
        for (rows, cols), values in zip(candidates, squared)
    ]


def _nested_search(X, n_neighbors, n_levels, block_size):
    """The float32 pass of the nested search: one ``_RunningBounds`` per level, holding its candidates."""
    left, _ = centred_float32(X, extra_columns=2)
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


# --- Exact refinement ------------------------------------------------------------------------


def _refine_ranks(X, bounds, ranks):
    """Exact distances at ``ranks`` from a search's candidates, refining only the ambiguous ones.

    Per row, sorted by approximation ``a``, with ``E`` the row's largest
    rounding bound: the true value at rank ``r`` lies within ``E`` of
    ``a_(r)``, so a candidate more than ``2 E`` below ``a_(r)`` is certainly
    nearer and one more than ``2 E`` above certainly farther. The value at
    rank ``r`` is then the ``(r - below)``-th smallest exact value of the
    window in between.
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
    (exact[refine],) = _exact_squared_pairs(X, [(rows[refine], cols[refine])])
    width = int((high - low).max())
    positions = low[..., None] + np.arange(width)
    window = np.where(positions < high[..., None], exact[np.minimum(positions, rows.size - 1)], np.inf)
    window.sort(axis=-1)
    nth = (first - low)[..., None]
    return np.sqrt(np.take_along_axis(window, nth, axis=-1)[..., 0])


def _exact_squared_pairs(X, pair_lists):
    """Exact squared distances of lists of ``(rows, cols)`` pairs of ``X``, each unordered pair computed once."""
    n_samples = X.shape[0]
    keys = np.concatenate([np.minimum(r, c) * n_samples + np.maximum(r, c) for r, c in pair_lists])
    unique, inverse = np.unique(keys, return_inverse=True)
    squared = _exact_squared_distances(X, X, unique // n_samples, unique % n_samples)[inverse]
    return np.split(squared, np.cumsum([rows.size for rows, _ in pair_lists])[:-1])


def _exact_squared_distances(X, reference, rows, cols):
    """Float64 squared distances of the pairs ``(X[rows], reference[cols])``, in chunks.

    The gathers and the subtraction release the GIL, so the chunks run on
    all cores in threads.
    """
    squared = np.empty(rows.size, dtype=np.float64)
    step = max(1, REFINE_BUFFER_ENTRIES // max(1, X.shape[1]))

    def refine(start):
        chunk = slice(start, start + step)
        diff = X[rows[chunk]].astype(np.float64, copy=False)
        diff -= reference[cols[chunk]]
        squared[chunk] = np.einsum("ij,ij->i", diff, diff)

    starts = range(0, rows.size, step)
    with ThreadPoolExecutor(max_workers=max(1, min(os.cpu_count() or 1, len(starts)))) as pool:
        list(pool.map(refine, starts))
    return squared
