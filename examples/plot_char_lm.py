"""
A character-level language model: ID along the residual stream, trained against untrained
=========================================================================================

Studies of large language models (Valeriani et al. 2023; Cheng et al. 2025)
profile the intrinsic dimension of the residual stream block by block: the ID
rises from the embedding to a peak in the early-to-middle blocks and falls
again towards the output, and the peak appears with training.

Here a small GPT-2-style model (4 blocks, width 128, built from a config)
learns to predict the next character of text that ships with Python: the
docstrings of 40 modules of the standard library. Training takes about a
minute on two CPU cores. The model and its own starting point are then
profiled on about 2,000 distinct held-out windows of 64 characters: each window is one
point, the mean of its tokens' residual streams
(:class:`~sklearn_id.DepthProfile` with ``pooling="mean"``; the checkpoints
are the embedding output, every block's output and the final norm). On the
right, GRIDE's scale curve for each layer of the trained model
(:func:`~sklearn_id.id_scaling`): the ID read at neighbour ranks 1-2, 2-4,
... up to 32-64.

What it shows, honestly. After 250 steps the model predicts held-out text
at 3.63 bits per character (uniform guessing: 6.66). Its ID jumps from the
embedding output (2.48) to 3.85 after the first block and then stays at 3.64
to 3.83 through the other blocks and the final norm. The untrained model's
ID instead grows block after block, from 2.46 to 10.6: random blocks keep
adding directions, and training takes them away. PCA-ID is 9 to 13 in the
trained model, 24 to 30 untrained. GRIDE's curves grow with the scale, from
about 4 at ranks 1-2 to 8.2 to 8.8 at ranks 16-32 and 32-64, where the
blocks' curves flatten: the profile's numbers are those of the shortest
scale, well below that plateau.

Against the published shapes of large language models, whose ID rises to a
peak in the early-to-middle layers and then falls, this 4-block model, after
a minute of training, shows the rise (at its first block) and barely a fall
(3.85 to 3.64); and, as in those studies, the trained model's ID is far below
its untrained self's in the deeper blocks.
"""

import math
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
import transformers

from sklearn_id import DepthProfile, GRIDEDimension, LayerActivationTransformer, id_scaling
from sklearn_id.datasets import load_stdlib_docstrings
from sklearn_id.plotting import plot_depth_profile

transformers.logging.set_verbosity_error()

# %%
# The text, encoded one character per token; the last tenth is held out.
text = "\n".join(load_stdlib_docstrings())
alphabet = sorted(set(text))
codes = np.array([alphabet.index(char) for char in text], dtype=np.int64)
split = int(0.9 * len(codes))
train, held_out = codes[:split], codes[split:]
WINDOW = 64
print(f"{len(text):,} characters, an alphabet of {len(alphabet)}; {len(train):,} for training")


def windows(codes, n, rng):
    starts = rng.integers(0, len(codes) - WINDOW - 1, size=n)
    return np.stack([codes[start : start + WINDOW + 1] for start in starts])


config = transformers.GPT2Config(
    vocab_size=len(alphabet), n_positions=WINDOW, n_embd=128, n_layer=4, n_head=4, bos_token_id=0, eos_token_id=0
)
torch.manual_seed(0)
untrained = transformers.GPT2LMHeadModel(config)
torch.manual_seed(0)
model = transformers.GPT2LMHeadModel(config)  # the same starting point, trained below

# %%
# Training: 250 steps of 32 random windows, AdamW.
rng = np.random.default_rng(0)
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=250)
start = time.perf_counter()
model.train()
for _step in range(250):
    batch = torch.from_numpy(windows(train, 32, rng))
    loss = model(input_ids=batch[:, :-1], labels=batch[:, :-1]).loss
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    schedule.step()
model.eval()
# The held-out windows, each once (docstrings repeat themselves: identical windows would be duplicate points).
probe = np.unique(windows(held_out, 2000, np.random.default_rng(1))[:, :WINDOW], axis=0)
with torch.no_grad():
    losses = [
        model(input_ids=torch.from_numpy(probe[i : i + 250]), labels=torch.from_numpy(probe[i : i + 250])).loss
        for i in range(0, len(probe) - 249, 250)
    ]
bits = float(torch.stack(losses).mean()) / math.log(2)
print(
    f"trained in {time.perf_counter() - start:.0f} s: {bits:.2f} bits per character on held-out text "
    f"(uniform guessing: {math.log2(len(alphabet)):.2f})"
)

# %%
# The profiles: one point per held-out window, the mean over its 64 tokens.
print(f"{len(probe)} distinct held-out windows")
tokens = {"input_ids": probe}
profiles = {}
for name, network in [("trained", model), ("untrained", untrained)]:
    profile = DepthProfile(network, pooling="mean", random_state=0, device="cpu").fit(tokens)
    profiles[name] = profile.profile_
    print(f"\n{name}")
    print(profile.profile_[["layer", "relative_depth", "id", "id_std", "pca_id"]].round(2).to_string(index=False))

# %%
# GRIDE's scale curve for each checkpoint of the trained model.
curves = {}
for layer in profiles["trained"]["layer"]:
    pooled = LayerActivationTransformer(model, layer, pooling="mean", device="cpu").fit_transform(tokens)
    curves[layer] = id_scaling(GRIDEDimension(), pooled, range_max=64)
print("\nGRIDE on the trained model, ID at ranks (1,2) ... (32,64):")
for layer, curve in curves.items():
    print(f"{layer:>18}: " + " ".join(f"{value:5.1f}" for value in curve["id"]))

figure = plt.figure(figsize=(13, 5.5))
grid = figure.add_gridspec(2, 2, width_ratios=[1.15, 1], wspace=0.55)
id_ax = figure.add_subplot(grid[0, 0])
pca_ax = figure.add_subplot(grid[1, 0], sharex=id_ax)
plot_depth_profile(profiles, ax=[id_ax, pca_ax])
id_ax.set_title("residual stream, windows mean-pooled")
scale_ax = figure.add_subplot(grid[:, 1])
colours = plt.cm.viridis(np.linspace(0, 0.9, len(curves)))
for colour, (layer, curve) in zip(colours, curves.items()):
    scale_ax.plot(curve["n2"], curve["id"], "o-", color=colour, label=layer.removeprefix("transformer."))
scale_ax.set_xscale("log", base=2)
scale_ax.set_xlabel("GRIDE rank n2 (scale)")
scale_ax.set_ylabel("intrinsic dimension (GRIDE)")
scale_ax.set_ylim(bottom=0)
scale_ax.set_title("trained model: ID across scales")
scale_ax.legend(fontsize="small", frameon=False, loc="lower right")
figure.suptitle("GPT-2-style character model on the standard library's docstrings")
figure.savefig("char_lm.png", dpi=110, bbox_inches="tight")
