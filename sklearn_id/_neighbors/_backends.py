"""What a neighbour backend is: one kind of points (rows on the host, a tensor on a device, a distance matrix), and
how to search them.

A backend writes ``is_usable_for`` and ``kneighbors``; the rest has defaults
built on them: the distances at chosen ranks (``distances_at``), the search
within each group of a nested halving (``nested``), and the operations on the
points that the duplicate policy needs (restricting to rows, finding the
distinct rows, exact distances between chosen rows, unit scaling). Register a
new backend in :mod:`sklearn_id._neighbors._dispatch` and run
``tests/test_neighbor_backends.py`` against it: every backend must equal a
float64 brute force.
"""

from sklearn_id._neighbors._groups import group_edges, stack_groups

__all__ = ["DEFAULT_BLOCK_SIZE", "NeighborBackend", "check_n_neighbors"]

DEFAULT_BLOCK_SIZE = 2048


def check_n_neighbors(n_neighbors, n_reference):
    """Raise unless ``n_reference`` points can give ``n_neighbors`` neighbours."""
    if n_neighbors > n_reference:
        raise ValueError(
            f"n_neighbors={n_neighbors} neighbours were asked for, but only "
            f"{n_reference} reference points are available; use fewer neighbours "
            "or more points."
        )


class NeighborBackend:
    """Exact nearest neighbours of one kind of points; the searches return float64 distances and int64 indices.

    Distances are sorted, ties broken by the lower index, and equal a float64
    brute force; a point is never its own neighbour.
    """

    #: The name the conformance test reports.
    name = "backend"

    def is_usable_for(self, X, *, metric, device):
        """Whether this backend searches ``X`` (data, or distances for ``metric="precomputed"``) on ``device``."""
        raise NotImplementedError

    def kneighbors(self, X, n_neighbors, *, Y=None, device="cpu", block_size=DEFAULT_BLOCK_SIZE):
        """Distances and indices of each row's ``n_neighbors`` nearest rows of ``Y`` (of ``X``, self excluded)."""
        raise NotImplementedError

    def distances_at(self, X, ranks, *, device="cpu", block_size=DEFAULT_BLOCK_SIZE):
        """Distances to each row's neighbours of ``ranks`` (from 1) only."""
        check_n_neighbors(int(ranks.max()), X.shape[0] - 1)
        return self.kneighbors(X, int(ranks.max()), device=device, block_size=block_size)[0][:, ranks - 1]

    def nested(self, X, n_neighbors, n_levels, *, device="cpu", block_size=DEFAULT_BLOCK_SIZE):
        """One ``(distances, indices)`` per level of a nested halving, each group searched on its own."""
        return [
            stack_groups(
                lambda a, b: self.kneighbors(self.group(X, a, b), n_neighbors, device=device, block_size=block_size),
                group_edges(X.shape[0], level),
            )
            for level in range(n_levels)
        ]

    def group(self, X, start, stop):
        """The points ``start:stop`` as points of their own."""
        return X[start:stop]

    def restrict(self, X, rows):
        """The points ``rows`` (sorted, distinct) of ``X``."""
        return X[rows]

    def distinct_rows(self, X):
        """The first occurrence of each distinct point, and each point's position among those."""
        raise NotImplementedError

    def pair_distances(self, X, rows, cols):
        """Exact distances of the points ``rows`` to the points ``cols``, as a (len(rows), len(cols)) array."""
        raise NotImplementedError

    def distance_matrix(self, X, rows, *, device="cpu"):
        """The float64 distances among the points ``rows``, as a host (len(rows), len(rows)) array."""
        return self.pair_distances(X, rows, rows)

    def unit_scaled(self, X):
        """``X`` brought near unit size by an exact power of two, and that power (1.0: unchanged)."""
        return X, 1.0

    def check(self, X, owner, *, square=True):
        """Raise a ``ValueError`` (naming ``owner``) unless ``X`` can be points of this kind; rows need no check."""

    def fitted_reference(self, X, distinct):
        """What later queries are searched against: the distinct fitted points ``distinct`` of ``X``."""
        return X if distinct.size == X.shape[0] else self.restrict(X, distinct)

    def query(self, X, n_neighbors, reference, *, device="cpu", block_size=DEFAULT_BLOCK_SIZE):
        """Each query's ``n_neighbors`` nearest points of ``reference`` (a ``fitted_reference``)."""
        return self.kneighbors(X, n_neighbors, Y=reference, device=device, block_size=block_size)
