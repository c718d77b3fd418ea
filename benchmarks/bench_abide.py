"""Time ``ABIDEDimension`` against DADApy's ``return_ids_kstar_binomial`` and ``return_ids_kstar_gride``.

The data: 20,000 points in 40-D, an 8-D Gaussian through a random linear map
plus noise of 0.01 in every direction (``--n-samples`` and ``--n-features``
change it). Each measurement runs in a fresh process, so its peak memory
(``ru_maxrss``) is its own; ours and DADApy's alternate, ``--repeats`` times,
and the medians, the ratio and the largest difference of the IDs of every
iteration are printed. ``max_neighbors=100`` is DADApy's ``maxk=100``;
``max_neighbors="auto"`` (no cap) is timed too.

DADApy pins an old jax that forces numpy < 2, so it lives in a virtual
environment of its own (see ``bench_twonn.py``)::

    python benchmarks/bench_abide.py --peers-python .peers/bin/python
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

WORKER = """
import io, json, resource, sys, time, contextlib, warnings
import numpy as np
X = np.load(sys.argv[1])
who, method, max_neighbors = sys.argv[2], sys.argv[3], sys.argv[4]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
    warnings.simplefilter("ignore")
    start = time.perf_counter()
    if who == "dadapy":
        from dadapy import Data
        data = Data(coordinates=X, maxk=int(max_neighbors), verbose=False)
        run = data.return_ids_kstar_binomial if method == "binomial" else data.return_ids_kstar_gride
        ids = run()[0]
    else:
        from sklearn_id import ABIDEDimension
        limit = max_neighbors if max_neighbors == "auto" else int(max_neighbors)
        ids = ABIDEDimension(method=method, max_neighbors=limit, device=sys.argv[5]).fit(X).dimensions_
    seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "ids": [float(i) for i in ids], "peak_mb": peak, "before_mb": before}))
"""


def make_data(n_samples, n_features, latent_dim=8, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n_samples, latent_dim))
    return latent @ rng.standard_normal((latent_dim, n_features)) + 0.01 * rng.standard_normal((n_samples, n_features))


def _run(python, path, who, method, max_neighbors, device):
    command = [python, "-c", WORKER, str(path), who, method, str(max_neighbors), device]
    output = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(output.stdout.strip().splitlines()[-1])


def main():
    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers-python", required=True, help="interpreter with dadapy installed")
    parser.add_argument("--n-samples", type=int, default=20_000)
    parser.add_argument("--n-features", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data.npy"
        np.save(path, make_data(args.n_samples, args.n_features))
        print(f"{args.n_samples} points in {args.n_features}-D; medians of {args.repeats} alternating runs")
        print(
            f"{'':>10} {'ours s':>8} {'DADApy s':>9} {'ratio':>6} {'ours MB':>8} {'DADApy MB':>10} {'IDs differ':>11}"
        )
        for method in ("binomial", "gride"):
            ours, theirs = [], []
            for _ in range(args.repeats):
                ours.append(_run(sys.executable, path, "ours", method, 100, args.device))
                theirs.append(_run(args.peers_python, path, "dadapy", method, 100, args.device))
            a = statistics.median(r["seconds"] for r in ours)
            b = statistics.median(r["seconds"] for r in theirs)
            differ = np.max(np.abs(np.array(ours[0]["ids"]) - theirs[0]["ids"]) / np.array(theirs[0]["ids"]))
            peak_ours = max(r["peak_mb"] - r["before_mb"] for r in ours)
            peak_theirs = max(r["peak_mb"] - r["before_mb"] for r in theirs)
            print(f"{method:>10} {a:8.2f} {b:9.2f} {b / a:5.2f}x {peak_ours:8.0f} {peak_theirs:10.0f} {differ:11.1e}")
        auto = [_run(sys.executable, path, "ours", "binomial", "auto", args.device) for _ in range(args.repeats)]
        seconds = statistics.median(r["seconds"] for r in auto)
        print(f"max_neighbors='auto' (binomial): {seconds:.2f} s, ID {auto[0]['ids'][-1]:.4f}")


if __name__ == "__main__":
    main()
