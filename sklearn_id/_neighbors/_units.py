"""Unit scaling: data far from unit size brought near it by an exact power of two, and distances back."""

import math

import numpy as np

from sklearn_id._device import is_tensor

__all__ = ["unit_for", "unit_scaled", "unscaled"]


def unit_scaled(X):
    """``X`` times a power of two that keeps its squared distances clear of over- and underflow, and that power.

    Multiplying by a power of two is exact, so distances scale exactly and
    their ratios do not change. Ordinary data are returned as they are,
    without a copy; see :func:`unit_for` for the others.
    """
    if is_tensor(X) or X.size == 0:
        return X, 1.0
    unit = unit_for(X)
    return (X, 1.0) if unit == 1.0 else (X * X.dtype.type(unit), unit)


def unit_for(*arrays):
    """The power of two that brings arrays of their largest magnitude into a safe band; 1.0 for ordinary data.

    Float64 data far from unit size (data near 1e-170, or one row near 1e160)
    are brought as high as float64's squared distances allow, so that the
    smallest distances among the other rows keep clear of subnormals
    however far the largest row lies from them. Float32 data, which must stay
    float32, are brought near unit size, clear of float32's overflow.
    """
    # max and min rather than abs(A).max(): no temporary the size of the data on this hot path.
    largest = max(max(float(A.max()), -float(A.min())) for A in arrays)
    if largest == 0 or 2.0**-60 <= largest <= 2.0**60:
        return 1.0
    exponent = np.frexp(largest)[1]
    if all(A.dtype.itemsize == 8 for A in arrays):
        ceiling = _float64_ceiling(max(A.shape[-1] for A in arrays))
        if largest > 1.0 and exponent <= ceiling:
            return 1.0
        return 2.0 ** min(ceiling - exponent, 1023)  # the largest power of two float64 holds: data near 1e-300
    return 2.0**-exponent


def _float64_ceiling(n_features):
    """The largest exponent ``e`` for which rows below ``2**e`` have float64 squared distances, Gram products
    included, far below overflow: ``16 * 4**e * n_features < 2**1004``."""
    return (1000 - math.ceil(math.log2(max(1, n_features)))) // 2


def unscaled(result, unit):
    """A search's result with its distances in the data's own units again (indices unchanged)."""
    if unit == 1.0:
        return result
    if isinstance(result, list):
        return [unscaled(level, unit) for level in result]
    if isinstance(result, tuple):
        return (result[0] / unit, *result[1:])
    return result / unit
