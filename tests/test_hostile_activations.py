"""Hostile inputs, kind 4: every output row is written, or the call raises with what actually happened."""

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import IterableDataset

from sklearn_id import DepthProfile, LayerActivationTransformer

from _float32 import assert_float32_close


class BatchMean(nn.Module):
    """A layer whose output has one row per batch, not per sample."""

    def forward(self, x):
        return x.mean(0, keepdim=True)


class Overstated(IterableDataset):
    """A stream whose len() promises more samples than it yields."""

    def __init__(self, X, extra):
        self.X, self.extra = torch.from_numpy(X), extra

    def __len__(self):
        return len(self.X) + self.extra

    def __iter__(self):
        return iter(self.X)


class Understated(Overstated):
    def __len__(self):
        return len(self.X) - self.extra


@pytest.fixture
def X(rng):
    return rng.normal(size=(200, 4)).astype(np.float32)


def test_a_layer_that_reduces_over_the_batch_is_refused(X):
    model = nn.Sequential(nn.Linear(4, 8), BatchMean(), nn.Linear(8, 2))
    for call in (
        lambda: LayerActivationTransformer(model, "1", device="cpu", batch_size=64).fit(X).transform(X),
        lambda: DepthProfile(model, layers=["0", "1"], device="cpu").fit(X),
    ):
        with pytest.raises(ValueError, match=r"Layer '1' returned 1 rows for a batch of \d+ samples"):
            call()


@pytest.mark.parametrize("dataset, yielded, reported", [(Overstated, 200, 230), (Understated, 200, 170)])
def test_a_dataset_whose_length_is_wrong_is_refused(X, dataset, yielded, reported):
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh())
    transformer = LayerActivationTransformer(model, "1", device="cpu", batch_size=64).fit(X)
    if dataset is Overstated:
        match = f"X yielded {yielded} samples but its len\\(\\) reports {reported}"
    else:
        match = f"X yielded more than the {reported} samples its len\\(\\) reports"
    with pytest.raises(ValueError, match=match):
        transformer.transform(dataset(X, 30))


def test_the_first_batch_error_says_what_actually_happened(X):
    class Refuses(nn.Module):
        def forward(self, x):
            raise RuntimeError("my module refuses on purpose")

    with pytest.raises(
        ValueError, match="failed on its first batch, of shape .*: RuntimeError: my module refuses on purpose"
    ):
        LayerActivationTransformer(nn.Sequential(Refuses()), "0", device="cpu").fit(X)
    embedding = nn.Sequential(nn.Embedding(10, 3))
    with pytest.raises(ValueError, match=r"of shape \(1, 4\) and dtype float32: RuntimeError: .*Long"):
        LayerActivationTransformer(embedding, "0", device="cpu").fit(X)
    # Integer token ids are passed unchanged, so the same model works on them.
    ids = np.random.default_rng(0).integers(0, 10, size=(50, 4))
    assert LayerActivationTransformer(embedding, "0", device="cpu").fit_transform(ids).shape == (50, 12)


def test_every_row_is_the_models_output(X):
    # No uninitialised memory: the rows equal a plain forward pass, batch boundaries included.
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh())
    out = LayerActivationTransformer(model, "1", device="cpu", batch_size=7).fit_transform(X)
    with torch.no_grad():
        assert_float32_close(out, model(torch.from_numpy(X)).numpy(), model)


def test_the_first_pass_of_a_profile_and_of_the_training_callback_is_explained(X):
    from skorch import NeuralNetClassifier

    from sklearn_id.callbacks import DepthProfileCallback

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    wrong = np.zeros((40, 5), dtype=np.float32)
    match = r"failed on its first batch, of shape \(1, 5\) .*Its first layer '0' expects 4 input features"
    with pytest.raises(ValueError, match=match):
        DepthProfile(model, device="cpu").fit(wrong)
    net = NeuralNetClassifier(
        model, max_epochs=1, train_split=None, verbose=0, callbacks=[DepthProfileCallback(wrong)], device="cpu"
    )
    with pytest.raises(ValueError, match=match):
        net.fit(X, (X[:, 0] > 0).astype(np.int64))


def test_a_dataframe_reads_like_its_values_and_a_non_numeric_one_is_explained(X):
    import pandas as pd

    model = nn.Sequential(nn.Linear(4, 3))
    expected = LayerActivationTransformer(model, "0", device="cpu").fit_transform(X)
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    np.testing.assert_array_equal(LayerActivationTransformer(model, "0", device="cpu").fit_transform(frame), expected)
    with pytest.raises(TypeError, match=r"X \(DataFrame\) does not convert to a numeric array"):
        LayerActivationTransformer(model, "0", device="cpu").fit_transform(pd.DataFrame({"a": ["x"] * 10}))
