"""DepthProfile: per-layer IDs equal to TwoNNDimension, same samples, memory budget, probe."""

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn
from torchvision import models

from sklearn_id import DepthProfile, GRIDEDimension, LayerActivationTransformer, TwoNNDimension, list_layers
from sklearn_id._layers import SplitLayer, auto_checkpoints, plan_passes
from sklearn_id._neighbors import kneighbors, subsample_neighbor_distances
from sklearn_id._profile import paper_pca_estimator

from _float32 import assert_same_twonn


@pytest.fixture(scope="module")
def mlp():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(6, 64), nn.Tanh(), nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, 16), nn.Tanh(), nn.Linear(16, 3)
    )


@pytest.fixture(scope="module")
def inputs():
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(800, 4))
    return np.tanh(latent @ rng.normal(size=(4, 6))).astype(np.float32)


@pytest.fixture(scope="module")
def fitted(mlp, inputs):
    return DepthProfile(mlp, random_state=0, device="cpu").fit(inputs)


def test_each_id_equals_twonn_on_the_layer(mlp, inputs, fitted):
    profile = fitted.profile_
    assert profile["layer"].tolist() == ["input", "0", "2", "4", "6"]
    for layer, dimension in zip(profile["layer"], profile["id"]):
        activations = LayerActivationTransformer(mlp, layer, device="cpu").fit_transform(inputs)
        assert_same_twonn(dimension, activations, mlp)


def test_gride_profiles_each_layer_at_a_larger_scale(mlp, inputs):
    estimator = GRIDEDimension(n1=8, n2=16)
    profile = DepthProfile(
        mlp, id_estimator=estimator, pca_estimator=None, n_resamples=2, random_state=0, device="cpu"
    ).fit(inputs)
    for layer, dimension, scale in profile.profile_[["layer", "id", "scale"]].itertuples(index=False):
        activations = LayerActivationTransformer(mlp, layer, device="cpu").fit_transform(inputs)
        assert dimension == pytest.approx(GRIDEDimension(n1=8, n2=16).fit(activations).dimension_, rel=1e-9)
        # The scale of the estimate: the mean distance to each distinct point's 16th neighbour.
        distinct = np.unique(activations.astype(np.float64), axis=0)
        assert scale == pytest.approx(np.sort(cdist(distinct, distinct), axis=1)[:, 16].mean(), rel=1e-9)
    assert (profile.profile_["id_std"] > 0).all()


def test_columns_depth_and_last_hidden(fitted):
    profile = fitted.profile_
    assert list(profile.columns) == [
        "layer",
        "relative_depth",
        "n_features",
        "id",
        "id_std",
        "scale",
        "pca_id",
        "undersampled",
    ]
    assert not profile["undersampled"].any()
    depth = profile["relative_depth"].to_numpy()
    assert depth[0] == 0 and depth[-1] == 1 and np.all(np.diff(depth) > 0)
    assert profile["n_features"].tolist() == [6, 64, 48, 16, 3]
    assert (profile["id_std"] > 0).all() and (profile["id_std"] < 1).all()
    assert fitted.last_hidden_id_ == profile["id"].iloc[-2]


def test_pca_id_follows_the_paper_recipe(mlp, inputs, fitted):
    activations = LayerActivationTransformer(mlp, "2", device="cpu").fit_transform(inputs)
    expected = paper_pca_estimator().fit(activations)[-1].dimension_
    assert fitted.profile_.set_index("layer").loc["2", "pca_id"] == expected


@pytest.mark.parametrize("metric", ["euclidean", "precomputed"])
def test_resamples_reuse_neighbours_exactly(inputs, rng, metric):
    # Reading a subsample's neighbours off the full lists equals a search on it,
    # also for the points that need the exact fallback (fraction 0.1).
    points = cdist(inputs, inputs) if metric == "precomputed" else inputs
    distances, indices = kneighbors(inputs, 8)
    for fraction in (0.9, 0.5, 0.1):
        subset = np.sort(rng.choice(len(inputs), int(fraction * len(inputs)), replace=False))
        found = subsample_neighbor_distances(distances, indices, subset, [1, 2], X=points, metric=metric)
        np.testing.assert_allclose(found[:, 1] / found[:, 0], TwoNNDimension().fit(inputs[subset]).mu_, rtol=1e-12)
        at_ranks = subsample_neighbor_distances(distances, indices, subset, [3, 6], X=points, metric=metric)
        expected = np.sort(cdist(inputs[subset], inputs[subset]), axis=1)[:, [3, 6]]
        np.testing.assert_allclose(at_ranks, expected, rtol=1e-12)


def test_spread_equals_refitting_on_the_same_subsamples(mlp, inputs):
    with_reuse = DepthProfile(mlp, random_state=3, pca_estimator=None, device="cpu").fit(inputs)
    # A Pipeline is refitted on each subsample, with no reuse: same numbers.
    refitted = DepthProfile(
        mlp, random_state=3, pca_estimator=None, device="cpu", id_estimator=make_pipeline(TwoNNDimension())
    ).fit(inputs)
    np.testing.assert_allclose(with_reuse.profile_["id_std"], refitted.profile_["id_std"], rtol=1e-9)
    np.testing.assert_allclose(with_reuse.profile_["id"], refitted.profile_["id"], rtol=1e-12)


def test_same_seed_same_profile_and_no_resamples(mlp, inputs, fitted):
    again = DepthProfile(mlp, random_state=0, device="cpu").fit(inputs)
    assert again.profile_.equals(fitted.profile_)
    other = DepthProfile(mlp, random_state=1, device="cpu").fit(inputs)
    assert not np.allclose(other.profile_["id_std"], fitted.profile_["id_std"])
    quick = DepthProfile(mlp, n_resamples=0, pca_estimator=None, device="cpu").fit(inputs)
    assert quick.profile_["id_std"].isna().all() and quick.profile_["pca_id"].isna().all()
    np.testing.assert_allclose(quick.profile_["id"], fitted.profile_["id"], rtol=1e-12)


def test_small_memory_budget_changes_nothing(mlp, inputs, fitted):
    # 20 features of 800 samples per pass: the 64- and 48-wide layers are split.
    budget = 20 * 4 * len(inputs)
    tight = DepthProfile(mlp, random_state=0, device="cpu", memory_budget=budget).fit(inputs)
    np.testing.assert_allclose(tight.profile_["id"], fitted.profile_["id"], rtol=1e-6)
    np.testing.assert_allclose(tight.profile_["id_std"], fitted.profile_["id_std"], rtol=1e-6)
    np.testing.assert_array_equal(tight.profile_["pca_id"], fitted.profile_["pca_id"])


def test_split_layer_accumulates_exact_distances_and_spectrum(inputs):
    activations = np.tanh(inputs @ np.random.default_rng(1).normal(size=(6, 40))).astype(np.float32) + 100
    split = SplitLayer(len(activations), 40)
    for piece in (slice(0, 15), slice(15, 16), slice(16, 40)):
        assert not split.complete
        split.add(activations[:, piece])
    assert split.complete
    np.testing.assert_allclose(split.distances.distances(), cdist(activations, activations), rtol=1e-7, atol=1e-9)
    expected = paper_pca_estimator().fit(activations)[-1].explained_variance_ratio_
    np.testing.assert_allclose(split.spectrum.explained_variance_ratio()[: expected.size], expected, atol=1e-7)


def test_plan_passes_cuts_features_end_to_end():
    passes = plan_passes({"a": 5, "b": 12, "c": 3}, n_samples=10, memory_budget=8 * 40)
    assert passes == [
        {"a": slice(0, 5), "b": slice(0, 3)},
        {"b": slice(3, 11)},
        {"b": slice(11, 12), "c": slice(0, 3)},
    ]
    with pytest.raises(ValueError, match="the minimum is 40 bytes"):
        plan_passes({"a": 5}, n_samples=10, memory_budget=39)


def test_auto_checkpoints_follow_the_paper():
    resnet = models.resnet18(weights=None)
    table = list_layers(resnet, torch.zeros(1, 3, 64, 64))
    assert auto_checkpoints(resnet, table) == [
        "input",
        "maxpool",
        "layer1",
        "layer2",
        "layer3",
        "layer4",
        "avgpool",
        "fc",
    ]
    vgg = models.vgg16(weights=None)
    table = list_layers(vgg, torch.zeros(1, 3, 32, 32))
    assert auto_checkpoints(vgg, table) == [
        "input",
        "features.4",
        "features.9",
        "features.16",
        "features.23",
        "features.30",
        "avgpool",
        "classifier.0",
        "classifier.3",
        "classifier.6",
    ]
    alexnet = models.alexnet(weights=None)
    table = list_layers(alexnet, torch.zeros(1, 3, 64, 64))
    assert auto_checkpoints(alexnet, table) == [
        "input",
        "features.2",
        "features.5",
        "features.12",
        "avgpool",
        "classifier.1",
        "classifier.4",
        "classifier.6",
    ]


def test_probe_scores_beside_the_ids(mlp, inputs):
    y = (inputs[:, 0] > 0).astype(int)
    profile = DepthProfile(
        mlp, n_resamples=0, pca_estimator=None, probe=LogisticRegression(max_iter=500), device="cpu"
    ).fit(inputs, y)
    assert "probe_score" in profile.profile_
    assert profile.profile_.set_index("layer").loc["input", "probe_score"] > 0.95


def test_parallel_layers_give_the_same_profile(mlp, inputs, fitted):
    parallel = DepthProfile(mlp, random_state=0, device="cpu", n_jobs=2).fit(inputs)
    assert parallel.profile_.equals(fitted.profile_)


def test_plot_draws_id_and_pca(fitted):
    import matplotlib

    matplotlib.use("Agg")
    ax = fitted.plot()
    assert len(ax.figure.axes) == 2  # PCA-ID in its own panel, below
    pca_ax = ax.figure.axes[1]
    assert pca_ax.get_xlabel() == "layer (spaced by relative depth)"
    assert [label.get_text() for label in pca_ax.get_xticklabels()] == fitted.profile_["layer"].tolist()
    np.testing.assert_allclose(pca_ax.get_xticks(), fitted.profile_["relative_depth"])
    np.testing.assert_allclose(np.asarray(ax.lines[0].get_ydata(), dtype=float), fitted.profile_["id"])
    np.testing.assert_allclose(np.asarray(pca_ax.lines[0].get_ydata(), dtype=float), fitted.profile_["pca_id"])
    assert ax.get_ylim()[0] == 0 and pca_ax.get_ylim()[0] == 0


def test_the_figure_draws_undersampled_layers_hollow(fitted):
    import matplotlib

    matplotlib.use("Agg")
    from sklearn_id.plotting import plot_depth_profile

    table = fitted.profile_.assign(undersampled=[False, True, False, True, False])
    ax = plot_depth_profile({"a": table, "b": table})
    hollow = [line for line in ax.lines if line.get_markerfacecolor() == "white"]
    assert len(hollow) == 2  # one overlay per network
    np.testing.assert_allclose(np.asarray(hollow[0].get_xdata(), dtype=float), table["relative_depth"][[1, 3]])
    np.testing.assert_allclose(np.asarray(hollow[0].get_ydata(), dtype=float), table["id"][[1, 3]])
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert labels.count("hollow: undersampled (read as a bound)") == 1
    # A profile with nothing undersampled draws no hollow marker and no such legend entry.
    clean = plot_depth_profile(fitted.profile_.assign(undersampled=False))
    assert not [line for line in clean.lines if line.get_markerfacecolor() == "white"]


@pytest.mark.parametrize(
    "params, X_size, error, match",
    [
        ({"layers": ["nope"]}, 800, ValueError, "Unknown layer 'nope'"),
        ({}, 3, ValueError, "at least 5 are needed"),
        ({"id_estimator": StandardScaler()}, 800, TypeError, "sets no dimension_"),
        ({"memory_budget": 100}, 800, ValueError, "the minimum is 3200 bytes"),
        ({"n_resamples": 1}, 800, ValueError, "n_resamples"),
    ],
    ids=["unknown-layer", "too-few", "no-dimension", "budget", "one-resample"],
)
def test_bad_input_is_explained(mlp, inputs, params, X_size, error, match):
    with pytest.raises(error, match=match):
        DepthProfile(mlp, device="cpu", pca_estimator=None, **params).fit(inputs[:X_size])


def test_layers_at_one_depth_share_one_labelled_tick_and_the_error_bars_are_named(fitted):
    import matplotlib

    matplotlib.use("Agg")
    from sklearn_id.plotting import plot_depth_profile

    table = fitted.profile_.assign(
        relative_depth=[0.0, 0.25, 0.5, 1.0, 1.0], layer=["emb", "h.0", "h.1", "h.2", "ln_f"]
    )
    ax = plot_depth_profile(table, pca=False)
    assert [label.get_text() for label in ax.get_xticklabels()] == ["emb", "h.0", "h.1", "h.2/ln_f"]
    np.testing.assert_allclose(ax.get_xticks(), [0.0, 0.25, 0.5, 1.0])
    texts = [text.get_text() for text in fitted.plot().texts]
    assert texts == ["error bars: the ID's std over 5 random 90% subsamples"]


def test_the_training_plot_ticks_whole_epochs():
    import matplotlib
    import pandas as pd

    matplotlib.use("Agg")
    from sklearn_id.plotting import plot_id_during_training

    table = pd.DataFrame(
        {
            "epoch": [0, 0, 1, 1, 2, 2],
            "layer": ["a", "b"] * 3,
            "relative_depth": [0.0, 1.0] * 3,
            "id": [5.0, 3.0, 6.0, 2.5, 6.5, 2.0],
        }
    )
    ax = plot_id_during_training(table)
    ax.figure.canvas.draw()
    ticks = [tick for tick in ax.get_xticks() if ax.get_xlim()[0] <= tick <= ax.get_xlim()[1]]
    assert ticks and all(float(tick).is_integer() for tick in ticks)
    spread = plot_id_during_training(table.assign(id_std=0.1))
    assert [text.get_text() for text in spread.texts] == [
        "error bars: the ID's std over the profile's random subsamples"
    ]
