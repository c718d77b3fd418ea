"""A neighbour graph whose lists grow row by row: the exact k nearest neighbours, for an estimator that decides k.

ABIDE tests, point by point, how far its density stays constant; a point
whose test runs past the end of its list needs more neighbours, and so do
the neighbours it reads. :class:`NeighborGraph` holds the lists of the
distinct points as *tiers*: the first search lists every row to one width,
and :meth:`NeighborGraph.grow` lists only the rows that need it to a larger
width, by one exact query of those rows against all points (the same exact
search, so a grown row starts with the entries it had). Nothing is searched
again for the other rows, and the memory is that of the rows that grew.
A subsample's graph is read off the whole one (:meth:`NeighborGraph.restricted`),
its short rows grown within the subsample.
"""

import numpy as np

from sklearn_id._neighbors._dispatch import kneighbors
from sklearn_id._neighbors._policy import distinct_kneighbors, restrict_points

__all__ = ["NeighborGraph", "neighbor_graph"]


def neighbor_graph(X, n_neighbors, *, min_neighbors=None, device="cpu"):
    """The neighbour graph of the distinct points of ``X``, each listed to ``n_neighbors`` (the package's policy).

    Parameters
    ----------
    X : ndarray or tensor of shape (n_samples, n_features)
    n_neighbors : int
        Neighbours listed per point; fewer when the distinct points allow
        fewer, but never below ``min_neighbors`` (an error).
    min_neighbors : int, default=None
        None means ``n_neighbors``.
    device : str, default="cpu"

    Returns
    -------
    graph : NeighborGraph
    distinct : ndarray of shape (n_distinct,)
        Row indices of ``X`` kept, in increasing order.
    representative : ndarray of shape (n_samples,)
        For each row of ``X``, the position in ``distinct`` of its value.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_id._neighbors import neighbor_graph
    >>> X = np.array([[0.0], [1.0], [3.0], [7.0], [15.0]])
    >>> graph, _, _ = neighbor_graph(X, 2)
    >>> graph.block(np.array([0, 4]), 2)[0]
    array([[ 1.,  3.],
           [ 8., 12.]])
    >>> graph.grow(np.array([4]), 4).block(np.array([0, 4]), 4)[0]
    array([[ 1.,  3., nan, nan],
           [ 8., 12., 14., 15.]])
    """
    distances, indices, distinct, representative = distinct_kneighbors(
        X, n_neighbors, min_neighbors=min_neighbors, device=device
    )
    return NeighborGraph(restrict_points(X, distinct), distances, indices, device=device), distinct, representative


class NeighborGraph:
    """Exact nearest neighbours of distinct points, each row listed to its own width.

    Parameters
    ----------
    points : ndarray or tensor of shape (n_points, n_features)
        Distinct points.
    distances, indices : ndarray of shape (n_points, width)
        Each point's nearest neighbours in ascending distance (itself
        excluded), as :func:`~sklearn_id._neighbors.kneighbors` lists them.
    listed : ndarray of shape (n_points,), default=None
        How many of its columns each row lists; None: all of them.
    device : str, default="cpu"
        Where :meth:`grow` searches.
    """

    def __init__(self, points, distances, indices, *, listed=None, device="cpu"):
        self.points = points
        self.device = device
        self.n_points = distances.shape[0]
        self._tiers = []
        self._tier = np.zeros(self.n_points, dtype=np.int64)
        self._position = np.arange(self.n_points)
        self._flat_lists = None
        listed = np.full(self.n_points, distances.shape[1]) if listed is None else listed
        for width in np.unique(listed):
            here = np.flatnonzero(listed == width)
            self._add_tier(here, distances[here, :width], indices[here, :width])

    @property
    def widths(self):
        """How many neighbours each row lists."""
        return self._flat()[1]

    def tiers(self):
        """``(rows, distances, indices)`` for each width: the rows listed to it, and their lists."""
        for t, (rows, distances, indices) in enumerate(self._tiers):
            current = self._tier[rows] == t
            if current.any():
                yield rows[current], distances[current], indices[current]

    def distances_at(self, rows, columns):
        """Distance of each row in ``rows`` to its neighbour at column ``columns`` (rank + 1); NaN where not listed."""
        offsets, widths, flat = self._flat()
        rows, columns = np.broadcast_arrays(rows, columns)
        listed = columns < widths[rows]
        found = np.full(rows.shape, np.nan)
        found[listed] = flat[offsets[rows[listed]] + columns[listed]]
        return found

    def _flat(self):
        """Every row's current list in one flat array: ``(offsets, widths, distances)``, rebuilt after a growth."""
        if self._flat_lists is None:
            widths = np.zeros(self.n_points, dtype=np.int64)
            for rows, distances, _ in self.tiers():
                widths[rows] = distances.shape[1]
            offsets = np.r_[0, np.cumsum(widths)[:-1]]
            flat = np.empty(int(widths.sum()))
            for rows, distances, _ in self.tiers():
                flat[(offsets[rows][:, None] + np.arange(distances.shape[1])).ravel()] = distances.ravel()
            self._flat_lists = offsets, widths, flat
        return self._flat_lists

    def block(self, rows, width):
        """``(distances, indices)`` of ``rows`` to ``width`` columns: NaN and -1 beyond what a row lists."""
        distances = np.full((rows.size, width), np.nan)
        indices = np.full((rows.size, width), -1, dtype=np.int64)
        tiers = self._tier[rows]
        for t, (_, tier_distances, tier_indices) in enumerate(self._tiers):
            here = np.flatnonzero(tiers == t)
            listed = min(width, tier_distances.shape[1])
            distances[here, :listed] = tier_distances[self._position[rows[here]], :listed]
            indices[here, :listed] = tier_indices[self._position[rows[here]], :listed]
        return distances, indices

    def grow(self, rows, width):
        """List ``rows`` to at least ``width`` neighbours (at most all the others): one exact query of those rows.

        Returns the graph itself.
        """
        width = min(int(width), self.n_points - 1)
        rows = np.unique(rows)
        rows = rows[self.widths[rows] < width]
        if rows.size:
            # Each row is its own nearest point, at distance exactly 0 among distinct points: listed first, dropped.
            distances, indices = kneighbors(self.points[rows], width + 1, Y=self.points, device=self.device)
            self._add_tier(rows, distances[:, 1:], indices[:, 1:])
        return self

    def limited(self, width):
        """The graph with every row listed to at most ``width`` neighbours (the same points)."""
        distances, indices = self.block(np.arange(self.n_points), width)
        listed = np.minimum(self.widths, width)
        return NeighborGraph(self.points, distances, indices, listed=listed, device=self.device)

    def restricted(self, subset, width):
        """The graph of the points ``subset`` (sorted positions), each listed to ``width`` neighbours within it.

        A point's neighbours within the subset are its listed neighbours that
        belong to it, in the same order; a point with fewer than ``width`` of
        them is searched again within the subset (:meth:`grow`).
        """
        width = min(int(width), subset.size - 1)
        within = np.full(self.n_points, -1, dtype=np.int64)
        within[subset] = np.arange(subset.size)
        distances, indices = self.block(subset, int(self.widths[subset].max()))
        inside = (indices >= 0) & (within[np.maximum(indices, 0)] >= 0)
        order = np.argsort(~inside, axis=1, kind="stable")[:, :width]  # each row's members first, in order
        found = np.minimum(inside.sum(axis=1), width)
        distances = np.take_along_axis(distances, order, axis=1)
        indices = within[np.maximum(np.take_along_axis(indices, order, axis=1), 0)]
        graph = NeighborGraph(
            restrict_points(self.points, subset), distances, indices, listed=found, device=self.device
        )
        return graph.grow(np.flatnonzero(found < width), width)

    def _add_tier(self, rows, distances, indices):
        self._flat_lists = None
        self._tier[rows] = len(self._tiers)
        self._position[rows] = np.arange(rows.size)
        self._tiers.append((rows, np.ascontiguousarray(distances), np.ascontiguousarray(indices)))
