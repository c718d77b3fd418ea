"""The rank of given points among each point's neighbours: one streaming pass over the rows, no sort.

The information imbalance needs, for each point ``i`` and each of its
neighbours ``j`` in one space, the rank of ``j`` among ``i``'s neighbours in
another space. A rank is a count: the points closer to ``i`` than ``j``. One
float64 product of the centred rows per block approximates every squared
distance; a rounding bound says which comparisons it decides, and the few it
cannot (ties and near ties) are decided on exact float64 differences of the
original rows. Memory is one block of rows against all of them.
"""

import numpy as np

from sklearn_id._neighbors._exact import exact_squared_distances
from sklearn_id._neighbors._units import unit_scaled

__all__ = ["neighbor_ranks_in"]

_UNIT_ROUNDOFF_64 = 2.0**-53
# Entries of one block of approximate squared distances (32 MB of float64).
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
    centred = X - X.mean(axis=0)
    norms = np.einsum("ij,ij->i", centred, centred)
    # |a_il - d_il| <= gamma (n_i + n_l) for the float64 product, as the float32 screen's bound.
    gamma = (2.0 * (n_features + 2) + 8.0) * _UNIT_ROUNDOFF_64 * 1.01
    reference = exact_squared_distances(X, X, np.repeat(np.arange(n_samples), neighbors.shape[1]), neighbors.ravel())
    reference = reference.reshape(neighbors.shape)
    ranks = np.empty(neighbors.shape, dtype=np.float64)
    step = max(1, _BLOCK_ENTRIES // max(n_samples, 1))
    for start in range(0, n_samples, step):
        rows = np.arange(start, min(start + step, n_samples))
        approx = norms[rows, None] + norms[None, :] - 2.0 * (centred[rows] @ centred.T)
        bound = gamma * (norms[rows, None] + norms[None, :]) + 1e-300
        approx[np.arange(rows.size), rows] = np.inf  # the point itself is nobody's neighbour
        for column in range(neighbors.shape[1]):
            ranks[rows, column] = _ranks_of(X, rows, approx, bound, reference[rows, column])
    return ranks


def _ranks_of(X, rows, approx, bound, reference):
    """Mid-ranks, for each of ``rows``, of the squared distance ``reference`` among the row's distances."""
    difference = approx - reference[:, None]
    closer = np.count_nonzero(difference < -bound, axis=1)
    # Undecided: within the rounding bound of the reference, its own point among them.
    undecided_rows, undecided_cols = np.nonzero(np.abs(difference) <= bound)
    exact = exact_squared_distances(X, X, rows[undecided_rows], undecided_cols)
    reference_of = reference[undecided_rows]
    closer += np.bincount(undecided_rows, weights=exact < reference_of, minlength=rows.size).astype(np.int64)
    tied = np.bincount(undecided_rows, weights=exact == reference_of, minlength=rows.size) - 1
    return 1.0 + closer + tied / 2.0
