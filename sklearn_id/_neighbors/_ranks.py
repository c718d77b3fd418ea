"""The rank of given points among each point's neighbours: one streaming pass over the rows, no sort.

The information imbalance needs, for each point ``i`` and each of its listed
points ``j`` (its neighbours in another space), the rank of ``j`` among
``i``'s neighbours here. A rank is a count: the points closer to ``i`` than
``j``. For a block of rows, one float32 product of the centred, rescaled rows
approximates every squared distance, within a rounding bound (the neighbour
search's, :mod:`._exact`). Against each listed distance, an entry below it by
more than the bound is certainly closer, one above it by more is certainly
farther: two comparisons and two counts per entry. The entries in between
(the listed point itself, ties and near ties) are decided on exact float64
differences of the original rows. Memory is one block of rows against all of
them.
"""

import numpy as np

from sklearn_id._neighbors._exact import exact_squared_distances, rounding_bound_factor, subnormal_floor
from sklearn_id._neighbors._units import unit_scaled

__all__ = ["neighbor_ranks_in"]

# Entries of one block of approximate squared distances.
_BLOCK_ENTRIES = 1 << 22


def neighbor_ranks_in(X, neighbors):
    """Rank of each listed point among each row's neighbours in ``X`` (1 = nearest), ties as mid-ranks.

    ``rank(i, j) = 1 + #{l != i : d(i, l) < d(i, j)} + #{l not in (i, j) : d(i, l) = d(i, j)} / 2``:
    a point tied with others takes the mean of the ranks the tied points
    share, which is also the expected rank under a random tie-break (DADApy's
    rule) and needs no seed. Distances are float64 differences of the rows,
    as the neighbour search's, so the ranks do not depend on the data's
    offset or scale.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    neighbors : ndarray of int of shape (n_samples, n_listed)
        For each row ``i``, points other than ``i``.

    Returns
    -------
    ranks : ndarray of shape (n_samples, n_listed), float64

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_id._neighbors import neighbor_ranks_in
    >>> X = np.array([[0.0], [1.0], [3.0], [-1.0]])
    >>> neighbor_ranks_in(X, np.array([[2], [3], [0], [1]]))
    array([[3. ],
           [2.5],
           [2. ],
           [2. ]])
    """
    X, _ = unit_scaled(np.asarray(X, dtype=np.float64))
    neighbors = np.asarray(neighbors, dtype=np.int64)
    n_samples, n_features = X.shape
    n_listed = neighbors.shape[1]
    centred = X - X.mean(axis=0)
    scale = float(np.sqrt(np.einsum("ij,ij->i", centred, centred).max(initial=0.0))) or 1.0
    rows32 = (centred / scale).astype(np.float32)
    norms = np.einsum("ij,ij->i", rows32, rows32, dtype=np.float64)
    norms32 = norms.astype(np.float32)
    # |a_il - d_il| <= gamma (n_i + n_l) + floor in the rescaled units, as the neighbour search's screen, with
    # 8 u more for the float32 sum of the norms and the product (each term at most n_i + n_l).
    gamma = rounding_bound_factor(n_features) + 8 * 2.0**-24
    floor = subnormal_floor(n_features)
    rows_of = np.repeat(np.arange(n_samples), n_listed)
    listed = exact_squared_distances(X, X, rows_of, neighbors.ravel()).reshape(neighbors.shape)
    ranks = np.empty(neighbors.shape, dtype=np.float64)
    step = max(1, _BLOCK_ENTRIES // max(n_samples, 1))
    for start in range(0, n_samples, step):
        rows = np.arange(start, min(start + step, n_samples))
        approx = rows32[rows] @ rows32.T
        approx *= np.float32(-2.0)
        approx += norms32[rows, None]
        approx += norms32[None, :]
        approx[np.arange(rows.size), rows] = np.inf  # the point itself is nobody's neighbour
        slack = gamma * (norms[rows] + norms.max()) + floor
        for column in range(n_listed):
            ranks[rows, column] = _ranks_at(X, rows, approx, listed[rows, column], scale, slack)
    return ranks


def _ranks_at(X, rows, approx, listed, scale, slack):
    """Mid-ranks, for each of ``rows``, of its squared distance ``listed`` among the row's distances."""
    target = listed / scale**2
    lower = np.nextafter((target - slack).astype(np.float32), np.float32(-np.inf))
    upper = np.nextafter((target + slack).astype(np.float32), np.float32(np.inf))
    closer = np.count_nonzero(approx < lower[:, None], axis=1)
    undecided = np.count_nonzero(approx <= upper[:, None], axis=1) - closer
    # The listed point lies within its own bound: a row with nothing else undecided has no tie to look at.
    ambiguous = np.flatnonzero(undecided > 1)
    window = approx[ambiguous]
    local, cols = np.nonzero((window <= upper[ambiguous, None]) & (window >= lower[ambiguous, None]))
    exact = exact_squared_distances(X, X, rows[ambiguous[local]], cols)
    theirs = listed[ambiguous[local]]
    closer = closer.astype(np.float64)
    closer[ambiguous] += np.bincount(local, weights=exact < theirs, minlength=ambiguous.size)
    tied = np.zeros(rows.size)
    tied[ambiguous] = np.bincount(local, weights=exact == theirs, minlength=ambiguous.size) - 1  # itself
    return 1.0 + closer + tied / 2.0
