"""Hostile inputs, kind 2: every public function validates its arguments the way the estimators do, on every path."""

import numpy as np
import pytest
import torch
from torch import nn

from sklearn_id import (
    DepthProfile,
    GRIDEDimension,
    TwoNNDimension,
    gride_mle,
    id_scaling,
    twonn_interval,
    twonn_linear_fit,
    twonn_mle,
)

from _float32 import assert_float32_close

MU = np.random.default_rng(0).pareto(3.0, size=500) + 1


@pytest.mark.parametrize(
    "call, match",
    [
        (
            lambda: twonn_mle(MU, discard_fraction=-0.5),
            "'discard_fraction' parameter of twonn_mle must be a float in the range \\[0.0, 1.0\\)",
        ),
        (lambda: twonn_mle(MU, discard_fraction=1.0), "'discard_fraction' parameter of twonn_mle"),
        (
            lambda: twonn_linear_fit(MU, discard_fraction=0.0),
            "'discard_fraction' parameter of twonn_linear_fit must be a float in the range \\(0.0, 1.0\\)",
        ),
        (
            lambda: twonn_interval(MU, confidence=1.5),
            "'confidence' parameter of twonn_interval must be a float in the range \\(0.0, 1.0\\)",
        ),
        (lambda: twonn_interval(MU, confidence=0.0), "'confidence' parameter of twonn_interval"),
        (lambda: gride_mle(MU, n1=0), "'n1' parameter of gride_mle"),
        (lambda: gride_mle(MU, n1=3, n2=2), "GRIDE needs 1 <= n1 < n2"),
        (lambda: twonn_mle(np.r_[MU, np.nan]), "Input mu contains NaN"),
        (lambda: twonn_linear_fit(np.r_[MU, np.inf]), "Input mu contains infinity"),
        (lambda: gride_mle(np.r_[MU, np.nan]), "Input mu contains NaN"),
        (
            lambda: twonn_mle(np.r_[MU, 0.5]),
            "must be at least 1, but 1 are below 1 .* pass the farther neighbour's distance over the nearer one's",
        ),
        (lambda: gride_mle(1 / MU), "must be at least 1, but 500 are below 1"),
        (lambda: twonn_interval(MU.reshape(50, 10)), "mu must be a 1-D array of ratios, got shape \\(50, 10\\)"),
        (lambda: twonn_mle([2.0]), "At least 2 ratios are needed"),
        (lambda: twonn_mle([]), "ratios|empty|0 sample"),
    ],
    ids=[
        "mle-negative-discard",
        "mle-discard-one",
        "linear-discard-zero",
        "interval-confidence-above-one",
        "interval-confidence-zero",
        "gride-n1-zero",
        "gride-n1-above-n2",
        "mle-nan",
        "linear-inf",
        "gride-nan",
        "mle-below-one",
        "gride-inverted",
        "interval-2d",
        "mle-single",
        "mle-empty",
    ],
)
def test_pure_functions_refuse_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_pure_functions_give_the_formulas_on_good_arguments():
    log_mu = np.sort(np.log(MU))
    assert twonn_mle(MU) == pytest.approx((MU.size - 1) / log_mu.sum(), rel=1e-12)
    n = int(MU.size * 0.9)
    total = log_mu[:n].sum() + (MU.size - n) * log_mu[n - 1]
    assert twonn_mle(MU, discard_fraction=0.1) == pytest.approx((n - 1) / total, rel=1e-12)
    low, high = twonn_interval(MU, confidence=0.5)
    assert low < twonn_mle(MU) < high


@pytest.fixture
def data(rng):
    return rng.normal(size=(300, 4))


@pytest.mark.parametrize(
    "estimator, match",
    [
        (TwoNNDimension(method="foo"), "'method' parameter of TwoNNDimension"),
        (TwoNNDimension(metric="cosine"), "'metric' parameter of TwoNNDimension"),
        (TwoNNDimension(discard_fraction=1.5), "'discard_fraction' parameter of TwoNNDimension"),
        (TwoNNDimension(method="linear", discard_fraction=0.0), "method='linear' needs discard_fraction > 0"),
        (TwoNNDimension(device="gpu"), "'device' parameter of TwoNNDimension"),
        (GRIDEDimension(n1=4, n2=2), "GRIDE needs n1 < n2"),
        (GRIDEDimension(n1=0), "'n1' parameter of GRIDEDimension"),
    ],
    ids=["method", "metric", "discard", "linear-without-discard", "device", "gride-order", "gride-n1"],
)
def test_id_scaling_and_depth_profile_validate_the_estimators_settings(data, estimator, match):
    with pytest.raises(ValueError, match=match):
        id_scaling(estimator, data, n_min=20)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh())
    calls = []
    handle = model.register_forward_pre_hook(lambda *_: calls.append(1))
    try:
        with pytest.raises(ValueError, match=match):
            DepthProfile(model, id_estimator=estimator, device="cpu").fit(data.astype(np.float32))
    finally:
        handle.remove()
    assert calls == []  # refused before any forward pass


def test_depth_profile_refuses_a_precomputed_estimator_before_any_pass(data):
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh())
    with pytest.raises(
        ValueError, match="computes each layer's distances itself: pass an id_estimator with metric='euclidean'"
    ):
        DepthProfile(model, id_estimator=TwoNNDimension(metric="precomputed"), device="cpu").fit(
            data.astype(np.float32)
        )


def test_the_scorer_can_be_pickled_inside_a_fitted_search():
    import pickle

    from sklearn_id import make_id_scorer

    scorer = make_id_scorer("1", id_estimator=GRIDEDimension(n1=2, n2=4), device="cpu")
    clone = pickle.loads(pickle.dumps(scorer))
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.Tanh())
    X = np.random.default_rng(1).normal(size=(400, 4)).astype(np.float32)
    assert clone(model, X) == scorer(model, X)
    assert repr(clone) == "make_id_scorer('1', greater_is_better=False)"


@pytest.mark.parametrize(
    "ids, accuracies, confidence, match",
    [
        ([1.0, np.nan, 3.0], [0.5, 0.6, 0.7], 0.95, "Input ids contains NaN"),
        ([1.0, 2.0, 3.0], [0.5, np.inf, 0.7], 0.95, "Input accuracies contains infinity"),
        ([1.0, 2.0, 3.0], [0.5, 0.6], 0.95, "of the same length"),
        ([1.0, 2.0], [0.5, 0.6], 0.95, "at least 3 networks"),
        ([2.0, 2.0, 2.0], [0.5, 0.6, 0.7], 0.95, "All ids are equal"),
        ([1.0, 2.0, 3.0], [0.5, 0.6, 0.7], 1.5, "'confidence' parameter of id_accuracy_correlation"),
    ],
    ids=["nan", "inf", "lengths", "too-few", "constant", "confidence"],
)
def test_the_correlation_refuses_what_has_none(ids, accuracies, confidence, match):
    from sklearn_id import id_accuracy_correlation

    with pytest.raises(ValueError, match=match):
        id_accuracy_correlation(ids, accuracies, confidence=confidence)


def test_neighbour_ranks_beyond_the_samples_are_refused_before_any_pass():
    import torch

    from sklearn_id import DepthProfile, GRIDEDimension

    model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Linear(8, 2))
    X = np.random.default_rng(0).standard_normal((40, 3)).astype(np.float32)
    calls = []
    model[0].register_forward_pre_hook(lambda module, args: calls.append(args[0].shape[0]))
    with pytest.raises(ValueError, match="rank 64, but the 40 samples give 36 points per estimate"):
        DepthProfile(model, id_estimator=GRIDEDimension(n1=32, n2=64), device="cpu").fit(X)
    assert sum(calls) <= 1  # at most the one-sample listing pass, no pass over the data


def test_a_layer_holding_nan_says_so_and_the_plots_refuse_what_they_cannot_draw():
    import matplotlib
    import pandas as pd
    import torch

    from sklearn_id import DepthProfile, UndefinedLayerWarning
    from sklearn_id.plotting import plot_depth_profile

    matplotlib.use("Agg")

    class _Nan(torch.nn.Module):
        def forward(self, x):
            return x * float("nan")

    model = torch.nn.Sequential(torch.nn.Linear(3, 8), _Nan(), torch.nn.Linear(8, 2))
    X = np.random.default_rng(0).standard_normal((40, 3)).astype(np.float32)
    with pytest.warns(UndefinedLayerWarning, match="Layer '1' .* hold 320 NaN or infinite values"):
        profile = DepthProfile(model, layers=["0", "1"], device="cpu").fit(X).profile_
    assert np.isfinite(profile["id"][0]) and np.isnan(profile["id"][1])
    with pytest.raises(ValueError, match="has no rows: there is nothing to draw"):
        plot_depth_profile(pd.DataFrame(columns=["layer", "relative_depth", "id"]))
    with pytest.raises(ValueError, match="no finite ID"):
        plot_depth_profile(profile.assign(id=np.nan))


def test_token_inputs_that_cannot_be_read_are_explained():
    from transformers import GPT2Config, GPT2Model

    from sklearn_id import LayerActivationTransformer

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = GPT2Model(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50, n_positions=32))
    ids = np.random.default_rng(0).integers(0, 60, size=(8, 6))
    with pytest.raises(ValueError, match="holds ids from 0 to 5[0-9], but the model's embedding has 50 rows"):
        LayerActivationTransformer(model, "h.0", device="cpu").fit_transform({"input_ids": ids})
    with pytest.raises(ValueError, match="The rows of X\\['input_ids'\\] have different lengths: pad them"):
        LayerActivationTransformer(model, "h.0", device="cpu").fit_transform({"input_ids": [[1, 2, 3], [4, 5]]})
    # Longer than the learned table of 32 positions: said before any forward pass, not an IndexError inside it.
    with pytest.raises(ValueError, match="has 40 tokens per sample, but the model's position embedding holds 32"):
        LayerActivationTransformer(model, "h.0", device="cpu").fit_transform({"input_ids": np.ones((4, 40), int)})


class _LeftPaddingTokenizer:
    """Ids from characters, on a tokenizer that asks for left padding."""

    padding_side = "left"
    pad_token_id = 0

    def __call__(self, texts, **settings):
        return {"input_ids": [[1 + ord(c) % 40 for c in text] for text in texts]}


class _KeywordWrapper(nn.Module):
    """A wrapper whose forward takes only **kwargs: its signature does not say that position ids are welcome."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, **kwargs):
        return self.model(**kwargs)


def _reads_alike_alone_and_in_a_padded_batch(compiled):
    from transformers import GPT2Config, GPT2Model

    from sklearn_id import LayerActivationTransformer

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = GPT2Model(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50, n_positions=32)).eval()
    wrapped, layer = (
        (torch.compile(model, backend="eager"), "_orig_mod.h.0") if compiled else (_KeywordWrapper(model), "model.h.0")
    )
    read = LayerActivationTransformer(wrapped, layer, tokenizer=_LeftPaddingTokenizer(), pooling="mean", device="cpu")
    texts = ["short", "a much longer text than that"]
    together = read.set_params(batch_size=2).fit_transform(texts)
    alone = read.set_params(batch_size=1).fit_transform(texts)
    assert_float32_close(together, alone, model)


def test_a_text_reads_the_same_alone_and_in_a_padded_batch_whatever_the_model_signature():
    _reads_alike_alone_and_in_a_padded_batch(compiled=False)
    from sklearn_id._inputs import ModelInput

    texts = ModelInput(["a text", None], tokenizer=lambda texts, **settings: {"input_ids": [[1]] * len(texts)})
    with pytest.raises(TypeError, match="Text 1 is a NoneType, not a str: every text must be a string"):
        list(texts.batches(2))


@pytest.mark.slow
def test_a_compiled_model_reads_a_text_the_same_alone_and_in_a_padded_batch():
    _reads_alike_alone_and_in_a_padded_batch(compiled=True)


class _Embedded(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 8)
        self.lin = nn.Linear(8, 4)

    def forward(self, ids):
        return self.lin(self.emb(ids).mean(1))


@pytest.mark.parametrize("row", [0, 40], ids=["first-batch", "later-batch"])
def test_ids_beyond_a_plain_embedding_are_explained(row):
    from sklearn_id import LayerActivationTransformer

    ids = np.random.default_rng(0).integers(0, 10, size=(50, 6))
    ids[row, 2] = 12
    samples = "its first batch" if row == 0 else "samples 32 to 47"
    with pytest.raises(ValueError, match=f"failed on {samples}.*'emb' embeds 10 ids: each id must lie in \\[0, 10\\)"):
        LayerActivationTransformer(_Embedded(), "lin", batch_size=16, device="cpu").fit_transform(ids)
