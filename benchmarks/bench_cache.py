"""What the activation cache saves: a GPT-2's depth profile fitted twice, the second time from the cache.

A GPT-2 built from a config (8 blocks, width 256, 8 heads, untrained, seed 0)
reads 5,000 texts of 16 to 63 words of the standard library's docstrings,
tokenized by a word-level tokenizer trained on the spot.
``DepthProfile(cache=FOLDER)`` profiles the embedding output, every block
and the final norm (mean pooling, 5 resamples): first with TwoNN, which
fills the cache, then with GRIDE, which reads it and runs no forward pass
(a forward pre-hook counts them), then with TwoNN again, whose profile must
equal the first one. Printed: the three times, the ratio, the forward passes
and the cache's size on disk::

    python benchmarks/bench_cache.py
"""

import argparse
import tempfile
import time
import warnings

import numpy as np
import pandas as pd
import torch
import transformers

from sklearn_id import DepthProfile, GRIDEDimension, TwoNNDimension
from sklearn_id._cache import cache_size
from sklearn_id.datasets import load_stdlib_docstrings


def texts_and_tokenizer(n_texts, seed=0):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    words = " ".join(load_stdlib_docstrings()).split()
    rng = np.random.default_rng(seed)
    lengths = rng.integers(16, 64, size=n_texts)
    starts = rng.integers(0, len(words) - 64, size=n_texts)
    texts = [" ".join(words[start : start + length]) for start, length in zip(starts, lengths)]
    tokenizer = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator(texts, trainers.WordLevelTrainer(vocab_size=8000, special_tokens=["[PAD]", "[UNK]"]))
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]", model_max_length=256
    )
    return texts, fast


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-texts", type=int, default=5000)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    transformers.logging.set_verbosity_error()
    texts, tokenizer = texts_and_tokenizer(args.n_texts)
    config = transformers.GPT2Config(
        vocab_size=len(tokenizer), n_positions=256, n_embd=256, n_layer=8, n_head=8, bos_token_id=0, eos_token_id=0
    )
    torch.manual_seed(0)
    model = transformers.GPT2Model(config).eval()
    calls = []
    model.register_forward_pre_hook(lambda *_: calls.append(1))
    settings = {"tokenizer": tokenizer, "pooling": "mean", "random_state": 0, "device": "cpu"}
    with tempfile.TemporaryDirectory() as folder:
        timings, profiles, passes = {}, {}, {}
        for name, estimator in [("first (TwoNN)", TwoNNDimension()), ("second (GRIDE)", GRIDEDimension())]:
            calls.clear()
            start = time.perf_counter()
            profile = DepthProfile(model, id_estimator=estimator, cache=folder, **settings).fit(texts)
            timings[name], profiles[name], passes[name] = time.perf_counter() - start, profile.profile_, len(calls)
        calls.clear()
        again = DepthProfile(model, cache=folder, **settings).fit(texts).profile_
        size = cache_size(folder)
    first, second = timings
    print(f"{args.n_texts} texts, GPT-2 config 8 x 256 ({sum(p.numel() for p in model.parameters()):,} parameters)")
    for name in timings:
        print(f"{name:>15}: {timings[name]:7.2f} s, {passes[name]} forward passes")
    print(f"{'ratio':>15}: {timings[first] / timings[second]:.1f}x")
    print(f"{'cache on disk':>15}: {size / 2**20:.1f} MiB for {len(again)} layers")
    print(f"TwoNN from the cache equals the first fit: {again.equals(profiles[first])} ({len(calls)} forward passes)")
    print(pd.concat({name: table.set_index("layer")["id"] for name, table in profiles.items()}, axis=1).round(2))


if __name__ == "__main__":
    main()
