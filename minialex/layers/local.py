"""Locally connected layer: a convolution whose kernels are not shared across positions.

cuda-convnet, the authors' 2012 code, calls it a "local" layer. Its
CIFAR-10 nets of Sec. 3.3 (``layers-conv-local-13pct`` without response
normalisation, ``-11pct`` with it) end in two of them, local3 and local4,
on a 5x5 map (``minialex.cuda_convnet``).
"""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from ..im2col import conv_output_size
from ..kernels.im2col import col2im, im2col
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
        cols = im2col(x, K, K, self.stride, self.padding)            # (C*K*K, N*P)
        cols = cols.reshape(C * K * K, N, P).transpose(2, 1, 0)      # (P, N, C*K*K)
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
        dcols = dcols.transpose(2, 1, 0).reshape(C * K * K, N * P)    # (C*K*K, N*P)
        self.cache = None
        return col2im(np.ascontiguousarray(dcols) if xp is np else dcols, x_shape, K, K, self.stride,
                      self.padding)                                    # (N, C, H, W)
