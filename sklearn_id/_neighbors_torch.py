"""The exact neighbour search of :mod:`sklearn_id._neighbors` on a torch device (CUDA), called only from there.

On a GPU, whole rows are cheap: each block of query rows is compared with
every reference row in one float32 product, the ``k`` best upper bounds give
each row its threshold, and the entries under it are refined in float64 on
the device. The rounding-error bound is the CPU path's, so the result is
exact in the same sense.
"""

import numpy as np

from sklearn_id._bounds import (
    REFINE_BUFFER_ENTRIES,
    candidate_threshold,
    centred_float32,
    rounding_bound_factor,
    select_nearest,
    subnormal_floor,
)

__all__ = ["kneighbors_torch"]


def kneighbors_torch(X, n_neighbors, *, Y=None, device="cuda", block_size=2048):
    """Exact neighbours computed with torch on ``device``; see :func:`sklearn_id._neighbors.kneighbors`.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    n_neighbors : int
    Y : ndarray of shape (n_reference, n_features), default=None
    device : str or torch.device, default="cuda"
    block_size : int, default=2048

    Returns
    -------
    distances : ndarray of shape (n_samples, n_neighbors), float64
    indices : ndarray of shape (n_samples, n_neighbors), int64
    """
    import torch

    symmetric = Y is None
    reference = X if symmetric else Y
    X32, Y32 = centred_float32(X, Y)
    query = torch.from_numpy(X32).to(device)
    ref = query if symmetric else torch.from_numpy(Y32).to(device)
    query_norms = (query.double() ** 2).sum(1)
    ref_norms = query_norms if symmetric else (ref.double() ** 2).sum(1)
    gamma = rounding_bound_factor(X.shape[1])
    floor = subnormal_floor(X.shape[1])
    exact_query = torch.from_numpy(np.asarray(X, dtype=np.float64)).to(device)
    exact_ref = exact_query if symmetric else torch.from_numpy(np.asarray(reference, dtype=np.float64)).to(device)

    refine_step = max(1, REFINE_BUFFER_ENTRIES // max(1, X.shape[1]))
    rows_out, cols_out, squared_out = [], [], []
    with _highest_float32_precision(torch):
        for start in range(0, query.shape[0], block_size):
            stop = min(start + block_size, query.shape[0])
            block_norms = query_norms[start:stop]
            approx = (
                block_norms[:, None].float() + ref_norms[None, :].float() - 2.0 * (query[start:stop] @ ref.T)
            )
            if symmetric:
                local = torch.arange(stop - start, device=approx.device)
                approx[local, local + start] = float("inf")
            upper = approx.double() + gamma * (block_norms[:, None] + ref_norms[None, :])
            kth = torch.topk(upper, n_neighbors, dim=1, largest=False).values[:, -1]
            # The product and the three-term sum are each rounded once more than on the CPU.
            threshold = candidate_threshold(kth, block_norms, gamma, floor, 1.0 + 16 * 2.0**-24)
            rows, cols = torch.nonzero(approx.double() <= threshold[:, None], as_tuple=True)
            rows += start
            for chunk in range(0, rows.numel(), refine_step):
                diff = exact_query[rows[chunk : chunk + refine_step]] - exact_ref[cols[chunk : chunk + refine_step]]
                squared_out.append((diff * diff).sum(1).cpu())
            rows_out.append(rows.cpu())
            cols_out.append(cols.cpu())
    rows = torch.cat(rows_out).numpy()
    cols = torch.cat(cols_out).numpy()
    squared = torch.cat(squared_out).numpy()
    return select_nearest(rows, cols, squared, X.shape[0], n_neighbors, squared=True)


class _highest_float32_precision:
    """Forbid TF32 (10-bit mantissa) inside the block: the error bound assumes float32."""

    def __init__(self, torch):
        self.torch = torch

    def __enter__(self):
        self.previous = self.torch.get_float32_matmul_precision()
        self.torch.set_float32_matmul_precision("highest")

    def __exit__(self, *exc):
        self.torch.set_float32_matmul_precision(self.previous)
