"""Time the information-imbalance matrix of a profile's layers against DADApy, pair by pair.

``InformationImbalance().compare(layers)`` (what ``DepthProfile(compare=["imbalance"])``
runs) against DADApy's ``MetricComparisons(A).return_information_imbalace(B)``
over every pair of layers (one call gives both directions):

1. at ``--n-small`` points (1,500), DADApy on the full data (``subset_size=N``):
   the same numbers, so the largest difference is printed with the ratio;
2. at ``--n-large`` points (10,000) and twice the layers, DADApy with its
   default ``subset_size=2000`` (the mean over 5 disjoint subsets): a different
   estimate, so the printout says how far it is from ours.

Our peak memory is the tracemalloc peak of the matrix (numpy reports its
buffers to it). DADApy needs numpy < 2, so it runs in its own interpreter
(see ``bench_twonn.py``)::

    python benchmarks/bench_compare.py --peers-python .peers/bin/python
"""

import argparse
import json
import subprocess
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from sklearn_id import InformationImbalance

DADAPY = """
import io, json, sys, time, contextlib, warnings
import numpy as np
from dadapy import MetricComparisons
layers = np.load(sys.argv[1])
subset_size = int(sys.argv[2])
names = sorted(layers.files, key=int)
n = layers[names[0]].shape[0]
matrix = np.zeros((len(names), len(names)))
start = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
    warnings.simplefilter("ignore")
    for i, a in enumerate(names):
        for j in range(i + 1, len(names)):
            comparison = MetricComparisons(coordinates=layers[a], maxk=min(n, subset_size) - 1)
            ab, ba = comparison.return_information_imbalace(layers[names[j]], k=1, subset_size=subset_size)
            matrix[i, j], matrix[j, i] = ab[0], ba[0]
print(json.dumps({"seconds": time.perf_counter() - start, "matrix": matrix.tolist()}))
"""


def make_layers(n_samples, n_layers, seed=0):
    """A network-like chain: a 6-D latent pushed through random tanh layers of varied widths."""
    rng = np.random.default_rng(seed)
    current = rng.standard_normal((n_samples, 6)) @ rng.standard_normal((6, 64))
    layers = {}
    for index in range(n_layers):
        width = (64, 256, 128, 96, 32)[index % 5]
        current = np.tanh(current @ rng.standard_normal((current.shape[1], width)) / np.sqrt(current.shape[1]))
        layers[str(index)] = current + 0.01 * rng.standard_normal(current.shape)
    return layers


def _dadapy(peers_python, layers, subset_size):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "layers.npz"
        np.savez(path, **layers)
        command = [peers_python, "-c", DADAPY, str(path), str(subset_size)]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    result = json.loads(output.strip().splitlines()[-1])
    return result["seconds"], np.array(result["matrix"])


def _ours(layers):
    tracemalloc.start()
    start = time.perf_counter()
    matrix = InformationImbalance().compare(layers).to_numpy()
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return seconds, matrix, peak


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers-python", required=True, help="interpreter with dadapy installed")
    parser.add_argument("--n-small", type=int, default=1_500)
    parser.add_argument("--n-large", type=int, default=10_000)
    args = parser.parse_args()

    layers = make_layers(args.n_small, 5)
    ours, matrix, peak = _ours(layers)
    theirs, reference = _dadapy(args.peers_python, layers, args.n_small)
    difference = np.abs(matrix - reference)[_off_diagonal(matrix)].max()
    print(f"5 layers, N = {args.n_small}, DADApy on the full data (subset_size=N), pair by pair:")
    print(f"  ours {ours:.3f} s (peak {peak / 2**20:.0f} MiB), DADApy {theirs:.2f} s: {theirs / ours:.1f}x faster")
    print(f"  largest difference of the matrices: {difference:.1e}")

    layers = make_layers(args.n_large, 10)
    ours, matrix, peak = _ours(layers)
    theirs, reference = _dadapy(args.peers_python, layers, 2000)
    relative = (np.abs(matrix - reference) / np.abs(matrix))[_off_diagonal(matrix)]
    print(f"\n10 layers, N = {args.n_large}; DADApy with its default subset_size=2000 (5 subsets):")
    print(f"  ours {ours:.2f} s (peak {peak / 2**20:.0f} MiB), DADApy {theirs:.2f} s: {theirs / ours:.1f}x")
    print(
        f"  DADApy's subsets differ from the full-data imbalance by {np.median(relative):.0%} in the median "
        f"(largest {relative.max():.0%}): the imbalance of related layers scales as 1 / N, so a "
        "2,000-point subset's is several times the full data's"
    )


def _off_diagonal(matrix):
    return ~np.eye(matrix.shape[0], dtype=bool)


if __name__ == "__main__":
    main()
