"""One ID per cloud: batched estimates equal each cloud's own fit; small clouds get NaN and one warning."""

import numpy as np
import pytest
from sklearn.base import clone

from sklearn_id import GRIDEDimension, PHDimension, TwoNNDimension, cloud_dimensions


@pytest.fixture
def clouds(rng):
    # Clouds of several sizes and dimensions, far from the origin, one with duplicated rows.
    clouds = [
        rng.normal(size=(n, d)) @ rng.normal(size=(d, 12)) * scale + 1e3
        for n, d, scale in [(300, 2, 1.0), (120, 4, 1e-3), (401, 3, 10.0), (64, 1, 1.0)]
    ]
    clouds[1] = np.r_[clouds[1], clouds[1][:7]]
    return clouds


@pytest.mark.parametrize("estimator", [TwoNNDimension(), TwoNNDimension(method="mle"), GRIDEDimension(n1=2, n2=4)])
def test_each_cloud_gets_the_estimate_of_its_own_fit(clouds, estimator):
    table = cloud_dimensions(estimator, clouds, device="cpu")
    with pytest.warns(UserWarning):  # the duplicated cloud warns when fitted alone
        fits = [clone(estimator).fit(cloud) for cloud in clouds]
    np.testing.assert_allclose(table["id"], [fit.dimension_ for fit in fits], rtol=1e-6)
    assert table["n_points"].tolist() == [300, 120, 401, 64]
    if isinstance(estimator, GRIDEDimension):
        np.testing.assert_allclose(table["scale"], [fit.scale_ for fit in fits], rtol=1e-6)


def test_an_estimator_without_the_seam_is_fitted_on_each_cloud(clouds):
    table = cloud_dimensions(PHDimension(random_state=0), clouds[:3])
    with pytest.warns(UserWarning):  # the duplicated cloud, fitted alone
        expected = [PHDimension(random_state=0).fit(cloud).dimension_ for cloud in clouds[:3]]
    np.testing.assert_allclose(table["id"], expected, rtol=1e-9)


def test_clouds_too_small_get_nan_and_one_warning_that_counts_them(rng):
    clouds = [rng.normal(size=(50, 3)), rng.normal(size=(2, 3)), np.zeros((0, 3)), np.ones((5, 3))]
    with pytest.warns(UserWarning, match="3 of 4 clouds get NaN: fewer than 3 distinct points"):
        table = cloud_dimensions(TwoNNDimension(), clouds, device="cpu")
    assert np.isfinite(table["id"][0]) and table["id"][1:].isna().all()
    assert table["n_points"].tolist() == [50, 2, 0, 1]


def test_clouds_at_any_scale_and_bad_clouds_are_explained(rng):
    cloud = rng.normal(size=(200, 2)) @ rng.normal(size=(2, 6))
    table = cloud_dimensions(TwoNNDimension(), [cloud * 1e200, cloud, cloud * 1e-200], device="cpu")
    np.testing.assert_allclose(table["id"], TwoNNDimension().fit(cloud).dimension_, rtol=1e-9)
    with pytest.raises(ValueError, match=r"The clouds have \[3, 6\] features"):
        cloud_dimensions(TwoNNDimension(), [cloud, cloud[:, :3]])
    with pytest.raises(ValueError, match="cloud 1 contains NaN"):
        cloud_dimensions(TwoNNDimension(), [cloud, np.where(cloud > 1, np.nan, cloud)])


def test_duplicates_are_collapsed_within_a_cloud_never_across_clouds(rng):
    from sklearn_id._neighbors import distinct_clouds

    shared = rng.standard_normal((30, 4))
    first = np.vstack([shared, shared[:5], -0.0 * shared[:1] + shared[:1]])  # 6 repeats of its own rows
    second = shared.copy()  # the same rows as the first cloud: all its own
    distinct, duplicates = distinct_clouds([first, second, shared[:0]])
    assert duplicates.tolist() == [6, 0, 0]
    np.testing.assert_array_equal(distinct[0], shared)
    np.testing.assert_array_equal(distinct[1], shared)
    assert distinct[2].shape == (0, 4)


@pytest.mark.parametrize(
    "estimator", [TwoNNDimension(), TwoNNDimension(method="mle"), GRIDEDimension(n1=4, n2=8)], ids=repr
)
def test_the_batched_seam_equals_the_one_cloud_seam_and_names_what_fails(rng, estimator):
    from scipy.spatial.distance import cdist

    clouds = [rng.standard_normal((size, 3)) for size in (40, 75, 120)]
    columns = np.asarray(estimator.neighbor_ranks)
    distances = [np.sort(cdist(cloud, cloud), axis=1)[:, columns] for cloud in clouds]
    lattice = np.ones((50, 2))  # every ratio 1: no estimate
    dimensions, reasons = estimator.dimensions_from_neighbors([*distances, lattice])
    expected = [estimator.dimension_from_neighbors(rows) for rows in distances]
    np.testing.assert_allclose(dimensions[:3], expected, rtol=1e-12)
    assert np.isnan(dimensions[3]) and list(reasons) == [3] and "equals 1" in reasons[3]


def test_the_torch_batches_give_the_numbers_of_the_numpy_batches(clouds):
    # The torch steps, run here on the CPU: the same masked squared distances at the same ranks.
    import torch

    from sklearn_id._neighbors import _clouds

    distinct = _clouds.distinct_clouds(clouds)[0]
    size = max(cloud.shape[0] for cloud in distinct)
    real = np.zeros((len(distinct), size), dtype=bool)
    points = np.zeros((len(distinct), size, 12))
    for index, cloud in enumerate(distinct):
        points[index, : len(cloud)] = cloud - cloud.mean(axis=0)
        real[index, : len(cloud)] = True
    ranks = np.array([1, 2, 8])
    on_host = _clouds._squared_ranks_numpy(points, real, ranks)
    by_torch = _clouds._squared_ranks_torch(points, real, ranks, torch.device("cpu"))
    for index, cloud in enumerate(distinct):
        np.testing.assert_allclose(by_torch[index, : len(cloud)], on_host[index, : len(cloud)], rtol=1e-9)


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("estimator", [TwoNNDimension(), GRIDEDimension(n1=4, n2=8)])
def test_the_batched_clouds_on_cuda_equal_the_cpu(clouds, estimator):
    on_cuda = cloud_dimensions(clone(estimator).set_params(device="cuda"), clouds)
    on_cpu = cloud_dimensions(clone(estimator).set_params(device="cpu"), clouds)
    np.testing.assert_allclose(on_cuda[["id", "scale"]], on_cpu[["id", "scale"]], rtol=1e-9)
    assert on_cuda["n_points"].tolist() == on_cpu["n_points"].tolist()
