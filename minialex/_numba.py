"""numba CPU kernels, and only them.

Each kernel has a readable twin that it is tested against:
``im2col`` / ``col2im`` mirror ``minialex.im2col.im2col_reference`` /
``col2im_reference``. Loops run in parallel (``prange``) over the axis whose
writes never collide, so no atomics are needed. numba uses at most
``numba.get_num_threads()`` threads (set ``NUMBA_NUM_THREADS`` to change it).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .im2col import conv_output_size


@njit(parallel=True, cache=True)
def _im2col_kernel(x, KH, KW, stride, pad, OH, OW, cols):
    # x: (N, C, H, W); cols: (C, KH, KW, N, OH, OW), written fully.
    N, C, H, W = x.shape
    for r in prange(C * KH * KW):
        c = r // (KH * KW)
        kh = (r // KW) % KH
        kw = r % KW
        for n in range(N):
            for oh in range(OH):
                h = oh * stride + kh - pad
                if h < 0 or h >= H:
                    for ow in range(OW):
                        cols[c, kh, kw, n, oh, ow] = 0
                    continue
                for ow in range(OW):
                    w = ow * stride + kw - pad
                    if w < 0 or w >= W:
                        cols[c, kh, kw, n, oh, ow] = 0
                    else:
                        cols[c, kh, kw, n, oh, ow] = x[n, c, h, w]


@njit(parallel=True, cache=True)
def _col2im_kernel(cols, KH, KW, stride, pad, dx):
    # cols: (C, KH, KW, N, OH, OW); dx: (N, C, H, W), zero on entry.
    # Each (n, c) plane is owned by one thread, so the += never races.
    C, _, _, N, OH, OW = cols.shape
    H, W = dx.shape[2], dx.shape[3]
    for nc in prange(N * C):
        n = nc // C
        c = nc % C
        for kh in range(KH):
            for kw in range(KW):
                for oh in range(OH):
                    h = oh * stride + kh - pad
                    if h < 0 or h >= H:
                        continue
                    for ow in range(OW):
                        w = ow * stride + kw - pad
                        if w >= 0 and w < W:
                            dx[n, c, h, w] += cols[c, kh, kw, n, oh, ow]


def im2col(x, KH, KW, stride=1, padding=0, out=None):
    """numba im2col. Shapes: x (N, C, H, W) -> cols (C*KH*KW, N*OH*OW).

    ``out``, if given, is a C-contiguous buffer of the result's size and dtype
    that is reused instead of allocating.
    """
    N, C, H, W = x.shape
    OH = conv_output_size(H, KH, stride, padding)
    OW = conv_output_size(W, KW, stride, padding)
    x = np.ascontiguousarray(x)
    if out is None:
        out = np.empty((C * KH * KW, N * OH * OW), dtype=x.dtype)
    cols6 = out.reshape(C, KH, KW, N, OH, OW)                  # view, (C, KH, KW, N, OH, OW)
    _im2col_kernel(x, KH, KW, stride, padding, OH, OW, cols6)
    return out


def col2im(cols, x_shape, KH, KW, stride=1, padding=0):
    """numba col2im. Shapes: cols (C*KH*KW, N*OH*OW) -> dx (N, C, H, W)."""
    N, C, H, W = x_shape
    OH = conv_output_size(H, KH, stride, padding)
    OW = conv_output_size(W, KW, stride, padding)
    cols6 = np.ascontiguousarray(cols).reshape(C, KH, KW, N, OH, OW)  # (C, KH, KW, N, OH, OW)
    dx = np.zeros((N, C, H, W), dtype=cols.dtype)
    _col2im_kernel(cols6, KH, KW, stride, padding, dx)
    return dx
