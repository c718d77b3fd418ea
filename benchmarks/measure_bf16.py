"""What running a model in bfloat16 does to its depth profile: the same GPT-2 in float32 and in bf16, side by side.

A GPT-2 built from a config (6 blocks, width 128, untrained, seed 0) reads
2,000 distinct windows of 64 characters of the standard library's docstrings,
one character per token; ``DepthProfile`` with mean pooling and 5 resamples
profiles the embedding output, every block and the final norm, once with the
model in float32 and once with the same weights cast to bfloat16 (run in its
own dtype; the activations are upcast to float32 on the device before
pooling). The user guide's table is this script's output::

    python benchmarks/measure_bf16.py
"""

import time
import warnings

import numpy as np
import pandas as pd
import torch
import transformers

from sklearn_id import DepthProfile
from sklearn_id.datasets import load_stdlib_docstrings


def windows(n_windows=2000, length=64, seed=1):
    text = "\n".join(load_stdlib_docstrings())
    alphabet = sorted(set(text))
    codes = np.array([alphabet.index(char) for char in text], dtype=np.int64)
    starts = np.random.default_rng(seed).integers(0, len(codes) - length, size=3 * n_windows)
    distinct = np.unique(np.stack([codes[start : start + length] for start in starts]), axis=0)
    return distinct[np.random.default_rng(seed).permutation(len(distinct))[:n_windows]], len(alphabet)


def main():
    warnings.simplefilter("ignore")
    transformers.logging.set_verbosity_error()
    ids, vocabulary = windows()
    config = transformers.GPT2Config(
        vocab_size=vocabulary, n_positions=64, n_embd=128, n_layer=6, n_head=4, bos_token_id=0, eos_token_id=0
    )
    torch.manual_seed(0)
    model = transformers.GPT2Model(config).eval()
    tokens = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    profiles = {}
    for name, dtype in [("float32", torch.float32), ("bf16", torch.bfloat16)]:
        start = time.perf_counter()
        profile = DepthProfile(model.to(dtype), pooling="mean", random_state=0, device="cpu").fit(tokens)
        profiles[name] = profile.profile_.set_index("layer")[["id", "id_std", "pca_id"]]
        print(f"{name}: {time.perf_counter() - start:.1f} s")
    table = pd.concat(profiles, axis=1)
    table[("bf16 - float32", "id")] = table[("bf16", "id")] - table[("float32", "id")]
    print(f"\n{len(ids)} windows of 64 characters, GPT-2 config (6 x 128, untrained), mean pooling")
    print(table.round(3).to_string())


if __name__ == "__main__":
    main()
