"""k*: each point's largest neighbourhood of constant density, by the likelihood-ratio test of ABIDE.

For a point ``i`` and ``j = 4, 5, ...`` the test compares the volume
``V_i`` of the ball holding ``i``'s ``j - 1`` nearest neighbours with the
volume ``V_j`` of the same ball around its ``j``-th neighbour (Di Noia et
al. 2024, as DADApy's ``compute_kstar``):

``D = -2 (j - 1) [ln V_i + ln V_j - 2 ln(V_i + V_j) + ln 4]``.

With ``t = d ln(r_i / r_j)`` (volumes grow as ``r^d``) this is
``4 (j - 1) ln cosh(t / 2)``, computed here in that form, free of the
overflow of ``r^d``. The first ``j`` where ``D`` exceeds the chi-squared(1)
quantile at ``alpha`` ends the neighbourhood: ``k*_i = j - 1``. A point that
passes every test its list allows (``j`` up to its width minus one, DADApy's
``maxk - 1``) is *saturated*: ``k*`` is its width minus one.

The test runs for all points at once, one width of the
:class:`~sklearn_id._neighbors.NeighborGraph` at a time. With ``grow=True``
a saturated point's list doubles (and its neighbours' lists with it) until
its test fails or it lists every other point.
"""

import numpy as np
from scipy.stats import chi2

__all__ = ["MIN_KSTAR", "kstar", "kstar_threshold"]

#: The smallest k*: the first test is at j = 4.
MIN_KSTAR = 3


def kstar_threshold(alpha):
    """The chi-squared(1) quantile that a likelihood ratio must exceed to reject a constant density at ``alpha``."""
    return float(chi2.isf(alpha, 1))


def _log_cosh(x):
    """``ln cosh x`` without overflow."""
    x = np.abs(x)
    return x + np.log1p(np.exp(-2.0 * x)) - np.log(2.0)


def _test_rows(graph, rows, distances, indices, dimension, threshold):
    """The test on ``rows`` (lists of one width): k* where decided, and what each undecided row lacks.

    The columns are tested in chunks that double (16, 32, ...); a row leaves
    at its first stop, so a test that ends early reads only its first chunk.
    Returns ``kstar`` (meaningless where ``short``), ``saturated`` (every
    test passed) and ``short`` (a test needs a neighbour's list beyond what it
    holds).
    """
    width = distances.shape[1]
    first = np.zeros(rows.size, dtype=np.int64)
    failed = np.zeros(rows.size, dtype=bool)
    stopped = np.zeros(rows.size, dtype=bool)
    active = np.arange(rows.size)
    start, chunk = 2, 16  # column c tests j = c + 2, from 4 to width - 1
    while active.size and start < width - 2:
        columns = np.arange(start, min(start + chunk, width - 2))
        own = distances[active, columns[0] : columns[-1] + 1]
        theirs = graph.distances_at(indices[active, columns[0] + 1 : columns[-1] + 2], columns[None, :])
        with np.errstate(invalid="ignore"):
            statistic = 4.0 * (columns + 1) * _log_cosh(0.5 * dimension * (np.log(own) - np.log(theirs)))
            rejected = statistic > threshold
        stop = rejected | np.isnan(theirs)
        hit = stop.any(axis=1)
        where = np.argmax(stop, axis=1)[hit]
        first[active[hit]] = columns[where] - 2
        failed[active[hit]] = rejected[np.flatnonzero(hit), where]
        stopped[active[hit]] = True
        active = active[~hit]
        start, chunk = start + chunk, 2 * chunk
    kstar = np.where(failed, first + MIN_KSTAR, width - 1)
    return kstar, ~stopped, stopped & ~failed


def kstar(graph, dimension, alpha, *, grow=False):
    """Each point's k* at ``dimension`` (see the module), and whether it is saturated.

    Parameters
    ----------
    graph : NeighborGraph
        Every row listed to at least 4 neighbours.
    dimension : float
    alpha : float
        The test's level.
    grow : bool, default=False
        Grow the lists of saturated points (and of the neighbours their
        tests read) until no point is saturated below the number of points.

    Returns
    -------
    kstar : ndarray of shape (n_points,), int64
    saturated : ndarray of shape (n_points,), bool
        The points whose test never failed within their list.
    """
    threshold = kstar_threshold(alpha)
    result = np.zeros(graph.n_points, dtype=np.int64)
    saturated = np.zeros(graph.n_points, dtype=bool)
    pending = np.ones(graph.n_points, dtype=bool)
    largest = graph.n_points - 1
    while pending.any():
        for rows, distances, indices in list(graph.tiers()):
            todo = pending[rows]
            if not todo.any():
                continue
            rows, distances, indices = rows[todo], distances[todo], indices[todo]
            found, full, short = _test_rows(graph, rows, distances, indices, dimension, threshold)
            width = distances.shape[1]
            extend = full & grow & (width < largest)
            if short.any() and not grow:
                raise RuntimeError("A neighbour list is shorter than the tests of the rows that read it.")
            decided = ~short & ~extend
            result[rows[decided]], saturated[rows[decided]] = found[decided], full[decided]
            pending[rows[decided]] = False
            if extend.any():
                graph.grow(rows[extend], min(2 * width, largest))
            # The neighbours a test reads: those of the grown rows, and of the rows whose tests ran short.
            readers = rows[extend | short]
            if readers.size:
                reader_width = int(graph.widths[readers].max())
                _, neighbours = graph.block(readers, reader_width)
                graph.grow(neighbours[neighbours >= 0], reader_width - 2)
    return result, saturated
