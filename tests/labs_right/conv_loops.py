"""Correct col2im and Conv2D written with loops over output positions (no im2col in Conv2D)."""
import numpy as np


def col2im(cols, x_shape, KH, KW, stride, padding):
    N, C, H, W = x_shape
    p, s = padding, stride
    OH, OW = (H + 2 * p - KH) // s + 1, (W + 2 * p - KW) // s + 1
    dx = np.zeros((N, C, H + 2 * p, W + 2 * p), dtype=cols.dtype)
    for n in range(N):
        for i in range(OH):
            for j in range(OW):
                col = cols[:, (n * OH + i) * OW + j].reshape(C, KH, KW)
                dx[n, :, i * s:i * s + KH, j * s:j * s + KW] += col
    return dx[:, :, p:H + p, p:W + p]


class Conv2D:
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, groups=1):
        self.stride, self.pad, self.groups = stride, padding, groups
        self.params = {"w": np.random.default_rng(1).normal(size=(out_channels, in_channels // groups,
                                                                     kernel_size, kernel_size)),
                       "b": np.zeros(out_channels)}
        self.grads = {}

    def forward(self, x, train=True):
        w, b = self.params["w"], self.params["b"]
        F, Cg, K, _ = w.shape
        N, C, H, W = x.shape
        s, p, G = self.stride, self.pad, self.groups
        xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        OH, OW = (H + 2 * p - K) // s + 1, (W + 2 * p - K) // s + 1
        out = np.empty((N, F, OH, OW))
        Fg = F // G
        for g in range(G):
            wg = w[g * Fg:(g + 1) * Fg]
            for i in range(OH):
                for j in range(OW):
                    patch = xp[:, g * Cg:(g + 1) * Cg, i * s:i * s + K, j * s:j * s + K]
                    out[:, g * Fg:(g + 1) * Fg, i, j] = np.einsum("nchw,fchw->nf", patch, wg)
        self.cache = xp, x.shape
        return out + b[:, None, None]

    def backward(self, dout):
        xp, (N, C, H, W) = self.cache
        w = self.params["w"]
        F, Cg, K, _ = w.shape
        s, p, G = self.stride, self.pad, self.groups
        Fg = F // G
        dxp, dw = np.zeros_like(xp), np.zeros_like(w)
        for g in range(G):
            wg = w[g * Fg:(g + 1) * Fg]
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    d = dout[:, g * Fg:(g + 1) * Fg, i, j]                          # (N, Fg)
                    patch = xp[:, g * Cg:(g + 1) * Cg, i * s:i * s + K, j * s:j * s + K]
                    dw[g * Fg:(g + 1) * Fg] += np.einsum("nf,nchw->fchw", d, patch)
                    dxp[:, g * Cg:(g + 1) * Cg, i * s:i * s + K, j * s:j * s + K] += np.einsum("nf,fchw->nchw", d, wg)
        self.grads = {"w": dw, "b": dout.sum(axis=(0, 2, 3))}
        return dxp[:, :, p:p + H, p:p + W]
