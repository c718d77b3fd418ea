"""The activation cache: each layer's pooled float32 rows on disk, read back instead of running the model again.

A cache is a folder of *entries*, one per (model, data, read settings). An
entry's name is the hash of its identity: the model's fingerprint
(architecture and weights, :func:`~sklearn_id._fingerprints.model_fingerprint`),
the inputs' fingerprint (the token ids or tensors the model is given), the
pooling, the precision, the input dtype and the package version. Another
model, other data or another pooling is therefore another entry, never a
silent reuse; the entry's ``manifest.json`` holds the identity in full and
is checked against it on every open.

An entry holds, per layer, one raw little-endian float32 file of its rows
(``rows x width``, written batch after batch, read back memory-mapped), the
model's layer listing, and the progress of every layer: the samples and rows
written, updated atomically after each complete batch. A fit that stopped
half way (an error, ``KeyboardInterrupt``, a killed process) resumes at the
first sample not yet written: the files are cut back to their last complete
batch and the forward passes run only over the rest. Raw files rather than
zarr: the rows only ever grow at the end and are read whole or in column
slices, which ``numpy.memmap`` does without a dependency; a layer too wide
for the memory budget is read slice by slice (the plan's passes), so a read
never holds more than the budget.

One fit writes an entry at a time: writing holds a lock on it
(``fcntl.flock`` where the platform has it), so processes that share the
folder (Dask workers on one file system) wait for each other and then reuse
what the first one wrote.
"""

import json
import os
import re
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

import numpy as np

from sklearn_id._fingerprints import canonical, data_fingerprint, model_fingerprint
from sklearn_id._reader import RowWriter
from sklearn_id._repeats import RepeatedSamples

__all__ = ["CACHE_FORMAT", "CachedReader", "cache_size"]

#: Bumped whenever the layout of an entry changes: an older entry is then another entry.
CACHE_FORMAT = 1

_MANIFEST = "manifest.json"


class CachedReader:
    """An :class:`~sklearn_id._reader.ActivationReader` whose listing and reads go through one cache entry.

    ``list_layers``, ``input_producers`` and ``read`` answer from the entry
    when it holds the answer, and otherwise ask ``reader`` and keep what it
    returns; ``fill`` runs the forward passes that the listed layers still
    miss, all of them in one pass over the data. The model is never run for
    what the entry holds.

    Parameters
    ----------
    reader : ActivationReader
    folder : path-like
        The cache folder; created when missing.
    X : ModelInput
        The inputs every read is about (fingerprinted once, here).

    Attributes
    ----------
    module, device
        Those of ``reader``.
    entry : pathlib.Path
        This model and data's entry in ``folder``.
    """

    def __init__(self, reader, folder, X):
        folder = Path(folder).expanduser()
        if folder.exists() and not folder.is_dir():
            raise ValueError(f"cache={str(folder)!r} is a file: pass a folder (it is created when missing).")
        self.reader = reader
        self.module = reader.module
        self.device = reader.device
        self.X = X
        self.repeated = RepeatedSamples()
        identity = {
            "format": CACHE_FORMAT,
            "package": _package_version(),
            "model": model_fingerprint(reader.module),
            "data": data_fingerprint(X, self.repeated),
            "n_samples": X.n_samples,
            "pooling": reader.pooling,
            "precision": reader.precision,
            "input_dtype": str(reader.dtype),
        }
        _, name = canonical(identity)
        self.entry = folder / name
        try:
            self.entry.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ValueError(
                f"The cache folder {self.entry} cannot be created ({error}): pass a writable folder."
            ) from error
        self._identity = identity
        self.manifest = self._load()

    def inputs(self, X):
        """The reader's :meth:`~sklearn_id._reader.ActivationReader.inputs`."""
        return self.reader.inputs(X)

    def list_layers(self, example_input):
        """The reader's listing of the layers, from the entry once one fit has listed them."""
        import pandas as pd

        self._check_inputs(example_input)
        if self.manifest["listing"] is None:
            with _locked(self.entry):
                self.manifest = self._load()
                if self.manifest["listing"] is None:
                    listing = self.reader.list_layers(example_input)
                    self.manifest["listing"] = {column: listing[column].tolist() for column in listing.columns}
                    self._save()

        listing = pd.DataFrame(self.manifest["listing"])
        listing["output_shape"] = [tuple(shape) for shape in listing["output_shape"]]
        return listing

    def input_producers(self, example_input, layer):
        """The reader's :meth:`~sklearn_id._reader.ActivationReader.input_producers`, kept in the entry."""
        self._check_inputs(example_input)
        if layer not in self.manifest["producers"]:
            with _locked(self.entry):
                self.manifest = self._load()
                self.manifest["producers"][layer] = self.reader.input_producers(example_input, layer)
                self._save()
        return list(self.manifest["producers"][layer])

    def fill(self, layers):
        """Write the rows of every layer in ``layers`` the entry does not hold yet, in one pass over the data.

        An entry that holds them all is only read: a read-only folder serves it.
        """
        if all(self._complete(layer) for layer in layers):
            return
        with _locked(self.entry):
            self.manifest = self._load()  # another fit may have written them meanwhile
            missing = [layer for layer in dict.fromkeys(layers) if not self._complete(layer)]
            if not missing:
                return
            progress = {self.manifest["layers"].get(layer, {}).get("samples", 0) for layer in missing}
            start = progress.pop() if len(progress) == 1 else 0
            writer = _DiskWriter(self, missing, start)
            try:
                self.reader.read_into(missing, self.X, writer, start=start)
            finally:
                writer.close()

    def read(self, layers, X, *, feature_slices=None, on_device=False):
        """:meth:`~sklearn_id._reader.ActivationReader.read`, answered from the entry (filled first if need be)."""
        self._check_inputs(X)
        self.fill(layers)
        outputs = {}
        for layer in dict.fromkeys(layers):
            state = self.manifest["layers"][layer]
            part = (feature_slices or {}).get(layer, slice(None))
            rows = np.array(self._rows(state)[:, part], dtype=np.float32)
            if rows.shape[0] == self.X.n_samples:  # one row per sample: repeats get their first's (see _repeats)
                self.repeated.apply(rows)
            if on_device:
                import torch

                rows = torch.from_numpy(rows).to(self.device)
            outputs[layer] = rows
        return outputs

    def _rows(self, state):
        shape = (state["rows"], state["width"])
        if 0 in shape:
            return np.empty(shape, dtype=np.float32)
        return np.memmap(self.entry / state["file"], dtype="<f4", mode="r", shape=shape)

    def _complete(self, layer):
        state = self.manifest["layers"].get(layer)
        if state is None or state["samples"] != self.X.n_samples:
            return False
        path = self.entry / state["file"]
        return path.exists() and path.stat().st_size >= 4 * state["rows"] * state["width"]

    def _check_inputs(self, X):
        if X is not self.X:
            raise ValueError("This cached reader serves the data it was made with; make another one for other data.")

    def _load(self):
        path = self.entry / _MANIFEST
        if not path.exists():
            return {"identity": self._identity, "listing": None, "producers": {}, "layers": {}}
        try:
            manifest = json.loads(path.read_text())
        except json.JSONDecodeError:
            manifest = {}
        if manifest.get("identity") != self._identity:
            raise ValueError(
                f"The cache entry {self.entry} belongs to another model, data or setting than its name says "
                "(a damaged or hand-edited manifest): delete that folder and fit again."
            )
        return manifest

    def _save(self):
        """Write the manifest atomically: a reader sees the old one or the new one, never half of one."""
        temporary = self.entry / f"{_MANIFEST}.{os.getpid()}.tmp"
        temporary.write_text(json.dumps(self.manifest, indent=1))
        os.replace(temporary, self.entry / _MANIFEST)


class _DiskWriter(RowWriter):
    """The rows of the layers an entry misses, appended to their files; the progress saved after each batch."""

    def __init__(self, cache, layers, start):
        super().__init__(cache.X, cache.reader, {}, on_device=False)
        self.cache = cache
        self.written = start
        self.pending = dict.fromkeys(layers, 0)
        self.files = {}
        states = cache.manifest["layers"]
        for layer in layers:
            state = states.get(layer)
            if state is None or start == 0:
                name = state["file"] if state is not None else _file_name(layer, states)
                state = states[layer] = {"file": name, "rows": 0, "samples": 0, "width": None}
            path = cache.entry / state["file"]
            with open(path, "ab") as handle:  # cut back to the last complete batch
                handle.truncate(4 * state["rows"] * (state["width"] or 0))
            self.files[layer] = open(path, "ab")

    def store(self, name, start, tensor, expected, mask):
        rows, _ = self.rows(name, start, tensor, expected, mask)
        state = self.cache.manifest["layers"][name]
        if state["width"] is None:
            state["width"] = int(rows.shape[1])
        elif rows.shape[1] != state["width"]:
            raise ValueError(
                f"Layer {name!r} gave rows of width {rows.shape[1]} after rows of width {state['width']}: "
                "its pooled width must not depend on the batch."
            )
        self.files[name].write(np.ascontiguousarray(rows.numpy(), dtype="<f4").tobytes())
        self.pending[name] += rows.shape[0]

    def batch_done(self, stop, batch):
        self.written = stop  # the repeated samples are the cached reader's, from its fingerprint pass
        states = self.cache.manifest["layers"]
        for name, handle in self.files.items():
            handle.flush()
            states[name]["rows"] += self.pending[name]
            states[name]["samples"] = stop
            self.pending[name] = 0
        self.cache._save()

    def result(self):
        super().result()
        return {}

    def close(self):
        for handle in self.files.values():
            handle.close()


def cache_size(folder):
    """The bytes a cache folder holds on disk (all its entries)."""
    return sum(path.stat().st_size for path in Path(folder).rglob("*") if path.is_file())


def _file_name(layer, states):
    """A file name for ``layer``'s rows: its name made safe, numbered to stay unique."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", layer)[:80] or "layer"
    return f"{len(states):04d}-{safe}.f32"


def _package_version():
    try:
        return metadata.version("sklearn-id")
    except metadata.PackageNotFoundError:
        return "unknown"


@contextmanager
def _locked(entry):
    """Hold the entry's lock (POSIX ``flock``: released by the system if the process dies)."""
    try:
        import fcntl
    except ImportError:  # Windows: one writer at a time is the user's to ensure
        yield
        return
    with open(entry / "lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
