"""How two representations of the same samples relate: information imbalance, neighbourhood and label overlap, CKA.

Each measure compares two arrays whose rows are the same samples (two layers
of a network, a layer and the labels). The neighbour measures read exact
neighbour lists from the package's engine (:mod:`sklearn_id._neighbors`), so
they do not depend on the data's offset or scale; duplicates are not
collapsed here, since a row must stay the same sample in both spaces: a
duplicate is a neighbour at distance 0, ties broken by the lower index.
"""

from numbers import Integral

import numpy as np
from sklearn.utils import check_array, check_consistent_length
from sklearn.utils._param_validation import Interval, validate_params

from sklearn_id._neighbors import kneighbors, neighbor_ranks_in, unit_scaled

__all__ = ["information_imbalance", "label_overlap", "linear_cka", "neighborhood_overlap"]


def _checked(X, name, k=None):
    if isinstance(k, bool):
        raise ValueError(f"k must be a number of neighbours, got {k!r}.")
    X = check_array(X, dtype=np.float64, input_name=name)
    if k is not None and X.shape[0] <= k:
        raise ValueError(
            f"{name} has {X.shape[0]} samples, too few for k={k} neighbours each: use k < {X.shape[0]} or more samples."
        )
    return X


def _checked_pair(A, B, k=None):
    A, B = _checked(A, "A", k), _checked(B, "B", k)
    if A.shape[0] != B.shape[0]:
        raise ValueError(
            f"A has {A.shape[0]} samples and B has {B.shape[0]}: both must hold the same samples, in the same order."
        )
    return A, B


def nearest_indices(X, k):
    """The ``k`` nearest other rows of each row of ``X`` (ties: lower index), as the comparisons read them."""
    X, _ = unit_scaled(np.asarray(X, dtype=np.float64))  # an exact power of two: the same neighbours at any scale
    return kneighbors(X, k)[1]


def imbalance_from_neighbors(neighbors, B):
    """``Delta(A -> B)`` from A's neighbour lists: ``2 / N`` times the mean rank of those neighbours in ``B``."""
    return float(2.0 * neighbor_ranks_in(B, neighbors).mean() / B.shape[0])


def overlap_from_neighbors(first, second):
    """Mean over rows of the fraction of the ``k`` neighbours two neighbour lists share."""
    k = first.shape[1]
    shared = np.zeros(first.shape[0], dtype=np.int64)
    step = max(1, (1 << 22) // (k * k))
    for start in range(0, first.shape[0], step):
        a, b = first[start : start + step], second[start : start + step]
        shared[start : start + step] = (a[:, :, None] == b[:, None, :]).any(axis=2).sum(axis=1)
    return float(shared.mean() / k)


def label_overlap_from_neighbors(neighbors, y, weighted=True):
    """Fraction of each row's neighbours with its label, averaged (weighted by inverse class size)."""
    import pandas as pd

    codes, _ = pd.factorize(np.asarray(y, dtype=object), use_na_sentinel=True)
    if (codes < 0).any():
        raise ValueError(f"y holds {int((codes < 0).sum())} missing labels (None or NaN): give every sample a label.")
    counts = np.bincount(codes)
    same = (codes[neighbors] == codes[:, None]).mean(axis=1)
    return float(np.average(same, weights=1.0 / counts[codes] if weighted else None))


@validate_params(
    {"A": ["array-like"], "B": ["array-like"], "k": [Interval(Integral, 1, None, closed="left")]},
    prefer_skip_nested_validation=True,
)
def information_imbalance(A, B, *, k=1):
    """Information imbalance ``Delta(A -> B)``: how well distances in ``A`` predict those in ``B``.

    ``Delta(A -> B) = (2 / N) <r^B>``, the mean over points ``i`` and over
    the ``k`` nearest neighbours ``j`` of ``i`` in ``A`` of the rank ``r^B``
    of ``j`` among ``i``'s neighbours in ``B`` (rank 1 = nearest; Glielmo et
    al. 2022). About 0 when ``A``'s neighbours are ``B``'s (``A`` carries the
    information of ``B``), about 1 when ``A`` says nothing about ``B``. It is
    not symmetric: compute both directions.

    The ranks are counts (the points closer to ``i`` in ``B`` than ``j``),
    from one streaming pass over ``B``, exact in float64; a neighbour tied in
    ``B`` with others takes their mean rank, the expectation of DADApy's
    random tie-break. ``A``'s neighbours are exact, ties broken by the lower
    index. DADApy's ``return_information_imbalace(B, k, subset_size=N)``
    gives the same number on tie-free data.

    Parameters
    ----------
    A, B : array-like of shape (n_samples, n_features_A) and (n_samples, n_features_B)
        Two representations of the same samples, row by row.
    k : int, default=1
        Neighbours of each point in ``A``; less than ``n_samples``.

    Returns
    -------
    imbalance : float

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_id import information_imbalance
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((500, 3))
    >>> round(information_imbalance(X, X[:, :1]), 2), round(information_imbalance(X[:, :1], X), 2)
    (0.16, 0.73)
    """
    A, B = _checked_pair(A, B, k)
    return imbalance_from_neighbors(nearest_indices(A, k), B)


@validate_params(
    {"A": ["array-like"], "B": ["array-like"], "k": [Interval(Integral, 1, None, closed="left")]},
    prefer_skip_nested_validation=True,
)
def neighborhood_overlap(A, B, *, k=30):
    """Neighbourhood overlap ``chi(A, B)``: the mean fraction of each point's ``k`` nearest that two spaces share.

    ``chi(A, B) = mean_i |N_k^A(i) & N_k^B(i)| / k`` (Doimo et al. 2020):
    1 when every point has the same ``k`` neighbours in both, about
    ``k / n_samples`` for unrelated spaces. Symmetric. DADApy's
    ``return_data_overlap(coordinates=B, k=k)`` on tie-free data.

    Parameters
    ----------
    A, B : array-like of shape (n_samples, n_features_A) and (n_samples, n_features_B)
    k : int, default=30

    Returns
    -------
    overlap : float

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_id import neighborhood_overlap
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((500, 3))
    >>> neighborhood_overlap(X, 2 * X + 1)
    1.0
    """
    A, B = _checked_pair(A, B, k)
    return overlap_from_neighbors(nearest_indices(A, k), nearest_indices(B, k))


@validate_params(
    {
        "X": ["array-like"],
        "y": ["array-like"],
        "k": [Interval(Integral, 1, None, closed="left")],
        "weighted": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def label_overlap(X, y, *, k=30, weighted=True):
    """Label overlap ``chi(X, y)``: the fraction of each point's ``k`` nearest that share its label.

    Averaged over points; with ``weighted=True`` (DADApy's default) each
    point weighs the inverse size of its class, so that every class counts
    alike. Doimo et al. (2020) and Valeriani et al. (2023) follow it along
    the depth of a network: it rises where the classes separate. DADApy's
    ``return_label_overlap(y, k=k, weighted=weighted)`` on tie-free data.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
        Labels (any values ``numpy.unique`` can sort).
    k : int, default=30
    weighted : bool, default=True

    Returns
    -------
    overlap : float

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_id import label_overlap
    >>> X = np.r_[np.zeros((50, 2)), np.ones((50, 2))] + np.random.default_rng(0).normal(0, 0.1, (100, 2))
    >>> label_overlap(X, np.repeat([0, 1], 50), k=10)
    1.0
    """
    X = _checked(X, "X", k)
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be one label per sample (1-D), got an array of shape {y.shape}.")
    check_consistent_length(X, y)
    return label_overlap_from_neighbors(nearest_indices(X, k), y, weighted)


@validate_params(
    {"A": ["array-like"], "B": ["array-like"], "debiased": ["boolean"]},
    prefer_skip_nested_validation=True,
)
def linear_cka(A, B, *, debiased=False):
    """Linear centred kernel alignment of two representations (Kornblith et al. 2019).

    ``CKA = ||B_c^T A_c||_F^2 / (||A_c^T A_c||_F ||B_c^T B_c||_F)`` on
    features centred over the samples: 1 for representations equal up to a
    rotation and a scale, invariant to neither a general linear map nor a
    non-linear one. ``debiased=True`` replaces each squared Frobenius norm
    by the unbiased HSIC estimator (Song et al. 2012; as in Nguyen et al.
    2021 and Murphy et al. 2024), which removes the bias towards 1 of few
    samples in many dimensions; it needs at least 4 samples. Computed in
    feature space, in float64.

    Parameters
    ----------
    A, B : array-like of shape (n_samples, n_features_A) and (n_samples, n_features_B)
    debiased : bool, default=False

    Returns
    -------
    cka : float

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_id import linear_cka
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((200, 5))
    >>> rotation = np.linalg.qr(rng.standard_normal((5, 5)))[0]
    >>> round(linear_cka(X, 3 * X @ rotation + 1), 12)
    1.0
    """
    A, B = _checked_pair(A, B)
    n_samples = A.shape[0]
    if n_samples < (4 if debiased else 2):
        raise ValueError(f"linear_cka needs at least {4 if debiased else 2} samples, got {n_samples}.")
    A, B = A - A.mean(axis=0), B - B.mean(axis=0)
    # CKA does not change with the scale of either side: each is brought to unit size, clear of overflow.
    A, B = A / max(np.abs(A).max(), np.finfo(float).tiny), B / max(np.abs(B).max(), np.finfo(float).tiny)
    for name, M in (("A", A), ("B", B)):
        if not np.any(M):
            raise ValueError(
                f"{name} is the same for every sample: CKA is undefined for a representation without variance."
            )
    cross = _hsic(A, B, debiased)
    value = cross / np.sqrt(_hsic(A, A, debiased) * _hsic(B, B, debiased))
    return float(value)


def _hsic(A, B, debiased):
    """``||A^T B||_F^2`` of centred features, or its debiased form (the unbiased HSIC, times n(n-3))."""
    if A.shape[1] * B.shape[1] <= A.shape[0] ** 2:
        product = np.sum((A.T @ B) ** 2)
    else:  # wide features: the same trace through the Gram matrices
        product = np.sum((A @ A.T) * (B @ B.T))
    if not debiased:
        return product
    n = A.shape[0]
    rows_a, rows_b = np.einsum("ij,ij->i", A, A), np.einsum("ij,ij->i", B, B)
    return product - n / (n - 2.0) * (rows_a @ rows_b) + rows_a.sum() * rows_b.sum() / ((n - 1.0) * (n - 2.0))
