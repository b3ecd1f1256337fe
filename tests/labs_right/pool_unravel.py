"""Correct max-pool, one window at a time with np.unravel_index (ties: argmax's first maximum)."""
import numpy as np


class MaxPool2D:
    def __init__(self, kernel_size=3, stride=2):
        self.kernel_size, self.stride = kernel_size, stride
        self.params, self.grads = {}, {}

    def forward(self, x, train=True):
        N, C, H, W = x.shape
        k, s = self.kernel_size, self.stride
        OH, OW = 1 + (H - k) // s, 1 + (W - k) // s
        out = np.zeros((N, C, OH, OW), dtype=x.dtype)
        self.x = x.copy()
        for n in range(N):
            for c in range(C):
                for i in range(OH):
                    for j in range(OW):
                        out[n, c, i, j] = np.max(x[n, c, i * s:i * s + k, j * s:j * s + k])
        return out

    def backward(self, dout):
        x = self.x
        k, s = self.kernel_size, self.stride
        dx = np.zeros_like(x)
        N, C, OH, OW = dout.shape
        for n in range(N):
            for c in range(C):
                for i in range(OH):
                    for j in range(OW):
                        win = x[n, c, i * s:i * s + k, j * s:j * s + k]
                        a, b = np.unravel_index(np.argmax(win), win.shape)
                        dx[n, c, i * s + a, j * s + b] += dout[n, c, i, j]
        return dx
