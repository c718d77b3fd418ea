"""The command line: the seed paper's main finding on built-in data, and ``profile`` for your own images."""

import argparse
from pathlib import Path

from sklearn_id._cli_common import UsageError, checked_device, format_profile
from sklearn_id._cli_profile import run_profile


def main(argv=None):
    """Run the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "profile":
            run_profile(args)
        else:
            run_main_job(args)
    except UsageError as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
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
    parser.add_argument("--out", type=Path, default=Path("."), help="folder for the figure (default: .)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split, the weights and the subsamples")
    parser.add_argument("--epochs", type=int, default=20, help="training epochs (default: 20)")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    commands = parser.add_subparsers(dest="command", metavar="{profile}")
    profile = commands.add_parser(
        "profile",
        help="profile a torchvision model on a folder of images",
        description=(
            "Profile a torchvision model's layers on an image folder (one sub-folder per "
            "class, as torchvision's ImageFolder reads it); writes profile.csv and profile.png."
        ),
    )
    profile.add_argument("--model", required=True, help="torchvision:<name>, e.g. torchvision:resnet18")
    profile.add_argument(
        "--weights", default=None,
        help="weights enum member, e.g. DEFAULT or IMAGENET1K_V1, read from the local torch cache "
        "(default: random initialisation)",
    )
    profile.add_argument("--images", type=Path, required=True, help="image folder")
    profile.add_argument("--layers", default="auto", help="'auto' or comma-separated module names")
    profile.add_argument("--n-images", type=int, default=2000, help="images drawn at random (default: 2000)")
    profile.add_argument("--batch-size", type=int, default=64)
    profile.add_argument("--out", type=Path, default=Path("."), help="folder for profile.csv and profile.png")
    profile.add_argument("--seed", type=int, default=0)
    profile.add_argument("--device", default="auto")
    return parser


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
    device = checked_device(args.device)
    # The same seed before each initialisation: the untrained network is the trained one's start.
    torch.manual_seed(args.seed)
    untrained = make_digits_classifier(max_epochs=args.epochs, device=device).initialize()
    torch.manual_seed(args.seed)
    trained = make_digits_classifier(max_epochs=args.epochs, device=device, callbacks=[EpochProgressBar()])
    trained.fit(train_images, train_labels)
    accuracy = trained.score(test_images, test_labels)

    profiles = {}
    for name, net in [("trained", trained), ("untrained", untrained)]:
        profile = DepthProfile(net, random_state=args.seed, device=device, progress=True)
        profiles[name] = profile.fit(train_images).profile_
    print(f"\nDigitsCNN, {args.epochs} epochs: test accuracy {accuracy:.3f} on {len(test_labels)} held-out digits")
    print(
        f"Profiles on the {len(train_labels)} training digits; ID: TwoNN, +/- the std over "
        f"{profile.n_resamples} random {profile.subsample:.0%} subsamples."
    )
    for name, profile in profiles.items():
        print(f"\n{name}\n{format_profile(profile)}")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "depth_profile.png"
    ax = plot_depth_profile(profiles)
    ax.set_title("DigitsCNN on scikit-learn digits: trained vs untrained")
    ax.figure.savefig(path, dpi=120, bbox_inches="tight")
    print(f"\nwrote {path}")
