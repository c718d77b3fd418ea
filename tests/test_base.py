"""The estimator seams: any ID estimator works everywhere, and the neighbour seam gets the neighbour reuse."""

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.spatial.distance import cdist
from sklearn.base import BaseEstimator
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state
from torch import nn

from sklearn_id import (
    DepthProfile,
    GRIDEDimension,
    LayerActivationTransformer,
    PCADimension,
    TwoNNDimension,
    id_scaling,
    make_id_scorer,
)
from sklearn_id._base import dimensions_with_resamples, fitted_dimension
from sklearn_id._neighbors import group_edges


class SpreadDimension:
    """A user's estimator with ``fit`` and ``dimension_`` only: the participation ratio of the spectrum."""

    def fit(self, X, y=None):
        variances = np.linalg.eigvalsh(np.cov(np.asarray(X, dtype=np.float64), rowvar=False))
        self.dimension_ = variances.sum() ** 2 / (variances**2).sum()
        return self


class ThirdNeighbourDimension:
    """A user's estimator with the neighbour seam: the TwoNN-style MLE from the 1st and 3rd neighbours.

    It counts its fits and its seam calls, so the tests can see which path ran.
    """

    neighbor_ranks = (1, 3)

    def __init__(self):
        self.n_fits = 0
        self.n_seam_calls = 0

    def fit(self, X, y=None):
        self.n_fits += 1
        distances = np.sort(cdist(X, X), axis=1)[:, [1, 3]]
        self.dimension_ = self.dimension_from_neighbors(distances)
        return self

    def dimension_from_neighbors(self, distances):
        self.n_seam_calls += 1
        log_mu = np.log(distances[:, 1] / distances[:, 0])
        return (log_mu.size - 1) / log_mu.sum()


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 32), nn.Tanh(), nn.Linear(32, 16), nn.Tanh(), nn.Linear(16, 2))


@pytest.fixture(scope="module")
def inputs():
    rng = np.random.default_rng(1)
    return np.tanh(rng.normal(size=(600, 3)) @ rng.normal(size=(3, 6))).astype(np.float32)


def _layer(model, layer, inputs):
    return LayerActivationTransformer(model, layer, device="cpu").fit_transform(inputs)


def _subsets(n_samples, n_resamples, seed):
    rng = check_random_state(seed)
    return [np.sort(rng.choice(n_samples, int(round(0.9 * n_samples)), replace=False)) for _ in range(n_resamples)]


@pytest.mark.parametrize(
    "estimator", [SpreadDimension(), ThirdNeighbourDimension()], ids=["fit-only", "neighbour-seam"]
)
def test_a_users_estimator_works_in_depth_profile(model, inputs, estimator):
    profile = DepthProfile(model, id_estimator=estimator, pca_estimator=None, random_state=0, device="cpu").fit(inputs)
    subsets = _subsets(len(inputs), 5, 0)
    for layer, dimension, spread in profile.profile_[["layer", "id", "id_std"]].itertuples(index=False):
        activations = _layer(model, layer, inputs).astype(np.float64)
        reference = type(estimator)
        assert dimension == pytest.approx(reference().fit(activations).dimension_, rel=1e-9)
        resampled = [reference().fit(activations[subset]).dimension_ for subset in subsets]
        assert spread == pytest.approx(np.std(resampled, ddof=1), rel=1e-7)


def test_the_neighbour_seam_gets_the_neighbour_reuse(model, inputs):
    estimator = ThirdNeighbourDimension()
    DepthProfile(model, id_estimator=estimator, pca_estimator=None, random_state=0, device="cpu").fit(inputs)
    # Never refitted: one seam call per layer for all samples, and one per subsample.
    assert estimator.n_fits == 0
    assert estimator.n_seam_calls == 4 * (1 + 5)


def test_the_reuse_equals_refitting_with_duplicates_too(rng):
    X = rng.normal(size=(300, 4))
    X = np.r_[X, X[:30]]  # duplicates spread over the subsets
    subsets = _subsets(len(X), 4, 2)
    for estimator in (TwoNNDimension(), GRIDEDimension(n1=2, n2=4)):
        with pytest.warns(UserWarning, match="duplicate"):
            reused = dimensions_with_resamples(estimator, X, subsets)
        with pytest.warns(UserWarning, match="duplicate"):
            refitted = dimensions_with_resamples(make_pipeline(estimator), X, subsets)
        assert reused[0] == pytest.approx(refitted[0], rel=1e-12)
        np.testing.assert_allclose(reused[1], refitted[1], rtol=1e-12)


@pytest.mark.parametrize(
    "estimator", [SpreadDimension(), ThirdNeighbourDimension()], ids=["fit-only", "neighbour-seam"]
)
def test_a_users_estimator_works_in_id_scaling(curved_data, estimator):
    curve = id_scaling(estimator, curved_data, n_min=300, random_state=4)
    shuffled = curved_data[check_random_state(4).permutation(len(curved_data))]
    assert curve["n_subsets"].tolist() == [1, 2, 4]
    for level, row in curve.iterrows():
        edges = group_edges(len(shuffled), level)
        ids = [type(estimator)().fit(shuffled[a:b]).dimension_ for a, b in zip(edges[:-1], edges[1:])]
        assert row["id"] == pytest.approx(np.mean(ids), rel=1e-9)


@pytest.mark.parametrize(
    "estimator", [SpreadDimension(), ThirdNeighbourDimension()], ids=["fit-only", "neighbour-seam"]
)
def test_a_users_estimator_works_in_the_scorer(model, inputs, estimator):
    scorer = make_id_scorer("2", id_estimator=estimator, device="cpu")
    expected = type(estimator)().fit(_layer(model, "2", inputs)).dimension_
    assert scorer(model, inputs) == pytest.approx(-expected, rel=1e-9)


def test_dimension_from_neighbors_is_the_fit_on_the_same_neighbours(curved_data):
    distances = np.sort(cdist(curved_data, curved_data), axis=1)
    for estimator in (TwoNNDimension(), TwoNNDimension(method="mle"), GRIDEDimension(n1=4, n2=8)):
        near, far = estimator.neighbor_ranks
        fitted = estimator.fit(curved_data)
        assert estimator.dimension_from_neighbors(distances[:, [near, far]]) == pytest.approx(
            fitted.dimension_, rel=1e-12
        )
    dimension, std = GRIDEDimension(n1=4, n2=8).dimension_from_neighbors(distances[:, [4, 8]], return_std=True)
    assert std == pytest.approx(GRIDEDimension(n1=4, n2=8).fit(curved_data).dimension_std_, rel=1e-12)
    mle, spread = TwoNNDimension(method="mle", discard_fraction=0.0).dimension_from_neighbors(
        distances[:, [1, 2]], return_std=True
    )
    assert spread == pytest.approx(mle / np.sqrt(len(curved_data) - 2), rel=1e-12)


@pytest.mark.parametrize(
    "estimator, distances, match",
    [
        (TwoNNDimension(method="foo"), [[1.0, 2.0]] * 5, "'method' parameter"),
        (GRIDEDimension(n1=4, n2=2), [[1.0, 2.0]] * 5, "n1 < n2"),
        (TwoNNDimension(), [[1.0, 2.0, 3.0]] * 5, "two columns"),
        (TwoNNDimension(), [[0.0, 2.0]] * 5, "collapse exact duplicates"),
        (TwoNNDimension(), [[2.0, 1.0]] * 5, "non-decreasing"),
    ],
)
def test_the_neighbour_seam_checks_settings_and_distances(estimator, distances, match):
    with pytest.raises(ValueError, match=match):
        estimator.dimension_from_neighbors(np.asarray(distances))


def test_fitted_dimension_explains_an_estimator_without_dimension():
    with pytest.raises(TypeError, match="sets no dimension_"):
        fitted_dimension(StandardScaler().fit(np.eye(3)))


def test_pca_dimension_from_spectrum_is_the_fitted_count(curved_data):
    fitted = PCADimension(threshold=0.8).fit(curved_data)
    assert PCADimension(threshold=0.8).dimension_from_spectrum(fitted.explained_variance_ratio_) == fitted.dimension_


@pytest.mark.parametrize(
    "steps, columns",
    [
        ([StandardScaler(), TwoNNDimension()], ["twonndimension0"]),
        ([StandardScaler(), GRIDEDimension(n1=2, n2=4)], ["gridedimension0"]),
        ([StandardScaler(), PCADimension(threshold=0.5)], None),
    ],
    ids=["twonn", "gride", "pca"],
)
def test_set_output_pandas_works_in_pipelines(curved_data, steps, columns):
    pipeline = make_pipeline(*steps).set_output(transform="pandas")
    frame = pipeline.fit_transform(pd.DataFrame(curved_data, columns=[f"x{i}" for i in range(40)]))
    assert isinstance(frame, pd.DataFrame)
    expected = columns or [f"pcadimension{i}" for i in range(pipeline[-1].dimension_)]
    assert frame.columns.tolist() == expected
    np.testing.assert_allclose(frame.to_numpy(), make_pipeline(*steps).fit_transform(curved_data))


def test_set_output_pandas_names_a_layers_features(model, inputs):
    pipeline = make_pipeline(LayerActivationTransformer(model, "2", device="cpu"), StandardScaler())
    frame = pipeline.set_output(transform="pandas").fit_transform(inputs)
    assert frame.columns.tolist() == [f"2_{i}" for i in range(16)]
    np.testing.assert_allclose(frame.to_numpy(), StandardScaler().fit_transform(_layer(model, "2", inputs)), rtol=1e-6)


def test_warnings_point_at_the_users_line(curved_data):
    import warnings

    from sklearn.pipeline import make_pipeline

    from sklearn_id._neighbors import DuplicatePointsWarning

    X = np.r_[curved_data, curved_data[:3]]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        TwoNNDimension().fit(X)
        make_pipeline(TwoNNDimension()).fit(X)  # through scikit-learn's Pipeline as well
    duplicates = [w for w in caught if issubclass(w.category, DuplicatePointsWarning)]
    assert len(duplicates) == 2
    assert {w.filename for w in duplicates} == {__file__}


class ThreeRanks(BaseEstimator):
    """A user's estimator on three neighbour ranks: Levina and Bickel's harmonic mean, with ranks 1, 2 and 4."""

    neighbor_ranks = (1, 2, 4)
    fits = 0

    def dimension_from_neighbors(self, distances):
        local = 2 / (np.log(distances[:, 2] / distances[:, 0]) + np.log(distances[:, 2] / distances[:, 1]))
        return float(1 / np.mean(1 / local))

    def fit(self, X, y=None):
        type(self).fits += 1
        D = np.sort(cdist(X, X), axis=1)
        self.dimension_ = self.dimension_from_neighbors(D[:, list(self.neighbor_ranks)])
        return self


def test_an_estimator_with_three_ranks_gets_one_search_for_every_subsample(curved_data):
    subsets = [np.sort(np.random.default_rng(seed).choice(1500, 1350, replace=False)) for seed in range(4)]
    estimator = ThreeRanks()
    ThreeRanks.fits = 0
    dimension, resampled = dimensions_with_resamples(estimator, curved_data, subsets)
    assert ThreeRanks.fits == 0  # read off one neighbour search, never refitted
    assert dimension == pytest.approx(ThreeRanks().fit(curved_data).dimension_, rel=1e-12)
    for subset, value in zip(subsets, resampled):
        assert value == pytest.approx(ThreeRanks().fit(curved_data[subset]).dimension_, rel=1e-12)
    # And a depth profile reads its rows the same way.
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(40, 16), nn.Tanh())
    X = curved_data.astype(np.float32)
    ThreeRanks.fits = 0
    profile = DepthProfile(model, id_estimator=ThreeRanks(), n_resamples=3, random_state=0, device="cpu").fit(X)
    assert ThreeRanks.fits == 0
    assert profile.profile_["id"].iloc[0] == pytest.approx(ThreeRanks().fit(X).dimension_, rel=1e-9)
    assert np.isfinite(profile.profile_["id_std"]).all()
