"""The two ID steps of ABIDE at each point's own k*: the binomial estimator and GRIDE (A-GRIDE).

Both read each point's neighbours up to its k* off a
:class:`~sklearn_id._neighbors.NeighborGraph` and pool the points into one
estimate, as DADApy's ``return_ids_kstar_binomial`` and
``return_ids_kstar_gride`` do; a :class:`Step` keeps each point's share, so
that a local estimate can pool the points of one neighbourhood only
(:func:`pooled_dimensions`).
"""

from dataclasses import dataclass

import numpy as np

from sklearn_id._gride import gride_roots, x_over_one_minus_exp

__all__ = ["Step", "binomial_step", "gride_step", "pooled_dimensions"]


@dataclass
class Step:
    """One estimate at the points' k*, and what each point contributed.

    ``inner`` (binomial) counts each point's neighbours nearer than ``ratio``
    times its k*-th distance, and ``kstar`` is its k*; for GRIDE, ``log_mu``
    is ``log(r_n2 / r_n1)`` with ``n2 = kstar`` (rounded up to even) and
    ``n1 = n2 / 2``.
    """

    method: str
    dimension: float
    std: float
    scale: float
    kstar: np.ndarray
    ratio: float = np.nan
    inner: np.ndarray = None
    log_mu: np.ndarray = None


def binomial_step(graph, kstar, ratio):
    """The binomial estimate ``d = ln((<n> - 1) / (<k*> - 1)) / ln r`` and its Cramer-Rao standard error.

    ``n`` counts the point itself and its neighbours within ``r`` times its
    k*-th neighbour distance; under a constant density each neighbour among
    the first ``k* - 1`` falls there with probability ``r^d``. The scale is
    the mean of the outer and inner radii, ``(1 + r) / 2`` times the mean
    k*-th distance (DADApy's ``intrinsic_dim_scale``).
    """
    points = np.arange(graph.n_points)
    outer = graph.distances_at(points, kstar - 1)
    inner = np.zeros(graph.n_points, dtype=np.int64)
    for rows, distances, _ in graph.tiers():
        with np.errstate(invalid="ignore"):  # NaN beyond a row's list: never inside
            inner[rows] = (distances < ratio * outer[rows, None]).sum(axis=1)
    mean_inner, mean_k = inner.mean(), kstar.mean()
    if mean_inner == 0:
        raise ValueError(
            f"No point has a neighbour within {ratio:.3g} times its k*-th neighbour distance, so the binomial "
            "estimator has nothing to count: pass a larger ratio (closer to 1), or method='gride'."
        )
    dimension = float(np.log(mean_inner / (mean_k - 1)) / np.log(ratio))
    variance = (ratio**-dimension - 1) / ((mean_k - 1) * graph.n_points * np.log(ratio) ** 2)
    scale = 0.5 * (outer.mean() + (outer * ratio).mean())
    return Step("binomial", dimension, float(np.sqrt(variance)), float(scale), kstar, ratio=ratio, inner=inner)


def gride_step(graph, kstar):
    """GRIDE at ranks ``n2 = k*`` (made even) and ``n1 = n2 / 2`` per point, by maximum likelihood.

    The standard error is the inverse square root of the Fisher information
    ``(N + sum (n1 - 1) x^2 e^-x / (1 - e^-x)^2) / d^2``, ``x = d log mu``, as
    DADApy computes it. The scale is the mean of the two distances.
    """
    points = np.arange(graph.n_points)
    far = kstar + kstar % 2
    near_distance = graph.distances_at(points, far // 2 - 1)
    far_distance = graph.distances_at(points, far - 1)
    log_mu = np.log(far_distance / near_distance)
    dimension = float(gride_roots(log_mu, far // 2, far))
    if not np.isfinite(dimension):
        raise ValueError(
            "Every point's neighbours at ranks k*/2 and k* are equidistant (as on a regular grid): GRIDE "
            "cannot estimate a dimension from these data; use method='binomial'."
        )
    x = dimension * log_mu
    h = x_over_one_minus_exp(x)
    information = (log_mu.size + np.sum((far // 2 - 1) * h * h * np.exp(-x))) / dimension**2
    scale = 0.5 * (near_distance.mean() + far_distance.mean())
    return Step("gride", dimension, float(information**-0.5), float(scale), kstar, log_mu=log_mu)


def pooled_dimensions(values, kstar, counts, method, ratio=np.nan):
    """The estimate of ``method`` from each row's first ``counts`` points: their ``inner`` counts or ``log_mu``, and k*.

    Rows are neighbourhoods (the fit's one row: every point). Binomial: the
    closed form (NaN where the counts are all 0); GRIDE: the likelihood's
    root per row with each point's own ranks (:func:`~sklearn_id._gride.gride_roots`;
    inf where every ``log_mu`` is 0).
    """
    real = np.arange(values.shape[-1]) < counts[:, None]
    if method == "binomial":
        with np.errstate(divide="ignore", invalid="ignore"):
            mean_inner = np.where(real, values, 0).sum(axis=1) / counts
            mean_k = np.where(real, kstar, 0).sum(axis=1) / counts
            dimension = np.log(mean_inner / (mean_k - 1)) / np.log(ratio)
        return np.where(mean_inner > 0, dimension, np.nan)
    far = kstar + kstar % 2
    return gride_roots(np.where(real, values, 0.0), far // 2, far, counts)
