"""Many small point clouds searched together: one padded batch, one batched distance computation, masked.

A per-text (or per-image) ID fits one small cloud per sample and layer;
fitted one by one, each pays its own validation and search set-up. Here the
clouds, duplicates collapsed in each (the package's policy), are sorted by
size and padded into batches of similar sizes; one batched product of the
centred float64 points gives every cloud's squared distances, padding and
the diagonal are masked, and a partition along the last axis reads the
neighbours at the ranks asked for. On a torch device the same steps run in
torch. Float64 throughout: the error of a squared distance is near ``1e-16``
of the cloud's spread, far below the estimators' tolerance.
"""

import numpy as np

from sklearn_id._neighbors._numpy import first_occurrences
from sklearn_id._neighbors._units import unit_for

__all__ = ["cloud_neighbor_distances", "distinct_clouds"]

# Entries of one batch of padded distance matrices: 8 MB of float64 on the host, where the passes over a
# batch that stays in cache run 1.3x faster than over a 64 MB one; 64 MB on a device.
_HOST_BATCH_ENTRIES = 1 << 20
_DEVICE_BATCH_ENTRIES = 1 << 23


def distinct_clouds(clouds):
    """Each cloud's distinct rows (first occurrences, in order) as float64, and how many duplicates each had.

    The package's one duplicate finder (``first_occurrences``), once for all
    clouds: their rows stacked, each cloud a group of its own, so that only
    rows of one cloud can be equal.
    """
    clouds = [np.asarray(cloud, dtype=np.float64) for cloud in clouds]
    if not clouds:
        return [], np.zeros(0, dtype=np.int64)
    sizes = np.array([cloud.shape[0] for cloud in clouds])
    keep = first_occurrences(np.concatenate(clouds), groups=np.repeat(np.arange(len(clouds)), sizes))[0]
    starts = np.r_[0, np.cumsum(sizes)]
    bounds = np.searchsorted(keep, starts)
    distinct = [cloud[keep[a:b] - start] for cloud, a, b, start in zip(clouds, bounds[:-1], bounds[1:], starts)]
    return distinct, sizes - np.diff(bounds)


def cloud_neighbor_distances(clouds, ranks, *, device="cpu"):
    """Each cloud's distances from every point to its neighbours of ``ranks`` within the cloud.

    Parameters
    ----------
    clouds : list of ndarray of shape (n_points_i, n_features)
        Distinct points per cloud, each with more than ``max(ranks)`` points.
    ranks : sequence of int
        Neighbour ranks, from 1.
    device : str, default="cpu"
        ``"cpu"`` (numpy) or a torch device.

    Returns
    -------
    distances : list of ndarray of shape (n_points_i, len(ranks))

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_id._neighbors import cloud_neighbor_distances
    >>> clouds = [np.array([[0.0], [1.0], [3.0]]), np.array([[0.0], [2.0], [3.0], [7.0]])]
    >>> [d.tolist() for d in cloud_neighbor_distances(clouds, [1, 2])]
    [[[1.0, 3.0], [1.0, 2.0], [2.0, 3.0]], [[2.0, 3.0], [1.0, 2.0], [1.0, 3.0], [4.0, 5.0]]]
    """
    ranks = np.asarray(ranks, dtype=np.int64)
    budget = _HOST_BATCH_ENTRIES if device == "cpu" else _DEVICE_BATCH_ENTRIES
    order = np.argsort([cloud.shape[0] for cloud in clouds], kind="stable")
    result = [None] * len(clouds)
    start = 0
    while start < order.size:
        largest = clouds[order[start]].shape[0]
        stop = start + 1
        # Clouds of similar sizes share a batch: grow it while the padded matrices stay within the budget.
        while stop < order.size and (stop - start + 1) * clouds[order[stop]].shape[0] ** 2 <= budget:
            largest = clouds[order[stop]].shape[0]
            stop += 1
        batch = [clouds[i] for i in order[start:stop]]
        distances = _batched(batch, largest, ranks, device)
        for i, cloud, rows in zip(order[start:stop], batch, distances):
            result[i] = rows[: cloud.shape[0]]
        start = stop
    return result


def _batched(batch, size, ranks, device):
    """One padded batch: (clouds, size, features) points, masked squared distances, the ranks' distances."""
    n_features = batch[0].shape[1]
    points = np.zeros((len(batch), size, n_features))
    real = np.zeros((len(batch), size), dtype=bool)
    units = np.ones(len(batch))
    for index, cloud in enumerate(batch):
        centred = cloud - cloud.mean(axis=0)  # centred: no offset to cancel
        units[index] = unit_for(centred)  # an exact power of two: clear of overflow and underflow
        points[index, : cloud.shape[0]] = centred * units[index]
        real[index, : cloud.shape[0]] = True
    if device == "cpu":
        distances = _squared_ranks_numpy(points, real, ranks)
    else:
        distances = _squared_ranks_torch(points, real, ranks, device)
    return distances / units[:, None, None]


def _mask(matrices, real):
    """Padding and the diagonal set to inf: no one's neighbour."""
    for index, n_real in enumerate(real.sum(axis=1)):
        matrices[index, :, n_real:] = np.inf
    diagonal = np.arange(matrices.shape[1])
    matrices[:, diagonal, diagonal] = np.inf


def _squared_ranks_numpy(points, real, ranks):
    norms = np.einsum("bij,bij->bi", points, points)
    # Within a row, |x_i|^2 is a constant: rows are ranked on |x_j|^2 - 2 x_i.x_j (one product, one pass),
    # and |x_i|^2 is added to the few entries kept. Doubling is exact, so the sums are those of the formula.
    shifted = (points * -2.0) @ points.transpose(0, 2, 1)
    shifted += norms[:, None, :]
    _mask(shifted, real)
    largest = int(ranks.max())
    shifted.partition(largest - 1, axis=2)  # in place: no second array of the batch's size
    nearest = shifted[:, :, :largest]
    nearest.sort(axis=2)
    squared = nearest[:, :, ranks - 1] + norms[:, :, None]
    return np.sqrt(np.maximum(squared, 0.0, out=squared), out=squared)


def _squared_ranks_torch(points, real, ranks, device):
    import torch

    points = torch.as_tensor(points, device=device)
    real = torch.as_tensor(real, device=device)
    norms = (points * points).sum(dim=2)
    squared = (norms[:, :, None] + norms[:, None, :] - 2.0 * torch.bmm(points, points.transpose(1, 2))).clamp_(min=0)
    squared.masked_fill_(~(real[:, :, None] & real[:, None, :]), float("inf"))
    squared.diagonal(dim1=1, dim2=2).fill_(float("inf"))
    nearest = torch.topk(squared, int(ranks.max()), dim=2, largest=False).values
    return nearest[:, :, torch.as_tensor(ranks - 1, device=device)].sqrt().cpu().numpy()
