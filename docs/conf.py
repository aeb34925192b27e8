"""Sphinx configuration of the gluonx documentation (built in CI with -W)."""
import os
import sys

DOCS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(DOCS))  # document this checkout's gluonx
sys.path.insert(0, DOCS)

import gluonx  # noqa: E402

project = "gluonx"
author = "the gluonx authors"
copyright = "the gluonx authors, Apache-2.0"
version = release = gluonx.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",   # ships MathJax into _static: formulas render without internet
    "myst_nb",                  # markdown (myst-parser) and the executed notebooks
]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
templates_path = []

# The notebooks (stored without outputs in notebooks/) are copied into
# _generated/notebooks/ and executed at every build, so their pages show what
# they compute, pictures included. The kernel imports this checkout.
REPO = os.path.dirname(DOCS)
os.environ["PYTHONPATH"] = REPO + os.pathsep + os.environ.get("PYTHONPATH", "")
nb_execution_mode = "force"
nb_execution_in_temp = True
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_merge_streams = True
html_theme = "alabaster"
html_static_path = []
html_theme_options = {"description": "Hybridizable loss blocks for MXNet Gluon", "fixed_sidebar": True}

autodoc_member_order = "bysource"
autodoc_default_options = {"members": False, "show-inheritance": False}
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_param = True
napoleon_use_rtype = False


def _add_benchmarks(app, docname, source):
    """List docs/benchmarks.md (written by the benchmark tool) in the toctree once it exists."""
    if docname == "index":
        present = os.path.exists(os.path.join(DOCS, "benchmarks.md"))
        source[0] = source[0].replace("@BENCHMARKS@", "benchmarks" if present else "")


def _make_plots(app):
    import plots  # docs/plots.py

    plots.make_all(os.path.join(DOCS, "_generated"))


def _copy_notebooks(app):
    import glob
    import shutil

    target = os.path.join(DOCS, "_generated", "notebooks")
    os.makedirs(target, exist_ok=True)
    for path in sorted(glob.glob(os.path.join(REPO, "notebooks", "*.ipynb"))):
        shutil.copyfile(path, os.path.join(target, os.path.basename(path)))


def _end_parameter_sections(app, what, name, obj, options, lines):
    """End numpy-style ``Parameters`` sections at their first blank line.

    napoleon keeps a section open until the next section header or two blank
    lines, so the ``Inputs:``/``Outputs:``/``Example::`` paragraphs that follow
    the parameters in gluonx docstrings would be read as more parameters.
    Runs before napoleon (priority 400 < 500).
    """
    out, in_params = [], False
    for i, line in enumerate(lines):
        out.append(line)
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if line.strip() in ("Parameters", "Other Parameters") and set(nxt.strip()) == {"-"}:
            in_params = True
        elif in_params and not line.strip() and nxt.strip():
            out.append("")  # the second blank line closes the section
            in_params = False
    lines[:] = out


def setup(app):
    app.connect("autodoc-process-docstring", _end_parameter_sections, priority=400)
    app.connect("source-read", _add_benchmarks)
    app.connect("builder-inited", _make_plots)
    app.connect("builder-inited", _copy_notebooks)
