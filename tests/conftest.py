"""Shared fixtures: data sets with a known intrinsic dimension."""

import numpy as np
import pytest


@pytest.fixture
def random_rotation(rng):
    """A function giving a random orthogonal matrix (QR of a Gaussian matrix, signs fixed)."""

    def rotation(n_features):
        q, r = np.linalg.qr(rng.normal(size=(n_features, n_features)))
        return q * np.sign(np.diag(r))

    return rotation


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def curved_data(rng):
    """A 6-dimensional Gaussian pushed through a random linear map and tanh, in 40 dimensions."""
    latent = rng.normal(size=(1500, 6))
    return np.tanh(latent @ rng.normal(size=(6, 40)) / np.sqrt(6))
