"""Exact neighbour search: equal to a float64 brute force, whatever the data's placement."""

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from sklearn_id._neighbors import (
    DuplicatePointsWarning,
    distinct_neighbor_distances,
    group_edges,
    kneighbors,
    kneighbors_precomputed,
    kneighbors_torch,
    neighbor_distances_at,
    nested_kneighbors,
    stack_groups,
)

from _reference import brute_force


@pytest.mark.parametrize("offset, scale", [(0.0, 1.0), (1e4, 1.0), (0.0, 1e-6), (1e4, 1e-3), (0.0, 1e12)])
@pytest.mark.parametrize("k", [1, 2, 7])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_matches_float64_brute_force(curved_data, offset, scale, k, dtype):
    X = (curved_data * scale + offset).astype(dtype)
    distances, indices = kneighbors(X, k, block_size=400)
    expected_distances, expected_indices = brute_force(X.astype(np.float64), k)
    np.testing.assert_allclose(distances, expected_distances, rtol=1e-12)
    np.testing.assert_array_equal(indices, expected_indices)


def test_rotation_changes_nothing(curved_data, random_rotation):
    rotated = curved_data @ random_rotation(curved_data.shape[1]) + 1e4
    distances, indices = kneighbors(curved_data, 2)
    rotated_distances, rotated_indices = kneighbors(rotated, 2)
    np.testing.assert_allclose(rotated_distances, distances, rtol=1e-9)
    np.testing.assert_array_equal(rotated_indices, indices)


def test_float32_gram_shortcut_would_fail_where_we_do_not(curved_data):
    # The naive float32 |x|^2 + |y|^2 - 2xy on data far from the origin: the
    # reason for the exact refinement. Its error dwarfs the distances.
    X = curved_data + 1e4
    X32 = X.astype(np.float32)
    norms = (X32 * X32).sum(1)
    naive = norms[:20, None] + norms[None, :] - 2 * X32[:20] @ X32.T
    exact = cdist(X[:20], X) ** 2
    assert np.abs(naive - exact).max() > exact[exact > 0].min()
    distances, _ = kneighbors(X, 2)
    np.testing.assert_allclose(distances, brute_force(X, 2)[0], rtol=1e-12)


def test_cross_search_against_reference_points(curved_data, rng):
    queries = rng.normal(size=(50, curved_data.shape[1])) * 0.5 + 3e3
    reference = curved_data + 3e3
    distances, indices = kneighbors(queries, 20, Y=reference, block_size=300)
    expected_distances, expected_indices = brute_force(queries, 20, reference)
    np.testing.assert_allclose(distances, expected_distances, rtol=1e-12)
    np.testing.assert_array_equal(indices, expected_indices)


def test_ties_break_on_the_lower_index():
    grid = np.array([[0.0], [1.0], [2.0], [3.0], [4.0]])
    distances, indices = kneighbors(grid, 2)
    np.testing.assert_array_equal(indices, [[1, 2], [0, 2], [1, 3], [2, 4], [3, 2]])
    np.testing.assert_array_equal(distances, [[1, 2], [1, 1], [1, 1], [1, 1], [1, 2]])


def test_one_block_and_many_blocks_agree(curved_data):
    single = kneighbors(curved_data, 3, block_size=10_000)
    many = kneighbors(curved_data, 3, block_size=64)
    np.testing.assert_array_equal(single[1], many[1])
    np.testing.assert_array_equal(single[0], many[0])


def test_torch_path_matches_numpy_path(curved_data):
    # The CUDA code path, run by torch on the CPU: same candidates, same result.
    X = curved_data + 1e4
    distances, indices = kneighbors(X, 3)
    torch_distances, torch_indices = kneighbors_torch(X, 3, device="cpu", block_size=500)
    np.testing.assert_allclose(torch_distances, distances, rtol=1e-12)
    np.testing.assert_array_equal(torch_indices, indices)
    queries = X[:40] + 0.01
    np.testing.assert_array_equal(kneighbors_torch(queries, 5, Y=X, device="cpu")[1], kneighbors(queries, 5, Y=X)[1])


@pytest.mark.parametrize("block_size", [64, 2048])
def test_nested_search_equals_a_brute_force_in_every_group(curved_data, block_size):
    # 1500 rows halved 5 times: groups of 1500 down to 46 or 47 rows, far from the origin.
    X = curved_data + 1e4
    levels = nested_kneighbors(X, 2, 6, block_size=block_size)
    assert len(levels) == 6
    for level, (distances, indices) in enumerate(levels):
        edges = group_edges(X.shape[0], level)
        assert edges.size == 2**level + 1
        for a, b in zip(edges[:-1], edges[1:]):
            expected_distances, expected_indices = brute_force(X[a:b], 2)
            np.testing.assert_allclose(distances[a:b], expected_distances, rtol=1e-12)
            np.testing.assert_array_equal(indices[a:b], expected_indices + a)


@pytest.mark.parametrize("offset, decimals", [(0.0, None), (1e4, None), (0.0, 1)])
def test_distances_at_ranks_equal_a_brute_force(curved_data, offset, decimals):
    # Rounded data have many exact ties: the windows around each rank must hold them all.
    X = curved_data[:, :3] if decimals is None else np.round(curved_data[:, :3], decimals)
    X = X + offset
    ranks = [1, 2, 4, 8, 16, 32, 64]
    expected, _ = brute_force(X, 64)
    np.testing.assert_allclose(
        neighbor_distances_at(X, ranks, block_size=256), expected[:, np.array(ranks) - 1], rtol=1e-12
    )


def test_group_by_group_torch_search_equals_the_nested_pass(curved_data):
    # The CUDA route of nested_kneighbors, run by torch on the CPU.
    X = curved_data + 1e4
    for level, (distances, indices) in enumerate(nested_kneighbors(X, 2, 4)):
        edges = group_edges(X.shape[0], level)
        torch_distances, torch_indices = stack_groups(lambda a, b: kneighbors_torch(X[a:b], 2, device="cpu"), edges)
        np.testing.assert_allclose(torch_distances, distances, rtol=1e-12)
        np.testing.assert_array_equal(torch_indices, indices)


def test_nested_search_needs_groups_larger_than_k(curved_data):
    with pytest.raises(ValueError, match="groups of 23 rows"):
        nested_kneighbors(curved_data, 23, 7)


@pytest.mark.cuda
def test_cuda_path_matches_numpy_path(curved_data):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    X = curved_data + 1e4
    distances, indices = kneighbors(X, 3, device="cuda")
    np.testing.assert_allclose(distances, brute_force(X, 3)[0], rtol=1e-12)
    for (cuda_distances, _), (cpu_distances, _) in zip(
        nested_kneighbors(X, 2, 3, device="cuda"), nested_kneighbors(X, 2, 3)
    ):
        np.testing.assert_allclose(cuda_distances, cpu_distances, rtol=1e-12)


def test_precomputed_matches_coordinates(curved_data):
    D = cdist(curved_data, curved_data)
    distances, indices = kneighbors_precomputed(D, 4)
    expected_distances, expected_indices = brute_force(curved_data, 4)
    np.testing.assert_array_equal(distances, expected_distances)
    np.testing.assert_array_equal(indices, expected_indices)


def test_too_many_neighbours_is_an_error():
    with pytest.raises(ValueError, match="only 2 reference points"):
        kneighbors(np.eye(3), 3)


@pytest.mark.parametrize("metric", ["euclidean", "precomputed"])
def test_duplicates_are_collapsed_with_a_warning(curved_data, metric):
    X = np.vstack([curved_data[:300], curved_data[[5, 0, 5]]])
    data = cdist(X, X) if metric == "precomputed" else X
    with pytest.warns(DuplicatePointsWarning, match="3 exact duplicate rows"):
        distances, distinct = distinct_neighbor_distances(data, [1, 2], metric=metric)
    np.testing.assert_array_equal(distinct, np.arange(300))
    np.testing.assert_allclose(distances, brute_force(curved_data[:300], 2)[0], rtol=1e-12)


def test_negative_zero_counts_as_a_duplicate():
    X = np.array([[0.0, 1.0], [-0.0, 1.0], [2.0, 0.0], [5.0, 5.0]])
    with pytest.warns(DuplicatePointsWarning, match="1 exact duplicate"):
        _, distinct = distinct_neighbor_distances(X, [1, 2])
    np.testing.assert_array_equal(distinct, [0, 2, 3])


def test_identical_points_are_an_error():
    with pytest.raises(ValueError, match="All 10 points are identical"):
        with pytest.warns(DuplicatePointsWarning):
            distinct_neighbor_distances(np.ones((10, 3)), [1, 2])


# The torch engine, run on CPU torch so that every machine exercises its bounds and selection.


@pytest.mark.parametrize("offset, scale", [(0.0, 1.0), (1e4, 1.0), (0.0, 1e-6), (1e4, 1e-3)])
@pytest.mark.parametrize("k", [1, 3, 8])
@pytest.mark.parametrize("block_size", [97, 4096])
def test_torch_engine_matches_float64_brute_force(curved_data, offset, scale, k, block_size):
    X = curved_data * scale + offset
    expected_distances, expected_indices = brute_force(X, k)
    for data in (X, torch.from_numpy(X)):
        distances, indices = kneighbors_torch(data, k, device="cpu", block_size=block_size)
        np.testing.assert_allclose(distances, expected_distances, rtol=1e-12)
        np.testing.assert_array_equal(indices, expected_indices)


def test_torch_engine_breaks_ties_by_the_lower_index():
    # A regular grid: every point has several neighbours at exactly the same distance.
    grid = np.stack(np.meshgrid(np.arange(12.0), np.arange(12.0)), axis=-1).reshape(-1, 2) + 1e3
    expected_distances, expected_indices = brute_force(grid, 4)
    distances, indices = kneighbors_torch(torch.from_numpy(grid), 4, device="cpu", block_size=50)
    # The squared distances are exact integers; numpy's square root rounds correctly and torch's
    # vectorised one (SLEEF on AVX-512, for one) within one unit in the last place: 2 eps apart at most.
    np.testing.assert_allclose(distances, expected_distances, rtol=2 * np.finfo(np.float64).eps, atol=0)
    np.testing.assert_array_equal(indices, expected_indices)


def test_a_tensor_is_searched_where_it_lives(curved_data):
    X = torch.from_numpy(curved_data.astype(np.float32) + 100)
    reference = X.numpy().astype(np.float64)
    distances, indices = kneighbors(X, 3)
    np.testing.assert_allclose(distances, brute_force(reference, 3)[0], rtol=1e-12)
    queries = X[:30] + 0.01
    np.testing.assert_array_equal(
        kneighbors(queries, 5, Y=X)[1], brute_force(queries.numpy().astype(np.float64), 5, Y=reference)[1]
    )
    np.testing.assert_allclose(neighbor_distances_at(X, [2, 5]), brute_force(reference, 5)[0][:, [1, 4]], rtol=1e-12)


def test_duplicates_in_a_tensor_are_collapsed_like_in_an_array(curved_data):
    X = np.r_[curved_data, curved_data[:5]]
    with pytest.warns(DuplicatePointsWarning, match="5 exact duplicate rows"):
        expected = distinct_neighbor_distances(X, [1, 2])
    with pytest.warns(DuplicatePointsWarning, match="5 exact duplicate rows"):
        found = distinct_neighbor_distances(torch.from_numpy(X), [1, 2])
    np.testing.assert_allclose(found[0], expected[0], rtol=1e-12)
    np.testing.assert_array_equal(found[1], expected[1])


def test_searches_of_many_neighbours_run_in_locality_order_and_give_the_brute_force_result():
    # More rows than two blocks and k >= 16: the rows are searched sorted along their first principal
    # direction. A lattice far from the origin has exact ties at every rank (broken by the lower column) and
    # integer squared distances, exact in float64, so the brute force is the truth to the last bit.
    rng = np.random.default_rng(3)
    X = rng.integers(0, 12, size=(4200, 3)).astype(np.float64) + 1e3
    given = X.copy()
    squared = cdist(X, X, "sqeuclidean")
    np.fill_diagonal(squared, np.inf)
    columns = np.broadcast_to(np.arange(len(X)), squared.shape)
    truth = np.lexsort((columns, squared), axis=1)[:, :20]  # by value, then by column
    distances, indices = kneighbors(X, 20)
    np.testing.assert_array_equal(indices, truth)
    np.testing.assert_array_equal(distances, np.sqrt(np.take_along_axis(squared, truth, axis=1)))
    at = neighbor_distances_at(X, [1, 7, 20])
    np.testing.assert_array_equal(at, distances[:, [0, 6, 19]])
    np.testing.assert_array_equal(X, given)  # the order is found on a copy: the caller's rows are untouched
