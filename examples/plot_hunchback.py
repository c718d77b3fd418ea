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
stays there through every hidden layer; only its output layer drops, to 7.8,
still far above the trained network's. So the fall is learned, as in the
paper, but the hump is low: the digits have 64 pixels and the network
two convolutions, where the paper's ImageNet networks climb from about 30 to
over 100. PCA-ID is several times the TwoNN ID in the convolutional layers
(54 components at ``pool1``): the representations are curved. Unlike the
paper, where PCA-ID hardly changes with training, the trained network needs
far fewer components than the untrained one (54 against 99 at ``pool1``).
"""

import matplotlib

matplotlib.use("Agg")
import torch

from sklearn_id import DepthProfile
from sklearn_id.datasets import load_digit_images
from sklearn_id.models import make_digits_classifier
from sklearn_id.plotting import plot_depth_profile

images, labels = load_digit_images()

torch.manual_seed(0)
untrained = make_digits_classifier(max_epochs=20).initialize()
torch.manual_seed(0)
trained = make_digits_classifier(max_epochs=20).fit(images, labels)

profiles = {
    name: DepthProfile(net, random_state=0).fit(images).profile_
    for name, net in [("trained", trained), ("untrained", untrained)]
}

for name, profile in profiles.items():
    print(f"{name}:\n{profile.round(2).to_string(index=False)}\n")

# TwoNN ID above (cf. paper Fig. 3), PCA-ID below (cf. Fig. 5), layers spaced by relative depth.
ax = plot_depth_profile(profiles)
ax.set_title("DigitsCNN on all 1,797 of scikit-learn's digits: trained vs untrained")
ax.figure.savefig("hunchback.png", dpi=120, bbox_inches="tight")
