"""
The hunchback: ID across the layers of a trained and an untrained CNN
=====================================================================

Ansuini et al. (2019, Figs. 3 and 5) found that the intrinsic dimension of a
trained network's representations first rises, then falls towards the
output, and that this shape is learned: an untrained network does not show
it. Beside the TwoNN ID they counted the principal components needed for
90% of the variance (PCA-ID), which stays much larger: the representations
are curved, not flat.

Here a small CNN (the paper's MNIST architecture, scaled to 8x8 images) is
trained for 20 epochs on scikit-learn's digits, and both it and its own
starting point are profiled with :class:`sklearn_id.DepthProfile`.

What the figure shows, honestly: the trained network's ID rises a little from
the input (8.9) to ``pool1`` (9.2), then falls steadily to the output (5.5),
well below the input's; the untrained network's ID rises to about 10 and
stays there until it drops at the output (7.8). So the fall is learned, as in
the paper, but the hump is low: the digits have 64 pixels and the network
two convolutions, where the paper's ImageNet networks climb from about 30 to
over 100. PCA-ID is several times the TwoNN ID in the convolutional layers
(54 components at ``pool1``): the representations are curved. Unlike the
paper, where PCA-ID hardly changes with training, the trained network needs
far fewer components than the untrained one (54 against 99 at ``pool1``).
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from sklearn_id import DepthProfile
from sklearn_id.datasets import load_digit_images
from sklearn_id.models import make_digits_classifier

images, labels = load_digit_images()

torch.manual_seed(0)
untrained = make_digits_classifier(max_epochs=20).initialize()
torch.manual_seed(0)
trained = make_digits_classifier(max_epochs=20).fit(images, labels)

profiles = {
    name: DepthProfile(net, random_state=0).fit(images).profile_
    for name, net in [("trained", trained), ("untrained", untrained)]
}

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
for name, profile in profiles.items():
    left.errorbar(profile["relative_depth"], profile["id"], yerr=profile["id_std"], marker="o", capsize=3, label=name)
    right.plot(profile["relative_depth"], profile["pca_id"], marker="s", linestyle="--", label=name)
    print(f"{name}:\n{profile.round(2).to_string(index=False)}\n")
left.set(xlabel="relative depth", ylabel="TwoNN intrinsic dimension", title="TwoNN ID (cf. paper Fig. 3)")
right.set(xlabel="relative depth", ylabel="components for 90% variance", title="PCA-ID (cf. paper Fig. 5)")
for ax in (left, right):
    ax.legend()
fig.suptitle("DigitsCNN on scikit-learn digits")
fig.tight_layout()
fig.savefig("hunchback.png", dpi=120)
