"""The public API: one place to import from, a sorted ``__all__``, no torch on import."""

import subprocess
import sys

import pytest

import sklearn_id
from sklearn_id._device import _nvidia_driver_present


def test_public_names_are_sorted_and_importable():
    assert sklearn_id.__all__ == sorted(sklearn_id.__all__)
    for name in sklearn_id.__all__:
        assert getattr(sklearn_id, name) is not None


@pytest.mark.parametrize("device", ["cpu", "auto"])
def test_fitting_on_the_cpu_imports_no_torch(device):
    # "auto" asks torch only where an NVIDIA driver is present.
    if device == "auto" and _nvidia_driver_present():
        pytest.skip("this machine has an NVIDIA driver: device='auto' rightly asks torch")
    code = (
        "import sys, numpy as np; from sklearn_id import TwoNNDimension, PCADimension, id_scaling; "
        "X = np.random.default_rng(0).normal(size=(300, 5)); "
        f"TwoNNDimension(device={device!r}).fit(X).transform(X[:5]); PCADimension().fit(X); "
        f"id_scaling(TwoNNDimension(device={device!r}), X, random_state=0); "
        "print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
