"""The groups of a nested halving of the rows (decimation curves), shared by every backend."""

import math

import numpy as np

__all__ = ["group_edges", "n_halving_levels", "stack_groups"]


def n_halving_levels(n_points, n_min):
    """Levels of halving whose groups all keep at least ``n_min`` of ``n_points`` points.

    Examples
    --------
    >>> from sklearn_id._neighbors import n_halving_levels
    >>> n_halving_levels(1500, 100)
    4
    """
    if n_min > n_points // 2:
        raise ValueError(
            f"Decimation with n_min={n_min} needs at least {2 * n_min} distinct points "
            f"to split them once, got {n_points}; lower n_min or provide more points."
        )
    n_levels = 1 + int(math.log2(n_points / n_min))
    while np.diff(group_edges(n_points, n_levels - 1)).min() < n_min:
        n_levels -= 1
    return n_levels


def group_edges(n_samples, level):
    """Boundaries of the ``2**level`` consecutive near-equal groups of a nested halving."""
    return np.round(np.arange(2**level + 1) * (n_samples / 2**level)).astype(np.int64)


def stack_groups(search, edges):
    """``search(a, b)`` run on each group of rows ``a:b``, stacked, with indices made global.

    Parameters
    ----------
    search : callable
        Returns ``(distances, indices)`` of the group's rows, indices local.
    edges : ndarray
        Group boundaries, as :func:`group_edges` gives them.

    Returns
    -------
    distances, indices : ndarray
    """
    groups = [search(a, b) for a, b in zip(edges[:-1], edges[1:])]
    return (
        np.concatenate([distances for distances, _ in groups]),
        np.concatenate([indices + a for (_, indices), a in zip(groups, edges[:-1])]),
    )
