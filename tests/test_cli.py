"""The command line: the main job on the digits, and ``profile`` on a folder of images the test writes."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
import torchvision
from PIL import Image

from sklearn_id import DepthProfile
from sklearn_id._cli import main
from sklearn_id._cli_profile import load_torchvision_model


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """Two classes of 12 random RGB images each, of odd sizes the transforms must handle."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for label in ("cats", "dogs"):
        (root / label).mkdir()
        for index in range(12):
            pixels = rng.integers(0, 256, size=(40 + index, 48, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / label / f"{index}.png")
    return root


@pytest.mark.slow
def test_main_job_prints_both_tables_and_writes_the_figure(tmp_path, capsys):
    assert main(["--out", str(tmp_path), "--epochs", "3", "--seed", "1"]) == 0
    printed = capsys.readouterr().out
    assert "test accuracy" in printed
    trained, untrained = printed.split("\ntrained\n")[1].split("\nuntrained\n")
    for table in (trained, untrained):
        layers = [line.split()[0] for line in table.strip().splitlines()[1:6]]
        assert layers == ["input", "pool1", "pool2", "d1", "output"]
        assert "+/-" in table
    assert (tmp_path / "depth_profile.png").stat().st_size > 10_000


@pytest.mark.parametrize("device", ["gpu", "cuda"])
def test_an_unusable_device_is_explained(device, capsys):
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(SystemExit) as exit_info:
        main(["--device", device, "--epochs", "1"])
    assert exit_info.value.code == 2
    assert f"--device {device}:" in capsys.readouterr().err


def test_help_runs_as_a_module():
    result = subprocess.run([sys.executable, "-m", "sklearn_id", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    assert "depth_profile.png" in result.stdout and "profile" in result.stdout


def test_profile_writes_csv_and_figure(image_folder, tmp_path, capsys):
    argv = ["profile", "--model", "torchvision:resnet18", "--images", str(image_folder)]
    torch.manual_seed(0)
    main([*argv, "--n-images", "20", "--layers", "maxpool,layer2,avgpool,fc", "--out", str(tmp_path)])
    table = pd.read_csv(tmp_path / "profile.csv")
    assert table["layer"].tolist() == ["maxpool", "layer2", "avgpool", "fc"]
    assert table["n_features"].tolist() == [64 * 56 * 56, 128 * 28 * 28, 512, 1000]
    # The same 20 images (drawn with --seed 0) and the same weights, profiled in Python.
    torch.manual_seed(0)
    model, transform = load_torchvision_model("torchvision:resnet18", None)
    dataset = torchvision.datasets.ImageFolder(image_folder, transform=transform)
    chosen = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0))[:20].sort().values
    expected = DepthProfile(model, layers=["maxpool", "layer2", "avgpool", "fc"], random_state=0, device="cpu").fit(
        torch.utils.data.Subset(dataset, chosen.tolist())
    )
    np.testing.assert_allclose(table["id"], expected.profile_["id"], rtol=1e-6)
    np.testing.assert_allclose(table["id_std"], expected.profile_["id_std"], rtol=1e-6)
    assert (tmp_path / "profile.png").stat().st_size > 10_000
    assert "20 images" in capsys.readouterr().out


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--model", "torchvision:resnet81"], "no classification model 'resnet81'. Did you mean resnet18"),
        (["--model", "timm:resnet18"], "torchvision:<name>"),
        (["--model", "torchvision:resnet18", "--weights", "FOO"], "no weights 'FOO'; choose one of"),
        (["--model", "torchvision:resnet18", "--weights", "DEFAULT"], "not in the local torch cache"),
        (["--model", "torchvision:resnet18", "--layers", "layer9"], "layer9"),
    ],
)
def test_profile_errors_are_messages_not_tracebacks(image_folder, tmp_path, monkeypatch, capsys, arguments, message):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-cache"))
    with pytest.raises(SystemExit) as exit_info:
        main(["profile", "--images", str(image_folder), "--n-images", "8", *arguments])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("folder", ["missing", "empty"])
def test_profile_explains_a_folder_without_images(tmp_path, capsys, folder):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit):
        main(["profile", "--model", "torchvision:resnet18", "--images", str(tmp_path / folder)])
    error = capsys.readouterr().err
    assert ("is not a folder" if folder == "missing" else "one sub-folder per class") in error


def test_weights_come_from_the_local_torch_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    weights = torchvision.models.ResNet18_Weights.DEFAULT
    torch.manual_seed(0)
    saved = torchvision.models.resnet18().state_dict()
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(saved, tmp_path / "hub" / "checkpoints" / weights.url.rsplit("/", 1)[1])
    model, transform = load_torchvision_model("torchvision:resnet18", "DEFAULT")
    assert torch.equal(model.conv1.weight, saved["conv1.weight"])
    assert transform(Image.new("RGB", (300, 200))).shape == (3, 224, 224)
