"""The fast paths: numba kernels on the CPU (``_numba.py``), CUDA kernels on the GPU (``_cuda.py``).

Each kernel has a readable twin in ``minialex/layers/`` or ``minialex/im2col.py``
and is tested against it. The readable layers never import this package.
"""
