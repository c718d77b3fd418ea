"""DepthProfile's layer comparisons and per-class profiles equal the functions and the profiles they stand for."""

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from sklearn_id import (
    DepthProfile,
    InformationImbalance,
    LayerActivationTransformer,
    LinearCKA,
    information_imbalance,
    label_overlap,
    linear_cka,
    neighborhood_overlap,
)

LAYERS = ["input", "1", "3", "4"]


@pytest.fixture(scope="module")
def model():
    # float64 weights: a sample's activations do not depend on the batch it is read in, so a class read
    # within all samples and a class read alone give the same numbers to float64 rounding.
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(6, 40), nn.Tanh(), nn.Linear(40, 20), nn.Tanh(), nn.Linear(20, 3)).double()


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((360, 3))
    X = np.c_[z, np.sin(z)] @ rng.standard_normal((6, 6))
    y = np.where(z[:, 0] > 0.3, "up", np.where(z[:, 1] > 0, "left", "right"))
    return X, y


def _activations(model, X, layer):
    return LayerActivationTransformer(model, layer, device="cpu").fit_transform(X).astype(np.float64)


def test_comparisons_equal_the_functions_on_each_layers_activations(model, data):
    X, y = data
    profile = DepthProfile(
        model, layers=LAYERS, compare=["imbalance", "overlap", LinearCKA(debiased=True)], device="cpu", random_state=0
    ).fit(X, y)
    acts = {layer: _activations(model, X, layer) for layer in LAYERS}
    assert set(profile.comparisons_) == {"imbalance", "overlap", "cka"}
    for matrix in profile.comparisons_.values():
        assert list(matrix.index) == LAYERS and list(matrix.columns) == LAYERS
    for a in LAYERS:
        for b in LAYERS:
            imbalance = profile.comparisons_["imbalance"].loc[a, b]
            assert imbalance == pytest.approx(information_imbalance(acts[a], acts[b]), rel=1e-6)
            overlap = neighborhood_overlap(acts[a], acts[b])
            assert profile.comparisons_["overlap"].loc[a, b] == pytest.approx(overlap, rel=1e-6)
            cka = linear_cka(acts[a], acts[b], debiased=True)
            assert profile.comparisons_["cka"].loc[a, b] == pytest.approx(cka, rel=1e-6, abs=1e-12)
    expected = [label_overlap(acts[layer], y) for layer in LAYERS]
    np.testing.assert_allclose(profile.profile_["label_overlap"], expected, rtol=1e-9)
    # The measures are not constant: the input predicts the last layer better than the reverse.
    assert profile.comparisons_["imbalance"].loc["input", "4"] < profile.comparisons_["imbalance"].loc["4", "input"]


def test_a_measure_keeps_its_own_k(model, data):
    X, _ = data
    profile = DepthProfile(model, layers=LAYERS[:2], compare=[InformationImbalance(k=7)], n_resamples=0).fit(X)
    acts = [_activations(model, X, layer) for layer in LAYERS[:2]]
    expected = information_imbalance(acts[0], acts[1], k=7)
    assert profile.comparisons_["imbalance"].iloc[0, 1] == pytest.approx(expected, rel=1e-6)
    assert "label_overlap" not in profile.profile_  # no labels, no column


def test_per_class_rows_equal_profiles_of_each_class_alone_and_the_profile_is_their_mean(model, data):
    X, y = data
    profile = DepthProfile(model, layers=LAYERS, per_class=True, random_state=3, device="cpu").fit(X, y)
    classes = profile.class_profiles_
    assert list(classes.columns[:2]) == ["class", "layer"]
    assert sorted(classes["class"].unique()) == ["left", "right", "up"]
    for label in ["left", "right", "up"]:
        alone = DepthProfile(model, layers=LAYERS, random_state=3, device="cpu").fit(X[y == label]).profile_
        ours = classes[classes["class"] == label].reset_index(drop=True)
        for column in ["id", "id_std", "pca_id"]:
            np.testing.assert_allclose(ours[column], alone[column], rtol=1e-9)
    by_layer = classes.groupby("layer", sort=False)
    np.testing.assert_allclose(profile.profile_["id"], by_layer["id"].mean()[LAYERS], rtol=1e-12)
    np.testing.assert_allclose(profile.profile_["id_std"], by_layer["id"].std()[LAYERS], rtol=1e-12)
    np.testing.assert_allclose(profile.profile_["pca_id"], by_layer["pca_id"].mean()[LAYERS], rtol=1e-12)
    assert (profile.profile_["n_classes"] == 3).all()


def test_max_classes_keeps_the_most_populated_and_samples_per_class_draws_the_same_rows_every_time(model, data):
    X, y = data
    counts = pd.Series(y).value_counts()
    settings = dict(layers=LAYERS[:2], per_class=True, max_classes=2, samples_per_class=60, random_state=1)
    first = DepthProfile(model, **settings).fit(X, y).class_profiles_
    second = DepthProfile(model, **settings).fit(X, y).class_profiles_
    assert set(first["class"]) == set(counts.index[:2])
    pd.testing.assert_frame_equal(first, second)


def test_a_class_too_small_is_left_out_with_a_warning_that_names_it(model, data):
    X, y = data
    y = y.copy()
    y[:3] = "rare"
    with pytest.warns(UserWarning, match=r"'rare' \(3\)"):
        profile = DepthProfile(model, layers=LAYERS[:2], per_class=True, random_state=0).fit(X, y)
    assert "rare" not in set(profile.class_profiles_["class"])


@pytest.mark.parametrize(
    "settings, labels, message",
    [
        (dict(compare=["imbalance", "entropy"]), False, r"Unknown measure 'entropy'.*\['cka', 'imbalance'"),
        (dict(compare=[object()]), False, "is not a measure"),
        (dict(compare=["imbalance", InformationImbalance(k=3)]), False, "names a measure twice"),
        (dict(compare=["label_overlap"]), False, "needs the labels"),
        (dict(per_class=True), False, "per_class=True needs the labels"),
        (dict(compare=["imbalance"], memory_budget=20_000), False, "holds every profiled layer's activations"),
        (dict(compare=[InformationImbalance(k=400)]), False, "needs more than k=400 samples"),
    ],
)
def test_settings_that_cannot_work_are_explained(model, data, settings, labels, message):
    X, y = data
    with pytest.raises(ValueError, match=message):
        DepthProfile(model, layers=LAYERS, n_resamples=0, **settings).fit(X, y if labels else None)


def test_labels_of_the_wrong_length_are_explained(model, data):
    X, y = data
    with pytest.raises(ValueError, match="359 labels for 360 samples"):
        DepthProfile(model, layers=LAYERS, compare=[], n_resamples=0).fit(X, y[:-1])
    with pytest.raises(ValueError, match="one label per sample: 360 labels"):
        DepthProfile(model, layers=LAYERS, per_class=True).fit(X, y[:-1])
    with pytest.raises(ValueError, match="1 missing labels"):
        DepthProfile(model, layers=LAYERS, per_class=True).fit(X, np.r_[[None], y[1:]].astype(object))


def test_the_figures_draw_the_matrix_the_label_overlap_and_the_spread_across_classes(model, data):
    import matplotlib

    matplotlib.use("Agg")
    from sklearn_id.plotting import plot_comparison

    X, y = data
    profile = DepthProfile(model, layers=LAYERS, compare=["imbalance"], random_state=0).fit(X, y)
    matrix = profile.comparisons_["imbalance"]
    ax = plot_comparison(matrix, title="information imbalance")
    np.testing.assert_allclose(ax.images[0].get_array(), matrix.to_numpy())
    assert [label.get_text() for label in ax.get_yticklabels()] == LAYERS
    assert len(ax.texts) == len(LAYERS) ** 2  # every cell written in
    ax = profile.plot()
    overlap_axes = [other for other in ax.figure.axes if other.get_ylabel() == "label overlap (dashed)"]
    (line,) = overlap_axes[0].get_lines()
    np.testing.assert_allclose(line.get_ydata(), profile.profile_["label_overlap"])
    assert "label overlap" in [text.get_text() for text in ax.get_legend().get_texts()]
    per_class = DepthProfile(model, layers=LAYERS, per_class=True, random_state=0).fit(X, y)
    notes = [text.get_text() for text in per_class.plot().texts]
    assert any("std across classes" in note for note in notes)
    with pytest.raises(ValueError, match="square"):
        plot_comparison(matrix.iloc[:, :2])


def test_the_default_label_overlap_is_left_out_with_a_warning_when_the_samples_are_too_few(model, data):
    X, y = data
    with pytest.warns(UserWarning, match="No label_overlap column: 25 samples are too few for its k=30"):
        profile = DepthProfile(model, layers=LAYERS[:2], compare=[], n_resamples=0).fit(X[:25], y[:25])
    assert "label_overlap" not in profile.profile_
    with pytest.raises(ValueError, match="needs more than k=30 samples"):  # asked for: an error
        DepthProfile(model, layers=LAYERS[:2], compare=["label_overlap"], n_resamples=0).fit(X[:25], y[:25])


def test_undersampling_is_warned_once_per_layer_naming_the_classes(data):
    from sklearn_id import UndersampledWarning

    _, y = data
    X = np.random.default_rng(1).standard_normal((y.size, 12))  # 12-D: its ID needs 2**12 points
    wide = nn.Sequential(nn.Linear(12, 12)).double()
    with pytest.warns(UndersampledWarning) as recorded:
        profile = DepthProfile(wide, layers=["0"], per_class=True, samples_per_class=40, random_state=0).fit(X, y)
    messages = [str(w.message) for w in recorded if issubclass(w.category, UndersampledWarning)]
    assert len(messages) == 1
    flagged = profile.class_profiles_["class"][profile.class_profiles_["undersampled"]].tolist()
    assert messages[0].startswith(f"Layer '0' is undersampled in {len(flagged)} of 3 classes (")
    assert all(repr(label) in messages[0] for label in flagged)
