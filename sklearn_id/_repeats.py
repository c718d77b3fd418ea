"""Identical inputs, identical rows: the samples that repeat an earlier one get that sample's activations.

A model in eval mode maps two identical inputs to the same representation,
but its float32 kernels need not round them alike: on some CPUs (and GPUs)
a matrix product rounds a row differently by its position in the batch, so
the two outputs differ in their last bits. Exact duplicates then become
clusters of points a few units in the last place apart, whose neighbour
ratios are rounding noise: a TwoNN estimate on such a layer can be any
number, with no warning (on data with 10 copies of 40 samples, a linear
layer's ID came out 0.05). The reader therefore notes which samples repeat
an earlier one (a BLAKE2b digest of each sample's bytes: of its real tokens
for token batches) and copies the first occurrence's row onto each repeat,
so that every estimator's duplicate policy sees the exact duplicates the
inputs are. Layers with one row per token are left as they are.
"""

import hashlib
from collections.abc import Mapping

import numpy as np

from sklearn_id._inputs import batch_length, batch_mask

__all__ = ["RepeatedSamples", "sample_keys"]


def sample_keys(batch):
    """One digest (bytes) per sample of ``batch``: equal for samples the model is given identically.

    A token batch's samples are compared on their real tokens (attention
    mask 1) only: what the padding holds is not the sample.

    Examples
    --------
    >>> import torch
    >>> from sklearn_id._repeats import sample_keys
    >>> keys = sample_keys(torch.tensor([[1.0, 2.0], [3.0, 4.0], [1.0, 2.0]]))
    >>> keys[0] == keys[2], keys[0] == keys[1]
    (True, False)
    """
    n_samples = batch_length(batch)
    mask = batch_mask(batch)
    real = None if mask is None else _host_values(mask).astype(bool)
    digests = [hashlib.blake2b(digest_size=16) for _ in range(n_samples)]
    for key, tensor in sorted(batch.items()) if isinstance(batch, Mapping) else [("", batch)]:
        values = _host_values(tensor).reshape(n_samples, -1)
        tokens = real is not None and tuple(tensor.shape[:2]) == real.shape and tensor.dim() >= 2
        for index, digest in enumerate(digests):
            row = values[index].reshape(tensor.shape[1:])[real[index]] if tokens else values[index]
            digest.update(f"{key}:{row.dtype}:{row.shape};".encode())
            digest.update(np.ascontiguousarray(row).tobytes())
    return [digest.digest() for digest in digests]


def _host_values(tensor):
    """A tensor's values as a numpy array on the host, exactly: sparse ones densified, dtypes numpy lacks widened."""
    import torch

    host = tensor.detach().cpu()
    if host.layout != torch.strided:
        host = host.to_dense()
    try:
        return host.numpy()
    except TypeError:  # bfloat16, float8 and the like: float64 holds each of their values exactly
        return host.to(torch.float64 if host.is_floating_point() else torch.int64).numpy()


class RepeatedSamples:
    """The samples that repeat an earlier one, batch after batch, and the copy of their first occurrence's rows.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from sklearn_id._repeats import RepeatedSamples
    >>> repeats = RepeatedSamples()
    >>> keys = repeats.add(0, torch.tensor([[1.0], [2.0]]))
    >>> keys = repeats.add(2, torch.tensor([[1.0]]))
    >>> repeats.apply(np.array([[10.0], [20.0], [10.000001]]))[:, 0].tolist()
    [10.0, 20.0, 10.0]
    """

    def __init__(self):
        self._first = {}
        self._repeats = []

    def add(self, start, batch):
        """Note the samples of ``batch`` (samples ``start`` on) that repeat an earlier sample; their digests."""
        keys = sample_keys(batch)
        for offset, key in enumerate(keys):
            first = self._first.setdefault(key, start + offset)
            if first != start + offset:
                self._repeats.append((start + offset, first))
        return keys

    def apply(self, rows):
        """``rows`` (one per sample, an array or a tensor) with each repeat's row replaced by its first's, in place."""
        if not self._repeats:
            return rows
        repeats, firsts = np.asarray(self._repeats).T
        if not isinstance(rows, np.ndarray):
            import torch

            repeats, firsts = (torch.as_tensor(index, device=rows.device) for index in (repeats, firsts))
        rows[repeats] = rows[firsts]
        return rows
