"""Fingerprints of a model and of its inputs: what tells one activation-cache entry from another.

A model's fingerprint hashes its architecture (its class and ``repr``, which
lists every submodule and its settings) and the names, shapes, dtypes and
bytes of every parameter and buffer: changing any one weight, even by one
unit in the last place, changes it. Weights that accelerate offloaded (a
parameter on the ``meta`` device) are read from the offload hook's
``weights_map``, one tensor at a time. Hashing streams each tensor once
through BLAKE2b (about 1 GB/s on one core): seconds for an 8B-parameter
model, against the hour its activations take to extract.

The inputs' fingerprint hashes what the model is given, sample after sample
and independent of the batch size: each sample's tensors, and for token
batches only its real tokens (attention mask 1), so texts are hashed as the
token ids their tokenizer made.
"""

import hashlib
import json

from sklearn_id._repeats import sample_keys

__all__ = ["canonical", "data_fingerprint", "model_fingerprint"]

# Samples per batch when hashing inputs; the fingerprint does not depend on it.
_HASH_BATCH = 256


def model_fingerprint(module):
    """The architecture's hash and the weights' hash of ``module`` (hex strings).

    Parameters
    ----------
    module : torch.nn.Module

    Returns
    -------
    fingerprint : dict with ``class``, ``architecture`` and ``weights``

    Raises
    ------
    ValueError
        For a parameter on the ``meta`` device whose values no accelerate
        hook holds (the model was built empty and never loaded).

    Examples
    --------
    >>> import torch
    >>> from sklearn_id._fingerprints import model_fingerprint
    >>> model = torch.nn.Linear(3, 2)
    >>> before = model_fingerprint(model)
    >>> with torch.no_grad():
    ...     model.weight[0, 0] += 1e-6
    >>> model_fingerprint(model)["weights"] == before["weights"]
    False
    """
    weights = hashlib.blake2b(digest_size=16)
    for name, sub in module.named_modules():
        local = [*sub.named_parameters(recurse=False), *sub.named_buffers(recurse=False)]
        for key, tensor in local:
            if tensor is None:
                continue
            values = _offloaded(sub, name, key) if tensor.is_meta else tensor
            weights.update(f"{name}.{key}:{tuple(values.shape)}:{values.dtype};".encode())
            weights.update(_tensor_bytes(values))
    kind = type(module)
    return {
        "class": f"{kind.__module__}.{kind.__qualname__}",
        "architecture": hashlib.blake2b(repr(module).encode(), digest_size=16).hexdigest(),
        "weights": weights.hexdigest(),
    }


def data_fingerprint(inputs, repeated=None):
    """The hash of what the model is given (a :class:`~sklearn_id._inputs.ModelInput`), as a hex string.

    The hash of every sample's digest in order (:func:`~sklearn_id._repeats.sample_keys`:
    its tensors, only the real tokens of a token batch). ``repeated`` (a
    :class:`~sklearn_id._repeats.RepeatedSamples`), when given, notes the
    repeated samples from the same digests.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_id._fingerprints import data_fingerprint
    >>> from sklearn_id._inputs import ModelInput
    >>> X = np.zeros((4, 3), dtype=np.float32)
    >>> data_fingerprint(ModelInput(X)) == data_fingerprint(ModelInput(X[:3]))
    False
    """
    digest = hashlib.blake2b(digest_size=16)
    for start, batch in inputs.batches(_HASH_BATCH):
        keys = sample_keys(batch) if repeated is None else repeated.add(start, batch)
        digest.update(b"".join(keys))  # not the input's kind: an array and its Dataset are the same inputs
    return digest.hexdigest()


def _offloaded(sub, name, key):
    hook = getattr(sub, "_hf_hook", None)
    hooks = getattr(hook, "hooks", [hook])  # a SequentialHook holds several
    for each in hooks:
        weights_map = getattr(each, "weights_map", None)
        if weights_map is not None and key in weights_map:
            return weights_map[key]
    raise ValueError(
        f"{name}.{key} is on the meta device and no accelerate hook holds its values, so the model cannot be "
        "fingerprinted for the activation cache: load its weights, or pass cache=None."
    )


def _tensor_bytes(tensor):
    """The tensor's bytes in memory order (on the host; a bfloat16 tensor as its raw 16-bit words)."""
    import torch

    flat = tensor.detach().reshape(-1).contiguous().cpu()
    if flat.dtype == torch.bool:
        flat = flat.to(torch.uint8)
    return memoryview(flat.view(torch.uint8).numpy())


def canonical(identity):
    """``identity`` (a JSON-able mapping) as canonical JSON, and its 20-hex-digit hash: an entry's name."""
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    return text, hashlib.blake2b(text.encode(), digest_size=10).hexdigest()
