"""
Which scale? The GRIDE scan and the scale ABIDE picks
=====================================================

An intrinsic dimension is always read at some scale: at the shortest
distances noise adds dimensions, at the longest curvature does, and the ID to
report lies in between, on a plateau of the ID against scale, if there is
one. GRIDE's rank doubling (:func:`~sklearn_id.id_scaling`) draws that curve;
ABIDE (Di Noia et al. 2024, :class:`~sklearn_id.ABIDEDimension`) picks the
scale itself, point by point: the largest neighbourhood over which a
likelihood-ratio test finds the density constant (k*), then the ID at those
neighbourhoods, iterated to a fixed point.

Two data sets. A Moebius strip (a curved 2-D surface) of 4,000 points in 20
dimensions, with Gaussian noise of standard deviation 0.02 in all 20; and
scikit-learn's digits, standardised (1,797 points in 64 dimensions). For
each, the GRIDE curve (ranks 1-2 up to 64-128) with the ABIDE estimate
marked at its own scale, for the binomial estimator and A-GRIDE, and the
spread of the points' k*.

What it shows, honestly, in one run. On the noisy strip TwoNN reads 11.4:
at the second neighbour the noise dominates. The GRIDE curve falls with the
scale, from 11.5 at ranks 1-2 (scale 0.11) to 2.45 at ranks 64-128 (scale
0.30), and has not levelled off by then. ABIDE's binomial estimate settles
at 2.70 in five iterations (11.4, 4.65, 2.96, 2.74, 2.70, 2.70) at scale
0.24, A-GRIDE at 2.25 at scale 0.30: k* has a median of 146 and reaches 698
neighbours. With DADApy's default cap of 100 neighbours, 2,571 of the 4,000
points are cut at k* = 99 and the estimate is 3.26, a neighbourhood too
small to leave the noise behind; the package warns.

On the digits the curve falls steadily too (8.85 at ranks 1-2, 5.96 at
64-128): no plateau. ABIDE's k* is far smaller there (median 26); its
estimates are 6.56 +/- 0.04 (binomial, scale 5.3) and 6.10 +/- 0.04
(A-GRIDE, scale 5.7), below the curve at those scales (about 7.1 and 6.9):
each point's own neighbourhood is not GRIDE's fixed ranks, and each scale
is its method's mean radius. The cap of 100 changes nothing here (one point
reaches it). Where the curve has no plateau ABIDE does not make one: it
reports where the density stops looking constant, and its scale goes with
the number.
"""

import time
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.preprocessing import StandardScaler

from sklearn_id import ABIDEDimension, GRIDEDimension, TwoNNDimension, id_scaling
from sklearn_id.plotting import plot_id_scaling


def moebius(n_points, n_noise=17, noise=0.02, seed=1):
    """A Moebius strip (radius 1, width 1) in 3-D, padded with zero columns, plus noise in every direction."""
    rng = np.random.default_rng(seed)
    u, v = rng.uniform(0, 2 * np.pi, n_points), rng.uniform(-1, 1, n_points)
    radius = 1 + 0.5 * v * np.cos(u / 2)
    strip = np.c_[radius * np.cos(u), radius * np.sin(u), 0.5 * v * np.sin(u / 2), np.zeros((n_points, n_noise))]
    return strip + noise * rng.normal(size=strip.shape)


data = {
    "Moebius strip + noise, 4,000 points in 20-D": moebius(4000),
    "digits, standardised, 1,797 points in 64-D": StandardScaler().fit_transform(load_digits().data),
}

# %%
# For each data set: TwoNN, the GRIDE curve, and both ABIDE estimates with
# their scales. With ``max_neighbors="auto"`` no neighbourhood is cut at a
# fixed number of neighbours; ``max_neighbors=100`` is DADApy's default cap.
fig, axes = plt.subplots(2, 2, figsize=(11, 8), width_ratios=[3, 2])
for row, (name, X) in zip(axes, data.items()):
    curve = id_scaling(GRIDEDimension(), X, range_max=128)
    twonn = TwoNNDimension().fit(X).dimension_
    start = time.perf_counter()
    estimates = {method: ABIDEDimension(method=method).fit(X) for method in ("binomial", "gride")}
    seconds = time.perf_counter() - start
    with warnings.catch_warnings(record=True) as capped:
        warnings.simplefilter("always")
        at_100 = ABIDEDimension(max_neighbors=100).fit(X)
    print(f"\n{name}: TwoNN {twonn:.2f}; GRIDE curve, ID at ranks (1,2) ... (64,128):")
    print("   " + "  ".join(f"{i:.2f}" for i in curve["id"]) + f"   (scales {curve['scale'].iloc[0]:.3g} ...)")
    for method, estimator in estimates.items():
        print(
            f"   ABIDE {method:>8}: {estimator.dimension_:.2f} +/- {estimator.dimension_std_:.3f} at scale "
            f"{estimator.scale_:.3g}; iterations {np.round(estimator.dimensions_, 2).tolist()}; "
            f"k* median {np.median(estimator.kstar_):.0f}, largest {estimator.kstar_.max()}"
        )
    print(
        f"   both in {seconds:.1f} s; with max_neighbors=100 (DADApy's default): {at_100.dimension_:.2f}, "
        f"{at_100.n_saturated_} points cut at k* = 99" + (" (warned)" if capped else "")
    )
    ax = plot_id_scaling(curve, row[0], label="GRIDE, ranks (1,2) ... (64,128)")
    for (method, estimator), marker in zip(estimates.items(), ["s", "D"]):
        ax.errorbar(
            estimator.scale_,
            estimator.dimension_,
            yerr=estimator.dimension_std_,
            marker=marker,
            markersize=9,
            linestyle="none",
            label=f"ABIDE ({method}): {estimator.dimension_:.2f}",
        )
    ax.axhline(twonn, color="grey", linestyle=":", label=f"TwoNN: {twonn:.2f}")
    ax.set_title(name, fontsize="medium")
    ax.legend(fontsize="small")
    for method, estimator in estimates.items():
        row[1].hist(estimator.kstar_, bins=40, alpha=0.6, label=method)
    row[1].set_xlabel("k* (neighbours of constant density)")
    row[1].set_ylabel("points")
    row[1].legend(fontsize="small")
fig.tight_layout()
fig.savefig("which_scale.png", dpi=110)
