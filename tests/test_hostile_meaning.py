"""Hostile inputs, kind 6: a number the sample cannot support comes with a warning naming the numbers, and a flag."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import make_swiss_roll
from torchvision.models import resnet18

from sklearn_id import DepthProfile, GRIDEDimension, TwoNNDimension, UndersampledWarning
from sklearn_id._base import undersampled
from sklearn_id.datasets import load_digit_images
from sklearn_id.models import make_digits_classifier


def _undersampled_warnings(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    return result, [str(w.message) for w in caught if issubclass(w.category, UndersampledWarning)]


def test_the_rule_is_two_to_the_dimension_points():
    assert not undersampled(10.0, 1024) and undersampled(10.0, 1023)
    assert not undersampled(float("nan"), 5) and undersampled(5000.0, 10**6)


@pytest.mark.parametrize("estimator", [TwoNNDimension(), GRIDEDimension()], ids=["twonn", "gride"])
def test_forty_points_in_a_thousand_dimensions_warn_once_with_the_numbers(rng, estimator):
    fitted, messages = _undersampled_warnings(lambda: estimator.fit(rng.normal(size=(40, 1000))))
    assert len(messages) == 1
    assert f"estimated {fitted.dimension_:.3g} from 40 points" in messages[0]
    assert "takes at least 2**d points" in messages[0]


def test_the_readme_resnet_on_random_images_flags_its_layers():
    torch.manual_seed(0)
    images = torch.randn(500, 3, 64, 64, generator=torch.Generator().manual_seed(0)).numpy()
    profile, messages = _undersampled_warnings(
        lambda: DepthProfile(resnet18(weights=None), layers=["input", "layer4", "fc"], n_resamples=0, device="cpu").fit(
            images
        )
    )
    table = profile.profile_.set_index("layer")
    assert table.loc["input", "id"] > 100 and bool(table.loc["input", "undersampled"])
    flagged = table.index[table["undersampled"]].tolist()
    assert len(messages) == len(flagged) and flagged
    assert messages[0].startswith("Layer 'input' is undersampled: its ID")
    assert "more than its 500" in messages[0] and "component" in messages[0]  # PCA-ID near 499 too


def test_well_sampled_data_do_not_warn():
    roll, _ = make_swiss_roll(n_samples=2500, random_state=0)
    _, messages = _undersampled_warnings(lambda: TwoNNDimension().fit(roll))
    assert messages == []
    images, labels = load_digit_images()
    _, messages = _undersampled_warnings(lambda: TwoNNDimension().fit(images.reshape(len(images), -1)))
    assert messages == []
    torch.manual_seed(0)
    net = make_digits_classifier(max_epochs=3).fit(images, labels)
    for model in (net, make_digits_classifier().initialize()):
        profile, messages = _undersampled_warnings(
            lambda model=model: DepthProfile(model, random_state=0, device="cpu").fit(images)
        )
        assert messages == [] and not profile.profile_["undersampled"].any()


def test_the_warning_counts_the_points_the_estimate_used():
    # 400 rows of which 40 are distinct: the estimate rests on 40 points, and the warning says so.
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(10, 10), torch.nn.Tanh())
    X = np.repeat(np.random.default_rng(0).normal(size=(40, 10)).astype(np.float32), 10, axis=0)
    profile, messages = _undersampled_warnings(
        lambda: DepthProfile(model, device="cpu", n_resamples=0, random_state=0).fit(X)
    )
    assert messages and all("more than its 40." in message for message in messages)
    assert profile.profile_["undersampled"].all()
