"""One ID per sample: the intrinsic dimension of each text's (or image's) own cloud of tokens, batched.

An estimator with the neighbour seam (``neighbor_ranks`` and
``dimension_from_neighbors``: TwoNN, GRIDE) gets every cloud's neighbours
from one batched search (:func:`sklearn_id._neighbors.cloud_neighbor_distances`)
and estimates each from them; any other (PHD, a user's own) is fitted on each
cloud in turn. A cloud too small for the estimator, or that it cannot
estimate, gets NaN, and one warning says how many.
"""

import warnings

import numpy as np
from sklearn.base import clone
from sklearn.utils import check_array

from sklearn_id._base import fitted_dimension, has_neighbor_seam, search_device, short_reason, undersampled
from sklearn_id._device import as_numpy
from sklearn_id._neighbors import DuplicatePointsWarning, cloud_neighbor_distances, distinct_clouds
from sklearn_id._warnings import find_stack_level

__all__ = ["checked_clouds", "cloud_dimensions", "estimate_clouds", "sample_clouds", "sample_tables"]


def cloud_dimensions(estimator, clouds, *, device=None):
    """The intrinsic dimension of each of many small point clouds (a text's tokens, an image's patches).

    Exact duplicates are collapsed in each cloud (the package's policy), and
    the clouds are searched in padded batches rather than fitted one by one,
    so thousands of clouds cost a few batched products. The estimates equal
    ``estimator`` fitted on each cloud alone.

    Parameters
    ----------
    estimator : estimator
        Sets ``dimension_`` when fitted: :class:`TwoNNDimension`,
        :class:`GRIDEDimension` (batched), :class:`PHDimension` or your own
        (fitted on each cloud).
    clouds : list of array-like of shape (n_points_i, n_features)
        The clouds; they may differ in size.
    device : str, default=None
        Where the batched search runs when the estimator's ``device`` is
        ``"auto"``; None: CUDA when present.

    Returns
    -------
    table : pandas.DataFrame
        One row per cloud: ``n_points`` (distinct points), ``id``, and
        ``scale`` (the mean distance at the estimator's farther neighbour
        rank, or the fitted ``scale_``; NaN when it has none) and
        ``undersampled`` (fewer than ``2**id`` points). A cloud too small or
        undefined for the estimator holds NaN, with one warning that counts
        them.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_id import TwoNNDimension, cloud_dimensions
    >>> rng = np.random.default_rng(0)
    >>> clouds = [rng.normal(size=(400, 2)) @ rng.normal(size=(2, 16)) for _ in range(3)]
    >>> table = cloud_dimensions(TwoNNDimension(), clouds, device="cpu")
    >>> table["n_points"].tolist(), bool(table["id"].between(1.5, 2.5).all())
    ([400, 400, 400], True)
    """
    return _cloud_table(estimator, _checked_clouds(clouds), device)


def _cloud_table(estimator, clouds, device):
    """:func:`cloud_dimensions` of clouds already checked (finite float64 arrays of one width)."""
    import pandas as pd

    distinct, duplicates = distinct_clouds(clouds)
    if duplicates.any():
        warnings.warn(
            f"{int(duplicates.sum())} exact duplicate rows in {int(np.count_nonzero(duplicates))} of {len(clouds)} "
            "clouds were collapsed: each estimate uses its cloud's distinct points.",
            DuplicatePointsWarning,
            stacklevel=find_stack_level(),
        )
    if has_neighbor_seam(estimator):
        ids, scales, problems = _through_batched_neighbors(estimator, distinct, device)
    else:
        ids, scales, problems = _by_refitting(estimator, distinct)
    if problems:
        reasons = sorted({reason for _, reason in problems})
        warnings.warn(
            f"{len(problems)} of {len(distinct)} clouds get NaN: {'; '.join(reasons)}.",
            UserWarning,
            stacklevel=find_stack_level(),
        )
    n_points = [cloud.shape[0] for cloud in distinct]
    flags = [bool(np.isfinite(d) and undersampled(d, n)) for d, n in zip(ids, n_points)]
    return pd.DataFrame({"n_points": n_points, "id": ids, "scale": scales, "undersampled": flags})


def _checked_clouds(clouds):
    """The clouds as finite 2-D float64 arrays of one width; a clear error for any other."""
    checked = [
        check_array(as_numpy(cloud), dtype=np.float64, ensure_min_samples=0, input_name=f"cloud {index}")
        for index, cloud in enumerate(clouds)
    ]
    widths = sorted({cloud.shape[1] for cloud in checked})
    if len(widths) > 1:
        raise ValueError(f"The clouds have {widths} features: every cloud needs the same features.")
    return checked


def _through_batched_neighbors(estimator, clouds, device):
    ranks = np.asarray(estimator.neighbor_ranks, dtype=np.int64)
    needed = int(ranks.max()) + 1
    ids, scales = np.full(len(clouds), np.nan), np.full(len(clouds), np.nan)
    problems = [(i, f"fewer than {needed} distinct points") for i, c in enumerate(clouds) if c.shape[0] < needed]
    usable = [i for i, cloud in enumerate(clouds) if cloud.shape[0] >= needed]
    if usable:
        searched_on = search_device(estimator, "euclidean", device)
        distances = cloud_neighbor_distances([clouds[i] for i in usable], ranks, device=searched_on)
        if hasattr(estimator, "dimensions_from_neighbors"):
            estimates, reasons = estimator.dimensions_from_neighbors(distances)
        else:  # a user's estimator with the one-cloud seam only
            estimates, reasons = _one_by_one(estimator, distances)
        ids[usable] = estimates
        scales[usable] = [float(rows[:, -1].mean()) for rows in distances]
        scales[[usable[position] for position in reasons]] = np.nan
        problems += [(usable[position], reason) for position, reason in reasons.items()]
    return ids, scales, problems


def _one_by_one(estimator, distances):
    estimates, reasons = np.full(len(distances), np.nan), {}
    for position, rows in enumerate(distances):
        try:
            estimates[position] = estimator.dimension_from_neighbors(rows)
        except ValueError as error:
            reasons[position] = short_reason(error)
    return estimates, reasons


def _by_refitting(estimator, clouds):
    ids, scales, problems = np.full(len(clouds), np.nan), np.full(len(clouds), np.nan), []
    for i, cloud in enumerate(clouds):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # one summary below, not one warning per cloud
                fitted = clone(estimator).fit(cloud)
        except ValueError as error:
            problems.append((i, short_reason(error)))
            continue
        ids[i] = fitted_dimension(fitted)
        scales[i] = float(getattr(fitted, "scale_", np.nan))
    return ids, scales, problems


def sample_clouds(owners, *, exclude_special_tokens=False):
    """The rows of each sample's cloud: its tokens, without its first and last with ``exclude_special_tokens``.

    ``owners`` gives the sample of each token row, sample after sample (as
    ``pooling="tokens"`` orders them). Dropping the first and last token is
    GPTID's recipe for RoBERTa's ``<s>`` and ``</s>``.
    """
    n_samples = int(owners.max()) + 1 if owners.size else 0
    starts = np.searchsorted(owners, np.arange(n_samples), side="left")
    stops = np.searchsorted(owners, np.arange(n_samples), side="right")
    trim = 1 if exclude_special_tokens else 0
    return [np.arange(start + trim, max(start + trim, stop - trim)) for start, stop in zip(starts, stops)]


def checked_clouds(X, shapes, *, pooling, batch_size, exclude_special_tokens, combined):
    """Each sample's rows among a profile's token rows, for ``per_sample``; raise for what it cannot combine with."""
    if pooling != "tokens":
        raise ValueError(
            "per_sample=True estimates each sample's cloud of tokens: pass pooling='tokens' (texts, token "
            "mappings, ViT patches: any output of shape (batch, tokens, features))."
        )
    if combined:
        raise ValueError("per_sample=True cannot be combined with per_class, compare or a probe; fit them apart.")
    (n_tokens,) = {shape[0] for shape in shapes.values()}
    owners = X.token_owners(batch_size, n_tokens)
    return sample_clouds(owners, exclude_special_tokens=exclude_special_tokens)


def estimate_clouds(ready, plan, device, rows):
    """Each sample's ID on the layers a pass completed: ``rows[layer]`` is that layer's table of clouds."""
    for layer, data in ready:
        # The layer checked once (finite, float64), its clouds then taken as they are.
        points = check_array(as_numpy(data), dtype=np.float64, input_name=f"layer {layer!r}")
        with warnings.catch_warnings(record=True) as recorded:
            warnings.simplefilter("always")
            table = _cloud_table(plan.id_estimator, [points[cloud] for cloud in plan.clouds], device)
        for warning in recorded:  # each layer's summary, named
            warnings.warn(f"Layer {layer!r}: {warning.message}", warning.category, stacklevel=find_stack_level())
        rows[layer] = table


def sample_tables(plan, rows):
    """``(sample_profiles, profile)``: one row per sample and layer, and per layer the mean over samples.

    In the mean, ``id`` is the mean of the samples' finite IDs, ``id_std``
    their standard deviation across samples, ``n_samples`` how many there
    are; a layer is ``undersampled`` when any sample's cloud is.
    """
    import pandas as pd

    tables = []
    for layer in plan.layers:
        table = rows[layer].assign(layer=layer, relative_depth=plan.relative_depth[layer])
        table.insert(0, "sample", np.arange(len(table)))
        tables.append(table)
    columns = ["sample", "layer", "relative_depth", "n_points", "id", "scale", "undersampled"]
    samples = pd.concat(tables, ignore_index=True)[columns]
    grouped = samples.groupby("layer", sort=False)
    profile = grouped.agg(
        relative_depth=("relative_depth", "first"),
        id=("id", "mean"),
        id_std=("id", lambda ids: ids.std(ddof=1)),
        n_samples=("id", "count"),
        undersampled=("undersampled", "any"),
    ).reset_index()
    profile.insert(2, "n_features", [plan.widths[layer] for layer in profile["layer"]])
    return samples, profile
