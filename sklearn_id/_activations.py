"""Activations of named layers of a torch model, as a scikit-learn transformer, and the listing of its layers.

torch is imported inside the functions that use it, so importing
``sklearn_id`` stays cheap on machines that only estimate dimensions.
"""

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import validate_params
from sklearn.utils.validation import check_is_fitted

from sklearn_id._reader import READ_CONSTRAINTS, ActivationReader, ReadSettings

__all__ = ["LayerActivationTransformer", "list_layers"]


@validate_params(
    {
        "model": [object],
        "example_input": [object],
        **{name: READ_CONSTRAINTS[name] for name in ("device", "pooling", "tokenizer", "max_length", "truncation")},
    },
    prefer_skip_nested_validation=True,
)
def list_layers(
    model, example_input, *, device="auto", pooling="auto", tokenizer=None, max_length=None, truncation=False
):
    """The layers of ``model`` in the order its forward pass runs them, with their output shapes.

    Parameters
    ----------
    model : torch.nn.Module or fitted skorch net
    example_input : array-like, tensor, mapping of token arrays, or list of str
        One batch shaped like the model's input (a single sample is
        enough); texts need ``tokenizer``.
    device : str or torch.device, default="auto"
        Where the forward pass runs: ``"auto"`` (the skorch net's device, else
        CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
    pooling : str, default="auto"
        The pooling ``n_features`` is counted under, as in
        :class:`LayerActivationTransformer`.
    tokenizer : callable, default=None
        Turns texts into token ids, as in :class:`LayerActivationTransformer`.
    max_length : int, default=None
        The longest text, in tokens, as in :class:`LayerActivationTransformer`.
    truncation : bool, default=False
        Cut longer texts to ``max_length`` tokens instead of refusing them.

    Returns
    -------
    layers : pandas.DataFrame
        Columns ``layer`` (a name for ``LayerActivationTransformer``),
        ``type`` (the module's class), ``output_shape`` (per sample) and
        ``n_features`` (the width of a row once ``pooling`` applies; the
        flattened width of outputs that are not token sequences). The first
        row is ``"input"`` (not for token inputs: ids have no geometry); a
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
    settings = ReadSettings(
        device=device, pooling=pooling, tokenizer=tokenizer, max_length=max_length, truncation=truncation
    )
    return ActivationReader(model, settings).list_layers(example_input)


class LayerActivationTransformer(TransformerMixin, BaseEstimator):
    """Outputs of a named layer of a torch model, as a scikit-learn transformer.

    ``transform`` runs the model in eval mode under ``torch.no_grad()``,
    batch by batch, on CUDA when present, and returns the layer's output for
    each sample as a float32 array: flattened, or, for a token sequence of
    shape (batch, tokens, hidden), pooled over the sample's real tokens. Put
    it in front of an ID estimator to measure the dimension of a
    representation.

    A forward hook records the layer; it is removed after each call, even
    when the forward pass raises, and the model's train/eval mode and device
    are restored. A module that returns a tuple (a transformer block)
    contributes its first tensor; a module called several times in one
    forward pass contributes its first call. The forward pass stops once the
    layer has fired.

    Parameters
    ----------
    model : torch.nn.Module or fitted skorch net
        A skorch net contributes its ``module_`` and its ``device``. Wrap a
        fitted net in :class:`sklearn.frozen.FrozenEstimator` so that
        ``clone`` (and hence ``GridSearchCV``) keeps it fitted. A Hugging
        Face model takes a mapping of token arrays (or texts, with
        ``tokenizer``) as keyword arguments.
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
    pooling : {"auto", "mean", "last", "first", "max", "tokens", "flatten"}, default="auto"
        How an output of shape (batch, tokens, hidden) becomes rows. Real
        tokens are those where the batch's ``attention_mask`` is 1 (every
        position without a mask: image patches, unpadded ids).

        - ``"mean"``: the mean over a sample's real tokens;
        - ``"last"``: its last real token, with left or right padding (the
          usual choice for decoders);
        - ``"first"``: its first real token (BERT's ``[CLS]``);
        - ``"max"``: the maximum over its real tokens, feature by feature;
        - ``"tokens"``: every real token is a row, sample after sample, so
          ``transform`` returns more rows than samples: the point cloud of a
          text;
        - ``"flatten"``: the whole output flattened per sample; an error for
          a padded batch of token sequences, whose padding it would mix in;
        - ``"auto"``: ``"mean"`` for a token sequence output of token inputs
          (texts, mappings of ``input_ids``), ``"flatten"`` for every other
          output (images, vectors, and a ViT's patches: pass ``"mean"`` or
          ``"first"`` to pool those).

        Any pooling but ``"flatten"`` on an output that is not (batch,
        tokens, hidden) raises an error.
    tokenizer : callable, default=None
        A Hugging Face tokenizer, for ``X`` given as texts. Texts are
        tokenized one batch at a time, with the tokenizer's special tokens,
        and padded on the right to the longest of the batch; a
        tokenizer without a padding token works (the padding is masked).
    max_length : int, default=None
        The longest text in tokens, special tokens included. None: the
        model's maximum (``config.max_position_embeddings`` or
        ``n_positions``), else the tokenizer's ``model_max_length``.
    truncation : bool, default=False
        Cut texts longer than ``max_length`` to their first ``max_length``
        tokens. When False, a longer text is an error that names it: a text
        is never cut silently.

    Attributes
    ----------
    device_ : str
        The device the forward passes run on.
    n_features_out_ : int
        Width of a row of the output.

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

    A mapping of token arrays is passed as keyword arguments, and a token
    sequence output is pooled over each sample's real tokens (here, by
    default, their mean):

    >>> class TokenModel(torch.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.embed = torch.nn.Embedding(10, 4)
    ...     def forward(self, input_ids, attention_mask=None):
    ...         return self.embed(input_ids)
    >>> tokens = {"input_ids": [[1, 2, 3], [4, 5, 0]], "attention_mask": [[1, 1, 1], [1, 1, 0]]}
    >>> model = TokenModel()
    >>> mean = LayerActivationTransformer(model, "embed", device="cpu").fit_transform(tokens)
    >>> bool(torch.allclose(torch.from_numpy(mean[1]), model.embed.weight[[4, 5]].mean(0)))
    True
    """

    _parameter_constraints: dict = {
        "model": [object],
        "layer": [str],
        **READ_CONSTRAINTS,
    }

    def __init__(
        self,
        model,
        layer,
        *,
        batch_size=128,
        device="auto",
        progress=False,
        precision="highest",
        pooling="auto",
        tokenizer=None,
        max_length=None,
        truncation=False,
    ):
        self.model = model
        self.layer = layer
        self.batch_size = batch_size
        self.device = device
        self.progress = progress
        self.precision = precision
        self.pooling = pooling
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.truncation = truncation

    def fit(self, X, y=None):
        """Check the model, the layer and the input on the first sample.

        Parameters
        ----------
        X : array-like, tensor, torch Dataset, mapping of token arrays, or list of str
            Shaped like the model's input; texts need ``tokenizer``.
        y : None
            Ignored.

        Returns
        -------
        self : LayerActivationTransformer
        """
        self._validate_params()
        reader = ActivationReader.of(self, batch_size=1)
        inputs = reader.inputs(X)
        self.device_ = reader.device
        self.n_features_out_ = reader.read([self.layer], inputs.example())[self.layer].shape[1]
        return self

    def transform(self, X):
        """The layer's output for every sample of ``X``.

        Parameters
        ----------
        X : array-like, tensor, torch Dataset, mapping of token arrays, or list of str
            Shaped like the model's input; a Dataset yields inputs,
            (input, target) pairs or mappings of token tensors.

        Returns
        -------
        activations : ndarray of shape (n_rows, ``n_features_out_``), float32
            One row per sample, or per real token with ``pooling="tokens"``.
        """
        check_is_fitted(self)
        reader = ActivationReader.of(self, device=self.device_)
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
        tags.input_tags.string = self.tokenizer is not None
        tags.non_deterministic = False
        return tags
