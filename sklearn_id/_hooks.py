"""Forward hooks that read a module's outputs: the first tensor of any output, and the capture of a pass."""

import threading
from collections.abc import Mapping
from contextlib import contextmanager

__all__ = ["Capture", "StopForward", "first_tensor", "forward_hooks", "in_this_thread"]


class StopForward(Exception):
    """Raised by a hook once every requested layer has its output: the rest of the forward pass is skipped."""


def first_tensor(output):
    """A module's output, or the first tensor of a tuple/list/dict output."""
    import torch

    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping):  # Hugging Face's ModelOutput among them
        values = output.values()
    elif isinstance(output, (tuple, list)):
        values = output
    else:  # a distribution, None, a number: no tensor to read
        return None
    for value in values:
        found = first_tensor(value)
        if found is not None:
            return found
    return None


class Capture:
    """Forward hooks on the requested layers: each layer's first output of a pass, the pass ended once all fired."""

    def __init__(self, hooked):
        self.hooked = hooked
        self.outputs = {}
        self.not_tensors = {}

    def clear(self):
        self.outputs.clear()

    def hooks(self):
        return forward_hooks(self.hooked, self._make_hook)

    def _make_hook(self, name):
        def hook(_module, _inputs, output):
            if name in self.outputs:
                return
            self.outputs[name] = first_tensor(output)
            if self.outputs[name] is None:
                self.not_tensors[name] = type(output).__name__
            if len(self.outputs) == len(self.hooked):
                raise StopForward

        return hook

    def check_all_ran(self):
        if self.not_tensors:
            found = ", ".join(f"{name!r} returns a {kind}" for name, kind in sorted(self.not_tensors.items()))
            raise ValueError(
                f"No tensor to read: {found}. Pick layers whose output holds a tensor (list_layers lists them)."
            )
        missing = sorted({name for name, _ in self.hooked} - set(self.outputs))
        if missing:
            raise ValueError(
                f"Layer(s) {missing} did not run in the forward pass, so they have "
                "no output; pick layers that the model's forward() calls."
            )


def in_this_thread(hook):
    """``hook``, acting only on forward passes of the thread that registers it.

    A hook belongs to the module, and so to every thread that runs it: without
    this, a read in one thread would capture, or stop, another thread's pass.
    """
    owner = threading.get_ident()

    def hook_here(*args, **kwargs):
        if threading.get_ident() == owner:
            return hook(*args, **kwargs)
        return None

    return hook_here


@contextmanager
def forward_hooks(named_modules, make_hook):
    """Forward hooks ``make_hook(name)`` on each ``(name, module)``, for this thread's passes, removed on exit."""
    handles = [sub.register_forward_hook(in_this_thread(make_hook(name))) for name, sub in named_modules]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
