"""The public API: one place to import from, a sorted ``__all__``, no torch on import."""

import subprocess
import sys

import sklearn_id


def test_public_names_are_sorted_and_importable():
    assert sklearn_id.__all__ == sorted(sklearn_id.__all__)
    for name in sklearn_id.__all__:
        assert getattr(sklearn_id, name) is not None


def test_fitting_on_the_cpu_imports_no_torch():
    code = (
        "import sys, numpy as np; from sklearn_id import TwoNNDimension; "
        "TwoNNDimension().fit(np.random.default_rng(0).normal(size=(300, 5))); "
        "print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
