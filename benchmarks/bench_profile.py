"""Time a whole depth profile against the seed paper's recipe and against hooks + DADApy.

The workload: torchvision ``resnet18(weights=None)`` at 7 checkpoints
(maxpool, layer1-4, avgpool, fc) on 2,000 random images of 3 x 64 x 64, no
resamples and no PCA-ID (like for like). The two plain scripts:

- the seed recipe: forward hooks collecting every checkpoint, then per layer a
  full float64 ``scipy`` ``pdist``/``squareform`` distance matrix, a full row
  sort and the linear fit;
- what a user writes today: the same hooks, then DADApy
  ``Data(A).compute_id_2NN()`` on each layer.

A second table compares the default profile (5 resamples of 90% of the
images, PCA-ID) with what a user writes for the same numbers: the same hooks,
then per layer DADApy ``compute_id_2NN`` on all images and on each of the same
5 subsamples, and sklearn's ``PCA`` after ``StandardScaler``.

A last run repeats our bare profile with ``memory_budget`` set to a quarter of
the total activation size. Each run is a fresh process, so its peak memory is
its own. DADApy needs numpy < 2, so it runs from its own environment::

    python -m venv .peers
    .peers/bin/pip install dadapy torch==2.14.1 torchvision==0.29.1
    python benchmarks/bench_profile.py --peers-python .peers/bin/python
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
LAYERS = ["maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool", "fc"]


def _peak_mb():
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _hooked_activations(model, images, batch_size=128):
    """The plain loop: hooks append every checkpoint's batches to lists, then concatenate."""
    import torch

    recorded = {name: [] for name in LAYERS}
    modules = dict(model.named_modules())
    handles = [
        modules[name].register_forward_hook(
            lambda _m, _i, output, name=name: recorded[name].append(output.detach().flatten(1))
        )
        for name in LAYERS
    ]
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            model(torch.from_numpy(images[start : start + batch_size]))
    for handle in handles:
        handle.remove()
    return {name: torch.cat(batches).numpy() for name, batches in recorded.items()}


def _seed_twonn(A, fraction=0.9):
    """The seed paper's estimate: full distance matrix, full row sort, linear fit."""
    import numpy as np
    from scipy.spatial.distance import pdist, squareform

    distances = np.sort(squareform(pdist(A.astype(np.float64))), axis=1)
    mu = distances[:, 2] / distances[:, 1]
    n = mu.size
    x = np.sort(np.log(mu))[: int(n * fraction)]
    y = -np.log(1 - np.arange(1, x.size + 1) / n)
    return float(np.linalg.lstsq(x[:, None], y, rcond=None)[0][0])


def _subsets(n_images, n_resamples=5, seed=0):
    """The subsamples DepthProfile(random_state=seed) draws."""
    import numpy as np

    rng = np.random.RandomState(seed)
    size = int(round(0.9 * n_images))
    return [np.sort(rng.choice(n_images, size, replace=False)) for _ in range(n_resamples)]


def _pca_id(A):
    """The paper's PCA-ID as a user computes it: StandardScaler, then sklearn's PCA."""
    import numpy as np
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    ratios = PCA().fit(StandardScaler().fit_transform(A)).explained_variance_ratio_
    return int(np.searchsorted(np.cumsum(ratios), 0.9 - 1e-10) + 1)


def _worker(method, n_images, budget_fraction):
    import torch
    from torchvision.models import resnet18

    torch.manual_seed(0)
    model = resnet18(weights=None)
    images = torch.randn(n_images, 3, 64, 64, generator=torch.Generator().manual_seed(1)).numpy()
    before = _peak_mb()
    start = time.perf_counter()
    if method == "ours":
        from sklearn_id import DepthProfile

        budget = None
        if budget_fraction:
            widths = [16384, 16384, 8192, 4096, 2048, 512, 1000]  # resnet18 at 64 x 64
            budget = int(budget_fraction * 4 * n_images * sum(widths))
        profile = DepthProfile(
            model, layers=LAYERS, n_resamples=0, pca_estimator=None, device="cpu", memory_budget=budget
        ).fit(images)
        ids = profile.profile_["id"].tolist()
    elif method == "ours-default":
        from sklearn_id import DepthProfile

        profile = DepthProfile(model, layers=LAYERS, device="cpu", random_state=0).fit(images)
        ids = profile.profile_[["id", "id_std", "pca_id"]].to_numpy().ravel().tolist()
    elif method == "dadapy-default":
        import numpy as np
        from dadapy import Data

        activations = _hooked_activations(model, images)
        subsets = _subsets(n_images)
        ids = []
        for name in LAYERS:
            A = activations.pop(name)
            resampled = [float(Data(A[subset], verbose=False).compute_id_2NN()[0]) for subset in subsets]
            ids += [float(Data(A, verbose=False).compute_id_2NN()[0]), float(np.std(resampled, ddof=1)), _pca_id(A)]
    elif method == "seed":
        activations = _hooked_activations(model, images)
        ids = [_seed_twonn(activations.pop(name)) for name in LAYERS]
    elif method == "dadapy":
        from dadapy import Data

        activations = _hooked_activations(model, images)
        ids = [float(Data(activations.pop(name), verbose=False).compute_id_2NN()[0]) for name in LAYERS]
    else:
        raise ValueError(method)
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "seconds": seconds,
                "ids": ids,
                "peak_mb": _peak_mb(),
                "before_mb": before,
                "budget_mb": (budget or 0) / 2**20 if method == "ours" else 0,
            }
        )
    )


def _run(python, method, n_images, budget_fraction=0.0):
    command = [
        python,
        __file__,
        "--worker",
        method,
        "--n-images",
        str(n_images),
        "--budget-fraction",
        str(budget_fraction),
    ]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        print(f"{method} failed: {result.stderr.strip().splitlines()[-1:]}")
        return None
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-images", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--peers-python", default=sys.executable)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--budget-fraction", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker, args.n_images, args.budget_fraction)
        return
    has_dadapy = subprocess.run([args.peers_python, "-c", "import dadapy, torch"], capture_output=True).returncode == 0
    methods = {"ours": sys.executable, "seed": sys.executable}
    if has_dadapy:
        methods["dadapy"] = args.peers_python
    else:
        print(f"skipping hooks + DADApy: dadapy and torch are not importable by {args.peers_python}")
    if has_dadapy:
        methods["dadapy-default"] = args.peers_python
    methods["ours-default"] = sys.executable
    results = {method: [] for method in methods}
    for _ in range(args.repeats):
        for method, python in methods.items():
            record = _run(python, method, args.n_images)
            if record:
                results[method].append(record)
    quarter = _run(sys.executable, "ours", args.n_images, budget_fraction=0.25)
    defaults = {method: results.pop(method) for method in ("ours-default", "dadapy-default") if method in results}

    labels = {"ours": "DepthProfile", "seed": "seed recipe (pdist + sort)", "dadapy": "hooks + DADApy compute_id_2NN"}
    print(
        f"resnet18(weights=None), {args.n_images} images of 3 x 64 x 64, checkpoints {', '.join(LAYERS)}; "
        f"{args.repeats} alternating runs"
    )
    ours = statistics.median(r["seconds"] for r in results["ours"])
    reference = results["ours"][0]["ids"]
    print(f"{'method':<34} {'median s':>9} {'vs ours':>8} {'peak MB':>8} {'extra MB':>9} {'max rel. ID diff':>17}")
    for method, records in results.items():
        if not records:
            continue
        seconds = statistics.median(r["seconds"] for r in records)
        peak = max(r["peak_mb"] for r in records)
        extra = max(r["peak_mb"] - r["before_mb"] for r in records)
        diff = max(abs(a / b - 1) for a, b in zip(records[0]["ids"], reference))
        print(f"{labels[method]:<34} {seconds:9.2f} {seconds / ours:7.2f}x {peak:8.0f} {extra:9.0f} {diff:17.1e}")
    print("IDs (ours): " + ", ".join(f"{name} {value:.3f}" for name, value in zip(LAYERS, reference)))
    if defaults.get("ours-default"):
        ours_default = statistics.median(r["seconds"] for r in defaults["ours-default"])
        default_reference = defaults["ours-default"][0]["ids"]
        print(
            "\nDefault profile (5 resamples of 90%, PCA-ID) against hooks + DADApy on all images and the same "
            "5 subsamples + StandardScaler and sklearn PCA"
        )
        print(
            f"{'method':<34} {'median s':>9} {'vs ours':>8} {'peak MB':>8} {'extra MB':>9} "
            f"{'max rel. diff ID, std':>22} {'PCA-IDs equal':>14}"
        )
        for method, records in defaults.items():
            seconds = statistics.median(r["seconds"] for r in records)
            peak = max(r["peak_mb"] for r in records)
            extra = max(r["peak_mb"] - r["before_mb"] for r in records)
            values = records[0]["ids"]
            diff = max(abs(a / b - 1) for i, (a, b) in enumerate(zip(values, default_reference)) if i % 3 != 2)
            pca_equal = all(a == b for a, b in zip(values[2::3], default_reference[2::3]))
            label = "DepthProfile (defaults)" if method == "ours-default" else "hooks + DADApy + sklearn PCA"
            print(
                f"{label:<34} {seconds:9.2f} {seconds / ours_default:7.2f}x {peak:8.0f} {extra:9.0f} "
                f"{diff:22.1e} {str(pca_equal):>14}"
            )
    if quarter:
        diff = max(abs(a / b - 1) for a, b in zip(quarter["ids"], reference))
        print(
            f"memory_budget = 1/4 of the activations ({quarter['budget_mb']:.0f} MB): "
            f"{quarter['seconds']:.2f} s, peak {quarter['peak_mb']:.0f} MB, "
            f"{quarter['peak_mb'] - quarter['before_mb']:.0f} MB above the model and data, "
            f"max rel. ID diff {diff:.1e}"
        )


if __name__ == "__main__":
    main()
