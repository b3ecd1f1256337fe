"""minialex: AlexNet (Krizhevsky, Sutskever, Hinton, NIPS 2012) from scratch.

NumPy first, numba-accelerated on the CPU, optional CuPy on the GPU.
Read ``docs/index.md`` for a map from paper section to module.
"""
import os as _os

# Two thread pools share the CPU: numba's (OpenMP layer) for our kernels and
# OpenBLAS's for NumPy's matrix products. By default both busy-wait ("spin")
# after each parallel region, so on a 2-core machine each pool burns the cores
# the other one needs next: measured here, a cifar-config training step took
# 1.6 CPU-s that way against 0.8 with both pools sleeping when idle. Ask both to
# sleep, unless the user has chosen. OPENBLAS_THREAD_TIMEOUT only takes effect
# if NumPy is not imported yet; OMP_WAIT_POLICY until numba's first parallel run.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
_os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

__version__ = "0.1.0"

from .backend import get_array_module, get_backend  # noqa: E402,F401
