"""The intrinsic dimension as a function of scale: decimation for TwoNN, rank doubling for GRIDE."""

import math
from numbers import Integral

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, validate_params
from sklearn.utils.validation import check_array

from sklearn_id._base import (
    final_step,
    fitted_dimension,
    has_neighbor_seam,
    has_rank_seam,
    search_device,
    takes_distance_matrix,
)
from sklearn_id._neighbors import (
    check_points,
    distinct_neighbor_distances,
    distinct_nested_kneighbors,
    group_edges,
    reordered_points,
    restrict_points,
)

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

    The curve follows the estimator's parameters:

    - An estimator with the seam ``at_ranks(n1, n2)`` (``GRIDEDimension``):
      rank doubling on all points, ``(n1, n2) = (1, 2), (2, 4), ...`` up to
      ``n2 = range_max``, from one neighbour search; the scale is the mean
      ``n2``-th neighbour distance (the estimator's own ``n1`` and ``n2`` are
      not used).
    - Any other (``TwoNNDimension``, or your own estimator): decimation. The points are split at random into
      1, 2, 4, 8, ... disjoint subsets of near-equal size, down to ``n_min``
      points each; each subset gets its own estimate (with the estimator's
      settings, such as ``method`` and ``discard_fraction``). Fewer points
      reach farther neighbours: the scale is the mean distance to the
      farthest neighbour the estimator reads (the second for TwoNN), or the
      mean of the subsets' ``scale_`` for an estimator that reports its
      own (``ABIDEDimension``, whose scale each subset picks). For an
      estimator with the neighbour seam (``dimension_from_neighbors``) one
      pass over the pairs of points serves every subset size; any other is
      refitted on each subset.

    Parameters
    ----------
    estimator : estimator
        An ID estimator (sets ``dimension_`` when fitted); its ``metric``,
        ``device`` and other settings are used.
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
    metric = "precomputed" if takes_distance_matrix(estimator) else "euclidean"
    X = check_array(X, dtype=[np.float64, np.float32], ensure_min_samples=3)
    check_points(X, f"id_scaling with {type(estimator).__name__}(metric='precomputed')", metric=metric)
    if has_rank_seam(estimator):
        return _rank_doubling(estimator, X, metric, range_max)
    return _decimation(estimator, X, metric, n_min, check_random_state(random_state))


def _decimation(estimator, X, metric, n_min, random_state):
    seam = has_neighbor_seam(estimator)
    ranks = np.asarray(estimator.neighbor_ranks if seam else (1, 2), dtype=np.int64)
    order = random_state.permutation(X.shape[0])
    X = reordered_points(X, order, metric=metric)
    levels, distinct = distinct_nested_kneighbors(
        X, int(ranks.max()), n_min, metric=metric, device=search_device(estimator, metric)
    )
    points = restrict_points(X, distinct, metric=metric)
    rows = []
    for level, (distances, _) in enumerate(levels):
        edges = group_edges(distances.shape[0], level)
        groups = list(zip(edges[:-1].tolist(), edges[1:].tolist()))
        scale = float(distances[:, ranks.max() - 1].mean())
        if seam:
            ids = [estimator.dimension_from_neighbors(distances[a:b][:, ranks - 1]) for a, b in groups]
        else:
            fits = [
                clone(estimator, safe=False).fit(restrict_points(points, np.arange(a, b), metric=metric))
                for a, b in groups
            ]
            ids = [fitted_dimension(fitted) for fitted in fits]
            if all(hasattr(final_step(fitted), "scale_") for fitted in fits):  # the scale the estimator reports
                scale = float(np.mean([final_step(fitted).scale_ for fitted in fits]))
        rows.append(
            {
                "n_samples": int(np.diff(edges).min()),
                "scale": scale,
                "id": float(np.mean(ids)),
                "id_std": float(np.std(ids, ddof=1)) if len(ids) > 1 else float("nan"),
                "n_subsets": 2**level,
            }
        )
    return pd.DataFrame(rows)


def _rank_doubling(estimator, X, metric, range_max):
    if not has_neighbor_seam(estimator):
        raise TypeError(
            f"Rank doubling estimates from one neighbour search, so it needs an estimator with "
            f"dimension_from_neighbors; {type(estimator).__name__} has none."
        )
    ranks = 2 ** np.arange(int(math.log2(min(range_max, X.shape[0] - 1))) + 1)
    distances, _ = distinct_neighbor_distances(X, ranks, metric=metric, device=search_device(estimator, metric))
    rows = []
    for step, (n1, n2) in enumerate(zip(ranks[:-1].tolist(), ranks[1:].tolist())):
        at_ranks = estimator.at_ranks(n1, n2)
        dimension, std = at_ranks.dimension_from_neighbors(distances[:, step : step + 2], return_std=True)
        rows.append(
            {
                "n_samples": distances.shape[0],
                "scale": float(distances[:, step + 1].mean()),
                "id": float(dimension),
                "id_std": float(std),
                "n1": n1,
                "n2": n2,
            }
        )
    return pd.DataFrame(rows)
