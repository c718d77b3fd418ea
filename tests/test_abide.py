"""ABIDEDimension: DADApy's numbers iteration by iteration, no silent cap, exact at any scale, its seams."""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist
from sklearn.datasets import load_digits
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import InvalidParameterError

from sklearn_id import ABIDEDimension, DepthProfile, DuplicatePointsWarning, SaturatedNeighborhoodWarning, id_scaling
from sklearn_id._base import dimensions_with_resamples
from sklearn_id._kstar import kstar, kstar_threshold
from sklearn_id._neighbors import _graph, group_edges, neighbor_graph

STORED = np.load(Path(__file__).parent / "data" / "dadapy_abide.npz")  # benchmarks/peer_numbers_abide.py
DADAPY = json.loads(str(STORED["numbers"]))
MAXK = int(STORED["maxk"])


def data_set(name):
    if name == "digits":
        return StandardScaler().fit_transform(load_digits().data)
    return STORED[name]


def fitted(name, method, **settings):
    settings.setdefault("initial_id", 5.0 if name == "gaussian" else None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SaturatedNeighborhoodWarning)
        return ABIDEDimension(method=method, device="cpu", **settings).fit(data_set(name))


@pytest.mark.parametrize("method", ["binomial", "gride"])
@pytest.mark.parametrize("name", ["gaussian", "moebius", "digits"])
def test_every_iteration_equals_dadapy(name, method):
    estimator = fitted(name, method, max_neighbors=MAXK)
    theirs = DADAPY[name][method]
    # DADApy's GRIDE is a bisection to 1e-7 in d; its binomial estimator is a closed form.
    np.testing.assert_allclose(estimator.dimensions_, theirs["ids"], rtol=1e-6)
    assert estimator.dimension_std_ == pytest.approx(theirs["errors"][-1], rel=1e-6)
    np.testing.assert_array_equal(estimator.kstar_, theirs["kstar"])
    assert estimator.scale_ == pytest.approx(theirs["scale"], rel=1e-9)


def brute_kstar(X, dimension, alpha, maxk):
    """DADApy's loop, point by point, on a brute-force neighbour list: the reference for the vectorised test."""
    D = cdist(X, X)
    order = np.argsort(D, axis=1, kind="stable")[:, : maxk + 1]
    distances = np.take_along_axis(D, order, axis=1)
    threshold = kstar_threshold(alpha)
    result = []
    for i in range(len(X)):
        j = 4
        while j < maxk:
            vi, vj = distances[i, j - 1] ** dimension, distances[order[i, j], j - 1] ** dimension
            if -2 * (j - 1) * (np.log(vi) + np.log(vj) - 2 * np.log(vi + vj) + np.log(4)) > threshold:
                break
            j += 1
        result.append(j - 1)
    return np.array(result)


@pytest.mark.parametrize("dimension", [1.5, 2.0, 6.0])
def test_the_vectorised_kstar_equals_the_loop(rng, dimension):
    X = rng.normal(size=(400, 3)) * [1.0, 1.0, 0.1]
    graph, _, _ = neighbor_graph(X, 60)
    found, saturated = kstar(graph, dimension, 1e-6)
    np.testing.assert_array_equal(found, brute_kstar(X, dimension, 1e-6, 60))
    np.testing.assert_array_equal(saturated, found == 59)


@pytest.mark.slow
def test_auto_grows_only_the_lists_that_need_it_and_equals_every_neighbour_listed():
    X = STORED["moebius"][:800]
    every = ABIDEDimension(max_neighbors=799, device="cpu").fit(X)
    auto = ABIDEDimension(device="cpu").fit(X)
    np.testing.assert_array_equal(auto.kstar_, every.kstar_)
    np.testing.assert_allclose(auto.dimensions_, every.dimensions_, rtol=1e-12)
    assert auto.kstar_.max() > 99 and auto.n_saturated_ == 0
    # The capped run cuts the largest neighbourhoods and says so.
    with pytest.warns(SaturatedNeighborhoodWarning, match=r"max_neighbors - 1 = 99: raise max_neighbors"):
        capped = ABIDEDimension(max_neighbors=100, device="cpu").fit(X)
    assert capped.n_saturated_ == np.count_nonzero(capped.kstar_ == 99) > 0


def test_grown_rows_equal_a_search_of_that_width(rng):
    X = rng.normal(size=(300, 4))
    graph, _, _ = neighbor_graph(X, 10)
    rows = np.array([3, 7, 200])
    graph.grow(rows, 50)
    full, _, _ = neighbor_graph(X, 50)
    expected = full.block(np.arange(300), 50)
    distances, indices = graph.block(np.arange(300), 50)
    np.testing.assert_array_equal(distances[rows], expected[0][rows])
    np.testing.assert_array_equal(indices[rows], expected[1][rows])
    others = np.setdiff1d(np.arange(300), rows)
    np.testing.assert_array_equal(distances[others, :10], expected[0][others, :10])
    assert np.isnan(distances[others, 10:]).all()


@pytest.mark.parametrize("method", ["binomial", "gride"])
@pytest.mark.parametrize(("scale", "offset"), [(1e-150, 0.0), (1e150, 0.0), (3.7, 1e3), (1.0, -2e4)])
def test_exact_at_any_offset_and_scale(method, scale, offset):
    X = STORED["moebius"][:300]
    reference = ABIDEDimension(method=method, device="cpu").fit(X)
    moved = ABIDEDimension(method=method, device="cpu").fit(X * scale + offset)
    np.testing.assert_allclose(moved.dimensions_, reference.dimensions_, rtol=1e-9)
    np.testing.assert_array_equal(moved.kstar_, reference.kstar_)
    assert moved.scale_ == pytest.approx(reference.scale_ * scale, rel=1e-9)


def test_duplicates_are_collapsed_with_a_warning(rng):
    X = STORED["moebius"][:500]
    with_twins = np.r_[X, X[:40]][rng.permutation(540)]
    with pytest.warns(DuplicatePointsWarning, match="40 exact duplicate rows"):
        estimator = ABIDEDimension(device="cpu").fit(with_twins)
    reference = ABIDEDimension(device="cpu").fit(np.unique(with_twins, axis=0))
    assert estimator.n_duplicates_ == 40
    assert estimator.dimension_ == pytest.approx(reference.dimension_, rel=1e-12)


def test_too_few_points_a_constant_cloud_and_bad_settings_are_clear_errors():
    with pytest.raises(ValueError, match="minimum of 5 is required by ABIDEDimension"):
        ABIDEDimension().fit(np.random.default_rng(0).normal(size=(4, 3)))
    with pytest.raises(ValueError, match="Only 4 distinct points were found, but at least 5 are needed"):
        ABIDEDimension(device="cpu").fit(np.repeat(np.eye(4), 3, axis=0))
    with pytest.raises(ValueError, match="ABIDE .* at least 5 distinct points, got 4"):
        ABIDEDimension(device="cpu").dimension_from_graph(neighbor_graph(np.eye(4), 3)[0])
    with pytest.raises(ValueError, match="lists 10 neighbours for some points, fewer than the 100"):
        ABIDEDimension(max_neighbors=100).dimension_from_graph(neighbor_graph(STORED["gaussian"], 10)[0])
    with pytest.raises(ValueError, match="identical"):
        ABIDEDimension(device="cpu").fit(np.ones((50, 3)))
    for settings in [{"alpha": 0.0}, {"ratio": 1.5}, {"max_neighbors": 3}, {"method": "twonn"}, {"n_iter": 0}]:
        with pytest.raises(InvalidParameterError):
            ABIDEDimension(**settings).fit(STORED["gaussian"])


def test_a_density_constant_nowhere_warns_that_kstar_stays_at_its_minimum():
    # At alpha close to 1 every test rejects: no neighbourhood is constant beyond 3 neighbours.
    with pytest.warns(UserWarning, match=r"k\* stays at its minimum of 3 for 99\d of 1000 points"):
        estimator = ABIDEDimension(alpha=0.999, device="cpu").fit(STORED["gaussian"])
    assert np.count_nonzero(estimator.kstar_ == 3) > 990


def test_transform_pools_each_samples_kstar_neighbourhood():
    X = STORED["moebius"][:400]
    estimator = ABIDEDimension(device="cpu").fit(X)
    local = estimator.transform(X[:20]).ravel()
    step = estimator._step
    D = cdist(X[:20], X)
    for i in range(20):
        neighbourhood = np.argsort(D[i], kind="stable")[: step.kstar[i] + 1]  # the point and its k* neighbours
        expected = np.log(step.inner[neighbourhood].mean() / (step.kstar[neighbourhood].mean() - 1)) / np.log(
            estimator.ratio_
        )
        assert local[i] == pytest.approx(expected, rel=1e-12)
    assert estimator.get_feature_names_out().tolist() == ["abidedimension0"]


@pytest.mark.slow
def test_a_graph_of_tensors_gives_the_numbers_of_the_host():
    X = STORED["moebius"][:400]
    for method in ("binomial", "gride"):
        host = ABIDEDimension(method=method, device="cpu").fit(X)
        graph, _, _ = neighbor_graph(torch.as_tensor(X), 100, device="cpu")
        dimension, scale = ABIDEDimension(method=method, device="cpu").dimension_from_graph(graph)
        assert dimension == pytest.approx(host.dimension_, rel=1e-9)
        assert scale == pytest.approx(host.scale_, rel=1e-9)


def test_resamples_read_off_one_graph_equal_refitting(rng, monkeypatch):
    X = STORED["moebius"][:400]
    subsets = [np.sort(rng.choice(400, 360, replace=False)) for _ in range(2)]
    searches = []
    original = _graph.distinct_kneighbors
    monkeypatch.setattr(_graph, "distinct_kneighbors", lambda *a, **k: searches.append(1) or original(*a, **k))
    for estimator in (ABIDEDimension(device="cpu"), ABIDEDimension(method="gride", max_neighbors=60, device="cpu")):
        searches.clear()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SaturatedNeighborhoodWarning)
            reused = dimensions_with_resamples(estimator, X, subsets, return_n_points=True)
            refitted = dimensions_with_resamples(make_pipeline(estimator), X, subsets, return_n_points=True)
        assert len(searches) == 1 + 1 + len(subsets)  # one for the seam; the refits search each set again
        assert reused[0] == pytest.approx(refitted[0], rel=1e-12)
        np.testing.assert_allclose(reused[1], refitted[1], rtol=1e-12)
        assert reused[3] == pytest.approx(refitted[3], rel=1e-12)


@pytest.mark.slow
def test_a_depth_profile_searches_each_layer_once_and_reports_the_scale(monkeypatch):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(20, 32), torch.nn.Tanh(), torch.nn.Linear(32, 16))
    X = STORED["moebius"][:400].astype(np.float32)
    searches = []
    original = _graph.distinct_kneighbors
    monkeypatch.setattr(_graph, "distinct_kneighbors", lambda *a, **k: searches.append(1) or original(*a, **k))
    profile = DepthProfile(
        model, id_estimator=ABIDEDimension(), pca_estimator=None, n_resamples=2, random_state=0, device="cpu"
    ).fit(X)
    assert len(searches) == 3  # input, 0 and 2 (the Tanh is no checkpoint)
    table = profile.profile_.set_index("layer")
    assert (table["id_std"] > 0).all()
    searches.clear()
    for layer in table.index:
        activations = X if layer == "input" else model[: int(layer) + 1](torch.as_tensor(X)).detach().numpy()
        alone = ABIDEDimension(device="cpu").fit(activations)
        assert table.loc[layer, "id"] == pytest.approx(alone.dimension_, rel=1e-9)
        assert table.loc[layer, "scale"] == pytest.approx(alone.scale_, rel=1e-9)


def test_id_scaling_gives_each_subset_size_the_scale_abide_picks():
    X = STORED["moebius"][:400]
    curve = id_scaling(ABIDEDimension(device="cpu"), X, n_min=100, random_state=4)
    shuffled = X[check_random_state(4).permutation(len(X))]
    assert curve["n_subsets"].tolist() == [1, 2, 4]
    for level, row in curve.iterrows():
        edges = group_edges(len(shuffled), level)
        fits = [ABIDEDimension(device="cpu").fit(shuffled[a:b]) for a, b in zip(edges[:-1], edges[1:])]
        assert row["id"] == pytest.approx(np.mean([fit.dimension_ for fit in fits]), rel=1e-12)
        assert row["scale"] == pytest.approx(np.mean([fit.scale_ for fit in fits]), rel=1e-12)
    assert curve["scale"].iloc[-1] > curve["scale"].iloc[0]  # fewer points: neighbourhoods reach farther
