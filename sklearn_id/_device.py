"""Where work runs: the one resolver of every ``device`` parameter, and its constraint.

torch is imported only when the answer needs it: ``"cpu"``, and ``"auto"`` on
a machine without an NVIDIA driver, resolve without it.
"""

import os
import re
import sys

from sklearn.utils._param_validation import StrOptions

__all__ = ["DEVICE_CONSTRAINT", "resolve_device"]

_CUDA_INDEX = re.compile(r"cuda:\d+")


class _DeviceOptions(StrOptions):
    """``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a CPU or CUDA ``torch.device``."""

    def __init__(self):
        super().__init__({"auto", "cpu", "cuda"})

    def is_satisfied_by(self, val):
        if isinstance(val, str):
            return val in self.options or bool(_CUDA_INDEX.fullmatch(val))
        return _is_torch_device(val) and val.type in ("cpu", "cuda")

    def __str__(self):
        return "a device: 'auto', 'cpu', 'cuda', 'cuda:N' or a CPU or CUDA torch.device"


#: The ``_parameter_constraints`` entry of every ``device`` parameter.
DEVICE_CONSTRAINT = _DeviceOptions()


def _is_torch_device(value):
    # Checked by name, so that validating a parameter never imports torch.
    return type(value).__name__ == "device" and type(value).__module__ == "torch"


def resolve_device(device, preferred=None):
    """The device, as a string, that a ``device`` parameter asks for.

    Parameters
    ----------
    device : str or torch.device
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a ``torch.device``.
    preferred : str or torch.device, default=None
        What ``"auto"`` means for this model: a skorch net's ``device``. A
        preferred CUDA device on a machine without one falls back to the CPU.

    Returns
    -------
    device : str
        ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Raises
    ------
    ValueError
        For a value that names no device, or a CUDA device that torch does not see.

    Examples
    --------
    >>> from sklearn_id._device import resolve_device
    >>> resolve_device("cpu")
    'cpu'
    """
    if not DEVICE_CONSTRAINT.is_satisfied_by(device):
        raise ValueError(f"device={device!r} is not {DEVICE_CONSTRAINT}.")
    device = str(device)
    if device == "auto":
        if preferred is not None:
            preferred = str(preferred)
            return preferred if preferred == "cpu" or _cuda_available() else "cpu"
        return "cuda" if _cuda_available() else "cpu"
    if device != "cpu" and not _cuda_available():
        raise ValueError(
            f"device={device!r} was requested but torch sees no CUDA device; "
            "use device='cpu' or device='auto'."
        )
    if _CUDA_INDEX.fullmatch(device):
        import torch

        if int(device[5:]) >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} was requested but torch sees {torch.cuda.device_count()} "
                "CUDA device(s); use 'cuda' or an index below that."
            )
    return device


def _cuda_available():
    """Whether torch sees a CUDA device; without an NVIDIA driver, answered without importing torch."""
    if "torch" not in sys.modules and not _nvidia_driver_present():
        return False
    import torch

    return torch.cuda.is_available()


def _nvidia_driver_present():
    return os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/nvidiactl")
