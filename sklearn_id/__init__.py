"""Intrinsic dimension of data and of neural-network representations, as scikit-learn estimators."""

from sklearn_id._activations import LayerActivationTransformer, list_layers
from sklearn_id._neighbors import DuplicatePointsWarning
from sklearn_id._pca import PCADimension
from sklearn_id._twonn import TwoNNDimension, twonn_interval, twonn_linear_fit, twonn_mle

__all__ = [
    "DuplicatePointsWarning",
    "LayerActivationTransformer",
    "PCADimension",
    "TwoNNDimension",
    "list_layers",
    "twonn_interval",
    "twonn_linear_fit",
    "twonn_mle",
]

__version__ = "0.1.0.dev0"
