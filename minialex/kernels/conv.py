"""The fast twins of Conv2D (Sec. 3.2, 3.5): numba on the CPU, CUDA im2col/col2im on the GPU.

Both compute what ``minialex.layers.Conv2D`` computes and are tested against it
(tests/test_numba_kernels.py, tests/test_gpu.py, tests/test_fake_gpu.py).

**NumbaConv2D** walks the batch in chunks of about ``CHUNK_BYTES`` of
columns, reuses one set of scratch buffers (``WORKSPACE``) across layers and
steps, fuses the (F, N) -> (N, F) transpose with the bias add, and recomputes
the columns in backward instead of keeping them (the columns of conv2 at batch
128 alone would take 900 MB). Where a group has few kernels (``fast_conv``)
the direct kernels skip the column matrix altogether: ``_numba.conv2d_direct``
builds each image's patches in cache and multiplies them there; for stride 1,
dw is computed the same way and dL/dx is the convolution of dout with the
180-degree-rotated kernels (docs/derivations.md), so no col2im. ``fast_conv``
(an attribute: "auto", "direct" or "gemm") picks the algorithm for each of
the three products (``_plan``); the results agree to a few ulps either way.

**CudaConv2D** is the readable layer with the CUDA im2col/col2im kernels
(the GEMMs are cuBLAS through ``xp.matmul``).
"""
from __future__ import annotations

import numpy as np

from ..layers.conv import Conv2D
from . import _cuda, _numba

# Bytes of im2col columns NumbaConv2D holds at once.
CHUNK_BYTES = 48 * 2**20
# NumbaConv2D.fast_conv: "direct" (_numba.conv2d_direct and friends), "gemm"
# (im2col chunks + BLAS), or "auto", which picks per product (see NumbaConv2D._plan):
# a BLAS GEMM with many rows (kernels per group) runs near peak; with few it
# spends its time packing columns and the direct kernels win. The limits were
# measured on 2 cores (cifar and paper configs, benchmarks/cpu.py): dw's
# direct kernel loses to the BLAS earlier (the paper's conv2 and conv5, 128
# kernels per group, are faster by GEMM for dw, by the direct kernels else).
FAST_CONV = ("auto", "direct", "gemm")
DIRECT_MAX_KERNELS = 192
DIRECT_MAX_KERNELS_DW = 64


class _Workspace:
    """Flat scratch arrays reused across layers and steps by NumbaConv2D.

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


class NumbaConv2D(Conv2D):
    """Conv2D on NumPy arrays with the numba kernels; same params, shapes and results (to a few ulps)."""

    fast_conv = "auto"

    @property
    def kernel_path(self):
        """The path with each product's algorithm, e.g. 'numba (forward direct, dw gemm, dx direct)'."""
        names = [("direct" if on else "gemm") for on in self._plan()]
        return f"numba (forward {names[0]}, dw {names[1]}, dx {names[2]})"

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

    def forward(self, x, train=True):
        self._validate(x)
        w, b = self.params["w"], self.params["b"]
        N, C, H, W = x.shape
        if self._plan()[0]:
            out = _numba.conv2d_direct(x, w, b, self.stride, self.padding, self.groups)  # (N, F, OH, OW)
            self.cache = x                                         # columns are recomputed in backward
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
        self.cache = x                                             # columns are recomputed in backward
        return out

    def backward(self, dout):
        x = self.cache
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


class CudaConv2D(Conv2D):
    """Conv2D on CuPy arrays with the CUDA im2col/col2im kernels (``_cuda.py``); the rest is the readable code."""

    kernel_path = "cuda"
    im2col = staticmethod(_cuda.im2col)
    col2im = staticmethod(_cuda.col2im)
