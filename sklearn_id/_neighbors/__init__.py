"""Exact nearest-neighbour distances: the one place where distances, and the policy around them, live.

Every consumer (the estimators, :func:`~sklearn_id.id_scaling`,
:class:`~sklearn_id.DepthProfile`) reads neighbours through the policy in
:mod:`._policy`: duplicates collapsed once, searches among distinct points
(plain, at chosen ranks, nested), neighbours within a subsample read off a
full search. Every search goes through one door, :func:`backend_for` in
:mod:`._dispatch`, which picks the backend for the points: rows on the host
(:mod:`._numpy`, numpy and BLAS, no torch), a tensor or a CUDA device
(:mod:`._torch`), or a distance matrix (:mod:`._matrix`).

The search is exact in float64 but spends almost all of its time in float32
matrix products: squared distances are approximated by one float32 product of
the centred, rescaled data, a deterministic rounding-error bound
(:mod:`._exact`) tells, for each row, which entries could still belong to its
nearest, and only those candidates are refined with an exact float64
difference of the original rows. The result therefore equals a float64 brute
force, whatever the data's offset, scale or rotation; data whose squared
distances would overflow or underflow are first brought into a safe band by an
exact power of two (:mod:`._units`), as high as float64 allows, so one row
far from the others leaves their digits intact.
"""

from sklearn_id._neighbors._backends import NeighborBackend
from sklearn_id._neighbors._clouds import cloud_neighbor_distances, distinct_clouds
from sklearn_id._neighbors._dispatch import (
    BACKENDS,
    backend_for,
    kneighbors,
    neighbor_distances_at,
    nested_kneighbors,
)
from sklearn_id._neighbors._graph import NeighborGraph, neighbor_graph
from sklearn_id._neighbors._groups import group_edges, n_halving_levels, stack_groups
from sklearn_id._neighbors._matrix import PiecewiseDistances, check_distance_matrix, kneighbors_precomputed
from sklearn_id._neighbors._policy import (
    DuplicatePointsWarning,
    check_points,
    collapse_duplicates,
    distance_matrix,
    distinct_kneighbors,
    distinct_neighbor_distances,
    distinct_nested_kneighbors,
    distinct_points,
    fitted_reference,
    query_kneighbors,
    reordered_points,
    restrict_points,
    search_points,
    searched_on,
    subsample_neighbor_distances,
)
from sklearn_id._neighbors._ranks import neighbor_ranks_in
from sklearn_id._neighbors._torch import kneighbors_torch
from sklearn_id._neighbors._units import unit_scaled

__all__ = [
    "BACKENDS",
    "DuplicatePointsWarning",
    "NeighborBackend",
    "NeighborGraph",
    "PiecewiseDistances",
    "backend_for",
    "check_distance_matrix",
    "check_points",
    "cloud_neighbor_distances",
    "collapse_duplicates",
    "distance_matrix",
    "distinct_clouds",
    "distinct_kneighbors",
    "distinct_nested_kneighbors",
    "distinct_points",
    "distinct_neighbor_distances",
    "fitted_reference",
    "group_edges",
    "kneighbors",
    "kneighbors_precomputed",
    "kneighbors_torch",
    "neighbor_graph",
    "neighbor_ranks_in",
    "n_halving_levels",
    "neighbor_distances_at",
    "nested_kneighbors",
    "query_kneighbors",
    "reordered_points",
    "restrict_points",
    "search_points",
    "searched_on",
    "stack_groups",
    "subsample_neighbor_distances",
    "unit_scaled",
]
