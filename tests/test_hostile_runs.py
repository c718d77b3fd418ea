"""Hostile inputs, kind 5: one bad part does not lose the whole run, and what cannot run says why before any work."""

import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from sklearn_id import DepthProfile, UndefinedLayerWarning
from sklearn_id._cli import main


class Dead(nn.Module):
    """A dead layer: the same output for every sample."""

    def forward(self, x):
        return torch.ones(x.shape[0], 5)


@pytest.fixture
def X(rng):
    return np.tanh(rng.normal(size=(300, 3)) @ rng.normal(size=(3, 4))).astype(np.float32)


def test_a_dead_layer_gets_nan_and_a_warning_and_the_other_rows_are_unchanged(X):
    torch.manual_seed(0)
    live = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 8), nn.Tanh())
    model = nn.Sequential(*live, Dead(), nn.Linear(5, 2))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        profile = DepthProfile(model, layers=["input", "1", "3", "4"], device="cpu", random_state=0).fit(X)
    messages = [str(w.message) for w in caught if issubclass(w.category, UndefinedLayerWarning)]
    assert messages == [
        "Layer '4' gets NaN for its ID: All 300 points are identical: their intrinsic dimension is undefined. "
        "Check the input data.",
        "Layer '4' gets NaN for its PCA-ID: All samples are identical: the data have no variance, so no principal "
        "component explains any. Check the input data.",
    ]
    table = profile.profile_.set_index("layer")
    assert table.loc["4", ["id", "id_std", "pca_id"]].isna().all()
    alone = (
        DepthProfile(live, layers=["input", "1", "3"], device="cpu", random_state=0).fit(X).profile_.set_index("layer")
    )
    np.testing.assert_array_equal(
        table.loc[["input", "1", "3"], ["id", "id_std", "pca_id"]], alone[["id", "id_std", "pca_id"]]
    )


@pytest.mark.parametrize(
    "model, layers, match",
    [
        (
            nn.Linear(4, 2),
            "auto",
            r"has no submodules, so there are no layers to profile .* torch.nn.Sequential\(model\)",
        ),
        (nn.Sequential(nn.Linear(4, 2)), [], "layers is empty: pass 'auto' or at least one name"),
    ],
    ids=["no-children", "no-layers"],
)
def test_a_profile_with_nothing_to_profile_says_so(X, model, layers, match):
    with pytest.raises(ValueError, match=match):
        DepthProfile(model, layers=layers, device="cpu").fit(X)


def test_a_corrupt_image_among_good_ones_is_a_one_line_error(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        for index in range(4):
            Image.fromarray(rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)).save(
                tmp_path / label / f"{index}.png"
            )
    (tmp_path / "b" / "broken.png").write_bytes(b"not an image")
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "profile",
                "--model",
                "torchvision:resnet18",
                "--images",
                str(tmp_path),
                "--quiet",
                "--device",
                "cpu",
                "--out",
                str(tmp_path / "out"),
            ]
        )
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "could not be read" in error[0] and "broken.png" in error[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "settings, X_kind, error, message",
    [
        ({"n_jobs": 0}, "array", ValueError, "n_jobs=0 runs nothing"),
        ({"n_resample": 0}, "array", TypeError, "unexpected keyword argument 'n_resample': profile_sweep passes"),
        ({"n_resamples": 1}, "array", ValueError, "'n_resamples' parameter"),
        ({}, "generator", TypeError, "X is an iterator \\(generator\\), which can be read once"),
    ],
)
def test_a_sweep_refuses_settings_that_would_fail_every_model_before_any_runs(settings, X_kind, error, message):

    from sklearn_id import profile_sweep

    calls = []
    model = torch.nn.Sequential(torch.nn.Linear(3, 4))
    model.register_forward_pre_hook(lambda module, args: calls.append(1))
    X = np.random.default_rng(0).standard_normal((50, 3)).astype(np.float32)
    with pytest.raises(error, match=message):
        profile_sweep({"a": model, "b": model}, X if X_kind == "array" else (row for row in X), **settings)
    assert calls == []


def test_the_command_line_reads_one_text_a_line_whatever_the_other_separators(tmp_path):
    from argparse import Namespace

    from sklearn_id._cli_profile import _texts

    path = tmp_path / "texts.txt"
    path.write_text("a page\fbreak\nline\u2028separator\r\nthird\n\n", encoding="utf-8")
    texts, what = _texts(Namespace(text=path, n_texts=10, seed=0))
    assert texts == ["a page\fbreak", "line\u2028separator", "third"] and what == "3 texts of texts.txt"
