"""Check ``id_scaling(GRIDEDimension())`` against DADApy's ``return_id_scaling_gride`` rank by rank.

Prints, at each (n1, n2), both estimates, their relative difference and both
error bars, then how far ``GRIDEDimension(n1=1, n2=2)`` is from the unbiased
TwoNN MLE. DADApy needs numpy < 2, so it runs in its own interpreter (see
``bench_twonn.py``)::

    python benchmarks/check_gride_dadapy.py --peers-python .peers/bin/python
"""

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from bench_twonn import make_data

from sklearn_id import GRIDEDimension, TwoNNDimension, id_scaling

DADAPY = """
import json, sys, numpy as np
from dadapy import Data
ids, errors, _ = Data(coordinates=np.load(sys.argv[1])).return_id_scaling_gride(range_max=int(sys.argv[2]))
print(json.dumps([ids.tolist(), errors.tolist()]))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers-python", required=True, help="interpreter with dadapy installed")
    parser.add_argument("--n-samples", type=int, default=5_000)
    parser.add_argument("--n-features", type=int, default=200)
    parser.add_argument("--range-max", type=int, default=64)
    args = parser.parse_args()

    X = make_data(args.n_samples, args.n_features, latent_dim=6)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "X.npy"
        np.save(path, X)
        output = subprocess.run(
            [args.peers_python, "-c", DADAPY, str(path), str(args.range_max)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    dadapy_ids, dadapy_errors = json.loads(output.strip().splitlines()[-1])
    ours = id_scaling(GRIDEDimension(), X, range_max=args.range_max)
    print("  n1   n2        ours      DADApy  rel. diff   std ours  std DADApy")
    for (_, row), dimension, error in zip(ours.iterrows(), dadapy_ids, dadapy_errors):
        print(
            f"{row.n1:4.0f} {row.n2:4.0f} {row.id:11.8f} {dimension:11.8f} {abs(row.id - dimension) / dimension:10.1e}"
            f" {row.id_std:10.5f} {error:11.5f}"
        )
    gride = GRIDEDimension(n1=1, n2=2).fit(X).dimension_
    twonn = TwoNNDimension(method="mle", discard_fraction=0).fit(X).dimension_
    print(f"\nGRIDE(1, 2) against the unbiased TwoNN MLE: relative difference {abs(gride - twonn) / twonn:.1e}")


if __name__ == "__main__":
    main()
