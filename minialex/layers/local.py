"""Locally connected layer: a convolution whose kernels are not shared across positions.

cuda-convnet, the authors' 2012 code, calls it a "local" layer. Its
CIFAR-10 nets of Sec. 3.3 (``layers-conv-local-13pct`` without response
normalisation, ``-11pct`` with it) end in two of them, local3 and local4,
on a 6x6 map there (5x5 with minialex's default whole-window pools; see
``minialex.cuda_convnet``, ``cover_pools``).
"""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from ..im2col import conv_output_size
from .base import Layer, check_float, check_ndim
from .init import constant, make_rng, normal


class LocallyConnected2D(Layer):
    """Every output position (oh, ow) has its own F kernels of shape (C, KH, KW).

    out[n, f, oh, ow] = b[f, oh, ow]
                        + sum_{c, kh, kw} w[oh*OW + ow, (c, kh, kw), f] * x_pad[n, c, oh*s + kh, ow*s + kw]

    A convolution is this layer with every w[p] equal. With P = OH*OW
    positions and K = C*KH*KW inputs per window, the layer is P independent
    (N, K) @ (K, F) products: one batched matmul over the im2col columns.

    Shapes:  x: (N, C, H, W)  ->  out: (N, F, OH, OW)
             w: (OH*OW, C*KH*KW, F)   one (K, F) matrix per output position
             b: (F, OH, OW)           one bias per output unit (nothing is shared)
    Paper:   Sec. 3.3's CIFAR-10 net (cuda-convnet ``layers-conv-local-11pct.cfg``:
             local3 and local4, 32 kernels of 3x3, padding 1, stride 1).
    Backward: the same three products as a convolution's, per position:
             dw[p] = cols[p]^T @ dout[p], dcols[p] = dout[p] @ w[p]^T, db = sum over n.
    """

    def __init__(self, in_channels, out_channels, kernel_size, input_size, stride=1, padding=0,
                 rng=None, weight_std=0.01, bias_init=0.0, dtype=np.float32):
        super().__init__()
        C, F, K, S = in_channels, out_channels, kernel_size, input_size
        for name, v in (("in_channels", C), ("out_channels", F), ("kernel_size", K), ("input_size", S),
                        ("stride", stride)):
            if int(v) != v or v < 1:
                raise ValueError(f"LocallyConnected2D: {name} must be a positive integer, got {v!r}")
        self.in_channels, self.out_channels, self.kernel_size = C, F, K
        self.input_size, self.stride, self.padding = S, stride, padding
        self.OH = conv_output_size(S, K, stride, padding)
        if self.OH < 1:
            raise ValueError(f"LocallyConnected2D: a {K}x{K} kernel does not fit a {S}x{S} input "
                             f"with padding {padding}")
        P = self.OH * self.OH
        rng = make_rng(rng)
        self.params["w"] = normal((P, C * K * K, F), weight_std, rng, dtype)
        self.params["b"] = constant((F, self.OH, self.OH), bias_init, dtype)
        self.grads = {"w": None, "b": None}

    def output_shape(self, in_shape):
        """(C, H, W) -> (F, OH, OW); the input must be the size the weights were made for."""
        C, H, W = in_shape
        if (C, H, W) != (self.in_channels, self.input_size, self.input_size):
            raise ValueError(f"LocallyConnected2D: input {in_shape}, expected "
                             f"{(self.in_channels, self.input_size, self.input_size)}")
        return self.out_channels, self.OH, self.OH

    def forward(self, x, train=True):
        check_ndim(x, 4, "LocallyConnected2D")
        check_float(x, "LocallyConnected2D")
        xp = get_array_module(x)
        N, C, H, W = x.shape
        self.output_shape((C, H, W))
        K, F, OH = self.kernel_size, self.out_channels, self.OH
        P = OH * OH
        cols = windows(x, K, self.stride, self.padding)             # (P, N, C*K*K)
        out = xp.matmul(cols, self.params["w"])                       # (P, N, F)
        out = out.transpose(1, 2, 0).reshape(N, F, OH, OH)            # (N, F, OH, OW)
        self.cache = (x.shape, cols)
        return out + self.params["b"]

    def backward(self, dout):
        x_shape, cols = self.cache
        xp = get_array_module(dout)
        N, C, _, _ = x_shape
        K, F, OH = self.kernel_size, self.out_channels, self.OH
        P = OH * OH
        dout_p = dout.reshape(N, F, P).transpose(2, 0, 1)             # (P, N, F)
        self.grads["w"] = xp.matmul(cols.transpose(0, 2, 1), dout_p)  # (P, C*K*K, F)
        self.grads["b"] = dout.sum(axis=0)                             # (F, OH, OW)
        dcols = xp.matmul(dout_p, self.params["w"].transpose(0, 2, 1))  # (P, N, C*K*K)
        self.cache = None
        return windows_backward(dcols, x_shape, K, self.stride, self.padding)   # (N, C, H, W)


def windows(x, K, stride, padding):
    """Every KxK window of the padded input, one row per (position, image).

    The same rows as ``minialex.im2col`` (ordered c, kh, kw), arranged per
    output position for the batched matmul: K*K strided slices, one per
    kernel offset (a small map, so a Python loop over offsets is cheap).

    Shapes:  x: (N, C, H, W)  ->  cols: (OH*OW, N, C*K*K)
    """
    xp = get_array_module(x)
    N, C, H, W = x.shape
    OH, OW = conv_output_size(H, K, stride, padding), conv_output_size(W, K, stride, padding)
    p = padding
    x_pad = xp.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))            # (N, C, H+2p, W+2p)
    cols = xp.empty((N, C, K, K, OH, OW), dtype=x.dtype)
    for kh in range(K):
        for kw in range(K):
            cols[:, :, kh, kw] = x_pad[:, :, kh:kh + stride * OH:stride, kw:kw + stride * OW:stride]
    return cols.reshape(N, C * K * K, OH * OW).transpose(2, 0, 1)   # (OH*OW, N, C*K*K)


def windows_backward(dcols, x_shape, K, stride, padding):
    """The adjoint of ``windows``: each window's gradient added back where it was read.

    Windows overlap (3x3 kernels, stride 1), so the offsets' slices are
    *added*, never assigned.

    Shapes:  dcols: (OH*OW, N, C*K*K)  ->  dx: (N, C, H, W)
    """
    xp = get_array_module(dcols)
    N, C, H, W = x_shape
    OH, OW = conv_output_size(H, K, stride, padding), conv_output_size(W, K, stride, padding)
    p = padding
    d = dcols.transpose(1, 2, 0).reshape(N, C, K, K, OH, OW)         # (N, C, K, K, OH, OW)
    dx_pad = xp.zeros((N, C, H + 2 * p, W + 2 * p), dtype=dcols.dtype)
    for kh in range(K):
        for kw in range(K):
            dx_pad[:, :, kh:kh + stride * OH:stride, kw:kw + stride * OW:stride] += d[:, :, kh, kw]
    return dx_pad[:, :, p:p + H, p:p + W]                             # (N, C, H, W)
