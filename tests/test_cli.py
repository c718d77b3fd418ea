"""The command line: the main job on the digits, and ``profile`` on a folder of images the test writes."""

import re
import signal
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
from sklearn_id._cli_models import load_torchvision_model


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
    expected = "is not a device: 'auto', 'cpu'" if device == "gpu" else "was requested but torch sees no CUDA device"
    assert f"argument --device: device={device!r} {expected}" in capsys.readouterr().err


@pytest.mark.slow
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
    captured = capsys.readouterr()
    printed = captured.out
    assert "20 images" in printed
    # 20 images cannot resolve these layers: the printed table marks every row, as profile.csv flags it.
    assert table["undersampled"].all()
    rows = [
        line.split()
        for line in printed.splitlines()
        if line.split()[:1] in (["maxpool"], ["layer2"], ["avgpool"], ["fc"])
    ]
    assert len(rows) == 4 and all(row[-1] == "*" for row in rows)
    assert "* undersampled: fewer points than the estimate needs" in printed
    # The warnings come after the progress bars, once, counted; not one per layer.
    errors = captured.err
    assert errors.count("warning: 4 of 4 layers are undersampled (maxpool, layer2, avgpool, fc)") == 1
    assert "is undersampled:" not in errors


@pytest.mark.slow
def test_profile_compares_layers_and_profiles_each_class(tmp_path, capsys):
    image_folder = tmp_path / "images"  # 40 images: enough for the label overlap's 30 neighbours
    rng = np.random.default_rng(1)
    for label in ("cats", "dogs"):
        (image_folder / label).mkdir(parents=True)
        for index in range(20):
            Image.fromarray(rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)).save(
                image_folder / label / f"{index}.png"
            )
    layers = ["layer4", "avgpool", "fc"]
    argv = ["profile", "--model", "torchvision:resnet18", "--images", str(image_folder), "--layers", ",".join(layers)]
    main([*argv, "--compare", "imbalance,cka", "--per-class", "--out", str(tmp_path / "out"), "--quiet"])
    tmp_path = tmp_path / "out"
    torch.manual_seed(0)  # --seed 0 draws the same random weights
    model, transform = load_torchvision_model("torchvision:resnet18", None)
    dataset = torchvision.datasets.ImageFolder(image_folder, transform=transform)
    labels = [dataset.classes[target] for target in dataset.targets]
    expected = DepthProfile(
        model, layers=layers, compare=["imbalance", "cka"], per_class=True, random_state=0, device="cpu"
    ).fit(dataset, labels)
    classes = pd.read_csv(tmp_path / "class_profiles.csv")
    assert sorted(set(classes["class"])) == ["cats", "dogs"]
    np.testing.assert_allclose(classes["id"], expected.class_profiles_["id"], rtol=1e-6)
    table = pd.read_csv(tmp_path / "profile.csv")
    np.testing.assert_allclose(table["id"], expected.profile_["id"], rtol=1e-6)
    np.testing.assert_allclose(table["label_overlap"], expected.profile_["label_overlap"], rtol=1e-6)
    for name in ("imbalance", "cka"):
        matrix = pd.read_csv(tmp_path / f"{name}.csv", index_col=0)
        assert list(matrix.index) == layers and list(matrix.columns) == layers
        np.testing.assert_allclose(matrix.to_numpy(), expected.comparisons_[name].to_numpy(), rtol=1e-5, atol=1e-9)
        assert (tmp_path / f"{name}.png").stat().st_size > 5_000
    printed = capsys.readouterr().out
    assert "imbalance (rows: from, columns: to)" in printed and str(tmp_path / "cka.png") in printed


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--model", "torchvision:resnet81"], "no classification model 'resnet81'. Did you mean resnet18"),
        (["--model", "keras:resnet18"], "takes torchvision:NAME, timm:NAME or hf:NAME_OR_PATH"),
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


def _fails_before_any_model(monkeypatch):
    """Make building any torchvision model an error, so a test sees that validation came first."""

    def refuse(*args, **kwargs):
        raise AssertionError("a model was built before the arguments were checked")

    monkeypatch.setattr(torchvision.models, "get_model", refuse)


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--n-images", "-3"], "argument --n-images: -3 is not a positive integer"),
        (["--n-images", "many"], "argument --n-images: invalid literal"),
        (["--batch-size", "0"], "argument --batch-size: 0 is not a positive integer"),
        (["--n-resamples", "1"], "argument --n-resamples: 1: use 0 (no error bars) or at least 2"),
        (["--n-resamples", "-2"], "argument --n-resamples"),
        (["--subsample", "1.5"], "argument --subsample: 1.5 is not a fraction strictly between 0 and 1"),
        (["--subsample", "0"], "argument --subsample"),
        (["--estimator", "pca"], "argument --estimator: invalid choice: 'pca'"),
        (["--ranks", "4,2"], "argument --ranks: 4,2: GRIDE needs 1 <= n1 < n2"),
        (["--ranks", "4"], "argument --ranks: '4': give two ranks as n1,n2"),
        (["--device", "gpu"], "argument --device: device='gpu' is not a device"),
        (["--checkpoint", "nowhere.pt"], "argument --checkpoint: nowhere.pt is not a file"),
        (["--compare", "imbalance,entropy"], "argument --compare: 'imbalance,entropy': give measures among imbalance"),
        (["--compare", "cka,cka"], "argument --compare: 'cka,cka' names a measure twice"),
        (
            ["--weights", "DEFAULT", "--checkpoint", __file__],
            "argument --checkpoint: not allowed with argument --weights",
        ),
    ],
)
def test_bad_flags_are_one_line_errors_before_any_model(image_folder, monkeypatch, capsys, arguments, message):
    _fails_before_any_model(monkeypatch)
    with pytest.raises(SystemExit) as exit_info:
        main(["profile", "--model", "torchvision:resnet18", "--images", str(image_folder), *arguments])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert message in error
    assert len(error.strip().splitlines()[-1]) > 0 and "Traceback" not in error


def test_an_out_that_is_a_file_is_refused_before_any_work(image_folder, tmp_path, monkeypatch, capsys):
    _fails_before_any_model(monkeypatch)
    (tmp_path / "taken").write_text("a file")
    for argv in (
        ["profile", "--model", "torchvision:resnet18", "--images", str(image_folder), "--out", str(tmp_path / "taken")],
        ["--out", str(tmp_path / "taken")],
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        assert "is a file; give a folder" in capsys.readouterr().err


def test_layers_prints_the_table(capsys):
    assert main(["layers", "--model", "torchvision:resnet18", "--image-size", "64", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "random weights, one image of 64 x 64" in printed
    lines = printed.strip().splitlines()
    assert lines[1].split() == ["layer", "type", "output_shape", "n_features"]
    rows = {line.split()[0]: line for line in lines[2:]}
    assert rows["maxpool"].split()[1] == "MaxPool2d" and rows["maxpool"].split()[-1] == str(64 * 16 * 16)
    assert rows["fc"].split()[-1] == "1000"
    assert list(rows)[0] == "input" and list(rows).index("layer4") < list(rows).index("avgpool")


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("torchvision:vit_b_32", "AssertionError: Wrong image height! Expected 224 but got 8"),  # the model's assert
        ("torchvision:alexnet", "Output size is too small"),
    ],
)
def test_layers_with_an_image_too_small_for_the_model_is_one_line(model, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["layers", "--model", model, "--image-size", "8", "--device", "cpu"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and error.startswith("python -m sklearn_id: error: --image-size 8: ")
    assert message in error


@pytest.mark.slow
def test_a_checkpoint_is_loaded_into_the_architecture(image_folder, tmp_path, capsys):
    torch.manual_seed(3)
    model = torchvision.models.get_model("resnet18", weights=None)
    path = tmp_path / "mine.pt"
    torch.save({"state_dict": model.state_dict()}, path)
    argv = ["profile", "--model", "torchvision:resnet18", "--images", str(image_folder), "--checkpoint", str(path)]
    main([*argv, "--layers", "avgpool,fc", "--n-resamples", "0", "--out", str(tmp_path), "--quiet", "--device", "cpu"])
    captured = capsys.readouterr()
    assert "weights from mine.pt" in captured.out
    # --quiet: no progress bars; the one line on stderr is the undersampling summary of 24 images.
    assert [line.split(":")[0] for line in captured.err.splitlines()] == ["warning"]
    assert "2 of 2 layers are undersampled (avgpool, fc)" in captured.err
    _, transform = load_torchvision_model("torchvision:resnet18", None)
    dataset = torchvision.datasets.ImageFolder(image_folder, transform=transform)
    expected = DepthProfile(model, layers=["avgpool", "fc"], n_resamples=0, device="cpu").fit(dataset)
    np.testing.assert_allclose(pd.read_csv(tmp_path / "profile.csv")["id"], expected.profile_["id"], rtol=1e-9)


@pytest.mark.parametrize(
    "content, message",
    [
        ("not a checkpoint", "not a torch checkpoint that loads with weights_only=True"),
        ({"step": 3}, "not a state dict (a mapping of parameter names to tensors)"),
        ("alexnet", "is not a state dict of torchvision's resnet18: missing conv1.weight, bn1.weight, bn1.bias ..."),
    ],
    ids=["garbage", "no-tensors", "other-architecture"],
)
def test_a_wrong_checkpoint_is_a_one_line_error(image_folder, tmp_path, capsys, content, message):
    path = tmp_path / "bad.pt"
    if content == "not a checkpoint":
        path.write_text(content)
    elif content == "alexnet":
        torch.save(torchvision.models.get_model("alexnet", weights=None).state_dict(), path)
    else:
        torch.save(content, path)
    with pytest.raises(SystemExit) as exit_info:
        main(["layers", "--model", "torchvision:resnet18", "--checkpoint", str(path)])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert message in error and len(error.splitlines()) == 1


@pytest.mark.slow
def test_gride_and_resampling_flags_reach_the_profile(image_folder, tmp_path, capsys):
    argv = ["profile", "--model", "torchvision:resnet18", "--images", str(image_folder), "--layers", "avgpool"]
    torch.manual_seed(0)
    main(
        [
            *argv,
            "--estimator",
            "gride",
            "--ranks",
            "2,4",
            "--n-resamples",
            "3",
            "--subsample",
            "0.8",
            "--out",
            str(tmp_path),
            "--quiet",
            "--device",
            "cpu",
        ]
    )
    assert "GRIDEDimension(n1=2, n2=4)" in capsys.readouterr().out
    torch.manual_seed(0)
    model, transform = load_torchvision_model("torchvision:resnet18", None)
    dataset = torchvision.datasets.ImageFolder(image_folder, transform=transform)
    from sklearn_id import GRIDEDimension

    expected = DepthProfile(
        model,
        layers=["avgpool"],
        id_estimator=GRIDEDimension(n1=2, n2=4),
        n_resamples=3,
        subsample=0.8,
        random_state=0,
        device="cpu",
    ).fit(dataset)
    table = pd.read_csv(tmp_path / "profile.csv")
    np.testing.assert_allclose(table[["id", "id_std"]], expected.profile_[["id", "id_std"]], rtol=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize(("flag", "method"), [("abide", "binomial"), ("agride", "gride")])
def test_the_abide_estimators_reach_the_profile_with_their_scale(image_folder, tmp_path, capsys, flag, method):
    argv = ["profile", "--model", "torchvision:resnet18", "--images", str(image_folder), "--layers", "maxpool,fc"]
    torch.manual_seed(0)
    main([*argv, "--estimator", flag, "--n-resamples", "0", "--out", str(tmp_path), "--quiet", "--device", "cpu"])
    assert "ABIDEDimension(" in capsys.readouterr().out
    torch.manual_seed(0)
    model, transform = load_torchvision_model("torchvision:resnet18", None)
    dataset = torchvision.datasets.ImageFolder(image_folder, transform=transform)
    from sklearn_id import ABIDEDimension

    expected = DepthProfile(
        model, layers=["maxpool", "fc"], id_estimator=ABIDEDimension(method=method), n_resamples=0, device="cpu"
    ).fit(dataset)
    table = pd.read_csv(tmp_path / "profile.csv")
    np.testing.assert_allclose(table[["id", "scale"]], expected.profile_[["id", "scale"]], rtol=1e-9)
    assert (table["scale"] > 0).all()


@pytest.mark.slow
def test_an_interrupted_main_job_exits_130_and_claims_nothing(tmp_path):
    # Ctrl-C once training has run an epoch: skorch stops quietly, and the main job must not print a
    # table labelled with the epochs asked for, nor write its figure.
    job = subprocess.Popen(
        [sys.executable, "-m", "sklearn_id", "--epochs", "500", "--device", "cpu", "--out", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C delivered as in a terminal, even where this run was started with SIGINT ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    seen = ""
    while "1/500" not in seen and job.poll() is None:  # the progress bar after the first epoch
        seen += job.stderr.read(1)
    job.send_signal(signal.SIGINT)
    stdout, stderr = job.communicate()
    assert job.returncode == 130, stderr[-2000:]
    assert re.search(r"training was interrupted after \d+ of 500 epochs; nothing was written\.", stderr)
    assert "500 epochs" not in stdout and "trained" not in stdout
    assert not (tmp_path / "depth_profile.png").exists()


@pytest.mark.slow
def test_the_same_seed_gives_the_same_random_weight_profile_in_two_processes(image_folder, tmp_path):
    tables = []
    for run in ("first", "second"):
        out = tmp_path / run
        command = [sys.executable, "-m", "sklearn_id", "profile", "--model", "torchvision:resnet18", "--images"]
        command += [str(image_folder), "--layers", "avgpool,fc", "--seed", "0", "--out", str(out), "--quiet"]
        result = subprocess.run(command, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-2000:]
        tables.append(pd.read_csv(out / "profile.csv"))
    pd.testing.assert_frame_equal(tables[0], tables[1], check_exact=True)
