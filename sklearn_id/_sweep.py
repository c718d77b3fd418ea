"""profile_sweep: one depth profile for each of many models or checkpoints, as joblib tasks."""

from collections.abc import Mapping
from numbers import Integral
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed, parallel_config
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import validate_params

from sklearn_id._profile import DepthProfile
from sklearn_id._state_dict import load_into, read_state_dict

__all__ = ["SweepError", "profile_sweep"]


class SweepError(RuntimeError):
    """Some models of a :func:`profile_sweep` failed; the others' rows are kept.

    Attributes
    ----------
    partial : pandas.DataFrame
        The sweep's table for the models that finished.
    errors : dict of str to str
        For each model that failed or did not finish, why.
    """

    def __init__(self, message, partial, errors):
        super().__init__(message)
        self.partial = partial
        self.errors = errors

    def __reduce__(self):
        # Pickled whole, so that a sweep run in a worker process raises it, not a broken pool.
        return type(self), (str(self), self.partial, self.errors)


@validate_params(
    {
        "models": [Mapping],
        "X": [object],
        "y": ["array-like", None],
        "architecture": [callable, None],
        "n_jobs": [Integral, None],
    },
    prefer_skip_nested_validation=True,
)
def profile_sweep(models, X, y=None, *, architecture=None, n_jobs=None, **depth_profile_params):
    """Depth profiles of many models or checkpoints on the same samples and subsamples, in one table.

    Each model is one joblib task, so the sweep runs on any joblib backend:
    processes on this machine (``n_jobs``), or a Dask cluster inside
    ``joblib.parallel_config(backend="dask")``. A checkpoint is loaded
    inside its own task, so no task holds every model. On a Dask cluster,
    ``X`` and ``y`` are sent to each worker once, before the first task, and
    the tasks carry only a token for them.

    Parameters
    ----------
    models : mapping of str to model, state dict or path
        Named models: ``torch.nn.Module`` or fitted skorch nets, state dicts
        (mappings of parameter names to tensors), or paths to files saved
        with ``torch.save(model.state_dict(), path)``, loaded with
        ``torch.load(path, weights_only=True)`` into a fresh
        ``architecture()``. As on the command line, a checkpoint that wraps
        the state dict (``{"state_dict": ...}``, ``{"model": ...}``) is
        unwrapped and DataParallel's ``module.`` prefix dropped.
    X : array-like, tensor, torch Dataset, mapping of token arrays, or list of str
        The samples every model is profiled on, as :class:`DepthProfile`
        takes them.
    y : array-like of shape (n_samples,), default=None
        Labels for a probe.
    architecture : callable, default=None
        Returns a new ``torch.nn.Module`` to load a state dict or path into
        (a class such as ``DigitsCNN``, or a ``functools.partial``); needed
        when ``models`` holds checkpoints. It must be picklable for process
        and cluster backends (a class or function defined in a module).
    n_jobs : int, default=None
        Models profiled at once, through joblib (the active backend
        applies). Each profile then estimates its layers one after the
        other. Under joblib's Dask backend, each model is one future on
        the backend's client instead and the cluster's size sets how many
        run at once: a model whose workers die then fails alone, by name.
    **depth_profile_params
        Parameters of :class:`DepthProfile` (``layers``, ``n_resamples``,
        ``device``, ...), the same for every model. ``random_state`` must be
        an int, or None (an int is drawn once), so that every model gets the
        same subsamples.

    Returns
    -------
    table : pandas.DataFrame
        The ``profile_`` of each model with a first column ``model``, models
        in the order of ``models``: ``model``, ``layer``,
        ``relative_depth``, ``n_features``, ``id``, ``id_std``, ``pca_id``,
        ``undersampled``, and ``last_hidden`` (True on the row whose ID is
        the model's ``last_hidden_layer_``).

    Raises
    ------
    SweepError
        When a model fails (a checkpoint that does not load, a layer it does
        not have, a worker that dies); the message names each such model,
        and the error's ``partial`` holds the table of the models that
        finished.

    Examples
    --------
    >>> import torch
    >>> from sklearn_id import profile_sweep
    >>> from sklearn_id.datasets import load_digit_images
    >>> from sklearn_id.models import DigitsCNN
    >>> images, _ = load_digit_images()
    >>> checkpoints = {}
    >>> for seed in (0, 1):
    ...     torch.manual_seed(seed)  # doctest: +ELLIPSIS
    ...     checkpoints[f"seed {seed}"] = DigitsCNN().state_dict()
    <torch._C.Generator object at ...>
    <torch._C.Generator object at ...>
    >>> table = profile_sweep(checkpoints, images, architecture=DigitsCNN, n_resamples=0, device="cpu")
    >>> table.groupby("model")["layer"].apply(list).tolist()[0]
    ['input', 'pool1', 'pool2', 'd1', 'output']
    """
    _check_settings(models, X, n_jobs, depth_profile_params)
    seed = depth_profile_params.get("random_state")
    if seed is not None and not isinstance(seed, Integral):
        raise ValueError(
            "random_state must be an int or None in a sweep: every model must get the same subsamples, and "
            "a RandomState instance would give each task other draws."
        )
    if seed is None:
        seed = int(check_random_state(None).randint(np.iinfo(np.int32).max))
    params = {**depth_profile_params, "random_state": seed}
    checkpoints = [name for name, spec in models.items() if _is_checkpoint(spec)]
    if checkpoints and architecture is None:
        raise ValueError(
            f"Model(s) {checkpoints[:3]} are checkpoints: pass architecture=... (a callable returning the "
            "module to load them into, such as the model's class)."
        )
    tables, errors = {}, {}
    try:
        for name, table, error in _run(models, architecture, (X, y), params, n_jobs):
            if error is None:
                tables[name] = table
            else:
                errors[name] = error
    except Exception as error:  # a worker died: loky's TerminatedWorkerError, Dask's KilledWorker, ...
        unfinished = [name for name in models if name not in tables and name not in errors]
        for name in unfinished:
            errors[name] = f"not finished: {type(error).__name__}: {_first_line(error)}"
        partial = _joined(tables, models)
        errors = _in_given_order(errors, models)
        raise SweepError(
            f"A worker failed during the sweep ({type(error).__name__}: {_first_line(error)}) while profiling "
            f"one of {unfinished}; {len(tables)} model(s) finished, and their rows are in this error's "
            "partial table.",
            partial,
            errors,
        ) from error
    if errors:
        errors = _in_given_order(errors, models)
        lines = "; ".join(f"{name!r}: {message}" for name, message in errors.items())
        raise SweepError(
            f"{len(errors)} of {len(models)} model(s) failed: {lines}. The {len(tables)} that finished are in "
            "this error's partial table.",
            _joined(tables, models),
            errors,
        )
    return _joined(tables, models)


def _in_given_order(errors, models):
    """The failures in the order the user gave the models, not the order in which they finished."""
    return {name: errors[name] for name in models if name in errors}


def _is_checkpoint(spec):
    return isinstance(spec, (str, Path, Mapping))


def _first_line(error, limit=300):
    """The error's message on one line, cut at ``limit`` characters."""
    text = " ".join(str(error).split())
    return (text[: limit - 3] + "..." if len(text) > limit else text) or type(error).__name__


def _joined(tables, models):
    import pandas as pd

    ordered = [tables[name] for name in models if name in tables]
    if not ordered:
        return pd.DataFrame(columns=["model", "layer", "relative_depth", "id", "id_std", "pca_id"])
    return pd.concat(ordered, ignore_index=True)


def _run(models, architecture, data, params, n_jobs):
    """Yield ``(name, table, error)`` for each model as it finishes: one joblib task each, or one Dask future each."""
    from joblib.parallel import get_active_backend

    backend, _ = get_active_backend()
    calls = [(name, (name, spec, architecture, params)) for name, spec in models.items()]
    if type(backend).__name__ == "DaskDistributedBackend":
        from sklearn_id._dask import run_on_cluster

        for name, result, error in run_on_cluster(backend.client, _profile_one, calls, data):
            yield result if error is None else (name, None, f"{type(error).__name__}: {_first_line(error)}")
        return
    tasks = (delayed(_profile_one)(*args, data) for _, args in calls)
    yield from Parallel(n_jobs=n_jobs, return_as="generator_unordered")(tasks)


def _profile_one(name, spec, architecture, params, data):
    """One task: build or load the model, profile it; ``(name, table, None)`` or ``(name, None, why)``."""
    try:
        X, y = data if isinstance(data, tuple) else data.get()
        model = _load(spec, architecture) if _is_checkpoint(spec) else spec
        # The profile's own joblib calls run here, in this task: on a Dask worker, joblib would
        # otherwise hand them back to the cluster, shipping each layer's activations between workers.
        with parallel_config(backend="sequential"):
            profile = DepthProfile(model, **params).fit(X, y)
    except Exception as error:  # any failure of this model is reported with its name; the others go on
        return name, None, f"{type(error).__name__}: {_first_line(error)}"
    table = profile.profile_.copy()
    table.insert(0, "model", name)
    table["last_hidden"] = table["layer"] == profile.last_hidden_layer_
    return name, table, None


def _load(spec, architecture):
    """A fresh module from ``architecture()`` with the checkpoint's weights, read as the command line reads them."""
    module = architecture()
    return load_into(module, read_state_dict(spec), type(module).__name__)


def _check_settings(models, X, n_jobs, depth_profile_params):
    """Settings that would fail every model, checked once before any of them runs."""
    from collections.abc import Iterator

    from sklearn_id._profile import DepthProfile

    if not models:
        raise ValueError("models is empty: pass a mapping of names to models, state dicts or checkpoint paths.")
    if "model" in depth_profile_params:
        raise TypeError("profile_sweep takes the models in its first argument, not as model=.")
    if n_jobs == 0:
        raise ValueError("n_jobs=0 runs nothing: pass None (one process), a number of processes, or -1 for all cores.")
    if isinstance(X, Iterator):
        raise TypeError(
            f"X is an iterator ({type(X).__name__}), which can be read once, but a sweep reads it for every "
            "model: pass a list, an array or a Dataset."
        )
    try:
        template = DepthProfile(None, **depth_profile_params)
    except TypeError as error:
        raise TypeError(f"{error}: profile_sweep passes its keywords to DepthProfile; check their names.") from None
    template._validate_params()
