"""Offline data: scikit-learn's handwritten digits as images a CNN can take."""

import numpy as np
from sklearn.datasets import load_digits

__all__ = ["load_digit_images"]


def load_digit_images():
    """The 1,797 handwritten digits of :func:`sklearn.datasets.load_digits` as 8x8 images.

    Returns
    -------
    images : ndarray of shape (1797, 1, 8, 8), float32
        Pixel intensities scaled from 0-16 to [0, 1], with a channel axis.
    labels : ndarray of shape (1797,), int64
        The digit, 0 to 9.

    Examples
    --------
    >>> from sklearn_id.datasets import load_digit_images
    >>> images, labels = load_digit_images()
    >>> images.shape, images.dtype.name, float(images.max()), labels[:5].tolist()
    ((1797, 1, 8, 8), 'float32', 1.0, [0, 1, 2, 3, 4])
    """
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None]
    return images, digits.target.astype(np.int64)
