"""The depth profile during training: a skorch callback that records it every few epochs.

A module of its own, like :mod:`sklearn_id.models`, because it imports skorch
(and so torch), which ``import sklearn_id`` does not.
"""

from numbers import Integral

from skorch.callbacks import Callback

from sklearn_id._profile import DepthProfile

__all__ = ["DepthProfileCallback", "history_profiles"]


class DepthProfileCallback(Callback):
    """Record the depth profile of a skorch net's module on a fixed probe set every ``every`` epochs.

    At the end of each epoch whose number (counted from 1) is a multiple of
    ``every``, a :class:`DepthProfile` of ``net.module_`` is fitted on
    ``X`` and its table stored in the net's history under ``key``, as a list
    of one dict per layer, so ``net.history`` keeps the "ID during training"
    curve. The same ``random_state`` every time gives the same subsamples at
    every epoch. The module's training mode is restored after each profile,
    so training goes on unchanged.

    Parameters
    ----------
    X : array-like, tensor, torch Dataset or mapping of token arrays
        The probe set, shaped like the net's input.
    every : int, default=1
        Profile every ``every`` epochs.
    key : str, default="depth_profile"
        The history key.
    random_state : int, default=0
        The subsamples' seed, the same at every epoch.
    at_start : bool, default=False
        Also profile the module before training starts, the reference every
        training curve needs: :func:`history_profiles` gives it as epoch 0
        (for a net trained further, as the epochs it had run, unless that
        epoch was profiled already).
    **depth_profile_params
        Other parameters of :class:`DepthProfile` (``layers``,
        ``n_resamples``, ``pca_estimator``, ``device``, ...).

    See Also
    --------
    history_profiles : The recorded profiles as one table.
    sklearn_id.plotting.plot_id_during_training : ID against epoch, per layer.

    Examples
    --------
    >>> import torch
    >>> from sklearn_id.callbacks import DepthProfileCallback, history_profiles
    >>> from sklearn_id.datasets import load_digit_images
    >>> from sklearn_id.models import make_digits_classifier
    >>> images, labels = load_digit_images()
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> callback = DepthProfileCallback(images[:500], every=2, n_resamples=0, pca_estimator=None)
    >>> net = make_digits_classifier(max_epochs=4, callbacks=[callback], device="cpu").fit(images, labels)
    >>> table = history_profiles(net.history)
    >>> sorted(set(table["epoch"])), list(table["layer"][:5])
    ([2, 4], ['input', 'pool1', 'pool2', 'd1', 'output'])
    """

    def __init__(self, X, *, every=1, key="depth_profile", random_state=0, at_start=False, **depth_profile_params):
        self.X = X
        self.every = every
        self.key = key
        self.random_state = random_state
        self.at_start = at_start
        self.depth_profile_params = depth_profile_params

    def initialize(self):
        if not isinstance(self.every, Integral) or self.every < 1:
            raise ValueError(f"every must be a positive int, got {self.every!r}.")
        if "model" in self.depth_profile_params:
            raise TypeError("DepthProfileCallback profiles the net it is given to; do not pass model=.")
        return self

    _OWN = ("X", "every", "key", "random_state", "at_start")

    def get_params(self, deep=True):
        """The callback's parameters, the DepthProfile ones flattened beside its own (for ``clone``)."""
        return {**{name: getattr(self, name) for name in self._OWN}, **self.depth_profile_params}

    def set_params(self, **params):
        """Set the callback's own parameters, or DepthProfile ones (as skorch's ``set_params`` routes them)."""
        for name, value in params.items():
            if name in self._OWN:
                setattr(self, name, value)
            else:
                self.depth_profile_params[name] = value
        return self

    def on_train_begin(self, net, **kwargs):
        # The history has no row before an epoch: the start profile is recorded in the first epoch's row.
        # A net trained further whose last epoch was profiled already has it.
        profiled = len(net.history) > 0 and self.key in net.history[-1]
        self._start = (len(net.history), self._profile(net)) if self.at_start and not profiled else None

    def on_epoch_end(self, net, **kwargs):
        if getattr(self, "_start", None) is not None:
            epoch, records = self._start
            net.history.record(f"{self.key}_at_start", {"epoch": epoch, "profile": records})
            self._start = None
        if len(net.history) % self.every:
            return
        net.history.record(self.key, self._profile(net))

    def _profile(self, net):
        params = {"device": net.device, **self.depth_profile_params}
        profile = DepthProfile(net.module_, random_state=self.random_state, **params).fit(self.X)
        return profile.profile_.to_dict("records")


def history_profiles(history, key="depth_profile"):
    """The profiles a :class:`DepthProfileCallback` recorded, as one table.

    Parameters
    ----------
    history : skorch History, or a fitted skorch net
    key : str, default="depth_profile"

    Returns
    -------
    table : pandas.DataFrame
        Columns ``epoch``, then the profile's (``layer``,
        ``relative_depth``, ``id``, ...): one row per layer and recorded
        epoch, the profile before training (``at_start=True``) first.
    """
    import pandas as pd

    history = getattr(history, "history", history)
    start = [entry[f"{key}_at_start"] for entry in history if f"{key}_at_start" in entry]
    rows = [{"epoch": recorded["epoch"], **row} for recorded in start for row in recorded["profile"]]
    rows += [{"epoch": entry["epoch"], **row} for entry in history if key in entry for row in entry[key]]
    if not rows:
        raise ValueError(
            f"The history has no {key!r} entries: fit the net with a DepthProfileCallback(..., key={key!r})."
        )
    return pd.DataFrame(rows)
