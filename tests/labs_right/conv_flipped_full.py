"""Correct Conv2D whose dx is the textbook 'full convolution of dout with the flipped kernel' (stride 1 only
would be wrong, so it dilates dout for stride > 1), and a col2im with np.add.at."""
import numpy as np

from minialex.im2col import im2col_reference


def col2im(cols, x_shape, KH, KW, stride, padding):
    N, C, H, W = x_shape
    p, s = padding, stride
    OH, OW = (H + 2 * p - KH) // s + 1, (W + 2 * p - KW) // s + 1
    c, kh, kw = np.unravel_index(np.arange(C * KH * KW), (C, KH, KW))
    n, oh, ow = np.unravel_index(np.arange(N * OH * OW), (N, OH, OW))
    out = np.zeros((N, C, H + 2 * p, W + 2 * p))
    np.add.at(out, (n[None, :], c[:, None], kh[:, None] + s * oh[None, :], kw[:, None] + s * ow[None, :]), cols)
    return out[:, :, p:p + H, p:p + W]


class Conv2D:
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, groups=1):
        self.stride, self.padding, self.groups = stride, padding, groups
        self.params = {"w": np.zeros((out_channels, in_channels // groups, kernel_size, kernel_size)),
                       "b": np.zeros(out_channels)}
        self.grads = {}

    def forward(self, x, train=True):
        w, b = self.params["w"], self.params["b"]
        F, Cg, K, _ = w.shape
        G = self.groups
        cols = im2col_reference(x, K, K, self.stride, self.padding)              # (C*K*K, N*OH*OW)
        N, C, H, W = x.shape
        OH = (H + 2 * self.padding - K) // self.stride + 1
        OW = (W + 2 * self.padding - K) // self.stride + 1
        outs = [w[g * (F // G):(g + 1) * (F // G)].reshape(F // G, -1) @ cols[g * Cg * K * K:(g + 1) * Cg * K * K]
                for g in range(G)]
        self.x, self.cols = x, cols
        return np.concatenate(outs).reshape(F, N, OH, OW).transpose(1, 0, 2, 3) + b.reshape(1, -1, 1, 1)

    def backward(self, dout):
        x, cols, w = self.x, self.cols, self.params["w"]
        F, Cg, K, _ = w.shape
        G, s, p = self.groups, self.stride, self.padding
        N, C, H, W = x.shape
        Fg = F // G
        d2 = dout.transpose(1, 0, 2, 3).reshape(F, -1)
        self.grads["b"] = d2.sum(axis=1)
        self.grads["w"] = np.concatenate([d2[g * Fg:(g + 1) * Fg] @ cols[g * Cg * K * K:(g + 1) * Cg * K * K].T
                                          for g in range(G)]).reshape(w.shape)
        # dx: dilate dout by the stride, pad by K-1, correlate with the flipped kernel
        OH, OW = dout.shape[2:]
        Hp, Wp = H + 2 * p, W + 2 * p
        dil = np.zeros((N, F, Hp - K + 1, Wp - K + 1))
        dil[:, :, ::s, ::s][:, :, :OH, :OW] = dout
        dpad = np.pad(dil, ((0, 0), (0, 0), (K - 1, K - 1), (K - 1, K - 1)))
        wf = w[:, :, ::-1, ::-1]
        dxp = np.zeros((N, C, Hp, Wp))
        for g in range(G):
            for a in range(Hp):
                for c in range(Wp):
                    win = dpad[:, g * Fg:(g + 1) * Fg, a:a + K, c:c + K]
                    dxp[:, g * Cg:(g + 1) * Cg, a, c] = np.einsum("nfij,fcij->nc", win, wf[g * Fg:(g + 1) * Fg])
        return dxp[:, :, p:p + H, p:p + W]
