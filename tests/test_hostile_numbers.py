"""Hostile inputs, kind 1: ordinary numeric data never give a silent absurd, NaN or infinite estimate.

Every finite float64 input gives the estimate of the same data at unit size
(to 1e-9), or a clear error.
"""

import warnings

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist
from sklearn.datasets import make_swiss_roll

from sklearn_id import (
    DepthProfile,
    GRIDEDimension,
    LayerActivationTransformer,
    PCADimension,
    TwoNNDimension,
    UndersampledWarning,
    id_scaling,
)

SCALES = [1e-300, 1e-200, 1e-170, 1e-30, 1e30, 1e39, 1e150, 1e300]


@pytest.fixture(scope="module")
def roll():
    X, _ = make_swiss_roll(n_samples=1200, random_state=0)
    return X / np.abs(X).max()


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize(
    "estimator",
    [TwoNNDimension(), TwoNNDimension(method="mle"), GRIDEDimension(n1=2, n2=4)],
    ids=["twonn-linear", "twonn-mle", "gride"],
)
def test_estimates_do_not_depend_on_the_scale(roll, estimator, scale):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow or underflow on the way
        scaled = estimator.fit(roll * scale)
        dimension, mu, local = scaled.dimension_, scaled.mu_.copy(), scaled.transform(roll[:20] * scale)
    unit = estimator.fit(roll)
    assert np.isfinite(dimension)
    assert dimension == pytest.approx(unit.dimension_, rel=1e-9)
    np.testing.assert_allclose(mu, unit.mu_, rtol=1e-9)
    np.testing.assert_allclose(local, unit.transform(roll[:20]), rtol=1e-9)


def _scaled_difference_distances(X):
    """Float64 brute force that neither overflows nor underflows: each difference divided by its largest entry."""
    D = np.empty((X.shape[0], X.shape[0]))
    for i, row in enumerate(X):
        difference = X - row
        largest = np.abs(difference).max(axis=1, keepdims=True)
        largest[largest == 0] = 1.0
        D[i] = largest[:, 0] * np.sqrt(((difference / largest) ** 2).sum(axis=1))
    return D


@pytest.mark.parametrize(("scale", "outlier"), [(1.0, 1e160), (1.0, 1e300), (1e-300, 1e-160), (1e150, 1e300)])
@pytest.mark.parametrize("estimator", [TwoNNDimension(), GRIDEDimension(n1=2, n2=4)], ids=["twonn", "gride"])
def test_one_row_far_from_the_others_leaves_their_distances_exact(rng, estimator, scale, outlier):
    # Brought to unit size as a whole, the others would sink into subnormals and lose their digits.
    X = rng.normal(size=(300, 5)) * scale
    X[0] = outlier
    fitted = estimator.fit(X)
    mu, dimension = fitted.mu_.copy(), fitted.dimension_
    reference = estimator.set_params(metric="precomputed").fit(_scaled_difference_distances(X))
    np.testing.assert_allclose(mu, reference.mu_, rtol=1e-12)
    assert dimension == pytest.approx(reference.dimension_, rel=1e-12)
    estimator.set_params(metric="euclidean")


@pytest.mark.parametrize("scale", SCALES)
def test_scales_of_gride_and_of_the_curves_follow_the_data(roll, scale):
    gride = GRIDEDimension(n1=2, n2=4).fit(roll * scale)
    assert gride.scale_ == pytest.approx(GRIDEDimension(n1=2, n2=4).fit(roll).scale_ * scale, rel=1e-12)
    curve = id_scaling(TwoNNDimension(), roll * scale, n_min=100, random_state=0)
    reference = id_scaling(TwoNNDimension(), roll, n_min=100, random_state=0)
    np.testing.assert_allclose(curve["id"], reference["id"], rtol=1e-9)
    np.testing.assert_allclose(curve["scale"], reference["scale"] * scale, rtol=1e-12)


@pytest.mark.parametrize("scale", [1e-300, 1e-200, 1.0, 1e200, 1e300])
def test_pca_dimension_does_not_depend_on_the_scale(rng, scale):
    X = rng.normal(size=(400, 5)) @ rng.normal(size=(5, 12))
    for threshold in (0.5, 0.9, 0.999, 1.0):
        expected = PCADimension(threshold=threshold).fit(X).dimension_
        fitted = PCADimension(threshold=threshold).fit(X * scale)
        assert fitted.dimension_ == expected
        np.testing.assert_allclose(
            fitted.inverse_transform(fitted.transform(X * scale)) / scale,
            PCADimension(threshold=threshold)
            .fit(X)
            .inverse_transform(PCADimension(threshold=threshold).fit(X).transform(X)),
            rtol=1e-6,
            atol=1e-9,
        )
    assert PCADimension(threshold=1.0).fit(X * scale).dimension_ == 5


def test_pca_tolerance_follows_the_input_precision(rng):
    X = rng.normal(size=(500, 3)) @ rng.normal(size=(3, 10))
    assert PCADimension(threshold=1.0).fit(X).dimension_ == 3
    assert PCADimension(threshold=1.0).fit(X.astype(np.float32)).dimension_ == 3


@pytest.mark.parametrize("step", [0.1, 0.25, 1.0])
def test_a_lattice_up_to_rounding_is_an_error_like_an_exact_one(rng, step):
    coarse = np.round(rng.uniform(size=(1000, 2)) / step) * step  # 0.1 * 3 is not 0.3 in floating point
    for estimator in (TwoNNDimension(), TwoNNDimension(method="mle"), GRIDEDimension()):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the duplicates
            with pytest.raises(ValueError, match="equidistant, as on a regular grid"):
                estimator.fit(coarse)


def test_transform_where_every_pooled_ratio_is_one_is_an_error(rng):
    grid = np.stack(np.meshgrid(np.arange(20.0), np.arange(20.0)), axis=-1).reshape(-1, 2)
    X = np.r_[grid, rng.uniform(30, 40, size=(400, 2))]
    estimator = TwoNNDimension(n_neighbors=3).fit(X)
    with pytest.raises(ValueError, match="5 of the 5 samples .* raise n_neighbors"):
        estimator.transform(grid[:5] + 0.01)
    local = estimator.transform(X[-50:])
    assert np.isfinite(local).all()


def test_a_similarity_matrix_is_not_taken_for_distances(rng):
    X = rng.normal(size=(200, 3))
    D = cdist(X, X)
    for estimator in (TwoNNDimension(metric="precomputed"), GRIDEDimension(metric="precomputed")):
        with pytest.raises(ValueError, match="needs zeros on the diagonal .* a similarity or kernel matrix"):
            estimator.fit(np.exp(-D))
        asymmetric = D + np.triu(rng.uniform(size=D.shape), 1) * 0.1
        with pytest.raises(ValueError, match=r"needs a symmetric distance matrix.* pass \(D \+ D.T\) / 2"):
            estimator.fit(asymmetric)
        # Rounding-level asymmetry is accepted.
        assert np.isfinite(estimator.fit(D + np.triu(np.full(D.shape, 1e-15), 1)).dimension_)
    with pytest.raises(ValueError, match="needs zeros on the diagonal"):
        id_scaling(TwoNNDimension(metric="precomputed"), np.exp(-D))


def test_the_interval_of_lattice_ratios_is_an_error_not_infinite_bounds():
    from sklearn_id import twonn_interval

    with pytest.raises(ValueError, match="equidistant, as on a regular grid"):
        twonn_interval([1.0, 1.0, 1.0 + 2e-16, 1.0])


def test_a_pca_count_that_the_samples_bound_warns():
    # 10 samples allow 9 components: a count of half or more of them says more about the samples than the data.
    X = np.random.default_rng(0).standard_normal((10, 50))
    with pytest.warns(UndersampledWarning, match="PCADimension counted [5-9] components from 10 samples") as caught:
        dimension = PCADimension().fit(X).dimension_
    assert f"counted {dimension} components" in str(caught[0].message) and dimension >= 9 / 2
    with warnings.catch_warnings():
        warnings.simplefilter("error", UndersampledWarning)
        PCADimension().fit(np.random.default_rng(0).standard_normal((500, 50)))


def test_a_subsample_that_rounds_to_every_sample_is_refused_not_a_zero_spread():
    import torch

    from sklearn_id import DepthProfile

    model = torch.nn.Sequential(torch.nn.Linear(3, 4))
    X = np.random.default_rng(0).standard_normal((300, 3)).astype(np.float32)
    with pytest.raises(ValueError, match="300 samples are too few for subsamples of fraction 0.999: at least 501"):
        DepthProfile(model, layers=["0"], subsample=0.999, device="cpu").fit(X)
    with pytest.raises(ValueError, match="4 samples are too few .* at least 5 are needed, so that each subsample"):
        DepthProfile(model, layers=["0"], device="cpu").fit(X[:4])


@pytest.mark.parametrize("estimator", [TwoNNDimension(), GRIDEDimension()])
def test_transform_honours_set_output(estimator):
    X = np.random.default_rng(0).standard_normal((200, 3))
    fitted = estimator.set_output(transform="pandas").fit(X)
    frame = fitted.transform(X[:5])
    assert list(frame.columns) == list(fitted.get_feature_names_out())
    np.testing.assert_allclose(frame.to_numpy(), estimator.set_output(transform="default").transform(X[:5]))


def test_a_sweep_error_survives_pickling():
    import pickle

    from sklearn_id import SweepError

    error = pickle.loads(pickle.dumps(SweepError("2 of 3 models failed", partial=None, errors={"a": "boom"})))
    assert str(error) == "2 of 3 models failed" and error.errors == {"a": "boom"} and error.partial is None


class RoundsByPosition(torch.nn.Module):
    """A linear layer whose float32 kernel rounds each row by its place in the batch, as some CPUs' products do."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(10, 10)

    def forward(self, x):
        out = self.linear(x)
        place = torch.arange(len(x), dtype=out.dtype)[:, None] % 7
        return out * (1 + place * torch.finfo(out.dtype).eps)  # a few units in the last place apart


@pytest.mark.filterwarnings("ignore::sklearn_id.DuplicatePointsWarning", "ignore::sklearn_id.UndersampledWarning")
def test_identical_inputs_give_identical_rows_however_the_kernel_rounds():
    torch.manual_seed(0)
    model = torch.nn.Sequential(RoundsByPosition(), torch.nn.Tanh())
    distinct = np.random.default_rng(0).normal(size=(40, 10)).astype(np.float32)
    X = np.repeat(distinct, 10, axis=0)  # every sample ten times, at ten places in its batches
    rows = LayerActivationTransformer(model, "0", device="cpu", batch_size=64).fit_transform(X)
    np.testing.assert_array_equal(rows, np.repeat(rows[::10], 10, axis=0))
    # The estimate rests on the 40 distinct samples, as on the input: not on clusters of rounding noise.
    profile = DepthProfile(model, layers=["0"], device="cpu", n_resamples=0, batch_size=64).fit(X).profile_
    alone = DepthProfile(model, layers=["0"], device="cpu", n_resamples=0, batch_size=1).fit(distinct).profile_
    # Each first occurrence is scaled by at most 1 + 6 eps, which moves a log distance ratio by at most 12 eps
    # (1.4e-6) against the mean log ratio 1 / id: a relative change of the ID below 1.4e-6 id, < 1e-4 for id < 70.
    np.testing.assert_allclose(profile["id"], alone["id"], rtol=1e-4)
    assert profile["id"][0] > 3
