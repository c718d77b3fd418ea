"""The activation cache: a second fit runs no forward pass, a stopped fit resumes, a changed model is another entry."""

import json
import threading

import numpy as np
import pandas as pd
import pytest
import torch

from sklearn_id import DepthProfile, GRIDEDimension, TwoNNDimension
from sklearn_id._cache import cache_size

pytestmark = pytest.mark.filterwarnings("ignore::sklearn_id.UndersampledWarning")

transformers = pytest.importorskip("transformers")

N_TEXTS, LENGTH, BATCH = 120, 12, 16
# Before reading, a transformer's plan runs two one-sample passes: the layer listing and the embedding's producer.
PLANNING = 2
SETTINGS = {"pooling": "mean", "batch_size": BATCH, "random_state": 0, "device": "cpu", "n_resamples": 3}


@pytest.fixture
def gpt2():
    torch.manual_seed(0)
    config = transformers.GPT2Config(n_layer=3, n_embd=32, n_head=4, n_positions=LENGTH, vocab_size=100)
    return transformers.GPT2Model(config).eval()


@pytest.fixture
def tokens():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 100, size=(N_TEXTS, LENGTH))
    mask = np.ones_like(ids)
    mask[::3, LENGTH // 2 :] = 0  # a third of the texts are shorter: padded, masked
    return {"input_ids": ids, "attention_mask": mask}


class ForwardCounter:
    """Counts the model's forward passes (a pre-hook on the model); raises at the pass numbered ``fail_at``."""

    def __init__(self, model, fail_at=None):
        self.calls = 0
        self.fail_at = fail_at
        self.handle = model.register_forward_pre_hook(self)

    def __call__(self, _module, _args):
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("stopped half way")

    def remove(self):
        self.handle.remove()


def entries(folder):
    return sorted(path.name for path in folder.iterdir())


def test_a_second_fit_with_another_estimator_runs_no_forward_pass(gpt2, tokens, tmp_path):
    counter = ForwardCounter(gpt2)
    first = DepthProfile(gpt2, cache=tmp_path, **SETTINGS).fit(tokens)
    n_batches = -(-N_TEXTS // BATCH)
    assert counter.calls == PLANNING + n_batches  # then one pass over the data for every layer
    for estimator in (GRIDEDimension(n1=2, n2=4), TwoNNDimension(discard_fraction=0.2)):
        counter.calls = 0
        cached = DepthProfile(gpt2, cache=tmp_path, id_estimator=estimator, **{**SETTINGS, "n_resamples": 2})
        profile = cached.fit(tokens).profile_
        assert counter.calls == 0
        fresh = DepthProfile(gpt2, id_estimator=estimator, **{**SETTINGS, "n_resamples": 2}).fit(tokens).profile_
        pd.testing.assert_frame_equal(profile, fresh)
    counter.remove()
    pd.testing.assert_frame_equal(first.profile_, DepthProfile(gpt2, **SETTINGS).fit(tokens).profile_)
    assert len(entries(tmp_path)) == 1


def test_compare_and_per_class_read_the_cache_too(gpt2, tokens, tmp_path):
    labels = np.arange(N_TEXTS) % 2
    DepthProfile(gpt2, cache=tmp_path, **SETTINGS).fit(tokens)
    counter = ForwardCounter(gpt2)
    settings = {**SETTINGS, "compare": ["cka"], "per_class": True}
    cached = DepthProfile(gpt2, cache=tmp_path, **settings).fit(tokens, labels)
    assert counter.calls == 0
    counter.remove()
    fresh = DepthProfile(gpt2, **settings).fit(tokens, labels)
    pd.testing.assert_frame_equal(cached.class_profiles_, fresh.class_profiles_)
    pd.testing.assert_frame_equal(cached.comparisons_["cka"], fresh.comparisons_["cka"])


def test_a_fit_stopped_half_way_resumes_after_its_last_complete_batch(gpt2, tokens, tmp_path):
    n_batches = -(-N_TEXTS // BATCH)
    stopper = ForwardCounter(gpt2, fail_at=PLANNING + 4)  # three complete batches, then the fourth fails
    with pytest.raises(RuntimeError, match="stopped half way"):
        DepthProfile(gpt2, cache=tmp_path, **SETTINGS).fit(tokens)
    stopper.remove()
    (entry,) = tmp_path.iterdir()
    progress = json.loads((entry / "manifest.json").read_text())["layers"]
    assert {state["samples"] for state in progress.values()} == {3 * BATCH}
    counter = ForwardCounter(gpt2)
    resumed = DepthProfile(gpt2, cache=tmp_path, **SETTINGS).fit(tokens).profile_
    assert counter.calls == n_batches - 3  # only the missing batches
    counter.remove()
    pd.testing.assert_frame_equal(resumed, DepthProfile(gpt2, **SETTINGS).fit(tokens).profile_)
    assert [hook for sub in gpt2.modules() for hook in (*sub._forward_hooks, *sub._forward_pre_hooks)] == []


@pytest.mark.filterwarnings("ignore::sklearn_id.DuplicatePointsWarning")
def test_the_rows_of_every_token_resume_too(gpt2, tokens, tmp_path):
    settings = {**SETTINGS, "pooling": "tokens", "layers": ["h.1", "ln_f"], "n_resamples": 0}
    stopper = ForwardCounter(gpt2, fail_at=1 + 2)  # named layers: the listing alone plans
    with pytest.raises(RuntimeError, match="stopped half way"):
        DepthProfile(gpt2, cache=tmp_path, **settings).fit(tokens)
    stopper.remove()
    resumed = DepthProfile(gpt2, cache=tmp_path, **settings).fit(tokens)
    fresh = DepthProfile(gpt2, **settings).fit(tokens)
    assert resumed.n_samples_ == fresh.n_samples_ == int(tokens["attention_mask"].sum())
    pd.testing.assert_frame_equal(resumed.profile_, fresh.profile_)


@pytest.mark.parametrize("change", ["weight", "text", "pooling"])
def test_a_changed_weight_text_or_pooling_is_another_entry(gpt2, tokens, tmp_path, change):
    settings = dict(SETTINGS)
    DepthProfile(gpt2, cache=tmp_path, **settings).fit(tokens)
    if change == "weight":
        with torch.no_grad():
            weight = gpt2.h[1].mlp.c_fc.weight
            weight[3, 5] = torch.nextafter(weight[3, 5], torch.tensor(np.inf))  # one unit in the last place
    elif change == "text":
        tokens = {key: value.copy() for key, value in tokens.items()}
        tokens["input_ids"][7, 2] = (tokens["input_ids"][7, 2] + 1) % 100
    else:
        settings["pooling"] = "last"
    counter = ForwardCounter(gpt2)
    profile = DepthProfile(gpt2, cache=tmp_path, **settings).fit(tokens).profile_
    assert counter.calls == PLANNING + -(-N_TEXTS // BATCH)  # read again, never the old entry
    counter.remove()
    assert len(entries(tmp_path)) == 2
    pd.testing.assert_frame_equal(profile, DepthProfile(gpt2, **settings).fit(tokens).profile_)


def test_a_padded_token_changes_nothing(gpt2, tokens, tmp_path):
    # The fingerprint hashes each text's real tokens: what sits under a zero mask is not the data.
    DepthProfile(gpt2, cache=tmp_path, **SETTINGS).fit(tokens)
    padded = {key: value.copy() for key, value in tokens.items()}
    padded["input_ids"][0, -1] = (padded["input_ids"][0, -1] + 1) % 100
    assert padded["attention_mask"][0, -1] == 0
    DepthProfile(gpt2, cache=tmp_path, **SETTINGS).fit(padded)
    assert len(entries(tmp_path)) == 1


def test_layers_wider_than_the_budget_are_read_from_the_cache_in_slices(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 300), torch.nn.Tanh(), torch.nn.Linear(300, 40), torch.nn.Tanh())
    X = np.random.default_rng(0).standard_normal((400, 6)).astype(np.float32)
    settings = {"random_state": 0, "device": "cpu", "memory_budget": 4 * 400 * 120, "n_resamples": 2}
    counter = ForwardCounter(model)
    fresh = DepthProfile(model, **settings).fit(X).profile_
    passes = counter.calls
    counter.calls = 0
    cached = DepthProfile(model, cache=tmp_path, **settings).fit(X).profile_
    assert counter.calls < passes  # every layer in one pass over the data, not one per slice
    counter.calls = 0
    again = DepthProfile(model, cache=tmp_path, **settings).fit(X).profile_
    assert counter.calls == 0
    counter.remove()
    pd.testing.assert_frame_equal(cached, fresh)
    pd.testing.assert_frame_equal(again, fresh)
    rows = sum(path.stat().st_size for path in tmp_path.rglob("*.f32"))
    assert rows == 4 * 400 * fresh["n_features"].sum()  # float32 rows, nothing else
    assert cache_size(tmp_path) > rows


def test_a_damaged_manifest_or_a_file_as_folder_is_a_clear_error(gpt2, tokens, tmp_path):
    DepthProfile(gpt2, cache=tmp_path, **SETTINGS).fit(tokens)
    (entry,) = tmp_path.iterdir()
    manifest = json.loads((entry / "manifest.json").read_text())
    manifest["identity"]["pooling"] = "last"
    (entry / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="delete that folder"):
        DepthProfile(gpt2, cache=tmp_path, **SETTINGS).fit(tokens)
    (entry / "manifest.json").write_text('{"identity": {"form')  # cut short
    with pytest.raises(ValueError, match="delete that folder"):
        DepthProfile(gpt2, cache=tmp_path, **SETTINGS).fit(tokens)
    afile = tmp_path / "afile"
    afile.write_text("")
    with pytest.raises(ValueError, match="is a file"):
        DepthProfile(gpt2, cache=afile, **SETTINGS).fit(tokens)


def test_the_model_is_left_as_it_was_after_a_cached_fit(gpt2, tokens, tmp_path):
    gpt2.train()
    before = {name: tensor.clone() for name, tensor in gpt2.state_dict().items()}
    DepthProfile(gpt2, cache=tmp_path, **SETTINGS).fit(tokens)
    DepthProfile(gpt2, cache=tmp_path, **SETTINGS).fit(tokens)
    assert all(sub.training for sub in gpt2.modules())
    assert all(torch.equal(before[name], tensor) for name, tensor in gpt2.state_dict().items())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_on_cuda_the_cache_gives_the_profile_of_the_device(gpt2, tokens, tmp_path):
    settings = {**SETTINGS, "device": "cuda"}
    fresh = DepthProfile(gpt2, **settings).fit(tokens).profile_
    DepthProfile(gpt2, cache=tmp_path, **settings).fit(tokens)
    counter = ForwardCounter(gpt2)
    cached = DepthProfile(gpt2, cache=tmp_path, **settings).fit(tokens).profile_
    counter.remove()
    assert counter.calls == 0
    pd.testing.assert_frame_equal(cached, fresh)
    assert all(parameter.device.type == "cpu" for parameter in gpt2.parameters())


def test_four_threads_share_one_entry_and_a_dataset_of_the_array_reads_it(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 50), torch.nn.Tanh(), torch.nn.Linear(50, 20))
    X = np.random.default_rng(1).standard_normal((300, 6)).astype(np.float32)
    settings = {"random_state": 0, "device": "cpu", "batch_size": 32}
    fresh = DepthProfile(model, **settings).fit(X).profile_
    profiles = []
    threads = [
        threading.Thread(target=lambda: profiles.append(DepthProfile(model, cache=tmp_path, **settings).fit(X)))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(profiles) == 4
    for profile in profiles:
        pd.testing.assert_frame_equal(profile.profile_, fresh)
    (entry,) = tmp_path.iterdir()
    # Each layer written once, by one of them: one file per layer, each exactly its rows long.
    assert len(list(entry.glob("*.f32"))) == len(fresh)
    assert sum(path.stat().st_size for path in entry.glob("*.f32")) == 4 * 300 * fresh["n_features"].sum()
    counter = ForwardCounter(model)
    dataset = torch.utils.data.TensorDataset(torch.as_tensor(X))
    pd.testing.assert_frame_equal(DepthProfile(model, cache=tmp_path, **settings).fit(dataset).profile_, fresh)
    counter.remove()
    assert counter.calls == 0 and len(entries(tmp_path)) == 1
