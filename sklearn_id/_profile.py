"""DepthProfile: the intrinsic dimension of a network's representations, layer by layer."""

from numbers import Integral, Real

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, _fit_context, clone
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, Options, StrOptions
from sklearn.utils.validation import check_is_fitted

from sklearn_id._activations import (
    check_layers,
    example_batch,
    extract_activations,
    list_layers,
    n_samples_of,
    resolve_module,
)
from sklearn_id._layers import SplitLayer, auto_checkpoints, minimum_samples, plan_passes
from sklearn_id._neighbors import (
    _exact_squared_distances,
    kneighbors,
    kneighbors_precomputed,
    resolve_device,
)
from sklearn_id._pca import PCADimension, _components_reaching
from sklearn_id._twonn import TwoNNDimension

__all__ = ["DepthProfile"]

# Neighbours kept per point so that a random subsample still finds its own
# first two among them (with subsample=0.9, all but about 1e-6 of the points).
_RESAMPLE_NEIGHBORS = 8


def paper_pca_estimator(threshold=0.9):
    """The seed paper's PCA-ID: features standardised, then components reaching ``threshold``."""
    return make_pipeline(StandardScaler(), PCADimension(threshold=threshold))


def fitted_dimension(estimator):
    """``dimension_`` of a fitted estimator, or of the last step of a fitted Pipeline."""
    final = estimator[-1] if isinstance(estimator, Pipeline) else estimator
    if not hasattr(final, "dimension_"):
        raise TypeError(
            f"{type(final).__name__} sets no dimension_ attribute when fitted; pass an ID "
            "estimator such as TwoNNDimension() (or a Pipeline that ends in one)."
        )
    return float(final.dimension_)


class DepthProfile(BaseEstimator):
    """Intrinsic dimension of a network's representations across its layers.

    The seed paper's instrument (Ansuini et al. 2019): the ID of each
    checkpoint's activations, from the input to the output, with its spread
    over random subsamples and a linear PCA-ID beside it. All layers see the
    same samples and the same subsamples; activations are read in as few
    forward passes as ``memory_budget`` allows and freed as soon as their
    layer is estimated.

    Parameters
    ----------
    model : torch.nn.Module or fitted skorch net
    layers : "auto" or list of str, default="auto"
        Names from ``model.named_modules()`` (or ``"input"``). ``"auto"``
        picks the paper's checkpoints: the input, every pooling layer, every
        fully connected layer, and the stage outputs of residual networks.
        On torchvision models it picks: ``resnet18``: input, maxpool,
        layer1-4, avgpool, fc; ``vgg16``: input, features.4, .9, .16, .23,
        .30 (pool1-5), avgpool, classifier.0, .3, .6 (fc6-8); ``alexnet``:
        input, features.2, .5, .12, avgpool, classifier.1, .4, .6.
    id_estimator : estimator, default=None
        Sets ``dimension_`` when fitted; None means ``TwoNNDimension()``.
        For ``TwoNNDimension`` the neighbours are found once per layer and
        reused by every subsample.
    pca_estimator : "auto", estimator or None, default="auto"
        ``"auto"``: the paper's recipe, features standardised then the number
        of components reaching 90% of the variance; None skips PCA-ID.
    n_resamples : int, default=5
        Random subsamples behind ``id_std``; 0 skips the spread.
    subsample : float, default=0.9
        Fraction of the samples in each subsample.
    memory_budget : int or None, default=2**31
        Bytes of activations (float32) held at once. A layer wider than the
        budget is read in feature slices over several passes, accumulating
        its exact distances (this needs ``n_samples**2 * 16`` bytes beside
        the budget). None holds every layer at once.
    batch_size : int, default=128
    device : str, default="auto"
        Where the forward passes run (CUDA when present).
    n_jobs : int, default=None
        Layers estimated in parallel through joblib (the active joblib
        backend applies).
    random_state : int, RandomState instance or None, default=None
        Draws the subsamples; the same seed gives the same ``profile_``.
    progress : bool, default=False
        Show tqdm progress bars.
    probe : classifier, default=None
        If set and ``y`` is given, its cross-validated accuracy on each
        layer's activations goes in a ``probe_score`` column.
    probe_cv : int, default=5
        Folds of the probe's cross-validation.

    Attributes
    ----------
    profile_ : pandas.DataFrame
        One row per layer in forward order: ``layer``, ``relative_depth``
        (position in the forward pass, 0 at the input, 1 at the last
        module), ``n_features``, ``id`` (on all samples), ``id_std`` (over
        the subsamples; NaN when ``n_resamples=0``), ``pca_id`` (NaN when
        skipped), and ``probe_score`` when a probe ran.
    layers_ : list of str
        The layers profiled.
    last_hidden_id_ : float
        The ID at the last profiled layer before the network's output layer.
    n_samples_ : int
        Number of samples profiled.

    Examples
    --------
    >>> import torch
    >>> from sklearn_id import DepthProfile
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = torch.nn.Sequential(
    ...     torch.nn.Linear(5, 64), torch.nn.Tanh(), torch.nn.Linear(64, 32), torch.nn.Tanh(),
    ...     torch.nn.Linear(32, 2))
    >>> X = torch.randn(1000, 5).numpy()
    >>> profile = DepthProfile(model, random_state=0, device="cpu").fit(X)
    >>> profile.profile_[["layer", "relative_depth", "n_features"]]
       layer  relative_depth  n_features
    0  input             0.0           5
    1      0             0.2          64
    2      2             0.6          32
    3      4             1.0           2
    >>> bool(abs(profile.profile_["id"][0] - 5) < 1)
    True
    """

    _parameter_constraints: dict = {
        "model": [object],
        "layers": [StrOptions({"auto"}), list],
        "id_estimator": [HasMethods(["fit"]), None],
        "pca_estimator": [StrOptions({"auto"}), HasMethods(["fit"]), None],
        "n_resamples": [Options(Integral, {0}), Interval(Integral, 2, None, closed="left")],
        "subsample": [Interval(Real, 0, 1, closed="neither")],
        "memory_budget": [Interval(Integral, 1, None, closed="left"), None],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "device": [str],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "progress": ["boolean"],
        "probe": [HasMethods(["fit", "predict"]), None],
        "probe_cv": [Interval(Integral, 2, None, closed="left")],
    }

    def __init__(
        self,
        model,
        *,
        layers="auto",
        id_estimator=None,
        pca_estimator="auto",
        n_resamples=5,
        subsample=0.9,
        memory_budget=2**31,
        batch_size=128,
        device="auto",
        n_jobs=None,
        random_state=None,
        progress=False,
        probe=None,
        probe_cv=5,
    ):
        self.model = model
        self.layers = layers
        self.id_estimator = id_estimator
        self.pca_estimator = pca_estimator
        self.n_resamples = n_resamples
        self.subsample = subsample
        self.memory_budget = memory_budget
        self.batch_size = batch_size
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.progress = progress
        self.probe = probe
        self.probe_cv = probe_cv

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None):
        """Profile the network on ``X``.

        Parameters
        ----------
        X : array-like, tensor or torch Dataset
            Samples shaped like the model's input.
        y : array-like of shape (n_samples,), default=None
            Labels for the probe; ignored without one.

        Returns
        -------
        self : DepthProfile
        """
        import pandas as pd
        from tqdm.auto import tqdm

        module, _ = resolve_module(self.model)
        n_samples = n_samples_of(X)
        if self.n_resamples and n_samples < minimum_samples(self.subsample):
            raise ValueError(
                f"{n_samples} samples are too few for subsamples of fraction "
                f"{self.subsample}: at least {minimum_samples(self.subsample)} are needed. "
                "Provide more samples, raise subsample, or set n_resamples=0."
            )
        table = list_layers(self.model, example_batch(X))
        layers = auto_checkpoints(module, table) if self.layers == "auto" else list(self.layers)
        check_layers(module, layers)
        ran = table.set_index("layer")
        never_ran = [layer for layer in layers if layer not in ran.index]
        if never_ran:
            raise ValueError(f"Layer(s) {never_ran} did not run in the forward pass; profile layers the model calls.")
        widths = {layer: int(ran.loc[layer, "n_features"]) for layer in layers}
        rng = check_random_state(self.random_state)
        size = int(round(self.subsample * n_samples))
        subsets = [np.sort(rng.choice(n_samples, size, replace=False)) for _ in range(self.n_resamples)]
        id_estimator = TwoNNDimension() if self.id_estimator is None else self.id_estimator
        pca_estimator = paper_pca_estimator() if self.pca_estimator == "auto" else self.pca_estimator
        with_probe = self.probe is not None and y is not None

        results = {}
        split = {}
        bar = tqdm(total=len(layers), disable=not self.progress, desc="layers", unit="layer")
        for pieces in plan_passes(widths, n_samples, self.memory_budget):
            partial = {layer: part for layer, part in pieces.items() if part != slice(0, widths[layer])}
            outputs, _ = extract_activations(
                self.model, list(pieces), X, batch_size=self.batch_size, device=self.device,
                progress=self.progress, feature_slices=partial,
            )
            ready = []
            for layer in pieces:
                if layer in partial:
                    accumulator = split.setdefault(layer, SplitLayer(n_samples, widths[layer]))
                    accumulator.add(outputs.pop(layer))
                    if accumulator.complete:
                        ready.append((layer, split.pop(layer)))
                else:
                    ready.append((layer, None))
            if with_probe and partial:
                raise ValueError(
                    "The probe needs every layer's activations at once, but "
                    f"{sorted(partial)} exceed memory_budget; raise memory_budget."
                )

            def tasks():
                for layer, accumulator in ready:
                    data = accumulator if accumulator is not None else outputs.pop(layer)
                    yield delayed(_profile_layer)(
                        data, id_estimator, pca_estimator, subsets, self.probe if with_probe else None,
                        y, self.probe_cv,
                    )

            for (layer, _), row in zip(ready, Parallel(n_jobs=self.n_jobs)(tasks())):
                results[layer] = row
                bar.update()
        bar.close()

        position = {layer: i for i, layer in enumerate(table["layer"])}
        last_position = len(table) - 1
        rows = [
            {"layer": layer, "relative_depth": position[layer] / last_position, "n_features": widths[layer], **results[layer]}
            for layer in layers
        ]
        self.profile_ = pd.DataFrame(rows)
        if not with_probe:
            self.profile_ = self.profile_.drop(columns="probe_score")
        self.layers_ = layers
        self.n_samples_ = n_samples
        output_position = position[_output_layer(module, table)]
        hidden = [row for row in rows if position[row["layer"]] < output_position]
        self.last_hidden_id_ = hidden[-1]["id"] if hidden else float("nan")
        return self

    def plot(self, ax=None):
        """ID (with its spread) and PCA-ID against relative depth.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Drawn on a new figure when None.

        Returns
        -------
        ax : matplotlib Axes
        """
        from sklearn_id.plotting import plot_depth_profile

        check_is_fitted(self)
        return plot_depth_profile(self.profile_, ax=ax)


def _output_layer(module, table):
    """The network's output layer: the last leaf module to run."""
    modules = dict(module.named_modules())
    leaves = [name for name in table["layer"] if name in modules and not list(modules[name].children())]
    return leaves[-1] if leaves else table["layer"].iloc[-1]


def _profile_layer(data, id_estimator, pca_estimator, subsets, probe, y, probe_cv):
    """One row of the profile: ID on all samples, its spread, PCA-ID and probe accuracy."""
    precomputed = isinstance(data, SplitLayer)
    distances = data.distances() if precomputed else None
    activations = None if precomputed else data
    dimension, resampled = _layer_dimension(activations, distances, id_estimator, subsets)
    if pca_estimator is None:
        pca_id = float("nan")
    elif precomputed:
        if not _is_paper_pca(pca_estimator):
            raise ValueError(
                "A layer wider than memory_budget can only get the default PCA-ID "
                "(pca_estimator='auto'); raise memory_budget or set pca_estimator=None."
            )
        threshold = pca_estimator[-1].threshold
        pca_id = float(_components_reaching(data.explained_variance_ratio(), threshold))
    else:
        pca_id = fitted_dimension(clone(pca_estimator).fit(activations))
    probe_score = (
        float(cross_val_score(clone(probe), activations, y, cv=probe_cv).mean())
        if probe is not None
        else float("nan")
    )
    spread = float(np.std(resampled, ddof=1)) if len(resampled) > 1 else float("nan")
    return {"id": dimension, "id_std": spread, "pca_id": pca_id, "probe_score": probe_score}


def _is_paper_pca(estimator):
    return (
        isinstance(estimator, Pipeline)
        and len(estimator) == 2
        and isinstance(estimator[0], StandardScaler)
        and isinstance(estimator[-1], PCADimension)
    )


def _layer_dimension(activations, distances, id_estimator, subsets):
    """ID on all samples and on each subsample.

    For ``TwoNNDimension`` the neighbour lists are computed once and each
    subsample reads its points' first two neighbours within the subsample
    from them; other estimators are refitted on each subsample.
    """
    if isinstance(id_estimator, TwoNNDimension) and id_estimator.metric == "euclidean":
        n_neighbors = _RESAMPLE_NEIGHBORS if subsets else 2
        if distances is not None:
            n_samples = distances.shape[0]
            neighbor_distances, indices = kneighbors_precomputed(distances, min(n_neighbors, n_samples - 1))
        else:
            n_samples = activations.shape[0]
            device = resolve_device(id_estimator.device)
            neighbor_distances, indices = kneighbors(activations, min(n_neighbors, n_samples - 1), device=device)
        if neighbor_distances[:, 0].min() > 0:
            estimator = clone(id_estimator)
            full = estimator._dimension_from_ratios(neighbor_distances[:, 1] / neighbor_distances[:, 0])
            resampled = [
                estimator._dimension_from_ratios(
                    _subsample_ratios(neighbor_distances, indices, subset, activations, distances)
                )
                for subset in subsets
            ]
            return full, resampled
    # Duplicates, or another estimator: fit it on each set of points.
    if distances is not None:
        if "metric" not in id_estimator.get_params():
            raise ValueError(
                f"{type(id_estimator).__name__} cannot take precomputed distances, which a "
                "layer wider than memory_budget needs; raise memory_budget."
            )
        estimator = clone(id_estimator).set_params(metric="precomputed")
        full = fitted_dimension(estimator.fit(distances))
        resampled = [fitted_dimension(clone(estimator).fit(distances[np.ix_(s, s)])) for s in subsets]
        return full, resampled
    full = fitted_dimension(clone(id_estimator).fit(activations))
    resampled = [fitted_dimension(clone(id_estimator).fit(activations[s])) for s in subsets]
    return full, resampled


def _subsample_ratios(neighbor_distances, indices, subset, activations, distances):
    """Ratios ``r2 / r1`` of the points of ``subset``, their neighbours taken within it."""
    n_samples = neighbor_distances.shape[0]
    member = np.zeros(n_samples, dtype=bool)
    member[subset] = True
    found = np.cumsum(member[indices[subset]], axis=1)
    first = np.argmax(found >= 1, axis=1)
    second = np.argmax(found >= 2, axis=1)
    r1 = neighbor_distances[subset, first]
    r2 = neighbor_distances[subset, second]
    missing = np.flatnonzero(found[:, -1] < 2)
    if missing.size:
        # Rare: fewer than two of the point's nearest are in the subsample.
        rows = subset[missing]
        if distances is not None:
            to_all = distances[rows].copy()
        else:
            n_rows = rows.size
            pairs_rows = np.repeat(rows, n_samples)
            pairs_cols = np.tile(np.arange(n_samples), n_rows)
            to_all = np.sqrt(_exact_squared_distances(activations, activations, pairs_rows, pairs_cols)).reshape(n_rows, n_samples)
        to_all[:, ~member] = np.inf
        to_all[np.arange(rows.size), rows] = np.inf
        nearest = np.sort(to_all, axis=1)[:, :2]
        r1[missing], r2[missing] = nearest[:, 0], nearest[:, 1]
    return r2 / r1
