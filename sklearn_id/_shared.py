"""Process-wide state that overlapping calls share: the first call sets it, the last restores it.

torch's TF32 switches and a model's train/eval modes and device belong to the
whole process, not to a thread. Two overlapping calls that each saved the
state, changed it and restored their own copy would leave the second call's
view behind (the first restores while the second still runs, then the second
restores what the first had set). :class:`SharedState` counts the calls that
hold a key: the first saves and applies, the last restores, and a call that
needs another value for a key in use waits until it is free.
"""

import threading
from contextlib import contextmanager

__all__ = ["SharedState"]


class SharedState:
    """Reference-counted holds on process-wide settings, one per key.

    Examples
    --------
    >>> from sklearn_id._shared import SharedState
    >>> flags = {"tf32": True}
    >>> state = SharedState()
    >>> def save(): return flags["tf32"]
    >>> def apply(): flags.update(tf32=False)
    >>> def restore(saved): flags.update(tf32=saved)
    >>> with state.held("tf32", False, save=save, apply=apply, restore=restore):
    ...     with state.held("tf32", False, save=save, apply=apply, restore=restore):
    ...         inner = flags["tf32"]
    ...     still = flags["tf32"]
    >>> inner, still, flags["tf32"]
    (False, False, True)
    """

    def __init__(self):
        self._condition = threading.Condition()
        self._held = {}  # key -> [value, holders (thread ids, with repeats), saved]

    @contextmanager
    def held(self, key, value, *, save, apply, restore):
        """Hold ``key`` at ``value`` for the block: save and apply on the first hold, restore on the last."""
        me = threading.get_ident()
        with self._condition:
            while key in self._held and self._held[key][0] != value:
                if me in self._held[key][1]:
                    raise RuntimeError(
                        f"This thread already holds {key!r} at {self._held[key][0]!r} and now needs {value!r}: "
                        "finish the first call before starting one that needs another setting."
                    )
                self._condition.wait()
            if key in self._held:
                self._held[key][1].append(me)
            else:
                saved = save()
                try:
                    apply()
                except BaseException:
                    restore(saved)
                    raise
                self._held[key] = [value, [me], saved]
        try:
            yield
        finally:
            with self._condition:
                entry = self._held[key]
                entry[1].remove(me)
                if not entry[1]:
                    del self._held[key]
                    try:
                        restore(entry[2])
                    finally:
                        self._condition.notify_all()
