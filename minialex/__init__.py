"""minialex: AlexNet (Krizhevsky, Sutskever, Hinton, NIPS 2012) from scratch.

NumPy first, numba-accelerated on the CPU, optional CuPy on the GPU.
Read ``docs/index.md`` for a map from paper section to module.
"""
__version__ = "0.1.0"

from .backend import get_array_module, get_backend  # noqa: F401
