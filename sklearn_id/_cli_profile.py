"""``python -m sklearn_id profile`` and ``layers``: a model's depth profile on images or texts, and its layers."""

import sys
import warnings
from contextlib import contextmanager

from sklearn_id._cli_common import UsageError, format_profile
from sklearn_id._cli_models import load_model, model_kind
from sklearn_id._inputs import model_max_length


def run_profile(args):
    """Load the model and the data, profile, write ``profile.csv`` and ``profile.png``."""
    # The data's problems first: they are cheaper to find than a model is to load.
    if model_kind(args.model) == "text":
        if args.text is None:
            raise UsageError(f"{args.model} reads texts: pass --text FILE (one text a line).")
        if args.per_class:
            raise UsageError("--per-class needs labels: it takes --images, whose sub-folders are the classes.")
        if args.per_sample and args.pooling not in ("auto", "tokens"):
            raise UsageError(f"--per-sample estimates each text's own tokens: leave out --pooling {args.pooling}.")
        texts, what = _texts(args)
        with _seeded_weights(args.seed):
            loaded = load_model(args.model, args.weights, args.checkpoint, progress=not args.quiet)
        data, labels = texts, None
    else:
        if args.images is None:
            raise UsageError(f"{args.model} reads images: pass --images FOLDER.")
        with _seeded_weights(args.seed):
            loaded = load_model(args.model, args.weights, args.checkpoint, progress=not args.quiet)
        if args.per_sample:
            raise UsageError("--per-sample takes --text: one ID per text, of its own tokens.")
        data, what, labels = _images(args, loaded.transform)
    profile = _depth_profile(args, loaded)
    estimator = profile.id_estimator
    # Labels serve the per-class profile, and the label overlap when there are classes to tell apart.
    with_labels = args.per_class or (args.compare is not None and labels is not None and len(set(labels)) > 1)
    try:
        with warnings.catch_warnings(record=True) as recorded:
            warnings.simplefilter("default")
            profile.fit(data, labels if with_labels else None)
    except ValueError as error:
        hint = " Pass --max-length N to cut longer texts to N tokens." if "max_length" in str(error) else ""
        raise UsageError(f"{error}{hint}") from error
    except OSError as error:  # PIL's UnidentifiedImageError among them: a file that is not an image
        raise UsageError(f"An image in {args.images} could not be read ({error}); remove or repair it.") from error
    args.out.mkdir(parents=True, exist_ok=True)
    profile.profile_.to_csv(args.out / "profile.csv", index=False)
    weights = _weights_label(args)
    figure = _write_figure(profile, f"{args.model} ({weights}) on {what}", args.out / "profile.png")
    print(f"{args.model}, {weights}, {what}, {estimator!r}\n{format_profile(profile.profile_)}")
    written = [
        args.out / "profile.csv",
        *figure,
        *_write_extras(args, profile, f"{args.model} on {what}"),
    ]
    print(f"\nwrote {', '.join(str(path) for path in written)}")
    _report(recorded, profile.profile_)


def _write_figure(profile, title, path):
    """``profile.png``, or none, with a one-line warning, when no layer has an ID to draw; the paths written."""
    try:
        ax = profile.plot()
    except ValueError as error:
        print(f"warning: no figure: {error}", file=sys.stderr)
        return []
    ax.set_title(title)
    ax.figure.savefig(path, dpi=120, bbox_inches="tight")
    return [path]


def _write_extras(args, profile, title):
    """The per-class table and each comparison's matrix (printed, as CSV and as a heat map); the paths written."""
    import matplotlib.pyplot as plt

    from sklearn_id.plotting import plot_comparison

    written = []
    if args.per_class:
        profile.class_profiles_.to_csv(args.out / "class_profiles.csv", index=False)
        written.append(args.out / "class_profiles.csv")
    if args.per_sample:
        profile.sample_profiles_.to_csv(args.out / "samples.csv", index=False)
        written.append(args.out / "samples.csv")
    for name, matrix in getattr(profile, "comparisons_", {}).items():
        print(f"\n{name} (rows: from, columns: to)\n{matrix.to_string(float_format=lambda value: f'{value:.3f}')}")
        matrix.to_csv(args.out / f"{name}.csv")
        ax = plot_comparison(matrix, title=f"{name}: {title}")
        ax.figure.savefig(args.out / f"{name}.png", dpi=120, bbox_inches="tight")
        plt.close(ax.figure)
        written += [args.out / f"{name}.csv", args.out / f"{name}.png"]
    return written


def _depth_profile(args, loaded):
    """The DepthProfile the command's flags describe."""
    from sklearn_id import ABIDEDimension, DepthProfile, GRIDEDimension, TwoNNDimension

    layers = args.layers if args.layers == "auto" else [name.strip() for name in args.layers.split(",")]
    n1, n2 = args.ranks
    estimator = {
        "twonn": TwoNNDimension(),
        "gride": GRIDEDimension(n1=n1, n2=n2),
        "abide": ABIDEDimension(),
        "agride": ABIDEDimension(method="gride"),
    }[args.estimator]
    limit = model_max_length(loaded.model, loaded.tokenizer)
    if args.max_length is not None and limit is not None and args.max_length > limit:
        raise UsageError(
            f"--max-length {args.max_length} is more than the {limit} positions {args.model} takes: pass "
            f"--max-length {limit} or less."
        )
    profile = DepthProfile(
        loaded.model,
        layers=layers,
        id_estimator=estimator,
        n_resamples=args.n_resamples,
        subsample=args.subsample,
        batch_size=args.batch_size,
        device=args.device,
        random_state=args.seed,
        progress=not args.quiet,
        pooling="tokens" if args.per_sample else args.pooling,
        tokenizer=loaded.tokenizer,
        max_length=args.max_length,
        truncation=args.max_length is not None,
        compare=args.compare,
        per_class=args.per_class,
        per_sample=args.per_sample,
        cache=args.cache,
    )
    return profile


def _report(recorded, table):
    """The warnings of a fit, after the progress bars: undersampling once, with its count; the others as they came."""
    from sklearn_id import UndersampledWarning

    for warning in recorded:
        if not issubclass(warning.category, UndersampledWarning):
            warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
    flagged = table.loc[table["undersampled"].astype(bool), "layer"].tolist()
    if flagged:
        print(
            f"warning: {len(flagged)} of {len(table)} layers are undersampled ({', '.join(flagged)}): too few "
            "points for their estimates, marked * in the table; profile more samples, or read them as bounds.",
            file=sys.stderr,
        )


@contextmanager
def _seeded_weights(seed):
    """A model built with random weights gets the same ones for the same ``--seed``; torch's generator is restored."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _images(args, transform):
    """The image folder, with ``--n-images`` drawn at random when it holds more, and each image's class."""
    import torch

    dataset = load_image_folder(args.images, transform)
    labels = [dataset.classes[target] for target in dataset.targets]
    n_images = min(args.n_images, len(dataset))
    if n_images < len(dataset):
        generator = torch.Generator().manual_seed(args.seed)
        chosen = torch.randperm(len(dataset), generator=generator)[:n_images].sort().values.tolist()
        dataset, labels = torch.utils.data.Subset(dataset, chosen), [labels[i] for i in chosen]
    return dataset, f"{n_images} images of {args.images.name}", labels


def _texts(args):
    """The file's texts, one a line (blank lines skipped), with ``--n-texts`` drawn at random when it holds more."""
    import numpy as np

    try:
        # One text a line: only newlines end one (str.splitlines would also split at form feeds and U+2028).
        lines = args.text.read_text(encoding="utf-8").replace("\r\n", "\n").split("\n")
    except UnicodeDecodeError:
        raise UsageError(f"--text {args.text} is not UTF-8 text.") from None
    texts = [line.strip() for line in lines if line.strip()]
    if not texts:
        raise UsageError(f"--text {args.text} holds no text: write one text a line.")
    if len(texts) > args.n_texts:
        chosen = np.sort(np.random.default_rng(args.seed).choice(len(texts), args.n_texts, replace=False))
        texts = [texts[i] for i in chosen]
    return texts, f"{len(texts)} texts of {args.text.name}"


def run_layers(args):
    """Print the model's layers in forward order, with their output shapes."""
    import torch

    from sklearn_id import list_layers

    loaded = load_model(args.model, args.weights, args.checkpoint, progress=False)
    if loaded.kind == "text":
        example, what = ["An example text."], "one short text"
    else:
        example = torch.zeros(1, 3, args.image_size, args.image_size)
        what = f"one image of {args.image_size} x {args.image_size}"
    try:
        table = list_layers(loaded.model, example, device=args.device, tokenizer=loaded.tokenizer)
    except ValueError as error:
        raise UsageError(f"--image-size {args.image_size}: {error}") from error
    print(f"{args.model}, {_weights_label(args)}, {what}")
    print(table.to_string(index=False))


def _weights_label(args):
    if args.checkpoint:
        return f"weights from {args.checkpoint.name}"
    if args.model.startswith("hf:"):
        return "saved weights"
    return f"weights {args.weights}" if args.weights else "random weights"


def load_image_folder(folder, transform):
    """torchvision's ``ImageFolder`` over ``folder``, with a clear error when it holds no images."""
    from torchvision.datasets import ImageFolder

    if not folder.is_dir():
        raise UsageError(f"--images {folder} is not a folder.")
    try:
        return ImageFolder(folder, transform=transform)
    except (FileNotFoundError, ValueError) as error:
        raise UsageError(
            f"No images in {folder}: ImageFolder expects one sub-folder per class holding image files ({error})."
        ) from error
