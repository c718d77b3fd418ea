"""Checkpoints: the one reader of a saved state dict and the one loader into a module, for the command line and sweeps.

A checkpoint is read with ``torch.load(weights_only=True)``, so a file never
runs code; the wrappers training scripts put around a state dict
(``{"state_dict": ...}``, ``{"model_state_dict": ...}``, ``{"model": ...}``)
are unwrapped and DataParallel's ``module.`` prefix is dropped. Loading names
the missing, unexpected and misshapen keys instead of torch's long listing.
"""

from collections.abc import Mapping
from pathlib import Path

__all__ = ["load_into", "read_state_dict"]

_WRAPPERS = ("state_dict", "model_state_dict", "model")
_PREFIX = "module."


def read_state_dict(spec):
    """The state dict a checkpoint holds: ``spec`` is a file's path or the mapping itself.

    Raises
    ------
    ValueError
        For a file that does not load with ``weights_only=True``, and for
        anything that is not a non-empty mapping of names to tensors once
        unwrapped.

    Examples
    --------
    >>> import torch
    >>> from sklearn_id._state_dict import read_state_dict
    >>> saved = {"state_dict": {"module.weight": torch.zeros(2)}, "epoch": 3}
    >>> list(read_state_dict(saved))
    ['weight']
    """
    import torch

    state = spec
    if isinstance(spec, (str, Path)):
        try:
            state = torch.load(spec, map_location="cpu", weights_only=True)
        except Exception as error:  # torch raises many kinds for a file that is not a checkpoint
            raise ValueError(
                f"not a torch checkpoint that loads with weights_only=True ({type(error).__name__})."
            ) from None
    for key in _WRAPPERS:
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
    if not isinstance(state, Mapping) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(
            "not a state dict (a mapping of parameter names to tensors); save one with "
            "torch.save(model.state_dict(), PATH)."
        )
    if all(key.startswith(_PREFIX) for key in state):
        state = {key[len(_PREFIX) :]: value for key, value in state.items()}
    return dict(state)


def load_into(module, state, name):
    """Load the state dict ``state`` into ``module`` (called ``name`` in the error); return the module.

    Raises
    ------
    ValueError
        Naming the first missing, unexpected and misshapen keys, with their counts.
    """
    expected = module.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    wrong_shape = [key for key in expected if key in state and state[key].shape != expected[key].shape]
    if missing or unexpected or wrong_shape:
        parts = [
            f"{label} {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''} ({len(keys)})"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong_shape))
            if keys
        ]
        raise ValueError(f"is not a state dict of {name}: {'; '.join(parts)}.")
    module.load_state_dict(state)
    return module
