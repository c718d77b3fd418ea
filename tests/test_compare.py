"""Layer comparisons: DADApy's numbers, exact ranks with ties, CKA's formula, offsets and scales, bad input."""

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from sklearn_id import information_imbalance, label_overlap, linear_cka, neighborhood_overlap
from sklearn_id._neighbors import neighbor_ranks_in

from _reference import brute_force

DADAPY = np.load(Path(__file__).parent / "data" / "dadapy_compare.npz")  # benchmarks/peer_numbers_compare.py


@pytest.fixture
def layers():
    return DADAPY["A"], DADAPY["B"], DADAPY["y"]


@pytest.mark.parametrize("k", [1, 5])
def test_information_imbalance_is_dadapys_both_ways(layers, k):
    A, B, _ = layers
    assert information_imbalance(A, B, k=k) == pytest.approx(DADAPY[f"imbalance_ab_k{k}"], rel=1e-9)
    assert information_imbalance(B, A, k=k) == pytest.approx(DADAPY[f"imbalance_ba_k{k}"], rel=1e-9)


def test_overlaps_are_dadapys(layers):
    A, B, y = layers
    assert neighborhood_overlap(A, B, k=30) == pytest.approx(DADAPY["overlap_k30"], rel=1e-9)
    assert label_overlap(A, y, k=30) == pytest.approx(DADAPY["label_overlap_k30_weighted"], rel=1e-9)
    assert label_overlap(A, y, k=30, weighted=False) == pytest.approx(DADAPY["label_overlap_k30_plain"], rel=1e-9)


def test_ranks_count_closer_points_and_share_ties(rng):
    # Integer points on a small grid: many exact ties, which the mid-rank rule must split evenly.
    X = rng.integers(0, 4, size=(120, 2)).astype(float)
    neighbors = rng.integers(0, 119, size=(120, 3))
    neighbors += neighbors >= np.arange(120)[:, None]  # never the point itself
    D = cdist(X, X)
    np.fill_diagonal(D, np.inf)
    reference = np.take_along_axis(D, neighbors, axis=1)
    closer = (D[:, None, :] < reference[..., None]).sum(axis=2)
    tied = (D[:, None, :] == reference[..., None]).sum(axis=2) - 1
    np.testing.assert_array_equal(neighbor_ranks_in(X, neighbors), 1 + closer + tied / 2)
    assert (tied > 0).mean() > 0.9  # the data really are full of ties


def test_ranks_of_the_nearest_are_one_to_k_without_ties(rng):
    X = rng.standard_normal((200, 5))
    _, order = brute_force(X, 7)
    np.testing.assert_array_equal(neighbor_ranks_in(X, order), np.broadcast_to(np.arange(1, 8), (200, 7)))


def test_an_unrelated_space_has_imbalance_near_one_and_overlap_near_chance(rng):
    A, B = rng.standard_normal((2000, 4)), rng.standard_normal((2000, 4))
    # Mean rank of a random point among 1999 is 1000: Delta = 2 * 1000 / 2000, within a few standard errors.
    assert information_imbalance(A, B, k=5) == pytest.approx(1.0, abs=4 * 0.577 / np.sqrt(2000 * 5))
    assert neighborhood_overlap(A, B, k=30) == pytest.approx(30 / 1999, abs=0.005)


def _hsic_from_grams(A, B, debiased):
    """HSIC of linear kernels from n x n Gram matrices: biased tr(K L) or Song et al.'s unbiased form times n(n-3)."""
    K, L = A @ A.T, B @ B.T
    if not debiased:
        return np.trace(K @ L)
    n = K.shape[0]
    np.fill_diagonal(K, 0)
    np.fill_diagonal(L, 0)
    ones = np.ones(n)
    return (
        np.trace(K @ L)
        + (ones @ K @ ones) * (ones @ L @ ones) / ((n - 1) * (n - 2))
        - 2 / (n - 2) * ones @ K @ L @ ones
    )


@pytest.mark.parametrize("debiased", [False, True])
@pytest.mark.parametrize("widths", [(5, 3), (80, 120)])  # narrow (feature space) and wider than the samples (Grams)
def test_linear_cka_is_the_float64_formula(rng, debiased, widths):
    A = rng.standard_normal((60, widths[0]))
    B = np.tanh(A[:, :3] @ rng.standard_normal((3, widths[1]))) + rng.standard_normal((60, widths[1]))
    A_c, B_c = A - A.mean(axis=0), B - B.mean(axis=0)
    expected = _hsic_from_grams(A_c, B_c, debiased) / np.sqrt(
        _hsic_from_grams(A_c, A_c, debiased) * _hsic_from_grams(B_c, B_c, debiased)
    )
    assert linear_cka(A, B, debiased=debiased) == pytest.approx(expected, rel=1e-9)


def test_debiased_cka_of_independent_wide_features_is_near_zero_where_plain_cka_is_not(rng):
    A, B = rng.standard_normal((50, 500)), rng.standard_normal((50, 500))
    assert linear_cka(A, B) > 0.5
    assert abs(linear_cka(A, B, debiased=True)) < 0.05


def test_offsets_and_scales_leave_every_measure_unchanged(layers):
    A, B, y = layers
    for offset, scale in [(1e4, 1.0), (0.0, 1e-3), (1e4, 1e-3)]:
        A2, B2 = A * scale + offset, B * scale - offset
        for k in (1, 5):
            assert information_imbalance(A2, B2, k=k) == pytest.approx(information_imbalance(A, B, k=k), rel=1e-9)
        assert neighborhood_overlap(A2, B2) == pytest.approx(neighborhood_overlap(A, B), rel=1e-9)
        assert label_overlap(A2, y) == pytest.approx(label_overlap(A, y), rel=1e-9)
        for debiased in (False, True):
            expected = linear_cka(A, B, debiased=debiased)
            assert linear_cka(A2, B2, debiased=debiased) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda A, B, y: information_imbalance(A, B[:-1]), "A has 300 samples and B has 299"),
        (lambda A, B, y: neighborhood_overlap(A[:20], B[:20], k=20), "too few for k=20"),
        (lambda A, B, y: information_imbalance(np.where(A == A[0, 0], np.nan, A), B), "NaN"),
        (lambda A, B, y: label_overlap(A, y[:-1]), "inconsistent numbers of samples"),
        (lambda A, B, y: label_overlap(A, y[:, None]), "one label per sample"),
        (lambda A, B, y: linear_cka(A, np.ones_like(B)), "B is the same for every sample"),
        (lambda A, B, y: linear_cka(A[:3], B[:3], debiased=True), "at least 4 samples"),
    ],
)
def test_bad_input_is_explained(layers, call, message):
    with pytest.raises(ValueError, match=message):
        call(*layers)


def test_k_must_be_a_positive_integer(layers):
    A, B, _ = layers
    with pytest.raises(ValueError, match="'k' parameter"):
        information_imbalance(A, B, k=0)


def test_data_near_floats_limits_give_the_same_numbers(layers):
    A, B, y = layers
    for scale in (1e-200, 1e200):
        assert information_imbalance(A * scale, B / scale) == pytest.approx(information_imbalance(A, B), rel=1e-9)
        assert neighborhood_overlap(A * scale, B) == pytest.approx(neighborhood_overlap(A, B), rel=1e-9)
        assert label_overlap(A * scale, y) == pytest.approx(label_overlap(A, y), rel=1e-9)
        assert linear_cka(A * scale, B / scale) == pytest.approx(linear_cka(A, B), rel=1e-9)


def test_labels_may_be_strings_but_not_missing(layers):
    A, _, y = layers
    names = np.array(["zero", "one", "two", "three"])[y]
    assert label_overlap(A, names) == pytest.approx(label_overlap(A, y), rel=1e-12)
    with pytest.raises(ValueError, match="2 missing labels"):
        label_overlap(A, np.r_[[None, np.nan], names[2:]].astype(object))
    with pytest.raises(ValueError, match="k must be a number of neighbours"):
        neighborhood_overlap(A, A, k=True)
