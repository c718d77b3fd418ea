"""Sphinx configuration: numpydoc API pages from the docstrings, the examples run by sphinx-gallery."""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import sklearn_id

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

project = "sklearn-id"
author = "the sklearn-id developers"
copyright = "2026, the sklearn-id developers (BSD-3-Clause)"
release = sklearn_id.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "mathml",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

autosummary_generate = True
# Maths as MathML at build time (docs/_ext/mathml.py): nothing to fetch when a page is read offline.
html_math_renderer = "mathml"
# Each class page documents its own methods in full (docs/_templates/autosummary/class.rst).
templates_path = ["_templates"]
numpydoc_show_class_members = False
default_role = "py:obj"
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py", "auto_examples/*.zip"]

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    # Run every script, not only plot_*.py.
    "filename_pattern": "/",
    "download_all_examples": False,
    "show_memory": False,
    "remove_config_comments": True,
}

html_theme = "alabaster"
html_title = "sklearn-id"
html_static_path = ["_static"]
