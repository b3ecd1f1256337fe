"""im2col/col2im dispatcher: the CUDA kernel on CuPy arrays, numba or the readable code on NumPy arrays.

Shapes as in ``minialex.im2col`` (the readable reference): x (N, C, H, W) <->
cols (C*KH*KW, N*OH*OW).
"""
from __future__ import annotations

from ..backend import active_impl, get_array_module
from ..im2col import col2im_reference, im2col_reference


def im2col(x, KH, KW, stride=1, padding=0, impl="auto"):
    """Dispatcher: CuPy kernel on the GPU, numba or the reference on the CPU.

    Shapes:  x: (N, C, H, W)  ->  cols: (C*KH*KW, N*OH*OW)
    """
    if get_array_module(x).__name__ != "numpy":
        from . import _cuda
        return _cuda.im2col(x, KH, KW, stride, padding)
    if active_impl(impl) == "numba":
        from . import _numba
        return _numba.im2col(x, KH, KW, stride, padding)
    return im2col_reference(x, KH, KW, stride, padding)


def col2im(cols, x_shape, KH, KW, stride=1, padding=0, impl="auto"):
    """Dispatcher for col2im (see ``im2col``).

    Shapes:  cols: (C*KH*KW, N*OH*OW)  ->  dx: (N, C, H, W)
    """
    if get_array_module(cols).__name__ != "numpy":
        from . import _cuda
        return _cuda.col2im(cols, x_shape, KH, KW, stride, padding)
    if active_impl(impl) == "numba":
        from . import _numba
        return _numba.col2im(cols, x_shape, KH, KW, stride, padding)
    return col2im_reference(cols, x_shape, KH, KW, stride, padding)
