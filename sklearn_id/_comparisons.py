"""The measures ``DepthProfile(compare=...)`` computes between every pair of its layers, and the label overlap column.

A measure is a small object with a ``name`` and ``compare(layers)``, which
takes the profiled layers' activations (a dict from layer name to an array
of shape (n_samples, n_features), in forward order) and returns a square
``pandas.DataFrame`` indexed by layer in both directions. Users add their own
by writing one; the three here are the package's functions applied to every
pair, with each layer's neighbour lists searched once.
"""

import warnings
from numbers import Integral

import numpy as np

from sklearn_id._compare import (
    label_overlap_from_neighbors,
    linear_cka,
    nearest_indices,
    overlap_from_neighbors,
)
from sklearn_id._neighbors import neighbor_ranks_in
from sklearn_id._warnings import find_stack_level

__all__ = [
    "InformationImbalance",
    "LabelOverlap",
    "LinearCKA",
    "NeighborhoodOverlap",
    "checked_comparisons",
    "resolve_measures",
]


def _check_k(owner, k):
    if not isinstance(k, Integral) or isinstance(k, bool) or k < 1:
        raise ValueError(f"{owner} needs a positive integer k, got {k!r}.")
    return int(k)


def _square(values, names):
    import pandas as pd

    return pd.DataFrame(values, index=pd.Index(names, name="from"), columns=pd.Index(names, name="to"))


class _Measure:
    def __repr__(self):
        settings = ", ".join(f"{key}={value!r}" for key, value in vars(self).items())
        return f"{type(self).__name__}({settings})"

    def _neighbors(self, layers):
        n_samples = next(iter(layers.values())).shape[0]
        if n_samples <= self.k:
            raise ValueError(
                f"{self!r} needs more than k={self.k} samples; the profile has {n_samples}. Lower k or add samples."
            )
        return {name: nearest_indices(points, self.k) for name, points in layers.items()}


class InformationImbalance(_Measure):
    """Information imbalance between every pair of layers: ``matrix.loc[a, b]`` is ``Delta(a -> b)``.

    See :func:`~sklearn_id.information_imbalance`. Each layer's ``k``
    nearest neighbours are searched once; the ranks of every layer's
    neighbours in layer ``b`` come from one streaming pass over ``b``.

    Parameters
    ----------
    k : int, default=1

    Examples
    --------
    >>> from sklearn_id import DepthProfile, InformationImbalance
    >>> measure = InformationImbalance(k=5)
    >>> measure.name, measure.k
    ('imbalance', 5)
    """

    name = "imbalance"

    def __init__(self, k=1):
        self.k = _check_k("InformationImbalance", k)

    def compare(self, layers):
        """The imbalance matrix of ``layers`` (a dict from name to activations): rows from, columns to."""
        names = list(layers)
        neighbors = self._neighbors(layers)
        stacked = np.concatenate([neighbors[name] for name in names], axis=1)
        n_samples = stacked.shape[0]
        matrix = np.empty((len(names), len(names)))
        for column, name in enumerate(names):
            ranks = neighbor_ranks_in(np.asarray(layers[name], dtype=np.float64), stacked)
            matrix[:, column] = 2.0 * ranks.reshape(n_samples, len(names), self.k).mean(axis=(0, 2)) / n_samples
        return _square(matrix, names)


class NeighborhoodOverlap(_Measure):
    """Neighbourhood overlap between every pair of layers (symmetric); see :func:`~sklearn_id.neighborhood_overlap`.

    Parameters
    ----------
    k : int, default=30
    """

    name = "overlap"

    def __init__(self, k=30):
        self.k = _check_k("NeighborhoodOverlap", k)

    def compare(self, layers):
        """The overlap matrix of ``layers`` (a dict from name to activations)."""
        names = list(layers)
        neighbors = self._neighbors(layers)
        matrix = np.eye(len(names))
        for i, a in enumerate(names):
            for j in range(i + 1, len(names)):
                matrix[i, j] = matrix[j, i] = overlap_from_neighbors(neighbors[a], neighbors[names[j]])
        return _square(matrix, names)


class LinearCKA(_Measure):
    """Linear CKA between every pair of layers (symmetric); see :func:`~sklearn_id.linear_cka`.

    Parameters
    ----------
    debiased : bool, default=False
    """

    name = "cka"

    def __init__(self, debiased=False):
        self.debiased = bool(debiased)

    def compare(self, layers):
        """The CKA matrix of ``layers`` (a dict from name to activations)."""
        names = list(layers)
        matrix = np.eye(len(names))
        for i, a in enumerate(names):
            for j in range(i + 1, len(names)):
                matrix[i, j] = matrix[j, i] = linear_cka(layers[a], layers[names[j]], debiased=self.debiased)
        return _square(matrix, names)


class LabelOverlap(_Measure):
    """Each layer's label overlap, the profile's ``label_overlap`` column; see :func:`~sklearn_id.label_overlap`.

    Parameters
    ----------
    k : int, default=30
    weighted : bool, default=True
    """

    name = "label_overlap"

    def __init__(self, k=30, weighted=True):
        self.k = _check_k("LabelOverlap", k)
        self.weighted = bool(weighted)

    def of_layer(self, points, y):
        """The label overlap of one layer's activations."""
        (neighbors,) = self._neighbors({"layer": points}).values()
        return label_overlap_from_neighbors(neighbors, np.asarray(y), self.weighted)


_DEFAULTS = {"imbalance": InformationImbalance, "overlap": NeighborhoodOverlap, "cka": LinearCKA}


def resolve_measures(compare):
    """``(pairwise measures, label overlap)`` for a ``compare`` list; raise for what is not a measure."""
    if compare is None:
        return [], None
    pairwise, label = [], None
    for item in compare:
        if isinstance(item, str):
            if item == LabelOverlap.name:
                item = LabelOverlap()
            elif item in _DEFAULTS:
                item = _DEFAULTS[item]()
            else:
                valid = sorted([*_DEFAULTS, LabelOverlap.name])
                raise ValueError(f"Unknown measure {item!r} in compare; the valid names are {valid}, or a measure.")
        if isinstance(item, LabelOverlap):
            label = item
        elif isinstance(getattr(item, "name", None), str) and callable(getattr(item, "compare", None)):
            pairwise.append(item)
        else:
            raise ValueError(
                f"{item!r} in compare is not a measure: pass a name, or an object with a name and compare(layers)."
            )
    names = [measure.name for measure in pairwise]
    if len(set(names)) < len(names):
        raise ValueError(f"compare names a measure twice ({names}); each name keys comparisons_ once.")
    return pairwise, label


def checked_comparisons(compare, y, *, pooling, n_samples, widths, memory_budget):
    """A profile's pairwise measures and label overlap, checked against its labels, pooling and memory budget."""
    measures, label_overlap = resolve_measures(compare)
    if compare is None:
        return measures, None
    if y is None and label_overlap is not None:
        raise ValueError("The label overlap needs the labels: call fit(X, y), or leave 'label_overlap' out.")
    if y is not None:
        if pooling == "tokens":
            raise ValueError(
                "The label overlap needs one label per point, but pooling='tokens' makes a point of every "
                "token; pool the tokens (pooling='mean', ...) or fit without y."
            )
        if len(y) != n_samples:
            raise ValueError(f"y has {len(y)} labels for {n_samples} samples: give one label per sample.")
        if label_overlap is None:  # not asked for: the default, when the samples allow it
            label_overlap = LabelOverlap()
            if label_overlap.k >= n_samples:
                warnings.warn(
                    f"No label_overlap column: {n_samples} samples are too few for its k={label_overlap.k} "
                    "neighbours; pass compare=[..., LabelOverlap(k=...)] with a smaller k.",
                    UserWarning,
                    stacklevel=find_stack_level(),
                )
                label_overlap = None
    for measure in [*measures, *([label_overlap] if label_overlap is not None else [])]:
        k = getattr(measure, "k", None)
        if isinstance(k, Integral) and k >= n_samples:
            raise ValueError(f"{measure!r} needs more than k={k} samples; the profile has {n_samples}. Lower k.")
    held = 4 * n_samples * sum(widths.values())
    if measures and memory_budget is not None and held > memory_budget:
        raise ValueError(
            f"compare holds every profiled layer's activations at once ({held / 2**20:.0f} MiB), more than "
            f"memory_budget ({memory_budget / 2**20:.0f} MiB): raise memory_budget, profile fewer layers, "
            "or fewer samples."
        )
    return measures, label_overlap
