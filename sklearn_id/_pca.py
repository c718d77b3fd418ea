"""Linear intrinsic dimension: components needed to reach a fraction of the variance."""

from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.decomposition import PCA
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["PCADimension"]

_RATIO_TOLERANCE = 1e-10


def _components_reaching(explained_variance_ratio, threshold):
    """Smallest number of leading components whose cumulative ratio reaches ``threshold``."""
    cumulative = np.cumsum(explained_variance_ratio)
    # Rounding leaves the sum of the ratios a hair off the exact value (1.0 for
    # the full spectrum): a relative tolerance keeps ``threshold=1.0`` at the rank.
    count = int(np.searchsorted(cumulative, threshold - _RATIO_TOLERANCE, side="left")) + 1
    return min(count, explained_variance_ratio.size)


class PCADimension(TransformerMixin, BaseEstimator):
    """Linear intrinsic dimension: the number of principal components that explain ``threshold`` of the variance.

    A thin layer over :class:`sklearn.decomposition.PCA`. ``dimension_`` is a
    count: the seed paper's code reports the 0-based index of that component,
    one less. Standardise the features first (``StandardScaler``) to follow
    the paper's PCA-ID recipe.

    Parameters
    ----------
    threshold : float, default=0.9
        Fraction of the total variance, in (0, 1], that the kept components
        must reach.

    Attributes
    ----------
    dimension_ : int
        Smallest number of components whose cumulative explained variance
        ratio reaches ``threshold``.
    explained_variance_ratio_ : ndarray of shape (n_components_total,)
        Explained variance ratio of every component, largest first (the whole
        spectrum, not only the kept part).
    components_ : ndarray of shape (n_kept, n_features)
        The kept principal axes (``n_kept = dimension_``).
    mean_ : ndarray of shape (n_features,)
        Per-feature mean of the training data.
    n_features_in_ : int
        Number of features seen during fit.

    See Also
    --------
    TwoNNDimension : Nonlinear dimension from neighbour distances.
    sklearn.decomposition.PCA : The decomposition used underneath.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_id import PCADimension
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(500, 3)) @ rng.normal(size=(3, 10))
    >>> estimator = PCADimension(threshold=0.999).fit(X)
    >>> estimator.dimension_
    3
    >>> estimator.transform(X).shape
    (500, 3)
    """

    _parameter_constraints: dict = {
        "threshold": [Interval(Real, 0, 1, closed="right")],
    }

    def __init__(self, threshold=0.9):
        self.threshold = threshold

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the principal axes of ``X`` and count those that reach ``threshold``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : None
            Ignored.

        Returns
        -------
        self : PCADimension
            The fitted estimator.
        """
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2)
        if not np.ptp(X, axis=0).any():
            raise ValueError(
                "All samples are identical: the data have no variance, so no "
                "principal component explains any. Check the input data."
            )
        pca = PCA().fit(X)
        self.explained_variance_ratio_ = pca.explained_variance_ratio_
        self.dimension_ = _components_reaching(pca.explained_variance_ratio_, self.threshold)
        self.components_ = pca.components_[: self.dimension_]
        self.mean_ = pca.mean_
        return self

    def transform(self, X):
        """Project ``X`` on the ``dimension_`` leading principal axes.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_kept)
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return (X - self.mean_) @ self.components_.T

    def inverse_transform(self, X):
        """Map projected samples back to the original feature space.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_kept)

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features)
        """
        check_is_fitted(self)
        return np.asarray(X) @ self.components_ + self.mean_

    def get_feature_names_out(self, input_features=None):
        """Output feature names ``pcadimension0``, ``pcadimension1``, ...

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Ignored; present for API consistency.

        Returns
        -------
        feature_names_out : ndarray of str
        """
        check_is_fitted(self)
        return np.asarray([f"pcadimension{i}" for i in range(self.dimension_)], dtype=object)
