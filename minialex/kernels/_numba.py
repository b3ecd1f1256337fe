"""numba CPU kernels, and only them.

Each kernel has a readable twin that it is tested against
(tests/test_numba_kernels.py, tests/test_im2col.py):

- ``im2col`` / ``col2im``: ``minialex.im2col.im2col_reference`` / ``col2im_reference``
- ``gemm_to_nchw`` / ``nchw_to_gemm``: the transposes in ``Conv2D``'s readable path
- ``conv2d_direct`` / ``conv2d_rows`` / ``conv2d_direct_dx`` / ``conv2d_direct_grads``:
  ``Conv2D``'s readable forward and backward (im2col + GEMM, col2im)
- ``maxpool_forward`` / ``maxpool_backward``: ``MaxPool2D``'s im2col + argmax path
- ``lrn_forward`` / ``lrn_backward``: ``LocalResponseNorm``'s NumPy path
- ``relu_forward`` / ``relu_backward``: ``ReLU``'s NumPy path

``im2col``, ``col2im``, ``maxpool_forward``, ``maxpool_backward``,
``lrn_forward`` and ``lrn_backward`` take the same arguments as their CUDA
twins in ``_cuda.py`` (tests/test_numba_kernels.py checks the signatures).
The fast layers that call them are in this package (``conv.py``, ...).

Loops run in parallel (``prange``) over the axis whose writes never collide
(an (n, c) plane, an (n, h) image row), so no atomics are needed and results
do not depend on the thread count. numba uses at most
``numba.get_num_threads()`` threads (``NUMBA_NUM_THREADS``, default the core
count); no kernel changes that number. Scalars are cast to the array dtype
before a call, so float32 stays float32 inside the loops.
"""
from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from ..im2col import conv_output_size


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
# Direct convolution: im2col + GEMM fused, one image (and group) at a time.
# Twin: Conv2D.forward (im2col, then w @ cols per group) in layers/conv.py.
#
# Why: with few kernels per group (the cifar net has 24-32) a GEMM uses each
# column of ``cols`` only Fg times, so writing the whole (C*K*K, N*OH*OW)
# matrix to memory and packing it again inside the BLAS costs as much as the
# arithmetic. Here each task builds the patches of one image tile in a small
# per-thread buffer that stays in cache, and multiplies them at once.
#
# Layout: the input is first copied to a zero-padded channels-last array
# xg (N, G, H+2p, (W+2p)*Cg), so for stride 1 a patch row is K runs of K*Cg
# contiguous numbers; patch columns are therefore ordered (kh, kw, c), and
# the weights are reordered to match (``_direct_weights``). The product is a
# 4 x 4 block of dot products over the patch length: LLVM turns each of the
# 16 running sums into a vector register (``fastmath`` reassociation), which
# is what makes it fast. Rows are padded with zeros to a multiple of 16 and
# the kernel count to a multiple of 4, so no tail loop is needed.
#
# Each output element is one task's dot product in a fixed order: results do
# not depend on the thread count. Sums run in a different order than the
# BLAS, so results differ from the reference by a few ulps.
# ---------------------------------------------------------------------------

_REASSOC = {"reassoc", "contract"}          # enough to vectorise the dot products; NaN/inf kept
DW_CHUNK_BYTES = 2 * 2**20                  # columns + dout of one dw chunk: a few images
DW_SLOTS = 8                                # partial dw sums, independent of the thread count
ROWS_BELOW = 32                             # patch runs shorter than this: conv2d_rows (conv2d_direct)
ROWS_FEW_KERNELS = 16                       # fewer kernels per group than this: conv2d_rows too


@njit(parallel=True, cache=True)
def _pad_channels_last_kernel(x, G, p, xg):
    # x: (N, C, H, W) -> xg: (N, G, H+2p, (W+2p)*Cg), border zero; written fully.
    # One output row (n, g, h) per iteration: contiguous writes, and its
    # Cg x W inputs sit in L1.
    N, C, H, W = x.shape
    Cg = C // G
    Hp, WC = xg.shape[2], xg.shape[3]
    for ngh in prange(N * G * Hp):
        n = ngh // (G * Hp)
        g = (ngh // Hp) % G
        h = ngh % Hp
        row = xg[n, g, h]
        hh = h - p
        if hh < 0 or hh >= H:
            row[:] = 0
            continue
        row[:p * Cg] = 0
        row[(W + p) * Cg:] = 0
        src = x[n, g * Cg:(g + 1) * Cg, hh]              # (Cg, W)
        for w in range(W):
            j = (w + p) * Cg
            for c in range(Cg):
                row[j + c] = src[c, w]


@njit(inline="always", fastmath=_REASSOC)
def _dot4x4(a0, a1, a2, a3, b0, b1, b2, b3, n, zero):
    """The 16 dot products a_i[:n] . b_j[:n] as a 4 x 4 tuple: ((a0.b0, a0.b1, ...), ...).

    The micro-kernel of the direct convolutions: per step 8 loads and 16
    multiply-adds, all in registers (LLVM vectorises the loop: fastmath
    reassociation). Inlined into each caller.
    """
    c00 = c01 = c02 = c03 = c10 = c11 = c12 = c13 = zero
    c20 = c21 = c22 = c23 = c30 = c31 = c32 = c33 = zero
    for r in range(n):
        v0 = a0[r]
        v1 = a1[r]
        v2 = a2[r]
        v3 = a3[r]
        u0 = b0[r]
        u1 = b1[r]
        u2 = b2[r]
        u3 = b3[r]
        c00 += v0 * u0
        c01 += v0 * u1
        c02 += v0 * u2
        c03 += v0 * u3
        c10 += v1 * u0
        c11 += v1 * u1
        c12 += v1 * u2
        c13 += v1 * u3
        c20 += v2 * u0
        c21 += v2 * u1
        c22 += v2 * u2
        c23 += v2 * u3
        c30 += v3 * u0
        c31 += v3 * u1
        c32 += v3 * u2
        c33 += v3 * u3
    return ((c00, c01, c02, c03), (c10, c11, c12, c13),
            (c20, c21, c22, c23), (c30, c31, c32, c33))


@njit(parallel=True, fastmath=_REASSOC, cache=True)
def _conv_direct_kernel(xg, wg, b, Cg, K, s, OW, tile, nthreads, zero, out):
    # xg: (N, G, Hp, Wp*Cg); wg: (G, Fgp, Rp), rows (kh, kw, c), zero-padded;
    # b: (F,); out: (N, F, OH*OW), written fully. A task is one (n, g, pixel tile);
    # tasks are dealt round-robin to nthreads workers, each with its own patches.
    N, G = xg.shape[0], xg.shape[1]
    Fgp, Rp = wg.shape[1], wg.shape[2]
    F, P = out.shape[1], out.shape[2]
    Fg = F // G
    KC = K * Cg
    n_tiles = (P + tile - 1) // tile
    n_tasks = N * G * n_tiles
    for t in prange(nthreads):
        pat = np.zeros(((tile + 3) // 4 * 4, Rp), dtype=xg.dtype)   # (pixels, (kh, kw, c) + zero pad)
        for task in range(t, n_tasks, nthreads):
            n = task // (G * n_tiles)
            g = (task // n_tiles) % G
            q_lo = (task % n_tiles) * tile
            q_hi = min(P, q_lo + tile)
            for q in range(q_lo, q_hi):                # the patches of this tile
                oh = q // OW
                ow = q % OW
                for kh in range(K):
                    if s == 1:                         # K*Cg contiguous numbers
                        pat[q - q_lo, kh * KC:(kh + 1) * KC] = xg[n, g, oh + kh, ow * Cg:ow * Cg + KC]
                    else:                              # K runs of Cg
                        for kw in range(K):
                            j = (ow * s + kw) * Cg
                            pat[q - q_lo, kh * KC + kw * Cg:kh * KC + (kw + 1) * Cg] = \
                                xg[n, g, oh * s + kh, j:j + Cg]
            for q in range(q_hi - q_lo, (q_hi - q_lo + 3) // 4 * 4):
                pat[q, :] = 0                          # stale rows of the last 4-block
            for q0 in range(0, q_hi - q_lo, 4):
                x0 = pat[q0]
                x1 = pat[q0 + 1]
                x2 = pat[q0 + 2]
                x3 = pat[q0 + 3]
                for f0 in range(0, Fgp, 4):
                    w0 = wg[g, f0]
                    w1 = wg[g, f0 + 1]
                    w2 = wg[g, f0 + 2]
                    w3 = wg[g, f0 + 3]
                    block = _dot4x4(x0, x1, x2, x3, w0, w1, w2, w3, Rp, zero)   # pixel i . kernel j
                    for i in range(4):
                        q = q_lo + q0 + i
                        if q < q_hi:
                            row = block[i]
                            for j in range(4):
                                f = f0 + j
                                if f < Fg:
                                    out[n, g * Fg + f, q] = row[j] + b[g * Fg + f]


@njit(parallel=True, fastmath=_REASSOC, cache=True)
def _conv_rows_kernel(xflat, w6, b, C, Hp, Wp, K, OH, OW, nthreads, zero, out):
    # Stride 1. xflat: (N*C*Hp*Wp + K,) the zero-padded input, flat, zero tail;
    # w6: (G, Fgp, Rp6) rows (c, kh, kw), zero-padded to multiples of 4 and 6;
    # b: (F,); out: (N, F, OH, OW), written fully. Task = (n, g).
    # Output rows are widened to Wp, so weight r = (c, kh, kw) multiplies one
    # contiguous run of the input, starting at kh*Wp + kw (see _conv_dw_kernel):
    # acc[f] += w[f, r] * x[shifted] over all pixels at once, a long vectorised
    # loop, six weights and four kernels per pass over acc. For short patch
    # rows (few input channels: the first layer), where the 4 x 4 dot-product
    # blocks of _conv_direct_kernel are too short to pay.
    N, F = out.shape[0], out.shape[1]
    G, Fgp, Rp6 = w6.shape
    Cg, Fg = C // G, F // G
    R = Cg * K * K
    Q = OH * Wp                                           # widened output pixels
    plane = Hp * Wp
    for t in prange(nthreads):
        acc = np.empty((4, Q), dtype=xflat.dtype)
        for task in range(t, N * G, nthreads):
            n = task // G
            g = task % G
            base = (n * C + g * Cg) * plane
            for f0 in range(0, Fgp, 4):
                a0 = acc[0]
                a1 = acc[1]
                a2 = acc[2]
                a3 = acc[3]
                for j in range(Q):
                    a0[j] = zero
                    a1[j] = zero
                    a2[j] = zero
                    a3[j] = zero
                for r0 in range(0, Rp6, 6):
                    r = min(r0, R - 1)                        # padding weights are 0: any row will do
                    o0 = base + (r // (K * K)) * plane + ((r // K) % K) * Wp + r % K
                    r = min(r0 + 1, R - 1)
                    o1 = base + (r // (K * K)) * plane + ((r // K) % K) * Wp + r % K
                    r = min(r0 + 2, R - 1)
                    o2 = base + (r // (K * K)) * plane + ((r // K) % K) * Wp + r % K
                    r = min(r0 + 3, R - 1)
                    o3 = base + (r // (K * K)) * plane + ((r // K) % K) * Wp + r % K
                    r = min(r0 + 4, R - 1)
                    o4 = base + (r // (K * K)) * plane + ((r // K) % K) * Wp + r % K
                    r = min(r0 + 5, R - 1)
                    o5 = base + (r // (K * K)) * plane + ((r // K) % K) * Wp + r % K
                    x0 = xflat[o0:o0 + Q]
                    x1 = xflat[o1:o1 + Q]
                    x2 = xflat[o2:o2 + Q]
                    x3 = xflat[o3:o3 + Q]
                    x4 = xflat[o4:o4 + Q]
                    x5 = xflat[o5:o5 + Q]
                    wa = w6[g, f0, r0:r0 + 6]
                    wb = w6[g, f0 + 1, r0:r0 + 6]
                    wc = w6[g, f0 + 2, r0:r0 + 6]
                    wd = w6[g, f0 + 3, r0:r0 + 6]
                    p0, p1, p2, p3, p4, p5 = wa[0], wa[1], wa[2], wa[3], wa[4], wa[5]
                    q0, q1, q2, q3, q4, q5 = wb[0], wb[1], wb[2], wb[3], wb[4], wb[5]
                    s0, s1, s2, s3, s4, s5 = wc[0], wc[1], wc[2], wc[3], wc[4], wc[5]
                    u0, u1, u2, u3, u4, u5 = wd[0], wd[1], wd[2], wd[3], wd[4], wd[5]
                    for j in range(Q):
                        v0 = x0[j]
                        v1 = x1[j]
                        v2 = x2[j]
                        v3 = x3[j]
                        v4 = x4[j]
                        v5 = x5[j]
                        a0[j] += p0 * v0 + p1 * v1 + p2 * v2 + p3 * v3 + p4 * v4 + p5 * v5
                        a1[j] += q0 * v0 + q1 * v1 + q2 * v2 + q3 * v3 + q4 * v4 + q5 * v5
                        a2[j] += s0 * v0 + s1 * v1 + s2 * v2 + s3 * v3 + s4 * v4 + s5 * v5
                        a3[j] += u0 * v0 + u1 * v1 + u2 * v2 + u3 * v3 + u4 * v4 + u5 * v5
                for i in range(4):
                    f = f0 + i
                    if f < Fg:
                        ai = acc[i]
                        bf = b[g * Fg + f]
                        for oh in range(OH):
                            orow = out[n, g * Fg + f, oh]
                            arow = ai[oh * Wp:oh * Wp + OW]
                            for ow in range(OW):
                                orow[ow] = arow[ow] + bf


def _padded_flat(x, padding, tail):
    """x (N, C, H, W) zero-padded and flattened, with ``tail`` zeros after it:
    (N*C*(H+2p)*(W+2p) + tail,)."""
    N, C, H, W = x.shape
    size = N * C * (H + 2 * padding) * (W + 2 * padding)
    xflat = np.empty(size + tail, dtype=x.dtype)
    xflat[size:] = 0
    _pad_kernel(np.ascontiguousarray(x), padding,
                xflat[:size].reshape(N, C, H + 2 * padding, W + 2 * padding))   # (N, C, Hp, Wp) view
    return xflat


def conv2d_rows(x, w, b, padding, groups):
    """Stride-1 convolution computed over whole widened output rows (see
    ``_conv_rows_kernel``); for few input channels per group.

    Shapes:  x: (N, C, H, W), w: (F, C/G, K, K), b: (F,) -> out: (N, F, OH, OW)
    """
    N, C, H, W = x.shape
    F, Cg, K, _ = w.shape
    G = groups
    Fg, R = F // G, Cg * K * K
    OH = conv_output_size(H, K, 1, padding)
    OW = conv_output_size(W, K, 1, padding)
    w6 = np.zeros((G, (Fg + 3) // 4 * 4, (R + 5) // 6 * 6), dtype=x.dtype)
    w6[:, :Fg, :R] = w.reshape(G, Fg, R)                            # (G, Fg, R): rows (c, kh, kw)
    xflat = _padded_flat(x, padding, K)
    out = np.empty((N, F, OH, OW), dtype=x.dtype)
    _conv_rows_kernel(xflat, w6, np.ascontiguousarray(b, dtype=x.dtype), C, H + 2 * padding,
                      W + 2 * padding, K, OH, OW, numba.get_num_threads(), x.dtype.type(0), out)
    return out


def _direct_weights(w_gfr, dtype):
    """Zero-pad (G, Fg, R) weights to (G, Fg rounded up to 4, R rounded up to 16)."""
    G, Fg, R = w_gfr.shape
    wg = np.zeros((G, (Fg + 3) // 4 * 4, (R + 15) // 16 * 16), dtype=dtype)
    wg[:, :Fg, :R] = w_gfr
    return wg


def _direct(x, wg, b, Cg, K, stride, padding, G, out):
    """Run the direct kernel: x (N, G*Cg, H, W) -> out (N, F, OH, OW)."""
    N, C, H, W = x.shape
    OW = out.shape[3]
    xg = np.empty((N, G, H + 2 * padding, (W + 2 * padding) * Cg), dtype=x.dtype)
    _pad_channels_last_kernel(np.ascontiguousarray(x), G, padding, xg)
    Rp = wg.shape[2]
    tile = int(max(4, min(out.shape[2] * OW, (256 * 1024 // (Rp * x.dtype.itemsize)) // 4 * 4)))
    F = out.shape[1]
    _conv_direct_kernel(xg, wg, b, Cg, K, stride, OW, tile, numba.get_num_threads(), x.dtype.type(0),
                        out.reshape(N, F, -1))                  # (N, F, OH*OW) view
    return out


def conv2d_direct(x, w, b, stride, padding, groups):
    """Convolution without a batch-sized column matrix: out = conv(x, w) + b.

    Stride 1 with patch runs (K * C/G numbers) shorter than ``ROWS_BELOW``,
    or with fewer than ``ROWS_FEW_KERNELS`` kernels per group to share each
    patch (dx of the first layer: 3 "kernels"), goes to ``conv2d_rows``;
    everything else builds patches in cache (``_conv_direct_kernel``).

    Shapes:  x: (N, C, H, W), w: (F, C/G, K, K), b: (F,) -> out: (N, F, OH, OW)
    """
    N, C, H, W = x.shape
    F, Cg, K, _ = w.shape
    G = groups
    if stride == 1 and (K * Cg < ROWS_BELOW or F // G < ROWS_FEW_KERNELS):
        return conv2d_rows(x, w, b, padding, groups)
    OH = conv_output_size(H, K, stride, padding)
    OW = conv_output_size(W, K, stride, padding)
    w_r = w.reshape(G, F // G, Cg, K, K).transpose(0, 1, 3, 4, 2)   # (G, Fg, K, K, Cg): rows (kh, kw, c)
    wg = _direct_weights(w_r.reshape(G, F // G, K * K * Cg), x.dtype)  # (G, Fgp, Rp)
    out = np.empty((N, F, OH, OW), dtype=x.dtype)
    return _direct(x, wg, np.ascontiguousarray(b, dtype=x.dtype), Cg, K, stride, padding, G, out)


def conv2d_direct_dx(dout, w, padding, groups, x_shape):
    """dL/dx of a stride-1 convolution, itself a stride-1 convolution (no col2im).

    dx[n, c] = sum_f conv(dout[n, f], w[f, c] rotated by 180 degrees), padded
    by K-1-p, within each group: ``conv2d_direct`` with the kernels' roles of
    input and output swapped.

    Shapes:  dout: (N, F, OH, OW), w: (F, C/G, K, K) -> dx: x_shape = (N, C, H, W)
    """
    F, Cg, K, _ = w.shape
    G = groups
    Fg = F // G
    w_t = w.reshape(G, Fg, Cg, K, K)[:, :, :, ::-1, ::-1]          # (G, Fg, Cg, K, K), rotated
    w_t = w_t.transpose(0, 2, 1, 3, 4).reshape(G * Cg, Fg, K, K)    # (C, F/G, K, K): c out, f in
    dx = conv2d_direct(dout, np.ascontiguousarray(w_t), np.zeros(G * Cg, dtype=dout.dtype), 1,
                       K - 1 - padding, G)
    assert dx.shape == tuple(x_shape)
    return dx


@njit(parallel=True, cache=True)
def _pad_kernel(x, p, xp_):
    # x: (N, C, H, W) -> xp_: (N, C, H+2p, W+2p), border zero; written fully.
    N, C, H, W = x.shape
    Hp, Wp = xp_.shape[2], xp_.shape[3]
    for nc in prange(N * C):
        n = nc // C
        c = nc % C
        for h in range(Hp):
            hh = h - p
            for w in range(Wp):
                ww = w - p
                if hh < 0 or hh >= H or ww < 0 or ww >= W:
                    xp_[n, c, h, w] = 0
                else:
                    xp_[n, c, h, w] = x[n, c, hh, ww]


@njit(parallel=True, fastmath=_REASSOC, cache=True)
def _conv_dw_kernel(xflat, dout, C, Hp, Wp, G, K, m, Lp, nthreads, zero, part):
    # Stride 1. xflat: (N*C*Hp*Wp + K,) the zero-padded input, flat, with a zero
    # tail; dout: (N, F, OH, OW); part: (n_slots, G, Fgp, Rp4), zeroed, rows
    # (c, kh, kw) as in w. The batch is cut into chunks of m images; slot s
    # sums the dw of chunks s, s + n_slots, ... in that order. Task = (slot, g).
    # Output rows are widened to Wp, the padded width: then weight r = (c, kh,
    # kw) meets one image's input at the flat offsets kh*Wp + kw + q, q = oh*Wp
    # + ow, a single contiguous run, so each row of the chunk's columns is m
    # plain copies. The widened positions ow >= OW carry zeros in d.
    N = dout.shape[0]
    F, OH, OW = dout.shape[1], dout.shape[2], dout.shape[3]
    Cg, Fg = C // G, F // G
    n_slots, _, Fgp, Rp4 = part.shape
    n_chunks = (N + m - 1) // m
    R = Cg * K * K
    L = OH * Wp                                           # widened output pixels of one image
    plane = Hp * Wp
    n_tasks = n_slots * G
    for t in prange(nthreads):
        cols = np.zeros((Rp4, Lp), dtype=dout.dtype)      # ((c, kh, kw), (image, oh, widened ow))
        d = np.zeros((Fgp, Lp), dtype=dout.dtype)         # dout of the chunk, widened rows
        for task in range(t, n_tasks, nthreads):
            slot = task // G
            g = task % G
            for ch in range(slot, n_chunks, n_slots):
                n0 = ch * m
                mm = min(m, N - n0)
                for r in range(R):
                    c = r // (K * K)
                    kh = (r // K) % K
                    kw = r % K
                    for i in range(mm):
                        o = ((n0 + i) * C + g * Cg + c) * plane + kh * Wp + kw
                        cols[r, i * L:(i + 1) * L] = xflat[o:o + L]
                    cols[r, mm * L:] = 0
                for f in range(Fg):
                    for i in range(mm):
                        for oh in range(OH):
                            q = i * L + oh * Wp
                            d[f, q:q + OW] = dout[n0 + i, g * Fg + f, oh]
                    d[f, mm * L:] = 0
                for r0 in range(0, Rp4, 4):                   # 4 column rows stay in L1 while
                    x0 = cols[r0]                             # the (smaller) d streams past
                    x1 = cols[r0 + 1]
                    x2 = cols[r0 + 2]
                    x3 = cols[r0 + 3]
                    for f0 in range(0, Fgp, 4):
                        d0 = d[f0]
                        d1 = d[f0 + 1]
                        d2 = d[f0 + 2]
                        d3 = d[f0 + 3]
                        block = _dot4x4(d0, d1, d2, d3, x0, x1, x2, x3, Lp, zero)   # dout row i . column row j
                        for i in range(4):
                            row = block[i]
                            for j in range(4):
                                part[slot, g, f0 + i, r0 + j] += row[j]


@njit(parallel=True, cache=True)
def _bias_grad_kernel(dout, db):
    # dout: (N, F, P) -> db: (F,), summed in float64 in a fixed order.
    N, F, P = dout.shape
    for f in prange(F):
        acc = 0.0
        for n in range(N):
            for q in range(P):
                acc += dout[n, f, q]
        db[f] = acc


def conv2d_direct_grads(x, dout, K, padding, groups):
    """dL/dw and dL/db of a stride-1 convolution, without a column matrix.

    The batch is cut into chunks of a few images whose columns fit in cache;
    each chunk's dw (a GEMM written as 4 x 4 blocks of dot products) is added
    to one of ``DW_SLOTS`` slots in a fixed order, and the slots are summed in
    order, so the result does not depend on the thread count.

    Shapes:  x: (N, C, H, W), dout: (N, F, OH, OW) -> dw: (F, C/G, K, K), db: (F,)
    """
    N, C, H, W = x.shape
    F, OH, OW = dout.shape[1], dout.shape[2], dout.shape[3]
    G = groups
    Cg, Fg = C // G, F // G
    R = Cg * K * K
    Rp4, Fgp = (R + 3) // 4 * 4, (Fg + 3) // 4 * 4
    Hp, Wp = H + 2 * padding, W + 2 * padding
    L = OH * Wp                                                     # widened output pixels per image
    m = int(max(1, min(N, DW_CHUNK_BYTES // ((Rp4 + Fgp) * L * x.dtype.itemsize))))   # images per chunk
    Lp = (m * L + 15) // 16 * 16
    xflat = _padded_flat(x, padding, K)                            # (N*C*Hp*Wp + K,)
    n_slots = min(DW_SLOTS, (N + m - 1) // m)
    part = np.zeros((n_slots, G, Fgp, Rp4), dtype=x.dtype)
    dout = np.ascontiguousarray(dout)
    _conv_dw_kernel(xflat, dout, C, Hp, Wp, G, K, m, Lp, numba.get_num_threads(), x.dtype.type(0), part)
    dw = part[0].copy()
    for s in range(1, n_slots):                           # fixed order: deterministic
        dw += part[s]
    dw = dw[:, :Fg, :R].reshape(F, Cg, K, K)               # (G, Fg, R) -> (F, Cg, K, K)
    db = np.empty(F, dtype=dout.dtype)
    _bias_grad_kernel(dout.reshape(N, F, OH * OW), db)
    return dw, db


# ---------------------------------------------------------------------------
# Overlapping max pooling (Sec. 3.4).
# Twin: MaxPool2D's reference path in layers/pool.py (im2col + argmax).
# The arg-max is stored per output as the row-major offset kh*z + kw inside
# the window, the same number np.argmax returns over an im2col column.
# ---------------------------------------------------------------------------

@njit(inline="always")
def _maxpool_plane(x, n, c, z, s, out, arg):
    # One (n, c) plane: out, arg (OH, OW) of x (H, W). Inlined into the kernels
    # below, so where z and s are literals (3/2, 2/2) LLVM unrolls the window
    # loops: about 3x faster than with z and s as run-time values.
    # Pass 1: the max, NaN-propagating like np.maximum. Pass 2, branch-free and
    # backwards: the first position holding it, or the first NaN when it is
    # NaN, exactly as np.argmax over the window in row-major order.
    OH, OW = out.shape[2], out.shape[3]
    for oh in range(OH):
        h0 = oh * s
        for ow in range(OW):
            w0 = ow * s
            m = x[n, c, h0, w0]
            for kh in range(z):
                for kw in range(z):
                    m = np.maximum(m, x[n, c, h0 + kh, w0 + kw])
            k = z * z - 1
            for kh in range(z - 1, -1, -1):
                for kw in range(z - 1, -1, -1):
                    v = x[n, c, h0 + kh, w0 + kw]
                    k = kh * z + kw if (v == m) | (v != v) else k
            out[n, c, oh, ow] = m
            arg[n, c, oh, ow] = k


@njit(parallel=True, cache=True)
def _maxpool_forward_kernel(x, z, s, out, arg):
    # x: (N, C, H, W); out, arg: (N, C, OH, OW). One (n, c) plane per thread.
    N, C = x.shape[0], x.shape[1]
    for nc in prange(N * C):
        _maxpool_plane(x, nc // C, nc % C, z, s, out, arg)


@njit(parallel=True, cache=True)
def _maxpool_forward_kernel_3_2(x, out, arg):
    # The paper's overlapping pool, z=3, s=2, with literal window sizes.
    N, C = x.shape[0], x.shape[1]
    for nc in prange(N * C):
        _maxpool_plane(x, nc // C, nc % C, 3, 2, out, arg)


@njit(parallel=True, cache=True)
def _maxpool_forward_kernel_2_2(x, out, arg):
    # The classic pool of the Sec. 3.4 comparison, z=s=2, likewise.
    N, C = x.shape[0], x.shape[1]
    for nc in prange(N * C):
        _maxpool_plane(x, nc // C, nc % C, 2, 2, out, arg)


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
    if (z, s) == (3, 2):
        _maxpool_forward_kernel_3_2(x, out, arg)
    elif (z, s) == (2, 2):
        _maxpool_forward_kernel_2_2(x, out, arg)
    else:
        _maxpool_forward_kernel(x, z, s, out, arg)
    return out, arg


def maxpool_backward(dout, arg, x_shape, z, s):
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
# A task is one image and a block of up to LRN_BLOCK pixels: the channel loop
# runs over a (C, block) slab of per-thread scratch, so every inner loop is a
# long contiguous run (the pixels of one channel). Only x is kept for
# backward: the scale is recomputed there (five multiply-adds per element),
# which saves two activation-sized arrays per LRN layer.
# ---------------------------------------------------------------------------

LRN_BLOCK = 512


@njit(inline="always")
def _neg_pow(s, one, beta, beta_is_3_4):
    # s ** -beta; for the paper's beta = 3/4, 1 / (sqrt(s) * sqrt(sqrt(s))) is faster than pow.
    # ``one`` is 1 in s's dtype: a literal 1 / float32 would compute in float64.
    if beta_is_3_4:
        r = np.sqrt(s)
        return one / (r * np.sqrt(r))
    return s ** -beta


@njit(inline="always")
def _block_scale(x, n, p0, L, half, k, coeff, sq, sc):
    # sc[c, :L] = k + coeff * sum over the clipped window of x[n, j, p0:p0+L]^2;
    # sq is scratch. x: (N, C, H*W).
    C = x.shape[1]
    for c in range(C):
        xr = x[n, c, p0:p0 + L]
        qr = sq[c]
        for i in range(L):
            qr[i] = xr[i] * xr[i]
    for c in range(C):
        lo = max(0, c - half)
        hi = min(C - 1, c + half)
        sr = sc[c]
        q0 = sq[lo]
        for i in range(L):
            sr[i] = q0[i]
        for j in range(lo + 1, hi + 1):
            qj = sq[j]
            for i in range(L):
                sr[i] += qj[i]
        for i in range(L):
            sr[i] = k + coeff * sr[i]


@njit(parallel=True, cache=True)
def _lrn_forward_kernel(x, half, k, coeff, beta, beta_is_3_4, one, block, nthreads, out):
    # x, out: (N, C, H*W). Tasks (n, pixel block) dealt round-robin to nthreads workers.
    N, C, P = x.shape
    n_blk = (P + block - 1) // block
    for t in prange(nthreads):
        sq = np.empty((C, block), dtype=x.dtype)
        sc = np.empty((C, block), dtype=x.dtype)
        for task in range(t, N * n_blk, nthreads):
            n = task // n_blk
            p0 = (task % n_blk) * block
            L = min(block, P - p0)
            _block_scale(x, n, p0, L, half, k, coeff, sq, sc)
            for c in range(C):
                xr = x[n, c, p0:p0 + L]
                orow = out[n, c, p0:p0 + L]
                sr = sc[c]
                for i in range(L):
                    orow[i] = xr[i] * _neg_pow(sr[i], one, beta, beta_is_3_4)


@njit(parallel=True, cache=True)
def _lrn_backward_kernel(x, dout, half, k, coeff, beta, beta_is_3_4, one, block, nthreads, dx):
    # x, dout, dx: (N, C, H*W)
    N, C, P = x.shape
    g = (one + one) * coeff * beta                     # 2 coeff beta, in x's dtype
    n_blk = (P + block - 1) // block
    for t in prange(nthreads):
        tt = np.empty((C, block), dtype=x.dtype)       # scratch, then dout * a * scale^(-beta-1)
        sc = np.empty((C, block), dtype=x.dtype)       # scale, then scale^-beta
        for task in range(t, N * n_blk, nthreads):
            n = task // n_blk
            p0 = (task % n_blk) * block
            L = min(block, P - p0)
            _block_scale(x, n, p0, L, half, k, coeff, tt, sc)
            for c in range(C):
                xr = x[n, c, p0:p0 + L]
                dr = dout[n, c, p0:p0 + L]
                sr = sc[c]
                tr = tt[c]
                for i in range(L):
                    pw = _neg_pow(sr[i], one, beta, beta_is_3_4)
                    tr[i] = dr[i] * xr[i] * pw / sr[i]
                    sr[i] = pw
            for c in range(C):
                lo = max(0, c - half)
                hi = min(C - 1, c + half)
                xr = x[n, c, p0:p0 + L]
                dr = dout[n, c, p0:p0 + L]
                sr = sc[c]
                out = dx[n, c, p0:p0 + L]
                t0 = tt[lo]
                for i in range(L):
                    out[i] = t0[i]
                for j in range(lo + 1, hi + 1):
                    tj = tt[j]
                    for i in range(L):
                        out[i] += tj[i]
                for i in range(L):
                    out[i] = dr[i] * sr[i] - g * xr[i] * out[i]


def _lrn_consts(x, k, coeff, beta):
    # Constants in x's dtype, so float32 stays float32 inside the kernel.
    t = x.dtype.type
    return t(k), t(coeff), t(beta), bool(beta == 0.75), t(1)


def lrn_forward(x, size, k, coeff, beta):
    """b = x * (k + coeff * window_sum(x^2))^-beta; returns (out, None).

    Shapes:  x, out: (N, C, H, W)
    The second value is the scale, which the CUDA twin keeps for backward;
    here it is None: ``lrn_backward`` recomputes it from x.
    """
    half = size // 2
    x = np.ascontiguousarray(x)
    out = np.empty_like(x)
    N, C, H, W = x.shape
    block = min(LRN_BLOCK, H * W)
    _lrn_forward_kernel(x.reshape(N, C, H * W), half, *_lrn_consts(x, k, coeff, beta), block,
                        numba.get_num_threads(), out.reshape(N, C, H * W))   # (N, C, H*W) views
    return out, None


def lrn_backward(dout, x, scale, out, size, k, coeff, beta):
    """dL/dx of ``lrn_forward``, recomputing the scale from x. Shapes: all (N, C, H, W).

    ``scale`` and ``out`` are unused (None from ``lrn_forward``); the
    signature is the CUDA twin's.
    """
    half = size // 2
    x = np.ascontiguousarray(x)
    dout = np.ascontiguousarray(dout)
    dx = np.empty_like(x)
    N, C, H, W = x.shape
    block = min(LRN_BLOCK, H * W)
    _lrn_backward_kernel(x.reshape(N, C, H * W), dout.reshape(N, C, H * W), half,
                         *_lrn_consts(x, k, coeff, beta), block, numba.get_num_threads(),
                         dx.reshape(N, C, H * W))                            # (N, C, H*W) views
    return dx


# ---------------------------------------------------------------------------
# ReLU (Sec. 3.1). Twin: ReLU's NumPy path in layers/activation.py.
# NumPy's one-thread passes are memory-bound; these use every thread. NaN
# passes through forward (as np.maximum) and dout * 0 stays dout * 0 (NaN
# and inf times 0 give NaN, as in NumPy).
# ---------------------------------------------------------------------------

_BLOCK = 16384                                   # elements per parallel block


@njit(parallel=True, cache=True)
def _relu_forward_kernel(x, zero, out):
    # x, out: flat (M,). Blocks as slices: LLVM vectorises the inner loop.
    M = x.shape[0]
    for blk in prange((M + _BLOCK - 1) // _BLOCK):
        lo = blk * _BLOCK
        hi = min(M, lo + _BLOCK)
        xb = x[lo:hi]
        ob = out[lo:hi]
        for i in range(hi - lo):
            v = xb[i]
            ob[i] = v if (v > zero) | (v != v) else zero   # as np.maximum(x, 0): NaN kept, -0.0 -> 0


@njit(parallel=True, cache=True)
def _relu_backward_kernel(dout, out, dx):
    # dout, out, dx: flat (M,)
    M = dout.shape[0]
    for blk in prange((M + _BLOCK - 1) // _BLOCK):
        lo = blk * _BLOCK
        hi = min(M, lo + _BLOCK)
        db = dout[lo:hi]
        ob = out[lo:hi]
        xb = dx[lo:hi]
        for i in range(hi - lo):
            xb[i] = db[i] * (ob[i] > 0)


def relu_forward(x):
    """max(x, 0). Shapes: x, out: any shape (contiguous copy of x's values)."""
    x = np.ascontiguousarray(x)
    out = np.empty_like(x)
    _relu_forward_kernel(x.reshape(-1), x.dtype.type(0), out.reshape(-1))
    return out


def relu_backward(dout, out):
    """dout * (out > 0), a new array. Shapes: dout, out, dx: the same shape."""
    dout = np.ascontiguousarray(dout)
    dx = np.empty_like(dout)
    _relu_backward_kernel(dout.reshape(-1), np.ascontiguousarray(out).reshape(-1), dx.reshape(-1))
    return dx
