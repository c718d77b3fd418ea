"""GRIDE intrinsic dimension (Denti et al. 2022) from ratios of distant neighbour distances."""

from numbers import Integral

import numpy as np
from scipy.optimize import elementwise
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context, clone
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

from sklearn_id._base import NeighborRatioMixin, check_log_ratios
from sklearn_id._device import DEVICE_CONSTRAINT

__all__ = ["GRIDEDimension", "gride_mle", "gride_mles", "gride_roots", "x_over_one_minus_exp"]


def x_over_one_minus_exp(x):
    """``x / (1 - exp(-x))`` for ``x >= 0``, with its limit 1 at 0."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(x > 0, x / -np.expm1(-x), 1.0)


def gride_roots(log_mu, n1, n2, counts=None):
    """Maximum-likelihood GRIDE dimension of each row of ``log_mu`` (inf where all are 0).

    The score (derivative of the log-likelihood in ``d``) of a row reads,
    with ``x = d log mu`` and ``k = n2 - n1``,
    ``((N - 1) + sum (k - 1) x / (1 - e^-x)) / d - sum (n2 - 1) log mu``,
    and decreases from ``+inf`` to ``-sum n1 log mu``: one root. Where every
    ``k`` is 1 the root is ``lo = (N - 1) / sum (n2 - 1) log mu``. Otherwise it
    lies in a closed-form bracket: the score is positive at ``lo`` and, since
    ``x / (1 - e^-x) <= 1 + x``, negative beyond
    ``hi = ((N - 1) + sum (k - 1)) / sum n1 log mu``. scipy's elementwise
    bracketing solver then finds every row's root to machine precision, all
    rows at once.

    Parameters
    ----------
    log_mu : ndarray of shape (..., n_ratios)
    n1, n2 : int, or ndarray of ``log_mu``'s shape
        The ranks, one pair for all ratios or one per ratio (ABIDE's).
    counts : ndarray, default=None
        Each row's number of ratios, its first entries (2-D ``log_mu`` only);
        the rest is padding (clouds of different sizes). None: every entry.
    """
    shape, n_ratios = log_mu.shape[:-1], log_mu.shape[-1]
    log_mu = log_mu.reshape(-1, n_ratios)
    counts = np.full(log_mu.shape[0], n_ratios) if counts is None else np.asarray(counts)
    real = np.arange(n_ratios) < counts[:, None]
    n1 = np.broadcast_to(n1, shape + (n_ratios,)).reshape(-1, n_ratios)
    n2 = np.broadcast_to(n2, shape + (n_ratios,)).reshape(-1, n_ratios)
    weight = np.where(real, n2 - n1 - 1, 0)
    total = (np.where(real, n2 - 1, 0) * log_mu).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        low = (counts - 1) / total
        high = (counts - 1 + weight.sum(axis=-1)) / (np.where(real, n1, 0) * log_mu).sum(axis=-1)
    if not weight.any():
        return low.reshape(shape)

    def score(d, rows):
        h = x_over_one_minus_exp(d[:, None] * log_mu[rows])
        return (counts[rows] - 1 + (weight[rows] * h).sum(axis=-1)) / d - total[rows]

    dimension = np.full(total.shape, np.inf)
    solvable = np.flatnonzero(total > 0)
    if solvable.size:
        dimension[solvable] = elementwise.find_root(score, (low[solvable], high[solvable]), args=(solvable,)).x
    return dimension.reshape(shape)


def _standard_deviation(dimension, log_mu, n1, n2):
    """``1 / sqrt(I)``, with ``I`` the observed Fisher information at the maximum.

    ``I = ((N - 1) + (k - 1) sum x^2 e^-x / (1 - e^-x)^2) / d^2``, ``x = d log mu``.
    """
    x = dimension * log_mu
    h = x_over_one_minus_exp(x)
    information = (log_mu.size - 1 + (n2 - n1 - 1) * np.sum(h * h * np.exp(-x))) / dimension**2
    return float(information**-0.5)


@validate_params(
    {
        "mu": ["array-like"],
        "n1": [Interval(Integral, 1, None, closed="left")],
        "n2": [Interval(Integral, 2, None, closed="left")],
    },
    prefer_skip_nested_validation=True,
)
def gride_mle(mu, n1=1, n2=2):
    """Maximum-likelihood GRIDE dimension from the ratios ``mu = r_n2 / r_n1``.

    Maximises ``(N - 1) log d + sum log f(mu_i)`` over ``d``, where

    ``f(mu) = d (mu^d - 1)^(n2 - n1 - 1) / (B(n2 - n1, n1) mu^((n2 - 1) d + 1))``

    is the density of the ratio of the ``n2``-th to the ``n1``-th neighbour
    distance under a locally uniform density (Denti et al. 2022). ``N - 1``
    in place of ``N`` is the bias correction that makes ``n1=1, n2=2`` the
    unbiased TwoNN estimate ``(N - 1) / sum(log mu)``.

    Parameters
    ----------
    mu : array-like of shape (n_points,)
        Ratios of the ``n2``-th to the ``n1``-th neighbour distance, at least 1.
    n1, n2 : int, default=1, 2
        Neighbour ranks, ``1 <= n1 < n2``.

    Returns
    -------
    dimension : float

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_id import gride_mle
    >>> rng = np.random.default_rng(0)
    >>> mu = rng.pareto(3.0, size=10_000) + 1   # TwoNN law of d = 3
    >>> bool(np.isclose(gride_mle(mu), (mu.size - 1) / np.log(mu).sum(), rtol=1e-12))
    True
    """
    if not 1 <= n1 < n2:
        raise ValueError(f"GRIDE needs 1 <= n1 < n2, got n1={n1} and n2={n2}.")
    dimension = float(gride_roots(check_log_ratios(mu), n1, n2))
    if not np.isfinite(dimension):
        raise _lattice_error(n1, n2)
    return dimension


def _lattice_error(n1, n2):
    return ValueError(
        f"Every ratio r_{n2} / r_{n1} equals 1 (the neighbours are equidistant, "
        "as on a regular grid): GRIDE cannot estimate a dimension from these "
        "data; use larger neighbour ranks."
    )


def gride_mles(ratios, n1=1, n2=2):
    """:func:`gride_mle` of each of many arrays of ratios, solved together; a ``ValueError`` where none.

    The arrays, of any lengths, are padded into one matrix whose rows scipy's
    elementwise solver takes at once: many small clouds cost one solve.
    """
    outcomes, logs = [], {}
    for index, mu in enumerate(ratios):
        try:
            logs[index] = check_log_ratios(mu)
            outcomes.append(None)
        except ValueError as error:
            outcomes.append(error)
    if logs:
        counts = np.array([log_mu.size for log_mu in logs.values()])
        padded = np.zeros((counts.size, counts.max()))
        for row, log_mu in enumerate(logs.values()):
            padded[row, : log_mu.size] = log_mu
        for index, dimension in zip(logs, gride_roots(padded, n1, n2, counts)):
            outcomes[index] = float(dimension) if np.isfinite(dimension) else _lattice_error(n1, n2)
    return outcomes


class GRIDEDimension(NeighborRatioMixin, TransformerMixin, BaseEstimator):
    """Intrinsic dimension from the ratio of the ``n2``-th to the ``n1``-th neighbour distance.

    GRIDE (Denti, Doimo, Laio and Mira 2022) generalises TwoNN: with
    ``n1=1, n2=2`` it is the unbiased TwoNN maximum likelihood; larger ranks
    probe the data at a larger scale, above the noise, without discarding
    points. Distances are exact (float64) and exact duplicate rows are
    collapsed first, with a warning, as in :class:`TwoNNDimension`.

    Parameters
    ----------
    n1 : int, default=1
        Rank of the nearer neighbour, at least 1.
    n2 : int, default=2
        Rank of the farther neighbour, larger than ``n1`` and smaller than the
        number of distinct points.
    metric : {"euclidean", "precomputed"}, default="euclidean"
        ``"precomputed"`` takes a square distance matrix in ``fit`` and the
        distances from new points to the fitted ones in ``transform``.
    n_neighbors : int, default=20
        Fitted points around each sample that ``transform`` pools into a
        local estimate.
    device : str or torch.device, default="auto"
        Where distances are computed: ``"cpu"``, ``"cuda"``, ``"cuda:N"``, a
        ``torch.device``, or ``"auto"`` (CUDA when present).

    Attributes
    ----------
    dimension_ : float
        The maximum-likelihood dimension (see :func:`gride_mle`), found to
        machine precision.
    dimension_std_ : float
        Its standard deviation from the observed Fisher information.
    scale_ : float
        Mean distance to the ``n2``-th neighbour: the scale probed.
    mu_ : ndarray of shape (n_distinct,)
        Ratio ``r_n2 / r_n1`` of each distinct fitted point, in input order.
    n_duplicates_ : int
        Number of exact duplicate rows collapsed before estimation.
    n_features_in_ : int
        Number of features seen during fit.
    device_ : str
        The device the distances were computed on.

    See Also
    --------
    TwoNNDimension : The ``n1=1, n2=2`` case, with the linear fit of Facco et al.
    id_scaling : GRIDE at ranks (1, 2), (2, 4), ... from one neighbour search.

    References
    ----------
    F. Denti, D. Doimo, A. Laio and A. Mira, "The generalized ratios intrinsic
    dimension estimator", Scientific Reports 12, 20005 (2022).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_id import GRIDEDimension
    >>> from sklearn_id import TwoNNDimension
    >>> rng = np.random.default_rng(0)
    >>> plane = np.c_[rng.uniform(size=(4096, 2)), np.zeros((4096, 8))]
    >>> noisy = plane + 0.002 * rng.normal(size=plane.shape)
    >>> round(TwoNNDimension().fit(noisy).dimension_, 1)   # the noise, seen at short range
    3.8
    >>> round(GRIDEDimension(n1=16, n2=32).fit(noisy).dimension_, 1)
    2.0
    """

    _parameter_constraints: dict = {
        "n1": [Interval(Integral, 1, None, closed="left")],
        "n2": [Interval(Integral, 2, None, closed="left")],
        "metric": [StrOptions({"euclidean", "precomputed"})],
        "n_neighbors": [Interval(Integral, 2, None, closed="left")],
        "device": [DEVICE_CONSTRAINT],
    }

    def __init__(self, *, n1=1, n2=2, metric="euclidean", n_neighbors=20, device="auto"):
        self.n1 = n1
        self.n2 = n2
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
        self : GRIDEDimension
            The fitted estimator.
        """
        near, far = self._fit_neighbors(X).T
        self.mu_ = far / near
        self.dimension_ = self._dimension_from_ratios(self.mu_)
        self.dimension_std_ = self._std_from_ratios(self.mu_, self.dimension_)
        self.scale_ = float(far.mean())
        self._warn_if_undersampled()
        return self

    def at_ranks(self, n1, n2):
        """A clone that reads the neighbours of ranks ``n1`` and ``n2``: the seam of ``id_scaling``'s rank doubling.

        Examples
        --------
        >>> from sklearn_id import GRIDEDimension
        >>> GRIDEDimension().at_ranks(4, 8).neighbor_ranks
        (4, 8)
        """
        return clone(self).set_params(n1=n1, n2=n2)

    def _ranks(self):
        if self.n1 >= self.n2:
            raise ValueError(
                f"GRIDE needs n1 < n2, got n1={self.n1} and n2={self.n2}; the usual choice is n2 = 2 * n1."
            )
        return (self.n1, self.n2)

    def _dimension_from_ratios(self, mu):
        return gride_mle(mu, self.n1, self.n2)

    def _dimensions_from_ratio_lists(self, ratios):
        return gride_mles(ratios, self.n1, self.n2)

    def _std_from_ratios(self, mu, dimension):
        return _standard_deviation(dimension, check_log_ratios(mu), self.n1, self.n2)

    def _local_dimension(self, log_mu):
        """GRIDE maximum likelihood of each row of log-ratios (see ``transform``)."""
        return gride_roots(log_mu, self.n1, self.n2)
