"""
How layers relate: per-class ID, information imbalance and label overlap
========================================================================

The seed paper (Ansuini et al. 2019) computed the ID of each of the most
populated classes on its own and averaged. ``DepthProfile(per_class=True)``
does that in one forward pass; ``compare=`` adds, between every pair of
layers, the information imbalance (Glielmo et al. 2022), and with the labels a
``label_overlap`` column (Doimo et al. 2020): the fraction of each digit's 30
nearest neighbours that are the same digit.

The digits CNN of the other examples is trained for 20 epochs; both it and its
starting point are profiled on all 1,797 digits.

What the figures show, honestly. One class at a time (the 7 most populated
digits, about 180 images each) the trained network's mean ID rises from the
input (8.7) to ``pool1`` (8.9), then falls to 6.4 at ``d1`` and 5.4 at the
output; the untrained network's climbs to 10.0 at ``d1`` and only its output
falls (6.9). The spread across classes (about 1 to 2) is far larger than the
spread over subsamples of all digits, and every class is flagged
undersampled: 180 points cannot resolve an ID of 8 (the seed paper had 500
images per class and IDs measured on ImageNet-scale networks). The label
overlap of the trained network rises with depth, from 0.91 at the input to
0.99 at ``d1``: the classes separate; the untrained network's falls, to 0.52
at its output. The imbalance matrices are nearly symmetric between
neighbouring layers and small everywhere except from the last layers back:
the output predicts the input's neighbourhoods worse (0.04 trained, 0.19
untrained) than the input predicts the output's (0.02 and 0.06), as a
network that discards information should.
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from sklearn_id import DepthProfile
from sklearn_id.datasets import load_digit_images
from sklearn_id.models import make_digits_classifier
from sklearn_id.plotting import plot_comparison, plot_depth_profile

images, labels = load_digit_images()

torch.manual_seed(0)
untrained = make_digits_classifier(max_epochs=20).initialize()
torch.manual_seed(0)
trained = make_digits_classifier(max_epochs=20).fit(images, labels)

# %%
# One class at a time, as in the seed paper: the 7 most populated digits.
per_class = {
    name: DepthProfile(net, per_class=True, max_classes=7, random_state=0).fit(images, labels)
    for name, net in [("trained", trained), ("untrained", untrained)]
}
for name, profile in per_class.items():
    print(f"{name}, mean over classes:\n{profile.profile_.round(2).to_string(index=False)}\n")
ax = plot_depth_profile({name: profile.profile_ for name, profile in per_class.items()}, pca=False)
ax.set_title("ID per class (7 digits), mean and spread across classes")
ax.figure.savefig("per_class.png", dpi=120, bbox_inches="tight")

# %%
# The information imbalance between every pair of layers, and the label overlap against depth.
compared = {
    name: DepthProfile(net, compare=["imbalance"], random_state=0).fit(images, labels)
    for name, net in [("trained", trained), ("untrained", untrained)]
}
for name, profile in compared.items():
    print(f"{name}: Delta(row -> column)\n{profile.comparisons_['imbalance'].round(3)}\n")
    print(f"{name}: label overlap {profile.profile_['label_overlap'].round(3).tolist()}\n")

figure, axes = plt.subplots(1, 2, figsize=(11, 4.5))
for ax, (name, profile) in zip(axes, compared.items()):
    plot_comparison(profile.comparisons_["imbalance"], ax=ax, title=f"information imbalance, {name}")
figure.tight_layout()
figure.savefig("imbalance.png", dpi=120, bbox_inches="tight")

ax = plot_depth_profile({name: profile.profile_ for name, profile in compared.items()}, pca=False)
ax.set_title("ID (solid) and label overlap (dashed, k = 30) on all digits")
ax.figure.savefig("label_overlap.png", dpi=120, bbox_inches="tight")
