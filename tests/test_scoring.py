"""make_id_scorer in GridSearchCV, and the ID-accuracy correlation of the seed paper."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from torch import nn

from sklearn_id import LayerActivationTransformer, TwoNNDimension, id_accuracy_correlation, make_id_scorer

# Ansuini et al. 2019, Fig. 4 (shared/reference/paper-numbers.md): last hidden ID, top-5 error.
PAPER_IDS = [25.2, 18.4, 18.6, 15.9, 14.6, 15.5, 14.85, 12.8, 12.5, 18.6, 15.2, 13.9, 12.8, 12.4]
PAPER_TOP5_ERRORS = [20.91, 11.37, 10.75, 9.62, 9.12, 10.19, 9.63, 8.50, 8.15, 10.92, 8.58, 7.13, 6.44, 5.94]


def test_correlation_reproduces_the_paper():
    result = id_accuracy_correlation(PAPER_IDS, PAPER_TOP5_ERRORS)
    assert round(result.r, 2) == 0.94
    assert result.ci[0] < result.r < result.ci[1]
    assert result.pvalue < 1e-5
    resnets = id_accuracy_correlation(PAPER_IDS[-5:], PAPER_TOP5_ERRORS[-5:])
    assert round(resnets.r, 2) >= 0.99


class Hidden(nn.Module):
    def __init__(self, width=16):
        super().__init__()
        self.hidden = nn.Sequential(nn.Linear(64, width), nn.ReLU())
        self.out = nn.Linear(width, 10)

    def forward(self, x):
        return self.out(self.hidden(x))


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16).astype(np.float32), y.astype(np.int64)


def test_grid_search_reports_accuracy_and_id_side_by_side(digits):
    skorch = pytest.importorskip("skorch")
    X, y = digits
    torch.manual_seed(0)
    net = skorch.NeuralNetClassifier(
        Hidden,
        max_epochs=10,
        lr=0.01,
        optimizer=torch.optim.Adam,
        train_split=None,
        verbose=0,
        criterion=nn.CrossEntropyLoss,
    )
    scorer = make_id_scorer("hidden")
    search = GridSearchCV(
        net, {"module__width": [8, 32]}, cv=2, scoring={"accuracy": "accuracy", "id": scorer}, refit="accuracy"
    ).fit(X, y)
    results = search.cv_results_
    assert np.all(results["mean_test_accuracy"] > 0.5)
    assert np.all(results["mean_test_id"] < 0)
    # The fold score is minus the ID of the held-out fold's activations.
    fitted = search.best_estimator_
    activations = LayerActivationTransformer(fitted, "hidden").fit_transform(X)
    assert scorer(fitted, X) == pytest.approx(-TwoNNDimension().fit(activations).dimension_, rel=1e-9)


def test_scorer_accepts_pipelines_and_sign(digits):
    X, _ = digits
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(64, 12), nn.Tanh())
    pipeline = make_pipeline(FunctionTransformer(lambda A: A * 2), module)
    negative = make_id_scorer("1")(pipeline, X)
    positive = make_id_scorer("1", greater_is_better=True)(module, X * 2)
    assert negative == pytest.approx(-positive, rel=1e-9)
    activations = LayerActivationTransformer(module, "1").fit_transform(X * 2)
    assert positive == pytest.approx(TwoNNDimension().fit(activations).dimension_, rel=1e-9)


def test_the_scorer_takes_every_read_setting():
    # The read settings are one object with one set of constraints: the scorer has precision and progress too.
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.Tanh())
    X = np.random.default_rng(0).normal(size=(400, 3)).astype(np.float32)
    with pytest.raises(ValueError, match="'precision' parameter"):
        make_id_scorer("1", precision="fp8")
    with pytest.raises(ValueError, match="'progress' parameter"):
        make_id_scorer("1", progress="yes")
    exact = make_id_scorer("1", device="cpu")(model, X)
    assert make_id_scorer("1", device="cpu", progress=True, precision="bf16")(model, X) == pytest.approx(exact, rel=0.1)
