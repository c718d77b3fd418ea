"""Offline data: scikit-learn's handwritten digits as images a CNN can take, and text that ships with Python."""

import importlib
import inspect
import re

import numpy as np
from sklearn.datasets import load_digits

__all__ = ["load_digit_images", "load_stdlib_docstrings"]

_STDLIB_MODULES = (
    "argparse",
    "ast",
    "calendar",
    "collections",
    "configparser",
    "csv",
    "dataclasses",
    "difflib",
    "email.message",
    "fractions",
    "ftplib",
    "functools",
    "gettext",
    "gzip",
    "heapq",
    "http.client",
    "imaplib",
    "inspect",
    "ipaddress",
    "logging",
    "mailbox",
    "optparse",
    "pathlib",
    "pickle",
    "pprint",
    "random",
    "shutil",
    "smtplib",
    "statistics",
    "string",
    "subprocess",
    "tarfile",
    "tempfile",
    "textwrap",
    "threading",
    "tokenize",
    "typing",
    "urllib.parse",
    "uuid",
    "zipfile",
)


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


def load_stdlib_docstrings(min_length=40):
    """Paragraphs of the docstrings of 40 pure-Python modules of the standard library.

    Text that ships with every Python, for language-model examples and
    tests that must run offline: the docstrings of each module and of the
    classes, functions and methods it defines, cut into paragraphs at blank
    lines, with whitespace collapsed and doctest lines left out. The order is
    fixed; the exact text follows the running Python's version.

    Parameters
    ----------
    min_length : int, default=40
        Shorter paragraphs are dropped.

    Returns
    -------
    paragraphs : list of str

    Examples
    --------
    >>> from sklearn_id.datasets import load_stdlib_docstrings
    >>> paragraphs = load_stdlib_docstrings()
    >>> len(paragraphs) > 2000, all(len(text) >= 40 for text in paragraphs)
    (True, True)
    """
    paragraphs = []
    seen = set()
    for name in _STDLIB_MODULES:
        module = importlib.import_module(name)
        for doc in _docstrings(module):
            for paragraph in re.split(r"\n\s*\n", doc):
                lines = [line.strip() for line in paragraph.splitlines()]
                if any(line.startswith((">>>", "...")) for line in lines):
                    continue
                text = " ".join(line for line in lines if line)
                if len(text) >= min_length and text not in seen:
                    seen.add(text)
                    paragraphs.append(text)
    return paragraphs


def _docstrings(module):
    """The module's docstring, then those of the classes and functions it defines and their methods."""
    yield inspect.getdoc(module) or ""
    for _, member in sorted(vars(module).items()):
        if getattr(member, "__module__", None) != module.__name__:
            continue
        if inspect.isfunction(member):
            yield inspect.getdoc(member) or ""
        elif inspect.isclass(member):
            doc = vars(member).get("__doc__")
            yield inspect.cleandoc(doc) if isinstance(doc, str) else ""
            for _, method in sorted(vars(member).items()):
                if inspect.isfunction(method) and isinstance(method.__doc__, str):
                    yield inspect.cleandoc(method.__doc__)
