"""``python -m sklearn_id profile``: a torchvision model's depth profile on a folder of images."""

import difflib
from pathlib import Path

from sklearn_id._cli_common import UsageError, checked_device, format_profile


def run_profile(args):
    """Load the model and the images, profile, write ``profile.csv`` and ``profile.png``."""
    import torch

    from sklearn_id import DepthProfile

    device = checked_device(args.device)
    model, transform = load_torchvision_model(args.model, args.weights)
    dataset = load_image_folder(args.images, transform)
    n_images = min(args.n_images, len(dataset))
    if n_images < len(dataset):
        generator = torch.Generator().manual_seed(args.seed)
        chosen = torch.randperm(len(dataset), generator=generator)[:n_images].sort().values
        dataset = torch.utils.data.Subset(dataset, chosen.tolist())
    layers = args.layers if args.layers == "auto" else [name.strip() for name in args.layers.split(",")]
    profile = DepthProfile(
        model, layers=layers, batch_size=args.batch_size, device=device, random_state=args.seed, progress=True
    )
    try:
        profile.fit(dataset)
    except ValueError as error:
        raise UsageError(str(error)) from error
    args.out.mkdir(parents=True, exist_ok=True)
    profile.profile_.to_csv(args.out / "profile.csv", index=False)
    ax = profile.plot()
    ax.set_title(f"{args.model} on {n_images} images of {args.images.name}")
    ax.figure.savefig(args.out / "profile.png", dpi=120, bbox_inches="tight")
    print(f"{args.model}, weights {args.weights or 'random'}, {n_images} images\n{format_profile(profile.profile_)}")
    print(f"\nwrote {args.out / 'profile.csv'} and {args.out / 'profile.png'}")


def load_torchvision_model(spec, weights_name):
    """The model named ``torchvision:<name>`` and the preprocessing of its weights.

    Weights are read from the local torch cache only (``torch.hub.get_dir()``);
    when they are not there, a :class:`UsageError` says where to put them,
    rather than a download that fails offline.
    """
    import torch
    import torchvision

    source, _, name = spec.partition(":")
    if source != "torchvision" or not name:
        raise UsageError(f"--model takes torchvision:<name>, e.g. torchvision:resnet18; got {spec!r}.")
    available = torchvision.models.list_models(module=torchvision.models)
    if name not in available:
        close = difflib.get_close_matches(name, available, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UsageError(f"torchvision has no classification model {name!r}.{hint}")
    weights_enum = torchvision.models.get_model_weights(name)
    weights = None
    if weights_name is not None:
        try:
            weights = weights_enum[weights_name]
        except KeyError:
            choices = ", ".join(weights_enum.__members__)
            raise UsageError(f"{name} has no weights {weights_name!r}; choose one of {choices}.") from None
        cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
        if not cached.is_file():
            raise UsageError(
                f"The weights {weights} are not in the local torch cache ({cached}). Download them "
                "once where there is network access (torchvision.models.get_model"
                f"({name!r}, weights={weights_name!r})) and copy the file there, or leave out "
                "--weights to profile the randomly initialised network."
            )
    model = torchvision.models.get_model(name, weights=weights)
    # The preprocessing of the weights' family, which is known without downloading.
    transform = (weights or weights_enum.DEFAULT).transforms()
    return model, transform


def load_image_folder(folder, transform):
    """torchvision's ``ImageFolder`` over ``folder``, with a clear error when it holds no images."""
    from torchvision.datasets import ImageFolder

    if not folder.is_dir():
        raise UsageError(f"--images {folder} is not a folder.")
    try:
        return ImageFolder(folder, transform=transform)
    except (FileNotFoundError, ValueError) as error:
        raise UsageError(
            f"No images in {folder}: ImageFolder expects one sub-folder per class holding image "
            f"files ({error})."
        ) from error
