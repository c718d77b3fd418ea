"""Transformers: token pooling, texts in a pipeline, transformer checkpoints; models from configs (no download)."""

import copy

import numpy as np
import pytest
import torch

from sklearn_id import DepthProfile, LayerActivationTransformer, TwoNNDimension, list_layers, make_id_scorer
from sklearn_id.datasets import load_stdlib_docstrings

from _float32 import assert_float32_close, assert_same_twonn, twonn_tolerance

transformers = pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

pytestmark = pytest.mark.filterwarnings("ignore::sklearn_id.UndersampledWarning")

POOLINGS = ["mean", "last", "first", "max", "tokens"]
WIDTH = 32


@pytest.fixture(autouse=True)
def _quiet_transformers():
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    yield
    transformers.logging.set_verbosity(verbosity)


@pytest.fixture(scope="module")
def texts():
    paragraphs = load_stdlib_docstrings()
    # Short texts of varied lengths, so that batches are padded.
    return [" ".join(text.split()[: 3 + i % 17]) for i, text in enumerate(paragraphs[:400])]


def train_tokenizer(texts, pad=True):
    """A word-piece tokenizer trained on the spot, as a Hugging Face tokenizer."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator(texts, trainers.WordLevelTrainer(vocab_size=400, special_tokens=["[PAD]", "[UNK]"]))
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]" if pad else None, model_max_length=64
    )


@pytest.fixture(scope="module")
def tokenizer(texts):
    return train_tokenizer(texts)


def gpt2(n_layer=2):
    config = transformers.GPT2Config(
        n_layer=n_layer, n_embd=WIDTH, n_head=2, vocab_size=400, n_positions=64, bos_token_id=0, eos_token_id=0
    )
    torch.manual_seed(0)
    return transformers.GPT2LMHeadModel(config)


def bert():
    config = transformers.BertConfig(
        num_hidden_layers=2,
        hidden_size=WIDTH,
        num_attention_heads=2,
        intermediate_size=64,
        vocab_size=400,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    return transformers.BertModel(config)


def llama():
    config = transformers.LlamaConfig(
        num_hidden_layers=2,
        hidden_size=WIDTH,
        num_attention_heads=2,
        num_key_value_heads=2,
        intermediate_size=64,
        vocab_size=400,
        max_position_embeddings=64,
        bos_token_id=0,
        eos_token_id=0,
        pad_token_id=0,
    )
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(config)


LANGUAGE_MODELS = {"gpt2": gpt2, "bert": bert, "llama": llama}
CHECKPOINTS = {
    "gpt2": ["transformer.drop", "transformer.h.0", "transformer.h.1", "transformer.ln_f"],
    "bert": ["embeddings", "encoder.layer.0", "encoder.layer.1"],
    "llama": ["model.embed_tokens", "model.layers.0", "model.layers.1", "model.norm"],
}


def hand_pool(hidden, mask, pooling):
    """Pooling written out sample by sample, in float64."""
    hidden = np.asarray(hidden, dtype=np.float64)
    rows = []
    for values, real in zip(hidden, np.asarray(mask, dtype=bool)):
        positions = np.flatnonzero(real)
        tokens = values[positions]
        if pooling == "mean":
            rows.append(tokens.mean(axis=0))
        elif pooling == "max":
            rows.append(tokens.max(axis=0))
        elif pooling == "first":
            rows.append(values[positions[0]])
        elif pooling == "last":
            rows.append(values[positions[-1]])
        else:
            rows.extend(tokens)
    return np.asarray(rows)


def hidden_states(model, encoding):
    """HF's own hidden states: the embedding output, then each block's (the last after the final norm)."""
    training = model.training
    model.eval()
    with torch.no_grad():
        output = model(**{key: torch.as_tensor(value) for key, value in encoding.items()}, output_hidden_states=True)
    model.train(training)
    return [state.numpy() for state in output.hidden_states]


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("name", sorted(LANGUAGE_MODELS))
def test_pooling_equals_a_hand_computation(name, side, texts, tokenizer):
    model = LANGUAGE_MODELS[name]()
    padded = copy.deepcopy(tokenizer)
    padded.padding_side = side
    sample = texts[:24]
    encoding = padded(sample, padding=True, return_tensors="np")
    mask = encoding["attention_mask"]
    assert (mask == 0).any()  # the batch is padded
    assert (mask[:, 0] == 0).any() if side == "left" else (mask[:, -1] == 0).any()
    # Positions counted from each text's first real token, as the text path passes them.
    positions = {"position_ids": np.clip(mask.cumsum(axis=1) - 1, 0, None)} if side == "left" else {}
    block = CHECKPOINTS[name][1]
    states = hidden_states(model, dict(encoding) | positions)
    for pooling in POOLINGS:
        expected = hand_pool(states[1], mask, pooling)
        # From the texts, tokenized and padded batch by batch (batches of 5: their padding differs from HF's).
        transformer = LayerActivationTransformer(
            model, block, tokenizer=padded, pooling=pooling, batch_size=5, device="cpu"
        )
        got = transformer.fit_transform(sample)
        assert got.shape == expected.shape
        assert_float32_close(got, expected, model)
        # From the mapping HF's tokenizer returns, in one padded batch, passed as it is.
        mapping = dict(encoding) | positions
        mapped = LayerActivationTransformer(model, block, pooling=pooling, device="cpu").fit_transform(mapping)
        assert_float32_close(mapped, expected, model)
    assert model.training  # the model's mode is restored


@pytest.mark.parametrize("source", ["timm", "torchvision"])
def test_pooling_of_a_vit_equals_a_hand_computation(source):
    model, blocks, _ = vit(source)
    images = torch.randn(40, 3, 32, 32)
    captured = {}
    handle = dict(model.named_modules())[blocks[0]].register_forward_hook(
        lambda _m, _i, output: captured.setdefault("out", output.detach())
    )
    model.eval()
    with torch.no_grad():
        model(images)
    handle.remove()
    every = np.ones(captured["out"].shape[:2], dtype=bool)
    for pooling in POOLINGS:
        got = LayerActivationTransformer(model, blocks[0], pooling=pooling, batch_size=16, device="cpu").fit_transform(
            images
        )
        assert_float32_close(got, hand_pool(captured["out"], every, pooling), model)
    flat = LayerActivationTransformer(model, blocks[0], device="cpu").fit_transform(images)
    assert flat.shape == (40, captured["out"][0].numel())  # "auto" flattens image-model outputs


def vit(source):
    torch.manual_seed(0)
    if source == "timm":
        timm = pytest.importorskip("timm")
        model = timm.create_model(
            "vit_tiny_patch16_224",
            pretrained=False,
            img_size=32,
            patch_size=8,
            depth=2,
            embed_dim=WIDTH,
            num_heads=2,
            num_classes=10,
        )
        return model, ["blocks.0", "blocks.1"], ["pos_drop", "blocks.0", "blocks.1", "norm"]
    import torchvision

    model = torchvision.models.VisionTransformer(
        image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=WIDTH, mlp_dim=64, num_classes=10
    )
    blocks = ["encoder.layers.encoder_layer_0", "encoder.layers.encoder_layer_1"]
    return model, blocks, ["encoder.dropout", *blocks, "encoder.ln"]


def hooked_pooled(model, layers, call, mask=None):
    """Each layer's output through a hook of our own, mean-pooled by hand."""
    modules = dict(model.named_modules())
    captured = {}
    handles = [
        modules[layer].register_forward_hook(
            lambda _m, _i, output, layer=layer: captured.setdefault(
                layer, (output[0] if isinstance(output, tuple) else output).detach()
            )
        )
        for layer in layers
    ]
    training = model.training
    model.eval()
    with torch.no_grad():
        call(model)
    model.train(training)
    for handle in handles:
        handle.remove()
    # The activations a user gets in float32, pooled by hand.
    return {
        layer: hand_pool(out, mask if mask is not None else np.ones(out.shape[:2], bool), "mean").astype(np.float32)
        for layer, out in captured.items()
    }


@pytest.mark.parametrize("name", sorted(LANGUAGE_MODELS))
def test_depth_profile_picks_the_residual_stream_of_language_models(name, texts, tokenizer):
    model = LANGUAGE_MODELS[name]()
    encoding = tokenizer(texts, padding=True, return_tensors="np")
    profile = DepthProfile(model, pooling="mean", n_resamples=0, pca_estimator=None, device="cpu").fit(encoding)
    table = profile.profile_
    assert list(table["layer"]) == CHECKPOINTS[name]
    n_blocks = 2
    depths = [0.0] + [(i + 1) / n_blocks for i in range(n_blocks)] + [1.0] * (len(table) - n_blocks - 1)
    np.testing.assert_allclose(table["relative_depth"], depths)
    tensors = {key: torch.as_tensor(value) for key, value in encoding.items()}
    pooled = hooked_pooled(model, CHECKPOINTS[name], lambda m: m(**tensors), encoding["attention_mask"])
    for layer, measured in zip(table["layer"], table["id"]):
        assert_same_twonn(measured, pooled[layer], model)
    # The checkpoints are HF's hidden states: embedding output, block outputs, and the last after the final norm.
    states = [hand_pool(state, encoding["attention_mask"], "mean") for state in hidden_states(model, encoding)]
    names = CHECKPOINTS[name]
    assert_float32_close(pooled[names[0]], states[0], model)
    assert_float32_close(pooled[names[1]], states[1], model)
    assert_float32_close(pooled[names[-1]], states[-1], model)
    # Texts with the tokenizer give the same profile as the tokenized mapping.
    from_texts = DepthProfile(
        model, pooling="mean", tokenizer=tokenizer, n_resamples=0, pca_estimator=None, device="cpu"
    ).fit(texts)
    for layer, a, b in zip(table["layer"], from_texts.profile_["id"], table["id"]):
        assert abs(a - b) <= twonn_tolerance(pooled[layer], model), layer


@pytest.mark.parametrize("source", ["timm", "torchvision"])
def test_depth_profile_picks_the_residual_stream_of_vits(source):
    model, _, checkpoints = vit(source)
    images = torch.randn(300, 3, 32, 32).numpy()
    profile = DepthProfile(model, pooling="mean", n_resamples=0, pca_estimator=None, device="cpu").fit(images)
    assert list(profile.profile_["layer"]) == checkpoints
    pooled = hooked_pooled(model, checkpoints, lambda m: m(torch.from_numpy(images)))
    for layer, measured in zip(profile.profile_["layer"], profile.profile_["id"]):
        assert_same_twonn(measured, pooled[layer], model)


def test_a_llama_decoder_with_one_head_still_finds_its_embedding(texts, tokenizer):
    # The rotary embedding's output has the hidden width when there is one head: the checkpoint is
    # found by the tensor the first block reads, not by its shape.
    config = transformers.LlamaConfig(
        num_hidden_layers=2,
        hidden_size=16,
        num_attention_heads=1,
        num_key_value_heads=1,
        intermediate_size=32,
        vocab_size=400,
        max_position_embeddings=64,
        bos_token_id=0,
        eos_token_id=0,
        pad_token_id=0,
    )
    model = transformers.LlamaForCausalLM(config)
    table = list_layers(model, texts[:2], tokenizer=tokenizer, device="cpu")
    profile = DepthProfile(model, tokenizer=tokenizer, n_resamples=0, pca_estimator=None, device="cpu").fit(texts)
    assert list(profile.profile_["layer"]) == CHECKPOINTS["llama"]
    assert "input" not in set(table["layer"])  # token ids have no geometry
    assert int(table.set_index("layer").loc["model.layers.0", "n_features"]) == 16  # mean-pooled width


def test_a_pipeline_on_raw_text_fits_and_transforms(texts, tokenizer):
    from sklearn.pipeline import make_pipeline

    model = gpt2()
    pipeline = make_pipeline(
        LayerActivationTransformer(model, "transformer.h.1", tokenizer=tokenizer, pooling="mean", device="cpu"),
        TwoNNDimension(),
    ).fit(texts)
    encoding = tokenizer(texts, padding=True, return_tensors="np")
    expected = hooked_pooled(
        model,
        ["transformer.h.1"],
        lambda m: m(**{k: torch.as_tensor(v) for k, v in encoding.items()}),
        encoding["attention_mask"],
    )["transformer.h.1"]
    assert_same_twonn(pipeline[-1].dimension_, expected, model)
    assert_float32_close(pipeline[0].transform(texts[:7]), expected[:7], model)
    assert pipeline.transform(texts[:5]).shape == (5, 1)


class TextClassifier(torch.nn.Module):
    """A small transformer encoder over token ids, mean-pooled, for skorch."""

    def __init__(self, width=16, vocab_size=400):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab_size, width)
        layer = torch.nn.TransformerEncoderLayer(width, 2, 2 * width, dropout=0.0, batch_first=True)
        self.encoder = torch.nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
        self.out = torch.nn.Linear(width, 2)

    def forward(self, input_ids, attention_mask):
        hidden = self.encoder(self.embed(input_ids), src_key_padding_mask=attention_mask == 0)
        weights = attention_mask.unsqueeze(-1).float()
        return self.out((hidden * weights).sum(1) / weights.sum(1))


def test_grid_search_over_a_text_pipeline_scores_the_id(texts, tokenizer):
    skorch = pytest.importorskip("skorch")
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from skorch.hf import HuggingfacePretrainedTokenizer

    # Label: does the paragraph come from the first or the second half of the standard library's modules?
    y = (np.arange(len(texts)) >= len(texts) // 2).astype(np.int64)
    torch.manual_seed(0)
    net = skorch.NeuralNetClassifier(
        TextClassifier,
        max_epochs=3,
        lr=0.01,
        optimizer=torch.optim.Adam,
        train_split=None,
        verbose=0,
        criterion=torch.nn.CrossEntropyLoss,
        device="cpu",
    )
    pipeline = make_pipeline(HuggingfacePretrainedTokenizer(tokenizer, max_length=24), net)
    scorer = make_id_scorer("encoder", device="cpu")
    search = GridSearchCV(
        pipeline,
        {"neuralnetclassifier__module__width": [8, 16]},
        cv=2,
        scoring={"accuracy": "accuracy", "id": scorer},
        refit="accuracy",
    ).fit(texts, y)
    assert np.all(search.cv_results_["mean_test_id"] < 0)
    fitted = search.best_estimator_
    encoding = fitted[0].transform(texts)
    pooled = hooked_pooled(
        fitted[-1].module_, ["encoder"], lambda m: m(**dict(encoding)), encoding["attention_mask"].numpy()
    )["encoder"]
    assert_same_twonn(-scorer(fitted, texts), pooled, fitted[-1].module_)


def test_pooling_a_vector_output_is_an_error(texts, tokenizer):
    model = bert()
    calls = []
    handle = model.register_forward_pre_hook(lambda *_: calls.append(1))
    with pytest.raises(ValueError, match=r"pooling='mean' needs a token sequence.*layer 'pooler' outputs \(32,\)"):
        DepthProfile(
            model, layers=["encoder.layer.0", "pooler"], pooling="mean", tokenizer=tokenizer, device="cpu"
        ).fit(texts)
    handle.remove()
    assert len(calls) <= 2  # the layer listing's passes over one text, none over the data
    vector = torch.nn.Sequential(torch.nn.Linear(4, 3))
    with pytest.raises(ValueError, match=r"pooling='last' needs a token sequence.*outputs \(3,\) per sample"):
        LayerActivationTransformer(vector, "0", pooling="last", device="cpu").fit(np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match="pooling='first' needs a token sequence"):
        DepthProfile(vector, layers=["0"], pooling="first", device="cpu").fit(np.zeros((20, 4), np.float32))


def test_a_mask_of_the_wrong_shape_is_an_error(texts, tokenizer):
    model = gpt2()
    encoding = dict(tokenizer(texts[:8], padding=True, return_tensors="np"))
    encoding["attention_mask"] = encoding["attention_mask"][:, :-1]
    with pytest.raises(ValueError, match=r"attention_mask'\] has shape \(8, \d+\) but X\['input_ids'\] has shape"):
        LayerActivationTransformer(model, "transformer.h.0", device="cpu").fit(encoding)
    encoding["attention_mask"] = np.full_like(encoding["input_ids"], 2)
    with pytest.raises(ValueError, match="only 0 \\(padding\\) and 1"):
        LayerActivationTransformer(model, "transformer.h.0", device="cpu").fit(encoding)


def test_flattening_a_padded_batch_is_an_error(texts, tokenizer):
    model = gpt2()
    with pytest.raises(ValueError, match="would mix the padding"):
        LayerActivationTransformer(model, "transformer.h.0", tokenizer=tokenizer, pooling="flatten", device="cpu").fit(
            texts[:10]
        ).transform(texts[:10])


def test_empty_texts_are_errors(texts, tokenizer):
    model = gpt2()
    transformer = LayerActivationTransformer(model, "transformer.h.0", tokenizer=tokenizer, device="cpu")
    with pytest.raises(ValueError, match="Text 2 is empty"):
        transformer.fit_transform(["one text", "another text", "   "])
    with pytest.raises(ValueError, match="X is empty"):
        transformer.fit([])
    encoding = dict(tokenizer(texts[:4], padding=True, return_tensors="np"))
    encoding["attention_mask"][1] = 0
    with pytest.raises(ValueError, match="Sample 1 of a batch has no real token"):
        LayerActivationTransformer(model, "transformer.h.0", device="cpu").fit(encoding).transform(encoding)


def test_texts_longer_than_the_model_are_errors_unless_truncated(tokenizer):
    model = gpt2()  # n_positions = 64
    long_text = " ".join(["the"] * 100)
    transformer = LayerActivationTransformer(model, "transformer.h.0", tokenizer=tokenizer, device="cpu")
    with pytest.raises(ValueError, match=r"Text 1 has 100 tokens, more than max_length=64.*truncation=True"):
        transformer.fit(["short text", long_text]).transform(["short text", long_text])
    cut = LayerActivationTransformer(model, "transformer.h.0", tokenizer=tokenizer, truncation=True, device="cpu")
    expected = LayerActivationTransformer(model, "transformer.h.0", tokenizer=tokenizer, device="cpu")
    assert_float32_close(cut.fit_transform([long_text]), expected.fit_transform([" ".join(["the"] * 64)]), model)
    shorter = LayerActivationTransformer(
        model, "transformer.h.0", tokenizer=tokenizer, max_length=10, truncation=True, device="cpu"
    )
    assert_float32_close(shorter.fit_transform([long_text]), expected.fit_transform([" ".join(["the"] * 10)]), model)


def test_a_tokenizer_without_a_padding_token_works(texts):
    model = gpt2()
    without = train_tokenizer(texts, pad=False)
    assert without.pad_token is None
    with_pad = train_tokenizer(texts)
    got = LayerActivationTransformer(model, "transformer.h.1", tokenizer=without, device="cpu").fit_transform(
        texts[:30]
    )
    expected = LayerActivationTransformer(model, "transformer.h.1", tokenizer=with_pad, device="cpu").fit_transform(
        texts[:30]
    )
    assert_float32_close(got, expected, model)


def test_texts_without_a_tokenizer_and_token_ids_as_input_are_errors(texts, tokenizer):
    model = gpt2()
    with pytest.raises(TypeError, match="X holds texts: pass tokenizer"):
        LayerActivationTransformer(model, "transformer.h.0", device="cpu").fit(texts)
    with pytest.raises(ValueError, match="ids themselves, which have no geometry"):
        DepthProfile(model, layers=["input", "transformer.h.0"], tokenizer=tokenizer, device="cpu").fit(texts)


def test_the_tokens_pooling_profiles_a_token_cloud(texts, tokenizer):
    model = gpt2()
    encoding = tokenizer(texts[:60], padding=True, return_tensors="np")
    profile = DepthProfile(
        model,
        layers=["transformer.h.1"],
        pooling="tokens",
        n_resamples=2,
        pca_estimator=None,
        random_state=0,
        device="cpu",
    ).fit(encoding)
    assert profile.n_samples_ == int(encoding["attention_mask"].sum())
    tokens = LayerActivationTransformer(model, "transformer.h.1", pooling="tokens", device="cpu").fit_transform(
        encoding
    )
    assert_same_twonn(profile.profile_["id"][0], tokens, model)


@pytest.fixture
def saved_lm(tmp_path, tokenizer):
    """A small GPT-2 and its tokenizer, saved with save_pretrained to a local folder."""
    folder = tmp_path / "tiny-gpt2"
    gpt2().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_the_command_line_profiles_a_saved_language_model(saved_lm, texts, tmp_path, capsys):
    import pandas as pd

    from sklearn_id._cli import main

    text_file = tmp_path / "texts.txt"
    text_file.write_text("\n".join(texts[:300]) + "\n\n", encoding="utf-8")  # blank lines are skipped
    out = tmp_path / "out"
    main(
        [
            "profile",
            "--model",
            f"hf:{saved_lm}",
            "--text",
            str(text_file),
            "--out",
            str(out),
            "--quiet",
            "--n-resamples",
            "0",
            "--device",
            "cpu",
        ]
    )
    table = pd.read_csv(out / "profile.csv")
    assert (out / "profile.png").stat().st_size > 10_000
    # The names of the object the user built and saved (a GPT2LMHeadModel), as in Python.
    assert list(table["layer"]) == CHECKPOINTS["gpt2"]
    model = transformers.GPT2LMHeadModel.from_pretrained(saved_lm)
    tokenizer = transformers.AutoTokenizer.from_pretrained(saved_lm)
    expected = DepthProfile(model, tokenizer=tokenizer, n_resamples=0, random_state=0, device="cpu").fit(texts[:300])
    np.testing.assert_allclose(table["id"], expected.profile_["id"], atol=1e-9)
    assert "300 texts of texts.txt" in capsys.readouterr().out


def test_the_command_line_keeps_the_activations_in_its_cache(saved_lm, texts, tmp_path):
    import pandas as pd

    from sklearn_id import GRIDEDimension
    from sklearn_id._cli import main

    text_file = tmp_path / "texts.txt"
    text_file.write_text("\n".join(texts[:100]), encoding="utf-8")
    cache = tmp_path / "cache"
    argv = ["profile", "--model", f"hf:{saved_lm}", "--text", str(text_file), "--cache", str(cache), "--quiet"]
    main([*argv, "--n-resamples", "0", "--device", "cpu", "--out", str(tmp_path / "first")])
    written = {path: path.stat().st_mtime_ns for path in cache.rglob("*.f32")}
    assert len({path.parent for path in written}) == 1 and len(written) == len(CHECKPOINTS["gpt2"])
    main([*argv, "--estimator", "gride", "--n-resamples", "0", "--device", "cpu", "--out", str(tmp_path / "second")])
    assert {path: path.stat().st_mtime_ns for path in cache.rglob("*.f32")} == written  # read, not written again
    model = transformers.GPT2LMHeadModel.from_pretrained(saved_lm)
    tokenizer = transformers.AutoTokenizer.from_pretrained(saved_lm)
    expected = DepthProfile(
        model, tokenizer=tokenizer, id_estimator=GRIDEDimension(n1=2, n2=4), n_resamples=0, batch_size=64, device="cpu"
    ).fit(texts[:100])
    table = pd.read_csv(tmp_path / "second" / "profile.csv")
    np.testing.assert_allclose(table["id"], expected.profile_["id"], rtol=1e-9)


@pytest.mark.slow
def test_the_command_line_gives_one_id_per_text(saved_lm, texts, tmp_path, capsys):
    import pandas as pd

    from sklearn_id._cli import main

    text_file = tmp_path / "texts.txt"
    text_file.write_text("\n".join(texts[:40]), encoding="utf-8")
    argv = ["profile", "--model", f"hf:{saved_lm}", "--text", str(text_file), "--out", str(tmp_path / "out")]
    main([*argv, "--quiet", "--device", "cpu", "--per-sample", "--layers", "transformer.h.0,transformer.ln_f"])
    samples = pd.read_csv(tmp_path / "out" / "samples.csv")
    model = transformers.GPT2LMHeadModel.from_pretrained(saved_lm)
    tokenizer = transformers.AutoTokenizer.from_pretrained(saved_lm)
    expected = DepthProfile(
        model,
        layers=["transformer.h.0", "transformer.ln_f"],
        tokenizer=tokenizer,
        pooling="tokens",
        per_sample=True,
        batch_size=64,  # the command line's batches: the same float32 sums
        device="cpu",
    ).fit(texts[:40])
    np.testing.assert_allclose(samples["id"], expected.sample_profiles_["id"], rtol=1e-9)
    assert samples["sample"].nunique() == 40
    assert "samples.csv" in capsys.readouterr().out


def test_the_command_line_cuts_texts_only_when_asked(saved_lm, tmp_path):
    from sklearn_id._cli import main

    text_file = tmp_path / "long.txt"
    text_file.write_text("\n".join(" ".join(["the"] * (40 + i)) for i in range(60)), encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        main(["profile", "--model", f"hf:{saved_lm}", "--text", str(text_file), "--out", str(tmp_path), "--quiet"])
    assert exit_info.value.code == 2
    main(
        [
            "profile",
            "--model",
            f"hf:{saved_lm}",
            "--text",
            str(text_file),
            "--out",
            str(tmp_path),
            "--quiet",
            "--max-length",
            "32",
            "--n-resamples",
            "0",
            "--device",
            "cpu",
            "--layers",
            "transformer.h.0",
        ]
    )
    assert (tmp_path / "profile.csv").is_file()


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--model", "hf:no-such-org/no-such-model", "--text", "TEXT"], "nor a model in the local Hugging Face cache"),
        (
            ["--model", "hf:EMPTY", "--text", "TEXT"],
            "the folder holds no model and tokenizer saved with save_pretrained",
        ),
        (["--model", "hf:LM", "--images", "."], "reads texts: pass --text FILE"),
        (["--model", "hf:LM", "--text", "BLANK"], "holds no text"),
        (["--model", "hf:LM", "--text", "LONG"], "more than max_length=64.*Pass --max-length N"),
        (["--model", "hf:LM", "--text", "TEXT", "--weights", "DEFAULT"], "bring their own weights"),
        (
            ["--model", "timm:vit_tiny_patch16_255", "--images", "."],
            "timm has no model 'vit_tiny_patch16_255'. Did you mean",
        ),
        (["--model", "timm:vit_tiny_patch16_224", "--text", "TEXT"], "reads images: pass --images FOLDER"),
        (["--model", "hf:LM", "--text", "MISSING"], "MISSING is not a file"),
    ],
)
def test_command_line_errors_are_one_line(arguments, message, saved_lm, tmp_path, capsys):
    from sklearn_id._cli import main

    (tmp_path / "empty").mkdir()
    (tmp_path / "text.txt").write_text("a short text\nanother one\n", encoding="utf-8")
    (tmp_path / "blank.txt").write_text("\n  \n", encoding="utf-8")
    (tmp_path / "long.txt").write_text(" ".join(["the"] * 70) + "\n", encoding="utf-8")
    names = {
        "hf:EMPTY": f"hf:{tmp_path / 'empty'}",
        "hf:LM": f"hf:{saved_lm}",
        "TEXT": str(tmp_path / "text.txt"),
        "BLANK": str(tmp_path / "blank.txt"),
        "LONG": str(tmp_path / "long.txt"),
        "MISSING": str(tmp_path / "MISSING"),
    }
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "profile",
                *[names.get(part, part) for part in arguments],
                "--out",
                str(tmp_path),
                "--quiet",
                "--device",
                "cpu",
            ]
        )
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert "Traceback" not in error
    last = error.splitlines()[-1]  # argparse's own errors follow its usage lines; ours are one line
    assert last.startswith("python -m sklearn_id") and ": error: " in last
    assert __import__("re").search(message, last), error
    if "is not a file" not in message:
        assert len(error.splitlines()) == 1


class _RunsCode:
    def __reduce__(self):
        return (print, ("this pickle's code ran",))


def _truncate_weights(folder):
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:500])


def _pickled_weights(folder):
    import pickle

    (folder / "model.safetensors").unlink()
    with open(folder / "pytorch_model.bin", "wb") as file:
        pickle.dump(_RunsCode(), file)


def _wider_config(folder):
    import json

    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config | {"n_embd": 2 * config["n_embd"]}))


def _no_tokenizer(folder):
    for file in folder.iterdir():
        if file.name not in ("config.json", "model.safetensors", "generation_config.json"):
            file.unlink()


@pytest.mark.parametrize(
    "damage, message",
    [
        (_truncate_weights, "its weights could not be loaded \\(SafetensorError: .*save the model again"),
        (_pickled_weights, "its weights are a pickle that only running its code would load; it was not run"),
        (_wider_config, "its weights have other shapes than its config.json gives: save the model again"),
        (_no_tokenizer, "holds no tokenizer \\(its vocabulary is empty\\): save the model's tokenizer there"),
    ],
    ids=["truncated", "pickle", "config", "tokenizer"],
)
def test_a_saved_model_that_cannot_be_used_is_one_line(damage, message, saved_lm, tmp_path, capsys):
    import re
    import shutil

    from sklearn_id._cli import main

    folder = shutil.copytree(saved_lm, tmp_path / "damaged")
    damage(folder)
    (tmp_path / "text.txt").write_text("a short text\nanother one\n", encoding="utf-8")
    argv = ["profile", "--model", f"hf:{folder}", "--text", str(tmp_path / "text.txt"), "--out", str(tmp_path)]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--quiet", "--device", "cpu"])
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert "code ran" not in captured.out
    error = captured.err.strip()
    assert len(error.splitlines()) == 1 and re.search(message, error), error


def test_the_command_line_profiles_a_timm_model_on_images(tmp_path, capsys):
    pytest.importorskip("timm")
    from PIL import Image

    from sklearn_id._cli import main

    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (tmp_path / "images" / label).mkdir(parents=True)
        for i in range(12):
            Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(
                tmp_path / "images" / label / f"{i}.png"
            )
    main(
        [
            "profile",
            "--model",
            "timm:vit_tiny_patch16_224",
            "--images",
            str(tmp_path / "images"),
            "--out",
            str(tmp_path / "out"),
            "--quiet",
            "--n-resamples",
            "0",
            "--device",
            "cpu",
            "--pooling",
            "first",
            "--layers",
            "blocks.0,blocks.11,norm",
        ]
    )
    output = capsys.readouterr().out
    assert "24 images of images" in output
    import pandas as pd

    table = pd.read_csv(tmp_path / "out" / "profile.csv")
    assert list(table["layer"]) == ["blocks.0", "blocks.11", "norm"]
    assert list(table["n_features"]) == [192, 192, 192]  # the class token of width 192
    main(["layers", "--model", "timm:vit_tiny_patch16_224", "--device", "cpu"])
    assert "blocks.11" in capsys.readouterr().out


def test_a_dataset_of_mappings_and_a_series_of_texts_give_the_mapping_path(texts, tokenizer):
    import pandas as pd

    class Encoded(torch.utils.data.Dataset):
        """Yields one padded sample at a time, as a mapping of tensors, with a label beside it."""

        def __init__(self, encoding):
            self.encoding = encoding

        def __len__(self):
            return len(self.encoding["input_ids"])

        def __getitem__(self, i):
            return {key: torch.as_tensor(value[i]) for key, value in self.encoding.items()}, 0

    model = gpt2()
    encoding = tokenizer(texts[:50], padding=True, return_tensors="np")
    transformer = LayerActivationTransformer(model, "transformer.h.1", batch_size=16, device="cpu")
    expected = transformer.fit_transform(encoding)
    assert_float32_close(transformer.transform(Encoded(encoding)), expected, model)
    series = LayerActivationTransformer(model, "transformer.h.1", tokenizer=tokenizer, device="cpu")
    assert_float32_close(series.fit_transform(pd.Series(texts[:50])), expected, model)
    assert_float32_close(series.transform(np.array(texts[:50])), expected, model)


def test_the_scorer_reads_texts_through_a_tokenizer(texts, tokenizer):
    model = gpt2()
    scorer = make_id_scorer("transformer.h.1", tokenizer=tokenizer, pooling="last", device="cpu")
    pooled = LayerActivationTransformer(
        model, "transformer.h.1", tokenizer=tokenizer, pooling="last", device="cpu"
    ).fit_transform(texts)
    assert_same_twonn(-scorer(model, texts), pooled, model)


def test_the_layers_command_lists_a_saved_language_model(saved_lm, capsys):
    from sklearn_id._cli import main

    main(["layers", "--model", f"hf:{saved_lm}", "--device", "cpu"])
    output = capsys.readouterr().out
    assert "one short text" in output
    rows = {line.split()[0]: line.split()[-1] for line in output.splitlines()[2:]}
    assert rows["transformer.h.0"] == str(WIDTH) and rows["transformer.ln_f"] == str(WIDTH)  # mean-pooled widths
    assert "input" not in rows
    # The names Python gives the object the user saved.
    names = [name for name, _ in transformers.GPT2LMHeadModel.from_pretrained(saved_lm).named_modules() if name]
    assert set(rows) <= set(names) and "transformer.h.1" in rows


def test_the_tokens_pooling_of_a_vit_makes_every_patch_a_point():
    model, blocks, _ = vit("torchvision")
    images = torch.randn(30, 3, 32, 32).numpy()
    profile = DepthProfile(model, layers=blocks, pooling="tokens", n_resamples=0, pca_estimator=None, device="cpu").fit(
        images
    )
    assert profile.n_samples_ == 30 * 17  # 16 patches and the class token per image
    patches = LayerActivationTransformer(model, blocks[1], pooling="tokens", device="cpu").fit_transform(images)
    assert patches.shape == (30 * 17, WIDTH)
    assert_same_twonn(profile.profile_["id"][1], patches, model)


def test_list_layers_cuts_long_texts_only_when_asked(tokenizer):
    model = gpt2()  # n_positions = 64
    long_text = " ".join(["the"] * 100)
    with pytest.raises(ValueError, match="more than max_length=64.*truncation=True"):
        list_layers(model, [long_text], tokenizer=tokenizer, device="cpu")
    table = list_layers(model, [long_text], tokenizer=tokenizer, truncation=True, device="cpu")
    short = list_layers(model, [long_text], tokenizer=tokenizer, max_length=8, truncation=True, device="cpu")
    assert table["layer"].tolist() == short["layer"].tolist() and "transformer.h.1" in set(table["layer"])


def test_a_max_length_beyond_the_models_positions_is_explained(saved_lm, tmp_path, capsys):
    from sklearn_id._cli import main

    text_file = tmp_path / "texts.txt"
    text_file.write_text("a short text\nanother one\n", encoding="utf-8")
    limit = transformers.AutoConfig.from_pretrained(saved_lm).n_positions
    with pytest.raises(SystemExit) as exit_info:
        main(["profile", "--model", f"hf:{saved_lm}", "--text", str(text_file), "--max-length", str(limit + 1)])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"--max-length {limit + 1} is more than the {limit} positions hf:{saved_lm} takes" in error
    assert error.endswith(f"pass --max-length {limit} or less.")
