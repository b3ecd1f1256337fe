"""Lab solution: col2im and grouped convolution backward (Sec. 3.2, 3.5).

im2col turns every (C, K, K) window into a column, so a convolution is one
matrix product per group. Its backward is the transpose of each step:

    dw   = dout_g @ cols_g.T                  per group
    dcol = w_g.T @ dout_g                     per group
    dx   = col2im(dcol)                       scatter each column back, ADDING

col2im needs no kernel flip: the "full convolution with the flipped kernel"
of textbooks is exactly w.T @ dout followed by col2im.
"""
import numpy as np

from minialex.im2col import im2col_reference as im2col   # the readable one; numba's is minialex's


def col2im(cols, x_shape, KH, KW, stride, padding):
    """Adjoint of im2col: add every column back onto the window it came from.

    Shapes:  cols: (C*KH*KW, N*OH*OW), rows (c, kh, kw), columns (n, oh, ow)
             ->  dx: (N, C, H, W)
    """
    N, C, H, W = x_shape
    p, s = padding, stride
    OH, OW = (H + 2 * p - KH) // s + 1, (W + 2 * p - KW) // s + 1
    dx_pad = np.zeros((N, C, H + 2 * p, W + 2 * p), dtype=cols.dtype)
    cols = cols.reshape(C, KH, KW, N, OH, OW)                     # (C, KH, KW, N, OH, OW)
    for kh in range(KH):
        for kw in range(KW):
            # one kernel offset: its OH x OW pixels are distinct, so += on a slice is safe
            patch = cols[:, kh, kw].transpose(1, 0, 2, 3)         # (N, C, OH, OW)
            dx_pad[:, :, kh:kh + s * OH:s, kw:kw + s * OW:s] += patch
    return dx_pad[:, :, p:p + H, p:p + W]                        # drop the padding


class Conv2D:
    """Grouped 2-D convolution via im2col.

    Shapes:  x: (N, C, H, W) -> out: (N, F, OH, OW); w: (F, C/G, K, K), b: (F,)
    Paper:   Sec. 3.2 (groups = 2: each GPU's kernels see only its own half).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, groups=1):
        K = kernel_size
        rng = np.random.default_rng(0)
        self.stride, self.padding, self.groups = stride, padding, groups
        self.params = {"w": rng.standard_normal((out_channels, in_channels // groups, K, K)) * 0.01,
                       "b": np.zeros(out_channels)}
        self.grads, self.cache = {}, None

    def forward(self, x, train=True):
        w, b = self.params["w"], self.params["b"]
        N, C, H, W = x.shape
        F, Cg, K, _ = w.shape
        G, s, p = self.groups, self.stride, self.padding
        OH, OW = (H + 2 * p - K) // s + 1, (W + 2 * p - K) // s + 1
        cols = im2col(x, K, K, s, p).reshape(G, Cg * K * K, N * OH * OW)  # (G, Cg*K*K, N*OH*OW)
        w_g = w.reshape(G, F // G, Cg * K * K)                            # (G, F/G, Cg*K*K)
        out = (w_g @ cols).reshape(F, N, OH, OW).transpose(1, 0, 2, 3)    # (N, F, OH, OW)
        self.cache = (x.shape, cols)
        return out + b[None, :, None, None]

    def backward(self, dout):
        """dout: (N, F, OH, OW) -> dx: (N, C, H, W); fills self.grads["w"], self.grads["b"]."""
        x_shape, cols = self.cache
        w = self.params["w"]
        F, Cg, K, _ = w.shape
        G = self.groups
        C = x_shape[1]
        dout_g = dout.transpose(1, 0, 2, 3).reshape(G, F // G, -1)        # (G, F/G, N*OH*OW)
        w_g = w.reshape(G, F // G, Cg * K * K)                            # (G, F/G, Cg*K*K)
        self.grads["b"] = dout.sum(axis=(0, 2, 3))                        # (F,)
        self.grads["w"] = (dout_g @ cols.transpose(0, 2, 1)).reshape(w.shape)  # (F, Cg, K, K)
        dcols = (w_g.transpose(0, 2, 1) @ dout_g).reshape(C * K * K, -1)  # (C*K*K, N*OH*OW)
        self.cache = None
        return col2im(dcols, x_shape, K, K, self.stride, self.padding)   # (N, C, H, W)
