"""What the commands of the command line share: the usage error and the table format."""

import numpy as np

__all__ = ["UsageError", "format_profile"]

_COLUMNS = {"layer": "layer", "relative_depth": "relative depth", "n_features": "features"}


class UsageError(Exception):
    """A problem with the command's input that a message explains better than a traceback."""


_UNDERSAMPLED_NOTE = (
    "* undersampled: fewer points than the estimate needs (2**ID, or twice the PCA-ID); read its numbers as bounds."
)


def format_profile(profile):
    """The table of a profile: layer, relative depth, features, ID +/- std, PCA-ID; undersampled rows marked ``*``."""
    table = profile[list(_COLUMNS)].rename(columns=_COLUMNS)
    table["relative depth"] = table["relative depth"].map("{:.2f}".format)
    table["ID"] = [f"{value:.2f} +/- {std:.2f}" for value, std in zip(profile["id"], profile["id_std"])]
    if "pca_id" in profile:  # a per-sample profile has none
        table["PCA-ID"] = profile["pca_id"].map(lambda value: "-" if np.isnan(value) else f"{value:.0f}")
    flagged = profile["undersampled"].astype(bool) if "undersampled" in profile else None
    if flagged is None or not flagged.any():
        return table.to_string(index=False)
    table[""] = np.where(flagged, "*", "")
    return f"{table.to_string(index=False)}\n{_UNDERSAMPLED_NOTE}"
