"""Figures: ID against relative depth, against accuracy, against scale, and during training.

matplotlib is imported when a function is called, not with the package.
"""

import numpy as np

__all__ = ["plot_comparison", "plot_depth_profile", "plot_id_during_training", "plot_id_scaling", "plot_id_vs_accuracy"]


def _axes(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6, 4))
    return ax


def _as_profiles(profiles):
    """A dict of label to profile DataFrame, from a DataFrame, a DepthProfile, or a dict/list of them."""
    import pandas as pd

    if isinstance(profiles, (pd.DataFrame,)) or hasattr(profiles, "profile_"):
        profiles = {"": profiles}
    elif not isinstance(profiles, dict):
        profiles = {f"network {i + 1}": profile for i, profile in enumerate(profiles)}
    return {label: getattr(p, "profile_", p) for label, p in profiles.items()}


def plot_depth_profile(profiles, ax=None, *, pca=True, error_bars=None):
    """ID against depth for one or several networks (Ansuini et al. 2019, Fig. 3), PCA-ID in a panel below.

    The x-axis is the relative depth, labelled with the layer names of the
    first profile; both axes start at zero, so the size of a change reads
    true; the legend sits outside the data. A profile with a
    ``label_overlap`` column (``DepthProfile(compare=...)`` fitted with
    labels) gets it beside the ID, dashed, on a right-hand axis from 0 to 1.

    Parameters
    ----------
    profiles : DataFrame, DepthProfile, or dict of label to either
        Profiles with ``layer``, ``relative_depth``, ``id`` and optionally
        ``id_std`` and ``pca_id`` columns.
    ax : matplotlib Axes or pair of Axes, default=None
        Where to draw. None makes a new figure, with a second panel for
        PCA-ID when it was computed; one Axes gets the TwoNN ID only; a pair
        gets the TwoNN ID and the PCA-ID.
    pca : bool, default=True
        Also draw PCA-ID where it was computed.
    error_bars : str, default=None
        What the error bars are, written beside the legend when any are
        drawn; None says they are the ``id_std`` column.
        :meth:`DepthProfile.plot` names its subsamples.

    Returns
    -------
    ax : matplotlib Axes
        The TwoNN panel; the PCA-ID panel, when drawn, is the next axes of
        ``ax.figure``.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> from sklearn_id.plotting import plot_depth_profile
    >>> profile = pd.DataFrame({"layer": ["input", "pool1", "fc"], "relative_depth": [0, 0.5, 1],
    ...                         "id": [13.0, 20.0, 8.0], "id_std": [0.3, 0.5, 0.2], "pca_id": [30, 60, 9]})
    >>> ax = plot_depth_profile(profile)
    >>> [label.get_text() for label in ax.figure.axes[1].get_xticklabels()]
    ['input', 'pool1', 'fc']
    """
    profiles = _drawable(_as_profiles(profiles))
    with_pca = pca and any("pca_id" in p and p["pca_id"].notna().any() for p in profiles.values())
    if ax is None:
        import matplotlib.pyplot as plt

        rows = 2 if with_pca else 1
        figure, axes = plt.subplots(rows, 1, sharex=True, figsize=(7, 2.6 + 2.2 * rows), squeeze=False)
        id_ax, pca_ax = axes[0, 0], (axes[1, 0] if with_pca else None)
    elif isinstance(ax, (list, tuple)) or getattr(ax, "ndim", 0) == 1:
        id_ax, pca_ax = ax[0], (ax[1] if with_pca else None)
    else:
        id_ax, pca_ax = ax, None
    colors = {}
    for label, profile in profiles.items():
        std = profile["id_std"] if "id_std" in profile else None
        line = id_ax.errorbar(
            profile["relative_depth"],
            profile["id"],
            yerr=std,
            marker="o",
            capsize=4,
            elinewidth=1.5,
            label=label or "TwoNN ID",
        )
        colors[label] = line[0].get_color()
        _mark_undersampled(id_ax, profile, colors[label])
        if pca_ax is not None and "pca_id" in profile:
            pca_ax.plot(
                profile["relative_depth"],
                profile["pca_id"],
                marker="s",
                color=line[0].get_color(),
                label=label or "PCA-ID",
            )
    id_ax.set_ylabel("intrinsic dimension\n(TwoNN)")
    id_ax.set_ylim(bottom=0)
    beside = _legend_with_label_overlap(id_ax, profiles, colors)
    if any("id_std" in p and p["id_std"].notna().any() for p in profiles.values()):
        _name_error_bars(id_ax, error_bars or "error bars: the ID's std over random subsamples (id_std)", x=beside)
    bottom = id_ax
    if pca_ax is not None:
        pca_ax.set_ylabel("PCA-ID (components\nfor 90% variance)")
        pca_ax.set_ylim(bottom=0)
        bottom = pca_ax
    first = next(iter(profiles.values()))
    if "layer" in first:
        positions, labels = _ticks(list(first["relative_depth"]), list(first["layer"]))
        bottom.set_xticks(positions, labels, rotation=45, ha="right")
    bottom.set_xlabel("layer (spaced by relative depth)")
    return id_ax


def _drawable(profiles):
    """The profiles, once each has a row with a finite ID; a clear error for one that has none."""
    for label, profile in profiles.items():
        if len(profile) == 0 or not np.isfinite(np.asarray(profile["id"], dtype=float)).any():
            what = "has no rows" if len(profile) == 0 else "has no finite ID (every layer is NaN)"
            name = f"The profile {label!r}" if label else "The profile"
            raise ValueError(f"{name} {what}: there is nothing to draw; check the fit's warnings.")
    return profiles


def _legend_with_label_overlap(id_ax, profiles, colors):
    """The ID panel's legend outside the data, with the label overlap's lines when there are any; its x position."""
    handles, names = id_ax.get_legend_handles_labels()
    overlap = _draw_label_overlap(id_ax, profiles, colors)
    if overlap is not None:
        extra_handles, extra_names = overlap.get_legend_handles_labels()
        handles, names = handles + extra_handles, names + extra_names
    anchor = (1.01, 1.0) if overlap is None else (1.13, 1.0)
    id_ax.legend(handles, names, loc="upper left", bbox_to_anchor=anchor, fontsize="small", frameon=False)
    return anchor[0]


def _draw_label_overlap(id_ax, profiles, colors):
    """The label overlap of the profiles that have one, dashed on a right-hand axis; that axis, or None."""
    with_overlap = {
        label: p for label, p in profiles.items() if "label_overlap" in p and p["label_overlap"].notna().any()
    }
    if not with_overlap:
        return None
    overlap_ax = id_ax.twinx()
    for label, profile in with_overlap.items():
        overlap_ax.plot(
            profile["relative_depth"],
            profile["label_overlap"],
            linestyle="--",
            marker="^",
            color=colors[label],
            label=f"{label} label overlap".strip(),
        )
    overlap_ax.set_ylim(0, 1.05)
    overlap_ax.set_ylabel("label overlap (dashed)")
    return overlap_ax


def plot_comparison(matrix, ax=None, *, title=None, cmap="viridis"):
    """A layer-by-layer comparison as a heat map: ``DepthProfile.comparisons_[name]``.

    Rows are the layer compared from, columns the layer compared to (for the
    information imbalance, ``Delta(row -> column)``); each cell is written
    in when there are at most 12 layers.

    Parameters
    ----------
    matrix : pandas.DataFrame
        Square, with layer names as index and columns.
    ax : matplotlib Axes, default=None
    title : str, default=None
    cmap : str, default="viridis"

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> from sklearn_id.plotting import plot_comparison
    >>> matrix = pd.DataFrame([[0.0, 0.4], [0.7, 0.0]], index=["input", "fc"], columns=["input", "fc"])
    >>> ax = plot_comparison(matrix, title="information imbalance")
    >>> [label.get_text() for label in ax.get_yticklabels()]
    ['input', 'fc']
    """
    values = np.asarray(matrix, dtype=float)
    if values.ndim != 2 or values.shape[0] != values.shape[1] or values.size == 0:
        raise ValueError(f"plot_comparison needs a square, non-empty layer-by-layer table, got shape {values.shape}.")
    ax = _axes(ax)
    image = ax.imshow(values, cmap=cmap)
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    rows, columns = [str(name) for name in matrix.index], [str(name) for name in matrix.columns]
    ax.set_xticks(range(len(columns)), columns, rotation=45, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel(f"to ({matrix.columns.name})" if matrix.columns.name not in (None, "to") else "to")
    ax.set_ylabel(f"from ({matrix.index.name})" if matrix.index.name not in (None, "from") else "from")
    if len(rows) <= 12:
        middle = np.nanmean(values)
        for (i, j), value in np.ndenumerate(values):
            color = "white" if value < middle else "black"
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize="x-small", color=color)
    if title:
        ax.set_title(title)
    return ax


def _mark_undersampled(ax, profile, color):
    """Hollow markers over the undersampled layers (the profile's ``undersampled`` column), with one legend entry."""
    if "undersampled" not in profile or not profile["undersampled"].astype(bool).any():
        return
    flagged = profile["undersampled"].astype(bool).to_numpy()
    labelled = any(text == _UNDERSAMPLED_LABEL for text in ax.get_legend_handles_labels()[1])
    ax.plot(
        profile["relative_depth"].to_numpy()[flagged],
        profile["id"].to_numpy()[flagged],
        linestyle="none",
        marker="o",
        markersize=7,
        color=color,  # given, so that the next network keeps its own colour of the cycle
        markerfacecolor="white",
        label="_nolegend_" if labelled else _UNDERSAMPLED_LABEL,
        zorder=3,
    )


_UNDERSAMPLED_LABEL = "hollow: undersampled (read as a bound)"


def plot_id_during_training(table, ax=None, *, kind="lines", value="id"):
    """Each layer's ID against the training epoch, as lines or as a layer x epoch heat map.

    Parameters
    ----------
    table : pandas.DataFrame
        Columns ``epoch``, ``layer``, ``relative_depth`` and ``value``, as
        :func:`sklearn_id.callbacks.history_profiles` returns them from the
        history a :class:`~sklearn_id.callbacks.DepthProfileCallback`
        recorded.
    ax : matplotlib Axes, default=None
    kind : {"lines", "heatmap"}, default="lines"
        ``"lines"``: one line per layer, coloured by depth (with ``id_std``
        as error bars when recorded); ``"heatmap"``: layers down, epochs
        across.
    value : str, default="id"
        The column to draw (``"id"`` or ``"pca_id"``).

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn_id.plotting import plot_id_during_training
    >>> table = pd.DataFrame({"epoch": [1, 1, 2, 2], "layer": ["a", "b", "a", "b"],
    ...                       "relative_depth": [0.5, 1.0, 0.5, 1.0], "id": [9.0, 7.0, 8.0, 5.0]})
    >>> ax = plot_id_during_training(table)
    >>> [text.get_text() for text in ax.get_legend().get_texts()]
    ['a', 'b']
    """
    import matplotlib.pyplot as plt
    import pandas as pd
    from matplotlib.ticker import MaxNLocator

    if not isinstance(table, pd.DataFrame):
        raise TypeError(
            f"table must be a DataFrame, got {type(table).__name__}; pass history_profiles(net.history) "
            "(from sklearn_id.callbacks)."
        )
    if kind not in ("lines", "heatmap"):
        raise ValueError(f"kind must be 'lines' or 'heatmap', got {kind!r}.")
    ax = _axes(ax)
    layers = list(dict.fromkeys(table.sort_values("relative_depth", kind="stable")["layer"]))
    grid = table.pivot_table(index="layer", columns="epoch", values=value).loc[layers]
    if kind == "heatmap":
        image = ax.imshow(grid.to_numpy(), aspect="auto", cmap="viridis", interpolation="nearest")
        ax.set_yticks(range(len(layers)), layers)
        epochs = list(grid.columns)
        ax.set_xticks(range(len(epochs)), epochs)
        ax.set_xlabel("epoch")
        ax.set_ylabel("layer")
        ax.figure.colorbar(image, ax=ax, label=value)
        return ax
    colours = plt.cm.viridis(np.linspace(0, 0.9, len(layers)))
    for colour, layer in zip(colours, layers):
        rows = table[table["layer"] == layer].sort_values("epoch")
        spread = rows["id_std"] if value == "id" and "id_std" in rows and rows["id_std"].notna().any() else None
        ax.errorbar(rows["epoch"], rows[value], yerr=spread, color=colour, marker="o", capsize=3, label=layer)
    if value == "id" and "id_std" in table and table["id_std"].notna().any():
        _name_error_bars(ax, "error bars: the ID's std over the profile's random subsamples")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("intrinsic dimension (TwoNN)" if value == "id" else value)
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    return ax


def _ticks(depths, names, min_gap=0.04):
    """One tick per group of layers closer than ``min_gap`` of the span, labelled with the group's names.

    Layers at one relative depth (a transformer's last block and its final
    norm) share a tick labelled ``"h.3/ln_f"``: never an empty tick, never
    two ticks on one spot.
    """
    span = (max(depths) - min(depths)) or 1.0
    positions, labels = [], []
    for depth, name in zip(depths, names):
        if positions and depth - positions[-1] < min_gap * span:
            labels[-1] += f"/{name}"
        else:
            positions.append(depth)
            labels.append(str(name))
    return positions, labels


def plot_id_vs_accuracy(ids, accuracies, labels=None, ax=None, *, accuracy_label="accuracy"):
    """Last hidden layer ID against accuracy, with the Pearson correlation (Fig. 4).

    Parameters
    ----------
    ids : array-like of shape (n_networks,)
    accuracies : array-like of shape (n_networks,)
        Accuracy, or an error rate (name it with ``accuracy_label``).
    labels : list of str, default=None
        Network names written beside the points.
    ax : matplotlib Axes, default=None
    accuracy_label : str, default="accuracy"

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn_id.plotting import plot_id_vs_accuracy
    >>> ax = plot_id_vs_accuracy([25.2, 18.4, 15.9], [20.91, 11.37, 9.62], ["AlexNet", "VGG-11", "VGG-16"],
    ...                          accuracy_label="top-5 error (%)")
    >>> ax.get_title().startswith("Pearson r = ")
    True
    """
    from sklearn_id._scoring import id_accuracy_correlation

    ax = _axes(ax)
    ids = np.asarray(ids, dtype=float)
    accuracies = np.asarray(accuracies, dtype=float)
    ax.scatter(ids, accuracies)
    for x, y, label in zip(ids, accuracies, labels or []):
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(4, 4), fontsize="small")
    slope, intercept = np.polyfit(ids, accuracies, 1)
    grid = np.linspace(ids.min(), ids.max(), 2)
    ax.plot(grid, slope * grid + intercept, color="gray", linestyle="--")
    correlation = id_accuracy_correlation(ids, accuracies)
    ax.set_title(f"Pearson r = {correlation.r:.2f} (95% CI {correlation.ci[0]:.2f} to {correlation.ci[1]:.2f})")
    ax.set_xlabel("ID of the last hidden layer")
    ax.set_ylabel(accuracy_label)
    return ax


def plot_id_scaling(scaling, ax=None, *, label=None):
    """ID against scale (log axis) with error bars, from :func:`sklearn_id.id_scaling`.

    The plateau between the noise (small scales, high ID) and the curvature
    (large scales) is the ID to report.

    Parameters
    ----------
    scaling : DataFrame
        With ``scale``, ``id`` and ``id_std`` columns.
    ax : matplotlib Axes, default=None
    label : str, default=None
        Legend entry of the curve.

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> from sklearn_id.plotting import plot_id_scaling
    >>> curve = pd.DataFrame({"scale": [0.01, 0.02, 0.04], "id": [3.8, 2.4, 2.0],
    ...                       "id_std": [float("nan"), 0.1, 0.2]})
    >>> plot_id_scaling(curve).get_xscale()
    'log'
    """
    ax = _axes(ax)
    from matplotlib.ticker import NullFormatter

    ax.errorbar(scaling["scale"], scaling["id"], yerr=scaling["id_std"], marker="o", capsize=3, label=label)
    ax.set_xscale("log")
    # Labelled minor ticks crowd a short log axis: keep the decades only.
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("scale (mean distance to the farther neighbour)")
    ax.set_ylabel("intrinsic dimension")
    if not any(text.get_text().startswith("error bars") for text in ax.texts):
        _name_error_bars(
            ax, "error bars: id_std, the spread over the subsets (decimation) or the estimate's std (GRIDE)"
        )
    if label is not None:
        ax.legend()
    return ax


def _name_error_bars(ax, note, x=1.01):
    """Say what the error bars are, beside the axes (below the legend, at ``x`` in axes units)."""
    ax.text(x, 0.0, note, transform=ax.transAxes, fontsize="x-small", va="bottom", wrap=True)
