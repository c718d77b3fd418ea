"""A sweep on a Dask cluster: its data once on every worker, one future per model.

Imported only when joblib's Dask backend is active, so that ``distributed`` is
needed only by those who use it.
"""

import uuid
from contextlib import contextmanager

from distributed import WorkerPlugin, get_worker

__all__ = ["OnWorker", "SweepData", "data_on_workers", "run_on_cluster"]


def run_on_cluster(client, function, calls, data):
    """Run ``function(*args, data)`` for each ``(name, args)`` of ``calls``; yield ``(name, result, error)``.

    One future per call, on the client of joblib's Dask backend, rather than
    joblib's own dispatch: a call whose workers die (``KilledWorker``) then
    fails alone and by name, where joblib would wait for it forever, and
    the others' results arrive as they finish. ``data`` reaches each worker
    once (:func:`data_on_workers`); ``error`` is None or the exception.
    """
    from distributed import as_completed

    with data_on_workers(client, data) as token:
        futures = {
            client.submit(function, *args, token, key=f"sklearn-id-{uuid.uuid4().hex}", pure=False): name
            for name, args in calls
        }
        for future in as_completed(futures):
            name = futures[future]
            try:
                yield name, future.result(), None
            except Exception as error:  # KilledWorker, or whatever the call raised
                yield name, None, error


@contextmanager
def data_on_workers(client, data):
    """Give ``data`` to every worker once, for the block; yield the :class:`OnWorker` token tasks carry instead.

    joblib's Dask backend scatters a large argument once, but the cluster's
    active memory manager then keeps a single replica, so a worker fetches it
    again for each of its tasks. A worker plugin instead reaches each worker
    once, and the scheduler hands it to workers that join or restart during
    the block; removing it frees the workers' copies.
    """
    token = f"sklearn-id-sweep-{uuid.uuid4().hex}"
    client.register_plugin(SweepData(token, data), name=token)
    try:
        yield OnWorker(token)
    finally:
        client.unregister_worker_plugin(token)


class SweepData(WorkerPlugin):
    """A sweep's ``(X, y)``, kept by each worker under the sweep's token while the sweep runs."""

    def __init__(self, token, data):
        self.token = token
        self.data = data

    def setup(self, worker):
        worker.__dict__.setdefault("_sklearn_id_sweeps", {})[self.token] = self.data
        # How many sweeps' data this worker received: the tests count copies with it.
        worker.__dict__["_sklearn_id_received"] = worker.__dict__.get("_sklearn_id_received", 0) + 1

    def teardown(self, worker):
        worker.__dict__.get("_sklearn_id_sweeps", {}).pop(self.token, None)


class OnWorker:
    """A sweep's ``(X, y)`` as a task carries it: the token of the copy the worker running it holds."""

    def __init__(self, token):
        self.token = token

    def get(self):
        worker = get_worker()
        try:
            return worker.__dict__["_sklearn_id_sweeps"][self.token]
        except KeyError:
            raise RuntimeError(
                f"Worker {worker.address} does not hold the sweep's data; run the sweep again."
            ) from None
