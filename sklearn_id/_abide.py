"""ABIDE and A-GRIDE: the ID at each point's largest neighbourhood of constant density, iterated to a fixed point."""

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from sklearn_id._abide_steps import binomial_step, gride_step, pooled_dimensions
from sklearn_id._base import NeighborSearchMixin, UndersampledWarning, search_device, undersampled
from sklearn_id._device import DEVICE_CONSTRAINT
from sklearn_id._kstar import MIN_KSTAR, kstar
from sklearn_id._neighbors import fitted_reference, neighbor_graph, query_kneighbors, search_points
from sklearn_id._twonn import twonn_linear_fit
from sklearn_id._warnings import find_stack_level

__all__ = ["ABIDEDimension", "SaturatedNeighborhoodWarning"]

# The first width of max_neighbors="auto": DADApy's default maxk.
_AUTO_START = 100


class SaturatedNeighborhoodWarning(UserWarning):
    """Points whose k* reached the end of their neighbour lists (``max_neighbors``): their neighbourhoods were cut."""


class ABIDEDimension(NeighborSearchMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Intrinsic dimension at each point's largest neighbourhood of constant density (ABIDE, A-GRIDE).

    Every ID is an ID at some scale: too close, noise inflates it; too far,
    curvature. ABIDE (Di Noia, Macocco, Glielmo, Laio and Mira 2024) picks
    the scale point by point: ``k*_i`` is the largest number of neighbours
    of point ``i`` over which a likelihood-ratio test at level ``alpha``
    keeps the density constant (see :mod:`sklearn_id._kstar`). The ID is then
    estimated at those scales, the k* recomputed with it, ``n_iter`` times:

    - ``method="binomial"`` (ABIDE): with shell ratio ``r``, ``n_i`` counts
      the points within ``r`` times point ``i``'s k*-th distance and
      ``d = ln((<n> - 1) / (<k*> - 1)) / ln r``;
    - ``method="gride"`` (A-GRIDE): GRIDE by maximum likelihood with each
      point's own ranks ``n2 = k*`` (made even) and ``n1 = n2 / 2``.

    The algorithm and its numbers are DADApy's (``return_ids_kstar_binomial``
    and ``return_ids_kstar_gride``), on exact neighbour distances among the
    distinct points (duplicates collapsed with a warning, the package's
    policy), with the k* test of all points vectorised, on the CPU or a torch
    device. Unlike DADApy, nothing is cut silently: with
    ``max_neighbors="auto"`` the neighbour lists of the points that need it
    grow until every k* is found.

    Parameters
    ----------
    method : {"binomial", "gride"}, default="binomial"
    alpha : float, default=1e-6
        Level of the k* test, in (0, 1); smaller keeps larger neighbourhoods.
    n_iter : int, default=5
        Estimates at the k*, each with the k* of the previous estimate.
    ratio : "auto" or float, default="auto"
        Shell ratio ``r`` of the binomial estimator, in (0, 1); ``"auto"``:
        ``min(0.975, 0.2032 ** (1 / d))`` at the current ID ``d``, as DADApy.
    initial_id : float or None, default=None
        The ID the first k* are computed with; None: ``TwoNNDimension()``
        (the linear fit, as DADApy ``compute_id_2NN()``).
    max_neighbors : "auto" or int, default="auto"
        Neighbours listed per point. An integer ``K`` (at least 4) is DADApy's
        ``maxk=K``: k* is at most ``K - 1``, and points that reach it are
        counted and warned about. ``"auto"`` lists 100 and grows the lists of
        the points that reach the end, until every k* is found (or a point's
        list holds every other point).
    device : str or torch.device, default="auto"
        Where the neighbours are searched: ``"cpu"``, ``"cuda"``,
        ``"cuda:N"``, a ``torch.device``, or ``"auto"`` (CUDA when present).

    Attributes
    ----------
    dimension_ : float
        The last iteration's estimate.
    dimension_std_ : float
        Its standard error under the estimator's model (Cramer-Rao for the
        binomial estimator, Fisher information for GRIDE), as DADApy.
    dimensions_ : ndarray of shape (n_iter + 1,)
        Every iteration's estimate; index 0 is the initial ID.
    kstar_ : ndarray of shape (n_distinct,)
        Each distinct point's k* at ``dimension_`` (DADApy's last ``kstars``).
    scale_ : float
        The distance the estimate refers to: the mean over points of the
        radii the last estimate read, ``(1 + r) / 2`` times the k*-th
        neighbour distance (binomial) or the mean of the ``n1``-th and
        ``n2``-th distances (GRIDE).
    ratio_ : float
        The shell ratio of the last binomial estimate (NaN for GRIDE).
    n_saturated_ : int
        Points of ``kstar_`` whose test never failed within their list:
        k* = ``max_neighbors - 1``, or with ``"auto"`` every other point but
        one.
    n_duplicates_ : int
    n_features_in_ : int
    device_ : str

    See Also
    --------
    GRIDEDimension : GRIDE at fixed ranks; ``id_scaling`` draws it against scale.

    References
    ----------
    A. Di Noia, I. Macocco, A. Glielmo, A. Laio and A. Mira, "Beyond the
    noise: intrinsic dimension estimation with optimal neighbourhood
    identification", arXiv:2405.15132 (2024).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_id import ABIDEDimension
    >>> rng = np.random.default_rng(0)
    >>> plane = np.c_[rng.uniform(size=(2000, 2)), np.zeros((2000, 8))]
    >>> noisy = plane + 0.005 * rng.normal(size=plane.shape)
    >>> estimator = ABIDEDimension().fit(noisy)
    >>> float(round(estimator.dimensions_[0], 1)), round(estimator.dimension_, 1)
    (5.2, 2.0)
    >>> estimator.transform(noisy[:3]).shape
    (3, 1)
    """

    _parameter_constraints: dict = {
        "method": [StrOptions({"binomial", "gride"})],
        "alpha": [Interval(Real, 0, 1, closed="neither")],
        "n_iter": [Interval(Integral, 1, None, closed="left")],
        "ratio": [StrOptions({"auto"}), Interval(Real, 0, 1, closed="neither")],
        "initial_id": [Interval(Real, 0, None, closed="neither"), None],
        "max_neighbors": [StrOptions({"auto"}), Interval(Integral, MIN_KSTAR + 1, None, closed="left")],
        "device": [DEVICE_CONSTRAINT],
    }

    def __init__(
        self,
        *,
        method="binomial",
        alpha=1e-6,
        n_iter=5,
        ratio="auto",
        initial_id=None,
        max_neighbors="auto",
        device="auto",
    ):
        self.method = method
        self.alpha = alpha
        self.n_iter = n_iter
        self.ratio = ratio
        self.initial_id = initial_id
        self.max_neighbors = max_neighbors
        self.device = device

    @property
    def graph_neighbors(self):
        """Neighbours to list per point before the estimate (the graph seam); reading it validates the parameters."""
        self._check_params()
        return _AUTO_START if self.max_neighbors == "auto" else int(self.max_neighbors)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Estimate the intrinsic dimension of ``X`` at each point's k*.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : None
            Ignored.

        Returns
        -------
        self : ABIDEDimension
        """
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=MIN_KSTAR + 2)
        self.device_ = search_device(self, "euclidean")
        graph, distinct, _ = neighbor_graph(
            search_points(X, self.device_), self.graph_neighbors, min_neighbors=MIN_KSTAR + 1, device=self.device_
        )
        self.n_duplicates_ = X.shape[0] - distinct.size
        fit = self._iterate(graph)
        self.dimensions_, self.kstar_, self._step = fit["dimensions"], fit["kstar"], fit["step"]
        self.dimension_ = float(self.dimensions_[-1])
        self.dimension_std_, self.scale_, self.ratio_ = fit["step"].std, fit["step"].scale, fit["step"].ratio
        self.n_saturated_ = int(fit["saturated"].sum())
        self._fit_X = fitted_reference(search_points(X, self.device_), distinct)
        self._n_features_out = 1
        self._warn(fit, graph)
        return self

    def dimension_from_graph(self, graph):
        """``(dimension, scale)`` from a neighbour graph of distinct points (the graph seam), without fitting.

        The seam through which :class:`~sklearn_id.DepthProfile` estimates
        every resample of a layer from one search: ``graph`` lists at least
        :attr:`graph_neighbors` neighbours per point (an explicit
        ``max_neighbors`` reads only that many), and grows when
        ``max_neighbors="auto"``.
        """
        width = self.graph_neighbors
        listed = int(graph.widths.min())
        if listed < min(width, graph.n_points - 1):
            raise ValueError(
                f"The graph lists {listed} neighbours for some points, fewer than the {width} this estimator "
                "reads (graph_neighbors): list at least that many, as neighbor_graph(X, graph_neighbors) does."
            )
        if self.max_neighbors != "auto":
            graph = graph.limited(width)
        fit = self._iterate(graph)
        self._warn(fit, graph)
        return float(fit["dimensions"][-1]), fit["step"].scale

    def _iterate(self, graph):
        """Initial ID, k*, then ``n_iter`` estimates each followed by the k* at the new ID."""
        if graph.n_points <= MIN_KSTAR + 1:
            raise ValueError(
                f"ABIDE tests neighbourhoods of at least {MIN_KSTAR + 1} neighbours, so it needs at least "
                f"{MIN_KSTAR + 2} distinct points, got {graph.n_points}."
            )
        grow = self.max_neighbors == "auto"
        dimension = self.initial_id
        if dimension is None:
            near = graph.distances_at(np.arange(graph.n_points), np.array([0, 1])[:, None]).T
            dimension = twonn_linear_fit(near[:, 1] / near[:, 0])
        dimensions = [float(dimension)]
        current, saturated = kstar(graph, dimension, self.alpha, grow=grow)
        most_saturated = int(saturated.sum())
        for _ in range(self.n_iter):
            if self.method == "binomial":
                ratio = min(0.975, 0.2032 ** (1.0 / dimension)) if self.ratio == "auto" else float(self.ratio)
                step = binomial_step(graph, current, ratio)
            else:
                step = gride_step(graph, current)
            dimension = step.dimension
            dimensions.append(dimension)
            current, saturated = kstar(graph, dimension, self.alpha, grow=grow)
            most_saturated = max(most_saturated, int(saturated.sum()))
        return {
            "dimensions": np.array(dimensions),
            "kstar": current,
            "saturated": saturated,
            "most_saturated": most_saturated,
            "step": step,
        }

    def _warn(self, fit, graph):
        n_points = graph.n_points
        if self.max_neighbors != "auto" and fit["most_saturated"]:
            warnings.warn(
                f"The k* test of up to {fit['most_saturated']} of {n_points} points never failed within their "
                f"{self.max_neighbors} neighbours, so their k* was cut at max_neighbors - 1 = "
                f"{self.max_neighbors - 1}: raise max_neighbors, or pass max_neighbors='auto'.",
                SaturatedNeighborhoodWarning,
                stacklevel=find_stack_level(),
            )
        at_minimum = int(np.count_nonzero(fit["kstar"] == MIN_KSTAR))
        if at_minimum > n_points / 2:
            warnings.warn(
                f"k* stays at its minimum of {MIN_KSTAR} for {at_minimum} of {n_points} points: the density is "
                "constant over no larger neighbourhood (too few points, or structure at every scale), so the "
                "estimate is that of the smallest scale. Compare it with id_scaling.",
                UserWarning,
                stacklevel=find_stack_level(),
            )
        dimension = float(fit["dimensions"][-1])
        if undersampled(dimension, n_points):
            warnings.warn(
                f"ABIDEDimension estimated {dimension:.3g} from {n_points} points, but resolving a dimension d "
                "takes at least 2**d points: read it as a lower bound, or use more points.",
                UndersampledWarning,
                stacklevel=find_stack_level(),
            )

    def transform(self, X):
        """Local intrinsic dimension around each sample, at its own k*.

        The last estimate's likelihood pooled over the sample's neighbourhood
        only: its nearest fitted point ``p`` and ``p``'s k* nearest fitted
        points besides (``k* + 1`` points, over which the k* test found the
        density constant), each with its own count (binomial, at ``ratio_``)
        or ratio (GRIDE).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        local_dimension : ndarray of shape (n_samples, 1)
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        step = self._step
        # One query for the largest neighbourhood any fitted point has; each sample's nearest is its first column.
        largest = min(int(step.kstar.max()) + 1, self._fit_X.shape[0])
        _, indices = query_kneighbors(search_points(X, self.device_), largest, self._fit_X, device=self.device_)
        sizes = step.kstar[indices[:, 0]] + 1
        values = step.inner if step.method == "binomial" else step.log_mu
        local = pooled_dimensions(values[indices], step.kstar[indices], sizes, step.method, step.ratio)
        undefined = ~np.isfinite(local)
        if undefined.any():
            raise ValueError(
                f"{undefined.sum()} of the {local.size} samples have a neighbourhood with no point inside its "
                "inner shell (binomial) or only equidistant neighbours (GRIDE), so their local dimension is "
                "undefined; use the global dimension_ there."
            )
        return local[:, None]
