"""Execute a Jupyter notebook top to bottom, as a student would, and fail on any error.

Used by ``tests/test_notebooks.py`` (and usable for the lab notebooks):

    nb, seconds = run_notebook("notebooks/3.3-local-response-normalization.ipynb")

The kernel is ``python3`` (ipykernel), its working directory is the notebook's
folder, and the repository root is put first on its ``PYTHONPATH`` so that the
notebook imports *this* checkout's ``minialex`` (not another installed copy).
Outputs are kept in the returned notebook object only; nothing is written back.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_notebook(path, timeout=600, kernel_name="python3", env=None):
    """Run every cell of the notebook at ``path``; return (executed notebook, seconds).

    Raises ``nbclient.exceptions.CellExecutionError`` (with the failing cell's
    source and traceback) on the first cell that raises.
    ``timeout`` is per cell, in seconds.
    """
    import nbformat
    from nbclient import NotebookClient

    path = Path(path).resolve()
    nb = nbformat.read(path, as_version=4)
    kernel_env = dict(os.environ)
    kernel_env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO)] + [p for p in kernel_env.get("PYTHONPATH", "").split(os.pathsep) if p])
    kernel_env.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    kernel_env.update(env or {})
    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel_name,
                            resources={"metadata": {"path": str(path.parent)}})
    t0 = time.perf_counter()
    client.execute(env=kernel_env)          # passed on to the kernel manager's start_kernel
    return nb, time.perf_counter() - t0


def outputs_of(nb, kind="stream"):
    """All text outputs of an executed notebook (stdout by default), joined."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == kind:
                parts.append(out.get("text", ""))
            elif kind == "execute_result" and out.get("output_type") == "execute_result":
                parts.append(out.get("data", {}).get("text/plain", ""))
    return "".join(parts)


def count_figures(nb):
    """Number of image outputs (PNG/SVG) in an executed notebook."""
    return sum(1 for cell in nb.cells for out in cell.get("outputs", [])
               if any(k.startswith("image/") for k in out.get("data", {})))
