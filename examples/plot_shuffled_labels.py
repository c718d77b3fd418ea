"""
Shuffled labels: a network that memorises keeps a high ID
===========================================================

Ansuini et al. (2019, Fig. 6B) trained the same CNN on MNIST with its true
labels and with the labels shuffled. With true labels the ID falls in the
last layers; with shuffled labels, which the network can only memorise, it
rises in the last hidden layers instead. Here the same experiment runs on
scikit-learn's digits: one CNN trained for 20 epochs on the true labels, one
trained for 100 epochs on shuffled labels (until it has memorised most of
them), both profiled on the training digits; the paper's MNIST numbers are
replotted beside them.

What the figure shows, honestly: with true labels (memorised completely, and
learned) the ID falls from 9.2 at ``pool1`` to 6.4 at ``d1`` and 5.5 at the
output. With shuffled labels (98% of them memorised) the ID is higher at
every layer after ``conv1`` and does not fall: about 10 from ``pool1`` to
``d1`` (9.8 against 6.4 there) and 8.4 at the output. The paper's MNIST
network goes further, its ID rising to 21 at ``d1``, well above the input's
13; on the digits the shuffled network's ``d1`` stays near its ``pool1``
level, about one above the input's 8.9.
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from sklearn_id import profile_sweep
from sklearn_id.datasets import load_digit_images
from sklearn_id.models import make_digits_classifier

# Ansuini et al. 2019, Fig. 6B: ID per layer of the MNIST CNN.
PAPER_LAYERS = ["input", "conv1", "pool1", "conv2", "pool2", "d1", "output"]
PAPER = {
    "true labels": [13.1, 12.6, 11.9, 9.7, 9.3, 7.8, 6.2],
    "shuffled labels": [13.2, 13.45, 13.0, 12.75, 17.7, 21.3, 8.9],
}

images, labels = load_digit_images()
shuffled = np.random.default_rng(0).permutation(labels)

nets = {}
for name, targets, epochs in [("true labels", labels, 20), ("shuffled labels", shuffled, 100)]:
    torch.manual_seed(0)
    nets[name] = make_digits_classifier(max_epochs=epochs).fit(images, targets)
    print(f"{name}: training accuracy {nets[name].score(images, targets):.3f} after {epochs} epochs")

# Both networks on the same images and the same subsamples, in one table.
table = profile_sweep(nets, images, layers=PAPER_LAYERS, random_state=0)
profiles = {name: rows.reset_index(drop=True) for name, rows in table.groupby("model", sort=False)}
for name, profile in profiles.items():
    print(f"{name}\n{profile[['layer', 'id', 'id_std', 'pca_id']].round(2).to_string(index=False)}\n")

fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), sharex=True)
positions = np.arange(len(PAPER_LAYERS))
for name, profile in profiles.items():
    left.errorbar(positions, profile["id"], yerr=profile["id_std"], marker="o", capsize=3, label=name)
    right.plot(positions, PAPER[name], marker="o", label=name)
left.set(ylabel="TwoNN intrinsic dimension", title="DigitsCNN on scikit-learn digits")
right.set(ylabel="intrinsic dimension", title="Published: MNIST (Ansuini et al. 2019, Fig. 6B)")
for ax in (left, right):
    ax.set_xticks(positions, PAPER_LAYERS)
    ax.legend()
fig.tight_layout()
fig.savefig("shuffled_labels.png", dpi=120)
