"""``python -m sklearn_id profile`` and ``layers``: a torchvision model's depth profile on a folder of images, and its layers."""

import difflib
from pathlib import Path

from sklearn_id._cli_common import UsageError, format_profile


def run_profile(args):
    """Load the model and the images, profile, write ``profile.csv`` and ``profile.png``."""
    import torch

    from sklearn_id import DepthProfile, GRIDEDimension, TwoNNDimension

    state_dict = load_state_dict(args.checkpoint) if args.checkpoint else None
    model, transform = load_torchvision_model(args.model, args.weights, state_dict)
    dataset = load_image_folder(args.images, transform)
    n_images = min(args.n_images, len(dataset))
    if n_images < len(dataset):
        generator = torch.Generator().manual_seed(args.seed)
        chosen = torch.randperm(len(dataset), generator=generator)[:n_images].sort().values
        dataset = torch.utils.data.Subset(dataset, chosen.tolist())
    layers = args.layers if args.layers == "auto" else [name.strip() for name in args.layers.split(",")]
    n1, n2 = args.ranks
    estimator = GRIDEDimension(n1=n1, n2=n2) if args.estimator == "gride" else TwoNNDimension()
    profile = DepthProfile(
        model,
        layers=layers,
        id_estimator=estimator,
        n_resamples=args.n_resamples,
        subsample=args.subsample,
        batch_size=args.batch_size,
        device=args.device,
        random_state=args.seed,
        progress=not args.quiet,
    )
    try:
        profile.fit(dataset)
    except ValueError as error:
        raise UsageError(str(error)) from error
    except OSError as error:  # PIL's UnidentifiedImageError among them: a file that is not an image
        raise UsageError(f"An image in {args.images} could not be read ({error}); remove or repair it.") from error
    args.out.mkdir(parents=True, exist_ok=True)
    profile.profile_.to_csv(args.out / "profile.csv", index=False)
    ax = profile.plot()
    weights = _weights_label(args)
    ax.set_title(f"{args.model} ({weights}) on {n_images} images of {args.images.name}")
    ax.figure.savefig(args.out / "profile.png", dpi=120, bbox_inches="tight")
    print(f"{args.model}, {weights}, {n_images} images, {estimator!r}\n{format_profile(profile.profile_)}")
    print(f"\nwrote {args.out / 'profile.csv'} and {args.out / 'profile.png'}")


def run_layers(args):
    """Print the model's layers in forward order, with their output shapes."""
    import torch

    from sklearn_id import list_layers

    state_dict = load_state_dict(args.checkpoint) if args.checkpoint else None
    model, _ = load_torchvision_model(args.model, args.weights, state_dict)
    example = torch.zeros(1, 3, args.image_size, args.image_size)
    try:
        table = list_layers(model, example, device=args.device)
    except ValueError as error:
        raise UsageError(f"--image-size {args.image_size}: {error}") from error
    print(f"{args.model}, {_weights_label(args)}, one image of {args.image_size} x {args.image_size}")
    print(table.to_string(index=False))


def _weights_label(args):
    if args.checkpoint:
        return f"weights from {args.checkpoint.name}"
    return f"weights {args.weights}" if args.weights else "random weights"


def load_state_dict(path):
    """The state dict saved at ``path``, read with ``torch.load(weights_only=True)``.

    A checkpoint that wraps it (``{"state_dict": ...}``, ``{"model": ...}``) is
    unwrapped, and a ``module.`` prefix (``DataParallel``) dropped; anything
    that is not a mapping of tensors is a :class:`UsageError`.
    """
    import torch

    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many kinds for a file that is not a checkpoint
        raise UsageError(f"--checkpoint {path}: not a torch checkpoint that loads with weights_only=True ({error.__class__.__name__}).") from None
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(loaded, dict) and isinstance(loaded.get(key), dict):
            loaded = loaded[key]
    if not isinstance(loaded, dict) or not loaded or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise UsageError(
            f"--checkpoint {path}: not a state dict (a mapping of parameter names to tensors); "
            "save one with torch.save(model.state_dict(), PATH)."
        )
    if all(key.startswith("module.") for key in loaded):
        loaded = {key[len("module.") :]: value for key, value in loaded.items()}
    return loaded


def load_torchvision_model(spec, weights_name, state_dict=None):
    """The model named ``torchvision:<name>`` and the preprocessing of its weights.

    Weights are read from the local torch cache only (``torch.hub.get_dir()``);
    when they are not there, a :class:`UsageError` says where to put them,
    rather than a download that fails offline. A ``state_dict`` is loaded
    into the architecture; a mismatch names the missing and unexpected keys.
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
    if state_dict is not None:
        _load_into(model, name, state_dict)
    # The preprocessing of the weights' family, which is known without downloading.
    transform = (weights or weights_enum.DEFAULT).transforms()
    return model, transform


def _load_into(model, name, state_dict):
    expected = model.state_dict()
    missing = [key for key in expected if key not in state_dict]
    unexpected = [key for key in state_dict if key not in expected]
    wrong_shape = [key for key in expected if key in state_dict and state_dict[key].shape != expected[key].shape]
    if missing or unexpected or wrong_shape:
        parts = [
            f"{label} {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''} ({len(keys)})"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong_shape))
            if keys
        ]
        raise UsageError(f"--checkpoint is not a state dict of torchvision's {name}: {'; '.join(parts)}.")
    model.load_state_dict(state_dict)


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
