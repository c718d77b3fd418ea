"""The exactness argument of every backend: the float32 screen's rounding bounds, the float64 refinement, selection.

Both searches approximate squared distances by one float32 product of centred,
rescaled rows, bound the rounding error of each entry, keep the entries that
may still be among a row's nearest, and select the nearest among their exact
float64 values. This module holds the pieces of that argument that do not
depend on where the product runs.
"""

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = [
    "REFINE_BUFFER_ENTRIES",
    "UNIT_ROUNDOFF_32",
    "candidate_threshold",
    "centred_float32",
    "exact_squared_distances",
    "exact_squared_pairs",
    "float32_prescale",
    "rounding_bound_factor",
    "select_nearest",
    "subnormal_floor",
]

UNIT_ROUNDOFF_32 = 2.0**-24
_TINY_32 = float(np.finfo(np.float32).tiny)
# Entries per refinement chunk: 4 MB buffers stay on the heap, so no page faults per chunk.
REFINE_BUFFER_ENTRIES = 1 << 19


def rounding_bound_factor(n_features):
    """Relative error bound of one augmented float32 dot product of length ``n_features + 2``.

    The approximate squared distance ``a_ij`` of centred, float32-rounded rows
    ``c_i``, ``c_j`` satisfies ``|a_ij - d_ij| <= gamma * (|c_i|^2 + |c_j|^2)``
    with ``gamma`` returned here: the accumulation error of the dot product
    (``(n_features + 2) u`` on terms whose absolute sum is at most
    ``2 (|c_i|^2 + |c_j|^2)``), plus the rounding of the inputs and of the norms
    to float32 (``5 u``), with a margin for second-order terms.

    Parameters
    ----------
    n_features : int

    Returns
    -------
    gamma : float
    """
    return (2.0 * (n_features + 2) + 8.0) * UNIT_ROUNDOFF_32 * 1.01


def subnormal_floor(n_features):
    """Absolute error floor: subnormal float32 products lose relative precision."""
    return 4.0 * (n_features + 2) * _TINY_32


def candidate_threshold(kth, norms, gamma, floor, margin):
    """Largest approximate squared distance that may still hide one of the ``k`` nearest.

    A column ``j`` within the ``k``-th distance of row ``i`` satisfies
    ``|c_j| <= |c_i| + sqrt(kth)``, which bounds its rounding error by
    ``gamma * (n_i + (sqrt(n_i) + sqrt(kth))^2)``. ``margin`` covers the
    rounding of the comparison itself. Works on numpy arrays and torch tensors.
    """
    slack = gamma * (norms + (norms**0.5 + kth**0.5) ** 2) + floor
    return (kth + slack) * margin


def centred_float32(X, Y=None, *, extra_columns=0):
    """Float32 copies of ``X`` (and ``Y``) centred on the reference mean and rescaled.

    The centring removes the offset that makes the Gram-matrix formula cancel;
    the rescaling to unit maximum norm keeps squared norms far from float32's
    overflow and underflow. With ``extra_columns``, each copy has that many
    trailing columns left uninitialised, so callers can augment it in place.

    Each centred entry is the difference of the row and a common shift,
    rounded to float32 once: computed in float64 for float64 rows, and in
    float32 for float32 rows (the difference of two float32 numbers rounds
    once), with the mean rounded to float32 as the shift. A shift common to
    all rows leaves every distance unchanged, so the rounding bound holds
    either way; float32 rows are centred four times faster.

    Returns
    -------
    X32 : ndarray of shape (n_samples, n_features + extra_columns), float32
    Y32 : ndarray or None
    """
    reference = X if Y is None else Y
    mean = reference.mean(axis=0, dtype=np.float64)
    n_features = X.shape[1]
    prescale = float32_prescale(X, Y, mean)

    def _centred(A):
        out = np.empty((A.shape[0], n_features + extra_columns), dtype=np.float32)
        step = max(1, REFINE_BUFFER_ENTRIES // max(1, n_features))
        if A.dtype == np.float32:
            shift = mean.astype(np.float32)
            for start in range(0, A.shape[0], step):
                np.subtract(A[start : start + step], shift, out=out[start : start + step, :n_features])
            return out
        if prescale != 1.0:
            for start in range(0, A.shape[0], step):
                out[start : start + step, :n_features] = (A[start : start + step] - mean) * prescale
            return out
        for start in range(0, A.shape[0], step):
            np.subtract(
                A[start : start + step],
                mean,
                out=out[start : start + step, :n_features],
                casting="same_kind",
                dtype=np.float64,
            )
        return out

    X32 = _centred(X)
    Y32 = None if Y is None else _centred(Y)
    scale = max(_max_norm(X32[:, :n_features]), 0.0 if Y32 is None else _max_norm(Y32[:, :n_features]))
    if scale > 0:
        for A in (X32, Y32):
            if A is not None:
                A[:, :n_features] *= np.float32(1.0 / scale)
    return X32, Y32


def float32_prescale(X, Y, mean):
    """The power of two that keeps float64 rows (arrays or tensors), less ``mean``, clear of float32 overflow.

    Rows the unit scaling left far above unit size (float64 data up to
    float64's squared-distance ceiling) are brought near unit size before
    they are rounded to float32.
    """
    if X.dtype.itemsize < 8 or 0 in X.shape:
        return 1.0  # float32, float16 and bfloat16 rows fit float32 as they are
    largest = max(max(float(A.max()), -float(A.min())) for A in (X, Y) if A is not None)
    largest += float(abs(mean).max())
    return 1.0 if largest <= 2.0**60 else 2.0 ** -np.frexp(largest)[1]


def _max_norm(A):
    return float(np.sqrt(np.einsum("ij,ij->i", A, A, dtype=np.float64).max(initial=0.0)))


def select_nearest(rows, cols, values, n_rows, k, *, squared=False):
    """Per row, the ``k`` entries with the smallest value (ties: lower column).

    The entries, ordered by (row, column) with one integer sort, fill a
    matrix with a row per query (inf beyond a row's entries); a stable sort
    of each row by value then keeps ties in column order, at a fraction of
    the cost of a three-key sort of all entries. Rows with far more entries
    than the others (a point far from the rest has most points within its
    rounding margin) are sorted apart, so that the matrix stays small.
    """
    counts = np.bincount(rows, minlength=n_rows)
    if counts.size != n_rows or counts.min() < k:
        raise RuntimeError("neighbour search lost candidates; please report this as a bug")
    order = np.argsort(rows * (int(cols.max()) + 1) + cols)  # each (row, column) pair occurs once
    rows, cols, values = rows[order], cols[order], values[order]
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    width = min(int(counts.max()), 8 * k + 64)
    heavy = np.flatnonzero(counts > width)
    matrix = np.full((n_rows, width), np.inf)
    position = np.arange(rows.size) - starts[rows]
    light = counts[rows] <= width
    matrix[rows[light], position[light]] = values[light]
    best = starts[:, None] + np.argsort(matrix, axis=1, kind="stable")[:, :k]
    for row in heavy:  # few: each sorted on its own, ties by column
        entries = slice(starts[row], starts[row] + counts[row])
        best[row] = starts[row] + np.argsort(values[entries], kind="stable")[:k]
    distances = np.sqrt(values[best]) if squared else values[best]
    return distances, cols[best].astype(np.int64)


def exact_squared_pairs(X, pair_lists):
    """Exact squared distances of lists of ``(rows, cols)`` pairs of ``X``, each unordered pair computed once."""
    n_samples = X.shape[0]
    keys = np.concatenate([np.minimum(r, c) * n_samples + np.maximum(r, c) for r, c in pair_lists])
    unique, inverse = np.unique(keys, return_inverse=True)
    squared = exact_squared_distances(X, X, unique // n_samples, unique % n_samples)[inverse]
    return np.split(squared, np.cumsum([rows.size for rows, _ in pair_lists])[:-1])


def exact_squared_distances(X, reference, rows, cols):
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
