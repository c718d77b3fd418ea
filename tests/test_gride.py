"""GRIDEDimension and gride_mle: the likelihood's maximum, its spread, and sklearn citizenship."""

import numpy as np
import pytest
from scipy import optimize, special
from scipy.spatial.distance import cdist
from sklearn.base import clone

from sklearn_id import DuplicatePointsWarning, GRIDEDimension, TwoNNDimension, gride_mle
from sklearn_id._gride import _standard_deviation


def gride_ratios(rng, dimension, n1, n2, size):
    """Exact GRIDE law: for a Poisson process, ``mu^d`` is a ratio of sums of unit exponentials."""
    volumes = np.cumsum(rng.exponential(size=(size, n2)), axis=1)
    return (volumes[:, n2 - 1] / volumes[:, n1 - 1]) ** (1 / dimension)


def negative_log_likelihood(d, mu, n1, n2):
    """The GRIDE likelihood written out, with the (N - 1) log d bias correction."""
    log_mu = np.log(mu)
    return -(
        (mu.size - 1) * np.log(d)
        + (n2 - n1 - 1) * np.sum(np.log(np.expm1(d * log_mu)))
        - mu.size * special.betaln(n2 - n1, n1)
        - ((n2 - 1) * d + 1) * log_mu.sum()
    )


@pytest.mark.parametrize("n1, n2", [(1, 2), (1, 3), (4, 8), (16, 32), (64, 128)])
def test_mle_is_the_maximum_of_the_written_out_likelihood(rng, n1, n2):
    mu = gride_ratios(rng, 6.0, n1, n2, 3000)
    estimate = gride_mle(mu, n1, n2)
    # A bounded minimiser only resolves a flat minimum to ~sqrt(machine epsilon) ...
    expected = optimize.minimize_scalar(
        negative_log_likelihood,
        bounds=(0.5, 50),
        args=(mu, n1, n2),
        method="bounded",
        options={"xatol": 1e-12},
    ).x
    assert estimate == pytest.approx(expected, rel=1e-7)
    # ... so also take the Newton step from finite differences: it is nil at the maximum.
    step = 1e-5 * estimate
    below, at, above = (negative_log_likelihood(d, mu, n1, n2) for d in (estimate - step, estimate, estimate + step))
    newton_step = -(above - below) / 2 / ((above - 2 * at + below) / step)
    assert abs(newton_step) < 1e-9 * estimate


@pytest.mark.parametrize("dimension, n1, n2", [(2.0, 4, 8), (9.0, 8, 16), (30.0, 2, 5)])
def test_recovers_the_dimension_of_its_own_law(rng, dimension, n1, n2):
    mu = gride_ratios(rng, dimension, n1, n2, 20_000)
    # The Fisher standard deviation of d is below 1% of d here: 3% is a wide margin.
    assert gride_mle(mu, n1, n2) == pytest.approx(dimension, rel=0.03)


def test_first_and_second_neighbours_are_the_unbiased_twonn_mle(curved_data):
    gride = GRIDEDimension(n1=1, n2=2).fit(curved_data)
    twonn = TwoNNDimension(method="mle", discard_fraction=0).fit(curved_data)
    assert gride.dimension_ == pytest.approx(twonn.dimension_, rel=1e-12)
    np.testing.assert_array_equal(gride.mu_, twonn.mu_)


def test_standard_deviation_matches_the_spread_of_repeated_estimates(rng):
    n1, n2 = 8, 16
    estimates, deviations = [], []
    for _ in range(300):
        log_mu = np.log(gride_ratios(rng, 5.0, n1, n2, 500))
        estimates.append(gride_mle(np.exp(log_mu), n1, n2))
        deviations.append(_standard_deviation(estimates[-1], log_mu, n1, n2))
    assert np.mean(deviations) == pytest.approx(np.std(estimates), rel=0.15)


def test_fit_sets_the_documented_attributes(curved_data):
    estimator = GRIDEDimension(n1=4, n2=8, device="cpu").fit(curved_data)
    distances = np.sort(cdist(curved_data, curved_data), axis=1)[:, 1:]
    np.testing.assert_allclose(estimator.mu_, distances[:, 7] / distances[:, 3], rtol=1e-12)
    assert estimator.scale_ == pytest.approx(distances[:, 7].mean(), rel=1e-12)
    assert estimator.dimension_ == pytest.approx(gride_mle(estimator.mu_, 4, 8), rel=1e-15)
    assert 0 < estimator.dimension_std_ < 0.05 * estimator.dimension_
    assert estimator.n_duplicates_ == 0
    assert estimator.n_features_in_ == curved_data.shape[1]
    assert estimator.device_ == "cpu"


def test_noise_fades_at_larger_ranks(rng):
    plane = np.c_[rng.uniform(size=(4000, 2)), np.zeros((4000, 8))]
    noisy = plane + 0.002 * rng.normal(size=plane.shape)
    near = GRIDEDimension(n1=1, n2=2).fit(noisy).dimension_
    far = GRIDEDimension(n1=16, n2=32).fit(noisy).dimension_
    assert near > 3.5
    assert far == pytest.approx(2.0, abs=0.15)


def test_invariant_to_translation_scaling_and_rotation(curved_data, random_rotation):
    reference = GRIDEDimension(n1=2, n2=4).fit(curved_data).dimension_
    moved = (curved_data @ random_rotation(curved_data.shape[1])) * 1e-3 + 1e4
    assert GRIDEDimension(n1=2, n2=4).fit(moved).dimension_ == pytest.approx(reference, rel=1e-6)


def test_precomputed_distances_give_the_same_estimate(curved_data):
    coordinates = GRIDEDimension(n1=4, n2=8).fit(curved_data)
    precomputed = GRIDEDimension(n1=4, n2=8, metric="precomputed").fit(cdist(curved_data, curved_data))
    assert precomputed.dimension_ == pytest.approx(coordinates.dimension_, rel=1e-12)
    queries = curved_data[:5] + 0.01
    np.testing.assert_allclose(
        precomputed.transform(cdist(queries, curved_data)), coordinates.transform(queries), rtol=1e-12
    )


def test_duplicates_are_collapsed_with_a_warning(curved_data):
    clean = GRIDEDimension(n1=2, n2=4).fit(curved_data)
    with pytest.warns(DuplicatePointsWarning, match="3 exact duplicate rows"):
        doubled = GRIDEDimension(n1=2, n2=4).fit(np.r_[curved_data, curved_data[:3]])
    assert doubled.dimension_ == clean.dimension_
    assert doubled.n_duplicates_ == 3


def test_transform_is_the_local_mle_over_the_nearest_fitted_points(curved_data, rng):
    estimator = GRIDEDimension(n1=2, n2=4, n_neighbors=30).fit(curved_data)
    queries = curved_data[rng.choice(len(curved_data), 4)] + 0.01
    nearest = np.argsort(cdist(queries, curved_data), axis=1)[:, :30]
    expected = [gride_mle(estimator.mu_[row], 2, 4) for row in nearest]
    local = estimator.transform(queries)
    assert local.shape == (4, 1)
    np.testing.assert_allclose(local[:, 0], expected, rtol=1e-9)


def test_clone_keeps_the_parameters():
    estimator = clone(GRIDEDimension(n1=8, n2=16, device="cpu"))
    assert estimator.get_params()["n1"] == 8 and estimator.get_params()["n2"] == 16


@pytest.mark.parametrize(
    "params, match",
    [
        ({"n1": 4, "n2": 4}, "n1 < n2"),
        ({"n1": 8, "n2": 3}, "n1 < n2"),
        ({"n1": 0}, "'n1' parameter"),
        ({"n1": 10, "n2": 50}, "at least 51 are needed"),
    ],
)
def test_bad_ranks_are_explained(rng, params, match):
    with pytest.raises(ValueError, match=match):
        GRIDEDimension(**params).fit(rng.normal(size=(50, 3)))


def test_ratios_all_one_are_explained():
    with pytest.raises(ValueError, match="equidistant"):
        gride_mle(np.ones(10), 2, 4)
    with pytest.raises(ValueError, match="at least 1"):
        gride_mle([0.5, 2.0], 1, 2)
