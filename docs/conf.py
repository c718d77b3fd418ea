"""Sphinx configuration: numpydoc API pages from the docstrings, the examples run by sphinx-gallery."""

import matplotlib

matplotlib.use("Agg")

import sklearn_id

project = "sklearn-id"
author = "the sklearn-id developers"
release = sklearn_id.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

autosummary_generate = True
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
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
