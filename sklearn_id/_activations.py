"""Activations of named layers of a torch model, as a scikit-learn transformer.

torch is imported inside the functions that use it, so importing
``sklearn_id`` stays cheap on machines that only estimate dimensions.
"""

import difflib
import warnings
from contextlib import contextmanager
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions, validate_params
from sklearn.utils.validation import check_is_fitted

from sklearn_id._device import DEVICE_CONSTRAINT, PRECISIONS, float32_precision, resolve_device

__all__ = ["ActivationReader", "LayerActivationTransformer", "list_layers"]

INPUT = "input"


class _StopForward(Exception):
    """Raised by a hook once every requested layer has its output: the rest of the forward pass is skipped."""


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
    raise TypeError(
        f"model must be a torch.nn.Module or a fitted skorch net, got {type(model).__name__}."
    )


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


@contextmanager
def _prepared(module, device, precision):
    """Eval mode on ``device``, in ``precision``, for the block; each submodule's mode, the device and torch's flags are restored."""
    import torch

    modes = [(sub, sub.training) for sub in module.modules()]
    first = next(module.parameters(), None)
    original_device = first.device if first is not None else None
    try:
        module.eval()
        module.to(device)
        with torch.inference_mode(), float32_precision(precision, device):
            yield
    finally:
        for sub, training in modes:
            sub.training = training
        if original_device is not None and original_device != torch.device(device):
            module.to(original_device)


def _first_tensor(output):
    """A module's output, or the first tensor of a tuple/list/dict output."""
    import torch

    if isinstance(output, torch.Tensor):
        return output
    values = output.values() if isinstance(output, dict) else output
    for value in values:
        found = _first_tensor(value) if not isinstance(value, torch.Tensor) else value
        if found is not None:
            return found
    return None


def _input_dtype(module):
    first = next((p for p in module.parameters() if p.is_floating_point()), None)
    return first.dtype if first is not None else None


def _batches(X, batch_size):
    """Yield ``(start, batch)`` with ``batch`` a tensor, from an array, a tensor or a Dataset."""
    import torch
    from torch.utils.data import DataLoader, Dataset

    if isinstance(X, Dataset):
        # A generator of its own: a DataLoader would otherwise draw its seed from torch's global one.
        loader = DataLoader(X, batch_size=batch_size, shuffle=False, generator=torch.Generator())
        start = 0
        for batch in loader:
            inputs = batch[0] if isinstance(batch, (tuple, list)) else batch
            yield start, inputs
            start += len(inputs)
    else:
        for start in range(0, len(X), batch_size):
            yield start, torch.as_tensor(X[start : start + batch_size])


def n_samples_of(X):
    """Number of samples of an array, a tensor or a sized Dataset; a ValueError when empty."""
    try:
        n_samples = len(X)
    except TypeError as exc:
        raise TypeError(
            "X must be an array or tensor shaped like the model's input, or a torch "
            f"Dataset with a length; got {type(X).__name__}."
        ) from exc
    if n_samples == 0:
        raise ValueError("X is empty: at least one sample is needed to compute activations.")
    return n_samples


def example_batch(X):
    """The first sample of an array, a tensor or a Dataset, as a batch of one."""
    from torch.utils.data import DataLoader, Dataset

    import torch

    if isinstance(X, Dataset):
        batch = next(iter(DataLoader(X, batch_size=1, generator=torch.Generator())))
        return batch[0] if isinstance(batch, (tuple, list)) else batch
    return X[0:1]


def _first_layer_hint(module):
    import torch

    for name, sub in module.named_modules():
        if isinstance(sub, torch.nn.modules.conv._ConvNd):
            return f" Its first layer {name!r} expects {sub.in_channels} input channels."
        if isinstance(sub, torch.nn.Linear):
            return f" Its first layer {name!r} expects {sub.in_features} input features."
    return ""


class ActivationReader:
    """Forward passes of one model on one device, with the module, device and input dtype resolved once.

    Each call runs the model in eval mode under ``torch.inference_mode()``
    on ``device``, batch by batch, with forward hooks on the requested
    layers; the hooks are removed and the model's modes and device restored
    after the call, also when it fails. A batch that runs CUDA out of memory
    is halved, with a warning, and the size that fitted is kept for the rest
    of the reader's calls.

    Parameters
    ----------
    model : torch.nn.Module or fitted skorch net
    device : str or torch.device, default="auto"
        ``"auto"``: the skorch net's device, else CUDA when available, else
        the CPU (see :func:`sklearn_id._device.resolve_device`).
    batch_size : int, default=128
    progress : bool, default=False
        Show a tqdm progress bar over samples.
    precision : {"highest", "tf32", "bf16"}, default="highest"
        Float32 products and convolutions in full float32 (TF32 off inside
        the call, torch's flags restored after), in TF32, or under bfloat16
        autocast; see :func:`sklearn_id._device.float32_precision`.

    Attributes
    ----------
    module : torch.nn.Module
    device : str
        The device the forward passes run on.
    """

    def __init__(self, model, *, device="auto", batch_size=128, progress=False, precision="highest"):
        self.module, preferred = resolve_module(model)
        _check_initialised(self.module)
        self.device = resolve_device(device, preferred)
        self.dtype = _input_dtype(self.module)
        self.batch_size = batch_size
        self.progress = progress
        self.precision = precision
        self._chunk_size = batch_size
        # Image batches go in channels-last when the model starts with a 2-D convolution: the
        # same values, about 15% faster on CPUs; dropped for good if the model refuses them.
        self._channels_last = _starts_with_conv2d(self.module)

    def list_layers(self, example_input):
        """The layers in the order the forward pass runs them; see :func:`list_layers`."""
        import pandas as pd
        import torch

        if not isinstance(example_input, torch.Tensor):
            example_input = np.asarray(example_input)
        batch = self._as_input(torch.as_tensor(example_input))
        rows = [(INPUT, "Tensor", tuple(batch.shape[1:]))]
        seen = set()

        def make_hook(name):
            def hook(sub, _inputs, output):
                tensor = _first_tensor(output)
                if name not in seen and tensor is not None:
                    seen.add(name)
                    rows.append((name, type(sub).__name__, tuple(tensor.shape[1:])))

            return hook

        named = [(name, sub) for name, sub in self.module.named_modules() if name]
        with _hooks(named, make_hook), _prepared(self.module, self.device, self.precision):
            self.module(batch.to(self.device))
        table = pd.DataFrame(rows, columns=["layer", "type", "output_shape"])
        table["n_features"] = [int(np.prod(shape)) for shape in table["output_shape"]]
        return table

    def read(self, layers, X, *, feature_slices=None, on_device=False):
        """Outputs of several layers for every sample of ``X``, in one pass over the data.

        Each layer's output is flattened per sample and written batch by
        batch into a float32 array allocated once, when the first batch tells
        its width; only the requested outputs leave the device. The forward
        pass of each batch stops as soon as every requested layer has fired.
        A module called several times in one forward pass contributes its
        first call.

        Parameters
        ----------
        layers : list of str
            Names from ``model.named_modules()``, or ``"input"``.
        X : array-like, tensor or torch Dataset
            Shaped like the model's input; a Dataset yields inputs or
            (input, target) pairs.
        feature_slices : dict of str to slice, default=None
            Keep only these flattened features of the named layers, so that a
            layer too wide for memory can be read in several passes.
        on_device : bool, default=False
            Keep the outputs on the reader's device as float32 tensors, for
            work that continues there, instead of float32 numpy arrays.

        Returns
        -------
        activations : dict of str to ndarray (or tensor) of shape (n_samples, n_features), float32
        """
        from tqdm.auto import tqdm

        layers = list(dict.fromkeys(layers))
        check_layers(self.module, layers)
        n_samples = n_samples_of(X)
        feature_slices = feature_slices or {}
        outputs = {}
        captured = {}
        hooked = [(name, sub) for name, sub in self.module.named_modules() if name in layers]

        def make_hook(name):
            def hook(_module, _inputs, output):
                if name in captured:
                    return
                captured[name] = _first_tensor(output)
                if len(captured) == len(hooked):
                    raise _StopForward

            return hook

        def store(name, start, tensor, expected):
            import torch

            if tensor.shape[0] != expected:
                raise ValueError(
                    f"Layer {name!r} returned {tensor.shape[0]} rows for a batch of {expected} samples: its "
                    "output does not keep one row per sample (does it reduce over the batch?), so it has "
                    "no activation per sample; profile another layer."
                )
            if start + expected > n_samples:
                raise ValueError(
                    f"X yielded more than the {n_samples} samples its len() reports; make the Dataset's "
                    "__len__ match what it yields."
                )
            flat = tensor.detach().reshape(tensor.shape[0], -1)[:, feature_slices.get(name, slice(None))]
            if name not in outputs:
                shape = (n_samples, flat.shape[1])
                if on_device:
                    outputs[name] = torch.empty(shape, dtype=torch.float32, device=self.device)
                else:
                    outputs[name] = np.empty(shape, dtype=np.float32)
            if on_device:
                outputs[name][start : start + flat.shape[0]] = flat.float()
            else:
                outputs[name][start : start + flat.shape[0]] = flat.to("cpu", torch.float32).numpy()

        bar = tqdm(total=n_samples, disable=not self.progress, desc="activations", unit="sample")
        written = 0
        with _hooks(hooked, make_hook), _prepared(self.module, self.device, self.precision), bar:
            for start, batch in _batches(X, self.batch_size):
                batch = self._as_input(batch)
                for offset, size in self._forward(batch, start, captured, hooked):
                    for name, tensor in captured.items():
                        store(name, start + offset, tensor, size)
                if INPUT in layers:
                    store(INPUT, start, batch, len(batch))
                written = start + len(batch)
                bar.update(len(batch))
        if written != n_samples:
            # Every output row is written, or the call fails: no uninitialised memory as activations.
            raise ValueError(
                f"X yielded {written} samples but its len() reports {n_samples}; make the Dataset's "
                "__len__ match what it yields."
            )
        return outputs

    def _as_input(self, batch):
        """The batch in the model's floating dtype (integer inputs, such as token ids, unchanged)."""
        if batch.is_floating_point() and self.dtype is not None:
            return batch.to(self.dtype)
        return batch

    def _forward(self, batch, start, captured, hooked):
        """Run one batch in chunks; yield each chunk's offset once ``captured`` holds its outputs.

        A CUDA out-of-memory error halves the chunk until it fits; the size
        that fitted is kept for the following batches.
        """
        import torch

        offset = 0
        while offset < len(batch):
            chunk = batch[offset : offset + self._chunk_size].to(self.device, non_blocking=True)
            channels_last = self._channels_last and chunk.dim() == 4 and chunk.is_floating_point()
            if channels_last:
                chunk = chunk.contiguous(memory_format=torch.channels_last)
            captured.clear()
            try:
                if hooked:
                    self.module(chunk)
            except _StopForward:
                pass
            except torch.OutOfMemoryError:
                if self._chunk_size == 1 or len(chunk) == 1:
                    raise
                self._chunk_size = max(1, min(self._chunk_size, len(chunk)) // 2)
                warnings.warn(
                    f"CUDA ran out of memory; retrying with batches of {self._chunk_size} samples. "
                    "Pass a smaller batch_size to avoid the retry.",
                    ResourceWarning,
                    stacklevel=5,
                )
                torch.cuda.empty_cache()
                continue
            except (RuntimeError, ValueError) as exc:
                if channels_last:
                    # The model reshapes its input with view(): give it contiguous batches.
                    self._channels_last = False
                    continue
                if start == 0 and offset == 0:
                    raise ValueError(
                        f"The model failed on its first batch, of shape {tuple(chunk.shape)} and dtype "
                        f"{str(chunk.dtype).removeprefix('torch.')}: {type(exc).__name__}: {exc}"
                        f"{'' if str(exc).endswith('.') else '.'}{_first_layer_hint(self.module)} If the "
                        "input is at fault, pass X shaped like the model's input (samples first)."
                    ) from exc
                raise
            missing = sorted({name for name, _ in hooked} - set(captured))
            if missing:
                raise ValueError(
                    f"Layer(s) {missing} did not run in the forward pass, so they have "
                    "no output; pick layers that the model's forward() calls."
                )
            yield offset, len(chunk)
            offset += len(chunk)


def _check_initialised(module):
    """Refuse lazy modules whose parameters are not created yet: a forward pass here would create them, under inference mode."""
    import torch

    lazy = [name for name, sub in module.named_modules() if isinstance(sub, torch.nn.modules.lazy.LazyModuleMixin)
            and sub.has_uninitialized_params()]
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


@contextmanager
def _hooks(named_modules, make_hook):
    """Forward hooks ``make_hook(name)`` on each ``(name, module)``, removed when the block exits."""
    handles = [sub.register_forward_hook(make_hook(name)) for name, sub in named_modules]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@validate_params(
    {"model": [object], "example_input": [object], "device": [DEVICE_CONSTRAINT]},
    prefer_skip_nested_validation=True,
)
def list_layers(model, example_input, *, device="auto"):
    """The layers of ``model`` in the order its forward pass runs them, with their output shapes.

    Parameters
    ----------
    model : torch.nn.Module or fitted skorch net
    example_input : array-like or tensor
        One batch shaped like the model's input (a single sample is enough).
    device : str or torch.device, default="auto"
        Where the forward pass runs: ``"auto"`` (the skorch net's device, else
        CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.

    Returns
    -------
    layers : pandas.DataFrame
        Columns ``layer`` (a name for ``LayerActivationTransformer``),
        ``type`` (the module's class), ``output_shape`` (per sample) and
        ``n_features`` (flattened width). The first row is ``"input"``; a
        module called several times appears once, at its first call.

    Examples
    --------
    >>> import torch
    >>> from sklearn_id import list_layers
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    >>> list_layers(model, torch.zeros(1, 4), device="cpu")
       layer    type output_shape  n_features
    0  input  Tensor         (4,)           4
    1      0  Linear         (8,)           8
    2      1    ReLU         (8,)           8
    3      2  Linear         (2,)           2
    """
    return ActivationReader(model, device=device).list_layers(example_input)


class LayerActivationTransformer(TransformerMixin, BaseEstimator):
    """Outputs of a named layer of a torch model, as a scikit-learn transformer.

    ``transform`` runs the model in eval mode under ``torch.inference_mode()``,
    batch by batch, on CUDA when present, and returns the layer's output for
    each sample flattened to a float32 array. Put it in front of an ID
    estimator to measure the dimension of a representation.

    A forward hook records the layer; it is removed after each call, even
    when the forward pass raises, and the model's train/eval mode and device
    are restored. A module that returns a tuple contributes its first tensor;
    a module called several times in one forward pass contributes its first
    call. The forward pass stops once the layer has fired.

    Parameters
    ----------
    model : torch.nn.Module or fitted skorch net
        A skorch net contributes its ``module_`` and its ``device``. Wrap a
        fitted net in :class:`sklearn.frozen.FrozenEstimator` so that
        ``clone`` (and hence ``GridSearchCV``) keeps it fitted.
    layer : str
        A name from ``model.named_modules()``, or ``"input"``.
        :func:`list_layers` lists them in forward order.
    batch_size : int, default=128
        Samples per forward pass; halved, with a warning, when CUDA runs out
        of memory.
    device : str or torch.device, default="auto"
        ``"auto"``: the skorch net's device, else CUDA when available, else
        the CPU; or ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
    progress : bool, default=False
        Show a tqdm progress bar.
    precision : {"highest", "tf32", "bf16"}, default="highest"
        ``"highest"``: float32 products and convolutions in full float32
        (TF32 off inside the call, torch's flags restored after), so CPU and
        GPU activations agree to about 1e-5 relative; ``"tf32"``: TF32 on
        (faster on Ampere and later GPUs); ``"bf16"``: bfloat16 autocast.

    Attributes
    ----------
    device_ : str
        The device the forward passes run on.
    n_features_out_ : int
        Width of the flattened layer output.

    See Also
    --------
    list_layers : The layer names in forward order, with their shapes.
    TwoNNDimension : An ID estimator to put after this transformer.

    Examples
    --------
    >>> import torch
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn_id import LayerActivationTransformer, TwoNNDimension
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))
    >>> X = torch.randn(500, 3).numpy()
    >>> hidden = LayerActivationTransformer(model, "1", device="cpu")
    >>> hidden.fit_transform(X).shape
    (500, 16)
    >>> pipeline = make_pipeline(hidden, TwoNNDimension()).fit(X)
    >>> round(pipeline[-1].dimension_)
    3
    """

    _parameter_constraints: dict = {
        "model": [object],
        "layer": [str],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "device": [DEVICE_CONSTRAINT],
        "progress": ["boolean"],
        "precision": [StrOptions(set(PRECISIONS))],
    }

    def __init__(self, model, layer, *, batch_size=128, device="auto", progress=False, precision="highest"):
        self.model = model
        self.layer = layer
        self.batch_size = batch_size
        self.device = device
        self.progress = progress
        self.precision = precision

    def fit(self, X, y=None):
        """Check the model, the layer and the input shape on the first sample.

        Parameters
        ----------
        X : array-like, tensor or torch Dataset
            Shaped like the model's input.
        y : None
            Ignored.

        Returns
        -------
        self : LayerActivationTransformer
        """
        self._validate_params()
        n_samples_of(X)
        reader = ActivationReader(self.model, device=self.device, batch_size=1, precision=self.precision)
        self.device_ = reader.device
        self.n_features_out_ = reader.read([self.layer], example_batch(X))[self.layer].shape[1]
        return self

    def transform(self, X):
        """The layer's output for every sample of ``X``.

        Parameters
        ----------
        X : array-like, tensor or torch Dataset
            Shaped like the model's input; a Dataset yields inputs or
            (input, target) pairs.

        Returns
        -------
        activations : ndarray of shape (n_samples, ``n_features_out_``), float32
        """
        check_is_fitted(self)
        reader = ActivationReader(
            self.model, device=self.device_, batch_size=self.batch_size, progress=self.progress, precision=self.precision
        )
        return reader.read([self.layer], X)[self.layer]

    def get_feature_names_out(self, input_features=None):
        """Names ``{layer}_{i}`` of the output features.

        Parameters
        ----------
        input_features : None
            Ignored.

        Returns
        -------
        feature_names_out : ndarray of str
        """
        check_is_fitted(self)
        return np.asarray([f"{self.layer}_{i}" for i in range(self.n_features_out_)], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = True
        tags.input_tags.three_d_array = True
        tags.non_deterministic = False
        return tags
