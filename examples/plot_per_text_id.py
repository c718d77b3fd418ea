"""
One ID per text: docstrings against text the model wrote
========================================================

Tulchinskii et al. (NeurIPS 2023) give each text its own intrinsic dimension:
the persistent-homology dimension (PHD) of the cloud of its tokens'
embeddings. In RoBERTa, human-written text has a PHD near 9 and generated
text one about 1.5 lower, enough to tell them apart. Viswanathan et al. (2025)
run GRIDE on each prompt's token cloud at every layer of a language model.

Here both run on the character-level GPT-2 of the previous example (its
config: 4 blocks, width 128; with 128 positions), trained for 150 steps of 16
windows of 128 characters of the standard library's docstrings (about a
minute on two CPU cores). The texts are 32 held-out windows of 128
characters, written by people, and 32 texts the model wrote itself: each
starts from the first 16 characters of another held-out window, then 112
characters are sampled, one at a time, from the model's next-character
distribution at temperature 0.7. ``DepthProfile(per_sample=True)`` gives
every text its own ID at every layer, from the cloud of its 128 token states,
with :class:`~sklearn_id.PHDimension` and with
:class:`~sklearn_id.GRIDEDimension` at ranks 8-16 (a 128-point cloud is too
small for Viswanathan et al.'s ranks 32-64).

What it shows, honestly, in one run on a 2-core CPU. The model reaches 4.2
bits per character on the held-out texts, and its samples look like
docstrings only from afar ("Consintirule then fele ad an s ISeretolr..."). At
the embedding output the generated texts have the higher PHD (median 10.8
against 9.3; a human text lies above a generated one in only 12% of the
pairs): the samples mix characters less regularly than docstrings do. From
the first block on, both IDs stay slightly higher for the generated texts
(PHD medians 1.8-2.0 against 1.8-1.9, 25-44% of pairs; GRIDE 1.2-1.4 against
1.0-1.2, 26-28% of pairs). So this small model does not reproduce the
RoBERTa finding, whose generated texts are fluent and come from far larger
models; what a per-text ID separates here is how far the samples are from
the text the model learned.
"""

import math
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
import transformers

from sklearn_id import DepthProfile, GRIDEDimension, PHDimension
from sklearn_id.datasets import load_stdlib_docstrings

transformers.logging.set_verbosity_error()

# %%
# The text, one character per token; the last tenth is held out.
text = "\n".join(load_stdlib_docstrings())
alphabet = sorted(set(text))
codes = np.array([alphabet.index(char) for char in text], dtype=np.int64)
split = int(0.9 * len(codes))
train, held_out = codes[:split], codes[split:]
LENGTH, PROMPT, N_TEXTS = 128, 16, 32


def windows(codes, n, rng, length):
    starts = rng.integers(0, len(codes) - length - 1, size=n)
    return np.stack([codes[start : start + length + 1] for start in starts])


config = transformers.GPT2Config(
    vocab_size=len(alphabet), n_positions=LENGTH, n_embd=128, n_layer=4, n_head=4, bos_token_id=0, eos_token_id=0
)
torch.manual_seed(0)
model = transformers.GPT2LMHeadModel(config)

# %%
# Training: 150 steps of 16 random windows of 128 characters, AdamW.
rng = np.random.default_rng(0)
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=150)
start = time.perf_counter()
model.train()
for _step in range(150):
    batch = torch.from_numpy(windows(train, 16, rng, LENGTH))
    loss = model(input_ids=batch[:, :-1], labels=batch[:, :-1]).loss
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    schedule.step()
model.eval()
human = windows(held_out, N_TEXTS, np.random.default_rng(1), LENGTH)[:, :LENGTH]
with torch.no_grad():
    bits = float(model(input_ids=torch.from_numpy(human), labels=torch.from_numpy(human)).loss) / math.log(2)
print(
    f"trained in {time.perf_counter() - start:.0f} s: {bits:.2f} bits per character on the held-out texts "
    f"(uniform guessing: {math.log2(len(alphabet)):.2f})"
)

# %%
# The model's own texts: 112 characters sampled after 16 of a held-out window,
# at temperature 0.7 (language models are usually decoded below temperature 1,
# which makes their text more predictable than people's).
prompts = windows(held_out, N_TEXTS, np.random.default_rng(2), LENGTH)[:, :PROMPT]
with torch.random.fork_rng():
    torch.manual_seed(0)
    generated = model.generate(
        input_ids=torch.from_numpy(prompts),
        attention_mask=torch.ones(prompts.shape, dtype=torch.long),
        max_new_tokens=LENGTH - PROMPT,
        do_sample=True,
        temperature=0.7,
        top_k=0,
        pad_token_id=0,
    ).numpy()
print("a human text:    ", repr("".join(alphabet[code] for code in human[0][:120])))
print("a generated text:", repr("".join(alphabet[code] for code in generated[0][:120])))

# %%
# One ID per text and layer: the cloud of its 128 token states.
tokens = {"input_ids": np.concatenate([human, generated])}
source = np.repeat(["human", "generated"], N_TEXTS)
tables = {}
for name, estimator in [("PHD", PHDimension(random_state=0)), ("GRIDE 8-16", GRIDEDimension(n1=8, n2=16))]:
    start = time.perf_counter()
    profile = DepthProfile(
        model, pooling="tokens", per_sample=True, id_estimator=estimator, n_resamples=0, device="cpu"
    ).fit(tokens)
    table = profile.sample_profiles_.assign(source=lambda t: source[t["sample"]])
    tables[name] = table
    print(f"\n{name}: {len(table)} IDs in {time.perf_counter() - start:.0f} s; median (quartiles) per layer")
    summary = table.groupby(["relative_depth", "layer", "source"], sort=True)["id"].describe()
    print(summary[["25%", "50%", "75%"]].unstack("source").round(2).to_string())

# %%
# Whether the ID tells the two apart: per layer, the share of (human,
# generated) pairs in which the human text has the higher ID (0.5: no
# difference; 1: every human text above every generated one).
for name, table in tables.items():
    shares = {}
    for layer, rows in table.groupby("layer", sort=False):
        ids = {kind: rows.loc[rows["source"] == kind, "id"].to_numpy() for kind in ("human", "generated")}
        shares[layer] = float(np.mean(ids["human"][:, None] > ids["generated"][None, :]))
    named = (f"{layer.removeprefix('transformer.')} {share:.2f}" for layer, share in shares.items())
    print(f"{name}: " + ", ".join(named))

figure, axes = plt.subplots(1, 2, figsize=(12, 4.5))
for ax, (name, table) in zip(axes, tables.items()):
    layers = list(dict.fromkeys(table["layer"]))  # in forward order: the last block and ln_f share a depth
    for kind, colour in [("human", "tab:blue"), ("generated", "tab:orange")]:
        rows = table[table["source"] == kind]
        quartiles = rows.groupby("layer", sort=False)["id"].quantile([0.25, 0.5, 0.75]).unstack().loc[layers]
        ax.plot(range(len(layers)), quartiles[0.5], "o-", color=colour, label=f"{kind} (median)")
        ax.fill_between(range(len(layers)), quartiles[0.25], quartiles[0.75], color=colour, alpha=0.2)
    ax.set_xticks(range(len(layers)), [layer.removeprefix("transformer.") for layer in layers])
    ax.set_ylabel(f"ID of each text's token cloud ({name})")
    ax.set_ylim(bottom=0)
    ax.legend(frameon=False)
axes[0].set_title("persistent-homology dimension")
axes[1].set_title("GRIDE at ranks 8-16")
figure.suptitle("One ID per text: 32 docstring windows against 32 texts the model wrote (quartiles shaded)")
figure.savefig("per_text_id.png", dpi=110, bbox_inches="tight")
