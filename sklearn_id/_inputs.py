"""What a model takes, batch by batch: arrays, tensors, Datasets, mappings of token arrays, texts with a tokenizer.

A batch is a tensor, passed to the model as ``model(batch)``, or a dict of
tensors (``input_ids``, ``attention_mask``, ...), passed as
``model(**batch)``. Batches of token sequences carry their
``attention_mask``; texts are tokenized here, batch by batch, and padded to
the longest text of their batch.
"""

from collections.abc import Mapping

import numpy as np

__all__ = [
    "ModelInput",
    "batch_length",
    "batch_mask",
    "batch_slice",
    "batch_to",
    "is_text",
    "model_max_length",
]

MASK = "attention_mask"


def is_text(X):
    """Whether ``X`` is a list, tuple, 1-D array or Series of strings."""
    if isinstance(X, str):
        return False
    if isinstance(X, (list, tuple)):
        return len(X) > 0 and isinstance(X[0], str)
    if getattr(X, "ndim", None) != 1 or len(X) == 0:
        return False
    if getattr(X.dtype, "kind", "O") in "biufcmM":
        return False
    first = X.iloc[0] if hasattr(X, "iloc") else X[0]
    return isinstance(first, str)


def model_max_length(module, tokenizer=None):
    """The longest token sequence the model takes: its config's positions, else the tokenizer's limit, else None."""
    config = getattr(module, "config", None)
    for key in ("max_position_embeddings", "n_positions", "max_seq_len"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    value = getattr(tokenizer, "model_max_length", None)
    # Tokenizers without a limit report a huge sentinel (int(1e30)).
    return value if isinstance(value, int) and 0 < value < 1_000_000 else None


def batch_length(batch):
    """Number of samples in a batch."""
    if isinstance(batch, Mapping):
        return len(next(iter(batch.values())))
    return len(batch)


def batch_mask(batch):
    """The batch's attention mask, or None when every position is real."""
    return batch.get(MASK) if isinstance(batch, Mapping) else None


def batch_slice(batch, start, stop):
    """Samples ``start:stop`` of a batch."""
    if isinstance(batch, Mapping):
        return {key: value[start:stop] for key, value in batch.items()}
    return batch[start:stop]


def batch_to(batch, device, dtype=None, memory_format=None):
    """The batch on ``device``; floating tensors in ``dtype`` (token ids keep theirs)."""
    import torch

    def move(tensor):
        if dtype is not None and tensor.is_floating_point():
            tensor = tensor.to(dtype)
        tensor = tensor.to(device, non_blocking=True)
        if memory_format is not None and tensor.dim() == 4 and tensor.is_floating_point():
            tensor = tensor.contiguous(memory_format=memory_format)
        return tensor

    if isinstance(batch, Mapping):
        return {key: move(value) for key, value in batch.items()}
    return move(batch if isinstance(batch, torch.Tensor) else torch.as_tensor(batch))


class ModelInput:
    """``X`` as the model takes it: its sample count, its first sample, and its batches.

    Parameters
    ----------
    X : array-like, tensor, torch Dataset, mapping of arrays, or list of str
        - an array or tensor shaped like the model's input, samples first;
        - a torch ``Dataset`` yielding inputs, (input, target) pairs, or
          mappings of tensors (collated by torch's ``DataLoader``);
        - a mapping (a dict or ``transformers.BatchEncoding``) of arrays
          with the samples first (``input_ids``, ``attention_mask``, ...),
          passed to the model as keyword arguments;
        - texts (a list, tuple, array or Series of str), with ``tokenizer``.
    tokenizer : callable, default=None
        A Hugging Face tokenizer, or any callable that maps a list of texts
        to a mapping with ``input_ids`` (lists of ids). Texts are tokenized
        one batch at a time and padded on the right to the longest text of
        the batch, whatever the tokenizer's ``padding_side``: each text keeps
        its own positions, so its activations do not depend on its batch,
        for any model (a wrapper whose ``forward`` takes ``**kwargs``
        included). The padded positions carry the tokenizer's
        ``pad_token_id`` (0 when it has none) and are masked, so a tokenizer
        without a padding token works.
    max_length : int, default=None
        The longest text, in tokens, special tokens included. None: the
        model's maximum (``config.max_position_embeddings`` or
        ``n_positions``), else the tokenizer's ``model_max_length``.
    truncation : bool, default=False
        Cut texts longer than ``max_length`` to their first ``max_length``
        tokens (on the tokenizer's ``truncation_side``). When False, such a
        text is a ``ValueError``: a text is never cut without being asked.
    module : torch.nn.Module, default=None
        The model, whose config gives the default ``max_length``.
    """

    def __init__(self, X, *, tokenizer=None, max_length=None, truncation=False, module=None):
        import torch
        from torch.utils.data import Dataset

        self.X = X
        self.tokenizer = tokenizer
        self.truncation = truncation
        if is_text(X):
            if tokenizer is None:
                raise TypeError(
                    "X holds texts: pass tokenizer=... (a Hugging Face tokenizer) so that they become "
                    "token ids, or pass the tokenized mapping (input_ids, attention_mask) as X."
                )
            self.kind = "text"
            limit = model_max_length(module, tokenizer)
            if max_length is not None and limit is not None and max_length > limit:
                raise ValueError(
                    f"max_length={max_length} is more than the {limit} positions the model takes: "
                    f"pass max_length of at most {limit}."
                )
            self.max_length = max_length if max_length is not None else limit
        elif isinstance(X, Mapping):
            self.kind = "mapping"
            self.X = _check_mapping(X)
            _check_vocabulary(self.X.get("input_ids"), module)
            _check_positions(self.X.get("input_ids"), module)
        elif isinstance(X, Dataset):
            self.kind = "dataset"
        elif isinstance(X, str):
            raise TypeError("X is one string: pass a list of texts, e.g. [text], with a tokenizer.")
        elif isinstance(X, torch.Tensor):
            self.kind = "tensor"
        else:
            self.kind = "array"
            self.X = _as_array(X)
        self.n_samples = self._count()

    def _count(self):
        X = self.X
        try:
            n_samples = batch_length(X) if self.kind == "mapping" else len(X)
        except TypeError as exc:
            raise TypeError(
                "X must be an array or tensor shaped like the model's input, a torch Dataset with a "
                "length, a mapping of token arrays, or a list of texts with a tokenizer; got "
                f"{type(X).__name__}."
            ) from exc
        if n_samples == 0:
            raise ValueError("X is empty: at least one sample is needed to compute activations.")
        return n_samples

    @property
    def has_tokens(self):
        """Whether the batches are token sequences: texts, mappings, or a Dataset of mappings."""
        if self.kind == "dataset":
            return isinstance(self.example(), Mapping)
        return self.kind in ("text", "mapping")

    def n_real_tokens(self, batch_size):
        """The number of real tokens (attention mask 1) over all samples; None when the batches carry no mask."""
        if not self.has_tokens:
            return None
        masks = [batch_mask(batch) for _, batch in self.batches(batch_size)]
        if any(mask is None for mask in masks):
            return None
        return int(sum(int(mask.sum()) for mask in masks))

    def token_owners(self, batch_size, n_tokens):
        """The sample of each row that ``pooling="tokens"`` makes: its real tokens, sample after sample.

        ``n_tokens`` is the layers' token count, each sample's when the batches carry no mask.
        """
        if not self.has_tokens:
            return np.repeat(np.arange(self.n_samples), n_tokens)
        masks = [batch_mask(batch) for _, batch in self.batches(batch_size)]
        if any(mask is None for mask in masks):
            return np.repeat(np.arange(self.n_samples), n_tokens)
        counts = np.concatenate([mask.sum(dim=1).cpu().numpy() for mask in masks]).astype(np.int64)
        return np.repeat(np.arange(counts.size), counts)

    def example(self):
        """The first sample, as a batch of one."""
        return next(self._batches(1))[1]

    def batches(self, batch_size, *, start=0):
        """Yield ``(start, batch)`` over the samples from ``start`` on, in order; earlier ones are never loaded."""
        return self._batches(batch_size, start)

    def _batches(self, batch_size, first=0):
        import torch
        from torch.utils.data import DataLoader, Subset

        X = self.X
        if self.kind == "dataset":
            # A generator of its own: a DataLoader would otherwise draw its seed from torch's global one.
            rest = X if first == 0 else Subset(X, range(first, self.n_samples))
            loader = DataLoader(rest, batch_size=batch_size, shuffle=False, generator=torch.Generator())
            start = first
            for batch in loader:
                inputs = batch[0] if isinstance(batch, (tuple, list)) else batch
                yield start, inputs
                start += batch_length(inputs)
            return
        for start in range(first, self.n_samples, batch_size):
            stop = start + batch_size
            if self.kind == "text":
                yield start, self._encode(X[start:stop], start)
            elif self.kind == "mapping":
                yield start, {key: torch.as_tensor(value[start:stop]) for key, value in X.items()}
            else:
                yield start, torch.as_tensor(X[start:stop])

    def _encode(self, texts, start):
        """Token ids and mask of a batch of texts, padded to its longest."""
        import torch

        texts = list(texts)
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(
                    f"Text {start + i} is a {type(text).__name__}, not a str: every text must be a string; "
                    "drop it from X or replace it."
                )
            if not text.strip():
                raise ValueError(f"Text {start + i} is empty: it has no tokens to represent. Drop empty texts from X.")
        cut = self.truncation and self.max_length is not None
        encoded = self.tokenizer(texts, truncation=bool(cut), max_length=self.max_length if cut else None)
        if "input_ids" not in encoded:
            raise TypeError(
                f"The tokenizer returned {sorted(encoded)} without 'input_ids'; pass a Hugging Face "
                "tokenizer, or a callable that returns input_ids."
            )
        lengths = [len(ids) for ids in encoded["input_ids"]]
        for i, length in enumerate(lengths):
            if length == 0:
                raise ValueError(f"Text {start + i} has no tokens once tokenized. Drop it from X.")
            if self.max_length is not None and length > self.max_length:
                raise ValueError(
                    f"Text {start + i} has {length} tokens, more than max_length={self.max_length}, the "
                    "model's limit. Pass truncation=True to keep its first max_length tokens, a larger "
                    "max_length if the model takes it, or split the text."
                )
        # Padded on the right: a text's positions, and so its activations, do not depend on its batch (left
        # padding would shift them for any model not given position ids, which a wrapper's **kwargs hides).
        width = max(lengths)
        pad_id = getattr(self.tokenizer, "pad_token_id", None) or 0
        batch = {}
        for key, values in encoded.items():
            if not (isinstance(values, list) and [len(v) for v in values] == lengths):
                continue  # not one entry per token (e.g. an overflow mapping)
            fill = pad_id if key == "input_ids" else 0
            batch[key] = torch.tensor([list(v) + [fill] * (width - len(v)) for v in values])
        if MASK not in batch:
            batch[MASK] = (torch.arange(width) < torch.tensor(lengths)[:, None]).long()
        return batch


def _check_mapping(X):
    """The mapping's values as arrays or tensors with one row per sample, and a mask shaped like the ids."""
    import torch

    if not X:
        raise ValueError("X is an empty mapping: pass input_ids (and attention_mask) with the samples first.")
    values = {}
    for key, value in X.items():
        if not isinstance(value, torch.Tensor):
            try:
                value = np.asarray(value)
            except ValueError:  # numpy's "inhomogeneous shape"
                raise ValueError(
                    f"The rows of X[{key!r}] have different lengths: pad them to one length and pass an "
                    "attention_mask (1 on real tokens, 0 on padding), or pass the texts with a tokenizer."
                ) from None
        if value.ndim == 0:
            raise ValueError(f"X[{key!r}] is a scalar; every entry of a mapping input holds one row per sample.")
        values[key] = value
    lengths = {key: len(value) for key, value in values.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"The entries of X have different numbers of samples: {lengths}.")
    if MASK in values:
        reference = values.get("input_ids")
        mask = values[MASK]
        if reference is not None and tuple(mask.shape) != tuple(reference.shape):
            raise ValueError(
                f"X['attention_mask'] has shape {tuple(mask.shape)} but X['input_ids'] has shape "
                f"{tuple(reference.shape)}: the mask needs one entry per token."
            )
        if mask.ndim != 2:
            raise ValueError(f"X['attention_mask'] must be 2-D (samples, tokens); it has shape {tuple(mask.shape)}.")
        unique = torch.unique(torch.as_tensor(mask))
        if not all(value in (0, 1) for value in unique.tolist()):
            raise ValueError("X['attention_mask'] must hold only 0 (padding) and 1 (real token).")
    return values


def _check_vocabulary(ids, module):
    """Token ids within the input embedding a model names (Hugging Face's ``get_input_embeddings``)."""
    import torch

    if ids is None or module is None or len(ids) == 0:
        return
    embedding = _input_embedding(module)
    if not isinstance(embedding, torch.nn.Embedding):
        return
    low, high = int(torch.as_tensor(ids).min()), int(torch.as_tensor(ids).max())
    if low < 0 or high >= embedding.num_embeddings:
        raise ValueError(
            f"X['input_ids'] holds ids from {low} to {high}, but the model's embedding has "
            f"{embedding.num_embeddings} rows (ids 0 to {embedding.num_embeddings - 1}): tokenize with the "
            "model's own tokenizer."
        )


def _input_embedding(module):
    """The token embedding a model names (Hugging Face's ``get_input_embeddings``), or None."""
    getter = getattr(module, "get_input_embeddings", None)
    try:
        return getter() if callable(getter) else None
    except NotImplementedError:
        return None


def _check_positions(ids, module):
    """Sequences no longer than a learned table of positions (GPT-2's ``wpe``, BERT's ``position_embeddings``).

    A model whose config names its positions and that holds an embedding of
    exactly that many rows besides its input embedding fails on longer
    sequences with an ``IndexError`` deep in its forward; rotary or relative
    positions have no such table and are not limited here.
    """
    import torch

    if ids is None or module is None:
        return
    shape, limit = torch.as_tensor(ids).shape, model_max_length(module)
    if len(shape) != 2 or limit is None or shape[1] <= limit:
        return
    tokens = _input_embedding(module)
    if any(
        isinstance(sub, torch.nn.Embedding) and sub is not tokens and sub.num_embeddings == limit
        for sub in module.modules()
    ):
        raise ValueError(
            f"X['input_ids'] has {shape[1]} tokens per sample, but the model's position embedding holds {limit} "
            f"positions: cut the sequences to at most {limit} tokens (truncation=True, max_length={limit})."
        )


def _as_array(X):
    """``X`` as an ndarray: a pandas DataFrame (a pipeline's pandas output), nested lists, anything numpy takes."""
    if isinstance(X, np.ndarray) or not hasattr(X, "__len__"):
        return X
    array = np.asarray(X)
    if array.dtype.kind not in "biufc":
        raise TypeError(
            f"X ({type(X).__name__}) does not convert to a numeric array: pass numbers shaped like the "
            "model's input, a tensor, a torch Dataset, or texts with a tokenizer."
        )
    # pandas hands out read-only views (copy-on-write); torch wants memory it may write to.
    return array if array.flags.writeable else array.copy()
