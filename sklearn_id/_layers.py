"""Which layers a depth profile visits, and how their activations are read under a memory budget."""

import math

import numpy as np

from sklearn_id._neighbors import PiecewiseDistances
from sklearn_id._pca import StandardisedSpectrum

__all__ = ["SplitLayer", "auto_checkpoints", "minimum_samples", "plan_passes"]

_POOLING = ("MaxPool", "AvgPool", "AdaptiveMaxPool", "AdaptiveAvgPool", "LPPool")
_RESIDUAL_BLOCKS = ("BasicBlock", "Bottleneck")


def auto_checkpoints(module, table):
    """The seed paper's checkpoints, in forward order.

    The input, every pooling layer, every fully connected layer
    (``torch.nn.Linear``), and the stage outputs of residual networks: the
    direct children of the model that are sequences of residual blocks
    (torchvision's ``BasicBlock`` / ``Bottleneck``; ``layer1``-``layer4`` of a
    ResNet).

    Parameters
    ----------
    module : torch.nn.Module
    table : pandas.DataFrame
        :func:`~sklearn_id.list_layers` of the module.

    Returns
    -------
    layers : list of str
    """
    import torch

    modules = dict(module.named_modules())
    stages = {
        name
        for name, child in module.named_children()
        if isinstance(child, torch.nn.Sequential)
        and any(type(block).__name__ in _RESIDUAL_BLOCKS for block in child.children())
    }
    chosen = []
    for name in table["layer"]:
        sub = modules.get(name)
        if (
            name == "input"
            or name in stages
            or isinstance(sub, torch.nn.Linear)
            or type(sub).__name__.startswith(_POOLING)
        ):
            chosen.append(name)
    return chosen


def plan_passes(widths, n_samples, memory_budget):
    """Cut the layers' features into passes over the data that each fit ``memory_budget``.

    The features of all layers, laid end to end in forward order, are cut
    into as few contiguous runs as fit the budget (float32, all samples): one
    run per pass. A layer wider than a run is read in pieces over several
    passes.

    Parameters
    ----------
    widths : dict of str to int
        Flattened width of each layer, in forward order.
    n_samples : int
    memory_budget : int or None
        Bytes; None puts everything in one pass.

    Returns
    -------
    passes : list of dict of str to slice
        For each pass, the features of each layer it reads.
    """
    total = sum(widths.values())
    bytes_per_feature = 4 * n_samples
    if memory_budget is None:
        per_pass = total
    else:
        per_pass = memory_budget // bytes_per_feature
        if per_pass < 1:
            raise ValueError(
                f"memory_budget={memory_budget} bytes cannot hold even one feature of "
                f"the {n_samples} samples in float32; the minimum is {bytes_per_feature} "
                "bytes. Raise memory_budget or profile fewer samples."
            )
    passes = []
    for start in range(0, total, per_pass):
        stop = min(start + per_pass, total)
        pieces = {}
        offset = 0
        for layer, width in widths.items():
            low, high = max(start, offset), min(stop, offset + width)
            if low < high:
                pieces[layer] = slice(low - offset, high - offset)
            offset += width
        passes.append(pieces)
    return passes


class SplitLayer:
    """A layer too wide for the memory budget, read one feature slice per pass.

    Its exact distances (:class:`~sklearn_id._neighbors.PiecewiseDistances`)
    and, for the paper's PCA-ID, its standardised spectrum
    (:class:`~sklearn_id._pca.StandardisedSpectrum`) are accumulated slice by
    slice, so the layer is never held whole.

    Parameters
    ----------
    n_samples : int
    width : int
        The layer's flattened width.
    spectrum : bool, default=True
        Accumulate the standardised spectrum too.
    """

    def __init__(self, n_samples, width, *, spectrum=True):
        self.width = width
        self.n_seen = 0
        self.distances = PiecewiseDistances(n_samples)
        self.spectrum = StandardisedSpectrum(n_samples) if spectrum else None

    def add(self, piece):
        """Add a (n_samples, n_piece_features) float32 slice."""
        self.distances.add(piece)
        if self.spectrum is not None:
            self.spectrum.add(piece)
        self.n_seen += piece.shape[1]

    @property
    def complete(self):
        return self.n_seen == self.width


def minimum_samples(subsample):
    """Samples needed so that every random subsample keeps at least 3 points."""
    return max(3, math.ceil(3 / subsample))
