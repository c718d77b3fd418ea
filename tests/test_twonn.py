"""TwoNNDimension: the published formula, known answers, invariances and bad input."""

import numpy as np
import pytest
from scipy.optimize import curve_fit
from scipy.spatial.distance import cdist
from sklearn.base import clone
from sklearn.datasets import make_swiss_roll
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_id import (
    DuplicatePointsWarning,
    TwoNNDimension,
    twonn_interval,
    twonn_linear_fit,
    twonn_mle,
)


def dadapy_formula(mu, fraction=0.9):
    """The linear fit as DADApy's ``_compute_id_2NN`` writes it: curve_fit on sorted log mu."""
    n = mu.size
    n_eff = int(n * fraction)
    x = np.sort(np.log(mu))[:n_eff]
    y = -np.log(1 - np.arange(1, n_eff + 1) / n)
    slope, _ = curve_fit(lambda x, m: m * x, x, y)
    return slope[0]


def brute_force_mu(X):
    D = cdist(X, X)
    np.fill_diagonal(D, np.inf)
    D.sort(axis=1)
    return D[:, 1] / D[:, 0]


def test_swiss_roll_is_two_dimensional():
    X, _ = make_swiss_roll(n_samples=2500, random_state=0)
    assert TwoNNDimension().fit(X).dimension_ == pytest.approx(2.0, abs=0.15)


@pytest.mark.parametrize("method", ["linear", "mle"])
def test_gaussian_in_five_dimensions(rng, method):
    X = rng.normal(size=(2500, 5)) @ rng.normal(size=(5, 30))
    assert TwoNNDimension(method=method).fit(X).dimension_ == pytest.approx(5.0, abs=0.45)


def test_linear_fit_is_the_published_formula(curved_data):
    estimator = TwoNNDimension().fit(curved_data)
    np.testing.assert_allclose(estimator.mu_, brute_force_mu(curved_data), rtol=1e-12)
    assert estimator.dimension_ == pytest.approx(dadapy_formula(estimator.mu_), rel=1e-9)


@pytest.mark.parametrize("discard_fraction", [0.05, 0.1, 0.3])
def test_linear_fit_follows_discard_fraction(rng, discard_fraction):
    mu = rng.pareto(3.0, size=1000) + 1
    assert twonn_linear_fit(mu, discard_fraction) == pytest.approx(dadapy_formula(mu, 1 - discard_fraction), rel=1e-9)


def test_mle_is_n_minus_one_over_total_log_ratio(curved_data):
    estimator = TwoNNDimension(method="mle", discard_fraction=0.0).fit(curved_data)
    log_mu = np.log(brute_force_mu(curved_data))
    assert estimator.dimension_ == pytest.approx((log_mu.size - 1) / log_mu.sum(), rel=1e-12)


def test_mle_with_censoring_is_unbiased(rng):
    # (n - 1) / T is exactly unbiased for Pareto ratios, censored or not.
    d, n_points, n_draws = 7.0, 200, 4000
    estimates = [twonn_mle(rng.pareto(d, size=n_points) + 1, 0.2) for _ in range(n_draws)]
    standard_error = np.std(estimates) / np.sqrt(n_draws)
    assert abs(np.mean(estimates) - d) < 4 * standard_error


@pytest.mark.parametrize("discard_fraction", [0.0, 0.1])
def test_interval_covers_the_truth_95_percent_of_the_time(rng, discard_fraction):
    d, n_points, n_draws = 4.0, 300, 2000
    covered = 0
    for _ in range(n_draws):
        low, high = twonn_interval(rng.pareto(d, size=n_points) + 1, discard_fraction)
        covered += low < d < high
    # Binomial(2000, 0.95) has a standard deviation of 0.5%: 3 of them either side.
    assert covered / n_draws == pytest.approx(0.95, abs=0.015)


def test_fit_sets_the_documented_attributes(curved_data):
    estimator = TwoNNDimension(device="cpu").fit(curved_data)
    assert estimator.dimension_ci_ == twonn_interval(estimator.mu_, 0.1)
    low, high = estimator.dimension_ci_
    assert low < estimator.dimension_ < high
    assert estimator.mu_.shape == (curved_data.shape[0],)
    assert estimator.n_duplicates_ == 0
    assert estimator.n_features_in_ == curved_data.shape[1]
    assert estimator.device_ == "cpu"


def test_invariant_to_translation_scaling_and_rotation(curved_data, random_rotation):
    reference = TwoNNDimension().fit(curved_data).dimension_
    rotation = random_rotation(curved_data.shape[1])
    for transformed in (curved_data + 1e4, curved_data * 1e-6, curved_data @ rotation):
        assert TwoNNDimension().fit(transformed).dimension_ == pytest.approx(reference, rel=1e-9)


def test_float32_input_agrees_with_float64(curved_data):
    reference = TwoNNDimension().fit(curved_data).dimension_
    assert TwoNNDimension().fit(curved_data.astype(np.float32)).dimension_ == pytest.approx(reference, rel=1e-5)


def test_five_duplicates_change_nothing_but_the_warning(curved_data):
    X = curved_data[:1000]
    with_duplicates = np.vstack([X, X[[3, 14, 15, 92, 65]]])
    reference = TwoNNDimension().fit(X)
    with pytest.warns(DuplicatePointsWarning, match="5 exact duplicate rows"):
        estimator = TwoNNDimension().fit(with_duplicates)
    assert estimator.n_duplicates_ == 5
    assert estimator.dimension_ == reference.dimension_
    np.testing.assert_array_equal(estimator.mu_, reference.mu_)


def test_precomputed_distances_give_the_same_estimate(curved_data):
    reference = TwoNNDimension().fit(curved_data)
    D = cdist(curved_data, curved_data)
    estimator = TwoNNDimension(metric="precomputed").fit(D)
    assert estimator.dimension_ == pytest.approx(reference.dimension_, rel=1e-12)
    np.testing.assert_allclose(estimator.transform(D[:20]), reference.transform(curved_data[:20]), rtol=1e-12)


def test_transform_is_the_local_mle_over_the_nearest_fitted_points(curved_data, rng):
    estimator = TwoNNDimension(n_neighbors=15).fit(curved_data)
    queries = curved_data[:25] + rng.normal(scale=0.01, size=(25, curved_data.shape[1]))
    nearest = np.argsort(cdist(queries, curved_data), axis=1)[:, :15]
    expected = 14 / np.log(estimator.mu_)[nearest].sum(axis=1)
    local = estimator.transform(queries)
    assert local.shape == (25, 1)
    np.testing.assert_allclose(local[:, 0], expected, rtol=1e-12)


def test_local_dimension_is_near_the_global_one(curved_data):
    estimator = TwoNNDimension(n_neighbors=200).fit(curved_data)
    assert np.median(estimator.transform(curved_data)) == pytest.approx(estimator.dimension_, rel=0.2)


def test_pipeline_and_clone(curved_data):
    pipeline = make_pipeline(StandardScaler(), TwoNNDimension(method="mle"))
    pipeline.fit(curved_data)
    assert pipeline[-1].dimension_ > 3
    cloned = clone(pipeline).set_params(twonndimension__discard_fraction=0.2)
    assert cloned[-1].discard_fraction == 0.2


@pytest.mark.parametrize(
    "X, error, match",
    [
        (np.array([[0.0, np.nan], [1.0, 2.0], [3.0, 1.0]]), ValueError, "NaN"),
        (np.array([[0.0, np.inf], [1.0, 2.0], [3.0, 1.0]]), ValueError, "infinity"),
        (np.arange(10.0), ValueError, "Expected 2D array"),
        (np.array([["a", "b"], ["c", "d"], ["e", "f"]]), ValueError, "could not convert"),
        (np.empty((0, 3)), ValueError, "0 sample"),
        (np.array([[0.0, 0.0], [1.0, 1.0]]), ValueError, "minimum of 3"),
        (np.array([[0.0, 0.0], [1.0, 1.0], [1.0, 1.0]]), ValueError, "Only 2 distinct points"),
        (np.ones((20, 4)), ValueError, "All 20 points are identical"),
        (np.mgrid[0:6, 0:6].reshape(2, -1).T.astype(float), ValueError, "equals 1"),
    ],
    ids=["nan", "inf", "1d", "strings", "empty", "two-points", "two-distinct", "identical", "grid"],
)
@pytest.mark.filterwarnings("ignore::sklearn_id.DuplicatePointsWarning")
def test_bad_input_is_explained(X, error, match):
    with pytest.raises(error, match=match):
        TwoNNDimension().fit(X)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"discard_fraction": 1.0}, "discard_fraction"),
        ({"discard_fraction": -0.1}, "discard_fraction"),
        ({"method": "spline"}, "method"),
        ({"metric": "cosine"}, "metric"),
        ({"n_neighbors": 1}, "n_neighbors"),
        ({"discard_fraction": 0.0}, "method='mle'"),
    ],
)
def test_bad_parameters_are_explained(curved_data, params, match):
    with pytest.raises(ValueError, match=match):
        TwoNNDimension(**params).fit(curved_data)


def test_discarding_nearly_everything_is_explained(curved_data):
    with pytest.raises(ValueError, match="lower discard_fraction"):
        TwoNNDimension(discard_fraction=0.999).fit(curved_data[:500])


def test_precomputed_needs_a_square_matrix(curved_data):
    with pytest.raises(ValueError, match="square distance matrix"):
        TwoNNDimension(metric="precomputed").fit(curved_data)
