"""profile_sweep on joblib backends (loky, a Dask LocalCluster), its failures, and ID during training."""

import os
import signal

import joblib
import numpy as np
import pandas as pd
import pytest
import torch

from sklearn_id import DepthProfile, SweepError, profile_sweep
from sklearn_id.datasets import load_digit_images
from sklearn_id.models import DigitsCNN, make_digits_classifier

pytestmark = pytest.mark.filterwarnings("ignore::sklearn_id.UndersampledWarning")

PARAMS = {"n_resamples": 3, "random_state": 0, "device": "cpu"}


@pytest.fixture(scope="module")
def images():
    return load_digit_images()[0][:600]


def checkpoints(folder, n):
    """``n`` state dicts of the digits CNN: the first as a dict, the others saved to files."""
    specs = {}
    for seed in range(n):
        torch.manual_seed(seed)
        state = DigitsCNN(width=8, hidden=32).state_dict()
        if seed == 0:
            specs[f"seed {seed}"] = state
        else:
            path = folder / f"seed{seed}.pt"
            torch.save(state, path)
            specs[f"seed {seed}"] = str(path)
    return specs


def architecture():
    return DigitsCNN(width=8, hidden=32)


def killer():
    """A model that kills the process running it, as an out-of-memory killer would.

    Its class is made here, inside a function, so that process pools and Dask
    pickle it by value: the workers need not import this test module.
    """

    class Killer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(64, 4)

        def forward(self, x):
            os.kill(os.getpid(), signal.SIGKILL)
            return self.layer(x.flatten(1))

    return Killer()


def alone(spec):
    """DepthProfile fitted on one checkpoint by itself."""
    model = architecture()
    state = spec if isinstance(spec, dict) else torch.load(spec, weights_only=True)
    model.load_state_dict(state)
    return DepthProfile(model, **PARAMS).fit(load_digit_images()[0][:600]).profile_


def assert_same_rows(table, specs):
    assert list(dict.fromkeys(table["model"])) == list(specs)
    for name, spec in specs.items():
        rows = table[table["model"] == name].drop(columns=["model", "last_hidden"]).reset_index(drop=True)
        expected = alone(spec)
        assert list(rows.columns) == list(expected.columns)
        assert list(rows["layer"]) == list(expected["layer"])
        for column in ["relative_depth", "id", "id_std", "pca_id"]:
            np.testing.assert_allclose(rows[column], expected[column], rtol=1e-12, atol=0, err_msg=column)
    last = table[table["last_hidden"]]
    assert list(last["layer"]) == ["d1"] * len(specs)


@pytest.mark.slow  # starts a process pool
def test_a_sweep_on_loky_gives_the_rows_of_each_profile_alone(images, tmp_path):
    specs = checkpoints(tmp_path, 3)
    with joblib.parallel_config(backend="loky"):
        table = profile_sweep(specs, images, architecture=architecture, n_jobs=2, **PARAMS)
    assert_same_rows(table, specs)
    sequential = profile_sweep(specs, images, architecture=architecture, **PARAMS)
    pd.testing.assert_frame_equal(sequential, table)


def test_models_and_nets_go_in_as_they_are(images):
    torch.manual_seed(0)
    module = architecture()
    net = make_digits_classifier(max_epochs=1, device="cpu", width=8, hidden=32).initialize()
    table = profile_sweep({"module": module, "net": net}, images, **PARAMS)
    expected = DepthProfile(module, **PARAMS).fit(images).profile_
    np.testing.assert_allclose(table[table["model"] == "module"]["id"], expected["id"], rtol=1e-12)
    assert len(table[table["model"] == "net"]) == len(expected)


def test_without_a_seed_every_model_gets_the_same_subsamples(images):
    torch.manual_seed(0)
    module = architecture()
    table = profile_sweep({"a": module, "b": module}, images, n_resamples=3, device="cpu")
    a, b = (table[table["model"] == name].reset_index(drop=True) for name in "ab")
    np.testing.assert_array_equal(a["id_std"], b["id_std"])


@pytest.mark.slow
def test_failures_name_the_model_and_keep_the_others(images, tmp_path):
    specs = checkpoints(tmp_path, 2)
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    wrong = {key: value[..., :1] if value.dim() > 1 else value for key, value in specs["seed 0"].items()}
    # Neither alphabetical nor the order in which they fail: the message follows the user's order.
    specs = {
        "wrong shapes": wrong,
        "seed 0": specs["seed 0"],
        "missing": str(tmp_path / "missing.pt"),
        "seed 1": specs["seed 1"],
        "broken": str(broken),
    }
    with pytest.raises(
        SweepError, match=r"3 of 5 model\(s\) failed: 'wrong shapes': .*'missing': .*'broken': "
    ) as info:
        profile_sweep(specs, images, architecture=architecture, n_jobs=2, **PARAMS)
    assert list(info.value.errors) == ["wrong shapes", "missing", "broken"]
    assert "is not a state dict of DigitsCNN: wrong shape" in info.value.errors["wrong shapes"]
    assert_same_rows(info.value.partial, {name: specs[name] for name in ("seed 0", "seed 1")})


def test_a_model_without_the_requested_layers_is_named(images):
    torch.manual_seed(0)
    models = {"two convolutions": DigitsCNN(width=8), "one convolution": DigitsCNN(width=8, n_convolutions=1)}
    with pytest.raises(SweepError, match=r"'one convolution': ValueError: Unknown layer 'pool2'") as info:
        profile_sweep(models, images, layers=["pool1", "pool2", "d1"], **PARAMS)
    assert list(info.value.partial["model"].unique()) == ["two convolutions"]


@pytest.mark.slow
def test_a_worker_killed_mid_sweep_is_an_error_that_keeps_the_finished_models(images, tmp_path):
    specs = checkpoints(tmp_path, 2)
    models = {"seed 0": architecture(), "killer": killer()}
    models["seed 0"].load_state_dict(specs["seed 0"])
    with pytest.raises(SweepError, match=r"A worker failed during the sweep .*'killer'") as info:
        # One worker: the first model finishes before the second kills it.
        with joblib.parallel_config(backend="loky"):
            profile_sweep(models, images, n_jobs=1 if os.cpu_count() == 1 else 2, **PARAMS)
    assert "killer" in info.value.errors
    finished = set(info.value.partial["model"]) if len(info.value.partial) else set()
    assert finished <= {"seed 0"}


def test_checkpoints_need_an_architecture_and_a_fixed_seed(images, tmp_path):
    specs = checkpoints(tmp_path, 2)
    with pytest.raises(ValueError, match="are checkpoints: pass architecture="):
        profile_sweep(specs, images, **PARAMS)
    with pytest.raises(ValueError, match="random_state must be an int or None"):
        profile_sweep(specs, images, architecture=architecture, random_state=np.random.RandomState(0))
    with pytest.raises(ValueError, match="models is empty"):
        profile_sweep({}, images)


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as local:
        with distributed.Client(local) as client:
            yield client


@pytest.mark.slow
def test_a_sweep_on_a_dask_cluster_gives_the_same_table(images, tmp_path, cluster):
    specs = checkpoints(tmp_path, 3)
    with joblib.parallel_config(backend="dask"):
        table = profile_sweep(specs, images, architecture=architecture, **PARAMS)
    assert_same_rows(table, specs)


@pytest.mark.slow
def test_the_cluster_receives_the_data_once_per_worker(images, tmp_path, cluster):
    specs = checkpoints(tmp_path, 8)
    before = _transfers(cluster)
    received = cluster.run(lambda dask_worker: dask_worker.__dict__.get("_sklearn_id_received", 0))
    with joblib.parallel_config(backend="dask"):
        table = profile_sweep(specs, images, architecture=architecture, **PARAMS)
    assert table["model"].nunique() == 8
    # Each worker received the data once, from the client ...
    now = cluster.run(lambda dask_worker: dask_worker.__dict__.get("_sklearn_id_received", 0))
    assert {worker: now[worker] - received[worker] for worker in now} == {worker: 1 for worker in now}
    # ... and never from a peer: no array moved between workers during the sweep (8 tasks).
    after = _transfers(cluster)
    moved = [key for worker in after for key in after[worker][len(before[worker]) :] if key.startswith("ndarray-")]
    assert moved == []
    # The copies are forgotten when the sweep ends.
    held = cluster.run(lambda dask_worker: len(dask_worker.__dict__.get("_sklearn_id_sweeps", {})))
    assert set(held.values()) == {0}


@pytest.mark.slow
def test_on_a_dask_cluster_each_model_writes_its_cache_entry_once_and_a_second_sweep_reuses_it(
    images, tmp_path, cluster
):
    specs = checkpoints(tmp_path, 3)
    cache = tmp_path / "cache"
    with joblib.parallel_config(backend="dask"):
        first = profile_sweep(specs, images, architecture=architecture, cache=cache, **PARAMS)
    assert_same_rows(first, specs)
    written = {path: path.stat().st_mtime_ns for path in cache.rglob("*.f32")}
    manifests = {path: path.read_text() for path in cache.rglob("manifest.json")}
    assert len(manifests) == 3  # one entry per model
    with joblib.parallel_config(backend="dask"):
        second = profile_sweep(specs, images, architecture=architecture, cache=cache, **{**PARAMS, "n_resamples": 2})
    # Nothing was written again: no row file, no manifest (a forward pass would have rewritten both).
    assert {path: path.stat().st_mtime_ns for path in cache.rglob("*.f32")} == written
    assert {path: path.read_text() for path in cache.rglob("manifest.json")} == manifests
    np.testing.assert_allclose(second["id"], first["id"], rtol=1e-12, atol=0)


def _transfers(client):
    """Each worker's incoming transfers, as the keys received, oldest first."""
    return client.run(lambda dask_worker: [key for entry in dask_worker.transfer_incoming_log for key in entry["keys"]])


@pytest.mark.slow
def test_a_worker_killed_on_a_dask_cluster_fails_its_model_alone(images):
    distributed = pytest.importorskip("distributed")

    torch.manual_seed(0)
    models = {"first": architecture(), "killer": killer(), "last": architecture()}
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as local:
        with distributed.Client(local), joblib.parallel_config(backend="dask"):
            with pytest.raises(SweepError, match=r"1 of 3 model\(s\) failed: 'killer': KilledWorker") as info:
                profile_sweep(models, images, **PARAMS)
    assert list(info.value.errors) == ["killer"]
    # The others finished, on the workers that replaced the killed ones, with the same rows as alone.
    partial = info.value.partial
    assert list(partial["model"].unique()) == ["first", "last"]
    for name in ("first", "last"):
        expected = DepthProfile(models[name], **PARAMS).fit(images).profile_
        np.testing.assert_allclose(partial[partial["model"] == name]["id"], expected["id"], rtol=1e-12)


def test_the_callback_records_the_profile_of_the_module_at_each_recorded_epoch(images):
    from skorch.callbacks import Callback

    from sklearn_id.callbacks import DepthProfileCallback, history_profiles

    class Snapshot(Callback):
        def initialize(self):
            self.states = {}
            return self

        def on_epoch_end(self, net, **kwargs):
            self.states[len(net.history)] = {k: v.clone() for k, v in net.module_.state_dict().items()}

    labels = load_digit_images()[1][:600]
    snapshot = Snapshot()
    callback = DepthProfileCallback(images, every=2, n_resamples=3, random_state=0)
    torch.manual_seed(0)
    net = make_digits_classifier(max_epochs=4, device="cpu", callbacks=[callback, snapshot], width=8, hidden=32).fit(
        images, labels
    )
    table = history_profiles(net)
    assert sorted(set(table["epoch"])) == [2, 4]
    for epoch in (2, 4):
        module = architecture()
        module.load_state_dict(snapshot.states[epoch])
        expected = DepthProfile(module, n_resamples=3, random_state=0, device="cpu").fit(images).profile_
        rows = table[table["epoch"] == epoch].reset_index(drop=True)
        for column in ["id", "id_std", "pca_id"]:
            np.testing.assert_allclose(rows[column], expected[column], rtol=1e-12, err_msg=f"{column} at {epoch}")
    assert net.module_.training  # training went on in train mode
    with pytest.raises(ValueError, match="has no 'depth_profile' entries"):
        history_profiles(make_digits_classifier(max_epochs=1, device="cpu").fit(images, labels))


def test_a_wrapped_dataparallel_checkpoint_loads_as_on_the_command_line(images, tmp_path):
    from sklearn_id._cli_models import load_state_dict

    specs = checkpoints(tmp_path, 1)
    path = tmp_path / "wrapped.pt"
    torch.save({"epoch": 3, "state_dict": {f"module.{key}": value for key, value in specs["seed 0"].items()}}, path)
    assert load_state_dict(path).keys() == specs["seed 0"].keys()  # the command line's reading
    table = profile_sweep({"wrapped": str(path)}, images, architecture=architecture, **PARAMS)
    assert_same_rows(table.assign(model="seed 0"), {"seed 0": specs["seed 0"]})


def test_the_callback_records_the_untrained_profile_as_epoch_zero(images):
    from sklearn_id.callbacks import DepthProfileCallback, history_profiles

    labels = load_digit_images()[1][:600]
    params = {"n_resamples": 0, "pca_estimator": None, "random_state": 0}
    callback = DepthProfileCallback(images, every=2, at_start=True, **params)
    torch.manual_seed(0)
    start = make_digits_classifier(device="cpu", width=8, hidden=32).initialize().module_
    expected = DepthProfile(start, device="cpu", **params).fit(images).profile_
    torch.manual_seed(0)
    net = make_digits_classifier(max_epochs=2, device="cpu", callbacks=[callback], width=8, hidden=32)
    table = history_profiles(net.fit(images, labels))
    assert sorted(set(table["epoch"])) == [0, 2]
    np.testing.assert_allclose(table[table["epoch"] == 0]["id"], expected["id"], rtol=1e-12)
    # Trained further, the last recorded epoch is the start: it is not profiled twice.
    net.partial_fit(images, labels)
    further = history_profiles(net)
    assert sorted(set(further["epoch"])) == [0, 2, 4]
    assert (further.groupby("epoch").size() == len(expected)).all()
