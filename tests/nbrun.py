"""Execute a notebook in the test suite (shared helper; nbclient + nbformat).

    from nbrun import run_notebook
    nb = run_notebook("notebooks/3.3-local-response-normalization.ipynb", timeout=120)

The kernel (``python3``) starts with this checkout's root on PYTHONPATH, so
``import minialex`` inside the notebook imports the code under test, not an
installed copy; the working directory is the notebook's folder. A failing
cell raises ``nbclient.exceptions.CellExecutionError`` with the traceback.
Tests using it should ``pytest.importorskip("nbclient")`` first.
"""
from __future__ import annotations

import contextlib
import copy
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def _pythonpath(root):
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(root) + (os.pathsep + old if old else "")
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


def load_notebook(path):
    import nbformat
    return nbformat.read(str(path), as_version=4)


def run_notebook(path_or_nb, timeout=120, cwd=None, kernel_name="python3", allow_errors=False):
    """Execute every cell top to bottom; return the executed ``NotebookNode``.

    ``path_or_nb``: a path, or a notebook already loaded (e.g. with cells
    substituted); ``cwd`` defaults to the notebook's folder (or the repo root).
    ``timeout`` is per cell, in seconds. With ``allow_errors=True`` a failing
    cell does not raise: execution goes on and the error is kept in the
    cell's outputs (see ``cell_errors``).
    """
    from nbclient import NotebookClient

    if isinstance(path_or_nb, (str, os.PathLike)):
        nb = load_notebook(path_or_nb)
        cwd = cwd or Path(path_or_nb).resolve().parent
    else:
        nb = copy.deepcopy(path_or_nb)
    cwd = str(cwd or ROOT)
    with _pythonpath(ROOT):
        client = NotebookClient(nb, timeout=timeout, kernel_name=kernel_name,
                                allow_errors=allow_errors, resources={"metadata": {"path": cwd}})
        client.execute()
    return nb


def cell_outputs(nb):
    """All text a notebook printed (stream outputs and plain-text results), joined."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                parts.append(out.get("text", ""))
            elif "data" in out and "text/plain" in out["data"]:
                parts.append(out["data"]["text/plain"])
    return "\n".join(parts)


def cell_errors(nb):
    """(exception name, message) of every cell that raised, in order."""
    return [(out.get("ename"), out.get("evalue")) for cell in nb.cells
            for out in cell.get("outputs", []) if out.get("output_type") == "error"]
