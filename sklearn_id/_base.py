"""What the estimators built on neighbour-distance ratios share: input checks, the neighbour search, local pools."""

import numpy as np
from sklearn.utils.validation import check_is_fitted, check_non_negative, validate_data

from sklearn_id._neighbors import distinct_neighbor_distances, kneighbors, resolve_device


class NeighborRatioMixin:
    """Fit-time neighbours and transform-time pools for ``TwoNNDimension`` and ``GRIDEDimension``.

    The host class has the parameters ``metric``, ``n_neighbors`` and
    ``device``, sets ``mu_`` in ``fit``, and defines ``_local_dimension``,
    its estimate from each row of an array of log-ratios.
    """

    def _fit_neighbors(self, X, ranks):
        """Validate ``X``; return each distinct point's distances to its neighbours of ``ranks``."""
        X = self._validate_input(X, reset=True)
        self.device_ = "cpu" if self.metric == "precomputed" else resolve_device(self.device)
        distances, distinct = distinct_neighbor_distances(X, ranks, metric=self.metric, device=self.device_)
        self.n_duplicates_ = X.shape[0] - distinct.size
        self._distinct_index = distinct
        if self.metric == "euclidean":
            self._fit_X = X if distinct.size == X.shape[0] else X[distinct]
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
        if self.metric == "precomputed":
            indices = np.argpartition(X[:, self._distinct_index], k - 1, axis=1)[:, :k]
        else:
            _, indices = kneighbors(X, k, Y=self._fit_X, device=self.device_)
        return self._local_dimension(np.log(self.mu_)[indices])[:, None]

    def _validate_input(self, X, *, reset):
        X = validate_data(
            self, X, dtype=[np.float64, np.float32], ensure_min_samples=3 if reset else 1, reset=reset
        )
        if self.metric == "precomputed":
            if reset and X.shape[0] != X.shape[1]:
                raise ValueError(
                    f"metric='precomputed' needs a square distance matrix, got shape {X.shape}; "
                    "pass the pairwise distances of the samples, or use metric='euclidean'."
                )
            check_non_negative(X, f"{type(self).__name__}(metric='precomputed')")
        return X

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.pairwise = self.metric == "precomputed"
        tags.input_tags.positive_only = self.metric == "precomputed"
        return tags
