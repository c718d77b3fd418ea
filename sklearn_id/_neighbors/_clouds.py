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

# Entries of one batch of padded distance matrices (64 MB of float64).
_BATCH_ENTRIES = 1 << 23


def distinct_clouds(clouds):
    """Each cloud's distinct rows (first occurrences, in order) as float64, and how many duplicates each had.

    The package's one duplicate finder (``first_occurrences``), cloud by cloud.
    """
    distinct, duplicates = [], []
    for cloud in clouds:
        cloud = np.asarray(cloud, dtype=np.float64)
        keep = first_occurrences(cloud)[0] if cloud.shape[0] else np.arange(0)
        distinct.append(cloud[keep])
        duplicates.append(cloud.shape[0] - keep.size)
    return distinct, np.asarray(duplicates, dtype=np.int64)


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
    order = np.argsort([cloud.shape[0] for cloud in clouds], kind="stable")
    result = [None] * len(clouds)
    start = 0
    while start < order.size:
        largest = clouds[order[start]].shape[0]
        stop = start + 1
        # Clouds of similar sizes share a batch: grow it while the padded matrices stay within the budget.
        while stop < order.size and (stop - start + 1) * clouds[order[stop]].shape[0] ** 2 <= _BATCH_ENTRIES:
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


def _squared_ranks_numpy(points, real, ranks):
    norms = np.einsum("bij,bij->bi", points, points)
    squared = points @ points.transpose(0, 2, 1)  # in place from here: one (clouds, size, size) array
    squared *= -2.0
    squared += norms[:, :, None]
    squared += norms[:, None, :]
    np.maximum(squared, 0.0, out=squared)
    for index, n_real in enumerate(real.sum(axis=1)):  # the padding: no one's neighbour
        squared[index, n_real:, :] = np.inf
        squared[index, :, n_real:] = np.inf
    diagonal = np.arange(points.shape[1])
    squared[:, diagonal, diagonal] = np.inf
    nearest = np.partition(squared, ranks.max() - 1, axis=2)[:, :, : ranks.max()]
    nearest.sort(axis=2)
    return np.sqrt(nearest[:, :, ranks - 1])


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
