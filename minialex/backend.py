"""Array-module selection: NumPy on the CPU, CuPy on a CUDA GPU.

Every layer starts with ``xp = get_array_module(x)`` so the same code runs on
both (the Chainer idiom). Devices are chosen here, at the edges, never inside
a layer.
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
import platform

import numpy as np

_CUPY_HINT = (
    "Install CuPy for your CUDA version, e.g. `pip install \"minialex[gpu]\"` "
    "(cupy-cuda12x) or `pip install cupy-cuda11x`; see https://docs.cupy.dev/en/stable/install.html"
)


def _import_cupy():
    """Return the cupy module, or None when it is not importable."""
    try:
        import cupy  # noqa: F401
    except Exception:  # ImportError, or a broken CUDA install raising at import
        return None
    return cupy


def cupy_available() -> bool:
    """True when CuPy imports and at least one CUDA device is visible."""
    cp = _import_cupy()
    if cp is None:
        return False
    try:
        return cp.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def get_array_module(*arrays):
    """Return ``numpy`` or ``cupy``, whichever owns the given arrays.

    Parameters
    ----------
    *arrays : array-like
        Any mix of arrays and scalars. ``None`` entries are ignored.

    Returns
    -------
    module
        ``cupy`` if any argument is a ``cupy.ndarray``, else ``numpy``.
    """
    for a in arrays:
        if a is None or isinstance(a, np.ndarray):
            continue
        mod = type(a).__module__
        if mod.startswith("cupy"):
            import cupy

            return cupy
    return np


def get_backend(name: str = "numpy"):
    """Return the array module for ``name`` ("numpy" or "cupy").

    Raises
    ------
    ValueError
        For an unknown name.
    RuntimeError
        For "cupy" when CuPy is not installed or no CUDA device is visible;
        the message says which, and how to fix it. There is no silent fallback.
    """
    if name == "numpy":
        return np
    if name != "cupy":
        raise ValueError(f"backend must be 'numpy' or 'cupy', got {name!r}")
    cp = _import_cupy()
    if cp is None:
        raise RuntimeError("backend 'cupy' requested but CuPy is not installed. " + _CUPY_HINT)
    try:
        n = cp.cuda.runtime.getDeviceCount()
    except Exception as e:  # driver missing, CUDA_VISIBLE_DEVICES empty, ...
        raise RuntimeError(
            f"backend 'cupy' requested but no CUDA device is usable ({type(e).__name__}: {e}). "
            "Check `nvidia-smi`, the NVIDIA driver and CUDA_VISIBLE_DEVICES, "
            "or run with --backend numpy."
        ) from e
    if n == 0:
        raise RuntimeError(
            "backend 'cupy' requested but no CUDA device is visible (device count 0). "
            "Check `nvidia-smi` and CUDA_VISIBLE_DEVICES, or run with --backend numpy."
        )
    return cp


def to_numpy(a):
    """Return ``a`` as a NumPy array (copies from the GPU when needed)."""
    if isinstance(a, np.ndarray):
        return a
    if type(a).__module__.startswith("cupy"):
        return a.get()
    return np.asarray(a)


def to_device(a, xp, device=None):
    """Move ``a`` to the array module ``xp`` (and CUDA ``device`` for CuPy)."""
    if xp is np:
        return to_numpy(a)
    if device is None:
        return xp.asarray(a)
    with xp.cuda.Device(device):
        return xp.asarray(a)


def device_of(a):
    """``with device_of(a):`` makes ``a``'s GPU the current device; a no-op for NumPy arrays.

    CuPy allocates and launches kernels on the current device and refuses
    arrays that live elsewhere, so code that touches arrays on several GPUs
    (the two towers of ``minialex.towers``, their optimizer) runs each
    per-array operation under its array's device.
    """
    if type(a).__module__.startswith("cupy"):
        return a.device
    return contextlib.nullcontext()


_IMPLS = ("auto", "numba", "reference")


def active_impl(impl="auto"):
    """Name of the CPU implementation the layers use: "numba" or "reference".

    ``MINIALEX_KERNELS`` ("numba", "reference" or "auto") switches every CPU
    fast path at once (im2col/col2im, Conv2D's chunked GEMM path, MaxPool2D,
    LRN); ``MINIALEX_IM2COL`` is the older name and is read when
    ``MINIALEX_KERNELS`` is unset. An explicit ``impl`` wins over both.
    On CuPy arrays numba is never called.
    """
    if impl is None:
        impl = "auto"
    if impl not in _IMPLS:
        raise ValueError(f"kernel impl must be one of {_IMPLS}, got {impl!r}")
    if impl == "auto":
        env = "MINIALEX_KERNELS" if os.environ.get("MINIALEX_KERNELS") else "MINIALEX_IM2COL"
        impl = os.environ.get(env, "auto") or "auto"
        if impl not in _IMPLS:
            raise ValueError(f"{env} must be one of {_IMPLS}, got {impl!r}")
    if impl == "auto":
        if importlib.util.find_spec("numba") is None:  # numba is a dependency; a broken install says so
            raise ImportError(
                "minialex needs numba for its CPU kernels; `pip install numba`, "
                "or set MINIALEX_KERNELS=reference to use the slow NumPy path"
            )
        return "numba"
    return impl


def use_numba(xp, impl="auto"):
    """True when a layer should call its numba kernel: NumPy arrays and the numba path active."""
    return xp.__name__ == "numpy" and active_impl(impl) == "numba"


def use_cuda(xp, impl="auto"):
    """True when a layer should call its CuPy kernel (``kernels/_cuda.py``): CuPy arrays,
    and the readable path not requested. ``impl="reference"`` (or
    ``MINIALEX_KERNELS=reference``) keeps the readable xp code on the GPU too."""
    return xp.__name__ != "numpy" and active_impl(impl) != "reference"


def info() -> dict:
    """Versions and the active kernel paths, for bug reports and ``--verbose``.

    Returns a dict with python, numpy, numba, cupy versions, the number of
    CUDA devices, and which CPU kernels the layers use: "numba" (im2col/col2im,
    Conv2D's chunked path, MaxPool2D and LRN kernels in ``minialex.kernels._numba``)
    or "reference" (the readable NumPy code), see ``active_impl``; and the
    thread counts numba and BLAS may use.
    """
    out = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": None,
        "cupy": None,
        "cuda_devices": 0,
        "im2col_cpu": active_impl(),
        "kernels_cpu": active_impl(),
        "MINIALEX_KERNELS": os.environ.get("MINIALEX_KERNELS", ""),
        "MINIALEX_IM2COL": os.environ.get("MINIALEX_IM2COL", ""),
        "cpu_count": os.cpu_count(),
        "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS", ""),
        "OPENBLAS_THREAD_TIMEOUT": os.environ.get("OPENBLAS_THREAD_TIMEOUT", ""),
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", ""),
    }
    try:
        import numba

        out["numba"] = numba.__version__
        out["numba_threads"] = numba.get_num_threads()
    except Exception:
        pass
    cp = _import_cupy()
    if cp is not None:
        out["cupy"] = cp.__version__
        try:
            out["cuda_devices"] = cp.cuda.runtime.getDeviceCount()
        except Exception:
            out["cuda_devices"] = 0
    return out
