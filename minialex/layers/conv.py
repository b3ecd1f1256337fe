"""Convolution, with the paper's two-tower grouping (Sec. 3.2, 3.5)."""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from ..im2col import col2im_reference, conv_output_size, im2col_reference
from .base import Layer, check_float, check_ndim
from .init import constant, make_rng, normal

class Conv2D(Layer):
    """2-D convolution as im2col + one matrix product per group.

    ``groups=2`` is the paper's "same GPU only" connectivity: output kernels
    0..F/2-1 (tower 0) see only input channels 0..C/2-1, the rest see only
    the other half. conv2, conv4 and conv5 of AlexNet use it; conv3 does not.
    ``towers=2`` declares that two towers share out the output kernels, half
    each (``tower_slices``; ``minialex.towers`` places them), with or without
    groups: conv1 and conv3 are split too, but read every input map.

    Shapes:  x: (N, C, H, W)  ->  out: (N, F, OH, OW)
             w: (F, C/G, KH, KW),  b: (F,)
             OH = (H + 2*padding - KH) // stride + 1, likewise OW
    Paper:   Sec. 3.2 (groups), 3.5 (kernel sizes and strides),
             Sec. 5 (init: w ~ N(0, 0.01^2), bias 0 or 1).
    Backward derivation: docs/derivations.md#convolution.

    ``forward``/``backward`` below: im2col of the whole batch, one GEMM per
    group; backward keeps only x and rebuilds the columns (one more im2col,
    much less memory). (The fast twins in ``minialex/kernels/conv.py``
    compute the same with less memory traffic.)

    ``input_grad=False`` (an attribute, also settable later) makes backward
    skip dL/dx and return None: right for the first layer, whose input is the
    image and needs no gradient (PyTorch skips it the same way). It saves one
    GEMM and the col2im; dw and db are computed as usual.
    """

    tower_axes = {"w": 0, "b": 0}     # Sec. 3.2: towers divide the output kernels

    # The column functions: the readable ones of minialex/im2col.py. The GPU
    # twin (minialex.kernels.conv.CudaConv2D) runs this same code with CUDA's.
    im2col = staticmethod(im2col_reference)
    col2im = staticmethod(col2im_reference)

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 groups=1, rng=None, weight_std=0.01, bias_init=0.0, dtype=np.float32,
                 input_grad=True, towers=1):
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
        self.input_grad = bool(input_grad)
        if towers not in (1, 2) or out_channels % towers:
            raise ValueError(f"Conv2D: towers must be 1 or 2 and divide out_channels={out_channels}, "
                             f"got {towers!r}")
        self.towers = towers
        K = kernel_size
        rng = make_rng(rng)
        self.params["w"] = normal((out_channels, in_channels // groups, K, K), weight_std, rng, dtype)
        self.params["b"] = constant((out_channels,), bias_init, dtype)
        self.grads = {"w": None, "b": None}

    def split_for_tower(self, t):
        """Tower t's kernels ``tower_slices[t]`` as one ungrouped Conv2D (Sec. 3.2): it reads
        its own tower's maps when groups=2 (conv2, conv4, conv5), every map otherwise."""
        part = super().split_for_tower(t)
        a, b = self.tower_slices[t]
        part.out_channels, part.groups = b - a, 1
        part.in_channels = self.in_channels // self.groups
        return part

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
        w, b = self.params["w"], self.params["b"]
        N, C, H, W = x.shape
        F, G, K, s, p = self.out_channels, self.groups, self.kernel_size, self.stride, self.padding
        _, OH, OW = self.output_shape((C, H, W))
        cols = self.im2col(x, K, K, s, p)                           # (C*K*K, N*OH*OW)
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
        x_shape, x = self.cache
        w = self.params["w"]
        N, C, H, W = x_shape
        F, G, K, s, p = self.out_channels, self.groups, self.kernel_size, self.stride, self.padding
        OH, OW = dout.shape[2], dout.shape[3]
        cols = self.im2col(x, K, K, s, p)                                     # (C*K*K, N*OH*OW), recomputed
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
        dx = self.col2im(dcols, x_shape, K, K, s, p)                         # (N, C, H, W)
        self.cache = None
        return dx

    def tower_of_kernel(self):
        """Tower (group) index of each output kernel, shape (F,): 0 for the
        first F/G kernels, 1 for the next, ... (Sec. 3.2, Figure 3)."""
        return np.repeat(np.arange(self.groups), self.out_channels // self.groups)
