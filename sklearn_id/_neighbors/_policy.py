"""The policy around every search: duplicates collapsed once, searches among distinct points, subsamples.

What the estimators, :func:`~sklearn_id.id_scaling` and
:class:`~sklearn_id.DepthProfile` call. Duplicates are handled in one place
(:func:`collapse_duplicates`, applied by :func:`_on_distinct_points`); every
search and every operation on the points goes through the backend that
:func:`~sklearn_id._neighbors.backend_for` picks.
"""

import warnings

import numpy as np

from sklearn_id._device import as_numpy
from sklearn_id._neighbors._dispatch import backend_for, kneighbors, neighbor_distances_at, nested_kneighbors
from sklearn_id._neighbors._groups import n_halving_levels
from sklearn_id._neighbors._units import unscaled
from sklearn_id._warnings import find_stack_level

__all__ = [
    "DuplicatePointsWarning",
    "check_points",
    "collapse_duplicates",
    "distinct_kneighbors",
    "distinct_nested_kneighbors",
    "distinct_neighbor_distances",
    "fitted_reference",
    "query_kneighbors",
    "reordered_points",
    "restrict_points",
    "search_points",
    "searched_on",
    "subsample_neighbor_distances",
]


def check_points(X, owner, *, metric="euclidean", square=True):
    """Raise a ``ValueError`` naming ``owner`` unless ``X`` can be points for ``metric`` (a matrix is checked)."""
    backend_for(X, metric=metric).check(X, owner, square=square)


def fitted_reference(X, distinct, *, metric="euclidean"):
    """What later queries are searched against (:func:`query_kneighbors`): the distinct fitted points ``distinct``."""
    return backend_for(X, metric=metric).fitted_reference(X, distinct)


def query_kneighbors(X, n_neighbors, reference, *, metric="euclidean", device="cpu"):
    """Each query's nearest fitted points: ``X`` holds the queries, or with a distance matrix their distances to
    every fitted sample; ``reference`` is what :func:`fitted_reference` returned."""
    return backend_for(X, metric=metric, device=device).query(X, n_neighbors, reference, device=device)


def reordered_points(X, order, *, metric="euclidean"):
    """The points of ``X`` in the order ``order`` (a permutation of its rows)."""
    return backend_for(X, metric=metric).restrict(X, order)


def searched_on(metric, device):
    """The device a search with ``metric`` runs on when ``device`` is asked: a distance matrix is read on the host."""
    return "cpu" if metric == "precomputed" else device


def search_points(X, device):
    """The points as a search on ``device`` takes them: a tensor comes to the host for a CPU search."""
    return as_numpy(X) if device == "cpu" else X


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
        return neighbor_distances_at(points, searched, metric=metric, device=device)

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
        return kneighbors(points, min(n_neighbors, points.shape[0] - 1), metric=metric, device=device)

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
        n_levels = n_halving_levels(points.shape[0], n_min)
        return nested_kneighbors(points, n_neighbors, n_levels, metric=metric, device=device)

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
    distinct, representative = backend_for(X, metric=metric).distinct_rows(X)
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


def distinct_points(X, *, metric="euclidean"):
    """The rows of ``X`` that remain once exact duplicates are collapsed, without a neighbour search.

    The duplicate policy of :func:`collapse_duplicates` (its warning, and its
    error when every point is the same) for consumers that need the distinct
    points themselves rather than their neighbours, such as spanning trees.

    Returns
    -------
    distinct : ndarray of shape (n_distinct,)
        Row indices of ``X`` kept, in increasing order.
    """
    return collapse_duplicates(X, 1, metric=metric)[0]


def _on_distinct_points(X, n_neighbors, metric, search, nearest):
    """``search(points)`` on the distinct points of ``X``: the duplicate policy, in one place.

    The search runs once on all rows; only when ``nearest(result)``, its
    first-neighbour distances, holds a zero are duplicates collapsed and the
    search repeated on the distinct rows. Returns the result, the distinct
    rows and each row's representative among them.
    """
    n_samples = X.shape[0]
    X, unit = backend_for(X, metric=metric).unit_scaled(X)
    if n_neighbors < n_samples:
        result = search(X)
        if nearest(result).min() > 0:
            everything = np.arange(n_samples)
            return unscaled(result, unit), everything, everything
    distinct, representative = collapse_duplicates(X, n_neighbors, metric=metric)
    return unscaled(search(restrict_points(X, distinct, metric=metric)), unit), distinct, representative


def restrict_points(X, rows, *, metric="euclidean"):
    """The points ``rows`` (sorted, distinct) of ``X``: rows of data, or the sub-matrix of a distance matrix."""
    return X if rows.size == X.shape[0] else backend_for(X, metric=metric).restrict(X, rows)


def distance_matrix(X, rows, *, metric="euclidean", device="cpu"):
    """Float64 distances among the points ``rows`` of ``X`` (a host array), computed where the points are.

    From the Gram matrix of the centred points: each squared distance is
    within about ``1e-16`` of the points' squared spread, far below what a
    sum over a spanning tree feels, but not exact for near-duplicates (the
    neighbour searches, which are, refine their candidates instead).

    Parameters
    ----------
    X : ndarray or tensor of shape (n_samples, n_features), or ndarray of shape (n_samples, n_samples)
    rows : ndarray of int
    metric : {"euclidean", "precomputed"}, default="euclidean"
    device : str, default="cpu"

    Returns
    -------
    distances : ndarray of shape (len(rows), len(rows)), float64

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_id._neighbors import distance_matrix
    >>> distance_matrix(np.array([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]]) + 1e6, np.array([0, 2]))
    array([[ 0., 10.],
           [10.,  0.]])
    """
    return backend_for(X, metric=metric, device=device).distance_matrix(X, rows, device=device)


def _distances_between(X, rows, cols, metric):
    """Exact distances of the points ``rows`` to the points ``cols``, as a (len(rows), len(cols)) array."""
    return backend_for(X, metric=metric).pair_distances(X, rows, cols)
