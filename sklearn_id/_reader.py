"""The one reader of a torch model's activations: every forward pass of the package runs through it.

``ActivationReader`` resolves the module, the device and the input dtype once,
and runs each call (listing the layers, finding the modules a block reads,
reading activations) through one forward loop: eval mode and ``no_grad``
on the device, hooks removed and modes restored after the call, the
first-batch message, the out-of-memory halving and the channels-last fallback.
torch is imported inside the functions that use it.
"""

import difflib
import warnings
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from numbers import Integral

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from sklearn_id._device import DEVICE_CONSTRAINT, PRECISIONS, float32_precision, placed_device, resolve_device
from sklearn_id._hooks import Capture, StopForward, first_tensor, forward_hooks, in_this_thread
from sklearn_id._inputs import ModelInput, batch_length, batch_mask, batch_slice, batch_to, is_text
from sklearn_id._pooling import POOLINGS, pool, pooled_width, resolve_pooling
from sklearn_id._repeats import RepeatedSamples
from sklearn_id._shared import SharedState
from sklearn_id._warnings import find_stack_level

__all__ = [
    "INPUT",
    "READ_CONSTRAINTS",
    "ActivationReader",
    "ReadSettings",
    "RowWriter",
    "check_layers",
    "check_token_layers",
    "resolve_module",
]

INPUT = "input"

#: The ``_parameter_constraints`` of the read settings (:class:`ReadSettings`), shared by every estimator,
#: function and scorer that reads activations.
READ_CONSTRAINTS = {
    "batch_size": [Interval(Integral, 1, None, closed="left")],
    "device": [DEVICE_CONSTRAINT],
    "progress": ["boolean"],
    "precision": [StrOptions(set(PRECISIONS))],
    "pooling": [StrOptions(set(POOLINGS))],
    "tokenizer": [callable, None],
    "max_length": [Interval(Integral, 1, None, closed="left"), None],
    "truncation": ["boolean"],
}


@dataclass(frozen=True)
class ReadSettings:
    """How a model's activations are read: the settings of every reader, validated by :data:`READ_CONSTRAINTS`.

    ``LayerActivationTransformer``, ``DepthProfile`` (and through it the
    callback, the sweep and the command line), ``list_layers`` and
    ``make_id_scorer`` take these as parameters of their own; ``of`` collects
    them, so that none of them spells the list out.

    Attributes
    ----------
    batch_size : int, default=128
    device : str or torch.device, default="auto"
        ``"auto"``: the skorch net's device, else CUDA when available, else
        the CPU (see :func:`sklearn_id._device.resolve_device`).
    progress : bool, default=False
        Show a tqdm progress bar over samples.
    precision : {"highest", "tf32", "bf16"}, default="highest"
        Float32 products and convolutions in full float32 (TF32 off inside
        the call, torch's flags restored after), in TF32, or under bfloat16
        autocast; see :func:`sklearn_id._device.float32_precision`.
    pooling : str, default="auto"
        How a (batch, tokens, hidden) output becomes rows; see
        :mod:`sklearn_id._pooling`.
    tokenizer, max_length, truncation
        How texts become token ids; see :class:`sklearn_id._inputs.ModelInput`.

    Examples
    --------
    >>> from sklearn_id import LayerActivationTransformer
    >>> from sklearn_id._reader import ReadSettings
    >>> ReadSettings.of(LayerActivationTransformer(None, "0", pooling="mean"), batch_size=1).pooling
    'mean'
    """

    batch_size: int = 128
    device: object = "auto"
    progress: bool = False
    precision: str = "highest"
    pooling: str = "auto"
    tokenizer: object = None
    max_length: object = None
    truncation: bool = False

    @classmethod
    def of(cls, owner, **overrides):
        """The settings ``owner`` (an estimator or scorer with these parameters) holds, with ``overrides``."""
        return replace(cls(**{field.name: getattr(owner, field.name) for field in fields(cls)}), **overrides)


def resolve_module(model):
    """The ``torch.nn.Module`` behind ``model`` and the device it asks for.

    Parameters
    ----------
    model : torch.nn.Module, fitted skorch net, or FrozenEstimator of one

    Returns
    -------
    module : torch.nn.Module
    preferred_device : str or None
        The skorch net's ``device``, or None for a plain module.
    """
    import torch
    from sklearn.frozen import FrozenEstimator

    if isinstance(model, FrozenEstimator):
        model = model.estimator
    if isinstance(model, torch.nn.Module):
        return model, None
    if hasattr(model, "module_") or hasattr(model, "initialize_module"):
        # A skorch net: its check raises NotInitializedError, a NotFittedError.
        model.check_is_fitted(["module_"])
        return model.module_, model.device
    raise TypeError(f"model must be a torch.nn.Module or a fitted skorch net, got {type(model).__name__}.")


def check_layers(module, layers):
    """Raise a ``ValueError`` naming the closest valid names for each unknown layer."""
    names = [INPUT] + [name for name, _ in module.named_modules() if name]
    for layer in layers:
        if layer not in names:
            close = difflib.get_close_matches(layer, names, n=5, cutoff=0.0)
            raise ValueError(
                f"Unknown layer {layer!r}. Closest valid names: {', '.join(map(repr, close))}. "
                "Valid names are 'input' and the names of model.named_modules(); "
                "list_layers(model, example_input) shows them in forward order with their shapes."
            )


def check_token_layers(layers, has_tokens):
    """Refuse the ``"input"`` layer of a model that takes token ids: ids have no geometry."""
    if has_tokens and INPUT in layers:
        raise ValueError(
            "The input of a model that takes token ids is the ids themselves, which have no geometry; "
            "profile the embedding's output instead (list_layers shows its name)."
        )


@contextmanager
def _prepared(module, device, precision, *, move=True):
    """Eval mode on ``device``, in ``precision``, for the block; modes, device and torch's flags restored after.

    With ``move=False`` (a model used where it lives) only its modes change.
    """
    import torch

    def save():
        first = next(module.parameters(), None) if move else None
        return [(sub, sub.training) for sub in module.modules()], first.device if first is not None else None

    def apply():
        module.eval()
        if move:
            module.to(device)

    def restore(saved):
        modes, original_device = saved
        for sub, training in modes:
            sub.training = training
        if original_device is not None and original_device != torch.device(device):
            module.to(original_device)

    # Overlapping reads of one model (threads) share one hold: the last one out restores its modes and device.
    with _MODELS.held(module, str(device), save=save, apply=apply, restore=restore):
        # no_grad, not inference_mode: a tensor a module caches during a read must stay usable in training.
        with torch.no_grad(), float32_precision(precision, device):
            yield


_MODELS = SharedState()


def _input_dtype(module):
    first = next((p for p in module.parameters() if p.is_floating_point()), None)
    return first.dtype if first is not None else None


def _first_layer_hint(module):
    import torch

    for name, sub in module.named_modules():
        if isinstance(sub, torch.nn.Embedding | torch.nn.EmbeddingBag):
            rows = sub.num_embeddings
            return f" Its first layer {name!r} embeds {rows} ids: each id must lie in [0, {rows})."
        if isinstance(sub, torch.nn.modules.conv._ConvNd):
            return f" Its first layer {name!r} expects {sub.in_channels} input channels."
        if isinstance(sub, torch.nn.Linear):
            return f" Its first layer {name!r} expects {sub.in_features} input features."
    return ""


class ActivationReader:
    """Forward passes of one model on one device, with the module, device and input dtype resolved once.

    Each call runs the model in eval mode under ``torch.no_grad()``
    on ``device``, batch by batch, with forward hooks on the requested
    layers; the hooks are removed and the model's modes and device restored
    after the call, also when it fails. A batch that runs CUDA out of memory
    is halved, with a warning, and the size that fitted is kept for the rest
    of the reader's calls.

    Parameters
    ----------
    model : torch.nn.Module or fitted skorch net
    settings : ReadSettings, default=ReadSettings()
        Batch size, device, progress bar, precision, pooling and tokenizer.

    Attributes
    ----------
    module : torch.nn.Module
    device : str
        The device the forward passes run on.
    """

    def __init__(self, model, settings=ReadSettings()):
        self.module, preferred = resolve_module(model)
        _check_initialised(self.module)
        self.placed = placed_device(self.module)
        self.device = resolve_device(settings.device, preferred, placed=self.placed)
        self.dtype = _input_dtype(self.module)
        self.batch_size = settings.batch_size
        self.progress = settings.progress
        self.precision = settings.precision
        self.pooling = settings.pooling
        self._tokens = {
            "tokenizer": settings.tokenizer,
            "max_length": settings.max_length,
            "truncation": settings.truncation,
        }
        self._chunk_size = settings.batch_size
        # Image batches go in channels-last when the model starts with a 2-D convolution: the
        # same values, about 15% faster on CPUs; dropped for good if the model refuses them.
        self._channels_last = _starts_with_conv2d(self.module)

    @classmethod
    def of(cls, estimator, **overrides):
        """The reader of an estimator's model with the estimator's read settings (:meth:`ReadSettings.of`)."""
        return cls(estimator.model, ReadSettings.of(estimator, **overrides))

    def inputs(self, X):
        """``X`` as this model takes it (a :class:`~sklearn_id._inputs.ModelInput`); X may already be one."""
        if isinstance(X, ModelInput):
            return X
        return ModelInput(X, module=self.module, **self._tokens)

    def list_layers(self, example_input):
        """The layers in the order the forward pass runs them; see :func:`list_layers`.

        ``n_features`` is the width of a row once the reader's ``pooling``
        applies (the flattened width for outputs it does not pool).
        """
        import pandas as pd

        inputs = self.inputs(self._as_examples(example_input))
        batch = inputs.example()
        tokens = inputs.has_tokens
        # Token ids have no geometry: a model that takes a mapping has no "input" row.
        rows = [] if isinstance(batch, Mapping) else [(INPUT, "Tensor", tuple(batch.shape[1:]))]
        seen = set()

        def make_hook(name):
            def hook(sub, _inputs, output):
                tensor = first_tensor(output)
                if name not in seen and tensor is not None:
                    seen.add(name)
                    rows.append((name, type(sub).__name__, tuple(tensor.shape[1:])))

            return hook

        named = [(name, sub) for name, sub in self.module.named_modules() if name]
        with (
            forward_hooks(named, make_hook),
            _prepared(self.module, self.device, self.precision, move=self.placed is None),
        ):
            self._run(batch)
        table = pd.DataFrame(rows, columns=["layer", "type", "output_shape"])
        table["n_features"] = [self._width(shape, tokens) for shape in table["output_shape"]]
        return table

    def _width(self, shape, tokens):
        try:
            return pooled_width(shape, resolve_pooling(self.pooling, shape, tokens, ""))
        except ValueError:
            return pooled_width(shape, "flatten")

    @staticmethod
    def _as_examples(example_input):
        import torch

        if isinstance(example_input, (torch.Tensor, torch.utils.data.Dataset, Mapping, ModelInput)):
            return example_input
        return example_input if is_text(example_input) else np.asarray(example_input)

    def input_producers(self, example_input, layer):
        """Names of the modules whose output is the very tensor ``layer`` takes as its first input, in forward order.

        Used to find a transformer's embedding output: the tensor its first
        block reads. When no module before ``layer`` returns it (the sum of
        the embeddings is computed in a forward method), the modules inside
        ``layer`` that pass it on unchanged are named instead: the hook point
        of the residual stream's start, as TransformerLens's
        ``blocks.0.hook_in``.
        """
        batch = self.inputs(example_input).example()
        produced = []
        received = []
        modules = dict(self.module.named_modules())

        def pre_hook(_sub, args, kwargs):
            if not received:
                received.append(args[0] if args else first_tensor(kwargs))

        def make_hook(name):
            def hook(_sub, _inputs, output):
                if not received or name.startswith(f"{layer}."):
                    produced.append((name, first_tensor(output), bool(received)))

            return hook

        named = [(name, sub) for name, sub in modules.items() if name]
        handle = modules[layer].register_forward_pre_hook(in_this_thread(pre_hook), with_kwargs=True)
        try:
            with (
                forward_hooks(named, make_hook),
                _prepared(self.module, self.device, self.precision, move=self.placed is None),
            ):
                self._run(batch)
        finally:
            handle.remove()
        if not received:
            return []
        before = [name for name, tensor, inside in produced if not inside and tensor is received[0]]
        return before or [name for name, tensor, inside in produced if inside and tensor is received[0]]

    def read(self, layers, X, *, feature_slices=None, on_device=False):
        """Outputs of several layers for every sample of ``X``, in one pass over the data.

        Each layer's output is pooled (see ``pooling``) or flattened per
        sample and written batch by batch into a float32 array allocated
        once, when the first batch tells its width; only the requested
        outputs leave the device. The forward pass of each batch stops as
        soon as every requested layer has fired. A module called several
        times in one forward pass contributes its first call.

        Parameters
        ----------
        layers : list of str
            Names from ``model.named_modules()``, or ``"input"``.
        X : array-like, tensor, torch Dataset, mapping of token arrays, or texts
            See :class:`~sklearn_id._inputs.ModelInput`.
        feature_slices : dict of str to slice, default=None
            Keep only these (pooled) features of the named layers, so that a
            layer too wide for memory can be read in several passes.
        on_device : bool, default=False
            Keep the outputs on the reader's device as float32 tensors, for
            work that continues there, instead of float32 numpy arrays.

        Returns
        -------
        activations : dict of str to ndarray (or tensor) of shape (n_rows, n_features), float32
            ``n_rows`` is the number of samples, or of real tokens with
            ``pooling="tokens"``.
        """
        inputs = self.inputs(X)
        return self.read_into(layers, inputs, RowWriter(inputs, self, feature_slices or {}, on_device))

    def read_into(self, layers, X, writer, *, start=0):
        """Run the forward passes of :meth:`read` from sample ``start`` on, handing every output to ``writer``.

        ``writer`` is a :class:`RowWriter` (the activation cache's writes to
        disk); its ``batch_done(stop, batch)`` runs after each batch, once
        every layer's rows up to sample ``stop`` are stored. Returns
        ``writer.result()``.
        """
        from tqdm.auto import tqdm

        layers = list(dict.fromkeys(layers))
        check_layers(self.module, layers)
        inputs = self.inputs(X)
        check_token_layers(layers, inputs.has_tokens)
        capture = Capture([(name, sub) for name, sub in self.module.named_modules() if name in layers])
        bar = tqdm(total=inputs.n_samples - start, disable=not self.progress, desc="activations", unit="sample")
        with capture.hooks(), _prepared(self.module, self.device, self.precision, move=self.placed is None), bar:
            for first, batch in inputs.batches(self.batch_size, start=start):
                for offset, chunk in self._passes(batch, first, before=capture.clear) if capture.hooked else ():
                    capture.check_all_ran()
                    for name, tensor in capture.outputs.items():
                        writer.store(name, first + offset, tensor, batch_length(chunk), batch_mask(chunk))
                if INPUT in layers:
                    writer.store(INPUT, first, batch_to(batch, "cpu", self.dtype), batch_length(batch), None)
                writer.batch_done(first + batch_length(batch), batch)
                bar.update(batch_length(batch))
        return writer.result()

    def _call(self, batch):
        """The forward pass: keyword arguments for a mapping of token arrays, one argument otherwise."""
        return self.module(**batch) if isinstance(batch, Mapping) else self.module(batch)

    def _run(self, batch):
        """One forward pass of ``batch`` (a first batch: listing the layers, finding producers)."""
        for _ in self._passes(batch, 0):
            pass

    def _passes(self, batch, start, before=None):
        """Run one batch through the model in chunks; yield each chunk's offset and the chunk after its pass.

        The one forward loop of every call: ``before()`` runs before each
        pass (read clears what its hooks captured); a hook may end a pass
        early with ``StopForward``. A CUDA out-of-memory error halves the
        chunk until it fits, and the size that fitted is kept for the
        following batches; a model that refuses channels-last input gets
        contiguous batches from then on; a failure of the first batch (at
        ``start`` 0) is a ``ValueError`` that says what the model was given.
        """
        import torch

        offset = 0
        size = batch_length(batch)
        while offset < size:
            piece = batch_slice(batch, offset, offset + self._chunk_size)
            channels_last = (
                self._channels_last
                and not isinstance(piece, Mapping)
                and piece.dim() == 4
                and piece.is_floating_point()
            )
            chunk = batch_to(piece, self.device, self.dtype, torch.channels_last if channels_last else None)
            if before is not None:
                before()
            try:
                self._call(chunk)
            except StopForward:
                pass
            except torch.OutOfMemoryError:
                length = batch_length(chunk)
                if self._chunk_size == 1 or length == 1:
                    raise
                self._chunk_size = max(1, min(self._chunk_size, length) // 2)
                warnings.warn(
                    f"CUDA ran out of memory; retrying with batches of {self._chunk_size} samples. "
                    "Pass a smaller batch_size to avoid the retry.",
                    ResourceWarning,
                    stacklevel=find_stack_level(),
                )
                torch.cuda.empty_cache()
                continue
            except (RuntimeError, ValueError, TypeError, IndexError, AssertionError) as exc:
                if channels_last:
                    # The model reshapes its input with view(): give it contiguous batches.
                    self._channels_last = False
                    continue
                if start == 0 and offset == 0:
                    raise ValueError(_first_batch_error(chunk, exc, self.module)) from exc
                if isinstance(exc, IndexError):  # an id beyond the embedding, in a later batch
                    first = start + offset
                    raise ValueError(
                        f"The model failed on samples {first} to {first + batch_length(chunk) - 1}: "
                        f"{type(exc).__name__}: {exc}.{_first_layer_hint(self.module)}"
                    ) from exc
                raise
            yield offset, chunk
            offset += batch_length(chunk)


class RowWriter:
    """Each layer's pooled rows, written batch by batch into one float32 array allocated at its first batch.

    Every output row is written, or the call fails: no uninitialised memory
    is ever returned as activations. ``rows`` is the one place an output
    becomes rows; a subclass (the activation cache) may store them elsewhere.
    A sample that repeats an earlier one gets that sample's rows
    (:mod:`sklearn_id._repeats`).
    """

    def __init__(self, inputs, reader, feature_slices, on_device):
        self.n_samples = inputs.n_samples
        self.tokens = inputs.has_tokens
        self.pooling = reader.pooling
        self.device = reader.device
        self.feature_slices = feature_slices
        self.on_device = on_device
        self.outputs = {}
        self.written = 0
        self.repeated = RepeatedSamples()

    def rows(self, name, start, tensor, expected, mask):
        """``tensor``, the output of ``expected`` samples from sample ``start``, pooled into rows; its pooling."""
        if tensor.shape[0] != expected:
            raise ValueError(
                f"Layer {name!r} returned {tensor.shape[0]} rows for a batch of {expected} samples: its "
                "output does not keep one row per sample (does it reduce over the batch?), so it has "
                "no activation per sample; profile another layer."
            )
        if start + expected > self.n_samples:
            raise ValueError(
                f"X yielded more than the {self.n_samples} samples its len() reports; make the Dataset's "
                "__len__ match what it yields."
            )
        pooling = resolve_pooling(self.pooling, tuple(tensor.shape[1:]), self.tokens, name)
        rows = pool(tensor.detach(), mask, pooling, name)[:, self.feature_slices.get(name, slice(None))]
        return (rows if self.on_device else rows.to("cpu")), pooling

    def store(self, name, start, tensor, expected, mask):
        """Pool ``tensor``, the output of ``expected`` samples from sample ``start``, and write its rows."""
        rows, pooling = self.rows(name, start, tensor, expected, mask)
        if pooling == "tokens":
            self.outputs.setdefault(name, []).append(rows)
            return
        if name not in self.outputs:
            self.outputs[name] = self._empty((self.n_samples, rows.shape[1]))
        self.outputs[name][start : start + rows.shape[0]] = rows if self.on_device else rows.numpy()

    def batch_done(self, stop, batch):
        """Every layer's rows of the samples before ``stop``, the last of them ``batch``'s, are stored."""
        self.repeated.add(stop - batch_length(batch), batch)
        self.written = stop

    def _empty(self, shape):
        import torch

        if self.on_device:
            return torch.empty(shape, dtype=torch.float32, device=self.device)
        return np.empty(shape, dtype=np.float32)

    def result(self):
        """The outputs, once every sample was written; token rows joined."""
        import torch

        if self.written != self.n_samples:
            raise ValueError(
                f"X yielded {self.written} samples but its len() reports {self.n_samples}; make the Dataset's "
                "__len__ match what it yields."
            )
        for name, pieces in self.outputs.items():
            if isinstance(pieces, list):
                joined = torch.cat(pieces)
                self.outputs[name] = joined if self.on_device else joined.numpy()
            if self.outputs[name].shape[0] == self.n_samples:  # one row per sample
                self.repeated.apply(self.outputs[name])
        return self.outputs


def _first_batch_error(chunk, exc, module):
    """The message for a model that fails on its first batch: what it was given, and what it expects."""
    reason = f"{type(exc).__name__}: {exc}{'' if str(exc).endswith('.') else '.'}"
    if isinstance(chunk, Mapping):
        given = ", ".join(f"{key} {tuple(value.shape)}" for key, value in chunk.items())
        return (
            f"The model failed on its first batch, given as keyword arguments ({given}): {reason} Pass a "
            "mapping whose keys are arguments of the model's forward()."
        )
    return (
        f"The model failed on its first batch, of shape {tuple(chunk.shape)} and dtype "
        f"{str(chunk.dtype).removeprefix('torch.')}: {reason}{_first_layer_hint(module)} If the "
        "input is at fault, pass X shaped like the model's input (samples first)."
    )


def _check_initialised(module):
    """Refuse lazy modules without parameters yet: a forward pass here would create them, under inference mode."""
    import torch

    lazy = [
        name
        for name, sub in module.named_modules()
        if isinstance(sub, torch.nn.modules.lazy.LazyModuleMixin) and sub.has_uninitialized_params()
    ]
    if lazy:
        raise ValueError(
            f"The model's lazy module(s) {lazy[:3]} have no parameters yet, and reading activations must "
            "not create them (they would be inference tensors an optimiser never updates). Run one "
            "forward pass first, e.g. model(example_batch), or train the model."
        )


def _starts_with_conv2d(module):
    """Whether the first leaf module registered is a 2-D convolution."""
    import torch

    first = next((sub for sub in module.modules() if not list(sub.children())), None)
    return isinstance(first, torch.nn.Conv2d)
