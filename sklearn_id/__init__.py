"""Intrinsic dimension of data and of neural-network representations, as scikit-learn estimators."""

from sklearn_id._abide import ABIDEDimension, SaturatedNeighborhoodWarning
from sklearn_id._activations import LayerActivationTransformer, list_layers
from sklearn_id._base import UndersampledWarning
from sklearn_id._compare import information_imbalance, label_overlap, linear_cka, neighborhood_overlap
from sklearn_id._comparisons import InformationImbalance, LabelOverlap, LinearCKA, NeighborhoodOverlap
from sklearn_id._gride import GRIDEDimension, gride_mle
from sklearn_id._neighbors import DuplicatePointsWarning
from sklearn_id._pca import PCADimension
from sklearn_id._per_sample import cloud_dimensions
from sklearn_id._phd import PHDimension
from sklearn_id._profile import DepthProfile, UndefinedLayerWarning
from sklearn_id._scaling import id_scaling
from sklearn_id._scoring import IDAccuracyCorrelation, id_accuracy_correlation, make_id_scorer
from sklearn_id._sweep import SweepError, profile_sweep
from sklearn_id._twonn import TwoNNDimension, twonn_interval, twonn_linear_fit, twonn_mle

__all__ = [
    "ABIDEDimension",
    "DepthProfile",
    "DuplicatePointsWarning",
    "GRIDEDimension",
    "IDAccuracyCorrelation",
    "InformationImbalance",
    "LabelOverlap",
    "LayerActivationTransformer",
    "LinearCKA",
    "NeighborhoodOverlap",
    "PCADimension",
    "PHDimension",
    "SaturatedNeighborhoodWarning",
    "SweepError",
    "TwoNNDimension",
    "UndefinedLayerWarning",
    "UndersampledWarning",
    "cloud_dimensions",
    "gride_mle",
    "id_accuracy_correlation",
    "id_scaling",
    "information_imbalance",
    "label_overlap",
    "linear_cka",
    "list_layers",
    "make_id_scorer",
    "neighborhood_overlap",
    "profile_sweep",
    "twonn_interval",
    "twonn_linear_fit",
    "twonn_mle",
]

__version__ = "0.1.0.dev0"
