"""The seams of an ID estimator, and how generic code reaches any estimator through them.

Three seams, all public:

- every ID estimator sets ``dimension_`` when fitted (:func:`fitted_dimension`
  reads it, also from the last step of a Pipeline);
- an estimator built on neighbour distances also has ``neighbor_ranks`` and
  ``dimension_from_neighbors(distances)``: the estimate from each point's
  distances to its neighbours of those ranks. With it, one neighbour search
  serves the whole data and every random subsample
  (:func:`dimensions_with_resamples`); without it, the estimator is refitted;
- an estimator that decides itself how many neighbours to read (ABIDE) has
  ``graph_neighbors`` and ``dimension_from_graph(graph)``: the estimate, and
  its scale, from a :class:`~sklearn_id._neighbors.NeighborGraph` that it may
  grow. One search then serves the whole data and every subsample too.

:class:`NeighborRatioMixin` implements the second seam for the estimators of
this package, and the fit and transform they share.
"""

import math
import warnings

import numpy as np
from sklearn import config_context
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin, clone
from sklearn.pipeline import Pipeline
from sklearn.utils import get_tags
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from sklearn_id._device import as_numpy, preferred_device, resolve_device
from sklearn_id._neighbors import (
    check_points,
    distinct_kneighbors,
    distinct_neighbor_distances,
    fitted_reference,
    neighbor_graph,
    query_kneighbors,
    restrict_points,
    search_points,
    searched_on,
    subsample_neighbor_distances,
)
from sklearn_id._warnings import find_stack_level

__all__ = [
    "NeighborRatioMixin",
    "NeighborSearchMixin",
    "UndersampledWarning",
    "check_log_ratios",
    "dimensions_with_resamples",
    "final_step",
    "fitted_dimension",
    "has_graph_seam",
    "has_neighbor_seam",
    "has_rank_seam",
    "search_device",
    "short_reason",
    "takes_distance_matrix",
    "takes_precomputed_distances",
    "undersampled",
]

# Neighbours listed per point beyond the largest rank, so that a random 90%
# subsample still finds its own neighbours among them (all but about 1e-6 of
# the points for TwoNN); smaller subsamples list proportionally more.
_RESAMPLE_MARGIN = 6


class UndersampledWarning(UserWarning):
    """An estimate beyond what the number of points can resolve.

    Raised when fewer than ``2**d`` points back an estimate ``d`` (see
    :func:`undersampled`), or a PCA-ID needs at least half of the components
    that the points allow.
    """


def undersampled(dimension, n_points):
    """Whether ``n_points`` are too few to resolve an intrinsic dimension of ``dimension``: ``n_points < 2**dimension``.

    Neighbour-based estimators see a dimension through how the number of
    points within a distance grows with it, so the points they need grow
    exponentially with the dimension (Eckmann and Ruelle, Physica D 56, 185,
    1992, bound correlation-dimension estimates by ``2 log10 N``). Two points
    per halving of the scale along each direction is the least that makes
    ``d`` visible at all: an estimate with fewer (``d > log2 N``) says more
    about the sample size than about the data. The rule is looser than
    Eckmann and Ruelle's, so that well-sampled benchmarks (the Swiss roll,
    scikit-learn's digits) pass it.

    Examples
    --------
    >>> from sklearn_id._base import undersampled
    >>> undersampled(2.0, 2500), undersampled(133.0, 40)
    (False, True)
    """
    return bool(np.isfinite(dimension) and n_points < 2.0 ** min(dimension, 1023))


def check_log_ratios(mu):
    """``log mu`` of neighbour-distance ratios, checked: a 1-D float64 array, or a ValueError that says what is wrong.

    Ratios equal to 1 up to rounding (equidistant neighbours, whose exact
    distances still differ in the last bits, as on a grid) count as exactly
    1: their logarithms are set to zero, so that a lattice is recognised as
    one instead of giving an absurd estimate.

    Parameters
    ----------
    mu : array-like of shape (n_points,)
        Ratios of a farther to a nearer neighbour distance.

    Returns
    -------
    log_mu : ndarray of shape (n_points,)
    """
    ready = isinstance(mu, np.ndarray) and mu.dtype == np.float64 and mu.ndim == 1 and np.isfinite(mu).all()
    if not ready:  # sklearn's validation, and its messages, for anything but a finite float64 vector
        mu = check_array(mu, ensure_2d=False, dtype=np.float64, input_name="mu")
    if mu.ndim != 1:
        raise ValueError(f"mu must be a 1-D array of ratios, got shape {mu.shape}.")
    if mu.size < 2:
        raise ValueError(f"At least 2 ratios are needed to estimate a dimension, got {mu.size}.")
    below = mu < 1
    if below.any():
        raise ValueError(
            f"Ratios mu = r_far / r_near must be at least 1, but {below.sum()} are below 1 (the smallest "
            f"is {mu.min():.6g}); pass the farther neighbour's distance over the nearer one's."
        )
    log_mu = np.log(mu)
    log_mu[log_mu < _TIED] = 0.0
    return log_mu


def short_reason(error):
    """The first clause of an error's message (up to its first colon): why one of many estimates is missing."""
    return str(error).split(":")[0]


# Logarithms of ratios this close to 1 come from equal distances rounded differently.
_TIED = 8 * np.finfo(np.float64).eps


def fitted_dimension(estimator):
    """``dimension_`` of a fitted estimator, or of the last step of a fitted Pipeline.

    Parameters
    ----------
    estimator : fitted estimator or Pipeline

    Returns
    -------
    dimension : float

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sklearn_id import PCADimension
    >>> from sklearn_id._base import fitted_dimension
    >>> X = np.random.default_rng(0).normal(size=(50, 3))
    >>> fitted_dimension(make_pipeline(StandardScaler(), PCADimension(threshold=1.0)).fit(X))
    3.0
    """
    final = final_step(estimator)
    if not hasattr(final, "dimension_"):
        raise TypeError(
            f"{type(final).__name__} sets no dimension_ attribute when fitted; pass an ID "
            "estimator such as TwoNNDimension() (or a Pipeline that ends in one)."
        )
    return float(final.dimension_)


def final_step(estimator):
    """The estimator itself, or the last step of a Pipeline: what holds the fitted attributes."""
    return estimator[-1] if isinstance(estimator, Pipeline) else estimator


def has_neighbor_seam(estimator):
    """Whether ``estimator`` estimates from neighbour distances (``neighbor_ranks`` and ``dimension_from_neighbors``).

    Reading ``neighbor_ranks`` validates the estimator's parameters, so an
    invalid setting raises here, before any search.
    """
    return (
        callable(getattr(estimator, "dimension_from_neighbors", None))
        and getattr(estimator, "neighbor_ranks", None) is not None
    )


def has_graph_seam(estimator):
    """Whether ``estimator`` estimates from a neighbour graph it may grow (``graph_neighbors`` and
    ``dimension_from_graph``); reading ``graph_neighbors`` validates its parameters."""
    return (
        callable(getattr(estimator, "dimension_from_graph", None))
        and getattr(estimator, "graph_neighbors", None) is not None
    )


def dimensions_with_resamples(estimator, X, subsets, *, metric="euclidean", device=None, return_n_points=False):
    """The estimate on all points of ``X``, and on each subset of them.

    An estimator with the neighbour seam (:func:`has_neighbor_seam`) or the
    graph seam (:func:`has_graph_seam`) gets one neighbour search on all
    points, duplicates collapsed, and each subset's neighbours are read off
    it; any other estimator is refitted on each set of points. Both give the
    same numbers.

    Parameters
    ----------
    estimator : estimator
        Sets ``dimension_`` when fitted. With ``metric="precomputed"``, one
        without the neighbour seam is refitted on distance matrices, so it
        must be fitted on distances already (``with_precomputed_distances()``).
    X : ndarray or tensor of shape (n_samples, n_features), or ndarray of shape (n_samples, n_samples)
        Points, or their distance matrix when ``metric="precomputed"``. A
        tensor on a CUDA device stays there when the estimator's device is
        CUDA; it is copied to the host for a CPU estimator or a refit.
    subsets : list of ndarray
        Sorted rows of ``X``, all of the same size.
    metric : {"euclidean", "precomputed"}, default="euclidean"
    device : str, default=None
        The device the caller resolved for this work (a profile's or a
        scorer's ``device``): what an estimator's ``device="auto"`` means
        here. An estimator's explicit device wins.
    return_n_points : bool, default=False
        Also return how many points the estimate on all of ``X`` used (the
        distinct ones, for an estimator with a seam) and the scale of that
        estimate: the mean distance to the farthest neighbour rank it reads
        (neighbour seam), the scale it reports (graph seam, or a refitted
        estimator's ``scale_``), or NaN.

    Returns
    -------
    dimension : float
    resampled : list of float
        One estimate per subset.
    n_points : int
        Only with ``return_n_points=True``.
    scale : float
        Only with ``return_n_points=True``.
    """
    if has_neighbor_seam(estimator):
        result = _through_neighbors(estimator, X, subsets, metric, device)
    elif has_graph_seam(estimator):  # a graph of points (its estimators take no distance matrix)
        result = _through_graph(estimator, X, subsets, device)
    else:
        result = _by_refitting(estimator, as_numpy(X), subsets, metric)
    return result if return_n_points else result[:2]


def search_device(estimator, metric, preferred=None):
    """Where an estimator's neighbour search runs: the device its ``neighbor_device`` declares, else ``preferred``.

    ``preferred`` is the device of the call that asks (a profile's, a
    scorer's); by default, the one :func:`sklearn_id._device.preferring_device`
    set, else what ``"auto"`` resolves to. A distance matrix is read on the
    host whatever the device.
    """
    preferred = preferred_device() if preferred is None else preferred
    declared = getattr(estimator, "neighbor_device", None)
    device = declared(preferred) if callable(declared) else resolve_device("auto", preferred)
    return searched_on(metric, device)


def takes_distance_matrix(estimator):
    """Whether ``estimator`` is fitted on a matrix of distances: scikit-learn's ``pairwise`` input tag."""
    try:
        return bool(get_tags(estimator).input_tags.pairwise)
    except AttributeError:  # not a scikit-learn estimator: it takes points
        return False


def takes_precomputed_distances(estimator):
    """Whether ``estimator`` has the seam ``with_precomputed_distances()``: a clone that is fitted on distances."""
    return callable(getattr(estimator, "with_precomputed_distances", None))


def has_rank_seam(estimator):
    """Whether ``estimator`` has the seam ``at_ranks(*ranks)``: a clone that reads neighbours of other ranks."""
    return callable(getattr(estimator, "at_ranks", None))


def _listed_for(n_neighbors, subsets, n_samples):
    """Neighbours to list on all points so that subsets (a fraction of them) still find ``n_neighbors`` of theirs."""
    if not subsets:
        return n_neighbors
    fraction = min(len(subset) for subset in subsets) / n_samples
    return math.ceil((n_neighbors + _RESAMPLE_MARGIN) * 0.9 / fraction - 1e-9)


def _through_neighbors(estimator, X, subsets, metric, preferred):
    ranks = np.asarray(estimator.neighbor_ranks, dtype=np.int64)
    device = search_device(estimator, metric, preferred)
    X = search_points(X, device)
    if not subsets:
        distances, distinct = distinct_neighbor_distances(X, ranks, metric=metric, device=device)
        scale = float(distances[:, -1].mean())
        return float(estimator.dimension_from_neighbors(distances)), [], distinct.size, scale
    distances, indices, distinct, representative = distinct_kneighbors(
        X,
        _listed_for(int(ranks.max()), subsets, X.shape[0]),
        min_neighbors=int(ranks.max()),
        metric=metric,
        device=device,
    )
    points = restrict_points(X, distinct, metric=metric)
    dimension = float(estimator.dimension_from_neighbors(distances[:, ranks - 1]))
    resampled = [
        float(
            estimator.dimension_from_neighbors(
                subsample_neighbor_distances(
                    distances, indices, np.unique(representative[subset]), ranks, X=points, metric=metric
                )
            )
        )
        for subset in subsets
    ]
    return dimension, resampled, distinct.size, float(distances[:, ranks.max() - 1].mean())


def _through_graph(estimator, X, subsets, preferred):
    width = estimator.graph_neighbors
    device = search_device(estimator, "euclidean", preferred)
    X = search_points(X, device)
    graph, distinct, representative = neighbor_graph(
        X, _listed_for(width, subsets, X.shape[0]), min_neighbors=1, device=device
    )
    dimension, scale = estimator.dimension_from_graph(graph)
    resampled = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the estimate on all points has warned about what the subsets share
        for subset in subsets:
            positions = np.unique(representative[subset])
            resampled.append(estimator.dimension_from_graph(graph.restricted(positions, width))[0])
    return float(dimension), resampled, distinct.size, float(scale)


def _by_refitting(estimator, X, subsets, metric):
    # With metric="precomputed" the caller passes an estimator fitted on distances (with_precomputed_distances).
    fitted = clone(estimator, safe=False).fit(X)
    resampled = [
        fitted_dimension(clone(estimator, safe=False).fit(restrict_points(X, subset, metric=metric)))
        for subset in subsets
    ]
    return fitted_dimension(fitted), resampled, X.shape[0], float(getattr(final_step(fitted), "scale_", np.nan))


class NeighborSearchMixin:
    """What an estimator that searches neighbours itself shares: its search device, and its parameters checked."""

    def neighbor_device(self, preferred=None):
        """Where this estimator's neighbour searches run: ``device`` resolved, ``"auto"`` meaning ``preferred``.

        The seam through which a caller that resolved its own device (a
        profile, a scorer) runs this estimator's searches there.
        """
        return resolve_device(self.device, preferred)

    def _check_params(self):
        """The parameters validated, a plain ``ValueError`` when one is not.

        A function validated by sklearn that reads a seam (``id_scaling``)
        would otherwise relabel an ``InvalidParameterError`` with its own name.
        """
        try:
            self._validate_params()
        except InvalidParameterError as error:
            raise ValueError(str(error)) from None


class NeighborRatioMixin(NeighborSearchMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin):
    """The neighbour seam, fit-time neighbours and transform-time pools of ``TwoNNDimension`` and ``GRIDEDimension``.

    The host class has the parameters ``metric``, ``n_neighbors`` and
    ``device``, and defines ``_ranks()`` (the neighbour ranks it reads),
    ``_dimension_from_ratios(mu)``, ``_std_from_ratios(mu, dimension)`` and
    ``_local_dimension(log_mu)``, its estimate from each row of an array of
    log-ratios.
    """

    @property
    def neighbor_ranks(self):
        """The neighbour ranks the estimate reads, ``(near, far)``; reading it validates the parameters."""
        self._check_params()
        return self._ranks()

    def with_precomputed_distances(self):
        """A clone of this estimator that is fitted on a square matrix of distances (``metric="precomputed"``)."""
        return clone(self).set_params(metric="precomputed")

    def dimension_from_neighbors(self, distances, *, return_std=False):
        """The estimate from each point's distances to its neighbours of ``neighbor_ranks``.

        The seam that :class:`~sklearn_id.DepthProfile` and
        :func:`~sklearn_id.id_scaling` use to estimate from a neighbour search
        they ran once (on all points, on subsamples, at several ranks). The
        estimator is not fitted by it.

        Parameters
        ----------
        distances : array-like of shape (n_points, 2)
            Each point's distances to its neighbours of ranks
            ``neighbor_ranks``, among distinct points.
        return_std : bool, default=False
            Also return the standard deviation of the estimate under the
            estimator's model.

        Returns
        -------
        dimension : float
        std : float
            Only with ``return_std=True``.

        Examples
        --------
        >>> import numpy as np
        >>> from scipy.spatial.distance import cdist
        >>> from sklearn_id import TwoNNDimension
        >>> X = np.random.default_rng(0).normal(size=(500, 3))
        >>> estimator = TwoNNDimension()
        >>> estimator.neighbor_ranks
        (1, 2)
        >>> distances = np.sort(cdist(X, X), axis=1)[:, [1, 2]]
        >>> bool(np.isclose(estimator.dimension_from_neighbors(distances), estimator.fit(X).dimension_))
        True
        """
        self.neighbor_ranks  # noqa: B018 (reading it validates the parameters)
        return self._dimension_from_checked(check_array(distances, dtype=np.float64), return_std=return_std)

    def dimensions_from_neighbors(self, distances):
        """One estimate per cloud from each cloud's neighbour distances, validated once.

        :meth:`dimension_from_neighbors` for many point sets at once, the
        batched seam of :func:`~sklearn_id.cloud_dimensions`: the
        parameters and the arrays are checked once for all clouds, and a cloud
        whose estimate is undefined gets NaN and its reason rather than
        stopping the others.

        Parameters
        ----------
        distances : list of ndarray of shape (n_points_i, 2)
            Each cloud's distances to the neighbours of ranks ``neighbor_ranks``.

        Returns
        -------
        dimensions : ndarray of shape (len(distances),)
        reasons : dict of int to str
            For each cloud that got NaN, why.

        Examples
        --------
        >>> import numpy as np
        >>> from scipy.spatial.distance import cdist
        >>> from sklearn_id import TwoNNDimension
        >>> rng = np.random.default_rng(0)
        >>> clouds = [rng.normal(size=(300, 2)), rng.normal(size=(400, 3))]
        >>> distances = [np.sort(cdist(c, c), axis=1)[:, [1, 2]] for c in clouds]
        >>> dimensions, reasons = TwoNNDimension().dimensions_from_neighbors(distances)
        >>> np.round(dimensions).tolist(), reasons
        ([2.0, 3.0], {})
        """
        self.neighbor_ranks  # noqa: B018 (reading it validates the parameters)
        if distances:
            check_array(np.concatenate(distances), dtype=np.float64)
        dimensions, reasons = np.full(len(distances), np.nan), {}
        ratios = {}
        for index, rows in enumerate(distances):
            try:
                ratios[index] = self._checked_ratios(np.asarray(rows, dtype=np.float64))
            except ValueError as error:
                reasons[index] = short_reason(error)
        with config_context(skip_parameter_validation=True):  # the functions' arguments are ours, checked above
            for index, outcome in zip(ratios, self._dimensions_from_ratio_lists(list(ratios.values()))):
                if isinstance(outcome, ValueError):
                    reasons[index] = short_reason(outcome)
                else:
                    dimensions[index] = outcome
        return dimensions, reasons

    def _dimensions_from_ratio_lists(self, ratios):
        """The estimate from each array of ratios, or the ``ValueError`` that says why there is none."""
        outcomes = []
        for mu in ratios:
            try:
                outcomes.append(self._dimension_from_ratios(mu))
            except ValueError as error:
                outcomes.append(error)
        return outcomes

    def _dimension_from_checked(self, distances, *, return_std=False):
        """The estimate from distances already checked to be a finite float64 array."""
        mu = self._checked_ratios(distances)
        dimension = self._dimension_from_ratios(mu)
        return (dimension, self._std_from_ratios(mu, dimension)) if return_std else dimension

    def _checked_ratios(self, distances):
        """``r_far / r_near`` of each row of a finite float64 array of neighbour distances, or a ``ValueError``."""
        near_rank, far_rank = self._ranks()
        if distances.shape[1] != 2:
            raise ValueError(
                f"dimension_from_neighbors needs each point's distances to its neighbours of ranks "
                f"{near_rank} and {far_rank} (two columns), got {distances.shape[1]} columns."
            )
        if not (distances[:, 0] > 0).all() or not (distances[:, 1] >= distances[:, 0]).all():
            raise ValueError(
                "Neighbour distances must be positive and non-decreasing by rank; collapse exact "
                "duplicates first (a first distance of zero) and sort each row."
            )
        return distances[:, 1] / distances[:, 0]

    def _warn_if_undersampled(self):
        """After ``fit``: an :class:`UndersampledWarning` when the points cannot resolve ``dimension_``."""
        if undersampled(self.dimension_, self.mu_.size):
            warnings.warn(
                f"{type(self).__name__} estimated {self.dimension_:.3g} from {self.mu_.size} points, but "
                f"resolving a dimension d takes at least 2**d points ({2.0 ** min(self.dimension_, 1023):.3g} "
                "here): the estimate reflects the sample size more than the data. Use more points, or read "
                "it as a lower bound.",
                UndersampledWarning,
                stacklevel=find_stack_level(),
            )

    def _fit_neighbors(self, X):
        """Validate ``X``; return each distinct point's distances to its neighbours of ``neighbor_ranks``."""
        X = self._validate_input(X, reset=True)
        self.device_ = search_device(self, self.metric)
        distances, distinct = distinct_neighbor_distances(
            X, self.neighbor_ranks, metric=self.metric, device=self.device_
        )
        self.n_duplicates_ = X.shape[0] - distinct.size
        self._distinct_index = distinct
        # transform gives one feature, the local dimension (get_feature_names_out names it).
        self._n_features_out = 1
        self._fit_X = fitted_reference(X, distinct, metric=self.metric)
        return distances

    def transform(self, X):
        """Local intrinsic dimension around each sample.

        The estimator's maximum likelihood (:func:`~sklearn_id.twonn_mle`
        with nothing discarded, or :func:`~sklearn_id.gride_mle`) over the
        ratios ``mu_`` of the ``n_neighbors`` fitted points nearest to the
        sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples, or with ``metric="precomputed"`` their distances to the
            fitted points, of shape (n_samples, n_samples_fit).

        Returns
        -------
        local_dimension : ndarray of shape (n_samples, 1)
        """
        check_is_fitted(self)
        X = self._validate_input(X, reset=False)
        k = min(self.n_neighbors, self.mu_.size)
        _, indices = query_kneighbors(X, k, self._fit_X, metric=self.metric, device=self.device_)
        local = self._local_dimension(check_log_ratios(self.mu_)[indices])
        undefined = ~np.isfinite(local)
        if undefined.any():
            raise ValueError(
                f"{undefined.sum()} of the {local.size} samples have only fitted neighbours whose two "
                "neighbours are equidistant (ratios of 1, as on a grid), so their local dimension is "
                f"undefined; raise n_neighbors (now {self.n_neighbors}) to pool more fitted points."
            )
        return local[:, None]

    def _validate_input(self, X, *, reset):
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=3 if reset else 1, reset=reset)
        check_points(X, f"{type(self).__name__}(metric='precomputed')", metric=self.metric, square=reset)
        return X

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.pairwise = self.metric == "precomputed"
        tags.input_tags.positive_only = self.metric == "precomputed"
        return tags
