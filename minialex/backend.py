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


def gpu_name(cp, device=None):
    """A CUDA device's name, e.g. "NVIDIA H200" (``device``: its id, default the current one);
    "a CUDA GPU" where CuPy cannot say (a stand-in, or a driver that does not answer)."""
    try:
        name = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id if device is None else device)["name"]
    except Exception:
        return "a CUDA GPU"
    return name.decode() if isinstance(name, bytes) else str(name)


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


KERNELS = ("fast", "reference")
KERNELS_ENV = "MINIALEX_KERNELS"


def kernels_choice(kernels=None):
    """The one switch between the readable layers and the fast kernels: "fast" or "reference".

    ``kernels`` is what a caller passed (``AlexNet(cfg, kernels=...)``,
    ``model.to(xp, kernels=...)``, ``minialex.kernels.accelerate``); None
    means the environment variable ``MINIALEX_KERNELS``, and "fast" when it
    is unset or empty. "fast" runs each layer's numba kernels on the CPU and
    CUDA kernels on the GPU (``minialex.kernels``); "reference" runs the
    readable code of ``minialex.layers`` everywhere. The choice is applied
    once, when a model is built or moved, never inside a layer.

    Raises ValueError naming the bad value and the two accepted ones.
    """
    where = "kernels"
    if kernels is None:
        kernels, where = os.environ.get(KERNELS_ENV, "") or "fast", KERNELS_ENV
    if kernels not in KERNELS:
        raise ValueError(f"{where} must be one of {KERNELS}, got {kernels!r}")
    if kernels == "fast" and importlib.util.find_spec("numba") is None:   # a dependency; say so
        raise ImportError("minialex needs numba for its fast CPU kernels; `pip install numba`, "
                          f"or set {KERNELS_ENV}=reference to use the readable NumPy code")
    return kernels


def info(model=None) -> dict:
    """Versions and the kernel paths, for bug reports and the training log.

    Returns a dict with python, numpy, numba, cupy versions, the number of
    CUDA devices, ``kernels``: the switch's value for models built from now
    on ("fast" or "reference", see ``kernels_choice``), the thread counts
    numba and BLAS may use, and, given a ``model`` (anything with ``names``
    and ``layers``), ``layers``: {layer name: the path it runs}, e.g.
    "numba", "cuda", "reference" (each layer's ``kernel_path``).
    """
    out = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": None,
        "cupy": None,
        "cuda_devices": 0,
        "kernels": kernels_choice(),
        "MINIALEX_KERNELS": os.environ.get(KERNELS_ENV, ""),
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
    if model is not None:
        out["layers"] = kernel_paths(model)
    return out


def kernel_paths(model):
    """{layer name: path it runs} for a model with ``names`` and ``layers``:
    "reference" (readable), "numba" or "cuda" (the fast twins of ``minialex.kernels``),
    with detail where a fast layer has it (e.g. conv's direct or GEMM products)."""
    return {n: layer.kernel_path for n, layer in zip(model.names, model.layers)}
