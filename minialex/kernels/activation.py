"""The fast twin of ReLU (Sec. 3.1) on the CPU: the same two lines as multi-threaded numba loops.

NumPy's one-thread passes are memory-bound; ``_numba.relu_forward`` /
``relu_backward`` use every thread. On the GPU the readable ``ReLU`` runs
(CuPy's elementwise kernels are already one pass). Tested against ``ReLU``
in tests/test_numba_kernels.py.
"""
from __future__ import annotations

from ..layers.activation import ReLU
from . import _numba


class NumbaReLU(ReLU):
    """ReLU on NumPy float arrays through ``_numba.relu_forward`` / ``relu_backward``.

    Other dtypes (the kernels are written for floats) run the readable code.
    """

    kernel_path = "numba"

    def forward(self, x, train=True):
        if x.dtype.kind != "f":
            return super().forward(x, train)
        out = _numba.relu_forward(x)
        self.cache = out
        return out

    def backward(self, dout):
        out = self.cache
        if not (dout.dtype == out.dtype and dout.dtype.kind == "f"):
            return super().backward(dout)
        self.cache = None
        return _numba.relu_backward(dout, out)
