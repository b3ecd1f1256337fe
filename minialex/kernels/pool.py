"""The fast twins of MaxPool2D (Sec. 3.4): one loop kernel per pass, numba on the CPU, CUDA on the GPU.

Both return the readable layer's values and arg-max (first maximum in
row-major window order), stored as one small integer per output instead of
a (z*z, N*C*OH*OW) column matrix; backward gathers the routed gradients, so
overlapping windows add without atomics. Tested against ``MaxPool2D`` in
tests/test_numba_kernels.py and tests/test_cuda_kernels_on_cpu.py.
"""
from __future__ import annotations

from ..backend import get_array_module
from ..layers.base import check_float, check_ndim
from ..layers.pool import MaxPool2D
from . import _cuda, _numba


class _FastMaxPool2D(MaxPool2D):
    ops = None                      # the kernel module: _numba or _cuda (same signatures)

    def forward(self, x, train=True):
        check_ndim(x, 4, "MaxPool2D")
        check_float(x, "MaxPool2D")
        z, s = self.kernel_size, self.stride
        if z > x.shape[2] or z > x.shape[3]:
            raise ValueError(f"MaxPool2D: kernel_size={z} is larger than the input {x.shape[2]}x{x.shape[3]}")
        x_shape = x.shape
        x = self.pad_to_cover(x)                                   # (N, C, H', W'); H' = H unless cover
        out, arg = self.ops.maxpool_forward(x, z, s)               # (N, C, OH, OW) each
        self.cache = (x_shape, x.shape, arg)
        return out

    def backward(self, dout):
        x_shape, padded_shape, arg = self.cache
        dx = self.ops.maxpool_backward(dout, arg, padded_shape, self.kernel_size, self.stride)  # (N, C, H', W')
        self.cache = None
        if padded_shape == x_shape:
            return dx
        return get_array_module(dx).ascontiguousarray(dx[:, :, :x_shape[2], :x_shape[3]])   # (N, C, H, W)


class NumbaMaxPool2D(_FastMaxPool2D):
    """MaxPool2D on NumPy arrays through ``_numba.maxpool_forward`` / ``maxpool_backward``."""

    kernel_path = "numba"
    ops = _numba


class CudaMaxPool2D(_FastMaxPool2D):
    """MaxPool2D on CuPy arrays through ``_cuda.maxpool_forward`` / ``maxpool_backward``."""

    kernel_path = "cuda"
    ops = _cuda
