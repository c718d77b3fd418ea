"""Time the CUDA path against the ten lines a user would write instead, in one run.

Table 1, a TwoNN fit from a host numpy array (a 10-dimensional Gaussian
through a random linear map and tanh, float64), at four sizes: ours
(``TwoNNDimension(device="cuda")``) against a brute force (centred data,
Gram-trick squared distances in 4,096-row blocks, self masked,
``torch.topk(2)``, then the same linear fit) in float32 and in float64, and
one float32 N x D by D x N product with TF32 off; peak device memory; whether
each estimate equals the float64 brute force to 1e-9, also after an offset of
1e4.

Table 2, a torchvision ``resnet18(weights=None)`` profile at 7 checkpoints:
``DepthProfile`` bare (no resamples, no PCA-ID) against forward hooks
collecting every checkpoint on the device + the float64 brute force per
layer, and the default profile (5 resamples of 90%, PCA-ID) against the same
script + 5 refits on the same subsamples + ``make_pipeline(StandardScaler(),
PCA)`` on the host, at 2,000 images of 64 x 64 and 10,000 of 112 x 112.

Table 3, ``ABIDEDimension`` (binomial, ``max_neighbors=100`` and ``"auto"``)
on the device against the same fit on the CPU, at 20,000 points in 40-D (an
8-D Gaussian through a random linear map, plus noise): the times, and whether
the IDs of every iteration and the k* agree to 1e-9.

Table 4, one ID per cloud (``cloud_dimensions``, TwoNN and GRIDE at ranks
32-64) for 2,000 clouds of 256 points in 128-D on the device against the
CPU: the times, and whether every cloud's ID agrees to 1e-9::

    python benchmarks/bench_gpu.py            # on a machine with CUDA
    python benchmarks/bench_gpu.py --quick    # small sizes, to check the script
"""

import argparse
import statistics
import time

LAYERS = ["maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool", "fc"]


def _sync(torch, device):
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def _timed(torch, device, function, repeats):
    """Median seconds of ``repeats`` runs after one warm-up, the last result, and the peak device memory."""
    function()
    times = []
    if str(device).startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    for _ in range(repeats):
        _sync(torch, device)
        start = time.perf_counter()
        result = function()
        _sync(torch, device)
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() / 2**30 if str(device).startswith("cuda") else float("nan")
    return statistics.median(times), result, peak


def _brute_force_ratios(torch, X, device, dtype, block=4096):
    """What a user writes: centred data, Gram-trick squared distances in blocks, self masked, topk(2)."""
    A = torch.as_tensor(X, device=device, dtype=dtype)
    A = A - A.mean(0)
    norms = (A * A).sum(1)
    ratios = []
    for start in range(0, A.shape[0], block):
        squared = norms[start : start + block, None] + norms[None, :] - 2 * A[start : start + block] @ A.T
        rows = torch.arange(squared.shape[0], device=device)
        squared[rows, rows + start] = float("inf")
        nearest = torch.topk(squared, 2, dim=1, largest=False).values.clamp_min(0).sqrt()
        ratios.append(nearest[:, 1] / nearest[:, 0])
    return torch.cat(ratios).double().cpu().numpy()


def twonn_table(torch, device, sizes, repeats):
    import numpy as np

    from sklearn_id import TwoNNDimension
    from sklearn_id._device import float32_precision
    from sklearn_id._twonn import twonn_linear_fit

    print(
        "| N x D | ours | float32 brute force | float64 brute force | one float32 product | ours vs f32 | "
        "ours vs product | peak GB ours / f32 | equal to f64 (1e-9), offset 1e4 too |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for n_samples, n_features in sizes:
        rng = np.random.default_rng(0)
        X = np.tanh(rng.standard_normal((n_samples, 10)) @ rng.standard_normal((10, n_features)) / np.sqrt(10))
        ours, estimate, peak_ours = _timed(
            torch, device, lambda: TwoNNDimension(device=device).fit(X).dimension_, repeats
        )
        with float32_precision("highest"):
            f32, mu32, peak_f32 = _timed(
                torch, device, lambda: _brute_force_ratios(torch, X, device, torch.float32), repeats
            )
            f64, mu64, _ = _timed(torch, device, lambda: _brute_force_ratios(torch, X, device, torch.float64), repeats)
            A = torch.as_tensor(X, device=device, dtype=torch.float32)
            product, _, _ = _timed(torch, device, lambda A=A: A @ A.T, repeats)
            del A
        reference = twonn_linear_fit(mu64)
        shifted = TwoNNDimension(device=device).fit(X + 1e4).dimension_
        equal = abs(estimate / reference - 1) < 1e-9 and abs(shifted / reference - 1) < 1e-9
        print(
            f"| {n_samples:,} x {n_features:,} | {ours:.3f} s | {f32:.3f} s | {f64:.3f} s | {product:.3f} s | "
            f"x{f32 / ours:.2f} | x{product / ours:.2f} | {peak_ours:.1f} / {peak_f32:.1f} | {equal} |"
        )
        torch.cuda.empty_cache() if str(device).startswith("cuda") else None


def _hooked(torch, model, images, device, batch_size=256):
    """Forward hooks collecting every checkpoint on the device."""
    recorded = {name: [] for name in LAYERS}
    modules = dict(model.named_modules())
    handles = [
        modules[name].register_forward_hook(
            lambda _m, _i, output, name=name: recorded[name].append(output.detach().flatten(1))
        )
        for name in LAYERS
    ]
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            model(torch.as_tensor(images[start : start + batch_size], device=device))
    for handle in handles:
        handle.remove()
    return {name: torch.cat(batches) for name, batches in recorded.items()}


def _script(torch, model, images, device, subsets):
    """The user's profile: hooks, float64 brute force per layer (and per subsample), StandardScaler + PCA."""
    import numpy as np
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    from sklearn_id._twonn import twonn_linear_fit

    rows = []
    for _name, A in _hooked(torch, model, images, device).items():
        row = [twonn_linear_fit(_brute_force_ratios(torch, A, device, torch.float64))]
        if subsets:
            resampled = [
                twonn_linear_fit(
                    _brute_force_ratios(torch, A[torch.as_tensor(s, device=device)], device, torch.float64)
                )
                for s in subsets
            ]
            ratios = PCA().fit(StandardScaler().fit_transform(A.cpu().numpy())).explained_variance_ratio_
            row += [float(np.std(resampled, ddof=1)), int(np.searchsorted(np.cumsum(ratios), 0.9 - 1e-10) + 1)]
        rows.append(row)
    return np.array(rows)


def profile_table(torch, device, cases, repeats):
    import numpy as np
    from torchvision.models import resnet18

    from sklearn_id import DepthProfile
    from sklearn_id._device import float32_precision

    print("\n| images | profile | ours | user's script | ratio | IDs agree (1e-6) |")
    print("|---|---|---|---|---|---|")
    for n_images, size in cases:
        torch.manual_seed(0)
        model = resnet18(weights=None).eval().to(device)
        images = torch.randn(n_images, 3, size, size, generator=torch.Generator().manual_seed(1)).numpy()
        rng = np.random.RandomState(0)
        subsets = [np.sort(rng.choice(n_images, int(round(0.9 * n_images)), replace=False)) for _ in range(5)]
        for label, params, chosen in (
            ("bare", {"n_resamples": 0, "pca_estimator": None}, []),
            ("default", {}, subsets),
        ):

            def ours():
                profile = DepthProfile(model, layers=LAYERS, device=device, random_state=0, **params).fit(images)
                return profile.profile_[["id", "id_std", "pca_id"]].to_numpy()[:, : 1 if not chosen else 3]

            def script():
                with float32_precision("highest"):
                    return _script(torch, model, images, device, chosen)

            ours_s, ours_ids, _ = _timed(torch, device, ours, repeats)
            script_s, script_ids, _ = _timed(torch, device, script, repeats)
            agree = np.allclose(ours_ids[:, 0], script_ids[:, 0], rtol=1e-6) and (
                not chosen or np.array_equal(ours_ids[:, 2], script_ids[:, 2])
            )
            print(
                f"| {n_images:,} x {size}^2 | {label} | {ours_s:.2f} s | {script_s:.2f} s | "
                f"x{script_s / ours_s:.2f} | {agree} |"
            )


def abide_table(torch, device, n_samples, repeats):
    import warnings

    import numpy as np

    from sklearn_id import ABIDEDimension

    rng = np.random.default_rng(0)
    X = rng.standard_normal((n_samples, 8)) @ rng.standard_normal((8, 40)) + 0.01 * rng.standard_normal((n_samples, 40))
    print(f"ABIDEDimension, {n_samples} points in 40-D: {device} against the CPU")
    print(f"{'max_neighbors':>14} {device + ' s':>9} {'cpu s':>8} {'same IDs and k*':>16}")
    for limit in (100, "auto"):
        fits = {}
        times = {}
        for where in (device, "cpu"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                times[where], fits[where], _ = _timed(
                    torch, where, lambda where=where: ABIDEDimension(max_neighbors=limit, device=where).fit(X), repeats
                )
        same = np.allclose(fits[device].dimensions_, fits["cpu"].dimensions_, rtol=1e-9, atol=0) and np.array_equal(
            fits[device].kstar_, fits["cpu"].kstar_
        )
        print(f"{limit!s:>14} {times[device]:9.2f} {times['cpu']:8.2f} {str(same):>16}")
    print()


def clouds_table(torch, device, n_clouds, repeats):
    import numpy as np

    from sklearn_id import GRIDEDimension, TwoNNDimension, cloud_dimensions

    rng = np.random.default_rng(0)
    clouds = [np.tanh(rng.standard_normal((256, 6)) @ rng.standard_normal((6, 128))) for _ in range(n_clouds)]
    print(f"cloud_dimensions, {n_clouds} clouds of 256 points in 128-D: {device} against the CPU")
    print(f"{'estimator':>26} {device + ' s':>9} {'cpu s':>8} {'same IDs':>9}")
    for estimator in (TwoNNDimension(), GRIDEDimension(n1=32, n2=64)):
        times, tables = {}, {}
        for where in (device, "cpu"):
            times[where], tables[where], _ = _timed(
                torch, where, lambda where=where: cloud_dimensions(estimator.set_params(device=where), clouds), repeats
            )
        same = np.allclose(tables[device]["id"], tables["cpu"]["id"], rtol=1e-9, atol=0)
        name = f"{type(estimator).__name__}{estimator.neighbor_ranks}"
        print(f"{name:>26} {times[device]:9.2f} {times['cpu']:8.2f} {str(same):>9}")
    print()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small sizes, to check the script itself")
    args = parser.parse_args()
    import torch

    if args.quick:
        sizes, cases = [(2_000, 100)], [(200, 32)]
    else:
        sizes = [(20_000, 1_000), (100_000, 100), (100_000, 1_000), (200_000, 1_000)]
        cases = [(2_000, 64), (10_000, 112)]
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    print(f"{name}, torch {torch.__version__}, medians of {args.repeats} runs after a warm-up\n")
    twonn_table(torch, args.device, sizes, args.repeats)
    profile_table(torch, args.device, cases, args.repeats)
    abide_table(torch, args.device, 2_000 if args.quick else 20_000, args.repeats)
    clouds_table(torch, args.device, 50 if args.quick else 2_000, args.repeats)


if __name__ == "__main__":
    main()
