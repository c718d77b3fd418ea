"""One layer's row of a :class:`~sklearn_id.DepthProfile`: its ID and spread, PCA-ID, probe and label overlap."""

import warnings

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.model_selection import cross_val_score

from sklearn_id._base import (
    UndersampledWarning,
    dimensions_with_resamples,
    fitted_dimension,
    has_neighbor_seam,
    undersampled,
)
from sklearn_id._device import as_numpy, count_nonfinite
from sklearn_id._layers import SplitLayer
from sklearn_id._pca import PCADimension, standardised_spectrum
from sklearn_id._warnings import find_stack_level

__all__ = ["PAPER_PCA_THRESHOLD", "UndefinedLayerWarning", "estimate_groups", "estimate_layer", "profile_table"]

PAPER_PCA_THRESHOLD = 0.9


class UndefinedLayerWarning(UserWarning):
    """A layer of a :class:`DepthProfile` whose ID or PCA-ID is undefined (a dead layer): its row holds NaN."""


def estimate_groups(ready, plan, pca_estimator, *, probe_cv, y, device, n_jobs, rows):
    """Estimate every group on the layers a pass completed, into ``rows``; warn for layers that lose a number."""
    jobs = [(layer, data, group) for layer, data in ready for group in plan.groups]
    tasks = (
        delayed(estimate_layer)(
            group.points(data),
            plan.id_estimator,
            pca_estimator,
            group.subsets,
            plan.probe,
            y,
            probe_cv,
            device,
        )
        for _, data, group in jobs
    )
    bounded = {}
    for (layer, _, group), (row, problems, beyond) in zip(jobs, Parallel(n_jobs=n_jobs)(tasks)):
        rows[group.label][layer] = row
        where = f"Layer {layer!r}" if group.label is None else f"Layer {layer!r} of class {group.label!r}"
        for problem in problems:
            message = f"{where} gets NaN for its {problem}"
            warnings.warn(message, UndefinedLayerWarning, stacklevel=find_stack_level())
        if beyond:
            bounded.setdefault(layer, []).append((group.label, beyond))
    for layer, flagged in bounded.items():  # once per layer, naming the classes where there are
        label, beyond = flagged[0]
        where = (
            ""
            if label is None
            else (
                f" in {len(flagged)} of {len(plan.groups)} classes ({', '.join(repr(c) for c, _ in flagged)}); "
                f"in class {label!r}"
            )
        )
        warnings.warn(
            f"Layer {layer!r} is undersampled{where}: {'; and '.join(beyond)}. Profile more samples, "
            "or read these numbers as bounds (the profile_ column 'undersampled' flags them).",
            UndersampledWarning,
            stacklevel=find_stack_level(),
        )


def _undefined_row(nonfinite):
    """The row of a layer whose activations hold NaN or infinity, and the reason its warning gives."""
    reason = f"its activations hold {nonfinite} NaN or infinite values (the layer overflows or divides by 0)"
    row = {
        "id": np.nan,
        "id_std": np.nan,
        "scale": np.nan,
        "pca_id": np.nan,
        "undersampled": False,
        "probe_score": np.nan,
    }
    return row, [f"ID and PCA-ID: {reason}"], []


def _pca_id(data, pca_estimator):
    """The layer's PCA-ID (NaN when skipped), and the reason when it cannot be computed."""
    try:
        if pca_estimator == "auto":
            # The paper's recipe, from the eigenvalues of the standardised Gram or covariance matrix.
            spectrum = (
                data.spectrum.explained_variance_ratio()
                if isinstance(data, SplitLayer)
                else standardised_spectrum(data)
            )
            return float(PCADimension(threshold=PAPER_PCA_THRESHOLD).dimension_from_spectrum(spectrum)), None
        if pca_estimator is not None:
            return fitted_dimension(clone(pca_estimator).fit(as_numpy(data))), None
    except ValueError as error:
        return float("nan"), f"PCA-ID: {error}"
    return float("nan"), None


def estimate_layer(data, id_estimator, pca_estimator, subsets, probe, y, probe_cv, device):
    """One row of the profile: ID on all samples, its spread, PCA-ID and probe accuracy, searching on ``device``."""
    if isinstance(data, SplitLayer):
        points, metric = data.distances.distances(), "precomputed"
        # Refitted on the layer's distances unless one search serves it (the plan checked it can be).
        id_estimator = id_estimator if has_neighbor_seam(id_estimator) else id_estimator.with_precomputed_distances()
    else:
        points, metric = data, "euclidean"
        nonfinite = count_nonfinite(data)
        if nonfinite:  # the layer overflowed or divided by zero: no estimate reads it
            return _undefined_row(nonfinite)
    problems = []
    try:
        dimension, resampled, n_used, scale = dimensions_with_resamples(
            id_estimator, points, subsets, metric=metric, device=device, return_n_points=True
        )
    except ValueError as error:
        # One layer that cannot be estimated (a dead layer: every output identical) loses its row, not the run.
        problems.append(f"ID: {error}")
        dimension, resampled, n_used, scale = float("nan"), [], points.shape[0], float("nan")
    pca_id, problem = _pca_id(data, pca_estimator)
    problems += [problem] if problem else []
    probe_score = (
        float(cross_val_score(clone(probe), as_numpy(data), y, cv=probe_cv).mean())
        if probe is not None
        else float("nan")
    )
    spread = float(np.std(resampled, ddof=1)) if len(resampled) > 1 else float("nan")
    # The counts are what the estimates used: the distinct points, once duplicates are collapsed.
    beyond = []
    if undersampled(dimension, n_used):
        beyond.append(f"its ID {dimension:.3g} needs at least 2**{dimension:.3g} points, more than its {n_used}")
    if pca_id >= (n_used - 1) / 2:
        beyond.append(
            f"its PCA-ID {pca_id:.0f} uses at least half of the {n_used - 1} components that {n_used} "
            "points allow: a count of points more than a dimension"
        )
    row = {
        "id": dimension,
        "id_std": spread,
        "scale": scale,
        "pca_id": pca_id,
        "undersampled": bool(beyond),
        "probe_score": probe_score,
    }
    return row, problems, beyond


def profile_table(plan, rows):
    """The profile: one row per layer in forward order."""
    import pandas as pd

    table = pd.DataFrame(
        [
            {
                "layer": layer,
                "relative_depth": plan.relative_depth[layer],
                "n_features": plan.widths[layer],
                **rows[layer],
            }
            for layer in plan.layers
        ]
    )
    return table if plan.probe is not None else table.drop(columns="probe_score")
