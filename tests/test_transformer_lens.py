"""TransformerLens's TransformerBridge, booted offline from a saved GPT-2: the residual stream of Hugging Face's."""

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")
model_bridge = pytest.importorskip("transformer_lens.model_bridge")

from sklearn_id import DepthProfile, TwoNNDimension, list_layers  # noqa: E402


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A GPT-2 built from a config and a BPE tokenizer trained on the spot, saved where the bridge boots from."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    folder = tmp_path_factory.mktemp("gpt2")
    torch.manual_seed(0)
    config = transformers.GPT2Config(n_layer=3, n_embd=64, n_head=4, n_positions=32, vocab_size=200)
    transformers.GPT2LMHeadModel(config).save_pretrained(folder)
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel()
    text = ["the intrinsic dimension of a representation"] * 20
    tokenizer.train_from_iterator(text, trainers.BpeTrainer(vocab_size=200, special_tokens=["<unk>", "<pad>"]))
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="<unk>", pad_token="<pad>")
    fast.save_pretrained(folder)
    return folder, fast


@pytest.fixture(scope="module")
def bridge(saved):
    folder, tokenizer = saved
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")  # nothing leaves the machine
        return model_bridge.TransformerBridge.boot_transformers(str(folder), tokenizer=tokenizer)


@pytest.fixture(scope="module")
def ids():
    return torch.as_tensor(np.random.default_rng(0).integers(0, 200, size=(300, 12)))


def test_auto_picks_the_residual_stream_of_the_hugging_face_model(saved, bridge, ids):
    profile = DepthProfile(bridge, pooling="mean", n_resamples=0, device="cpu").fit(ids).profile_
    assert profile["layer"].tolist() == ["blocks.0.hook_in", "blocks.0", "blocks.1", "blocks.2", "ln_final"]
    hugging_face = transformers.GPT2Model.from_pretrained(saved[0])
    expected = DepthProfile(hugging_face, pooling="mean", n_resamples=0, device="cpu").fit(ids).profile_
    assert expected["layer"].tolist() == ["drop", "h.0", "h.1", "h.2", "ln_f"]
    np.testing.assert_allclose(profile["relative_depth"], expected["relative_depth"])
    np.testing.assert_allclose(profile["id"], expected["id"], rtol=1e-6)


def test_the_ids_equal_the_hook_points_of_run_with_cache(bridge, ids):
    profile = DepthProfile(bridge, pooling="mean", n_resamples=0, device="cpu").fit(ids).profile_.set_index("layer")
    with torch.no_grad():
        _, cache = bridge.run_with_cache(ids)
    hooks = {
        "blocks.0.hook_in": "blocks.0.hook_resid_pre",
        **{f"blocks.{i}": f"blocks.{i}.hook_resid_post" for i in range(3)},
    }
    for layer, hook in hooks.items():
        pooled = cache[hook].double().mean(dim=1).float().numpy()  # the mean over tokens, as pooling="mean"
        assert profile.loc[layer, "id"] == pytest.approx(TwoNNDimension().fit(pooled).dimension_, rel=1e-6)


def test_list_layers_names_the_bridge_hook_points_in_forward_order(bridge, ids):
    hooks = [len(sub._forward_hooks) + len(sub._forward_pre_hooks) for sub in bridge.modules()]
    table = list_layers(bridge, ids[:2])
    names = table["layer"].tolist()
    assert names.index("blocks.0.hook_in") < names.index("blocks.0") < names.index("blocks.1") < names.index("ln_final")
    # The bridge's own hooks are as they were; none of ours is left behind.
    assert [len(sub._forward_hooks) + len(sub._forward_pre_hooks) for sub in bridge.modules()] == hooks
