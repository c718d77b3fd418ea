"""Hostile inputs, kind 3: a user's model and torch's global state are exactly as they were after every call.

Each public entry point that takes a model runs once as it should and once
failing; the model's state dict, every submodule's mode, the parameters'
devices and ``requires_grad``, and torch's random generator, TF32 flags and
grad mode are compared before and after.
"""

import pickle

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from sklearn_id import DepthProfile, LayerActivationTransformer, list_layers, make_id_scorer


class FailsOnSecondBatch(nn.Module):
    """A module of the user's that raises once it has seen one batch."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        if self.calls > 2:  # the layer listing and the first batch pass
            raise RuntimeError("the user's module failed on purpose")
        return x


def snapshot(model):
    tf32 = (
        getattr(torch.backends.cuda.matmul, "fp32_precision", None),
        getattr(getattr(torch.backends.cudnn, "conv", None), "fp32_precision", None),
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
    )
    return {
        "state": pickle.dumps({k: v.clone() for k, v in model.state_dict().items()}),
        "modes": [sub.training for sub in model.modules()],
        "devices": [p.device for p in model.parameters()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "rng": torch.get_rng_state(),
        "tf32": tf32,
        "grad": torch.is_grad_enabled(),
        "inference": torch.is_inference_mode_enabled(),
        "hooks": [(len(m._forward_hooks), len(m._forward_pre_hooks)) for m in model.modules()],
    }


def assert_unchanged(before, after):
    assert pickle.loads(before["state"]).keys() == pickle.loads(after["state"]).keys()
    for key, value in pickle.loads(before["state"]).items():
        assert torch.equal(value, pickle.loads(after["state"])[key]), key
    for name in ("modes", "devices", "requires_grad", "tf32", "grad", "inference", "hooks"):
        assert before[name] == after[name], name
    assert torch.equal(before["rng"], after["rng"])


@pytest.fixture
def model():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.Dropout(0.3), nn.Tanh(), nn.Linear(16, 2))
    net.train()
    net[2].eval()  # a mixed state the call must keep
    net[4].weight.requires_grad_(False)
    return net


@pytest.fixture
def X(rng):
    return rng.normal(size=(300, 4)).astype(np.float32)


class Pairs(Dataset):
    def __init__(self, X):
        self.X = torch.from_numpy(X)

    def __len__(self):
        return len(self.X)

    def __getitem__(self, index):
        return self.X[index], 0


CALLS = {
    "transformer": lambda model, X: LayerActivationTransformer(model, "3", device="cpu", batch_size=64).fit_transform(
        X
    ),
    "transformer-dataset": lambda model, X: LayerActivationTransformer(model, "3", device="cpu").fit_transform(
        Pairs(X)
    ),
    "list_layers": lambda model, X: list_layers(model, X[:2], device="cpu"),
    "depth_profile": lambda model, X: DepthProfile(model, device="cpu", random_state=0).fit(X),
    "depth_profile-dataset": lambda model, X: DepthProfile(model, device="cpu", random_state=0).fit(
        TensorDataset(torch.from_numpy(X))
    ),
    "scorer": lambda model, X: make_id_scorer("3", device="cpu")(model, X),
    "precision-tf32": lambda model, X: LayerActivationTransformer(
        model, "3", device="cpu", precision="tf32"
    ).fit_transform(X),
}


@pytest.mark.parametrize("call", list(CALLS), ids=list(CALLS))
def test_a_successful_call_leaves_everything_as_it_was(model, X, call):
    before = snapshot(model)
    CALLS[call](model, X)
    assert_unchanged(before, snapshot(model))


@pytest.mark.parametrize("call", list(CALLS), ids=list(CALLS))
def test_a_failing_call_leaves_everything_as_it_was(model, X, call):
    model.insert(0, FailsOnSecondBatch())  # layer "3" is now the dropout, after the failing module
    before = snapshot(model)
    with pytest.raises((ValueError, RuntimeError)):
        CALLS[call](model, np.concatenate([X] * 2) if "list_layers" not in call else X)
        if call == "list_layers":  # one forward pass cannot fail on a second batch: make it fail otherwise
            list_layers(model, X[:, :3], device="cpu")
    assert_unchanged(before, snapshot(model))


def test_an_unknown_layer_fails_before_touching_the_model(model, X):
    before = snapshot(model)
    with pytest.raises(ValueError, match="Unknown layer 'nope'"):
        DepthProfile(model, layers=["nope"], device="cpu").fit(X)
    assert_unchanged(before, snapshot(model))


def test_lazy_modules_are_not_materialised(X):
    model = nn.Sequential(nn.LazyLinear(8), nn.Tanh())
    for call in (
        lambda: list_layers(model, X[:1], device="cpu"),
        lambda: LayerActivationTransformer(model, "1", device="cpu").fit(X),
        lambda: DepthProfile(model, device="cpu").fit(X),
    ):
        with pytest.raises(
            ValueError, match=r"lazy module\(s\) \['0'\] have no parameters yet.* Run one forward pass first"
        ):
            call()
    assert isinstance(model[0], nn.LazyLinear) and model[0].has_uninitialized_params()
    model(torch.from_numpy(X[:2]))  # the user's own first pass initialises it; then reading works
    assert LayerActivationTransformer(model, "1", device="cpu").fit_transform(X).shape == (300, 8)


class _NotTensors(torch.nn.Module):
    """Submodules that return a distribution, None, an int and ``(None, tensor)``: all valid torch."""

    class _Returns(torch.nn.Module):
        def __init__(self, make):
            super().__init__()
            self.make = make

        def forward(self, x):
            return self.make(x)

    def __init__(self):
        super().__init__()
        self.first = torch.nn.Linear(4, 8)
        self.normal = self._Returns(lambda x: torch.distributions.Normal(x, 1.0))
        self.nothing = self._Returns(lambda x: None)
        self.count = self._Returns(lambda x: 3)
        self.pair = self._Returns(lambda x: (None, 2 * x))
        self.last = torch.nn.Linear(8, 2)

    def forward(self, x):
        h = self.first(x)
        self.normal(h), self.nothing(h), self.count(h)
        return self.last(self.pair(h)[1])


def test_modules_that_return_no_tensor_are_skipped_and_named_when_asked_for():

    X = np.random.default_rng(0).standard_normal((200, 4)).astype(np.float32)
    model = _NotTensors()
    assert list(list_layers(model, X[:1], device="cpu")["layer"]) == ["input", "first", "pair", "last"]
    pair = LayerActivationTransformer(model, "pair", device="cpu").fit_transform(X)
    np.testing.assert_allclose(pair, 2 * LayerActivationTransformer(model, "first", device="cpu").fit_transform(X))
    assert list(DepthProfile(model, device="cpu", random_state=0).fit(X).layers_) == ["input", "first", "last"]
    with pytest.raises(ValueError, match="No tensor to read: 'normal' returns a Normal"):
        LayerActivationTransformer(model, "normal", device="cpu").fit_transform(X)


class _Slow(torch.nn.Module):
    """A layer that sleeps in its forward pass, so that calls from several threads overlap."""

    def forward(self, x):
        import time

        time.sleep(0.01)
        return x


def _tf32_flags():
    return (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)


def test_overlapping_calls_in_threads_leave_flags_modes_hooks_and_parameters_as_they_were():
    import threading

    from sklearn_id import TwoNNDimension

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Dropout(0.5), _Slow(), torch.nn.Linear(16, 3)).train()
    parameters = [p.detach().clone() for p in model.parameters()]
    X = np.random.default_rng(0).standard_normal((256, 4)).astype(np.float32)
    expected = LayerActivationTransformer(model, "3", device="cpu").fit_transform(X)
    assert model.training  # a read leaves a training model training
    flags = _tf32_flags()
    results, errors = {}, []
    start = threading.Barrier(4)

    def run(name, call):
        try:
            start.wait()
            results[name] = call()
        except Exception as error:  # reported below, not lost in the thread
            errors.append(error)

    calls = {
        "highest": lambda: LayerActivationTransformer(model, "3", batch_size=32, device="cpu").fit_transform(X),
        "tf32": lambda: LayerActivationTransformer(
            model, "3", batch_size=16, device="cpu", precision="tf32"
        ).fit_transform(X),
        "profile": lambda: DepthProfile(model, layers=["0", "3"], device="cpu", random_state=0).fit(X).profile_,
        "estimator": lambda: TwoNNDimension().fit(X).dimension_,
    }
    for round_ in range(3):  # different interleavings
        threads = [threading.Thread(target=run, args=(name, call)) for name, call in calls.items()]
        for thread in threads[round_:] + threads[:round_]:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        # Every read saw eval mode (dropout off): the rows equal the single-threaded read.
        np.testing.assert_allclose(results["highest"], expected, rtol=1e-5, atol=1e-6)
        assert _tf32_flags() == flags
        assert all(sub.training for sub in model.modules())
        assert all(not sub._forward_hooks and not sub._forward_pre_hooks for sub in model.modules())
        for before, after in zip(parameters, model.parameters()):
            assert torch.equal(before, after)


class _CachesOnFirstCall(torch.nn.Module):
    """Builds a buffer from its first input, as some positional encodings do, and reuses it."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 4)
        self.cache = None

    def forward(self, x):
        if self.cache is None:
            self.cache = torch.ones_like(x[:1]) * 2
        return self.linear(x) * self.cache


def test_a_module_that_caches_a_tensor_during_a_read_can_be_trained_afterwards():
    model = _CachesOnFirstCall()
    X = np.random.default_rng(0).standard_normal((50, 4)).astype(np.float32)
    list_layers(model, X[:1], device="cpu")
    LayerActivationTransformer(model, "linear", device="cpu").fit_transform(X)
    loss = model(torch.from_numpy(X)).square().mean()
    loss.backward()  # an inference tensor in the cache would refuse: "Inference tensors cannot be saved for backward"
    assert model.linear.weight.grad is not None


@pytest.mark.slow
def test_overlapping_sweeps_on_an_in_process_dask_cluster_leave_the_flags_as_they_were():
    import threading

    distributed = pytest.importorskip("distributed")
    import joblib

    from sklearn_id import profile_sweep

    torch.manual_seed(0)
    models = {
        f"seed {i}": torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
        for i in range(4)
    }
    X = np.random.default_rng(0).standard_normal((300, 4)).astype(np.float32)
    flags = _tf32_flags()
    tables, errors = {}, []
    start = threading.Barrier(2)

    def run(precision):
        try:
            start.wait()
            with joblib.parallel_config(backend="dask"):
                tables[precision] = profile_sweep(models, X, n_resamples=0, device="cpu", precision=precision)
        except Exception as error:  # reported below, not lost in the thread
            errors.append(error)

    with distributed.LocalCluster(n_workers=1, threads_per_worker=4, processes=False, dashboard_address=None) as local:
        with distributed.Client(local):
            threads = [threading.Thread(target=run, args=(precision,)) for precision in ("highest", "tf32")]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    assert errors == []
    assert _tf32_flags() == flags
    assert all(table["model"].nunique() == 4 for table in tables.values())
    assert all(not sub._forward_hooks for model in models.values() for sub in model.modules())
