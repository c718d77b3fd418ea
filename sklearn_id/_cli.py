"""The command line: the seed paper's finding on built-in data, ``profile`` for your images, ``layers`` to list them."""

import argparse
from pathlib import Path

from sklearn_id._cli_common import UsageError, format_profile
from sklearn_id._cli_profile import run_layers, run_profile
from sklearn_id._pooling import POOLINGS


def main(argv=None):
    """Run the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "profile":
            run_profile(args)
        elif args.command == "layers":
            run_layers(args)
        else:
            run_main_job(args)
    except UsageError as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    except KeyboardInterrupt as error:  # also the classifier's TrainingInterrupted, which says how far it got
        reason = str(error) or "interrupted"
        parser.exit(130, f"{parser.prog}: {reason}; nothing was written.\n")
    return 0


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m sklearn_id",
        description=(
            "Without a command: train a small CNN on scikit-learn's digits, profile the "
            "intrinsic dimension of its layers trained and untrained (TwoNN with error "
            "bars, PCA-ID), print the tables and write depth_profile.png."
        ),
    )
    parser.add_argument("--out", type=output_folder, default=Path("."), help="folder for the figure (default: .)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split, the weights and the subsamples")
    parser.add_argument("--epochs", type=positive_int, default=20, help="training epochs (default: 20)")
    parser.add_argument("--device", type=device_name, default="auto", help="auto (default), cpu, cuda or cuda:N")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    commands = parser.add_subparsers(dest="command", metavar="{profile,layers}")
    profile = commands.add_parser(
        "profile",
        help="profile a model on a folder of images or a file of texts",
        description=(
            "Profile a model's layers on an image folder (one sub-folder per class, as "
            "torchvision's ImageFolder reads it) or, for hf: language models, on a text file "
            "(one text a line); writes profile.csv and profile.png."
        ),
    )
    _model_arguments(profile)
    data = profile.add_mutually_exclusive_group(required=True)
    data.add_argument("--images", type=image_folder, help="image folder (torchvision: and timm: models)")
    data.add_argument("--text", type=existing_file, help="text file, one text a line (hf: models)")
    profile.add_argument("--layers", default="auto", help="'auto' or comma-separated module names")
    profile.add_argument("--n-images", type=positive_int, default=2000, help="images drawn at random (default: 2000)")
    profile.add_argument("--n-texts", type=positive_int, default=2000, help="texts drawn at random (default: 2000)")
    profile.add_argument(
        "--pooling",
        choices=POOLINGS,
        default="auto",
        help="how a layer's tokens become one point: auto (default: mean over real tokens for texts, "
        "flattened for images), mean, last, first, max, tokens (every token a point), flatten",
    )
    profile.add_argument(
        "--max-length",
        type=positive_int,
        default=None,
        help="cut texts to their first N tokens (default: texts longer than the model's limit are an error)",
    )
    profile.add_argument("--batch-size", type=positive_int, default=64, help="samples per forward pass (default: 64)")
    profile.add_argument(
        "--n-resamples",
        type=resample_count,
        default=5,
        help="random subsamples behind the error bars: 0 (none) or at least 2 (default: 5)",
    )
    profile.add_argument(
        "--subsample", type=fraction, default=0.9, help="fraction of the images in each subsample (default: 0.9)"
    )
    profile.add_argument(
        "--estimator",
        choices=["twonn", "gride", "abide", "agride"],
        default="twonn",
        help="twonn (default: TwoNN, linear fit), gride (GRIDE at the ranks of --ranks), abide or agride (ABIDE's "
        "binomial or GRIDE estimate at each point's own scale); profile.csv gives each estimate's scale",
    )
    profile.add_argument("--ranks", type=rank_pair, default=(2, 4), help="GRIDE's neighbour ranks n1,n2 (default: 2,4)")
    profile.add_argument(
        "--compare",
        type=measure_list,
        default=None,
        help="measures between every pair of layers, comma-separated: imbalance, overlap, cka; each is written "
        "to NAME.csv and NAME.png (with --images, profile.csv also gains the label overlap of the classes)",
    )
    profile.add_argument(
        "--per-sample",
        action="store_true",
        help="with --text: one ID per text and layer, of the text's own tokens (pooling 'tokens'), written to "
        "samples.csv; profile.csv is then the mean over texts",
    )
    profile.add_argument(
        "--per-class",
        action="store_true",
        help="with --images: profile each class (sub-folder) on its own, write class_profiles.csv, and make "
        "profile.csv their mean (the seed paper's protocol)",
    )
    profile.add_argument("--out", type=output_folder, default=Path("."), help="folder for profile.csv and profile.png")
    profile.add_argument(
        "--cache",
        type=Path,
        default=None,
        metavar="DIR",
        help="keep every layer's activations in DIR: the same model on the same data later runs no forward "
        "pass (another --estimator, --n-resamples or --compare included), and a stopped run resumes",
    )
    profile.add_argument(
        "--seed", type=int, default=0, help="seed of the image draw, of random weights and of the subsamples"
    )
    profile.add_argument("--device", type=device_name, default="auto", help="auto (default), cpu, cuda or cuda:N")
    profile.add_argument("--quiet", action="store_true", help="no progress bars")
    layers = commands.add_parser(
        "layers",
        help="list a model's layers",
        description="Print a model's layers in forward order, with their output shapes, for one image "
        "of --image-size pixels (or one short text for hf: models); the names are what --layers takes.",
    )
    _model_arguments(layers)
    layers.add_argument("--image-size", type=positive_int, default=224, help="image side in pixels (default: 224)")
    layers.add_argument("--device", type=device_name, default="auto", help="auto (default), cpu, cuda or cuda:N")
    return parser


def _model_arguments(command):
    command.add_argument(
        "--model",
        required=True,
        help="torchvision:NAME (e.g. torchvision:resnet18), timm:NAME (e.g. timm:vit_tiny_patch16_224), or "
        "hf:NAME_OR_PATH, a Hugging Face model saved with save_pretrained or in the local cache",
    )
    weights = command.add_mutually_exclusive_group()
    weights.add_argument(
        "--weights",
        default=None,
        help="torchvision weights enum member, e.g. DEFAULT or IMAGENET1K_V1, read from the local torch "
        "cache (default: random initialisation)",
    )
    weights.add_argument(
        "--checkpoint",
        type=existing_file,
        default=None,
        help="a state dict saved with torch.save(model.state_dict(), PATH), loaded with weights_only=True",
    )


def _argument_type(function):
    """An argparse type from a check that raises ValueError: its message becomes argparse's one-line error."""

    def check(text):
        try:
            return function(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    check.__name__ = function.__name__.replace("_", " ")
    return check


@_argument_type
def positive_int(text):
    value = int(text)
    if value < 1:
        raise ValueError(f"{text} is not a positive integer")
    return value


@_argument_type
def resample_count(text):
    value = int(text)
    if value < 0 or value == 1:
        raise ValueError(f"{text}: use 0 (no error bars) or at least 2 subsamples")
    return value


@_argument_type
def fraction(text):
    value = float(text)
    if not 0 < value < 1:
        raise ValueError(f"{text} is not a fraction strictly between 0 and 1")
    return value


@_argument_type
def rank_pair(text):
    try:
        n1, n2 = (int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"{text!r}: give two ranks as n1,n2, e.g. 2,4") from None
    if not 1 <= n1 < n2:
        raise ValueError(f"{text}: GRIDE needs 1 <= n1 < n2")
    return n1, n2


_MEASURES = ("imbalance", "overlap", "cka")


@_argument_type
def measure_list(text):
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in _MEASURES]
    if unknown or not names:
        raise ValueError(f"{text!r}: give measures among {', '.join(_MEASURES)}, comma-separated")
    if len(set(names)) < len(names):
        raise ValueError(f"{text!r} names a measure twice")
    return names


@_argument_type
def output_folder(text):
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{text} is a file; give a folder (it is created if missing)")
    return path


@_argument_type
def image_folder(text):
    path = Path(text)
    if not path.is_dir():
        raise ValueError(f"{text} is not a folder")
    return path


@_argument_type
def existing_file(text):
    path = Path(text)
    if not path.is_file():
        raise ValueError(f"{text} is not a file")
    return path


@_argument_type
def device_name(text):
    from sklearn_id._device import resolve_device

    return resolve_device(text)


def run_main_job(args):
    """Train, profile trained and untrained, print the tables, save the figure."""
    import torch
    from sklearn.model_selection import train_test_split

    from sklearn_id import DepthProfile
    from sklearn_id.datasets import load_digit_images
    from sklearn_id.models import EpochProgressBar, make_digits_classifier
    from sklearn_id.plotting import plot_depth_profile

    images, labels = load_digit_images()
    train_images, test_images, train_labels, test_labels = train_test_split(
        images, labels, test_size=0.3, stratify=labels, random_state=args.seed
    )
    device = args.device
    # The same seed before each initialisation: the untrained network is the trained one's start.
    torch.manual_seed(args.seed)
    untrained = make_digits_classifier(max_epochs=args.epochs, device=device).initialize()
    torch.manual_seed(args.seed)
    callbacks = [] if args.quiet else [EpochProgressBar()]
    trained = make_digits_classifier(max_epochs=args.epochs, device=device, callbacks=callbacks)
    trained.fit(train_images, train_labels)  # raises TrainingInterrupted on Ctrl-C, which skorch would swallow
    accuracy = trained.score(test_images, test_labels)

    profiles = {}
    for name, net in [("trained", trained), ("untrained", untrained)]:
        profile = DepthProfile(net, random_state=args.seed, device=device, progress=not args.quiet)
        profiles[name] = profile.fit(train_images).profile_
    error_bars = profile.error_bars_note()
    print(f"\nDigitsCNN, {args.epochs} epochs: test accuracy {accuracy:.3f} on {len(test_labels)} held-out digits")
    print(
        f"Profiles on the {len(train_labels)} training digits; ID: TwoNN, +/- the std over "
        f"{profile.n_resamples} random {profile.subsample:.0%} subsamples."
    )
    for name, profile in profiles.items():
        print(f"\n{name}\n{format_profile(profile)}")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "depth_profile.png"
    ax = plot_depth_profile(profiles, error_bars=error_bars)
    ax.set_title(f"DigitsCNN on scikit-learn's digits ({len(train_labels)} training images): trained vs untrained")
    ax.figure.savefig(path, dpi=120, bbox_inches="tight")
    print(f"\nwrote {path}")
