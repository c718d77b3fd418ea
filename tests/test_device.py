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
from sklearn_id._device import available_memory, resolve_device

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


def _tf32_state():
    return (
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
        getattr(torch.backends.cuda.matmul, "fp32_precision", None),
        getattr(getattr(torch.backends.cudnn, "conv", None), "fp32_precision", None),
    )


@pytest.mark.parametrize("precision, inside", [("highest", "ieee"), ("tf32", "tf32"), ("bf16", "ieee")])
def test_precision_holds_inside_the_call_and_the_flags_come_back(model, X, precision, inside):
    before = _tf32_state()
    seen = []
    handle = model.register_forward_pre_hook(
        lambda *_: seen.append((torch.backends.cudnn.conv.fp32_precision, torch.is_autocast_enabled("cpu")))
    )
    try:
        activations = LayerActivationTransformer(model, "1", device="cpu", precision=precision).fit_transform(X)
    finally:
        handle.remove()
    assert set(seen) == {(inside, precision == "bf16")}
    assert _tf32_state() == before
    assert activations.dtype == np.float32
    with torch.no_grad():
        exact = torch.tanh(model[0](torch.from_numpy(X))).numpy()
    # bfloat16 keeps 8 bits of mantissa: about 1e-2 relative; float32 is exact here.
    np.testing.assert_allclose(
        activations, exact, rtol=2e-2 if precision == "bf16" else 1e-6, atol=1e-2 if precision == "bf16" else 1e-7
    )


def test_the_flags_come_back_when_the_forward_pass_fails(X):
    class Fails(nn.Module):
        def forward(self, x):
            raise RuntimeError("the user's module failed")

    before = _tf32_state()
    with pytest.raises(ValueError):
        LayerActivationTransformer(nn.Sequential(Fails()), "0", device="cpu", precision="tf32").fit(X)
    assert _tf32_state() == before


def test_depth_profile_takes_the_precision(model, X):
    with pytest.raises(ValueError, match="'precision' parameter"):
        DepthProfile(model, device="cpu", precision="fp8").fit(X)
    profile = DepthProfile(model, device="cpu", precision="bf16", n_resamples=0, random_state=0).fit(X)
    exact = DepthProfile(model, device="cpu", n_resamples=0, random_state=0).fit(X)
    assert profile.profile_["id"].iloc[0] == exact.profile_["id"].iloc[0]  # the input is not computed
    np.testing.assert_allclose(profile.profile_["id"], exact.profile_["id"], rtol=0.1)


def test_memory_budget_auto_is_a_quarter_of_the_available_memory(model, X):
    profile = DepthProfile(model, device="cpu", n_resamples=0, pca_estimator=None).fit(X)
    assert 0 < profile.memory_budget_ <= available_memory() // 4 * 1.5
    fixed = DepthProfile(model, device="cpu", n_resamples=0, pca_estimator=None, memory_budget=10_000).fit(X)
    assert fixed.memory_budget_ == 10_000
    np.testing.assert_allclose(fixed.profile_["id"], profile.profile_["id"], rtol=1e-6)


@pytest.mark.cuda
def test_a_profile_on_the_device_equals_the_one_on_the_host(model, X):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    data = np.repeat(X, 10, axis=0) + np.random.default_rng(0).normal(scale=0.01, size=(2000, 4)).astype(np.float32)
    on_device = DepthProfile(model, device="cuda", random_state=0).fit(data)
    on_host = DepthProfile(model, device="cpu", random_state=0).fit(data)
    np.testing.assert_allclose(on_device.profile_["id"], on_host.profile_["id"], rtol=1e-4)
    np.testing.assert_allclose(on_device.profile_["id_std"], on_host.profile_["id_std"], rtol=1e-2)
    np.testing.assert_array_equal(on_device.profile_["pca_id"], on_host.profile_["pca_id"])


def _record_searches(monkeypatch, *, fake_cuda):
    """The device every neighbour search asks the one door for; with ``fake_cuda``, "auto" means CUDA and the
    searches still run on the CPU."""
    from sklearn_id import _device
    from sklearn_id._neighbors import _dispatch

    if fake_cuda:
        monkeypatch.setattr(_device, "_cuda_available", lambda: True)
    seen = []
    door = _dispatch.backend_for

    def recording(X, *, metric="euclidean", device="cpu"):
        seen.append(str(device))
        return door(X, metric=metric, device="cpu" if fake_cuda else device)

    monkeypatch.setattr(_dispatch, "backend_for", recording)
    return seen


def _every_call_on_the_cpu(model, X):
    """A profile, a scorer and a skorch callback, each told device="cpu", with the estimators left at "auto"."""
    from sklearn_id.callbacks import DepthProfileCallback
    from sklearn_id.models import make_digits_classifier

    DepthProfile(model, device="cpu", n_resamples=2, random_state=0).fit(X)
    make_id_scorer("1", device="cpu")(model, X)
    images = np.random.default_rng(0).normal(size=(120, 1, 8, 8)).astype(np.float32)
    callback = DepthProfileCallback(images[:100], every=1, n_resamples=0, pca_estimator=None)
    make_digits_classifier(max_epochs=1, device="cpu", callbacks=[callback]).fit(images, np.arange(120) % 10)


def test_a_cpu_profile_scorer_and_callback_search_on_the_cpu_where_cuda_is_seen(model, X, monkeypatch):
    # On a CUDA machine (faked: torch is never asked for the device), the estimators' device="auto"
    # follows the device of the call that drives them.
    seen = _record_searches(monkeypatch, fake_cuda=True)
    _every_call_on_the_cpu(model, X)
    assert seen and set(seen) == {"cpu"}, seen
    # An estimator that names its device keeps it.
    seen.clear()
    DepthProfile(model, device="cpu", n_resamples=0, id_estimator=TwoNNDimension(device="cuda")).fit(X)
    assert set(seen) == {"cuda"}


@pytest.mark.cuda
def test_a_cpu_profile_scorer_and_callback_search_on_the_cpu_on_a_cuda_machine(model, X, monkeypatch):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    seen = _record_searches(monkeypatch, fake_cuda=False)
    _every_call_on_the_cpu(model, X)
    assert seen and set(seen) == {"cpu"}, seen
