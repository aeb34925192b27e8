"""The notebooks run, top to bottom, in a real Jupyter kernel (nbclient + ipykernel).

Also checks that they are stored without outputs. Each must finish within
NOTEBOOK_TIMEOUT seconds per cell (they take well under 30 s each here).
"""
import glob
import os
import time

import pytest

nbformat = pytest.importorskip("nbformat", reason="notebook tests need nbformat (pip install gluonx[test])")
nbclient = pytest.importorskip("nbclient", reason="notebook tests need nbclient (pip install gluonx[test])")
pytest.importorskip("ipykernel", reason="notebook tests need ipykernel (pip install gluonx[test])")
pytest.importorskip("matplotlib", reason="the notebooks plot with matplotlib")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = sorted(glob.glob(os.path.join(REPO, "notebooks", "*.ipynb")))
NOTEBOOK_TIMEOUT = 180


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 3, NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_notebook_is_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, \
                f"{os.path.basename(path)} has outputs: strip them before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_notebook_executes(path, tmp_path, monkeypatch):
    # the kernel inherits this environment: it must import this checkout's gluonx
    monkeypatch.setenv("PYTHONPATH", REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # let the kernel use its inline backend
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=NOTEBOOK_TIMEOUT, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    tic = time.monotonic()
    client.execute()  # raises CellExecutionError with the traceback when a cell fails
    elapsed = time.monotonic() - tic
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, errors
    images = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code"
                 for o in c.get("outputs", []))
    plots = sum("plt.show()" in c.source for c in nb.cells if c.cell_type == "code")
    assert images >= plots, f"{plots} cells plot, {images} images came back"
    print(f"{os.path.basename(path)}: {elapsed:.1f} s")
