"""One device resolver: every device parameter accepts the same values and refuses the rest before any work."""

import numpy as np
import pytest
import torch
from torch import nn

from sklearn_id import (
    DepthProfile,
    GRIDEDimension,
    LayerActivationTransformer,
    TwoNNDimension,
    list_layers,
    make_id_scorer,
)
from sklearn_id._device import resolve_device

VALID = "'auto', 'cpu', 'cuda', 'cuda:N' or a CPU or CUDA torch.device"


@pytest.fixture
def model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))


@pytest.fixture
def X(rng):
    return rng.normal(size=(200, 4)).astype(np.float32)


@pytest.mark.parametrize("device", ["gpu", "meta", "cuda:x", "CPU", torch.device("meta"), 0])
def test_every_device_parameter_refuses_what_names_no_device(model, X, device):
    calls = [
        lambda: TwoNNDimension(device=device).fit(X),
        lambda: GRIDEDimension(device=device).fit(X),
        lambda: LayerActivationTransformer(model, "0", device=device).fit(X),
        lambda: DepthProfile(model, device=device).fit(X),
        lambda: list_layers(model, X[:1], device=device),
        lambda: make_id_scorer("0", device=device),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=VALID):
            call()


def test_a_refused_device_raises_before_any_work(model, X):
    calls = []
    handle = model.register_forward_pre_hook(lambda *_: calls.append(1))
    try:
        with pytest.raises(ValueError, match=VALID):
            DepthProfile(model, device="gpu").fit(X)
    finally:
        handle.remove()
    assert calls == []


@pytest.mark.parametrize("device", ["cpu", torch.device("cpu")])
def test_cpu_is_accepted_in_every_spelling(X, device):
    assert TwoNNDimension(device=device).fit(X).device_ == "cpu"
    assert resolve_device(device) == "cpu"


def test_auto_follows_the_machine_and_a_skorch_nets_device():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto") == expected
    assert resolve_device("auto", preferred="cpu") == "cpu"
    # A net trained on CUDA, profiled where there is none, runs on the CPU.
    assert resolve_device("auto", preferred="cuda") == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:0", torch.device("cuda")])
def test_cuda_without_a_device_is_explained(X, device):
    with pytest.raises(ValueError, match="torch sees no CUDA device; use device='cpu'"):
        TwoNNDimension(device=device).fit(X)


def test_depth_profile_on_the_cpu_runs_every_forward_pass_there(model, X):
    # The layer listing included: a hook records where the parameters are at each call.
    seen = []
    handle = model.register_forward_pre_hook(lambda module, _: seen.append(next(module.parameters()).device.type))
    try:
        DepthProfile(model, device="cpu", n_resamples=0, pca_estimator=None).fit(X)
        list_layers(model, X[:1], device="cpu")
    finally:
        handle.remove()
    assert len(seen) >= 3 and set(seen) == {"cpu"}


@pytest.mark.cuda
def test_depth_profile_on_cuda_runs_every_forward_pass_there(model, X):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    seen = []
    handle = model.register_forward_pre_hook(lambda module, _: seen.append(next(module.parameters()).device.type))
    try:
        DepthProfile(model, device="cuda", n_resamples=0, pca_estimator=None).fit(X)
    finally:
        handle.remove()
    assert set(seen) == {"cuda"}
    assert next(model.parameters()).device.type == "cpu"
