"""Telling a Ctrl-C from a deliberate stop while skorch trains.

skorch ends ``fit`` quietly on any ``KeyboardInterrupt``: the user's Ctrl-C and
``EarlyStopping``'s own stop look the same afterwards, and a net stopped by
Ctrl-C returns as if it were trained. :func:`noticing_interrupts` watches
SIGINT for the length of a block and chains to the handler it found, so the
caller can raise :class:`TrainingInterrupted` once skorch has returned.
"""

import contextlib
import signal
import threading

__all__ = ["TrainingInterrupted", "noticing_interrupts"]


class TrainingInterrupted(KeyboardInterrupt):
    """Training was stopped by SIGINT (Ctrl-C) before its last epoch.

    A ``KeyboardInterrupt``, so that it stops a ``GridSearchCV`` or a script as
    the Ctrl-C would have, rather than being scored as a failed fit.
    """


class _Watch:
    interrupted = False


@contextlib.contextmanager
def noticing_interrupts():
    """Record whether SIGINT arrives inside the block; the handler is restored on exit.

    Outside the main thread, or when the current handler was not installed
    from Python, nothing is installed (a Ctrl-C cannot reach such a block) and
    ``interrupted`` stays False.

    Yields
    ------
    watch : object
        ``watch.interrupted`` is True once a SIGINT has arrived.
    """
    watch = _Watch()
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or previous is None:
        yield watch
        return

    def handler(signum, frame):
        if previous is signal.SIG_IGN:
            return
        watch.interrupted = True
        if callable(previous):
            previous(signum, frame)
        else:  # SIG_DFL: what Python's own handler does
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    try:
        yield watch
    finally:
        signal.signal(signal.SIGINT, previous)
