"""Linear intrinsic dimension: components needed to reach a fraction of the variance."""

import warnings
from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.decomposition import PCA
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted, validate_data

from sklearn_id._base import UndersampledWarning
from sklearn_id._device import float32_precision, is_tensor
from sklearn_id._warnings import find_stack_level

__all__ = ["PCADimension", "StandardisedSpectrum", "standardised_spectrum"]


def _components_reaching(explained_variance_ratio, threshold):
    """Smallest number of leading components whose cumulative ratio reaches ``threshold``."""
    cumulative = np.cumsum(explained_variance_ratio)
    # Rounding leaves the sum of the ratios a hair off the exact value (1.0 for
    # the full spectrum): a tolerance of the ratios' own precision keeps
    # ``threshold=1.0`` at the rank, for float32 spectra as for float64.
    tolerance = max(1e-10, 16 * np.finfo(explained_variance_ratio.dtype).eps)
    count = int(np.searchsorted(cumulative, threshold - tolerance, side="left")) + 1
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
        # A power of two brings the data to unit size exactly, so that variances
        # neither underflow (1e-200) nor overflow (1e200); ratios and axes do not change.
        unit = 2.0 ** -np.frexp(np.abs(X).max())[1]
        pca = PCA().fit(X * X.dtype.type(unit))
        self.explained_variance_ratio_ = pca.explained_variance_ratio_
        self.dimension_ = self.dimension_from_spectrum(pca.explained_variance_ratio_)
        self.components_ = pca.components_[: self.dimension_]
        self.mean_ = pca.mean_ / X.dtype.type(unit)
        if self.dimension_ >= (X.shape[0] - 1) / 2:
            warnings.warn(
                f"PCADimension counted {self.dimension_} components from {X.shape[0]} samples: at least half "
                f"of the {X.shape[0] - 1} components that {X.shape[0]} samples allow, so the count reflects the "
                "number of samples more than the data. Use more samples, or read it as a bound.",
                UndersampledWarning,
                stacklevel=find_stack_level(),
            )
        return self

    def dimension_from_spectrum(self, explained_variance_ratio):
        """The count of leading components whose cumulative ratio reaches ``threshold``.

        The seam that :class:`~sklearn_id.DepthProfile` uses for a layer read
        in pieces, whose spectrum comes from an accumulated Gram matrix
        (:class:`StandardisedSpectrum`) rather than from ``fit``. The
        estimator is not fitted by it.

        Parameters
        ----------
        explained_variance_ratio : array-like of shape (n_components,)
            The spectrum's ratios, largest first, summing to 1.

        Returns
        -------
        dimension : int

        Examples
        --------
        >>> from sklearn_id import PCADimension
        >>> PCADimension(threshold=0.9).dimension_from_spectrum([0.6, 0.25, 0.1, 0.05])
        3
        """
        self._validate_params()
        ratios = np.asarray(explained_variance_ratio)
        ratios = ratios if ratios.dtype in (np.float32, np.float64) else ratios.astype(np.float64)
        return _components_reaching(ratios, self.threshold)

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


def standardised_spectrum(X):
    """PCA spectrum of the standardised features of ``X``: the seed paper's PCA-ID recipe without the SVD.

    The features are standardised as :class:`~sklearn.preprocessing.StandardScaler`
    does (unit variance, constant features left at zero); the explained
    variance ratios are the eigenvalues of the standardised data's Gram
    matrix (``n_samples <= n_features``) or covariance matrix (otherwise),
    standardised in float64 block by block, each block's product in the
    input's precision (float32 products of 16 MB blocks are within about
    1e-8 of the largest eigenvalue), summed in float64. They equal those of
    ``make_pipeline(StandardScaler(), PCA())`` (the trailing zero of the
    centred Gram matrix aside), at a fraction of the cost of an SVD when the
    layer is wide.

    Parameters
    ----------
    X : ndarray or torch tensor of shape (n_samples, n_features)
        A tensor is processed by torch on its own device; only the
        eigenvalues leave it.

    Returns
    -------
    explained_variance_ratio : ndarray of shape (min(n_samples, n_features),)
        Largest first.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.decomposition import PCA
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sklearn_id._pca import standardised_spectrum
    >>> X = np.random.default_rng(0).normal(size=(50, 200)).cumsum(axis=1)
    >>> expected = PCA().fit(StandardScaler().fit_transform(X)).explained_variance_ratio_
    >>> bool(np.allclose(standardised_spectrum(X)[:10], expected[:10]))
    True
    """
    if is_tensor(X):
        return _standardised_spectrum_on_device(X)
    n_samples, n_features = X.shape
    if n_samples <= n_features:
        accumulator = StandardisedSpectrum(n_samples)
        accumulator.add(X)
        return accumulator.explained_variance_ratio()
    mean = X.mean(axis=0, dtype=np.float64)
    scale = _scale(X.std(axis=0, dtype=np.float64))
    covariance = np.zeros((n_features, n_features))
    step = max(1, _BLOCK_ENTRIES // n_features)
    for start in range(0, n_samples, step):
        standardised = ((X[start : start + step] - mean) / scale).astype(X.dtype, copy=False)
        covariance += standardised.T @ standardised
    return _ratios(np.linalg.eigvalsh(covariance))


def _standardised_spectrum_on_device(X):
    """:func:`standardised_spectrum` of a tensor, with torch on its device, by the same blocks."""
    import torch

    n_samples, n_features = X.shape
    wide = n_samples <= n_features
    step = max(1, _BLOCK_ENTRIES // (n_samples if wide else n_features))
    with float32_precision("highest"), torch.inference_mode():
        if wide:
            gram = torch.zeros((n_samples, n_samples), dtype=torch.float64, device=X.device)
            for start in range(0, n_features, step):
                block = X[:, start : start + step].double()
                block -= block.mean(0)
                block /= _scale_on_device(block.std(0, correction=0))
                block = block.to(X.dtype)
                gram += (block @ block.T).double()
        else:

            def rows():
                return (X[start : start + step].double() for start in range(0, n_samples, step))

            mean = sum(block.sum(0) for block in rows()) / n_samples
            variance = sum(((block - mean) ** 2).sum(0) for block in rows()) / n_samples
            scale = _scale_on_device(variance.sqrt())
            gram = torch.zeros((n_features, n_features), dtype=torch.float64, device=X.device)
            for block in rows():
                standardised = ((block - mean) / scale).to(X.dtype)
                gram += (standardised.T @ standardised).double()
        eigenvalues = torch.linalg.eigvalsh(gram).cpu().numpy()
    return _ratios(eigenvalues)


def _scale_on_device(std):
    std[std == 0] = 1.0
    return std


# Entries of a float64 block of standardised data: 16 MB.
_BLOCK_ENTRIES = 1 << 21


def _scale(std):
    """StandardScaler's convention: unit variance (ddof=0), constant features unscaled."""
    std[std == 0] = 1.0
    return std


def _ratios(eigenvalues):
    """Explained variance ratios, largest first, from the eigenvalues of a Gram or covariance matrix."""
    eigenvalues = np.clip(eigenvalues[::-1], 0.0, None)
    total = eigenvalues.sum()
    if total == 0:
        raise ValueError(
            "All samples are identical: the data have no variance, so no "
            "principal component explains any. Check the input data."
        )
    return eigenvalues / total


class StandardisedSpectrum:
    """PCA spectrum of standardised features that arrive in slices.

    The seed paper's PCA-ID standardises the features before PCA. The
    spectrum of the standardised data is that of their Gram matrix, a sum
    over features, so each slice adds its share in float64 and the features
    never need to be held whole. Memory: one ``n_samples`` squared float64
    matrix.

    Parameters
    ----------
    n_samples : int
    """

    def __init__(self, n_samples):
        self.gram = np.zeros((n_samples, n_samples))

    def add(self, piece):
        """Add the share of a (n_samples, n_piece_features) slice, its products in the slice's precision."""
        step = max(1, _BLOCK_ENTRIES // max(1, piece.shape[0]))
        for start in range(0, piece.shape[1], step):
            block = piece[:, start : start + step].astype(np.float64)
            block -= block.mean(axis=0)
            block /= _scale(block.std(axis=0))
            block = block.astype(piece.dtype, copy=False)
            self.gram += block @ block.T

    def explained_variance_ratio(self):
        """The ratios, largest first, from the Gram matrix's eigenvalues."""
        return _ratios(np.linalg.eigvalsh(self.gram))
