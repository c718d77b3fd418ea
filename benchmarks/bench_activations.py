"""Time and peak memory of ``LayerActivationTransformer`` against a plain forward-hook loop.

The workload: torchvision ``resnet18(weights=None)``, 2,000 random images of
3 x 64 x 64, layer ``layer1``. The plain loop is what people write today: a
forward hook that appends each batch's output to a list, then one
concatenation. Each measurement runs in a fresh process so that its peak
memory (``ru_maxrss``) is its own; the two alternate.

    python benchmarks/bench_activations.py [--device cuda]
"""

import argparse
import json
import statistics
import subprocess
import sys
import time


def _peak_mb():
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _worker(method, n_images, batch_size, device):
    import torch
    from torchvision.models import resnet18

    torch.manual_seed(0)
    model = resnet18(weights=None)
    images = torch.randn(n_images, 3, 64, 64).numpy()
    if device == "cuda":
        model.to(device)
    before = _peak_mb()
    start = time.perf_counter()
    if method == "ours":
        from sklearn_id import LayerActivationTransformer

        out = LayerActivationTransformer(model, "layer1", batch_size=batch_size, device=device).fit_transform(images)
    else:
        recorded = []
        handle = model.layer1.register_forward_hook(
            lambda _m, _i, output: recorded.append(output.detach().flatten(1).cpu())
        )
        model.eval()
        with torch.inference_mode():
            for i in range(0, n_images, batch_size):
                model(torch.from_numpy(images[i : i + batch_size]).to(device))
        handle.remove()
        out = torch.cat(recorded).numpy()
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_mb": _peak_mb(),
                "before_mb": before,
                "output_mb": out.nbytes / 2**20,
                # A sample of the activations, to compare the two methods' values.
                "sample": out[::97, ::997].astype(float).ravel().tolist(),
            }
        )
    )


def main():
    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-images", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker, args.n_images, args.batch_size, args.device)
        return
    results = {"ours": [], "hook loop": []}
    for _ in range(args.repeats):
        for method in results:
            command = [
                sys.executable,
                __file__,
                "--worker",
                method,
                "--n-images",
                str(args.n_images),
                "--batch-size",
                str(args.batch_size),
                "--device",
                args.device,
            ]
            output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            results[method].append(json.loads(output.strip().splitlines()[-1]))
    print(
        f"resnet18, {args.n_images} images of 3 x 64 x 64, layer1, batch {args.batch_size}, "
        f"device {args.device}, {args.repeats} alternating runs"
    )
    ours = statistics.median(r["seconds"] for r in results["ours"])
    print(f"{'method':<32} {'median s':>9} {'vs ours':>8} {'peak MB':>8} {'model+data MB':>14} {'extra MB':>9}")
    for method, records in results.items():
        seconds = statistics.median(r["seconds"] for r in records)
        peak = max(r["peak_mb"] for r in records)
        before = max(r["before_mb"] for r in records)
        label = "LayerActivationTransformer" if method == "ours" else "forward hook + list + cat"
        print(f"{label:<32} {seconds:9.2f} {seconds / ours:7.2f}x {peak:8.0f} {before:14.0f} {peak - before:9.0f}")
    output_mb = results["ours"][0]["output_mb"]
    ours, loop = (np.asarray(results[name][0]["sample"]) for name in ("ours", "hook loop"))
    difference = float(np.abs(ours - loop).max() / np.abs(loop).max())
    print(
        f"output array: {output_mb:.0f} MB; activations differ by at most {difference:.1e} of the largest "
        "(float32 rounding: image batches go in channels-last)"
    )


if __name__ == "__main__":
    main()
