"""Time a sweep of 8 checkpoints: the sequential loop against profile_sweep on a 2-worker Dask LocalCluster.

Two workloads, each 8 state dicts (random initialisations, saved to files)
and the default profile (5 resamples, PCA-ID): ``DigitsCNN`` on all 1,797
digits (about 0.2 s a model), and torchvision's ``resnet18`` on 1,000 random
images of 3 x 32 x 32 (about 1 s a model). The loop loads each checkpoint and fits ``DepthProfile`` in this
process; the sweep
runs ``profile_sweep`` inside ``joblib.parallel_config(backend="dask")`` on a
``LocalCluster(n_workers=2, threads_per_worker=1, processes=True)`` started
beforehand, its workers having imported the package as this process has
(the start is timed apart). It counts the copies of the data that reach the
workers: those the sweep gives them (in a worker plugin), and any transfer
of an array between workers. Workers run one thread each, the loop the
process's threads, so float32 forward passes may round differently: the IDs
agree to about 1e-7, not to the last bit. Run it with::

    pip install "sklearn-id[dask]"
    python benchmarks/bench_sweep.py
"""

import tempfile
import time
import warnings
from pathlib import Path

import joblib
import numpy as np
import torch
from distributed import Client, LocalCluster

from sklearn_id import DepthProfile, UndersampledWarning, profile_sweep
from sklearn_id.datasets import load_digit_images
from sklearn_id.models import DigitsCNN

PARAMS = {"random_state": 0, "device": "cpu"}


def workloads():
    """(name, architecture, data) of each workload."""
    from torchvision.models import resnet18

    images, _ = load_digit_images()
    random_images = torch.randn(1000, 3, 32, 32, generator=torch.Generator().manual_seed(1)).numpy()
    return [
        ("DigitsCNN, 1,797 digits", DigitsCNN, images),
        ("resnet18, 1,000 images of 32 x 32", resnet18, random_images),
    ]


def run(client, name, architecture, data, folder):
    paths = {}
    for seed in range(8):
        torch.manual_seed(seed)
        paths[f"seed {seed}"] = str(Path(folder) / f"{seed}.pt")
        torch.save(architecture().state_dict(), paths[f"seed {seed}"])

    start = time.perf_counter()
    loop = []
    for path in paths.values():
        model = architecture()
        model.load_state_dict(torch.load(path, weights_only=True))
        loop.append(DepthProfile(model, **PARAMS).fit(data).profile_["id"].to_numpy())
    loop_seconds = time.perf_counter() - start

    before = client.run(_array_transfers)
    received = client.run(_received)
    start = time.perf_counter()
    with joblib.parallel_config(backend="dask"):
        table = profile_sweep(paths, data, architecture=architecture, **PARAMS)
    sweep_seconds = time.perf_counter() - start
    after = client.run(_array_transfers)
    copies = sum(after[worker] - before[worker] for worker in after)
    now = client.run(_received)
    sent = sum(now[worker] - received[worker] for worker in now)
    ids = np.concatenate([table[table["model"] == name]["id"].to_numpy() for name in paths])
    diff = float(np.max(np.abs(ids - np.concatenate(loop))))
    print(f"\n8 checkpoints of {name}, default DepthProfile")
    print(f"sequential loop:               {loop_seconds:6.2f} s")
    print(
        f"profile_sweep, 2 Dask workers: {sweep_seconds:6.2f} s  (speed {loop_seconds / sweep_seconds:.2f}x the loop's)"
    )
    print(
        f"copies of the data the workers received: {sent} from the sweep + {copies} from each other, for "
        f"{len(after)} workers; "
        f"max ID difference from the loop {diff:.1e}"
    )


def _received(dask_worker):
    return dask_worker.__dict__.get("_sklearn_id_received", 0)


def _array_transfers(dask_worker):
    return sum(key.startswith("ndarray-") for entry in dask_worker.transfer_incoming_log for key in entry["keys"])


def main():
    # resnet18's wide layers are undersampled by 1,000 images: the timing is the point here.
    warnings.simplefilter("ignore", UndersampledWarning)
    start = time.perf_counter()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            # The workers import torch and the package before the clock starts, as this process has.
            client.run(lambda: __import__("sklearn_id.models").__name__)
            client.run(warnings.simplefilter, "ignore", UndersampledWarning)
            print(
                f"LocalCluster(n_workers=2, threads_per_worker=1) started in {time.perf_counter() - start:.1f} s "
                "(not counted below)"
            )
            for name, architecture, data in workloads():
                with tempfile.TemporaryDirectory() as folder:
                    run(client, name, architecture, data, folder)


if __name__ == "__main__":
    main()
