"""The persistent-homology dimension: how the length of a minimum spanning tree grows with the number of points."""

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import validate_data

from sklearn_id._base import UndersampledWarning, undersampled
from sklearn_id._device import DEVICE_CONSTRAINT, resolve_device
from sklearn_id._neighbors import distance_matrix, distinct_points, search_points, searched_on
from sklearn_id._warnings import find_stack_level

__all__ = ["PHDimension", "spanning_tree_length", "spanning_tree_lengths"]


# Entries of distance matrices held at once: one matrix of the distinct points when it fits, else the subsets'.
_MATRIX_ENTRIES = 1 << 24


def spanning_tree_length(distances, alpha=1.0):
    """``E_alpha = sum |e|^alpha`` over the edges ``e`` of the minimum spanning tree of a distance matrix.

    Prim's algorithm on the dense matrix, one vectorised step per point. The
    tree does not depend on ``alpha > 0`` (a monotone map of the weights),
    and an edge of length zero counts as an edge, unlike in scipy's sparse
    ``minimum_spanning_tree``, which reads a zero as no edge.

    Parameters
    ----------
    distances : ndarray of shape (n, n)
        Symmetric, zero on the diagonal.
    alpha : float, default=1.0

    Returns
    -------
    length : float

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.spatial.distance import cdist
    >>> from sklearn_id._phd import spanning_tree_length
    >>> points = np.array([[0.0], [1.0], [3.0], [7.0]])
    >>> spanning_tree_length(cdist(points, points))
    7.0
    """
    return float(spanning_tree_lengths(np.asarray(distances)[None], alpha)[0])


def spanning_tree_lengths(distances, alpha=1.0):
    """:func:`spanning_tree_length` of each matrix of a stack of shape (n_trees, n, n), the trees grown together."""
    n_trees, n_points = distances.shape[:2]
    trees = np.arange(n_trees)
    best = distances[:, 0, :].astype(np.float64, copy=True)
    in_tree = np.zeros((n_trees, n_points), dtype=bool)
    in_tree[:, 0] = True
    best[:, 0] = np.inf
    edges = np.empty((n_trees, max(n_points - 1, 0)))
    for step in range(n_points - 1):
        nearest = np.argmin(best, axis=1)
        edges[:, step] = best[trees, nearest]
        in_tree[trees, nearest] = True
        np.minimum(best, distances[trees, nearest], out=best)
        best[in_tree] = np.inf
    return np.sum(edges**alpha, axis=1)


def _tree_lengths(X, distinct, subsets, whole, alpha, device):
    """``E_alpha`` of each subset (positions in ``distinct``), the trees of as many subsets grown together as fit."""
    size = subsets[0].size
    per_stack = max(1, _MATRIX_ENTRIES // size**2)
    lengths = []
    for first in range(0, len(subsets), per_stack):
        chunk = subsets[first : first + per_stack]
        if whole is not None:
            stack = np.stack([whole[np.ix_(subset, subset)] for subset in chunk])
        else:
            stack = np.stack([distance_matrix(X, distinct[subset], device=device) for subset in chunk])
        lengths.extend(spanning_tree_lengths(stack, alpha))
    return lengths


class PHDimension(BaseEstimator):
    """The persistent-homology dimension (PHD): the growth of a minimum spanning tree's length.

    For ``n`` points drawn from a ``d``-dimensional density, the total
    ``alpha``-weighted length ``E_alpha(n)`` of their minimum spanning tree
    grows as ``n^((d - alpha) / d)`` (Steele 1988; the 0-dimensional
    persistent homology of Schweinhart 2021). The fit draws random subsets of
    ``n_sizes`` sizes from ``n_min`` up (``n_min + i * step``, ``step =
    (n_max - n_min) // n_sizes``), takes the median ``E_alpha`` over
    ``n_repeats`` subsets of each size (3 for sizes above half the points),
    fits the slope ``m`` of ``log E`` against ``log n`` by least squares, and
    returns ``d = alpha / (1 - m)``: the recipe of Tulchinskii et al. (2023,
    GPTID) with its ``alpha`` kept (its code returns ``1 / (1 - m)``, right
    only for ``alpha = 1``). Exact duplicate rows are collapsed first (a
    zero-length edge would shorten the tree), with a warning that gives their
    number. Distances are float64, from one matrix of the distinct points
    when it has at most ``2**24`` entries (4,096 points), else one per
    subset; the trees of a size's subsets are grown together.

    Parameters
    ----------
    alpha : float, default=1.0
        Weight exponent, ``0 < alpha``; every ``alpha`` gives the same
        dimension in expectation (smaller ``alpha`` is less noisy for large
        ``d``).
    n_min : int, default=40
        The smallest subset.
    n_max : int or None, default=None
        Sizes stay below it; None: the number of distinct points.
    n_sizes : int, default=7
    n_repeats : int, default=9
        Subsets per size below half of the points.
    random_state : int, RandomState instance or None, default=None
    device : str or torch.device, default="auto"
        Where the subsets' distance matrices are computed.

    Attributes
    ----------
    dimension_ : float
    sizes_ : ndarray of int
        The subset sizes.
    lengths_ : ndarray of float
        The median ``E_alpha`` at each size.
    slope_, intercept_ : float
        The least-squares line ``log E = slope * log n + intercept``.
    n_duplicates_ : int
    n_features_in_ : int

    References
    ----------
    E. Tulchinskii, K. Kuznetsov, L. Kushnareva, D. Cherniavskii, S. Nikolenko,
    E. Burnaev, S. Barannikov and I. Piontkovskaya, "Intrinsic dimension
    estimation for robust detection of AI-generated texts", NeurIPS 2023.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_id import PHDimension
    >>> X = np.random.default_rng(0).uniform(size=(1000, 2)) @ np.random.default_rng(1).normal(size=(2, 6))
    >>> round(PHDimension(random_state=0).fit(X).dimension_)
    2
    """

    _parameter_constraints: dict = {
        "alpha": [Interval(Real, 0, None, closed="neither")],
        "n_min": [Interval(Integral, 3, None, closed="left")],
        "n_max": [Interval(Integral, 4, None, closed="left"), None],
        "n_sizes": [Interval(Integral, 2, None, closed="left")],
        "n_repeats": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "device": [DEVICE_CONSTRAINT],
    }

    def __init__(self, *, alpha=1.0, n_min=40, n_max=None, n_sizes=7, n_repeats=9, random_state=None, device="auto"):
        self.alpha = alpha
        self.n_min = n_min
        self.n_max = n_max
        self.n_sizes = n_sizes
        self.n_repeats = n_repeats
        self.random_state = random_state
        self.device = device

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Estimate the PH dimension of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : None
            Ignored.

        Returns
        -------
        self : PHDimension
        """
        device = searched_on("euclidean", resolve_device(self.device))
        X = search_points(validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2), device)
        distinct = distinct_points(X)  # the duplicate policy: a zero-length edge would shorten the tree
        self.n_duplicates_ = X.shape[0] - distinct.size
        self.sizes_ = self._sizes(distinct.size)
        # One matrix of every distinct point when it fits; each subset's matrix is then read off it.
        whole = distance_matrix(X, distinct, device=device) if distinct.size**2 <= _MATRIX_ENTRIES else None
        rng = check_random_state(self.random_state)
        lengths = []
        for size in self.sizes_:
            repeats = min(3, self.n_repeats) if 2 * size >= distinct.size else self.n_repeats
            subsets = [np.sort(rng.choice(distinct.size, size, replace=False)) for _ in range(repeats)]
            lengths.append(np.median(_tree_lengths(X, distinct, subsets, whole, self.alpha, device)))
        self.lengths_ = np.asarray(lengths)
        self.slope_, self.intercept_ = np.polyfit(np.log(self.sizes_), np.log(self.lengths_), 1)
        if not self.slope_ < 1:
            raise ValueError(
                f"The spanning tree's length grows as n^{self.slope_:.3g}, not slower than n: the points look "
                "zero-dimensional or too few; check the data, or raise n_min."
            )
        self.dimension_ = float(self.alpha / (1.0 - self.slope_))
        if undersampled(self.dimension_, distinct.size):
            warnings.warn(
                f"PHDimension estimated {self.dimension_:.3g} from {distinct.size} points, but resolving a "
                f"dimension d takes at least 2**d points: read it as a lower bound, or use more points.",
                UndersampledWarning,
                stacklevel=find_stack_level(),
            )
        return self

    def _sizes(self, n_points):
        """``n_min + i * step`` for ``i < n_sizes``, below ``n_max`` (default: the distinct points)."""
        n_max = n_points if self.n_max is None else min(self.n_max, n_points)
        step = (n_max - self.n_min) // self.n_sizes
        if step < 1:
            raise ValueError(
                f"PHDimension needs more than n_min + n_sizes = {self.n_min + self.n_sizes} distinct points "
                f"below n_max, got {n_max}: lower n_min or n_sizes, or add points."
            )
        return self.n_min + step * np.arange(self.n_sizes)
