"""Store DADApy's layer-comparison numbers for the parity tests (``tests/test_compare.py``).

Draws two tie-free representations of the same 300 samples and their labels,
computes DADApy's information imbalance (``subset_size=N``, k = 1 and 5, both
directions), neighbourhood overlap (k = 30) and label overlap (k = 30,
weighted and not), and writes the data with the numbers to
``tests/data/dadapy_compare.npz``. DADApy needs numpy < 2, so it runs in its
own interpreter (see ``bench_twonn.py``); run once, from the repository root::

    python benchmarks/peer_numbers_compare.py --peers-python .peers/bin/python
"""

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "dadapy_compare.npz"

DADAPY = """
import io, json, sys, contextlib, warnings
import numpy as np
from dadapy import MetricComparisons
data = np.load(sys.argv[1])
A, B, y = data["A"], data["B"], data["y"]
n = A.shape[0]
out = {}
with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
    warnings.simplefilter("ignore")
    for k in (1, 5):
        ab, ba = MetricComparisons(coordinates=A, maxk=n - 1).return_information_imbalace(B, k=k, subset_size=n)
        out[f"imbalance_ab_k{k}"], out[f"imbalance_ba_k{k}"] = float(ab[0]), float(ba[0])
    out["overlap_k30"] = float(MetricComparisons(coordinates=A, maxk=n - 1).return_data_overlap(coordinates=B, k=30))
    for weighted in (True, False):
        value = MetricComparisons(coordinates=A, maxk=n - 1).return_label_overlap(y, k=30, weighted=weighted)
        out[f"label_overlap_k30_{'weighted' if weighted else 'plain'}"] = float(value)
print(json.dumps(out))
"""


def make_layers(n_samples=300, seed=0):
    """A 4-D Gaussian with two small noise directions, a non-linear 6-D image of it, and 4 unequal classes."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n_samples, 4))
    A = np.c_[z, 0.1 * rng.standard_normal((n_samples, 2))]
    B = np.tanh(z @ rng.standard_normal((4, 6))) + 0.05 * rng.standard_normal((n_samples, 6))
    y = (z[:, 0] > 0).astype(int) + 2 * (z[:, 1] > 0.5)
    return A, B, y


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers-python", required=True, help="interpreter with dadapy installed")
    args = parser.parse_args()
    A, B, y = make_layers()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "layers.npz"
        np.savez(path, A=A, B=B, y=y)
        output = subprocess.run(
            [args.peers_python, "-c", DADAPY, str(path)], capture_output=True, text=True, check=True
        ).stdout
    numbers = json.loads(output.strip().splitlines()[-1])
    np.savez(OUT, A=A, B=B, y=y, **{name: np.float64(value) for name, value in numbers.items()})
    for name, value in numbers.items():
        print(f"{name:32s} {value:.12f}")
    print(f"written to {OUT}")


if __name__ == "__main__":
    main()
