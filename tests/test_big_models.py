"""Big models where they live: dispatched by accelerate (CPU and disk offload), spread over devices, in bf16."""

import copy

import numpy as np
import pytest
import torch

accelerate = pytest.importorskip("accelerate")
transformers = pytest.importorskip("transformers")

from sklearn_id import DepthProfile, LayerActivationTransformer  # noqa: E402

from _float32 import SIGMAS, assert_float32_close  # noqa: E402

LAYERS = ["drop", "h.0", "h.1", "h.2", "h.3", "ln_f"]


@pytest.fixture
def in_memory():
    torch.manual_seed(0)
    config = transformers.GPT2Config(n_layer=4, n_embd=64, n_head=4, n_positions=32, vocab_size=100)
    return transformers.GPT2Model(config).eval()


@pytest.fixture
def dispatched(in_memory, tmp_path):
    # Two blocks offloaded to disk, the rest on the CPU: accelerate's hooks load them for each forward pass.
    device_map = {name: "disk" if name in ("h.1", "h.2") else "cpu" for name in ["wte", "wpe", *LAYERS]}
    model = accelerate.dispatch_model(copy.deepcopy(in_memory), device_map=device_map, offload_dir=tmp_path)
    assert {str(p.device) for p in model.parameters()} == {"cpu", "meta"}  # offloaded: no weights in memory
    return model


@pytest.fixture
def tokens():
    ids = np.random.default_rng(0).integers(0, 100, size=(60, 16))
    return {"input_ids": ids, "attention_mask": np.ones_like(ids)}


def state(model):
    """What a call must leave as it found: device map, each tensor's device, accelerate's hooks, modes, our hooks."""
    return (
        dict(model.hf_device_map),
        [(name, str(tensor.device)) for name, tensor in [*model.named_parameters(), *model.named_buffers()]],
        [(name, type(getattr(sub, "_hf_hook", None)).__name__) for name, sub in model.named_modules()],
        [sub.training for sub in model.modules()],
        [len(sub._forward_hooks) + len(sub._forward_pre_hooks) for sub in model.modules()],
    )


def test_a_model_offloaded_to_disk_reads_the_activations_of_the_model_in_memory(in_memory, dispatched, tokens):
    before = state(dispatched)
    for layer in LAYERS:
        reading = LayerActivationTransformer(dispatched, layer, pooling="mean").fit_transform(tokens)
        expected = LayerActivationTransformer(in_memory, layer, pooling="mean", device="cpu").fit_transform(tokens)
        np.testing.assert_allclose(reading, expected, rtol=0, atol=1e-6 * np.abs(expected).max())
    assert state(dispatched) == before


def test_a_dispatched_model_profiles_like_the_model_in_memory(in_memory, dispatched, tokens):
    before = state(dispatched)
    settings = {"layers": LAYERS, "pooling": "mean", "n_resamples": 2, "random_state": 0}
    profile = DepthProfile(dispatched, **settings).fit(tokens).profile_
    expected = DepthProfile(in_memory, device="cpu", **settings).fit(tokens).profile_
    np.testing.assert_allclose(profile[["id", "id_std", "pca_id"]], expected[["id", "id_std", "pca_id"]], rtol=1e-6)
    assert state(dispatched) == before


def test_a_failed_call_leaves_the_dispatched_model_as_it_was(dispatched):
    before = state(dispatched)
    ids = np.full((8, 16), 7)
    ids[5:, -1] = 500  # beyond the embedding's 100 rows, in the first batch: the forward pass fails on it
    with pytest.raises(ValueError, match="failed on its first batch.*IndexError"):
        LayerActivationTransformer(dispatched, "h.2", pooling="mean").fit_transform(torch.as_tensor(ids))
    assert state(dispatched) == before


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_a_model_spread_over_the_gpu_and_the_cpu_stays_there_and_names_its_device(in_memory, tokens):
    device_map = {name: "cpu" if name in ("h.2", "h.3", "ln_f") else 0 for name in ["wte", "wpe", *LAYERS]}
    spread = accelerate.dispatch_model(copy.deepcopy(in_memory), device_map=device_map)
    before = state(spread)
    reading = LayerActivationTransformer(spread, "h.3", pooling="mean").fit_transform(tokens)
    expected = LayerActivationTransformer(in_memory, "h.3", pooling="mean", device="cpu").fit_transform(tokens)
    assert_float32_close(reading, expected, in_memory)  # the GPU's float32 kernels round differently
    with pytest.raises(ValueError, match="used where it lives.*pass device='auto' or device='cuda:0'"):
        LayerActivationTransformer(spread, "h.3", pooling="mean", device="cpu").fit_transform(tokens)
    assert state(spread) == before


def test_a_bf16_model_runs_in_its_own_dtype_and_profiles(in_memory, tokens):
    half = copy.deepcopy(in_memory).to(torch.bfloat16)
    reading = LayerActivationTransformer(half, "h.3", pooling="mean", device="cpu").fit_transform(tokens)
    expected = LayerActivationTransformer(in_memory, "h.3", pooling="mean", device="cpu").fit_transform(tokens)
    assert reading.dtype == np.float32 and next(half.parameters()).dtype == torch.bfloat16
    # In bf16 every weight matrix, its input and its output are rounded to 8 bits (unit roundoff 2**-9, relative):
    # three perturbations per matrix, adding like a random walk along the L matrices of the path.
    matrices = sum(1 for p in half.parameters() if p.dim() >= 2)
    relative = np.linalg.norm(reading - expected) / np.linalg.norm(expected)
    assert relative < SIGMAS * np.sqrt(3 * matrices) * 2.0**-9
    profile = DepthProfile(half, layers=LAYERS, pooling="mean", n_resamples=2, random_state=0, device="cpu").fit(tokens)
    assert np.isfinite(profile.profile_[["id", "id_std", "pca_id"]].to_numpy()).all()


def test_the_cache_fingerprints_offloaded_weights_from_disk_and_serves_the_dispatched_model(
    in_memory, dispatched, tokens, tmp_path
):
    from sklearn_id._fingerprints import model_fingerprint

    assert model_fingerprint(dispatched) == model_fingerprint(in_memory)  # the disk's weights, read one by one
    assert model_fingerprint(copy.deepcopy(in_memory).to(torch.bfloat16)) != model_fingerprint(in_memory)
    before = state(dispatched)
    settings = {"layers": LAYERS, "pooling": "mean", "n_resamples": 2, "random_state": 0, "cache": tmp_path}
    first = DepthProfile(dispatched, **settings).fit(tokens).profile_
    calls = []
    handle = dispatched.register_forward_pre_hook(lambda *_: calls.append(1))
    try:
        second = DepthProfile(dispatched, **settings).fit(tokens).profile_
    finally:
        handle.remove()
    assert calls == []
    np.testing.assert_array_equal(second[["id", "id_std"]], first[["id", "id_std"]])
    assert state(dispatched) == before
