"""Per-class profiles, the seed paper's protocol: the groups of samples a profile estimates on, and their mean.

Ansuini et al. (2019) computed the ID of each of the most populated classes
on its own and averaged. A :class:`SampleGroup` is one such set of samples
with its own subsamples, drawn as a profile of those samples alone would draw
them; a profile without classes has one group, all samples.
"""

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.utils import check_random_state

from sklearn_id._neighbors import restrict_points
from sklearn_id._warnings import find_stack_level

__all__ = ["SampleGroup", "checked_labels", "class_mean_table", "sample_groups"]


@dataclass(frozen=True)
class SampleGroup:
    """Samples estimated together: ``rows`` of the data (None: all), their ``label`` and ``subsets``."""

    label: object
    rows: object
    subsets: list

    def points(self, data):
        """This group's rows of a layer's activations."""
        return data if self.rows is None else restrict_points(data, self.rows)


def checked_labels(probe, y, *, pooling, per_class):
    """Whether a profile's probe runs; raise where its labels cannot serve the probe or the classes."""
    with_probe = probe is not None and y is not None
    if per_class and pooling == "tokens":
        raise ValueError(
            "per_class needs one label per point, but pooling='tokens' makes a point of every token; "
            "pool the tokens (pooling='mean', ...) to profile per class."
        )
    if with_probe and per_class:
        raise ValueError("A probe needs several labels, but per_class=True estimates one class at a time.")
    if with_probe and pooling == "tokens":
        raise ValueError(
            "A probe needs one label per point, but pooling='tokens' makes a point of every token; "
            "pool the tokens (pooling='mean', 'last', ...) to probe, or leave the probe out."
        )
    return with_probe


def sample_groups(y, n_rows, *, per_class, max_classes, samples_per_class, random_state, draw_subsets, n_needed):
    """The groups a profile estimates on: all rows, or one group per kept class.

    Classes are kept by population (ties: the lower label), ``max_classes``
    of them; ``samples_per_class`` draws that many rows of each (seeded by
    ``random_state``). A class with fewer than ``n_needed`` rows (or than
    ``samples_per_class``) is skipped with a warning that names it.
    ``draw_subsets(n)`` gives the subsamples of a group of ``n`` rows.
    """
    if not per_class:
        return [SampleGroup(None, None, draw_subsets(n_rows))]
    if y is None:
        raise ValueError("per_class=True needs the labels: call fit(X, y).")
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n_rows:
        raise ValueError(f"y must hold one label per sample: {n_rows} labels, got an array of shape {y.shape}.")
    import pandas as pd

    missing = int(pd.isna(y).sum())
    if missing:
        raise ValueError(f"y holds {missing} missing labels (None or NaN): give every sample a class.")
    classes, counts = np.unique(y, return_counts=True)
    kept = classes[np.argsort(-counts, kind="stable")][:max_classes]
    rng = check_random_state(random_state)
    needed = max(n_needed, samples_per_class or 0)
    groups, skipped = [], []
    for value in np.sort(kept):
        rows = np.flatnonzero(y == value)
        label = value.item() if hasattr(value, "item") else value  # a Python scalar: clean in messages and tables
        if rows.size < needed:
            skipped.append(f"{label!r} ({rows.size})")
            continue
        if samples_per_class is not None:
            rows = np.sort(rng.choice(rows, samples_per_class, replace=False))
        groups.append(SampleGroup(label, rows, draw_subsets(rows.size)))
    if skipped:
        warnings.warn(
            f"Class(es) {', '.join(skipped)} have fewer than the {needed} samples a class needs and are left out "
            "of the per-class profile.",
            UserWarning,
            stacklevel=find_stack_level(),
        )
    if not groups:
        raise ValueError(f"No class has the {needed} samples a per-class profile needs; profile more per class.")
    return groups


def class_mean_table(tables):
    """``(class_profiles, profile)``: the classes' tables stacked with a ``class`` column, and their mean.

    In the mean, ``id`` and ``pca_id`` are the means over classes and
    ``id_std`` is the standard deviation of ``id`` across classes (NaN for
    one class); a layer is ``undersampled`` when it is in any class.
    """
    import pandas as pd

    stacked = pd.concat([table.assign(**{"class": label}) for label, table in tables.items()], ignore_index=True)
    stacked = stacked[["class", *[column for column in stacked.columns if column != "class"]]]
    grouped = stacked.groupby("layer", sort=False)
    mean = grouped.agg(
        relative_depth=("relative_depth", "first"),
        n_features=("n_features", "first"),
        id=("id", "mean"),
        id_std=("id", lambda ids: ids.std(ddof=1)),
        pca_id=("pca_id", "mean"),
        undersampled=("undersampled", "any"),
        n_classes=("id", "size"),
    ).reset_index()
    return stacked, mean
