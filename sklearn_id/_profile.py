"""DepthProfile: the intrinsic dimension of a network's representations, layer by layer."""

import os
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, _fit_context
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, Options, StrOptions
from sklearn.utils.validation import check_is_fitted

from sklearn_id._base import has_neighbor_seam, takes_distance_matrix
from sklearn_id._cache import CachedReader
from sklearn_id._classes import checked_labels, class_mean_table, sample_groups
from sklearn_id._comparisons import checked_comparisons
from sklearn_id._device import as_numpy, available_memory, fits_on_device
from sklearn_id._layer_row import PAPER_PCA_THRESHOLD, UndefinedLayerWarning, estimate_groups, profile_table
from sklearn_id._layers import (
    SplitLayer,
    auto_checkpoints,
    check_split_layers,
    count_rows,
    minimum_samples,
    output_shapes,
    plan_passes,
    relative_depths,
    transformer_blocks,
    transformer_checkpoints,
    whole_layer_needs,
)
from sklearn_id._pca import PCADimension
from sklearn_id._per_sample import checked_clouds, estimate_clouds, sample_tables
from sklearn_id._pooling import pooled_width, resolve_pooling
from sklearn_id._reader import READ_CONSTRAINTS, ActivationReader, check_layers, check_token_layers
from sklearn_id._twonn import TwoNNDimension

__all__ = ["DepthProfile", "UndefinedLayerWarning", "paper_pca_estimator"]


def paper_pca_estimator(threshold=PAPER_PCA_THRESHOLD):
    """The seed paper's PCA-ID: features standardised, then components reaching ``threshold``."""
    return make_pipeline(StandardScaler(), PCADimension(threshold=threshold))


@dataclass
class _Plan:
    """What a fit will do, settled before any forward pass over the data."""

    layers: list
    n_rows: int
    widths: dict
    relative_depth: dict
    last_hidden: str
    passes: list
    groups: list
    id_estimator: object
    probe: object
    on_device: bool
    memory_budget: int
    measures: list
    label_overlap: object
    clouds: list


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

        On a transformer (a model with a stack of attention blocks) it picks
        the residual stream: the embedding output (the tensor the first block
        reads), every block's output, and the final norm when there is one;
        ``relative_depth`` then counts blocks (0 at the embedding, ``i / L``
        after block ``i`` of ``L``, 1 at the final norm). Hugging Face
        ``GPT2LMHeadModel``: ``transformer.drop``, ``transformer.h.0`` ...
        ``transformer.h.{L-1}``, ``transformer.ln_f``; ``BertModel``:
        ``embeddings``, ``encoder.layer.0`` ... (no final norm: BERT is
        post-norm); ``LlamaForCausalLM`` and other Llama-style decoders:
        ``model.embed_tokens``, ``model.layers.0`` ..., ``model.norm``; timm
        ``VisionTransformer``: ``pos_drop``, ``blocks.0`` ..., ``norm``;
        torchvision ``VisionTransformer``: ``encoder.dropout``,
        ``encoder.layers.encoder_layer_0`` ..., ``encoder.ln``.
    id_estimator : estimator, default=None
        Sets ``dimension_`` when fitted; None means ``TwoNNDimension()``.
        An estimator with the neighbour seam (``neighbor_ranks`` and
        ``dimension_from_neighbors``, as ``TwoNNDimension`` and
        ``GRIDEDimension``) gets one neighbour search per layer, reused by
        every subsample; any other is refitted on each.
    pca_estimator : "auto", estimator or None, default="auto"
        ``"auto"``: the paper's recipe, features standardised then the number
        of components reaching 90% of the variance, computed from the
        eigenvalues of the standardised Gram (or covariance) matrix, which
        equals ``make_pipeline(StandardScaler(), PCADimension())`` without
        its SVD; None skips PCA-ID.
    n_resamples : int, default=5
        Random subsamples behind ``id_std``; 0 skips the spread.
    subsample : float, default=0.9
        Fraction of the samples in each subsample.
    memory_budget : "auto", int or None, default="auto"
        Bytes of activations (float32) held at once. A layer wider than the
        budget is read in feature slices over several passes, accumulating
        its exact distances (this needs ``n_samples**2 * 16`` bytes beside
        the budget). ``"auto"``: a quarter of the host memory available when
        ``fit`` starts (Linux's ``MemAvailable``), leaving room for the
        neighbour search's float32 copy and tiles; None holds every layer at
        once. On a CUDA device, a pass whose activations also fit in a
        quarter of the device's free memory stays on the device: the
        neighbour search and PCA-ID run there, and only the results come back
        to the host.
    batch_size : int, default=128
    device : str or torch.device, default="auto"
        Where every forward pass runs, the layer listing included:
        ``"auto"`` (the skorch net's device, else CUDA when present),
        ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
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
    precision : {"highest", "tf32", "bf16"}, default="highest"
        Precision of the forward passes, as in
        :class:`LayerActivationTransformer`: full float32 by default (TF32 off
        inside the call), or ``"tf32"`` / ``"bf16"`` for speed on a GPU.
    pooling : {"auto", "mean", "last", "first", "max", "tokens", "flatten"}, default="auto"
        How each layer's token sequence becomes rows, as in
        :class:`LayerActivationTransformer`: ``"auto"`` is the mean over real
        tokens for token inputs (texts, mappings of ``input_ids``) and the
        flattened output otherwise (pass ``"mean"`` for a ViT's patches).
        With ``"tokens"`` every real token is a point, so the ID is that of
        the texts' token cloud, and the subsamples draw tokens.
    tokenizer : callable, default=None
        Turns ``X`` given as texts into token ids, as in
        :class:`LayerActivationTransformer`.
    max_length : int, default=None
        The longest text in tokens; None: the model's maximum.
    truncation : bool, default=False
        Cut longer texts to ``max_length`` tokens; when False, a longer text
        is an error.
    compare : list or None, default=None
        Measures computed between every pair of profiled layers, into
        ``comparisons_``: names (``"imbalance"``: information imbalance with
        ``k=1``; ``"overlap"``: neighbourhood overlap, ``k=30``; ``"cka"``:
        linear CKA) or measure objects with their own settings
        (:class:`InformationImbalance`, :class:`NeighborhoodOverlap`,
        :class:`LinearCKA`, or yours: an object with a ``name`` and
        ``compare(layers)``). They need every layer's activations at once:
        ``4 * n_samples * sum(n_features)`` bytes are held, within
        ``memory_budget``. With ``y``, ``profile_`` also gains a
        ``label_overlap`` column (``"label_overlap"`` or a
        :class:`LabelOverlap` in the list sets its ``k``; it needs ``y``).
    per_class : bool, default=False
        The seed paper's protocol: ``fit(X, y)`` estimates each class on its
        own samples (one forward pass serves every class), into
        ``class_profiles_``; ``profile_`` is then the mean over classes.
    max_classes : int or None, default=None
        With ``per_class``, keep the most populated classes only.
    samples_per_class : int or None, default=None
        With ``per_class``, draw that many samples of each class (seeded by
        ``random_state``). A class with fewer samples than this, or than the
        subsamples need, is left out with a warning that names it.
    per_sample : bool, default=False
        With ``pooling="tokens"``: one ID per sample and layer, of the
        sample's own cloud of tokens (a text's tokens, an image's patches),
        into ``sample_profiles_``; the clouds of a layer are searched in
        batches (:func:`cloud_dimensions`). ``profile_`` is then the mean
        over samples. Resamples are not drawn for single clouds.
    exclude_special_tokens : bool, default=False
        With ``per_sample``, leave each sample's first and last token out of
        its cloud (RoBERTa's ``<s>`` and ``</s>``, as GPTID does).
    cache : path-like, default=None
        A folder that keeps each layer's pooled float32 activations on disk
        (:mod:`sklearn_id._cache`): a later fit of the same model on the same
        data, whatever its estimator or resamples, runs no forward pass, and a
        stopped fit resumes after its last complete batch. Other weights,
        data, pooling or precision make another entry of the folder.

    Attributes
    ----------
    profile_ : pandas.DataFrame
        One row per layer in forward order: ``layer``, ``relative_depth`` (position in
        the forward pass, 0 at the input, 1 at the last module), ``n_features``, ``id``
        (on all samples), ``id_std`` (over the subsamples; NaN when ``n_resamples=0``),
        ``scale`` (the mean distance at the farther rank the estimator reads, or its own
        ``scale_``; else NaN), ``pca_id`` (NaN when skipped), and ``probe_score`` when a
        probe ran. A layer whose ID or PCA-ID is undefined (a dead layer, all outputs
        identical) gets NaN there, with an :class:`UndefinedLayerWarning` that names it
        and says why; the other rows are unchanged. ``undersampled`` flags a layer whose
        ID needs more than the samples can resolve (fewer than ``2**id`` samples) or
        whose PCA-ID uses half or more of the components the samples allow, with an
        :class:`UndersampledWarning`.
    layers_ : list of str
        The layers profiled.
    last_hidden_layer_ : str or None
        The last profiled layer before the network's output layer (the last
        leaf module to run); None when every profiled layer is the output.
    last_hidden_id_ : float
        The ID at ``last_hidden_layer_`` (NaN when it is None).
    n_samples_ : int
        Number of points profiled: samples, or real tokens with
        ``pooling="tokens"``.
    memory_budget_ : int or None
        The budget in bytes that ``fit`` used (``"auto"`` resolved).
    comparisons_ : dict of str to pandas.DataFrame
        With ``compare``: each measure's name to its layer-by-layer matrix
        (index and columns the profiled layers; for the imbalance,
        ``comparisons_["imbalance"].loc[a, b]`` is ``Delta(a -> b)``).
    class_profiles_ : pandas.DataFrame
        With ``per_class``: a ``class`` column, then each class's profile,
        equal to a profile fitted on that class's samples alone with the
        same ``random_state``. ``profile_`` is then the mean over classes of
        ``id`` and ``pca_id``; its ``id_std`` is the spread of ``id`` across
        classes, and ``n_classes`` counts them.
    sample_profiles_ : pandas.DataFrame
        With ``per_sample``: ``sample``, ``layer``, ``relative_depth``,
        ``n_points`` (the cloud's distinct points), ``id``, ``scale`` (see
        :func:`cloud_dimensions`) and ``undersampled``, one row per sample
        and layer; a cloud too small for the estimator holds NaN, with one
        warning per layer that counts them. ``profile_`` is then the mean
        over samples (``id_std``: the spread across samples, ``n_samples``:
        the clouds with an ID).

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
        "memory_budget": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left"), None],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "probe": [HasMethods(["fit", "predict"]), None],
        "probe_cv": [Interval(Integral, 2, None, closed="left")],
        **READ_CONSTRAINTS,
        "compare": [list, None],
        "per_class": ["boolean"],
        "max_classes": [Interval(Integral, 1, None, closed="left"), None],
        "samples_per_class": [Interval(Integral, 3, None, closed="left"), None],
        "per_sample": ["boolean"],
        "exclude_special_tokens": ["boolean"],
        "cache": [str, os.PathLike, None],
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
        memory_budget="auto",
        batch_size=128,
        device="auto",
        n_jobs=None,
        random_state=None,
        progress=False,
        probe=None,
        probe_cv=5,
        precision="highest",
        pooling="auto",
        tokenizer=None,
        max_length=None,
        truncation=False,
        compare=None,
        per_class=False,
        max_classes=None,
        samples_per_class=None,
        per_sample=False,
        exclude_special_tokens=False,
        cache=None,
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
        self.precision = precision
        self.pooling = pooling
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.truncation = truncation
        self.compare = compare
        self.per_class = per_class
        self.max_classes = max_classes
        self.samples_per_class = samples_per_class
        self.per_sample = per_sample
        self.exclude_special_tokens = exclude_special_tokens
        self.cache = cache

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None):
        """Profile the network on ``X``.

        Parameters
        ----------
        X : array-like, tensor, torch Dataset, mapping of token arrays, or list of str
            Samples shaped like the model's input; texts need ``tokenizer``.
        y : array-like of shape (n_samples,), default=None
            Labels for the probe; ignored without one.

        Returns
        -------
        self : DepthProfile
        """
        from tqdm.auto import tqdm

        reader = ActivationReader.of(self)
        X = reader.inputs(X)
        if self.cache is not None:
            reader = CachedReader(reader, self.cache, X)
        plan = self._plan(reader, X, y)
        if self.cache is not None:
            reader.fill(plan.layers)  # one pass over the data for every layer the entry lacks
        rows = {} if plan.clouds is not None else {group.label: {} for group in plan.groups}
        held = {}
        with tqdm(total=len(plan.layers), disable=not self.progress, desc="layers", unit="layer") as bar:
            for ready in self._read_passes(reader, plan, X):
                if plan.clouds is not None:
                    estimate_clouds(ready, plan, reader.device, rows)
                    bar.update(len(ready))
                    continue
                estimate_groups(
                    ready,
                    plan,
                    self.pca_estimator,
                    probe_cv=self.probe_cv,
                    y=y,
                    device=reader.device,
                    n_jobs=self.n_jobs,
                    rows=rows,
                )
                for layer, data in ready:
                    if plan.label_overlap is not None:
                        overlap = plan.label_overlap.of_layer(as_numpy(data), y)
                        for group_rows in rows.values():
                            group_rows[layer]["label_overlap"] = overlap
                    if plan.measures:
                        held[layer] = as_numpy(data)
                    bar.update()
        self._set_results(plan, rows, held)
        return self

    def _set_results(self, plan, rows, held):
        self.memory_budget_ = plan.memory_budget
        if plan.clouds is not None:
            self.sample_profiles_, self.profile_ = sample_tables(plan, rows)
        elif self.per_class:
            self.class_profiles_, self.profile_ = class_mean_table(
                {label: profile_table(plan, group_rows) for label, group_rows in rows.items()}
            )
            if plan.label_overlap is not None:
                first = next(iter(rows.values()))
                self.profile_["label_overlap"] = [first[layer]["label_overlap"] for layer in plan.layers]
        else:
            self.profile_ = profile_table(plan, rows[None])
        if self.compare is not None:
            self.comparisons_ = {measure.name: measure.compare(held) for measure in plan.measures}
        self.layers_ = plan.layers
        self.n_samples_ = plan.n_rows
        self.last_hidden_layer_ = plan.last_hidden
        last = self.profile_.set_index("layer")["id"]
        self.last_hidden_id_ = float(last[plan.last_hidden]) if plan.last_hidden else float("nan")

    def _plan(self, reader, X, y):
        """Settle the layers, passes, subsamples and estimators; raise every configuration error."""
        id_estimator = self._checked_id_estimator()
        table = self._listed_layers(reader, X)
        blocks = transformer_blocks(reader.module)
        layers = self._chosen_layers(reader, X, table, blocks)
        shapes = output_shapes(table, layers)
        widths = {
            layer: pooled_width(shapes[layer], resolve_pooling(self.pooling, shapes[layer], X.has_tokens, layer))
            for layer in layers
        }
        n_samples = self._checked_sample_count(X, shapes, id_estimator)
        memory_budget = available_memory() // 4 if self.memory_budget == "auto" else self.memory_budget
        passes = plan_passes(widths, n_samples, memory_budget)
        with_probe = checked_labels(self.probe, y, pooling=self.pooling, per_class=self.per_class)
        measures, label_overlap = checked_comparisons(
            self.compare, y, pooling=self.pooling, n_samples=n_samples, widths=widths, memory_budget=memory_budget
        )
        needs = whole_layer_needs(
            per_class=self.per_class,
            compare=self.compare,
            per_sample=self.per_sample,
            with_probe=with_probe,
            pca_estimator=self.pca_estimator,
            id_estimator=id_estimator,
        )
        check_split_layers(passes, widths, needs)
        relative_depth, last_hidden = relative_depths(reader.module, table, blocks, layers)
        largest_pass = max(4 * n_samples * sum(part.stop - part.start for part in pieces.values()) for pieces in passes)
        return _Plan(
            layers=layers,
            n_rows=n_samples,
            widths=widths,
            relative_depth=relative_depth,
            last_hidden=last_hidden,
            passes=passes,
            groups=self._groups(y, n_samples),
            id_estimator=id_estimator,
            probe=self.probe if with_probe else None,
            on_device=self.n_jobs in (None, 1) and fits_on_device(reader.device, largest_pass),
            memory_budget=memory_budget,
            measures=measures,
            label_overlap=label_overlap,
            clouds=self._clouds(X, shapes, with_probe),
        )

    def _groups(self, y, n_samples):
        """The sample groups: all samples, or one per kept class with ``per_class``."""
        return sample_groups(
            y,
            n_samples,
            per_class=self.per_class,
            max_classes=self.max_classes,
            samples_per_class=self.samples_per_class,
            random_state=self.random_state,
            draw_subsets=self._draw_subsets,
            n_needed=minimum_samples(self.subsample) if self.n_resamples else 3,
        )

    def _clouds(self, X, shapes, with_probe):
        """Each sample's token rows with ``per_sample``, else None."""
        if not self.per_sample:
            return None
        return checked_clouds(
            X,
            shapes,
            pooling=self.pooling,
            batch_size=self.batch_size,
            exclude_special_tokens=self.exclude_special_tokens,
            combined=self.per_class or self.compare is not None or with_probe,
        )

    def _checked_id_estimator(self):
        """The ID estimator; reading its neighbour seam validates its settings before any forward pass."""
        id_estimator = TwoNNDimension() if self.id_estimator is None else self.id_estimator
        has_neighbor_seam(id_estimator)
        if takes_distance_matrix(id_estimator):
            raise ValueError(
                "DepthProfile computes each layer's distances itself: pass an id_estimator with metric='euclidean'."
            )
        return id_estimator

    def _listed_layers(self, reader, X):
        """The model's layers in forward order (one forward pass on the first sample)."""
        if self.layers != "auto" and not self.layers:
            raise ValueError("layers is empty: pass 'auto' or at least one name from model.named_modules().")
        table = reader.list_layers(X)
        if len(table) <= (0 if X.has_tokens else 1):
            raise ValueError(
                f"The model ({type(reader.module).__name__}) has no submodules, so there are no layers to "
                "profile beyond the input; wrap it, torch.nn.Sequential(model), to profile its output."
            )
        return table

    def _chosen_layers(self, reader, X, table, blocks):
        """The layers asked for, or the paper's checkpoints (a transformer's residual stream)."""
        if self.layers != "auto":
            layers = list(self.layers)
        elif blocks:
            layers = transformer_checkpoints(table, blocks, reader.input_producers(X, blocks[0]))
        else:
            layers = auto_checkpoints(reader.module, table)
        check_layers(reader.module, layers)
        check_token_layers(layers, X.has_tokens)
        never_ran = [layer for layer in layers if layer not in set(table["layer"])]
        if never_ran:
            raise ValueError(
                f"Layer(s) {never_ran} did not run in the forward pass, or return no tensor; profile layers the "
                "model calls whose output holds a tensor (list_layers lists them)."
            )
        return layers

    def _checked_sample_count(self, X, shapes, id_estimator):
        n_samples = count_rows(X, shapes, self.pooling, self.batch_size)
        if self.n_resamples and n_samples < minimum_samples(self.subsample):
            raise ValueError(
                f"{n_samples} samples are too few for subsamples of fraction "
                f"{self.subsample}: at least {minimum_samples(self.subsample)} are needed, so that each "
                "subsample keeps 3 points and leaves one out (else every resample is the whole set and id_std 0). "
                "Provide more samples, change subsample, or set n_resamples=0."
            )
        smallest = round(self.subsample * n_samples) if self.n_resamples else n_samples
        farthest = max(id_estimator.neighbor_ranks) if has_neighbor_seam(id_estimator) else 0
        if farthest >= smallest and not self.per_sample:
            raise ValueError(
                f"{id_estimator!r} reads each point's neighbour of rank {farthest}, but the {n_samples} samples "
                f"give {smallest} points per estimate: lower the ranks, or profile more samples."
            )
        return n_samples

    def _draw_subsets(self, n_samples):
        """The random subsamples every layer shares."""
        rng = check_random_state(self.random_state)
        size = int(round(self.subsample * n_samples))
        return [np.sort(rng.choice(n_samples, size, replace=False)) for _ in range(self.n_resamples)]

    def _read_passes(self, reader, plan, X):
        """For each pass over the data, the layers it completes: ``(layer, activations or SplitLayer)``."""
        split = {}
        for pieces in plan.passes:
            partial = {layer: part for layer, part in pieces.items() if part != slice(0, plan.widths[layer])}
            outputs = reader.read(list(pieces), X, feature_slices=partial, on_device=plan.on_device and not partial)
            ready = []
            for layer in pieces:
                if layer not in partial:
                    ready.append((layer, outputs.pop(layer)))
                    continue
                accumulator = split.setdefault(
                    layer,
                    SplitLayer(outputs[layer].shape[0], plan.widths[layer], spectrum=self.pca_estimator == "auto"),
                )
                accumulator.add(outputs.pop(layer))
                if accumulator.complete:
                    ready.append((layer, split.pop(layer)))
            yield ready

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
        return plot_depth_profile(self.profile_, ax=ax, error_bars=self.error_bars_note())

    def error_bars_note(self):
        """What the ``id_std`` error bars of this profile are, for a figure's caption."""
        if self.per_class:
            return "error bars: the ID's std across classes (each class profiled on its own)"
        return f"error bars: the ID's std over {self.n_resamples} random {self.subsample:.0%} subsamples"
