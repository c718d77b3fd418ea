"""Tolerances derived from float32 rounding, for tests that compare activations or their IDs.

Two float32 evaluations of one network on one input differ only in rounding: another CPU's kernels,
another blocking or another batch size sum the same products in another order. Each rounding of a
float32 sum of n products contributes an error of at most u = 2**-24 relative to the partial sum;
errors of independent roundings add like a random walk, so one evaluation's error in an activation
has a standard deviation of about sqrt(n) u times its magnitude, and the difference of two
evaluations sqrt(2 n) u (Higham, *Accuracy and Stability of Numerical Algorithms*, section 2.8, on
the statistical bound against the worst-case n u). ``accumulation_length`` counts the products
summed along a forward pass: for every weight, the larger of its two sides (a linear map sums over
one of them, a convolution over its kernel), added over the layers, since errors carried from layer
to layer add. The magnitude is the layer's root mean square.

The tolerances are six of those standard deviations: exceeded by chance with a probability of about
1e-9 per comparison, and still a thousand times smaller than what a wrong layer, pooling or mask
changes (a percent or more of an ID, the whole size of an activation).
"""

import math

import numpy as np
from sklearn.neighbors import NearestNeighbors

UNIT_ROUNDOFF = 2.0**-24
SIGMAS = 6


def accumulation_length(model):
    """The products summed, layer after layer, by one forward pass of ``model`` (an upper bound)."""
    return sum(max(p[0].numel(), p.shape[0]) for p in model.parameters() if p.dim() >= 2)


def rounding_std(model, reference):
    """The standard deviation of the difference of two float32 evaluations of one of ``reference``'s entries."""
    rms = math.sqrt(float(np.mean(np.square(np.asarray(reference, dtype=np.float64)))))
    return math.sqrt(2 * accumulation_length(model)) * UNIT_ROUNDOFF * rms


def assert_float32_close(actual, expected, model):
    """``actual`` and ``expected`` are two float32 evaluations of ``model``'s activations."""
    atol = SIGMAS * rounding_std(model, expected)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=atol)


def twonn_tolerance(X, model, discard_fraction=0.1):
    """How far TwoNN's linear-fit ID of another float32 evaluation of activations ``X`` can be.

    To first order, an entry error of standard deviation sigma moves each distance r by the
    projection of two points' errors on the line between them (standard deviation sqrt(2) sigma),
    each log-ratio ``x_i = log(r2 / r1)`` by at most ``sqrt(2) sigma (1 / r1 + 1 / r2)``, and the
    slope ``s = sum(x y) / sum(x x)`` of the fit through the origin by ``sum_i w_i dx_i``, with
    ``w_i = (y_i - 2 s x_i) / sum(x x)``. Correlations between points (they share neighbours) are
    bounded by adding the standard deviations.
    """
    X = np.unique(np.asarray(X, dtype=np.float64), axis=0)
    sigma = rounding_std(model, X)
    distances = NearestNeighbors(n_neighbors=2).fit(X).kneighbors()[0]
    ratios = np.log(distances[:, 1] / distances[:, 0])
    n_points = len(X)
    kept = np.argsort(ratios, kind="stable")[: int(n_points * (1 - discard_fraction))]
    x = ratios[kept]
    y = -np.log(1 - np.arange(1, kept.size + 1) / n_points)
    slope = x @ y / (x @ x)
    weights = (y - 2 * slope * x) / (x @ x)
    spread = math.sqrt(2) * sigma * (1 / distances[kept, 0] + 1 / distances[kept, 1])
    return SIGMAS * float(np.abs(weights) @ spread)


def assert_same_twonn(measured, X, model, discard_fraction=0.1):
    """``measured`` is TwoNN's linear-fit ID of another float32 evaluation of ``model``'s activations ``X``."""
    from sklearn_id import TwoNNDimension

    expected = TwoNNDimension(discard_fraction=discard_fraction).fit(X).dimension_
    assert abs(measured - expected) <= twonn_tolerance(X, model, discard_fraction), (measured, expected)
