"""
How many points are enough: ID against scale
=============================================

TwoNN reads the data at the distance of each point's second neighbour.
With many points that distance is short, and noise, however small, adds
dimensions; with few points it is long, and curvature may too. Facco et al.
(2017) therefore decimate: split the data into 2, 4, 8, ... random subsets,
estimate on each, and look for the plateau. GRIDE (Denti et al. 2022) reaches
the same larger scales without discarding points, using farther neighbours
(ranks 1-2, 2-4, 4-8, ...). :func:`sklearn_id.id_scaling` computes either
curve in one call.

Two data sets: a Swiss roll (a 2-D sheet rolled in 3-D, no noise) and a unit
square embedded in 20 dimensions with Gaussian noise of standard deviation
0.002 in all 20 directions.

What the figure shows, honestly: on the Swiss roll both curves stay within
0.1 of 2 down to 64-point subsets (2.16 at 32 points, where the spread is
0.56); GRIDE dips to 1.91 at ranks 64-128, where the roll's edges enter. A
few hundred points are enough there, and more do no harm. On the noisy
square, TwoNN on all 16,384 points reads 8.9: at that scale the noise
dominates. The decimation curve falls as the subsets shrink, below 2.4 at
256 points and to 2.1 at 64; the GRIDE curve falls alike and reads 2.1 at
ranks 64-128, on all points and with a far smaller error bar. The plateau
near 2 is where the data are two-dimensional: that is the ID to report.
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_swiss_roll

from sklearn_id import GRIDEDimension, TwoNNDimension, id_scaling
from sklearn_id.plotting import plot_id_scaling

rng = np.random.default_rng(0)
swiss_roll, _ = make_swiss_roll(n_samples=8192, random_state=0)
square = np.c_[rng.uniform(size=(16_384, 2)), np.zeros((16_384, 18))]
noisy_square = square + 0.002 * rng.normal(size=square.shape)

fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for ax, (name, X) in zip(axes, [("Swiss roll", swiss_roll), ("noisy square in 20-D", noisy_square)]):
    decimation = id_scaling(TwoNNDimension(), X, n_min=32, random_state=0)
    gride = id_scaling(GRIDEDimension(), X, range_max=128)
    print(f"{name}, decimation:\n{decimation.round(3).to_string(index=False)}")
    print(f"{name}, GRIDE:\n{gride.round(3).to_string(index=False)}\n")
    plot_id_scaling(decimation, ax=ax, label="TwoNN, decimation")
    plot_id_scaling(gride, ax=ax, label="GRIDE, rank doubling")
    for _, row in decimation.iterrows():
        ax.annotate(
            f"{row['n_samples']:.0f}", (row["scale"], row["id"]), fontsize=7, xytext=(3, 4), textcoords="offset points"
        )
    ax.axhline(2, color="gray", linewidth=0.8, linestyle=":")
    ax.set_title(f"{name} (labels: points per subset)")
fig.tight_layout()
fig.savefig("twonn_scale.png", dpi=120)
