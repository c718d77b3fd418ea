"""DepthProfile(per_sample=True): each sample's row is the estimator fitted on that sample's token cloud."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from torch import nn

from sklearn_id import DepthProfile, GRIDEDimension, LayerActivationTransformer, PHDimension, TwoNNDimension


class _TokenModel(nn.Module):
    """An embedding, a position embedding and a mixing layer: every token a distinct point."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(60, 12)
        self.position = nn.Embedding(64, 12)
        self.mix = nn.Linear(12, 12)

    def forward(self, input_ids, attention_mask=None):
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        return torch.tanh(self.mix(self.embed(input_ids) + self.position(positions)))


@pytest.fixture(scope="module")
def model():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return _TokenModel().double()  # float64: a token's activations do not depend on its batch


@pytest.fixture(scope="module")
def tokens():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 60, size=(9, 64))
    mask = np.ones_like(ids)
    for sample, length in [(1, 50), (3, 1), (5, 20), (7, 3)]:  # padded texts, one of a single token
        mask[sample, length:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def _clouds(model, tokens, layer):
    """Each sample's real tokens at ``layer``, read by hand."""
    rows = LayerActivationTransformer(model, layer, pooling="tokens", device="cpu").fit_transform(tokens)
    lengths = tokens["attention_mask"].sum(axis=1)
    return np.split(rows, np.cumsum(lengths)[:-1])


@pytest.mark.parametrize(
    "estimator", [TwoNNDimension(), GRIDEDimension(n1=2, n2=4), PHDimension(n_min=6, random_state=0)]
)
def test_each_row_is_the_estimator_fitted_on_that_samples_tokens(model, tokens, estimator):
    with pytest.warns(UserWarning, match="clouds get NaN"):
        profile = DepthProfile(
            model, layers=["embed", "mix"], pooling="tokens", per_sample=True, id_estimator=estimator, device="cpu"
        ).fit(tokens)
    table = profile.sample_profiles_
    assert list(table.columns) == ["sample", "layer", "relative_depth", "n_points", "id", "scale", "undersampled"]
    for layer in ["embed", "mix"]:
        rows = table[table["layer"] == layer]
        assert rows["sample"].tolist() == list(range(9))
        for sample, cloud in enumerate(_clouds(model, tokens, layer)):
            assert rows["n_points"].iloc[sample] == np.unique(cloud, axis=0).shape[0]
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    expected = clone(estimator).fit(cloud).dimension_
            except ValueError:  # too few tokens for the estimator: NaN, counted in one warning
                assert np.isnan(rows["id"].iloc[sample])
                continue
            assert rows["id"].iloc[sample] == pytest.approx(expected, rel=1e-6)
    mean = table.groupby("layer", sort=False)["id"].mean()
    np.testing.assert_allclose(profile.profile_["id"], mean[["embed", "mix"]], rtol=1e-12)


def test_special_tokens_are_left_out_when_asked(model, tokens):
    settings = dict(layers=["mix"], pooling="tokens", per_sample=True, device="cpu")
    with pytest.warns(UserWarning):
        table = DepthProfile(model, exclude_special_tokens=True, **settings).fit(tokens).sample_profiles_
    cloud = _clouds(model, tokens, "mix")[0][1:-1]
    assert table["n_points"][0] == 62
    assert table["id"][0] == pytest.approx(TwoNNDimension().fit(cloud).dimension_, rel=1e-6)


def test_per_sample_needs_token_pooling_and_stands_alone(model, tokens):
    with pytest.raises(ValueError, match="pass pooling='tokens'"):
        DepthProfile(model, layers=["mix"], per_sample=True).fit(tokens)
    with pytest.raises(ValueError, match="cannot be combined with per_class, compare or a probe"):
        DepthProfile(model, layers=["mix"], pooling="tokens", per_sample=True, compare=["cka"]).fit(tokens)
