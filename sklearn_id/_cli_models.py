"""Models named on the command line: ``torchvision:NAME``, ``timm:NAME``, ``hf:NAME_OR_PATH``, from local files only."""

import difflib
from dataclasses import dataclass
from pathlib import Path

from sklearn_id._cli_common import UsageError
from sklearn_id._state_dict import load_into, read_state_dict

__all__ = ["LoadedModel", "load_model", "load_state_dict", "load_torchvision_model", "model_kind"]

SOURCES = ("torchvision", "timm", "hf")


@dataclass
class LoadedModel:
    """A model ready to profile: the module, what it reads, and how its inputs are prepared."""

    model: object
    kind: str  # "image" or "text"
    transform: object = None  # images: the preprocessing
    tokenizer: object = None  # texts: the tokenizer


def model_kind(spec):
    """What the model named ``spec`` reads: ``"text"`` for ``hf:`` models, ``"image"`` for the others."""
    source, _, name = spec.partition(":")
    if source not in SOURCES or not name:
        raise UsageError(
            f"--model takes torchvision:NAME, timm:NAME or hf:NAME_OR_PATH, e.g. torchvision:resnet18; got {spec!r}."
        )
    return "text" if source == "hf" else "image"


def load_model(spec, weights=None, checkpoint=None, progress=True):
    """The model ``spec`` names (``torchvision:``, ``timm:`` or ``hf:``), with its weights.

    Nothing is downloaded: torchvision weights come from the local torch
    cache, Hugging Face models from a folder saved with ``save_pretrained``
    or the local Hugging Face cache; a model that is not there is a
    :class:`UsageError` that says how to get it.
    """
    model_kind(spec)
    source, _, name = spec.partition(":")
    state_dict = load_state_dict(checkpoint) if checkpoint else None
    if source == "torchvision":
        model, transform = load_torchvision_model(spec, weights, state_dict)
        return LoadedModel(model, "image", transform=transform)
    if source == "timm":
        return _load_timm(name, weights, state_dict)
    if weights is not None or state_dict is not None:
        raise UsageError(
            "hf: models bring their own weights (the folder or cached model); leave out --weights and --checkpoint."
        )
    return _load_hf(name, progress)


def _load_timm(name, weights, state_dict):
    try:
        import timm
        from timm.data import create_transform, resolve_data_config
    except ImportError:
        raise UsageError("timm: models need timm; install it with pip install 'sklearn-id[timm]'.") from None
    if weights is not None:
        raise UsageError(
            "timm: models take their weights with --checkpoint FILE (a state dict saved with "
            "torch.save(model.state_dict(), FILE)); --weights is for torchvision:."
        )
    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UsageError(f"timm has no model {name!r}.{hint}")
    model = timm.create_model(name, pretrained=False)
    if state_dict is not None:
        _load_into(model, f"timm's {name}", state_dict)
    transform = create_transform(**resolve_data_config({}, model=model))
    return LoadedModel(model, "image", transform=transform)


def _load_hf(name, progress):
    try:
        import transformers
        from transformers.utils import logging
    except ImportError:
        raise UsageError(
            "hf: models need Hugging Face transformers; install it with pip install 'sklearn-id[transformers]'."
        ) from None
    path = Path(name)
    bars = logging.is_progress_bar_enabled()
    if not progress:
        logging.disable_progress_bar()
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(name, local_files_only=True)
        if len(tokenizer) <= len(tokenizer.all_special_tokens):
            raise UsageError(
                f"hf:{name} holds no tokenizer (its vocabulary is empty): save the model's tokenizer there too, "
                "with tokenizer.save_pretrained(folder)."
            )
        model = _load_weights(transformers, name)
    except (OSError, ValueError) as error:
        if path.is_dir():
            raise UsageError(
                f"hf:{name}: the folder holds no model and tokenizer saved with save_pretrained ({_first_line(error)})."
            ) from None
        from huggingface_hub.constants import HF_HUB_CACHE

        raise UsageError(
            f"hf:{name} is neither a local folder nor a model in the local Hugging Face cache ({HF_HUB_CACHE}). "
            f"Download it once where there is network access (hf download {name}), or pass a folder "
            "written by save_pretrained."
        ) from None
    finally:
        if bars:
            logging.enable_progress_bar()
    return LoadedModel(model, "text", tokenizer=tokenizer)


def _load_weights(transformers, name):
    """The saved model; weights that cannot be read, or that do not match their config, are a usage error."""
    import pickle

    from transformers.utils import logging

    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()  # a load report of many lines: the error below says it in one
    try:
        return _saved_class(transformers, name).from_pretrained(name, local_files_only=True)
    except (OSError, ValueError):
        raise  # no model there: said by the caller
    except pickle.UnpicklingError:
        raise UsageError(
            f"hf:{name}: its weights are a pickle that only running its code would load; it was not run. If you "
            "trust the file, load the model in Python and save it again with save_pretrained (as safetensors)."
        ) from None
    except Exception as error:  # a corrupt file, weights of another shape than the config's: any library's error
        if isinstance(error, RuntimeError) and "mismatched" in str(error):
            raise UsageError(
                f"hf:{name}: its weights have other shapes than its config.json gives: save the model again with "
                "save_pretrained, so that the config and the weights that belong together are in the folder."
            ) from None
        raise UsageError(
            f"hf:{name}: its weights could not be loaded ({type(error).__name__}: {_first_line(error)}). Check "
            "that config.json is the one saved with the weights, or save the model again with save_pretrained."
        ) from None
    finally:
        logging.set_verbosity(verbosity)


def _saved_class(transformers, name):
    """The class that saved the model (its config's ``architectures``), so that the layers keep the names of the
    object the user built (``transformer.h.0`` for a ``GPT2LMHeadModel``); ``AutoModel`` when the config names
    none that transformers has."""
    config = transformers.AutoConfig.from_pretrained(name, local_files_only=True)
    names = [arch for arch in (config.architectures or []) if hasattr(transformers, arch)]
    return getattr(transformers, names[0]) if names else transformers.AutoModel


def _first_line(error):
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def load_state_dict(path):
    """The state dict saved at ``path`` (:func:`sklearn_id._state_dict.read_state_dict`), or a :class:`UsageError`."""
    try:
        return read_state_dict(path)
    except ValueError as error:
        raise UsageError(f"--checkpoint {path}: {error}") from None


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
        _load_into(model, f"torchvision's {name}", state_dict)
    # The preprocessing of the weights' family, which is known without downloading.
    transform = (weights or weights_enum.DEFAULT).transforms()
    return model, transform


def _load_into(model, name, state_dict):
    """Load ``state_dict`` into ``model``; a mismatch names the missing, unexpected and misshapen keys."""
    try:
        load_into(model, state_dict, name)
    except ValueError as error:
        raise UsageError(f"--checkpoint {error}") from None
