"""im2col / col2im: turning convolution into one matrix product.

A convolution slides a (C, KH, KW) window over the padded input. im2col copies
every window into a column, so the whole layer becomes ``w @ cols``; col2im is
its adjoint and scatters column gradients back onto the image, **adding** where
windows overlap.

Column layout (used by every implementation here)::

    cols: (C * KH * KW, N * OH * OW)      rows ordered (c, kh, kw),
                                          columns ordered (n, oh, ow)

Putting C outermost means grouped convolution (Sec. 3.2) is a plain reshape
to (G, C/G * KH * KW, N * OH * OW), and putting N inside the columns makes the
whole batch one GEMM per group.

This file holds the readable NumPy/CuPy reference only. The fast kernels
(numba on the CPU, CUDA on the GPU) and the dispatcher between them live in
``minialex/kernels/``.
"""
from __future__ import annotations

from .backend import get_array_module


def conv_output_size(size, kernel, stride, padding):
    """Output length along one axis: floor((size + 2*padding - kernel) / stride) + 1."""
    return (size + 2 * padding - kernel) // stride + 1


def _patch_indices(xp, C, KH, KW, OH, OW, stride):
    """Index arrays (c, h, w), each (C*KH*KW, OH*OW), into the padded input.

    Row r = (c, kh, kw) and column q = (oh, ow) of the column matrix reads
    x_pad[c, oh*stride + kh, ow*stride + kw].
    """
    c = xp.repeat(xp.arange(C), KH * KW)[:, None]              # (C*KH*KW, 1)
    kh = xp.tile(xp.repeat(xp.arange(KH), KW), C)[:, None]     # (C*KH*KW, 1)
    kw = xp.tile(xp.arange(KW), C * KH)[:, None]               # (C*KH*KW, 1)
    oh = xp.repeat(xp.arange(OH), OW)[None, :] * stride        # (1, OH*OW)
    ow = xp.tile(xp.arange(OW), OH)[None, :] * stride          # (1, OH*OW)
    return c, kh + oh, kw + ow


def im2col_reference(x, KH, KW, stride=1, padding=0):
    """Readable im2col by fancy indexing.

    Shapes:  x: (N, C, H, W)  ->  cols: (C*KH*KW, N*OH*OW)
    """
    xp = get_array_module(x)
    N, C, H, W = x.shape
    OH = conv_output_size(H, KH, stride, padding)
    OW = conv_output_size(W, KW, stride, padding)
    p = padding
    x_pad = xp.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))        # (N, C, H+2p, W+2p)
    c, h, w = _patch_indices(xp, C, KH, KW, OH, OW, stride)
    cols = x_pad[:, c, h, w]                                   # (N, C*KH*KW, OH*OW)
    cols = cols.transpose(1, 0, 2)                             # (C*KH*KW, N, OH*OW)
    return cols.reshape(C * KH * KW, N * OH * OW)              # (C*KH*KW, N*OH*OW)


def col2im_reference(cols, x_shape, KH, KW, stride=1, padding=0):
    """Readable col2im: the adjoint of im2col, accumulating with ``add.at``.

    ``add.at`` is unbuffered, so a pixel that appears in several windows gets
    the sum of their gradients. ``a[idx] += v`` would silently keep only one.

    Shapes:  cols: (C*KH*KW, N*OH*OW)  ->  dx: (N, C, H, W)
    """
    xp = get_array_module(cols)
    N, C, H, W = x_shape
    OH = conv_output_size(H, KH, stride, padding)
    OW = conv_output_size(W, KW, stride, padding)
    p = padding
    dx_pad = xp.zeros((N, C, H + 2 * p, W + 2 * p), dtype=cols.dtype)
    c, h, w = _patch_indices(xp, C, KH, KW, OH, OW, stride)
    cols_n = cols.reshape(C * KH * KW, N, OH * OW).transpose(1, 0, 2)  # (N, C*KH*KW, OH*OW)
    if xp.__name__ == "numpy":
        xp.add.at(dx_pad, (slice(None), c, h, w), cols_n)
    else:  # CuPy spells the unbuffered scatter-add this way
        import cupyx

        cupyx.scatter_add(dx_pad, (slice(None), c, h, w), cols_n)
    return dx_pad[:, :, p:p + H, p:p + W]                      # (N, C, H, W)
