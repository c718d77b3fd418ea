"""Unit scaling: data far from unit size brought near it by an exact power of two, and distances back."""

import numpy as np

from sklearn_id._device import is_tensor

__all__ = ["unit_for", "unit_scaled", "unscaled"]


def unit_scaled(X):
    """``X`` times a power of two that brings it near unit size, and that power, when it is far from it.

    Multiplying by a power of two is exact, so distances scale exactly and
    their ratios do not change; it keeps squared distances clear of float64's
    underflow (data near 1e-170) and the float32 screen clear of overflow
    (data near 1e39). Ordinary data are returned as they are, without a copy.
    """
    if is_tensor(X) or X.size == 0:
        return X, 1.0
    unit = unit_for(X)
    return (X, 1.0) if unit == 1.0 else (X * X.dtype.type(unit), unit)


def unit_for(*arrays):
    """The power of two that brings arrays of their largest magnitude near unit size; 1.0 for ordinary data."""
    # max and min rather than abs(A).max(): no temporary the size of the data on this hot path.
    largest = max(max(float(A.max()), -float(A.min())) for A in arrays)
    if largest == 0 or 2.0**-60 <= largest <= 2.0**60:
        return 1.0
    return 2.0 ** -np.frexp(largest)[1]


def unscaled(result, unit):
    """A search's result with its distances in the data's own units again (indices unchanged)."""
    if unit == 1.0:
        return result
    if isinstance(result, list):
        return [unscaled(level, unit) for level in result]
    if isinstance(result, tuple):
        return (result[0] / unit, *result[1:])
    return result / unit
