"""The backend for a torch device (a tensor, or ``device="cuda"``): the exact search, run by torch where the data live.

Designed for the GPU, where whole rows are cheap and host round trips are
not. Each block of query rows is compared with every reference row in one
float32 product (TF32 off: the bound assumes float32 rounding), written in
place into one tile. A ``torch.topk`` of the tile's ``k`` smallest entries,
raised by the rounding bound, gives each row its threshold; the entries under
it are the candidates, refined exactly (float64 differences of the original
rows) on the device; each row's ``k`` nearest are then selected on the device
from a padded table of its candidates. Only the ``(n_samples, k)`` results
leave the device. No float64 copy of a tile is ever made: device memory is
one float32 tile and its mask (``block_size * n_reference`` entries) beside
the data.

The rounding bound is :mod:`sklearn_id._neighbors._exact`', so the result equals a
float64 brute force, exactly as on the CPU.
"""

import numpy as np

from sklearn_id._device import float32_precision, is_tensor
from sklearn_id._neighbors._backends import DEFAULT_BLOCK_SIZE, NeighborBackend
from sklearn_id._neighbors._exact import (
    REFINE_BUFFER_ENTRIES,
    UNIT_ROUNDOFF_32,
    candidate_threshold,
    centred_float32,
    float32_prescale,
    rounding_bound_factor,
    subnormal_floor,
)
from sklearn_id._neighbors._numpy import HostBackend, first_occurrences
from sklearn_id._neighbors._units import unit_for

__all__ = ["DeviceBackend", "kneighbors_torch"]


class DeviceBackend(HostBackend):
    """Rows searched by torch: a tensor on its own device, or host rows sent to a CUDA device.

    What is not a search (restricting, finding duplicates, a few exact
    distances) runs where the points are: on the device for a tensor, on the
    host for an array.
    """

    name = "torch"

    def is_usable_for(self, X, *, metric, device):
        return metric == "euclidean" and (is_tensor(X) or device != "cpu")

    def kneighbors(self, X, n_neighbors, *, Y=None, device="cpu", block_size=DEFAULT_BLOCK_SIZE):
        return kneighbors_torch(X, n_neighbors, Y=Y, device=device, block_size=block_size)

    # The float32 screen at ranks and the nested pass are the host's: on a device, plain searches serve them.
    distances_at = NeighborBackend.distances_at
    nested = NeighborBackend.nested

    def restrict(self, X, rows):
        if not is_tensor(X):
            return X[rows]
        import torch

        return X[torch.as_tensor(rows, device=X.device)]

    def distinct_rows(self, X):
        # Rare (duplicates were found): the rows are compared on the host.
        return first_occurrences(X.cpu().numpy() if is_tensor(X) else X)

    def pair_distances(self, X, rows, cols):
        if not is_tensor(X):
            return super().pair_distances(X, rows, cols)
        import torch

        targets = X[torch.as_tensor(cols, device=X.device)].double()
        return np.stack([((targets - X[int(row)].double()) ** 2).sum(1).sqrt().cpu().numpy() for row in rows])

    def distance_matrix(self, X, rows, *, device="cpu"):
        import torch

        # The host's float64 Gram matrix of the centred points, computed by torch where the points are.
        points = self.restrict(X, rows) if is_tensor(X) else torch.as_tensor(X[rows]).to(device)
        points = points.double()
        unit = unit_for(points)
        points = points * unit
        centred = points - points.mean(dim=0)
        norms = (centred * centred).sum(dim=1)
        squared = (norms[:, None] + norms[None, :] - 2.0 * (centred @ centred.T)).clamp_(min=0.0)
        squared.fill_diagonal_(0.0)
        return (squared.sqrt_() / unit).cpu().numpy()


# The tile's entries and the row threshold are each rounded a few more times
# than on the CPU (norms added in float32, threshold cast to float32).
_MARGIN = 1.0 + 16 * UNIT_ROUNDOFF_32


def kneighbors_torch(X, n_neighbors, *, Y=None, device="cuda", block_size=2048):
    """Exact neighbours computed with torch on ``device``; see :func:`sklearn_id._neighbors.kneighbors`.

    Parameters
    ----------
    X : ndarray or tensor of shape (n_samples, n_features)
        A tensor is searched on its own device.
    n_neighbors : int
    Y : ndarray or tensor of shape (n_reference, n_features), default=None
    device : str or torch.device, default="cuda"
    block_size : int, default=2048

    Returns
    -------
    distances : ndarray of shape (n_samples, n_neighbors), float64
    indices : ndarray of shape (n_samples, n_neighbors), int64
    """
    import torch

    if isinstance(X, torch.Tensor):
        device = X.device
    with float32_precision("highest"), torch.inference_mode():
        search = _DeviceSearch(X, Y, n_neighbors, device)
        blocks = [
            search.block(start, min(start + block_size, X.shape[0])) for start in range(0, X.shape[0], block_size)
        ]
        distances = torch.cat([squared for squared, _ in blocks]).sqrt_()
        indices = torch.cat([columns for _, columns in blocks])
        return distances.cpu().numpy(), indices.cpu().numpy()


class _DeviceSearch:
    """The data on the device, once: float32 centred rows, their float64 norms, and the exact rows."""

    def __init__(self, X, Y, k, device):
        import torch

        self.torch = torch
        self.k = k
        self.symmetric = Y is None
        if isinstance(X, torch.Tensor):
            # Activations already on the device: centred and rescaled there.
            self.query, self.reference = _centred_float32_on_device(torch, X, Y)
            self.exact_query, self.exact_reference = X, (X if Y is None else Y)
        else:
            query32, reference32 = centred_float32(X, Y)
            self.query = torch.from_numpy(query32).to(device)
            self.reference = None if self.symmetric else torch.from_numpy(reference32).to(device)
            # The original rows, in their own dtype, for the exact refinement.
            self.exact_query = torch.from_numpy(np.ascontiguousarray(X)).to(device)
            self.exact_reference = None if self.symmetric else torch.from_numpy(np.ascontiguousarray(Y)).to(device)
        if self.symmetric:
            self.reference, self.exact_reference = self.query, self.exact_query
        self.query_norms = _squared_norms(torch, self.query)
        self.reference_norms = self.query_norms if self.symmetric else _squared_norms(torch, self.reference)
        self.reference_norms32 = self.reference_norms.float()
        self.widest = float(self.reference_norms.max())
        self.gamma = rounding_bound_factor(X.shape[1])
        self.floor = subnormal_floor(X.shape[1])
        self.refine_step = max(1, REFINE_BUFFER_ENTRIES // max(1, X.shape[1]))

    def block(self, start, stop):
        """Squared distances and indices of the ``k`` nearest of rows ``start:stop``, on the device."""
        torch = self.torch
        norms = self.query_norms[start:stop]
        # The tile, in place: |c_i|^2 + |c_j|^2 - 2 c_i . c_j in float32.
        approx = torch.mm(self.query[start:stop], self.reference.T, out=None).mul_(-2.0)
        approx.add_(self.reference_norms32[None, :]).add_(norms.float()[:, None])
        if self.symmetric:
            local = torch.arange(stop - start, device=approx.device)
            approx[local, local + start] = float("inf")
        # The k smallest entries each lie within gamma (n_i + n_j) of their distance.
        kth = torch.topk(approx, self.k, dim=1, largest=False).values[:, -1].double()
        upper = kth + self.gamma * (norms + self.widest)
        threshold = candidate_threshold(upper, norms, self.gamma, self.floor, _MARGIN).float()
        rows, cols = torch.nonzero(approx <= threshold[:, None], as_tuple=True)
        del approx
        squared = self._exact(rows + start, cols)
        return _select(torch, rows, cols, squared, stop - start, self.k)

    def _exact(self, rows, cols):
        """Float64 squared distances of the pairs, in chunks that bound the device memory."""
        torch = self.torch
        out = torch.empty(rows.numel(), dtype=torch.float64, device=rows.device)
        for chunk in range(0, rows.numel(), self.refine_step):
            part = slice(chunk, chunk + self.refine_step)
            diff = self.exact_query[rows[part]].double() - self.exact_reference[cols[part]].double()
            out[part] = diff.mul_(diff).sum(1)
        return out


def _centred_float32_on_device(torch, X, Y, step=1 << 14):
    """:func:`sklearn_id._neighbors._exact.centred_float32` for tensors, on their device, without a float64 copy."""
    reference = X if Y is None else Y
    mean = sum(reference[start : start + step].double().sum(0) for start in range(0, reference.shape[0], step))
    mean = mean / reference.shape[0]
    prescale = float32_prescale(X, Y, mean)

    def centred(A):
        chunks = range(0, A.shape[0], step)
        return torch.cat([((A[start : start + step].double() - mean) * prescale).float() for start in chunks])

    query = centred(X)
    other = None if Y is None else centred(Y)
    scale = max(float(_squared_norms(torch, A).max()) for A in (query, other) if A is not None) ** 0.5
    if scale > 0:
        query.mul_(1.0 / scale)
        if other is not None:
            other.mul_(1.0 / scale)
    return query, other


def _squared_norms(torch, A, step=1 << 16):
    """Float64 squared row norms of a float32 matrix, without a float64 copy of it."""
    return torch.cat([(A[start : start + step].double() ** 2).sum(1) for start in range(0, A.shape[0], step)])


def _select(torch, rows, cols, values, n_rows, k):
    """Per row, the ``k`` smallest ``values`` (ties: lower column), from candidates sorted by row then column."""
    counts = torch.bincount(rows, minlength=n_rows)
    if int(counts.min()) < k:
        raise RuntimeError("neighbour search lost candidates; please report this as a bug")
    starts = torch.cumsum(counts, 0) - counts
    position = torch.arange(rows.numel(), device=rows.device) - starts[rows]
    width = int(counts.max())
    table = torch.full((n_rows, width), float("inf"), dtype=values.dtype, device=values.device)
    columns = torch.zeros((n_rows, width), dtype=torch.int64, device=values.device)
    table[rows, position] = values
    columns[rows, position] = cols
    # A stable sort keeps the lower column first among equal values.
    order = torch.sort(table, dim=1, stable=True).indices[:, :k]
    return table.gather(1, order), columns.gather(1, order)
