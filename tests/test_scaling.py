"""id_scaling: decimation and rank-doubling curves, equal to fits on the subsets and ranks they stand for."""

import warnings

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.utils import check_random_state

from sklearn_id import DuplicatePointsWarning, GRIDEDimension, PCADimension, TwoNNDimension, id_scaling
from sklearn_id._neighbors import group_edges


@pytest.fixture(scope="module")
def noisy_plane():
    """A unit square in 20 dimensions, Gaussian noise of std 0.002 in all 20 directions."""
    rng = np.random.default_rng(0)
    n_points = 16_384
    plane = np.c_[rng.uniform(size=(n_points, 2)), np.zeros((n_points, 18))]
    rotation, _ = np.linalg.qr(rng.normal(size=(20, 20)))
    return (plane + 0.002 * rng.normal(size=plane.shape)) @ rotation


@pytest.mark.parametrize("estimator", [TwoNNDimension(), TwoNNDimension(method="mle", discard_fraction=0.0)])
def test_decimation_is_the_mean_of_fits_on_disjoint_random_subsets(curved_data, estimator):
    curve = id_scaling(estimator, curved_data, n_min=100, random_state=3)
    shuffled = curved_data[check_random_state(3).permutation(len(curved_data))]
    assert curve["n_subsets"].tolist() == [1, 2, 4, 8]
    assert curve["n_samples"].tolist() == [1500, 750, 375, 187]
    for level, row in curve.iterrows():
        edges = group_edges(len(shuffled), level)
        ids = [estimator.fit(shuffled[a:b]).dimension_ for a, b in zip(edges[:-1], edges[1:])]
        assert row["id"] == pytest.approx(np.mean(ids), rel=1e-12)
        if level:
            assert row["id_std"] == pytest.approx(np.std(ids, ddof=1), rel=1e-9)
        else:
            assert np.isnan(row["id_std"])
        second = np.concatenate(
            [np.sort(cdist(shuffled[a:b], shuffled[a:b]), axis=1)[:, 2] for a, b in zip(edges[:-1], edges[1:])]
        )
        assert row["scale"] == pytest.approx(second.mean(), rel=1e-12)


def test_decimation_is_reproducible_and_follows_the_seed(curved_data):
    first = id_scaling(TwoNNDimension(), curved_data, random_state=0)
    assert first.equals(id_scaling(TwoNNDimension(), curved_data, random_state=0))
    assert not first.equals(id_scaling(TwoNNDimension(), curved_data, random_state=1))


def test_precomputed_decimation_equals_coordinates(curved_data):
    coordinates = id_scaling(TwoNNDimension(), curved_data, n_min=50, random_state=0)
    distances = id_scaling(
        TwoNNDimension(metric="precomputed"), cdist(curved_data, curved_data), n_min=50, random_state=0
    )
    np.testing.assert_allclose(distances.to_numpy(), coordinates.to_numpy(), rtol=1e-12)


def test_decimation_collapses_duplicates_once(curved_data):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        curve = id_scaling(TwoNNDimension(), np.r_[curved_data, curved_data[:4]], n_min=100, random_state=0)
    duplicates = [w for w in caught if issubclass(w.category, DuplicatePointsWarning)]
    assert len(duplicates) == 1
    assert "4 exact duplicate rows" in str(duplicates[0].message)
    assert curve["n_samples"].iloc[0] == len(curved_data)
    # The curve is the one of the distinct points.
    distinct = id_scaling(TwoNNDimension(), curved_data, n_min=100, random_state=0)
    np.testing.assert_allclose(curve["id"].iloc[0], distinct["id"].iloc[0], rtol=1e-12)


def test_gride_curve_is_gride_at_each_doubled_rank(curved_data):
    curve = id_scaling(GRIDEDimension(), curved_data, range_max=40)
    assert curve["n1"].tolist() == [1, 2, 4, 8, 16]
    assert curve["n2"].tolist() == [2, 4, 8, 16, 32]
    assert (curve["n_samples"] == len(curved_data)).all()
    for _, row in curve.iterrows():
        fit = GRIDEDimension(n1=int(row["n1"]), n2=int(row["n2"])).fit(curved_data)
        assert row["id"] == pytest.approx(fit.dimension_, rel=1e-12)
        assert row["id_std"] == pytest.approx(fit.dimension_std_, rel=1e-12)
        assert row["scale"] == pytest.approx(fit.scale_, rel=1e-12)


def test_gride_curve_stops_at_the_number_of_points(rng):
    curve = id_scaling(GRIDEDimension(), rng.normal(size=(20, 3)), range_max=64)
    assert curve["n2"].tolist() == [2, 4, 8, 16]


@pytest.mark.slow  # 16,384 points
def test_noise_inflates_twonn_and_the_curves_find_the_plane(noisy_plane):
    # The acceptance numbers, on N = 16,384 points.
    assert TwoNNDimension().fit(noisy_plane).dimension_ > 5
    curve = id_scaling(TwoNNDimension(), noisy_plane, n_min=64, random_state=0).set_index("n_samples")
    assert curve.loc[256, "id"] < 2.6
    assert curve.loc[64, "id"] == pytest.approx(2.0, abs=0.3)
    assert curve["id"].is_monotonic_decreasing
    gride = id_scaling(GRIDEDimension(), noisy_plane, range_max=128).set_index("n1")
    assert gride.loc[64, "id"] == pytest.approx(2.0, abs=0.3)
    assert gride.loc[1, "id"] > 5


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"n_min": 2}, ValueError, "'n_min' parameter"),
        ({"n_min": 1501}, ValueError, "at least 3002 distinct points"),
        ({"n_min": 751}, ValueError, "at least 1502 distinct points"),
        ({"range_max": 1}, ValueError, "'range_max' parameter"),
    ],
)
def test_bad_arguments_are_explained(curved_data, kwargs, error, match):
    estimator = GRIDEDimension() if "range_max" in kwargs else TwoNNDimension()
    with pytest.raises(error, match=match):
        id_scaling(estimator, curved_data, **kwargs)


def test_an_estimator_without_the_neighbour_seam_is_refitted_on_each_subset(curved_data):
    curve = id_scaling(PCADimension(threshold=0.5), curved_data, n_min=300, random_state=0)
    shuffled = curved_data[check_random_state(0).permutation(len(curved_data))]
    assert curve["n_subsets"].tolist() == [1, 2, 4]
    for level, row in curve.iterrows():
        edges = group_edges(len(shuffled), level)
        ids = [PCADimension(threshold=0.5).fit(shuffled[a:b]).dimension_ for a, b in zip(edges[:-1], edges[1:])]
        assert row["id"] == pytest.approx(np.mean(ids), rel=1e-12)
    # The scale is the data's, whatever the estimator.
    twonn = id_scaling(TwoNNDimension(), curved_data, n_min=300, random_state=0)
    np.testing.assert_allclose(curve["scale"], twonn["scale"], rtol=1e-12)
