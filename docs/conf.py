"""Sphinx configuration of the aiida-nanoos documentation (``make docs``, or ``sphinx-build -W -b html docs OUT``).

The build needs no AiiDA profile of the user's: ``_ext/nanoos_docs.py`` loads a temporary in-memory profile
(``core.sqlite_temp``) because ``aiida.sphinxext``'s directives call ``load_profile()``, and every generated page
(process specs, exit codes, configuration reference) is read from the installed package at build time. Notebooks are
rendered from ``examples/notebooks`` with execution off: the tests execute them, the docs only show them.
"""

from __future__ import annotations

import os
import sys
import tempfile
from importlib.metadata import version as package_version
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))

# aiida reads AIIDA_PATH when first imported: never create ~/.aiida while building the docs.
os.environ.setdefault("AIIDA_PATH", tempfile.mkdtemp(prefix="nanoos-docs-aiida-"))

project = "aiida-nanoos"
author = "aiida-nanoos developers"
copyright = "aiida-nanoos developers"  # noqa: A001 (Sphinx's name)
release = package_version("aiida-nanoos")
version = release

extensions = [
    "myst_nb",  # Markdown pages (MyST) and notebooks
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx_click",
    "aiida.sphinxext",  # aiida-workchain / aiida-calcjob directives (documents the process specs)
    "nanoos_docs",  # generated pages: process specs, exit codes, configuration reference; notebooks
]
# Cross-links to the AiiDA, Python, ASE and numpy docs need the network: opt in with NANOOS_DOCS_INTERSPHINX=1
# (the test build runs offline, where an unreachable inventory would be a warning, hence an error under -W).
if os.environ.get("NANOOS_DOCS_INTERSPHINX") == "1":
    extensions.append("sphinx.ext.intersphinx")
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "aiida": ("https://aiida.readthedocs.io/projects/aiida-core/en/stable/", None),
        "ase": ("https://wiki.fysik.dtu.dk/ase/", None),
        "numpy": ("https://numpy.org/doc/stable/", None),
    }

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
root_doc = "index"
exclude_patterns = ["_build", "**.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]
templates_path: list[str] = []

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
# Notebooks are executed by the tests (tests/test_notebooks.py), never by the docs build.
nb_execution_mode = "off"
# Widget outputs (ipywidgets) have no static HTML rendering; notebooks are usually stored without outputs anyway.
nb_mime_priority_overrides = [("html", "application/vnd.jupyter.widget-view+json", None)]

autodoc_default_options = {"members": True, "show-inheritance": True, "member-order": "bysource"}
autodoc_typehints = "description"
autodoc_member_order = "bysource"
autosummary_generate = True
napoleon_google_docstring = True
napoleon_numpy_docstring = False

html_theme = "furo"
html_title = f"aiida-nanoos {release}"
html_static_path: list[str] = []
