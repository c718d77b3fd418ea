"""Token pooling: a layer's output of shape (batch, tokens, hidden) made into rows of features.

=============  ====================================================================
``pooling``    rows and features
=============  ====================================================================
``"mean"``     one row per sample: the mean over its real tokens (mask-aware)
``"last"``     one row per sample: its last real token (left or right padding)
``"first"``    one row per sample: its first real token (BERT's ``[CLS]``)
``"max"``      one row per sample: the maximum over its real tokens, feature by feature
``"tokens"``   one row per real token, sample after sample: each text's point cloud
``"flatten"``  one row per sample: the whole output flattened (any shape)
``"auto"``     ``"mean"`` for a (batch, tokens, hidden) output of token inputs (texts,
               mappings of ``input_ids``), ``"flatten"`` for every other output
=============  ====================================================================

Real tokens are the positions where ``attention_mask`` is 1; without a mask
(image patches, unpadded ids) every position is real. Pooling runs on the
device the output is on and returns float32; the mean is summed in float64.
"""

import math

__all__ = ["POOLINGS", "pool", "pooled_width", "resolve_pooling"]

POOLINGS = ("auto", "mean", "last", "first", "max", "tokens", "flatten")


def resolve_pooling(pooling, shape, has_tokens, layer):
    """The pooling that applies to an output of per-sample ``shape``; an error when it does not fit.

    Parameters
    ----------
    pooling : str
        One of :data:`POOLINGS`.
    shape : tuple of int
        The output's shape without the batch dimension.
    has_tokens : bool
        Whether the inputs are token sequences.
    layer : str
        The layer's name, for the error message.
    """
    if pooling == "auto":
        return "mean" if has_tokens and len(shape) == 2 else "flatten"
    if pooling != "flatten" and len(shape) != 2:
        raise ValueError(
            f"pooling={pooling!r} needs a token sequence, an output of shape (batch, tokens, hidden), "
            f"but layer {layer!r} outputs {tuple(shape)} per sample. Use pooling='flatten' (or 'auto') for "
            "this layer, or pick a layer that outputs token sequences (a transformer block)."
        )
    return pooling


def pooled_width(shape, pooling):
    """Features per row after ``pooling`` (resolved) of an output of per-sample ``shape``."""
    return int(math.prod(shape)) if pooling == "flatten" else int(shape[-1])


def pool(output, mask, pooling, layer):
    """Rows of features from a layer's ``output`` and the batch's attention ``mask``.

    Parameters
    ----------
    output : tensor of shape (batch, ...)
    mask : tensor of shape (batch, tokens) or None
        1 at real tokens, 0 at padding; None when every position is real.
    pooling : str
        A resolved pooling (not ``"auto"``).
    layer : str
        The layer's name, for error messages.

    Returns
    -------
    rows : float32 tensor of shape (n_rows, n_features)
        ``n_rows`` is the batch size, or the number of real tokens for
        ``"tokens"``.
    """
    import torch

    batch = output.shape[0]
    if mask is not None and output.dim() == 3 and mask.shape != output.shape[:2]:
        raise ValueError(
            f"The attention_mask has shape {tuple(mask.shape)} but layer {layer!r} outputs "
            f"{tuple(output.shape[:2])} (batch, tokens): pooling needs one mask entry per token of this "
            "output. Pick a layer whose output keeps the input's tokens, or pooling='flatten'."
        )
    if pooling == "flatten":
        if mask is not None and output.dim() == 3 and output.shape[:2] == mask.shape and not bool(mask.all()):
            raise ValueError(
                f"pooling='flatten' would mix the padding of a padded batch into layer {layer!r}'s features. "
                "Pool the tokens (pooling='mean', 'last', 'first', 'max' or 'tokens'), or give texts of one "
                "length with no padding."
            )
        return output.reshape(batch, -1).float()
    values = output.float()
    if mask is None:
        real = torch.ones(values.shape[:2], dtype=torch.bool, device=values.device)
    else:
        real = mask.to(values.device).bool()
    counts = real.sum(dim=1)
    if not bool(counts.all()):
        empty = int(torch.nonzero(counts == 0)[0, 0])
        raise ValueError(
            f"Sample {empty} of a batch has no real token (its attention_mask is all 0): it has nothing to "
            "pool. Drop empty sequences from X."
        )
    if pooling == "tokens":
        return values[real]
    if pooling == "mean":
        # Summed in float64, so the float32 mean is the exact mean rounded once, whatever the length.
        weights = real.to(torch.float64).unsqueeze(-1)
        return ((values.double() * weights).sum(dim=1) / counts.to(torch.float64).unsqueeze(-1)).float()
    if pooling == "max":
        return values.masked_fill(~real.unsqueeze(-1), float("-inf")).amax(dim=1)
    positions = torch.arange(1, real.shape[1] + 1, device=values.device)
    if pooling == "last":
        index = (real * positions).argmax(dim=1)
    elif pooling == "first":
        index = (real * positions.flip(0)).argmax(dim=1)
    else:
        raise ValueError(f"Unknown pooling {pooling!r}; use one of {', '.join(POOLINGS)}.")
    return values[torch.arange(batch, device=values.device), index]
