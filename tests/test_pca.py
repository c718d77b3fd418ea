"""PCADimension: a count of components, computed by sklearn's PCA."""

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_id import PCADimension
from sklearn_id._pca import standardised_spectrum


@pytest.fixture
def spectrum_data(rng):
    """Data whose variance ratios are exactly 0.5, 0.3, 0.15, 0.05 along a rotated basis."""
    n_samples = 400
    white = rng.normal(size=(n_samples, 4))
    white -= white.mean(axis=0)
    # Whiten exactly, then give each direction its share of the variance.
    white = np.linalg.svd(white, full_matrices=False)[0] * np.sqrt(n_samples - 1)
    basis, _ = np.linalg.qr(rng.normal(size=(6, 4)))
    return (white * np.sqrt([0.5, 0.3, 0.15, 0.05])) @ basis.T + 7.0


@pytest.mark.parametrize("threshold, expected", [(0.4, 1), (0.5, 1), (0.79, 2), (0.9, 3), (0.96, 4), (1.0, 4)])
def test_dimension_is_the_count_reaching_the_threshold(spectrum_data, threshold, expected):
    estimator = PCADimension(threshold=threshold).fit(spectrum_data)
    np.testing.assert_allclose(estimator.explained_variance_ratio_[:4], [0.5, 0.3, 0.15, 0.05], atol=1e-12)
    assert estimator.dimension_ == expected
    assert estimator.components_.shape == (expected, spectrum_data.shape[1])


def test_dimension_matches_an_independent_svd(curved_data):
    estimator = PCADimension().fit(curved_data)
    singular = np.linalg.svd(curved_data - curved_data.mean(0), compute_uv=False)
    cumulative = np.cumsum(singular**2) / np.sum(singular**2)
    assert estimator.dimension_ == np.argmax(cumulative >= 0.9) + 1


def test_transform_and_inverse_transform_round_trip(spectrum_data):
    estimator = PCADimension(threshold=0.99).fit(spectrum_data)
    projected = estimator.transform(spectrum_data)
    assert projected.shape == (spectrum_data.shape[0], 4)
    np.testing.assert_allclose(estimator.inverse_transform(projected), spectrum_data, atol=1e-10)
    assert list(estimator.get_feature_names_out()) == [f"pcadimension{i}" for i in range(4)]


def test_paper_recipe_standardises_first(rng):
    # Two strong directions in raw units, four independent features after standardisation:
    # 90% of the standardised variance needs all four.
    X = rng.normal(size=(2000, 4)) * [100.0, 50.0, 0.1, 0.01] + 5.0
    assert PCADimension().fit(X).dimension_ == 2
    assert make_pipeline(StandardScaler(), PCADimension()).fit(X)[-1].dimension_ == 4


def test_identical_points_are_an_error():
    with pytest.raises(ValueError, match="All samples are identical"):
        PCADimension().fit(np.ones((10, 3)))


@pytest.mark.parametrize("threshold", [0.0, 1.5, -0.2])
def test_threshold_outside_the_unit_interval_is_an_error(spectrum_data, threshold):
    with pytest.raises(ValueError, match="threshold"):
        PCADimension(threshold=threshold).fit(spectrum_data)


@pytest.mark.parametrize("shape", [(300, 1000), (1000, 300), (400, 400)], ids=["wide", "tall", "square"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_standardised_spectrum_is_the_paper_recipe_without_its_svd(rng, shape, dtype):
    # Correlated features on very different scales, one of them constant, far from the origin.
    n_samples, n_features = shape
    X = np.tanh(rng.normal(size=(n_samples, 20)) @ rng.normal(size=(20, n_features))) + 0.05 * rng.normal(size=shape)
    X = (X * rng.uniform(1e-3, 1e3, size=n_features) + 1e4).astype(dtype)
    X[:, 3] = 7.0
    expected = PCA().fit(StandardScaler().fit_transform(X.astype(np.float64))).explained_variance_ratio_
    spectrum = standardised_spectrum(X)
    assert spectrum.shape == (min(shape),)
    assert spectrum.sum() == pytest.approx(1.0, rel=1e-12)
    # float32 products: within about 1e-7 of the largest ratio.
    np.testing.assert_allclose(spectrum[: expected.size], expected, atol=1e-12 if dtype == np.float64 else 1e-7)
    for threshold in (0.5, 0.8, 0.9, 0.99):
        recipe = make_pipeline(StandardScaler(), PCADimension(threshold=threshold)).fit(X.astype(np.float64))
        assert PCADimension(threshold=threshold).dimension_from_spectrum(spectrum) == recipe[-1].dimension_


def test_standardised_spectrum_of_identical_points_is_an_error():
    with pytest.raises(ValueError, match="All samples are identical"):
        standardised_spectrum(np.ones((10, 30)))


@pytest.mark.parametrize("shape", [(300, 1000), (1000, 300)], ids=["wide", "tall"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_standardised_spectrum_of_a_tensor_is_computed_by_torch_alike(rng, shape, dtype):
    # The route DepthProfile takes on a GPU, run by torch on the CPU.
    torch = pytest.importorskip("torch")
    n_samples, n_features = shape
    X = np.tanh(rng.normal(size=(n_samples, 20)) @ rng.normal(size=(20, n_features)))
    X = (X * rng.uniform(1e-3, 1e3, size=n_features) + 1e4).astype(dtype)
    expected = PCA().fit(StandardScaler().fit_transform(X.astype(np.float64))).explained_variance_ratio_
    spectrum = standardised_spectrum(torch.from_numpy(X))
    np.testing.assert_allclose(spectrum[: expected.size], expected, atol=1e-12 if dtype == np.float64 else 1e-7)
    np.testing.assert_allclose(spectrum, standardised_spectrum(X), atol=1e-12 if dtype == np.float64 else 1e-8)
