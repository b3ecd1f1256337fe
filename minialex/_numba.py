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
    # cols: (C, KH, KW, N, OH, OW); dx: (N, C, H, W), written fully.
    # Each (n, c) plane is owned by one thread, so the += never races.
    C, _, _, N, OH, OW = cols.shape
    H, W = dx.shape[2], dx.shape[3]
    for nc in prange(N * C):
        n = nc // C
        c = nc % C
        for h in range(H):
            for w in range(W):
                dx[n, c, h, w] = 0
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


def col2im(cols, x_shape, KH, KW, stride=1, padding=0, out=None):
    """numba col2im. Shapes: cols (C*KH*KW, N*OH*OW) -> dx (N, C, H, W).

    ``out``, if given, is a C-contiguous (N, C, H, W) array (or view) that
    receives dx instead of a new allocation; it need not be zeroed.
    """
    N, C, H, W = x_shape
    OH = conv_output_size(H, KH, stride, padding)
    OW = conv_output_size(W, KW, stride, padding)
    cols6 = np.ascontiguousarray(cols).reshape(C, KH, KW, N, OH, OW)  # (C, KH, KW, N, OH, OW)
    dx = np.empty((N, C, H, W), dtype=cols.dtype) if out is None else out
    _col2im_kernel(cols6, KH, KW, stride, padding, dx)
    return dx


# ---------------------------------------------------------------------------
# Convolution helpers: batched im2col without padding copies, and the
# transposes between the GEMM layout (F, N*OH*OW) and NCHW, fused with the
# bias add (forward) and the bias gradient (backward).
# Twins: Conv2D.forward / backward's reshape-transpose lines in layers/conv.py.
# ---------------------------------------------------------------------------

@njit(parallel=True, cache=True)
def _gemm_to_nchw_kernel(res, b, out):
    # res: (F, N, OHW) GEMM result; b: (F,); out: (N, F, OHW) = res^T + b.
    F, N, OHW = res.shape
    for nf in prange(N * F):
        n = nf // F
        f = nf % F
        bf = b[f]
        for q in range(OHW):
            out[n, f, q] = res[f, n, q] + bf


def gemm_to_nchw(res, b, out):
    """out[n, f] = res[f, n] + b[f].

    Shapes:  res: (F, N, OH*OW),  b: (F,),  out: (N, F, OH*OW) written fully.
    """
    _gemm_to_nchw_kernel(res, b, out)
    return out


@njit(parallel=True, cache=True)
def _nchw_to_gemm_kernel(dout, res, sums):
    # dout: (N, F, OHW) -> res: (F, N, OHW); sums[n, f] = sum_q dout[n, f, q].
    N, F, OHW = dout.shape
    for nf in prange(N * F):
        n = nf // F
        f = nf % F
        acc = 0.0                                      # float64 accumulator; stored in dout.dtype
        for q in range(OHW):
            v = dout[n, f, q]
            res[f, n, q] = v
            acc += v
        sums[n, f] = acc


def nchw_to_gemm(dout, out):
    """out[f, n] = dout[n, f], and the bias gradient of this chunk.

    Shapes:  dout: (N, F, OH*OW) -> out: (F, N, OH*OW), db: (F,)
    """
    N, F, _ = dout.shape
    sums = np.empty((N, F), dtype=dout.dtype)
    _nchw_to_gemm_kernel(dout, out, sums)
    return out, sums.sum(axis=0)


# ---------------------------------------------------------------------------
# Overlapping max pooling (Sec. 3.4).
# Twin: MaxPool2D's reference path in layers/pool.py (im2col + argmax).
# The arg-max is stored per output as the row-major offset kh*z + kw inside
# the window, the same number np.argmax returns over an im2col column.
# ---------------------------------------------------------------------------

@njit(parallel=True, cache=True)
def _maxpool_forward_kernel(x, z, s, out, arg):
    # x: (N, C, H, W); out, arg: (N, C, OH, OW). One (n, c) plane per thread.
    # Pass 1 takes the max of each output row with branch-free inner loops
    # over ow; pass 2 finds where it sits: the first element equal to it in
    # row-major window order, or the first NaN, exactly as np.argmax does.
    N, C, H, W = x.shape
    OH, OW = out.shape[2], out.shape[3]
    for nc in prange(N * C):
        n = nc // C
        c = nc % C
        for oh in range(OH):
            h0 = oh * s
            for ow in range(OW):
                out[n, c, oh, ow] = x[n, c, h0, ow * s]
            for kh in range(z):
                for kw in range(z):
                    for ow in range(OW):
                        out[n, c, oh, ow] = max(out[n, c, oh, ow], x[n, c, h0 + kh, ow * s + kw])
            for ow in range(OW):
                m = out[n, c, oh, ow]
                k = -1
                for kh in range(z):
                    for kw in range(z):
                        v = x[n, c, h0 + kh, ow * s + kw]
                        if v != v:                     # NaN: it is the arg-max, stop
                            m = v
                            k = kh * z + kw
                            break
                        if v == m and k < 0:           # first maximum; keep scanning for NaN
                            k = kh * z + kw
                    if m != m:
                        break
                out[n, c, oh, ow] = m
                arg[n, c, oh, ow] = k


@njit(parallel=True, cache=True)
def _maxpool_backward_kernel(dout, arg, z, s, dx):
    # dout, arg: (N, C, OH, OW); dx: (N, C, H, W), written fully.
    # Windows overlap (z > s), so one pixel may receive from several outputs:
    # the += accumulates, and one thread owns each plane, so nothing races.
    N, C, OH, OW = dout.shape
    H, W = dx.shape[2], dx.shape[3]
    for nc in prange(N * C):
        n = nc // C
        c = nc % C
        for h in range(H):
            for w in range(W):
                dx[n, c, h, w] = 0
        for oh in range(OH):
            for ow in range(OW):
                k = arg[n, c, oh, ow]
                dx[n, c, oh * s + k // z, ow * s + k % z] += dout[n, c, oh, ow]


def maxpool_forward(x, z, s):
    """Max pool with window z and stride s (no padding).

    Shapes:  x: (N, C, H, W) -> out: (N, C, OH, OW), arg: (N, C, OH, OW) int8/int32,
             arg = kh*z + kw of the first maximum in row-major window order.
    """
    N, C, H, W = x.shape
    OH = conv_output_size(H, z, s, 0)
    OW = conv_output_size(W, z, s, 0)
    x = np.ascontiguousarray(x)
    out = np.empty((N, C, OH, OW), dtype=x.dtype)
    arg = np.empty((N, C, OH, OW), dtype=np.int8 if z * z <= 127 else np.int32)
    _maxpool_forward_kernel(x, z, s, out, arg)
    return out, arg


def maxpool_backward(dout, arg, z, s, x_shape):
    """Route each output gradient to its arg-max, adding where windows overlap.

    Shapes:  dout, arg: (N, C, OH, OW) -> dx: x_shape = (N, C, H, W)
    """
    dx = np.empty(x_shape, dtype=dout.dtype)
    _maxpool_backward_kernel(np.ascontiguousarray(dout), arg, z, s, dx)
    return dx


# ---------------------------------------------------------------------------
# Local response normalisation (Sec. 3.3).
# Twin: LocalResponseNorm's reference path in layers/lrn.py.
#   scale_i = k + coeff * sum_{j = max(0, i-half)}^{min(C-1, i+half)} a_j^2
#   b_i = a_i * scale_i^-beta
#   da_j = dout_j scale_j^-beta - 2 coeff beta a_j sum_{i in window(j)} dout_i a_i scale_i^(-beta-1)
# One (n, h) image row per thread; the channel loop runs over a (C, W) slab
# so the inner loop over w is contiguous. Only x is kept for backward: the
# scale is recomputed there (five multiply-adds per element), which saves
# two activation-sized arrays per LRN layer.
# ---------------------------------------------------------------------------

@njit(inline="always")
def _neg_pow(s, beta, beta_is_3_4):
    # s ** -beta; for the paper's beta = 3/4, 1 / (sqrt(s) * sqrt(sqrt(s))) is faster than pow.
    if beta_is_3_4:
        r = np.sqrt(s)
        return 1 / (r * np.sqrt(r))
    return s ** -beta


@njit(inline="always")
def _row_scale(x, n, h, half, k, coeff, sq, sc):
    # sc[c, w] = k + coeff * sum over the clipped window of x[n, j, h, w]^2;
    # sq is scratch. Inner loops run over w, which is contiguous.
    C, W = sq.shape
    for c in range(C):
        for w in range(W):
            sq[c, w] = x[n, c, h, w] * x[n, c, h, w]
    for c in range(C):
        lo = max(0, c - half)
        hi = min(C - 1, c + half)
        for w in range(W):
            sc[c, w] = sq[lo, w]
        for j in range(lo + 1, hi + 1):
            for w in range(W):
                sc[c, w] += sq[j, w]
        for w in range(W):
            sc[c, w] = k + coeff * sc[c, w]


@njit(parallel=True, cache=True)
def _lrn_forward_kernel(x, half, k, coeff, beta, beta_is_3_4, out):
    # x, out: (N, C, H, W)
    N, C, H, W = x.shape
    for nh in prange(N * H):
        n = nh // H
        h = nh % H
        sq = np.empty((C, W), dtype=x.dtype)
        sc = np.empty((C, W), dtype=x.dtype)
        _row_scale(x, n, h, half, k, coeff, sq, sc)
        for c in range(C):
            for w in range(W):
                out[n, c, h, w] = x[n, c, h, w] * _neg_pow(sc[c, w], beta, beta_is_3_4)


@njit(parallel=True, cache=True)
def _lrn_backward_kernel(x, dout, half, k, coeff, beta, beta_is_3_4, dx):
    # x, dout, dx: (N, C, H, W)
    N, C, H, W = x.shape
    g = 2 * coeff * beta
    for nh in prange(N * H):
        n = nh // H
        h = nh % H
        t = np.empty((C, W), dtype=x.dtype)            # scratch, then dout * a * scale^(-beta-1)
        sc = np.empty((C, W), dtype=x.dtype)           # scale, then scale^-beta
        _row_scale(x, n, h, half, k, coeff, t, sc)
        for c in range(C):
            for w in range(W):
                pw = _neg_pow(sc[c, w], beta, beta_is_3_4)
                t[c, w] = dout[n, c, h, w] * x[n, c, h, w] * pw / sc[c, w]
                sc[c, w] = pw
        for c in range(C):
            lo = max(0, c - half)
            hi = min(C - 1, c + half)
            for w in range(W):
                dx[n, c, h, w] = t[lo, w]
            for j in range(lo + 1, hi + 1):
                for w in range(W):
                    dx[n, c, h, w] += t[j, w]
            for w in range(W):
                dx[n, c, h, w] = dout[n, c, h, w] * sc[c, w] - g * x[n, c, h, w] * dx[n, c, h, w]


def _lrn_consts(x, k, coeff, beta):
    # Constants in x's dtype, so float32 stays float32 inside the kernel.
    t = x.dtype.type
    return t(k), t(coeff), t(beta), bool(beta == 0.75)


def lrn_forward(x, half, k, coeff, beta):
    """b = x * (k + coeff * window_sum(x^2))^-beta. Shapes: x, out (N, C, H, W)."""
    x = np.ascontiguousarray(x)
    out = np.empty_like(x)
    _lrn_forward_kernel(x, half, *_lrn_consts(x, k, coeff, beta), out)
    return out


def lrn_backward(x, dout, half, k, coeff, beta):
    """dL/dx of ``lrn_forward``, recomputing the scale from x. Shapes: all (N, C, H, W)."""
    x = np.ascontiguousarray(x)
    dout = np.ascontiguousarray(dout)
    dx = np.empty_like(x)
    _lrn_backward_kernel(x, dout, half, *_lrn_consts(x, k, coeff, beta), dx)
    return dx
