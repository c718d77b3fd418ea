"""Time ``TwoNNDimension().fit`` against DADApy, scikit-dimension and a faiss-cpu flat search.

Every measurement runs in a fresh process, so its peak memory (``ru_maxrss``)
is its own; the methods alternate, and the medians and ratios are printed.

The peers pin an old jax (DADApy) that forces numpy < 2, so they live in a
virtual environment of their own::

    python -m venv .peers
    .peers/bin/pip install dadapy scikit-dimension faiss-cpu
    python benchmarks/bench_twonn.py --peers-python .peers/bin/python

A peer that is absent is skipped. ``--device cuda`` runs our fit on CUDA.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

PEERS = {
    "dadapy": "DADApy Data(X).compute_id_2NN()",
    "skdim": "scikit-dimension TwoNN().fit(X)",
    "faiss": "faiss-cpu IndexFlatL2 search (k=3) + the same fit",
}


def make_data(n_samples, n_features, latent_dim=10, seed=0):
    """A ``latent_dim``-dimensional Gaussian pushed through a random linear map and tanh."""
    import numpy as np

    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n_samples, latent_dim))
    return np.tanh(latent @ rng.standard_normal((latent_dim, n_features)) / np.sqrt(latent_dim))


def _peak_mb():
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _worker(method, data_path, device, offset):
    """Run one measurement in this process and print it as JSON."""
    import numpy as np

    X = np.load(data_path) + offset
    before_mb = _peak_mb()
    if method == "ours":
        from sklearn_id import TwoNNDimension

        start = time.perf_counter()
        estimate = TwoNNDimension(device=device).fit(X).dimension_
    elif method == "dadapy":
        from dadapy import Data

        start = time.perf_counter()
        estimate = Data(X, verbose=False).compute_id_2NN()[0]
    elif method == "skdim":
        from skdim.id import TwoNN

        start = time.perf_counter()
        estimate = TwoNN().fit(X).dimension_
    elif method == "faiss":
        import faiss

        sys.path.insert(0, str(REPO))
        from sklearn_id._twonn import twonn_linear_fit

        start = time.perf_counter()
        X32 = np.ascontiguousarray(X, dtype=np.float32)
        index = faiss.IndexFlatL2(X32.shape[1])
        index.add(X32)
        squared, _ = index.search(X32, 3)
        with np.errstate(all="ignore"):
            estimate = twonn_linear_fit(np.sqrt(squared[:, 2] / squared[:, 1]))
    elif method == "product":
        X32 = np.ascontiguousarray(X, dtype=np.float32)
        start = time.perf_counter()
        X32 @ X32.T
        estimate = float("nan")
    else:
        raise ValueError(method)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "estimate": float(estimate), "peak_mb": _peak_mb(), "before_mb": before_mb}))


def _run(python, method, data_path, device, offset=0.0):
    command = [python, __file__, "--worker", method, "--data", data_path, "--device", device, "--offset", str(offset)]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        return None, result.stderr.strip().splitlines()[-1] if result.stderr else "failed"
    return json.loads(result.stdout.strip().splitlines()[-1]), None


def _peer_available(python, method):
    module = {"dadapy": "dadapy", "skdim": "skdim", "faiss": "faiss"}[method]
    return subprocess.run([python, "-c", f"import {module}"], capture_output=True).returncode == 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=20_000)
    parser.add_argument("--n-features", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--peers-python", default=sys.executable, help="interpreter that has the peers")
    parser.add_argument("--device", default="cpu", help="our device: cpu or cuda")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--offset", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker, args.data, args.device, args.offset)
        return

    import numpy as np

    peers = [m for m in PEERS if _peer_available(args.peers_python, m)]
    for missing in sorted(set(PEERS) - set(peers)):
        print(f"skipping {missing}: not importable by {args.peers_python}")
    with tempfile.TemporaryDirectory() as tmp:
        data_path = os.path.join(tmp, "X.npy")
        np.save(data_path, make_data(args.n_samples, args.n_features))
        print(f"N = {args.n_samples}, D = {args.n_features}, float64; {args.repeats} alternating runs each")
        results = {m: [] for m in ["ours", *peers, "product"]}
        for _ in range(args.repeats):
            for method in results:
                python = sys.executable if method in ("ours", "product") else args.peers_python
                device = args.device if method == "ours" else "cpu"
                record, error = _run(python, method, data_path, device)
                if error:
                    print(f"{method} failed: {error}")
                    continue
                results[method].append(record)
        ours = statistics.median(r["seconds"] for r in results["ours"])
        reference = results["ours"][0]["estimate"]
        print(f"\n{'method':<55} {'median s':>9} {'vs ours':>8} {'estimate':>12} {'rel. diff':>9} {'peak MB':>8}")
        labels = {
            "ours": f"sklearn-id TwoNNDimension().fit (device={args.device})",
            **PEERS,
            "product": "one float32 N x D by D x N product (floor)",
        }
        for method, records in results.items():
            if not records:
                continue
            seconds = statistics.median(r["seconds"] for r in records)
            peak = max(r["peak_mb"] for r in records)
            estimate = records[0]["estimate"]
            print(
                f"{labels[method]:<55} {seconds:9.2f} {seconds / ours:7.2f}x "
                f"{estimate:12.8f} {abs(estimate / reference - 1):9.1e} {peak:8.0f}"
            )
        if results["product"]:
            floor = statistics.median(r["seconds"] for r in results["product"])
            print(f"\nours / float32 product = {ours / floor:.2f}x")
        print("\nOn the data translated by 1e4 (exactness): estimate, relative difference to ours untranslated")
        for method in ["ours", *peers]:
            python = sys.executable if method == "ours" else args.peers_python
            record, error = _run(python, method, data_path, args.device if method == "ours" else "cpu", 1e4)
            if error:
                print(f"  {labels[method]:<55} failed: {error}")
            else:
                estimate = record["estimate"]
                print(f"  {labels[method]:<55} {estimate:12.8f} {abs(estimate / reference - 1):9.1e}")


if __name__ == "__main__":
    main()
