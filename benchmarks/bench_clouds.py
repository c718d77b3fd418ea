"""Time one ID per sample (token clouds) and the PH dimension against loops of fits, DADApy and scikit-dimension.

1. ``DepthProfile(per_sample=True)`` on 60 texts x 2 layers x 400 tokens
   (a small token model, width 128) against a loop of our own fits on the
   same activations (``LayerActivationTransformer`` once per layer, then
   ``TwoNNDimension().fit`` and ``GRIDEDimension().fit`` per cloud);
2. per-sample GRIDE at ranks (32, 64) on 200 texts x 9 hidden states x 256
   tokens of a GPT-2 built from a config (8 blocks, width 128), against the
   script of Viswanathan et al. (2025): the hidden states, then DADApy's
   ``return_id_scaling_gride(range_max=64)`` per prompt and layer, whose last
   rank pair is the same estimate;
3. ``PHDimension()`` against scikit-dimension's ``PH()`` with their defaults
   on 8 random 3-D cubes of 400 points in 10-D (time, and the estimates'
   mean, spread and root-mean-square error), then ours at 2,000 and 10,000
   points.

Medians of ``--repeats`` alternating runs. DADApy and scikit-dimension need
numpy < 2, so they run in their own interpreter (see ``bench_twonn.py``)::

    python benchmarks/bench_clouds.py --peers-python .peers/bin/python
"""

import argparse
import json
import statistics
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.base import clone

from sklearn_id import DepthProfile, GRIDEDimension, LayerActivationTransformer, PHDimension, TwoNNDimension

DADAPY_CLOUDS = """
import io, json, sys, time, contextlib
import numpy as np
from dadapy import Data
states = np.load(sys.argv[1])
start = time.perf_counter()
last = []
with contextlib.redirect_stdout(io.StringIO()):
    for layer in states.files:
        for cloud in states[layer]:
            ids, _, _ = Data(coordinates=cloud, verbose=False).return_id_scaling_gride(range_max=64)
            last.append(float(ids[-1]))
print(json.dumps({"seconds": time.perf_counter() - start, "ids": last}))
"""

SKDIM_PH = """
import json, sys, time
import numpy as np
from skdim.id import PH
X = np.load(sys.argv[1])["X"]
start = time.perf_counter()
estimate = PH().fit(X).dimension_
print(json.dumps({"seconds": time.perf_counter() - start, "id": float(estimate)}))
"""


class _TokenModel(torch.nn.Module):
    def __init__(self, width=128, vocabulary=500, positions=512):
        super().__init__()
        self.embed = torch.nn.Embedding(vocabulary, width)
        self.position = torch.nn.Embedding(positions, width)
        self.block = torch.nn.Sequential(torch.nn.Linear(width, width), torch.nn.Tanh())

    def forward(self, input_ids, attention_mask=None):
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        return self.block(self.embed(input_ids) + self.position(positions))


def _median_time(function, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _peer(peers_python, script, **arrays):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data.npz"
        np.savez(path, **arrays)
        output = subprocess.run([peers_python, "-c", script, str(path)], capture_output=True, text=True, check=True)
    return json.loads(output.stdout.strip().splitlines()[-1])


def per_sample_against_fits(repeats):
    torch.manual_seed(0)
    model = _TokenModel()
    ids = np.random.default_rng(0).integers(0, 500, size=(60, 400))
    tokens = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    layers = ["embed", "block"]
    print("1. 60 texts x 2 layers x 400 tokens, width 128:")
    for estimator in (TwoNNDimension(), GRIDEDimension(n1=8, n2=16)):

        def ours(estimator=estimator):
            DepthProfile(
                model, layers=layers, pooling="tokens", per_sample=True, id_estimator=estimator, device="cpu"
            ).fit(tokens)

        def loop(estimator=estimator):
            for layer in layers:
                rows = LayerActivationTransformer(model, layer, pooling="tokens", device="cpu").fit_transform(tokens)
                for cloud in np.split(rows, 60):
                    clone(estimator).fit(cloud)

        ours(), loop()  # warm
        a, b = _median_time(ours, repeats), _median_time(loop, repeats)
        print(f"   {estimator!r}: per_sample {a:.2f} s, a loop of fits {b:.2f} s: {b / a:.1f}x faster")


def gride_against_the_dadapy_script(peers_python):
    from transformers import GPT2Config, GPT2Model

    torch.manual_seed(0)
    model = GPT2Model(GPT2Config(n_layer=8, n_embd=128, n_head=4, n_positions=256, vocab_size=1000)).eval()
    ids = np.random.default_rng(1).integers(0, 1000, size=(200, 256))
    tokens = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    # The hidden states: the embedding (after drop), blocks 0 to 6, and the last block after ln_f.
    layers = ["drop", *[f"h.{i}" for i in range(7)], "ln_f"]
    start = time.perf_counter()
    profile = DepthProfile(
        model, layers=layers, pooling="tokens", per_sample=True, id_estimator=GRIDEDimension(n1=32, n2=64), device="cpu"
    ).fit(tokens)
    ours = time.perf_counter() - start
    with torch.no_grad():
        hidden = model(torch.as_tensor(ids), output_hidden_states=True).hidden_states
    states = {str(i): state.numpy().astype(np.float64) for i, state in enumerate(hidden)}
    theirs = _peer(peers_python, DADAPY_CLOUDS, **states)
    relative = np.abs(profile.sample_profiles_["id"].to_numpy() - np.array(theirs["ids"])) / np.array(theirs["ids"])
    print("\n2. per-sample GRIDE (32, 64), 200 texts x 9 hidden states x 256 tokens, GPT-2 config (8 x 128):")
    print(
        f"   ours {ours:.1f} s (reading included), DADApy per prompt and layer {theirs['seconds']:.1f} s "
        f"(hidden states given): {theirs['seconds'] / ours:.1f}x; IDs differ by {np.median(relative):.1e} "
        f"relative in the median (largest {relative.max():.1e})"
    )


def phd_against_skdim(peers_python, n_cubes=8):
    def cube(n, seed):
        rng = np.random.default_rng(seed)
        rotation = np.linalg.qr(rng.standard_normal((10, 10)))[0]
        return np.c_[rng.uniform(size=(n, 3)), np.zeros((n, 7))] @ rotation + 1e3

    ours, theirs, our_seconds = [], [], []
    for seed in range(n_cubes):
        X = cube(400, seed)
        start = time.perf_counter()
        ours.append(PHDimension(random_state=seed).fit(X).dimension_)
        our_seconds.append(time.perf_counter() - start)
        theirs.append(_peer(peers_python, SKDIM_PH, X=X))
    their_ids = np.array([result["id"] for result in theirs])
    their_seconds = statistics.median(result["seconds"] for result in theirs)
    print(f"\n3. PH dimension of {n_cubes} random 3-D cubes of 400 points in 10-D (true 3): mean, sd, rms error")
    for name, ids, seconds in [
        ("ours", np.array(ours), statistics.median(our_seconds)),
        ("scikit-dimension PH()", their_ids, their_seconds),
    ]:
        rms = float(np.sqrt(np.mean((ids - 3) ** 2)))
        print(f"   {name:>22}: {ids.mean():.3f}, {ids.std():.3f}, {rms:.3f}; median {seconds:.3f} s per fit")
    print(f"   ours {their_seconds / statistics.median(our_seconds):.0f}x faster")
    for n in (2_000, 10_000):
        X = cube(n, 0)
        start = time.perf_counter()
        estimate = PHDimension(random_state=0).fit(X).dimension_
        print(f"   {n} points: ours {estimate:.2f} in {time.perf_counter() - start:.1f} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers-python", required=True, help="interpreter with dadapy and scikit-dimension")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    per_sample_against_fits(args.repeats)
    gride_against_the_dadapy_script(args.peers_python)
    phd_against_skdim(args.peers_python)


if __name__ == "__main__":
    main()
