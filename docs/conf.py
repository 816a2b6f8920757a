"""Sphinx configuration for skvae's documentation."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import skvae

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

project = "skvae"
author = "The skvae developers"
copyright = "2026, the skvae developers"
release = version = skvae.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    # A local copy of MathJax, so that formulas render without internet access.
    "sphinx-mathjax-offline",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]
exclude_patterns = ["_build", "_inventories", "auto_examples/*.ipynb"]
templates_path = ["_templates"]

html_theme = "pydata_sphinx_theme"
html_title = f"skvae {version}"
html_theme_options = {
    "navbar_end": ["navbar-icon-links"],
    "secondary_sidebar_items": ["page-toc"],
    "show_prev_next": False,
}
html_static_path: list[str] = []

autosummary_generate = True
# Types are in the numpydoc Parameters sections; signatures stay readable.
autodoc_typehints = "none"
numpydoc_show_class_members = False
# Every numpydoc check, except: "See Also" and extended summaries on every method,
# an Examples section per method (the class has runnable ones), and RT02, which
# wants no description on the Returns type line.
numpydoc_validation_checks = {"all", "GL01", "SA01", "ES01", "EX01", "RT02"}
# Methods inherited from scikit-learn are documented by scikit-learn.
numpydoc_validation_exclude = {r"\.set_output$", r"\.get_params$", r"\.set_params$"}


# Each mapping tries the project's live inventory first and falls back to a small
# inventory kept here (docs/_inventories, written by make_inventories.py), so that
# the build works, warning-free, on machines without internet access.
def _inventory(url: str, name: str) -> tuple[str, tuple[str | None, str]]:
    return url, (None, str(HERE / "_inventories" / f"{name}.inv"))


intersphinx_mapping = {
    "python": _inventory("https://docs.python.org/3/", "python"),
    "numpy": _inventory("https://numpy.org/doc/stable/", "numpy"),
    "pandas": _inventory("https://pandas.pydata.org/docs/", "pandas"),
    "sklearn": _inventory("https://scikit-learn.org/stable/", "sklearn"),
    "torch": _inventory("https://docs.pytorch.org/docs/stable/", "torch"),
}
intersphinx_timeout = 5

sphinx_gallery_conf = {
    "examples_dirs": str(HERE.parent / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "reference_url": {"skvae": None},
    "doc_module": ("skvae",),
    "backreferences_dir": "generated/backreferences",
    "min_reported_time": 1,
    "abort_on_example_error": True,
    "plot_gallery": os.environ.get("SKVAE_DOCS_PLOT", "True"),
}
