"""Every neighbour backend against a float64 brute force: what a new backend (faiss, cuVS, ...) must pass.

Each entry of ``BACKENDS`` gets the points in its own kind (host rows, a tensor, a distance matrix) at
several offsets and scales, rotated, and with duplicates, and must give the brute force's neighbours:
the same indices (ties to the lower index) and distances equal to 1e-12 relative.
"""

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from sklearn_id._neighbors import BACKENDS, backend_for, group_edges

from _reference import brute_force

torch = pytest.importorskip("torch")

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
CASES = [(0.0, 1.0), (1e4, 1.0), (0.0, 1e-6), (1e4, 1e-3), (-3e3, 1e5)]


def as_kind(backend, X, device):
    """The points ``X`` in the kind ``backend`` searches, with the metric and device to ask it for."""
    if backend.name == "precomputed":
        return cdist(X, X), "precomputed", "cpu"
    if backend.name == "torch":
        return torch.from_numpy(X).to(device), "euclidean", device
    return X, "euclidean", "cpu"


@pytest.fixture
def points(curved_data, random_rotation):
    return curved_data[:600] @ random_rotation(curved_data.shape[1])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("backend", BACKENDS, ids=lambda backend: backend.name)
@pytest.mark.parametrize("offset, scale", CASES)
def test_every_backend_equals_a_float64_brute_force(backend, device, points, offset, scale):
    X = points * scale + offset
    data, metric, where = as_kind(backend, X, device)
    assert backend_for(data, metric=metric, device=where) is backend
    expected_distances, expected_indices = brute_force(X, 7)
    distances, indices = backend.kneighbors(data, 7, device=where)
    np.testing.assert_allclose(distances, expected_distances, rtol=1e-12)
    np.testing.assert_array_equal(indices, expected_indices)
    ranks = np.array([1, 2, 5, 7])
    np.testing.assert_allclose(
        backend.distances_at(data, ranks, device=where), expected_distances[:, ranks - 1], rtol=1e-12
    )
    for level, (distances, indices) in enumerate(backend.nested(data, 3, 3, device=where)):
        edges = group_edges(len(X), level)
        for a, b in zip(edges[:-1], edges[1:]):
            group_distances, group_indices = brute_force(X[a:b], 3)
            np.testing.assert_allclose(distances[a:b], group_distances, rtol=1e-12)
            np.testing.assert_array_equal(indices[a:b], group_indices + a)
    rows, cols = np.array([3, 10, 11]), np.arange(0, 600, 7)
    np.testing.assert_allclose(backend.pair_distances(data, rows, cols), cdist(X[rows], X[cols]), rtol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("backend", BACKENDS, ids=lambda backend: backend.name)
def test_every_backend_finds_the_distinct_rows_and_restricts_to_them(backend, device, points):
    X = np.r_[points[:50], points[:5], points[50:60], points[7:8]]
    data, _, _ = as_kind(backend, X, device)
    distinct, representative = backend.distinct_rows(data)
    np.testing.assert_array_equal(distinct, np.r_[np.arange(50), np.arange(55, 65)])
    np.testing.assert_array_equal(representative, np.r_[np.arange(50), np.arange(5), np.arange(50, 60), 7])
    restricted = backend.restrict(data, distinct)
    expected = cdist(X[distinct], X[distinct]) if backend.name == "precomputed" else X[distinct]
    got = restricted.cpu().numpy() if torch.is_tensor(restricted) else restricted
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b.name != "precomputed"], ids=lambda b: b.name)
def test_every_coordinate_backend_searches_reference_points(backend, points):
    queries = points[:40] + 0.01 + 1e4
    reference = points + 1e4
    data, _, where = as_kind(backend, queries, "cpu")
    other, _, _ = as_kind(backend, reference, "cpu")
    distances, indices = backend.kneighbors(data, 5, Y=other, device=where)
    expected_distances, expected_indices = brute_force(queries, 5, reference)
    np.testing.assert_allclose(distances, expected_distances, rtol=1e-12)
    np.testing.assert_array_equal(indices, expected_indices)


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda backend: backend.name)
def test_every_backend_answers_queries_against_the_distinct_fitted_points(backend, points):
    fitted, queries = points[:500] + 2e3, points[500:] + 2e3 + 0.01
    distinct = np.arange(0, 500, 2)
    if backend.name == "precomputed":
        data, asked = cdist(fitted, fitted), cdist(queries, fitted)  # queries: their distances to every fitted sample
    else:
        data, _, _ = as_kind(backend, fitted, "cpu")
        asked, _, _ = as_kind(backend, queries, "cpu")
    distances, indices = backend.query(asked, 4, backend.fitted_reference(data, distinct), device="cpu")
    expected_distances, expected_indices = brute_force(queries, 4, fitted[distinct])
    np.testing.assert_allclose(distances, expected_distances, rtol=1e-12)
    np.testing.assert_array_equal(indices, expected_indices)
