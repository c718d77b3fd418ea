"""
Last hidden layer ID against accuracy, for a family of CNNs
============================================================

Ansuini et al. (2019, Fig. 4) found that across 14 ImageNet networks the
intrinsic dimension of the last hidden layer predicts the test error: the
lower the ID, the better the network (Pearson r = 0.94). Here a family of
small CNNs is trained on scikit-learn's digits; they differ in width (4 to
32 channels) and in training (1 to 20 epochs). For each, the TwoNN ID of the
last hidden layer ``d1`` on the training digits is set against the error on
held-out digits, with :func:`sklearn_id.id_accuracy_correlation`. Beside it,
the paper's published Fig. 4 numbers are replotted.

What the figure shows, honestly: the correlation is positive (r = 0.72,
95% CI 0.36 to 0.90, over 16 networks), but it is driven mostly by training
time: networks trained for one or two epochs have both the highest error and
the highest last-hidden ID (7 to 9), while all networks trained for 5 or 20
epochs sit near ID 6. Among the four trained for 20 epochs the order still
holds, the narrowest network having the highest ID (6.6) and error (5.6%),
the widest the lowest (6.0 and 1.3%), but the ID differences are a few
tenths. The paper's r = 0.94 is over mature ImageNet networks with IDs from
12 to 25, a range this toy family does not span.
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.model_selection import train_test_split

from sklearn_id import id_accuracy_correlation, profile_sweep
from sklearn_id.datasets import load_digit_images
from sklearn_id.models import make_digits_classifier

# Ansuini et al. 2019, Fig. 4: last hidden layer ID and ImageNet top-5 error (%).
PUBLISHED = {
    "AlexNet": (25.2, 20.91),
    "VGG-11": (18.4, 11.37),
    "VGG-13": (18.6, 10.75),
    "VGG-16": (15.9, 9.62),
    "VGG-19": (14.6, 9.12),
    "VGG-11-bn": (15.5, 10.19),
    "VGG-13-bn": (14.85, 9.63),
    "VGG-16-bn": (12.8, 8.50),
    "VGG-19-bn": (12.5, 8.15),
    "ResNet-18": (18.6, 10.92),
    "ResNet-34": (15.2, 8.58),
    "ResNet-50": (13.9, 7.13),
    "ResNet-101": (12.8, 6.44),
    "ResNet-152": (12.4, 5.94),
}

images, labels = load_digit_images()
train_images, test_images, train_labels, test_labels = train_test_split(
    images, labels, test_size=0.3, stratify=labels, random_state=0
)

nets, errors, trainings, widths = {}, [], [], []
for width in (4, 8, 16, 32):
    for epochs in (1, 2, 5, 20):
        torch.manual_seed(0)
        net = make_digits_classifier(max_epochs=epochs, width=width).fit(train_images, train_labels)
        nets[f"width {width:2d}, {epochs:2d} epochs"] = net
        errors.append(100 * (1 - net.score(test_images, test_labels)))
        trainings.append(epochs)
        widths.append(width)

# The 16 networks' last hidden layer in one sweep, each a joblib task.
table = profile_sweep(nets, train_images, layers=["d1"], n_resamples=0, pca_estimator=None, n_jobs=2)
ids = table["id"].to_numpy()
for name, dimension, error in zip(nets, ids, errors):
    print(f"{name}: last hidden ID {dimension:5.2f}, test error {error:5.2f}%")

ours = id_accuracy_correlation(ids, errors)
published_ids, published_errors = np.array(list(PUBLISHED.values())).T
paper = id_accuracy_correlation(published_ids, published_errors)
print(f"\ndigits CNNs: r = {ours.r:.2f}, 95% CI [{ours.ci[0]:.2f}, {ours.ci[1]:.2f}], p = {ours.pvalue:.2g}")
print(f"published ImageNet networks: r = {paper.r:.2f}, 95% CI [{paper.ci[0]:.2f}, {paper.ci[1]:.2f}]")

fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
points = left.scatter(ids, errors, c=trainings, s=12 * np.sqrt(widths), cmap="viridis", norm="log")
fig.colorbar(points, ax=left, label="epochs (marker size: width)")
left.set(
    xlabel="ID of the last hidden layer (d1)",
    ylabel="test error (%)",
    title=f"DigitsCNN family on digits: r = {ours.r:.2f}",
)
# One marker per family, and only the depth written beside each point, placed where it has room.
FAMILIES = {
    "AlexNet": ("tab:gray", "D"),
    "VGG": ("tab:blue", "o"),
    "VGG-bn": ("tab:orange", "s"),
    "ResNet": ("tab:red", "^"),
}
OFFSETS = {
    "VGG-11": (-14, 4),
    "VGG-13": (5, -9),
    "ResNet-18": (5, 4),
    "VGG-16": (5, -9),
    "VGG-11-bn": (-6, 6),
    "VGG-13-bn": (-17, 4),
    "VGG-19": (-13, -10),
    "VGG-16-bn": (5, 2),
    "VGG-19-bn": (-14, -10),
    "ResNet-101": (5, -4),
    "ResNet-152": (5, -6),
}


def family_of(name):
    return "VGG-bn" if name.endswith("-bn") else name.split("-")[0]


for family, (color, marker) in FAMILIES.items():
    members = {name: value for name, value in PUBLISHED.items() if family_of(name) == family}
    x, y = np.array(list(members.values())).T
    right.scatter(x, y, color=color, marker=marker, label=family)
    for name, (dimension, error) in members.items():
        depth = name.split("-")[1] if "-" in name else ""
        right.annotate(
            depth,
            (dimension, error),
            fontsize=7,
            color=color,
            xytext=OFFSETS.get(name, (5, 2)),
            textcoords="offset points",
        )
right.legend(title="family (label: depth)", fontsize="small", loc="upper left")
right.set(
    xlabel="ID of the last hidden layer",
    ylabel="ImageNet top-5 error (%)",
    title=f"Published (Ansuini et al. 2019, Fig. 4): r = {paper.r:.2f}",
)
fig.tight_layout()
fig.savefig("id_vs_accuracy.png", dpi=120)
