"""TwoNN intrinsic dimension (Facco et al. 2017) from first and second neighbour distances."""

from numbers import Integral, Real

import numpy as np
from scipy import stats
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

from sklearn_id._base import NeighborRatioMixin, check_log_ratios
from sklearn_id._device import DEVICE_CONSTRAINT

__all__ = [
    "TwoNNDimension",
    "twonn_interval",
    "twonn_linear_fit",
    "twonn_mle",
]


def _n_kept(n_ratios, discard_fraction):
    """Number of smallest ratios kept: ``int(N * (1 - discard_fraction))``, as DADApy does."""
    n_kept = int(n_ratios * (1 - discard_fraction))
    if n_kept < 2:
        raise ValueError(
            f"discard_fraction={discard_fraction} keeps {n_kept} of the {n_ratios} "
            "ratios, but at least 2 are needed; lower discard_fraction or provide "
            "more points."
        )
    return n_kept


def _total_log_ratio(log_mu_sorted, n_kept):
    """Sum of the kept log-ratios, the discarded ones censored at the largest kept.

    For Pareto-distributed ratios the log-ratios are exponential with rate
    ``d``; with the largest ``N - n`` censored, this total follows a Gamma law
    of shape ``n`` and rate ``d`` exactly (type-II censoring).
    """
    kept = log_mu_sorted[:n_kept]
    return kept.sum() + (log_mu_sorted.size - n_kept) * kept[-1]


def _censored_total(mu, discard_fraction):
    """The total log-ratio of :func:`_total_log_ratio`, or the lattice error when it is zero."""
    log_mu = _sorted_log_ratios(mu)
    total = _total_log_ratio(log_mu, _n_kept(log_mu.size, discard_fraction))
    if total == 0:
        raise ValueError(
            "Every ratio r2 / r1 equals 1 (each point's two nearest neighbours are "
            "equidistant, as on a regular grid): TwoNN cannot estimate a dimension "
            "from these data."
        )
    return total


def _sorted_log_ratios(mu):
    return np.sort(check_log_ratios(mu))


@validate_params(
    {"mu": ["array-like"], "discard_fraction": [Interval(Real, 0, 1, closed="neither")]},
    prefer_skip_nested_validation=True,
)
def twonn_linear_fit(mu, discard_fraction=0.1):
    """TwoNN dimension by the linear fit of Facco et al. (2017).

    The ratios are sorted; the ``n = int(N * (1 - discard_fraction))`` smallest
    are kept, with empirical CDF ``F_i = i / N``; the dimension is the slope of
    the least-squares line through the origin of ``-log(1 - F_i)`` against
    ``log mu_(i)``. This is the formula of DADApy's ``compute_id_2NN()`` and
    scikit-dimension's ``TwoNN()``.

    Parameters
    ----------
    mu : array-like of shape (n_points,)
        Ratios of second to first neighbour distances, all at least 1.
    discard_fraction : float, default=0.1
        Fraction of the largest ratios left out of the fit; must be positive,
        since ``F_N = 1`` would put the largest ratio at infinity.

    Returns
    -------
    dimension : float

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_id import twonn_linear_fit
    >>> rng = np.random.default_rng(0)
    >>> mu = rng.pareto(4.0, size=20_000) + 1   # exact TwoNN law for d = 4
    >>> round(twonn_linear_fit(mu), 1)
    4.0
    """
    if not 0 < discard_fraction < 1:
        raise ValueError(
            f"The linear fit needs 0 < discard_fraction < 1, got {discard_fraction}: "
            "with nothing discarded the largest ratio has -log(1 - F) = inf. "
            "Use method='mle' to keep every ratio."
        )
    log_mu = _sorted_log_ratios(mu)
    n_ratios = log_mu.size
    n_kept = _n_kept(n_ratios, discard_fraction)
    x = log_mu[:n_kept]
    y = -np.log1p(-np.arange(1, n_kept + 1) / n_ratios)
    sxx = x @ x
    if sxx == 0:
        raise ValueError(
            "Every kept ratio r2 / r1 equals 1 (each point's two nearest neighbours "
            "are equidistant, as on a regular grid): TwoNN cannot estimate a "
            "dimension from these data."
        )
    return float(x @ y / sxx)


@validate_params(
    {"mu": ["array-like"], "discard_fraction": [Interval(Real, 0, 1, closed="left")]},
    prefer_skip_nested_validation=True,
)
def twonn_mle(mu, discard_fraction=0.0):
    """Unbiased maximum-likelihood TwoNN dimension.

    With all ratios kept this is ``(N - 1) / sum(log mu)``. When the largest
    fraction is discarded they are treated as censored at the largest kept
    ratio, which keeps the estimate unbiased: ``(n - 1) / T`` with ``T`` the
    total log-ratio of :func:`twonn_interval`.

    Parameters
    ----------
    mu : array-like of shape (n_points,)
        Ratios of second to first neighbour distances, all at least 1.
    discard_fraction : float, default=0.0
        Fraction of the largest ratios censored.

    Returns
    -------
    dimension : float

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_id import twonn_mle
    >>> rng = np.random.default_rng(0)
    >>> mu = rng.pareto(4.0, size=20_000) + 1   # exact TwoNN law for d = 4
    >>> round(twonn_mle(mu), 1)
    4.0
    """
    total = _censored_total(mu, discard_fraction)
    n_kept = _n_kept(np.size(mu), discard_fraction)
    return float((n_kept - 1) / total)


@validate_params(
    {
        "mu": ["array-like"],
        "discard_fraction": [Interval(Real, 0, 1, closed="left")],
        "confidence": [Interval(Real, 0, 1, closed="neither")],
    },
    prefer_skip_nested_validation=True,
)
def twonn_interval(mu, discard_fraction=0.0, confidence=0.95):
    """Exact confidence interval for the TwoNN dimension.

    Under the TwoNN model ``log mu`` is exponential with rate ``d``, so the
    total log-ratio ``T`` of the ``n`` kept ratios (the discarded ones censored
    at the largest kept) follows ``Gamma(n, rate=d)``; inverting it gives the
    interval ``[chi2_{a/2}(2n), chi2_{1-a/2}(2n)] / (2 T)``.

    Parameters
    ----------
    mu : array-like of shape (n_points,)
    discard_fraction : float, default=0.0
    confidence : float, default=0.95

    Returns
    -------
    interval : tuple of float
        Lower and upper bound.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_id import twonn_interval
    >>> rng = np.random.default_rng(0)
    >>> low, high = twonn_interval(rng.pareto(3.0, size=5_000) + 1)
    >>> bool(low < 3.0 < high)
    True
    """
    total = _censored_total(mu, discard_fraction)
    n_kept = _n_kept(np.size(mu), discard_fraction)
    tail = (1 - confidence) / 2
    low, high = stats.chi2.ppf([tail, 1 - tail], 2 * n_kept) / (2 * total)
    return float(low), float(high)


class TwoNNDimension(NeighborRatioMixin, TransformerMixin, BaseEstimator):
    """Intrinsic dimension from the ratio of second to first neighbour distances.

    For each point, ``mu = r2 / r1`` follows a Pareto law of index ``d``, the
    intrinsic dimension, when the density is locally uniform (Facco et al.
    2017). The neighbour distances are exact (float64), whatever the data's
    offset, scale or rotation; exact duplicate rows are collapsed first, with
    a warning that gives their number.

    Parameters
    ----------
    discard_fraction : float, default=0.1
        Fraction of the largest ratios left out: of the linear fit, or
        censored in the maximum likelihood. Must lie in [0, 1); the linear fit
        needs it positive.
    method : {"linear", "mle"}, default="linear"
        ``"linear"``: the slope of ``-log(1 - F)`` against ``log mu`` through
        the origin, exactly as DADApy ``compute_id_2NN()`` and
        scikit-dimension ``TwoNN()``. ``"mle"``: the unbiased maximum
        likelihood ``(N - 1) / sum(log mu)`` (see :func:`twonn_mle`).
    metric : {"euclidean", "precomputed"}, default="euclidean"
        ``"precomputed"`` takes a square distance matrix in ``fit`` and the
        distances from new points to the fitted ones in ``transform``.
    n_neighbors : int, default=20
        Fitted points around each sample that ``transform`` pools into a
        local estimate (at most the number of distinct fitted points).
    device : str or torch.device, default="auto"
        Where distances are computed: ``"cpu"``, ``"cuda"``, ``"cuda:N"``, a
        ``torch.device``, or ``"auto"`` (CUDA when present).

    Attributes
    ----------
    dimension_ : float
        The estimated intrinsic dimension.
    dimension_ci_ : tuple of float
        Exact 95% interval of the dimension under the TwoNN model (see
        :func:`twonn_interval`), for either method.
    mu_ : ndarray of shape (n_distinct,)
        Ratio ``r2 / r1`` of each distinct fitted point, in input order.
    n_duplicates_ : int
        Number of exact duplicate rows collapsed before estimation.
    n_features_in_ : int
        Number of features seen during fit.
    device_ : str
        The device the distances were computed on.

    See Also
    --------
    PCADimension : Linear dimension from explained variance.

    References
    ----------
    E. Facco, M. d'Errico, A. Rodriguez and A. Laio, "Estimating the intrinsic
    dimension of datasets by a minimal neighborhood information",
    Scientific Reports 7, 12140 (2017).

    Examples
    --------
    >>> from sklearn.datasets import make_swiss_roll
    >>> from sklearn_id import TwoNNDimension
    >>> X, _ = make_swiss_roll(n_samples=2500, random_state=0)
    >>> estimator = TwoNNDimension().fit(X)
    >>> round(estimator.dimension_, 1)
    2.0
    >>> estimator.transform(X[:3]).shape
    (3, 1)
    """

    _parameter_constraints: dict = {
        "discard_fraction": [Interval(Real, 0, 1, closed="left")],
        "method": [StrOptions({"linear", "mle"})],
        "metric": [StrOptions({"euclidean", "precomputed"})],
        "n_neighbors": [Interval(Integral, 2, None, closed="left")],
        "device": [DEVICE_CONSTRAINT],
    }

    def __init__(
        self,
        *,
        discard_fraction=0.1,
        method="linear",
        metric="euclidean",
        n_neighbors=20,
        device="auto",
    ):
        self.discard_fraction = discard_fraction
        self.method = method
        self.metric = metric
        self.n_neighbors = n_neighbors
        self.device = device

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Estimate the intrinsic dimension of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data, or a square distance matrix when ``metric="precomputed"``.
        y : None
            Ignored.

        Returns
        -------
        self : TwoNNDimension
            The fitted estimator.
        """
        distances = self._fit_neighbors(X)
        self.mu_ = distances[:, 1] / distances[:, 0]
        self.dimension_ = self._dimension_from_ratios(self.mu_)
        self.dimension_ci_ = twonn_interval(self.mu_, self.discard_fraction)
        self._warn_if_undersampled()
        return self

    def _ranks(self):
        """First and second neighbours; the settings are checked together first."""
        if self.method == "linear" and self.discard_fraction == 0:
            raise ValueError(
                "method='linear' needs discard_fraction > 0: with nothing discarded "
                "the largest ratio has -log(1 - F) = inf. Use method='mle' to keep "
                "every ratio."
            )
        return (1, 2)

    def _dimension_from_ratios(self, mu):
        """The estimate of ``method`` from ratios ``r2 / r1``."""
        if self.method == "linear":
            return twonn_linear_fit(mu, self.discard_fraction)
        return twonn_mle(mu, self.discard_fraction)

    def _std_from_ratios(self, mu, dimension):
        """``d / sqrt(n - 2)``: the spread of the maximum likelihood ``(n - 1) / T``, ``T ~ Gamma(n, d)``."""
        n_kept = int(mu.size * (1 - self.discard_fraction))
        return float(dimension / np.sqrt(max(n_kept - 2, 1)))

    def _local_dimension(self, log_mu):
        """Unbiased TwoNN maximum likelihood ``(k - 1) / sum(log mu)`` of each row (see ``transform``)."""
        with np.errstate(divide="ignore"):
            return (log_mu.shape[1] - 1) / log_mu.sum(axis=1)
