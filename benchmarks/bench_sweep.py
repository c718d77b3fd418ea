"""Time a sweep of 8 checkpoints of the digits CNN: the sequential loop against profile_sweep on a 2-worker Dask LocalCluster.

The workload: 8 state dicts of ``DigitsCNN`` (random initialisations, saved to
files), the default profile (5 resamples, PCA-ID) on all 1,797 digits. The
loop loads each checkpoint and fits ``DepthProfile`` in this process; the sweep
runs ``profile_sweep`` inside ``joblib.parallel_config(backend="dask")`` on a
``LocalCluster(n_workers=2, threads_per_worker=1, processes=True)`` started
beforehand, its workers having imported the package as this process has
(the start is timed apart). Workers run one thread each, the loop the
process's threads, so float32 forward passes may round differently: the IDs
agree to about 1e-7, not to the last bit. It also counts the copies of the
images that reach the workers (the scatter, plus the workers' incoming
transfers of it)::

    pip install "sklearn-id[dask]"
    python benchmarks/bench_sweep.py
"""

import tempfile
import time
from pathlib import Path

import joblib
import numpy as np
import torch
from distributed import Client, LocalCluster

from sklearn_id import DepthProfile, profile_sweep
from sklearn_id.datasets import load_digit_images
from sklearn_id.models import DigitsCNN

PARAMS = {"random_state": 0, "device": "cpu"}


def main():
    images, _ = load_digit_images()
    with tempfile.TemporaryDirectory() as folder:
        paths = {}
        for seed in range(8):
            torch.manual_seed(seed)
            paths[f"seed {seed}"] = str(Path(folder) / f"{seed}.pt")
            torch.save(DigitsCNN().state_dict(), paths[f"seed {seed}"])

        start = time.perf_counter()
        loop = []
        for name, path in paths.items():
            model = DigitsCNN()
            model.load_state_dict(torch.load(path, weights_only=True))
            loop.append(DepthProfile(model, **PARAMS).fit(images).profile_["id"].to_numpy())
        loop_seconds = time.perf_counter() - start

        start = time.perf_counter()
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
            with Client(cluster) as client:
                # The workers import torch and the package before the clock starts, as this process has.
                client.run(lambda: __import__("sklearn_id.models").__name__)
                started = time.perf_counter() - start
                start = time.perf_counter()
                with joblib.parallel_config(backend="dask"):
                    table = profile_sweep(paths, images, architecture=DigitsCNN, **PARAMS)
                sweep_seconds = time.perf_counter() - start
                copies = client.run(lambda dask_worker: sum(
                    key.startswith("ndarray-") for entry in dask_worker.transfer_incoming_log for key in entry["keys"]
                ))
    ids = np.concatenate([table[table["model"] == name]["id"].to_numpy() for name in paths])
    diff = float(np.max(np.abs(ids - np.concatenate(loop))))
    print("8 DigitsCNN checkpoints, default DepthProfile on 1,797 digits")
    print(f"sequential loop:              {loop_seconds:6.2f} s")
    print(f"profile_sweep, 2 Dask workers: {sweep_seconds:6.2f} s  ({loop_seconds / sweep_seconds:.2f}x the loop; "
          f"cluster start {started:.1f} s apart)")
    print(f"copies of the images on the workers: 1 scatter + {sum(copies.values())} peer transfer(s) "
          f"for {len(copies)} workers; max ID difference from the loop {diff:.1e}")


if __name__ == "__main__":
    main()
