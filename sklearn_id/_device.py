"""Where work runs, in what precision: the one resolver of every ``device`` parameter, and the float32 guard.

torch is imported only when the answer needs it: ``"cpu"``, and ``"auto"`` on
a machine without an NVIDIA driver, resolve without it.
"""

import contextvars
import os
import re
import sys
from contextlib import contextmanager

import numpy as np
from sklearn.utils._param_validation import StrOptions

from sklearn_id._shared import SharedState

__all__ = [
    "DEVICE_CONSTRAINT",
    "PRECISIONS",
    "as_numpy",
    "available_memory",
    "count_nonfinite",
    "fits_on_device",
    "float32_precision",
    "is_tensor",
    "placed_device",
    "preferred_device",
    "preferring_device",
    "resolve_device",
]

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


def is_tensor(X):
    """Whether ``X`` is a torch tensor (checked without importing torch)."""
    return type(X).__name__ in ("Tensor", "Parameter") and type(X).__module__.startswith("torch")


def as_numpy(X):
    """``X`` as a numpy array: a tensor is copied to the host, anything else is returned as it is."""
    return X.detach().cpu().numpy() if is_tensor(X) else X


def count_nonfinite(X):
    """How many entries of an array or tensor are NaN or infinite, counted where the data are."""
    if is_tensor(X):
        import torch

        return int((~torch.isfinite(X)).sum())
    return int(np.size(X) - np.count_nonzero(np.isfinite(X)))


def placed_device(module):
    """Where the inputs of a model that must stay where it is go; None for a model the package may move.

    A model stays where it is when accelerate dispatched it (an
    ``hf_device_map``, or accelerate's hooks on its modules: some of it may be
    offloaded to the CPU or to disk, or spread over several GPUs), or when
    its parameters and buffers already live on more than one device. Its
    inputs go to the device of its first module (the embedding), the host
    when that module is offloaded; accelerate's hooks move them on from there.
    """
    device_map = getattr(module, "hf_device_map", None)
    hooked = any(hasattr(sub, "_hf_hook") for sub in module.modules())
    tensors = [*module.parameters(), *module.buffers()]
    devices = {str(tensor.device) for tensor in tensors if tensor.device.type != "meta"}
    if not device_map and not hooked and len(devices) <= 1:
        return None
    if device_map:
        first = next(iter(device_map.values()))
        first = f"cuda:{first}" if isinstance(first, int) else str(first)
        return "cpu" if first in ("disk", "meta") else first
    return next((str(t.device) for t in tensors if t.device.type != "meta"), "cpu")


def _placed_on(device, placed):
    """``placed``, unless ``device`` names another device: a model dispatched over its devices is not moved."""
    if device != "auto":
        asked = resolve_device(device)
        if asked == "cuda":
            import torch

            asked = f"cuda:{torch.cuda.current_device()}"
        if asked != placed:
            raise ValueError(
                f"The model is dispatched over its devices (its first module is on {placed!r}), so it is used "
                f"where it lives and device={device!r} cannot be honoured: pass device='auto' or "
                f"device={placed!r}."
            )
    return placed


def _is_torch_device(value):
    # Checked by name, so that validating a parameter never imports torch.
    return type(value).__name__ == "device" and type(value).__module__ == "torch"


def resolve_device(device, preferred=None, *, placed=None):
    """The device, as a string, that a ``device`` parameter asks for.

    Parameters
    ----------
    device : str or torch.device
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a ``torch.device``.
    preferred : str or torch.device, default=None
        What ``"auto"`` means for this model: a skorch net's ``device``. A
        preferred CUDA device on a machine without one falls back to the CPU.
    placed : str, default=None
        For a model used where it lives (:func:`placed_device`), the device
        of its inputs: what ``"auto"`` means, and the only other device
        accepted.

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
    if placed is not None:
        return _placed_on(str(device), placed)
    device = str(device)
    if device == "auto":
        if preferred is not None:
            preferred = str(preferred)
            return preferred if preferred == "cpu" or _cuda_available() else "cpu"
        return "cuda" if _cuda_available() else "cpu"
    if device != "cpu" and not _cuda_available():
        raise ValueError(
            f"device={device!r} was requested but torch sees no CUDA device; use device='cpu' or device='auto'."
        )
    if _CUDA_INDEX.fullmatch(device):
        import torch

        if int(device[5:]) >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} was requested but torch sees {torch.cuda.device_count()} "
                "CUDA device(s); use 'cuda' or an index below that."
            )
    return device


# What an estimator's device="auto" means inside a call that resolved its own device; one per thread.
_PREFERRED = contextvars.ContextVar("sklearn_id_preferred_device", default=None)


@contextmanager
def preferring_device(device):
    """Within the block, an estimator's ``device="auto"`` means ``device``: the device of the call driving it.

    A scorer reads a layer on the device its ``device`` names and then fits
    the user's estimator; inside this block that estimator's neighbour search
    runs there too, unless the estimator names a device of its own.

    Examples
    --------
    >>> from sklearn_id._device import preferred_device, preferring_device
    >>> with preferring_device("cpu"):
    ...     preferred_device()
    'cpu'
    >>> preferred_device() is None
    True
    """
    token = _PREFERRED.set(device)
    try:
        yield
    finally:
        _PREFERRED.reset(token)


def preferred_device():
    """The device that :func:`preferring_device` set for this thread, or None."""
    return _PREFERRED.get()


def _cuda_available():
    """Whether torch sees a CUDA device; without an NVIDIA driver, answered without importing torch."""
    if "torch" not in sys.modules and not _nvidia_driver_present():
        return False
    import torch

    return torch.cuda.is_available()


def _nvidia_driver_present():
    return os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/nvidiactl")


PRECISIONS = ("highest", "tf32", "bf16")


@contextmanager
def float32_precision(precision="highest", device="cpu"):
    """Run the block with float32 products in full float32, in TF32, or under bfloat16 autocast.

    ``"highest"`` turns TF32 off for matrix products and cuDNN convolutions
    (CUDA's default runs convolutions in TF32, whose 10-bit mantissa makes GPU
    activations differ from the CPU's by about 1e-3); ``"tf32"`` turns it on;
    ``"bf16"`` keeps TF32 off and runs the block under
    ``torch.autocast(dtype=torch.bfloat16)``. Every global flag is restored
    when the block exits, also when it raises.

    Parameters
    ----------
    precision : {"highest", "tf32", "bf16"}, default="highest"
    device : str, default="cpu"
        The device whose autocast ``"bf16"`` enables.
    """
    import torch

    switches = _tf32_switches(torch)
    tf32 = precision == "tf32"

    def save():
        return [getattr(owner, name) for owner, name, _, _ in switches]

    def apply():
        for owner, name, off, on in switches:
            setattr(owner, name, on if tf32 else off)

    def restore(saved):
        for (owner, name, _, _), value in zip(switches, saved):
            setattr(owner, name, value)

    # The switches are the process's: overlapping calls share one hold (see _shared); autocast is per thread.
    with _TF32.held("tf32", tf32, save=save, apply=apply, restore=restore):
        if precision == "bf16":
            with torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16):
                yield
        else:
            yield


_TF32 = SharedState()


def _tf32_switches(torch):
    """``(owner, attribute, off, on)`` of each TF32 switch, in torch's per-backend API when it has one.

    Newer torch refuses a mix of its two APIs, so only one is touched.
    """
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    if hasattr(matmul, "fp32_precision") and hasattr(getattr(cudnn, "conv", None), "fp32_precision"):
        owners = [matmul, cudnn.conv] + ([cudnn.rnn] if hasattr(getattr(cudnn, "rnn", None), "fp32_precision") else [])
        return [(owner, "fp32_precision", "ieee", "tf32") for owner in owners]
    return [(matmul, "allow_tf32", False, True), (cudnn, "allow_tf32", False, True)]


def available_memory(device="cpu"):
    """Bytes of memory free for new work on ``device``.

    The host's ``MemAvailable`` (what the kernel can hand out without
    swapping; ``os.sysconf`` where ``/proc/meminfo`` is absent), or the free
    memory of a CUDA device as its driver reports it.

    Parameters
    ----------
    device : str, default="cpu"
        ``"cpu"`` or a CUDA device, as :func:`resolve_device` returns it.

    Returns
    -------
    n_bytes : int

    Examples
    --------
    >>> from sklearn_id._device import available_memory
    >>> available_memory() > 0
    True
    """
    if str(device) != "cpu":
        import torch

        return int(torch.cuda.mem_get_info(torch.device(device))[0])
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def fits_on_device(device, n_bytes):
    """Whether ``n_bytes`` of activations may stay on ``device`` for the work after them: a CUDA device with at
    least four times that much memory free (the CPU's activations are on the host already)."""
    return device != "cpu" and n_bytes <= available_memory(device) // 4
