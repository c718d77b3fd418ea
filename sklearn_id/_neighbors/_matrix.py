"""The backend for a matrix of distances (``metric="precomputed"``), and the checks and builders of such matrices."""

import numpy as np
from sklearn.utils.validation import check_non_negative

from sklearn_id._neighbors._backends import DEFAULT_BLOCK_SIZE, NeighborBackend
from sklearn_id._neighbors._exact import select_nearest

__all__ = ["MatrixBackend", "PiecewiseDistances", "check_distance_matrix", "kneighbors_precomputed"]


class MatrixBackend(NeighborBackend):
    """A square matrix of the distances among the points: its rows are read, nothing is computed."""

    name = "precomputed"

    def is_usable_for(self, X, *, metric, device):
        return metric == "precomputed"

    def kneighbors(self, X, n_neighbors, *, Y=None, device="cpu", block_size=DEFAULT_BLOCK_SIZE):
        if Y is not None:
            raise ValueError("A distance matrix holds its own reference points: search it without Y.")
        return kneighbors_precomputed(X, n_neighbors)

    def group(self, X, start, stop):
        return X[start:stop, start:stop]

    def restrict(self, X, rows):
        return X[np.ix_(rows, rows)]

    def distinct_rows(self, X):
        n_samples = X.shape[0]
        # A row's value is that of the first row at distance zero from it.
        first = np.argmax((X == 0) | np.eye(n_samples, dtype=bool), axis=1)
        distinct = np.flatnonzero(first == np.arange(n_samples))
        return distinct, np.searchsorted(distinct, first)

    def pair_distances(self, X, rows, cols):
        return np.array(X[np.ix_(rows, cols)], dtype=np.float64)

    def distance_matrix(self, X, rows, *, device="cpu"):
        return np.asarray(X[np.ix_(rows, rows)], dtype=np.float64)

    def check(self, X, owner, *, square=True):
        check_distance_matrix(X, owner, square=square)

    def fitted_reference(self, X, distinct):
        # The fitted points are columns of the queries' distances: their indices are the reference.
        return distinct

    def query(self, X, n_neighbors, reference, *, device="cpu", block_size=DEFAULT_BLOCK_SIZE):
        # X holds each query's distances to every fitted sample.
        return kneighbors_precomputed(X[:, reference], n_neighbors, exclude_self=False)


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
