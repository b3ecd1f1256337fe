"""expect: pool_ties_split [MaxPool2D]. Splits a window's gradient among its tied maxima."""
import numpy as np


class MaxPool2D:
    def __init__(self, kernel_size=3, stride=2):
        self.kernel_size, self.stride = kernel_size, stride
        self.params, self.grads = {}, {}

    def forward(self, x, train=True):
        z, s = self.kernel_size, self.stride
        N, C, H, W = x.shape
        OH, OW = (H - z) // s + 1, (W - z) // s + 1
        out = np.stack([np.stack([x[:, :, i * s:i * s + z, j * s:j * s + z].max(axis=(2, 3))
                                  for j in range(OW)], -1) for i in range(OH)], -2)
        self.x, self.out = x, out
        return out

    def backward(self, dout):
        x, out = self.x, self.out
        z, s = self.kernel_size, self.stride
        dx = np.zeros_like(x)
        for i in range(out.shape[2]):
            for j in range(out.shape[3]):
                win = x[:, :, i * s:i * s + z, j * s:j * s + z]
                mask = (win == out[:, :, i:i + 1, j:j + 1]).astype(float)
                mask /= mask.sum(axis=(2, 3), keepdims=True)        # share the gradient fairly
                dx[:, :, i * s:i * s + z, j * s:j * s + z] += mask * dout[:, :, i:i + 1, j:j + 1]
        return dx
