"""Time whole ID-scaling curves as multiples of one ``TwoNNDimension().fit`` on the same data.

The decimation curve (``id_scaling(TwoNNDimension(), X)``, subsets down to 20
points) and the GRIDE curve (``id_scaling(GRIDEDimension(), X, range_max=64)``)
alternate with the single fit in one process; the medians and ratios are
printed. With ``--peers-python``, DADApy's ``return_id_scaling_gride`` and
``return_id_scaling_2NN`` are timed too, in that interpreter (see
``bench_twonn.py`` for the peers' virtual environment)::

    python benchmarks/bench_scaling.py --peers-python .peers/bin/python
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_twonn import make_data

DADAPY = """
import sys, time, numpy as np
from dadapy import Data
X = np.load(sys.argv[1])
start = time.perf_counter()
getattr(Data(coordinates=X), sys.argv[2])(**eval(sys.argv[3]))
print(time.perf_counter() - start)
"""


def _time(function):
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=20_000)
    parser.add_argument("--n-features", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--peers-python", help="interpreter with dadapy installed")
    args = parser.parse_args()

    from sklearn_id import GRIDEDimension, TwoNNDimension, id_scaling

    X = make_data(args.n_samples, args.n_features)
    methods = {
        "one TwoNNDimension().fit": lambda: TwoNNDimension().fit(X),
        "decimation curve (n_min=20)": lambda: id_scaling(TwoNNDimension(), X, n_min=20, random_state=0),
        "GRIDE curve (range_max=64)": lambda: id_scaling(GRIDEDimension(), X, range_max=64),
    }
    times = {name: [] for name in methods}
    for _ in range(args.repeats):
        for name, function in methods.items():
            times[name].append(_time(function))
    if args.peers_python:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "X.npy"
            import numpy as np

            np.save(path, X)
            for name, call, kwargs in [
                ("DADApy return_id_scaling_gride(64)", "return_id_scaling_gride", "{'range_max': 64}"),
                ("DADApy return_id_scaling_2NN", "return_id_scaling_2NN", "{'n_min': 20}"),
            ]:
                times[name] = [
                    float(
                        subprocess.run(
                            [args.peers_python, "-c", DADAPY, str(path), call, kwargs],
                            capture_output=True,
                            text=True,
                            check=True,
                        ).stdout.split()[-1]
                    )
                    for _ in range(args.repeats)
                ]
    reference = statistics.median(times["one TwoNNDimension().fit"])
    print(f"N={args.n_samples}, D={args.n_features}, medians of {args.repeats} runs\n")
    print("| computation | time | multiple of one TwoNN fit |\n|---|---|---|")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.2f} s | {median / reference:.2f}x |")


if __name__ == "__main__":
    sys.exit(main())
