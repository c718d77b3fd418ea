"""Intrinsic dimension as a model-selection metric, and its correlation with accuracy."""

from dataclasses import dataclass

from scipy import stats
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from sklearn_id._activations import extract_activations

__all__ = ["IDAccuracyCorrelation", "id_accuracy_correlation", "make_id_scorer"]


@dataclass(frozen=True)
class IDAccuracyCorrelation:
    """Pearson correlation between IDs and accuracies.

    Attributes
    ----------
    r : float
        Pearson's correlation coefficient.
    pvalue : float
        Two-sided p-value for no correlation.
    ci : tuple of float
        95% confidence interval of ``r`` (Fisher transformation).
    """

    r: float
    pvalue: float
    ci: tuple


def id_accuracy_correlation(ids, accuracies, *, confidence=0.95):
    """Pearson correlation between the IDs of networks and their accuracies.

    Parameters
    ----------
    ids : array-like of shape (n_networks,)
    accuracies : array-like of shape (n_networks,)
        Accuracies or error rates.
    confidence : float, default=0.95

    Returns
    -------
    result : IDAccuracyCorrelation
        With attributes ``r``, ``pvalue`` and ``ci``.

    Examples
    --------
    >>> from sklearn_id import id_accuracy_correlation
    >>> result = id_accuracy_correlation([18.6, 15.2, 13.9, 12.8, 12.4], [10.92, 8.58, 7.13, 6.44, 5.94])
    >>> round(result.r, 3)
    0.996
    """
    result = stats.pearsonr(ids, accuracies)
    interval = result.confidence_interval(confidence_level=confidence)
    return IDAccuracyCorrelation(
        r=float(result.statistic), pvalue=float(result.pvalue), ci=(float(interval.low), float(interval.high))
    )


def make_id_scorer(layer, *, id_estimator=None, greater_is_better=False, batch_size=128, device="auto"):
    """A scorer that measures the ID of a fitted network's representation at ``layer``.

    Use it in ``GridSearchCV`` or ``cross_validate`` beside accuracy: each
    fold's score is the ID of the scored data's activations at ``layer``,
    negated when ``greater_is_better=False`` (like scikit-learn's ``neg_*``
    scorers), so that a lower ID ranks higher.

    Parameters
    ----------
    layer : str
        A name from ``module.named_modules()``, or ``"input"``.
    id_estimator : estimator, default=None
        Sets ``dimension_`` when fitted; None means ``TwoNNDimension()``.
    greater_is_better : bool, default=False
    batch_size : int, default=128
    device : str, default="auto"

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y=None)`` for a torch module, a fitted skorch
        net, or a Pipeline that ends in one (earlier steps transform ``X``).

    Examples
    --------
    >>> import numpy as np, torch
    >>> from sklearn_id import make_id_scorer
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.Tanh())
    >>> scorer = make_id_scorer("1", device="cpu")
    >>> X = np.random.default_rng(0).normal(size=(500, 3)).astype(np.float32)
    >>> bool(-4 < scorer(model, X) < -2)
    True
    """
    from sklearn_id._profile import fitted_dimension
    from sklearn_id._twonn import TwoNNDimension

    sign = 1.0 if greater_is_better else -1.0

    def id_scorer(estimator, X, y=None):
        if isinstance(estimator, Pipeline):
            X = estimator[:-1].transform(X)
            estimator = estimator[-1]
        activations = extract_activations(estimator, [layer], X, batch_size=batch_size, device=device)[0][layer]
        base = TwoNNDimension() if id_estimator is None else id_estimator
        return sign * fitted_dimension(clone(base).fit(activations))

    return id_scorer
