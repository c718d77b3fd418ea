"""Where a warning points: the first frame outside the package, so that it names the user's line.

A fixed ``stacklevel`` is right for one call path only: the same warning
reached through a Pipeline, a profile or a sweep would point inside this
package. pandas finds the first frame outside itself for the same reason;
here the frames of the libraries that call estimators on the user's behalf
(scikit-learn's validation wrappers and pipelines, joblib, skorch) are passed
over too.
"""

import sys

__all__ = ["find_stack_level"]

_PASSED_OVER = frozenset({"sklearn_id", "sklearn", "joblib", "skorch"})


def find_stack_level():
    """The ``stacklevel`` that makes a ``warnings.warn`` called by the caller point at the user's line.

    Examples
    --------
    ``warnings.warn(message, Category, stacklevel=find_stack_level())``;
    from the frame that calls it, it counts the frames up to the first one
    outside these libraries:

    >>> from sklearn_id._warnings import find_stack_level
    >>> find_stack_level() >= 1
    True
    """
    frame = sys._getframe(1)  # the caller of find_stack_level, which calls warnings.warn: level 1
    level = 1
    while frame.f_back is not None and frame.f_globals.get("__name__", "").partition(".")[0] in _PASSED_OVER:
        frame = frame.f_back
        level += 1
    return level
