"""The intrinsic dimension as a function of scale: decimation for TwoNN, rank doubling for GRIDE."""

import math
from numbers import Integral

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, validate_params

from sklearn_id._gride import GRIDEDimension, _solve, _standard_deviation
from sklearn_id._neighbors import (
    collapse_duplicates,
    group_edges,
    kneighbors_precomputed,
    nested_kneighbors,
    resolve_device,
    stack_groups,
)
from sklearn_id._twonn import TwoNNDimension

__all__ = ["id_scaling"]


@validate_params(
    {
        "estimator": [HasMethods(["fit"])],
        "X": ["array-like"],
        "n_min": [Interval(Integral, 3, None, closed="left")],
        "range_max": [Interval(Integral, 2, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def id_scaling(estimator, X, *, n_min=20, range_max=64, random_state=None):
    """Intrinsic dimension across scales, to find the plateau between noise and curvature.

    Noise inflates the ID at short distances and curvature at long ones; the
    ID to trust is the plateau in between (Facco et al. 2017; Denti et al.
    2022).

    - ``TwoNNDimension``: decimation. The points are split at random into
      1, 2, 4, 8, ... disjoint subsets of near-equal size, down to ``n_min``
      points each; each subset gets its own estimate (the estimator's
      ``method`` and ``discard_fraction``). Fewer points reach farther
      neighbours: the scale is the mean second-neighbour distance. One pass
      over the pairs of points serves every subset size.
    - ``GRIDEDimension``: rank doubling on all points, ``(n1, n2) = (1, 2),
      (2, 4), ...`` up to ``n2 = range_max``, from one neighbour search; the
      scale is the mean ``n2``-th neighbour distance (the estimator's own
      ``n1`` and ``n2`` are not used).

    Parameters
    ----------
    estimator : TwoNNDimension or GRIDEDimension
        Its ``metric``, ``device`` and TwoNN settings are used.
    X : array-like of shape (n_samples, n_features)
        Data, or a square distance matrix with ``metric="precomputed"``.
    n_min : int, default=20
        Smallest subset of the decimation, at least 3 and at most half the
        number of distinct points (TwoNN only).
    range_max : int, default=64
        Largest rank ``n2`` of the GRIDE curve; rounded down to a power of
        two and to the number of points minus one (GRIDE only).
    random_state : int, RandomState instance or None, default=None
        The random split of the decimation.

    Returns
    -------
    scaling : pandas.DataFrame
        One row per scale, from the smallest: ``n_samples`` (points per
        subset, or one more for some subsets), ``scale``, ``id`` (the mean
        over subsets), ``id_std`` (for TwoNN the spread over subsets, NaN for
        the single full set; for GRIDE from the Fisher information), and
        ``n_subsets`` (TwoNN) or ``n1`` and ``n2`` (GRIDE).

    See Also
    --------
    sklearn_id.plotting.plot_id_scaling : Draw the curve.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_id import GRIDEDimension, TwoNNDimension, id_scaling
    >>> rng = np.random.default_rng(0)
    >>> plane = np.c_[rng.uniform(size=(4096, 2)), np.zeros((4096, 8))]
    >>> noisy = plane + 0.002 * rng.normal(size=plane.shape)
    >>> curve = id_scaling(TwoNNDimension(), noisy, n_min=64, random_state=0)
    >>> curve[["n_samples", "n_subsets"]].to_numpy().tolist()
    [[4096, 1], [2048, 2], [1024, 4], [512, 8], [256, 16], [128, 32], [64, 64]]
    >>> curve["id"].iloc[[0, -1]].round(1).tolist()
    [3.8, 2.0]
    >>> id_scaling(GRIDEDimension(), noisy, range_max=64)["n2"].tolist()
    [2, 4, 8, 16, 32, 64]
    """
    if isinstance(estimator, TwoNNDimension):
        return _decimation(estimator, X, n_min, check_random_state(random_state))
    if isinstance(estimator, GRIDEDimension):
        return _rank_doubling(estimator, X, range_max)
    raise TypeError(
        f"id_scaling takes a TwoNNDimension (decimation) or a GRIDEDimension (rank "
        f"doubling), got {type(estimator).__name__}."
    )


def _decimation(estimator, X, n_min, random_state):
    X = clone(estimator)._validate_input(X, reset=True)
    order = random_state.permutation(X.shape[0])
    X = X[np.ix_(order, order)] if estimator.metric == "precomputed" else X[order]
    levels = _nested_neighbors(estimator, X, n_min)
    rows = []
    for level, (distances, _) in enumerate(levels):
        edges = group_edges(distances.shape[0], level)
        mu = distances[:, 1] / distances[:, 0]
        ids = [estimator._dimension_from_ratios(mu[a:b]) for a, b in zip(edges[:-1], edges[1:])]
        rows.append(
            {
                "n_samples": int(np.diff(edges).min()),
                "scale": float(distances[:, 1].mean()),
                "id": float(np.mean(ids)),
                "id_std": float(np.std(ids, ddof=1)) if len(ids) > 1 else float("nan"),
                "n_subsets": 2**level,
            }
        )
    return pd.DataFrame(rows)


def _nested_neighbors(estimator, X, n_min):
    """First two neighbours within every subset of the decimation, duplicates collapsed."""
    if estimator.metric == "precomputed":
        distinct = collapse_duplicates(X, 2, metric="precomputed")
        X = X[np.ix_(distinct, distinct)]
        return [
            stack_groups(lambda a, b: kneighbors_precomputed(X[a:b, a:b], 2), group_edges(X.shape[0], level))
            for level in range(_n_levels(X.shape[0], n_min))
        ]
    device = resolve_device(estimator.device)
    levels = nested_kneighbors(X, 2, _n_levels(X.shape[0], n_min), device=device)
    if levels[0][0][:, 0].min() > 0:
        return levels
    X = X[collapse_duplicates(X, 2)]
    return nested_kneighbors(X, 2, _n_levels(X.shape[0], n_min), device=device)


def _n_levels(n_points, n_min):
    """Levels of halving whose subsets all keep at least ``n_min`` of ``n_points`` points."""
    if n_min > n_points // 2:
        raise ValueError(
            f"Decimation with n_min={n_min} needs at least {2 * n_min} distinct points "
            f"to split them once, got {n_points}; lower n_min or provide more points."
        )
    n_levels = 1 + int(math.log2(n_points / n_min))
    while np.diff(group_edges(n_points, n_levels - 1)).min() < n_min:
        n_levels -= 1
    return n_levels


def _rank_doubling(estimator, X, range_max):
    fitted = clone(estimator)
    n_points = fitted._validate_input(X, reset=True).shape[0]
    ranks = 2 ** np.arange(int(math.log2(min(range_max, n_points - 1))) + 1)
    distances = fitted._fit_neighbors(X, ranks)
    rows = []
    for step, (n1, n2) in enumerate(zip(ranks[:-1].tolist(), ranks[1:].tolist())):
        log_mu = np.log(distances[:, step + 1] / distances[:, step])
        dimension = float(_solve(log_mu, n1, n2))
        rows.append(
            {
                "n_samples": distances.shape[0],
                "scale": float(distances[:, step + 1].mean()),
                "id": dimension,
                "id_std": _standard_deviation(dimension, log_mu, n1, n2),
                "n1": n1,
                "n2": n2,
            }
        )
    return pd.DataFrame(rows)
