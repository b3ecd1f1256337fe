"""Convolution, with the paper's two-tower grouping (Sec. 3.2, 3.5)."""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module, use_numba
from ..im2col import conv_output_size
from ..kernels.im2col import col2im, im2col
from .base import Layer, check_float, check_ndim
from .init import constant, make_rng, normal

# Bytes of im2col columns the fast CPU path holds at once (see Conv2D).
CHUNK_BYTES = 48 * 2**20
# Conv2D.fast_conv: "direct" (minialex.kernels._numba.conv2d_direct and friends), "gemm"
# (im2col chunks + BLAS), or "auto", which picks per product (see Conv2D._plan):
# a BLAS GEMM with many rows (kernels per group) runs near peak; with few it
# spends its time packing columns and the direct kernels win. The limits were
# measured on 2 cores (cifar and paper configs, benchmarks/cpu.py): dw's
# direct kernel loses to the BLAS earlier (the paper's conv2 and conv5, 128
# kernels per group, are faster by GEMM for dw, by the direct kernels else).
FAST_CONV = ("auto", "direct", "gemm")
DIRECT_MAX_KERNELS = 192
DIRECT_MAX_KERNELS_DW = 64


class _Workspace:
    """Flat scratch arrays reused across layers and steps by the fast CPU path.

    Layers run one after another, so one buffer per role ("cols", "res",
    "dcols") serves every Conv2D. Not thread-safe: one model per thread.
    """

    def __init__(self):
        self.buffers = {}

    def get(self, role, shape, dtype):
        size = int(np.prod(shape))
        buf = self.buffers.get((role, np.dtype(dtype)))
        if buf is None or buf.size < size:
            buf = np.empty(size, dtype=dtype)
            self.buffers[(role, np.dtype(dtype))] = buf
        return buf[:size].reshape(shape)

    def clear(self):
        self.buffers.clear()


WORKSPACE = _Workspace()


class Conv2D(Layer):
    """2-D convolution as im2col + one matrix product per group.

    ``groups=2`` is the paper's "same GPU only" connectivity: output kernels
    0..F/2-1 (tower 0) see only input channels 0..C/2-1, the rest see only
    the other half. conv2, conv4 and conv5 of AlexNet use it; conv3 does not.

    Shapes:  x: (N, C, H, W)  ->  out: (N, F, OH, OW)
             w: (F, C/G, KH, KW),  b: (F,)
             OH = (H + 2*padding - KH) // stride + 1, likewise OW
    Paper:   Sec. 3.2 (groups), 3.5 (kernel sizes and strides),
             Sec. 5 (init: w ~ N(0, 0.01^2), bias 0 or 1).
    Backward derivation: docs/derivations.md#convolution.

    Two paths compute the same thing. ``forward``/``backward`` below are the
    readable one: im2col of the whole batch, one GEMM per group; backward
    keeps only x and rebuilds the columns (one more im2col, much less memory). On NumPy arrays with numba active (``impl``, env
    ``MINIALEX_KERNELS``; see ``minialex.im2col``) the fast path runs instead:
    it walks the batch in chunks of about ``CHUNK_BYTES`` of columns, reuses
    one set of scratch buffers (``WORKSPACE``) across layers and steps, fuses
    the (F, N) -> (N, F) transpose with the bias add, and, like the readable
    path, recomputes the columns in backward instead of keeping them (the
    columns of conv2 at batch 128 alone would take 900 MB). Where a group has few kernels
    (``fast_conv``, below) the direct kernels skip the column matrix
    altogether: ``minialex.kernels._numba.conv2d_direct`` builds each image's patches
    in cache and multiplies them there; for stride 1, dw is computed the same
    way and dL/dx is the convolution of dout with the 180-degree-rotated
    kernels (docs/derivations.md), so no col2im.

    ``input_grad=False`` (an attribute, also settable later) makes backward
    skip dL/dx and return None: right for the first layer, whose input is the
    image and needs no gradient (PyTorch skips it the same way). It saves one
    GEMM and the col2im; dw and db are computed as usual.

    ``fast_conv`` (an attribute: "auto", "direct" or "gemm") picks the fast
    path's algorithm for each of the three products (``_plan``); the results
    agree to a few ulps either way.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 groups=1, rng=None, weight_std=0.01, bias_init=0.0, dtype=np.float32,
                 im2col_impl="auto", input_grad=True):
        super().__init__()
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels),
                        ("kernel_size", kernel_size), ("stride", stride), ("groups", groups)):
            if int(v) != v or v < 1:
                raise ValueError(f"Conv2D: {name} must be a positive integer, got {v!r}")
        if padding < 0 or int(padding) != padding:
            raise ValueError(f"Conv2D: padding must be a non-negative integer, got {padding!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"Conv2D: groups={groups} must divide in_channels={in_channels} and "
                f"out_channels={out_channels}"
            )
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding, self.groups = kernel_size, stride, padding, groups
        self.im2col_impl = im2col_impl
        self.input_grad = bool(input_grad)
        self.fast_conv = "auto"
        K = kernel_size
        rng = make_rng(rng)
        self.params["w"] = normal((out_channels, in_channels // groups, K, K), weight_std, rng, dtype)
        self.params["b"] = constant((out_channels,), bias_init, dtype)
        self.grads = {"w": None, "b": None}

    def output_shape(self, input_shape):
        """(C, H, W) -> (F, OH, OW), without running the layer."""
        C, H, W = input_shape
        K, s, p = self.kernel_size, self.stride, self.padding
        return (self.out_channels, conv_output_size(H, K, s, p), conv_output_size(W, K, s, p))

    def _validate(self, x):
        check_ndim(x, 4, "Conv2D")
        check_float(x, "Conv2D")
        N, C, H, W = x.shape
        if C != self.in_channels:
            raise ValueError(f"Conv2D: input has {C} channels, expected in_channels={self.in_channels}")
        K, p = self.kernel_size, self.padding
        if K > H + 2 * p or K > W + 2 * p:
            raise ValueError(
                f"Conv2D: kernel_size={K} is larger than the padded input "
                f"{H + 2 * p}x{W + 2 * p} (input {H}x{W}, padding {p})"
            )

    def forward(self, x, train=True):
        xp = get_array_module(x)
        self._validate(x)
        if use_numba(xp, self.im2col_impl):
            return self._forward_fast(x)
        w, b = self.params["w"], self.params["b"]
        N, C, H, W = x.shape
        F, G, K, s, p = self.out_channels, self.groups, self.kernel_size, self.stride, self.padding
        _, OH, OW = self.output_shape((C, H, W))
        cols = im2col(x, K, K, s, p, impl=self.im2col_impl)        # (C*K*K, N*OH*OW)
        cols_g = cols.reshape(G, C // G * K * K, N * OH * OW)       # (G, Cg*K*K, N*OH*OW)
        w_g = w.reshape(G, F // G, C // G * K * K)                  # (G, Fg, Cg*K*K)
        out = xp.matmul(w_g, cols_g)                                # (G, Fg, N*OH*OW)
        out = out.reshape(F, N, OH, OW).transpose(1, 0, 2, 3)       # (N, F, OH, OW)
        out = out + b.reshape(1, F, 1, 1)
        # Keep x, not the columns: they hold K*K/s^2 times x's bytes (conv2 at
        # batch 128: 896 MB against 36 MB), and backward rebuilds them with
        # one im2col. On a GPU this is what keeps the paper net's peak memory
        # near PyTorch's (docs/gpu.md, "Memory").
        self.cache = (x.shape, x)
        return out

    def backward(self, dout):
        xp = get_array_module(dout)
        if self.cache[0] == "fast":
            return self._backward_fast(dout)
        x_shape, x = self.cache
        w = self.params["w"]
        N, C, H, W = x_shape
        F, G, K, s, p = self.out_channels, self.groups, self.kernel_size, self.stride, self.padding
        OH, OW = dout.shape[2], dout.shape[3]
        cols = im2col(x, K, K, s, p, impl=self.im2col_impl)                   # (C*K*K, N*OH*OW), recomputed
        cols_g = cols.reshape(G, C // G * K * K, N * OH * OW)                  # (G, Cg*K*K, N*OH*OW)
        dout_g = dout.transpose(1, 0, 2, 3).reshape(G, F // G, N * OH * OW)  # (G, Fg, N*OH*OW)
        self.grads["b"] = dout.sum(axis=(0, 2, 3))                            # (F,)
        # dW_g = dout_g cols_g^T, one 2-D product per group: the BLAS (cuBLAS on
        # the GPU) reads cols_g[g].T in place. A batched matmul of the transposed
        # 3-D view made CuPy copy all the columns first (conv2 on an H100: 5.8 ms
        # against 1.2 ms).
        dw = xp.stack([dout_g[g] @ cols_g[g].T for g in range(G)])            # (G, Fg, Cg*K*K)
        self.grads["w"] = dw.reshape(w.shape)                                 # (F, Cg, K, K)
        del cols, cols_g                    # freed before dcols (the same size) is allocated
        if not self.input_grad:
            self.cache = None
            return None
        w_g = w.reshape(G, F // G, C // G * K * K)                            # (G, Fg, Cg*K*K)
        dcols = xp.matmul(w_g.transpose(0, 2, 1), dout_g)                     # (G, Cg*K*K, N*OH*OW)
        dcols = dcols.reshape(C * K * K, N * OH * OW)                         # (C*K*K, N*OH*OW)
        dx = col2im(dcols, x_shape, K, K, s, p, impl=self.im2col_impl)       # (N, C, H, W)
        self.cache = None
        return dx

    # -- fast CPU path (NumPy + numba); same results as forward/backward above --
    def _chunk(self, N, OH, OW, itemsize):
        """Images per chunk so that one chunk's columns fit in CHUNK_BYTES."""
        per_image = self.in_channels * self.kernel_size ** 2 * OH * OW * itemsize
        return int(max(1, min(N, CHUNK_BYTES // per_image)))

    def _plan(self):
        """(forward, dw, dx): which of the fast path's products use the direct kernels.

        dw and dx have direct kernels for stride 1 only (dx also needs
        padding < K). "auto" uses them where the GEMM would have at most
        ``DIRECT_MAX_KERNELS`` rows: F/G for the forward pass, C/G for dx; and
        for dw at most ``DIRECT_MAX_KERNELS_DW`` (F/G).
        """
        if self.fast_conv not in FAST_CONV:
            raise ValueError(f"Conv2D: fast_conv must be one of {FAST_CONV}, got {self.fast_conv!r}")
        G, K = self.groups, self.kernel_size
        Cg, Fg = self.in_channels // G, self.out_channels // G
        unit = self.stride == 1
        if self.fast_conv != "auto":
            on = self.fast_conv == "direct"
            return on, on and unit, on and unit and self.padding < K
        few = DIRECT_MAX_KERNELS
        return (unit and Fg <= few,
                unit and Fg <= DIRECT_MAX_KERNELS_DW,
                unit and self.padding < K and Cg <= few)

    def _forward_fast(self, x):
        from ..kernels import _numba
        w, b = self.params["w"], self.params["b"]
        N, C, H, W = x.shape
        if self._plan()[0]:
            out = _numba.conv2d_direct(x, w, b, self.stride, self.padding, self.groups)  # (N, F, OH, OW)
            self.cache = ("fast", x)
            return out
        F, G, K, s, p = self.out_channels, self.groups, self.kernel_size, self.stride, self.padding
        _, OH, OW = self.output_shape((C, H, W))
        R, Fg = C * K * K, F // G                                  # rows of cols, kernels per group
        out = np.empty((N, F, OH, OW), dtype=x.dtype)
        w_g = w.reshape(G, Fg, R // G)                             # (G, Fg, Cg*K*K)
        nb = self._chunk(N, OH, OW, x.dtype.itemsize)
        for n0 in range(0, N, nb):
            m = min(nb, N - n0)
            cols = WORKSPACE.get("cols", (R, m * OH * OW), x.dtype)
            _numba.im2col(x[n0:n0 + m], K, K, s, p, out=cols)      # (C*K*K, m*OH*OW)
            res = WORKSPACE.get("res", (G, Fg, m * OH * OW), x.dtype)
            np.matmul(w_g, cols.reshape(G, R // G, m * OH * OW), out=res)   # (G, Fg, m*OH*OW)
            _numba.gemm_to_nchw(res.reshape(F, m, OH * OW), b,
                                out[n0:n0 + m].reshape(m, F, OH * OW))      # (m, F, OH*OW) + b
        self.cache = ("fast", x)
        return out

    def _backward_fast(self, dout):
        from ..kernels import _numba
        _, x = self.cache
        w = self.params["w"]
        N, C, H, W = x.shape
        F, G, K, s, p = self.out_channels, self.groups, self.kernel_size, self.stride, self.padding
        OH, OW = dout.shape[2], dout.shape[3]
        R, Fg = C * K * K, F // G
        _, direct_w, direct_dx = self._plan()                       # dw and db; dx
        direct_dx = direct_dx and self.input_grad
        cols_dx = self.input_grad and not direct_dx               # dx through dcols + col2im below
        dx = np.empty((N, C, H, W), dtype=dout.dtype) if cols_dx else None
        if direct_dx:
            dx = _numba.conv2d_direct_dx(dout, w, p, G, x.shape)   # (N, C, H, W), no col2im
        if direct_w:
            dw, db = _numba.conv2d_direct_grads(x, dout, K, p, G)  # (F, Cg, K, K), (F,)
        else:
            dw = np.empty((G, Fg, R // G), dtype=w.dtype)
            db = np.zeros(F, dtype=dout.dtype)
        if cols_dx or not direct_w:
            w_g = w.reshape(G, Fg, R // G)                         # (G, Fg, Cg*K*K)
            nb = self._chunk(N, OH, OW, x.dtype.itemsize)
            for n0 in range(0, N, nb):
                m = min(nb, N - n0)
                dres = WORKSPACE.get("res", (F, m, OH * OW), dout.dtype)
                dchunk = np.ascontiguousarray(dout[n0:n0 + m]).reshape(m, F, OH * OW)  # (m, F, OH*OW)
                _, db_chunk = _numba.nchw_to_gemm(dchunk, dres)     # (F, m, OH*OW)
                dres_g = dres.reshape(G, Fg, m * OH * OW)           # (G, Fg, m*OH*OW)
                if not direct_w:
                    cols = WORKSPACE.get("cols", (R, m * OH * OW), x.dtype)
                    _numba.im2col(x[n0:n0 + m], K, K, s, p, out=cols)  # (C*K*K, m*OH*OW), recomputed
                    cols_g = cols.reshape(G, R // G, m * OH * OW)       # (G, Cg*K*K, m*OH*OW)
                    db += db_chunk
                    if n0 == 0:
                        np.matmul(dres_g, cols_g.transpose(0, 2, 1), out=dw)  # (G, Fg, Cg*K*K)
                    else:
                        dw += np.matmul(dres_g, cols_g.transpose(0, 2, 1))
                if cols_dx:
                    dcols = WORKSPACE.get("dcols", (G, R // G, m * OH * OW), dout.dtype)
                    np.matmul(w_g.transpose(0, 2, 1), dres_g, out=dcols)    # (G, Cg*K*K, m*OH*OW)
                    _numba.col2im(dcols.reshape(R, m * OH * OW), (m, C, H, W), K, K, s, p,
                                  out=dx[n0:n0 + m])                # (m, C, H, W)
        self.grads["w"] = dw.reshape(w.shape)                      # (F, Cg, K, K)
        self.grads["b"] = db
        self.cache = None
        return dx

    def tower_of_kernel(self):
        """Tower (group) index of each output kernel, shape (F,): 0 for the
        first F/G kernels, 1 for the next, ... (Sec. 3.2, Figure 3)."""
        return np.repeat(np.arange(self.groups), self.out_channels // self.groups)
