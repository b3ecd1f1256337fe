"""expect: conv_kernel_flip [Conv2D]. Forward flips the kernel (a textbook convolution); backward consistent."""
import numpy as np


class Conv2D:
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, groups=1):
        self.s, self.p, self.g = stride, padding, groups
        self.params = {"w": np.zeros((out_channels, in_channels // groups, kernel_size, kernel_size)),
                       "b": np.zeros(out_channels)}
        self.grads = {}

    def forward(self, x, train=True):
        w, b = self.params["w"][:, :, ::-1, ::-1], self.params["b"]       # flip: a true convolution
        N, C, H, W = x.shape
        F, Cg, K, _ = w.shape
        s, p, G = self.s, self.p, self.g
        xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        OH, OW = (H + 2 * p - K) // s + 1, (W + 2 * p - K) // s + 1
        out = np.zeros((N, F, OH, OW))
        for f in range(F):
            g = f // (F // G)
            for i in range(OH):
                for j in range(OW):
                    patch = xp[:, g * Cg:(g + 1) * Cg, i * s:i * s + K, j * s:j * s + K]
                    out[:, f, i, j] = np.sum(patch * w[f], axis=(1, 2, 3)) + b[f]
        self.xp, self.shape = xp, x.shape
        return out

    def backward(self, dout):
        w = self.params["w"][:, :, ::-1, ::-1]
        N, C, H, W = self.shape
        F, Cg, K, _ = w.shape
        s, p, G = self.s, self.p, self.g
        dxp = np.zeros_like(self.xp)
        dw = np.zeros_like(w)
        for f in range(F):
            g = f // (F // G)
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    d = dout[:, f, i, j][:, None, None, None]
                    patch = self.xp[:, g * Cg:(g + 1) * Cg, i * s:i * s + K, j * s:j * s + K]
                    dw[f] += np.sum(patch * d, axis=0)
                    dxp[:, g * Cg:(g + 1) * Cg, i * s:i * s + K, j * s:j * s + K] += w[f] * d
        self.grads["w"] = dw[:, :, ::-1, ::-1]
        self.grads["b"] = dout.sum(axis=(0, 2, 3))
        return dxp[:, :, p:p + H, p:p + W]
