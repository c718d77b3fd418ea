"""LayerActivationTransformer: equal to a forward hook, a good sklearn and torch citizen."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.utils.data import TensorDataset
from torchvision import models

from sklearn_id import (
    DepthProfile,
    LayerActivationTransformer,
    PCADimension,
    TwoNNDimension,
    list_layers,
    make_id_scorer,
)

from _float32 import assert_float32_close, assert_same_twonn


def hooked_reference(module, layer, X):
    """What a plain forward hook on ``layer`` returns, in one batch."""
    recorded = []
    handle = dict(module.named_modules())[layer].register_forward_hook(
        lambda _m, _i, output: recorded.append(output.detach().reshape(len(X), -1))
    )
    module.eval()
    with torch.no_grad():
        module(torch.as_tensor(X))
    handle.remove()
    return recorded[0].numpy()


@pytest.fixture(scope="module")
def images():
    return torch.randn(12, 3, 64, 64, generator=torch.Generator().manual_seed(0)).numpy()


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32), y.astype(np.int64)


@pytest.fixture(scope="module")
def digits_net(digits):
    skorch = pytest.importorskip("skorch")
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    net = skorch.NeuralNetClassifier(
        module, max_epochs=3, lr=0.1, criterion=nn.CrossEntropyLoss, train_split=None, verbose=0
    )
    return net.fit(*digits)


@pytest.mark.parametrize(
    "build, layer",
    [
        (lambda: models.resnet18(weights=None), "layer1"),
        (lambda: models.resnet18(weights=None), "avgpool"),
        (lambda: models.alexnet(weights=None), "features.5"),
        pytest.param(lambda: models.vgg11(weights=None), "features.10", marks=pytest.mark.slow),  # 130M parameters
    ],
    ids=["resnet18-layer1", "resnet18-avgpool", "alexnet-pool2", "vgg11-pool4"],
)
def test_torchvision_layer_equals_a_forward_hook(images, build, layer):
    torch.manual_seed(0)
    model = build()
    activations = LayerActivationTransformer(model, layer, batch_size=5, device="cpu").fit_transform(images)
    expected = hooked_reference(model, layer, images)
    assert activations.dtype == np.float32
    assert activations.shape == expected.shape
    assert_float32_close(activations, expected, model)


def test_sequential_and_skorch_net_equal_a_forward_hook(digits, digits_net):
    X, _ = digits
    for model, module in [(digits_net, digits_net.module_), (digits_net.module_, digits_net.module_)]:
        activations = LayerActivationTransformer(model, "1", batch_size=100).fit_transform(X)
        assert_float32_close(activations, hooked_reference(module, "1", X), module)


def test_input_layer_is_the_flattened_input(images):
    model = models.resnet18(weights=None)
    activations = LayerActivationTransformer(model, "input", device="cpu").fit_transform(images)
    np.testing.assert_array_equal(activations, images.reshape(len(images), -1))


def test_pipelines_fit_on_digits_and_images(digits, digits_net, images):
    # Each pipeline's estimate is the estimator's on what a forward hook sees.
    X, _ = digits
    hidden = hooked_reference(digits_net.module_, "1", X)
    for model in (digits_net, digits_net.module_):
        pipeline = make_pipeline(LayerActivationTransformer(model, "1"), TwoNNDimension()).fit(X)
        assert_same_twonn(pipeline[-1].dimension_, hidden, digits_net.module_)
    pipeline = make_pipeline(LayerActivationTransformer(digits_net, "1"), StandardScaler(), PCADimension()).fit(X)
    assert pipeline[-1].dimension_ == PCADimension().fit(StandardScaler().fit_transform(hidden)).dimension_
    torch.manual_seed(0)
    resnet = models.resnet18(weights=None)
    many = np.concatenate([images] * 3) + np.random.default_rng(0).normal(size=(36, 1, 1, 1)).astype(np.float32)
    pipeline = make_pipeline(LayerActivationTransformer(resnet, "layer1", device="cpu"), TwoNNDimension())
    assert_same_twonn(pipeline.fit(many)[-1].dimension_, hooked_reference(resnet, "layer1", many), resnet)


def test_datasets_of_inputs_or_pairs(digits):
    X, y = digits
    module = nn.Sequential(nn.Linear(64, 8), nn.Tanh())
    expected = LayerActivationTransformer(module, "1").fit_transform(X[:300])
    for dataset in (
        TensorDataset(torch.from_numpy(X[:300])),
        TensorDataset(torch.from_numpy(X[:300]), torch.from_numpy(y[:300])),
    ):
        transformer = LayerActivationTransformer(module, "1", batch_size=64).fit(dataset)
        np.testing.assert_array_equal(transformer.transform(dataset), expected)


def test_tensor_and_float64_input(digits):
    X, _ = digits
    module = nn.Sequential(nn.Linear(64, 8), nn.Tanh())
    expected = LayerActivationTransformer(module, "0").fit_transform(X)
    np.testing.assert_array_equal(LayerActivationTransformer(module, "0").fit_transform(torch.from_numpy(X)), expected)
    np.testing.assert_allclose(LayerActivationTransformer(module, "0").fit_transform(X.astype(np.float64)), expected)


def test_tuple_output_contributes_its_first_tensor():
    lstm_model = nn.Sequential(nn.LSTM(4, 6, batch_first=True))
    X = torch.randn(10, 5, 4)
    activations = LayerActivationTransformer(lstm_model, "0").fit_transform(X)
    with torch.no_grad():
        expected = lstm_model[0](X)[0].reshape(10, -1).numpy()
    assert_float32_close(activations, expected, lstm_model)


def test_mode_and_hooks_are_restored_even_when_forward_raises(digits):
    X, _ = digits
    module = nn.Sequential(nn.Linear(64, 8), nn.Dropout(0.5), nn.Linear(8, 2))
    module.train()
    module[1].eval()
    LayerActivationTransformer(module, "2").fit_transform(X)
    assert module.training and not module[1].training and module[2].training
    assert all(not m._forward_hooks for m in module.modules())
    with pytest.raises(ValueError, match=r"failed on its first batch, of shape \(1, 7\) .* mat1 and mat2 shapes"):
        LayerActivationTransformer(module, "2").fit(np.zeros((4, 7), dtype=np.float32))
    assert module.training and not module[1].training
    assert all(not m._forward_hooks for m in module.modules())


def test_early_stop_skips_later_layers(digits):
    X, _ = digits
    calls = []
    module = nn.Sequential(nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 2))
    module[2].register_forward_hook(lambda *args: calls.append(1))
    LayerActivationTransformer(module, "1").fit_transform(X)
    assert not calls


def test_feature_names_params_and_clone(digits, digits_net):
    X, _ = digits
    transformer = LayerActivationTransformer(FrozenEstimator(digits_net), "1").fit(X[:10])
    assert transformer.get_feature_names_out()[:2].tolist() == ["1_0", "1_1"]
    assert len(transformer.get_feature_names_out()) == 32
    cloned = clone(transformer).set_params(layer="0", batch_size=7)
    assert cloned.get_params()["layer"] == "0" and cloned.batch_size == 7
    # FrozenEstimator keeps the fitted net through clone.
    assert_float32_close(
        cloned.fit_transform(X[:50]), hooked_reference(digits_net.module_, "0", X[:50]), digits_net.module_
    )


def test_cuda_oom_halves_the_batch(digits):
    class RefusesLargeBatches(nn.Module):
        """A real module that raises torch's out-of-memory error above 16 samples."""

        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(64, 4)

        def forward(self, x):
            if len(x) > 16:
                raise torch.OutOfMemoryError("CUDA out of memory (test)")
            return self.linear(x)

    X, _ = digits
    module = RefusesLargeBatches()
    with pytest.warns(ResourceWarning, match="batches of 16 samples") as record:
        activations = LayerActivationTransformer(module, "linear", batch_size=64, device="cpu").fit_transform(X[:200])
    # The size that fitted is kept: two halvings in all, not two per batch.
    assert len([w for w in record if issubclass(w.category, ResourceWarning)]) == 2
    with torch.no_grad():
        expected = module.linear(torch.from_numpy(X[:200])).numpy()
    assert_float32_close(activations, expected, module)


def test_list_layers_in_forward_order():
    table = list_layers(models.resnet18(weights=None), torch.zeros(1, 3, 64, 64))
    names = table["layer"].tolist()
    assert names[:5] == ["input", "conv1", "bn1", "relu", "maxpool"]
    assert names.index("layer1") < names.index("layer4") < names.index("avgpool") < names.index("fc")
    row = table.set_index("layer").loc["layer1"]
    assert row["output_shape"] == (64, 16, 16) and row["n_features"] == 64 * 16 * 16


@pytest.mark.parametrize(
    "model, layer, X, error, match",
    [
        (nn.Sequential(nn.Linear(4, 2)), "layer5", np.zeros((3, 4), np.float32), ValueError, "Unknown layer 'layer5'"),
        ("not a model", "0", np.zeros((3, 4), np.float32), TypeError, "torch.nn.Module or a fitted skorch net"),
        (nn.Sequential(nn.Linear(4, 2)), "0", np.zeros((0, 4), np.float32), ValueError, "X is empty"),
        (nn.Sequential(nn.Linear(4, 2)), "0", np.zeros((3, 5), np.float32), ValueError, "expects 4 input features"),
        (
            nn.Sequential(nn.Conv2d(3, 2, 3)),
            "0",
            np.zeros((3, 1, 8, 8), np.float32),
            ValueError,
            "expects 3 input channels",
        ),
    ],
    ids=["unknown-layer", "not-a-model", "empty", "linear-shape", "conv-channels"],
)
def test_bad_input_is_explained(model, layer, X, error, match):
    with pytest.raises(error, match=match):
        LayerActivationTransformer(model, layer).fit(X)


def test_unknown_layer_lists_the_closest_names_first():
    with pytest.raises(ValueError, match=r"Closest valid names: 'layer4', 'layer3', 'layer2', 'layer1'"):
        LayerActivationTransformer(models.resnet18(weights=None), "layer5").fit(np.zeros((1, 3, 32, 32), np.float32))


def test_unfitted_skorch_net_is_not_fitted():
    skorch = pytest.importorskip("skorch")
    net = skorch.NeuralNetClassifier(nn.Sequential(nn.Linear(4, 2)))
    with pytest.raises(NotFittedError):
        LayerActivationTransformer(net, "0").fit(np.zeros((3, 4), np.float32))


@pytest.mark.cuda
def test_cuda_path_equals_cpu_path(images):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    model = models.resnet18(weights=None)
    on_cuda = LayerActivationTransformer(model, "layer2", device="cuda").fit_transform(images)
    on_cpu = LayerActivationTransformer(model, "layer2", device="cpu").fit_transform(images)
    # precision="highest" turns cuDNN's TF32 off: 50 times closer than TF32's 5.7e-3.
    np.testing.assert_allclose(on_cuda, on_cpu, rtol=1e-4, atol=1e-4)
    assert next(model.parameters()).device.type == "cpu"


def test_a_pandas_pipeline_feeds_the_transformer_a_dataframe():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.Tanh())
    X = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    pipeline = make_pipeline(StandardScaler(), LayerActivationTransformer(net, "1", device="cpu"))
    frame = pipeline.set_output(transform="pandas").fit_transform(X)
    assert frame.columns.tolist() == [f"1_{i}" for i in range(8)]
    scaled = StandardScaler().fit_transform(X).astype(np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(scaled)).numpy()
    assert_float32_close(frame.to_numpy(), expected, net)
    assert_float32_close(pipeline.transform(X[:7]).to_numpy(), expected[:7], net)
    # Nested lists convert too; what numpy cannot make numeric is refused with what to pass.
    assert_float32_close(
        LayerActivationTransformer(net, "1", device="cpu").fit_transform(scaled.tolist()), expected, net
    )
    with pytest.raises(TypeError, match="does not convert to a numeric array"):
        LayerActivationTransformer(net, "1", device="cpu").fit_transform([[1.0, "a", 0.0, 0.0]] * 3)


@pytest.mark.parametrize(
    "call",
    [
        lambda net, X: LayerActivationTransformer(net, "1", device="cpu").fit_transform(X),
        lambda net, X: DepthProfile(net, device="cpu").fit(X),
        lambda net, X: list_layers(net, X, device="cpu"),
        lambda net, X: make_id_scorer("1", device="cpu")(net, X),
    ],
    ids=["transformer", "profile", "list_layers", "scorer"],
)
def test_a_wrong_input_gets_the_same_explained_error_everywhere(call):
    # Every forward pass goes through the reader's one loop, with its first-batch message.
    net = nn.Sequential(nn.Linear(4, 8), nn.Tanh())
    X = np.zeros((30, 7), dtype=np.float32)
    explained = (
        r"The model failed on its first batch, of shape \(\d+, 7\) and dtype float32: RuntimeError: mat1 and mat2 "
        r"shapes cannot be multiplied .*Its first layer '0' expects 4 input features\. If the input is at fault, "
        r"pass X shaped like the model's input"
    )
    with pytest.raises(ValueError, match=explained):
        call(net, X)
