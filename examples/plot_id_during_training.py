"""
ID during training: the depth profile recorded every epoch
==========================================================

:class:`~sklearn_id.callbacks.DepthProfileCallback` profiles a skorch net's
module on a fixed probe set every ``every`` epochs and stores the table in
the net's history, so the "ID during training" curve comes with the fit.
Here the digits CNN is profiled on 500 held-out digits after each of 12
epochs, always on the same subsamples.

What it shows: the fall of the ID towards the output is there after the
first epoch already (input 7.91; ``d1`` 5.51, output 4.54), and most of the
rest happens in the second: ``pool2`` drops from 6.74 to 6.23 and ``d1``
from 5.51 to 5.15. Afterwards the hidden layers' IDs drift back up slowly
while the accuracy still improves (``d1`` 5.86 and ``pool2`` 6.74 after
12 epochs), and ``pool1`` settles at the input's ID. So on this small
network the profile's shape is set within two epochs; its later changes are
a few tenths, a few times the spread over subsamples.
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from sklearn.model_selection import train_test_split

from sklearn_id.callbacks import DepthProfileCallback, history_profiles
from sklearn_id.datasets import load_digit_images
from sklearn_id.models import make_digits_classifier
from sklearn_id.plotting import plot_id_during_training

images, labels = load_digit_images()
train_images, probe_images, train_labels, _ = train_test_split(
    images, labels, test_size=500, stratify=labels, random_state=0
)

torch.manual_seed(0)
callback = DepthProfileCallback(probe_images, every=1, n_resamples=3, random_state=0)
net = make_digits_classifier(max_epochs=12, callbacks=[callback]).fit(train_images, train_labels)

table = history_profiles(net.history)
print(table.pivot_table(index="layer", columns="epoch", values="id", sort=False).round(2).to_string())

fig, (lines, heat) = plt.subplots(1, 2, figsize=(13, 4.5), gridspec_kw={"wspace": 0.6})
plot_id_during_training(table, ax=lines)
lines.set_title("ID of each layer after each epoch (500 held-out digits)")
plot_id_during_training(table, ax=heat, kind="heatmap")
heat.set_title("the same, layer x epoch")
fig.savefig("id_during_training.png", dpi=110, bbox_inches="tight")
