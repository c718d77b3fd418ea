"""Intrinsic dimension as a model-selection metric, and its correlation with accuracy."""

from dataclasses import dataclass
from numbers import Real

import numpy as np
from scipy import stats
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.utils._param_validation import HasMethods, Interval, validate_params
from sklearn.utils.validation import check_array

from sklearn_id._base import fitted_dimension
from sklearn_id._device import preferring_device
from sklearn_id._reader import READ_CONSTRAINTS, ActivationReader, ReadSettings
from sklearn_id._twonn import TwoNNDimension

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


@validate_params(
    {"ids": ["array-like"], "accuracies": ["array-like"], "confidence": [Interval(Real, 0, 1, closed="neither")]},
    prefer_skip_nested_validation=True,
)
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
    ids = check_array(ids, ensure_2d=False, dtype=np.float64, input_name="ids")
    accuracies = check_array(accuracies, ensure_2d=False, dtype=np.float64, input_name="accuracies")
    if ids.ndim != 1 or ids.shape != accuracies.shape or ids.size < 3:
        raise ValueError(
            f"ids and accuracies must be 1-D and of the same length, at least 3 networks; got shapes "
            f"{ids.shape} and {accuracies.shape}."
        )
    for name, values in (("ids", ids), ("accuracies", accuracies)):
        if np.ptp(values) == 0:
            raise ValueError(f"All {name} are equal: a correlation with them is undefined.")
    result = stats.pearsonr(ids, accuracies)
    interval = result.confidence_interval(confidence_level=confidence)
    return IDAccuracyCorrelation(
        r=float(result.statistic), pvalue=float(result.pvalue), ci=(float(interval.low), float(interval.high))
    )


@validate_params(
    {
        "layer": [str],
        "id_estimator": [HasMethods(["fit"]), None],
        "greater_is_better": ["boolean"],
        **READ_CONSTRAINTS,
    },
    prefer_skip_nested_validation=True,
)
def make_id_scorer(
    layer,
    *,
    id_estimator=None,
    greater_is_better=False,
    batch_size=128,
    device="auto",
    progress=False,
    precision="highest",
    pooling="auto",
    tokenizer=None,
    max_length=None,
    truncation=False,
):
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
    progress : bool, default=False
        Show a progress bar over the scored samples.
    precision : {"highest", "tf32", "bf16"}, default="highest"
        The float32 precision of the forward passes, as in
        :class:`LayerActivationTransformer`.
    pooling : str, default="auto"
        How a token sequence output becomes one row per sample, as in
        :class:`LayerActivationTransformer`.
    tokenizer : callable, default=None
        For a network that takes texts directly: turns the scored texts into
        token ids, as in :class:`LayerActivationTransformer`. A Pipeline
        whose earlier steps tokenize (skorch's ``HuggingfacePretrainedTokenizer``)
        needs none.
    max_length : int, default=None
    truncation : bool, default=False

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
    settings = ReadSettings(
        batch_size=batch_size,
        device=device,
        progress=progress,
        precision=precision,
        pooling=pooling,
        tokenizer=tokenizer,
        max_length=max_length,
        truncation=truncation,
    )
    return _IDScorer(layer, id_estimator, -1.0 if not greater_is_better else 1.0, settings)


class _IDScorer:
    """The scorer :func:`make_id_scorer` returns: a picklable callable, so a fitted search that used it can be saved."""

    def __init__(self, layer, id_estimator, sign, settings):
        self.layer = layer
        self.id_estimator = id_estimator
        self.sign = sign
        self.settings = settings

    def __call__(self, estimator, X, y=None):
        if isinstance(estimator, Pipeline):
            X = estimator[:-1].transform(X)
            estimator = estimator[-1]
        reader = ActivationReader(estimator, self.settings)
        activations = reader.read([self.layer], X)[self.layer]
        base = TwoNNDimension() if self.id_estimator is None else self.id_estimator
        # The search runs where the forward passes ran, unless the estimator names its own device.
        with preferring_device(reader.device):
            return self.sign * fitted_dimension(clone(base, safe=False).fit(activations))

    def __repr__(self):
        return f"make_id_scorer({self.layer!r}, greater_is_better={self.sign > 0})"
