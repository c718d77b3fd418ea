"""Time a language model's depth profile against the script its users write today.

The workload: a GPT-2-style model built from a config (8 blocks, width 256,
random weights), 20,000 sequences of up to 16 random tokens (lengths 4 to
16, right-padded, so the attention mask matters), mean pooling over the real
tokens, every block.

- ours: ``DepthProfile(model, pooling="mean", n_resamples=0,
  pca_estimator=None)`` on the mapping of ``input_ids`` and
  ``attention_mask`` (layers="auto": the embedding output, the 8 blocks, the
  final norm);
- the script: ``model(**batch, output_hidden_states=True)`` batch by batch,
  the masked mean of every hidden state by hand, then DADApy
  ``Data(A).compute_id_2NN()`` on each layer.

HF's hidden states are the embedding output, the outputs of blocks 0-6 and
the final norm applied to block 7: nine of our ten rows, compared one to
one. Each run is a fresh process, so its peak memory is its own. DADApy
needs numpy < 2, so the script runs from its own environment::

    python -m venv .peers
    .peers/bin/pip install dadapy transformers torch==2.14.1
    python benchmarks/bench_transformers.py --peers-python .peers/bin/python
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
N_BLOCKS = 8
# HF's hidden states, named by the module whose output each one is.
HIDDEN_STATES = ["transformer.drop", *[f"transformer.h.{i}" for i in range(N_BLOCKS - 1)], "transformer.ln_f"]


def _peak_mb():
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _workload(n_sequences, length=16):
    import numpy as np
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    config = transformers.GPT2Config(n_layer=N_BLOCKS, n_embd=256, n_head=8, n_positions=64)
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(config).eval()
    rng = np.random.default_rng(1)
    input_ids = rng.integers(0, config.vocab_size, size=(n_sequences, length))
    lengths = rng.integers(4, length + 1, size=n_sequences)
    attention_mask = (np.arange(length)[None] < lengths[:, None]).astype(np.int64)
    return model, {"input_ids": input_ids, "attention_mask": attention_mask}


def _script(model, tokens, batch_size=128):
    """What users write: every hidden state, pooled by hand over the mask, then DADApy per layer."""
    import numpy as np
    import torch
    from dadapy import Data

    pooled = []
    with torch.inference_mode():
        for start in range(0, len(tokens["input_ids"]), batch_size):
            batch = {key: torch.as_tensor(value[start : start + batch_size]) for key, value in tokens.items()}
            states = model(**batch, output_hidden_states=True).hidden_states
            mask = batch["attention_mask"].unsqueeze(-1).float()
            pooled.append([((state * mask).sum(1) / mask.sum(1)).numpy() for state in states])
    layers = [np.concatenate([batch[i] for batch in pooled]) for i in range(len(pooled[0]))]
    del pooled
    return [float(Data(A, verbose=False).compute_id_2NN()[0]) for A in layers]


def _worker(method, n_sequences):
    model, tokens = _workload(n_sequences)
    before = _peak_mb()
    start = time.perf_counter()
    if method == "ours":
        from sklearn_id import DepthProfile

        profile = DepthProfile(model, pooling="mean", n_resamples=0, pca_estimator=None, device="cpu").fit(tokens)
        table = profile.profile_.set_index("layer")
        ids = [float(table.loc[name, "id"]) for name in HIDDEN_STATES]
        layers = list(table.index)
    else:
        ids = _script(model, tokens)
        layers = HIDDEN_STATES
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "ids": ids, "layers": layers, "peak_mb": _peak_mb(), "before_mb": before}))


def _run(python, method, n_sequences):
    command = [python, __file__, "--worker", method, "--n-sequences", str(n_sequences)]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        print(f"{method} failed: {result.stderr.strip().splitlines()[-3:]}")
        return None
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-sequences", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--peers-python", default=sys.executable)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker, args.n_sequences)
        return
    check = subprocess.run([args.peers_python, "-c", "import dadapy, torch, transformers"], capture_output=True)
    methods = {"ours": sys.executable}
    if check.returncode == 0:
        methods["script"] = args.peers_python
    else:
        print(f"skipping the script: dadapy, torch and transformers are not importable by {args.peers_python}")
    results = {method: [] for method in methods}
    for _ in range(args.repeats):
        for method, python in methods.items():
            record = _run(python, method, args.n_sequences)
            if record:
                results[method].append(record)
    print(
        f"GPT-2 from a config ({N_BLOCKS} blocks, width 256), {args.n_sequences} sequences of 4-16 tokens, "
        f"mean pooling; {args.repeats} alternating runs"
    )
    print(f"our layers: {', '.join(results['ours'][0]['layers'])}")
    ours = statistics.median(r["seconds"] for r in results["ours"])
    reference = results["ours"][0]["ids"]
    labels = {"ours": "DepthProfile(pooling='mean')", "script": "hidden states + mean + DADApy"}
    print(f"{'method':<32} {'median s':>9} {'vs ours':>8} {'peak MB':>8} {'extra MB':>9} {'max abs. ID diff':>17}")
    for method, records in results.items():
        if not records:
            continue
        seconds = statistics.median(r["seconds"] for r in records)
        peak = max(r["peak_mb"] for r in records)
        extra = max(r["peak_mb"] - r["before_mb"] for r in records)
        diff = max(abs(a - b) for a, b in zip(records[0]["ids"], reference))
        print(f"{labels[method]:<32} {seconds:9.2f} {seconds / ours:7.2f}x {peak:8.0f} {extra:9.0f} {diff:17.1e}")
    print(
        "IDs (ours): "
        + ", ".join(f"{name.removeprefix('transformer.')} {value:.3f}" for name, value in zip(HIDDEN_STATES, reference))
    )


if __name__ == "__main__":
    main()
