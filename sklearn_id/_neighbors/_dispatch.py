"""The one door of every neighbour search: the backend is chosen here, once, and the search dispatched to it.

:data:`BACKENDS` lists the backends in the order they are asked; the first
whose ``is_usable_for`` accepts the points, the metric and the device
searches. A new backend (faiss, cuVS, ...) is one module with a
:class:`~sklearn_id._neighbors._backends.NeighborBackend` subclass, and one
entry here.
"""

import numpy as np

from sklearn_id._device import is_tensor
from sklearn_id._neighbors._backends import DEFAULT_BLOCK_SIZE, check_n_neighbors
from sklearn_id._neighbors._groups import group_edges
from sklearn_id._neighbors._matrix import MatrixBackend
from sklearn_id._neighbors._numpy import HostBackend
from sklearn_id._neighbors._torch import DeviceBackend

__all__ = ["BACKENDS", "backend_for", "kneighbors", "neighbor_distances_at", "nested_kneighbors"]

#: The backends, in the order they are asked.
BACKENDS = [MatrixBackend(), DeviceBackend(), HostBackend()]


def backend_for(X, *, metric="euclidean", device="cpu"):
    """The backend that searches ``X`` with ``metric`` on ``device``: the one place where that is decided.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_id._neighbors import backend_for
    >>> backend_for(np.zeros((3, 2))).name, backend_for(np.zeros((3, 3)), metric="precomputed").name
    ('numpy', 'precomputed')
    """
    for backend in BACKENDS:
        if backend.is_usable_for(X, metric=metric, device=device):
            return backend
    raise ValueError(f"No neighbour backend searches metric={metric!r} on device={device!r}.")


def kneighbors(X, n_neighbors, *, Y=None, metric="euclidean", device="cpu", block_size=None):
    """Exact Euclidean distances to the ``n_neighbors`` nearest neighbours.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Query points (float32 or float64).
    n_neighbors : int
        Number of neighbours per query point.
    Y : ndarray of shape (n_reference, n_features), default=None
        Reference points. When None, the neighbours of each row of ``X`` are
        searched among the other rows of ``X`` (the point itself excluded).
    metric : {"euclidean", "precomputed"}, default="euclidean"
        ``"precomputed"``: ``X`` is the square matrix of distances among the
        points.
    device : str, default="cpu"
        ``"cpu"`` (numpy and BLAS, no torch import) or a CUDA device, as
        :func:`sklearn_id._device.resolve_device` returns it. A torch tensor
        ``X`` (and ``Y``) is searched by torch on its own device instead.
    block_size : int, default=None
        Rows per tile; None picks a size that keeps BLAS efficient.

    Returns
    -------
    distances : ndarray of shape (n_samples, n_neighbors), float64
        Distances in ascending order; ties are broken by the lower index.
    indices : ndarray of shape (n_samples, n_neighbors), int64
        Row indices (into ``Y``, or ``X`` when ``Y`` is None) of the neighbours.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_id._neighbors import kneighbors
    >>> X = np.array([[0.0], [1.0], [3.0], [7.0]])
    >>> distances, indices = kneighbors(X, 2)
    >>> distances
    array([[1., 3.],
           [1., 2.],
           [2., 3.],
           [4., 6.]])
    >>> indices
    array([[1, 2],
           [0, 2],
           [1, 0],
           [2, 1]])
    """
    X = X if is_tensor(X) else np.asarray(X)
    reference = X if Y is None else Y
    check_n_neighbors(n_neighbors, reference.shape[0] - (1 if Y is None else 0))
    backend = backend_for(X, metric=metric, device=device)
    return backend.kneighbors(X, n_neighbors, Y=Y, device=device, block_size=block_size or DEFAULT_BLOCK_SIZE)


def nested_kneighbors(X, n_neighbors, n_levels, *, metric="euclidean", device="cpu", block_size=None):
    """Exact neighbours within each group of a nested halving of the rows.

    Level ``j`` cuts the rows into ``2**j`` consecutive groups of near-equal
    size (boundaries ``round(i * n_samples / 2**j)``, see
    :func:`group_edges`), and each group is searched as a data set of its
    own; level 0 is the plain search. On the CPU one pass over the tiles of
    the level-0 search serves every level, and a pair found at several
    levels is refined once.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    n_neighbors : int
    n_levels : int
        Number of levels, so the smallest groups have about
        ``n_samples / 2**(n_levels - 1)`` rows.
    metric : {"euclidean", "precomputed"}, default="euclidean"
    device : str, default="cpu"
    block_size : int, default=None

    Returns
    -------
    neighbors : list of (distances, indices)
        One pair per level, as :func:`kneighbors` returns them; indices are
        rows of ``X``, always within the row's group.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_id._neighbors import nested_kneighbors
    >>> X = np.array([[0.0], [1.0], [3.0], [7.0]])
    >>> (_, whole), (_, halves) = nested_kneighbors(X, 1, 2)
    >>> whole.ravel(), halves.ravel()
    (array([1, 0, 1, 2]), array([1, 0, 3, 2]))
    """
    X = np.asarray(X)
    smallest = int(np.diff(group_edges(X.shape[0], n_levels - 1)).min())
    if smallest <= n_neighbors:
        raise ValueError(
            f"{n_levels} levels of halving leave groups of {smallest} rows, too few "
            f"for {n_neighbors} neighbours each; use fewer levels or more points."
        )
    backend = backend_for(X, metric=metric, device=device)
    return backend.nested(X, n_neighbors, n_levels, device=device, block_size=block_size or DEFAULT_BLOCK_SIZE)


def neighbor_distances_at(X, ranks, *, metric="euclidean", device="cpu", block_size=None):
    """Exact distances to each row's neighbours of the given ranks only (the point itself excluded).

    The search is that of :func:`kneighbors` with ``n_neighbors = max(ranks)``,
    but only the candidates whose rounding interval overlaps one of the
    ``ranks`` are refined in float64: the others are certainly nearer or
    farther than it. For distant ranks (GRIDE) that is a fraction of them.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    ranks : sequence of int
        Neighbour ranks, from 1.
    metric : {"euclidean", "precomputed"}, default="euclidean"
    device : str, default="cpu"
    block_size : int, default=None

    Returns
    -------
    distances : ndarray of shape (n_samples, len(ranks)), float64

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_id._neighbors import neighbor_distances_at
    >>> X = np.array([[0.0], [1.0], [3.0], [7.0]])
    >>> neighbor_distances_at(X, [1, 3])
    array([[1., 7.],
           [1., 6.],
           [2., 4.],
           [4., 7.]])
    """
    ranks = np.asarray(ranks, dtype=np.int64)
    backend = backend_for(X, metric=metric, device=device)
    return backend.distances_at(X, ranks, device=device, block_size=block_size or DEFAULT_BLOCK_SIZE)
