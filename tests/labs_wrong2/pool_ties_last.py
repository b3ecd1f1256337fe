"""expect: pool_ties_last [MaxPool2D]. Keeps the last maximum of each window (>= while scanning)."""
import numpy as np


class MaxPool2D:
    def __init__(self, kernel_size=3, stride=2):
        self.kernel_size, self.stride = kernel_size, stride
        self.params, self.grads = {}, {}

    def forward(self, x, train=True):
        N, C, H, W = x.shape
        z, s = self.kernel_size, self.stride
        OH, OW = (H - z) // s + 1, (W - z) // s + 1
        out = np.full((N, C, OH, OW), -np.inf)
        arg = np.zeros((N, C, OH, OW, 2), dtype=int)
        for i in range(OH):
            for j in range(OW):
                for a in range(z):
                    for b in range(z):
                        v = x[:, :, i * s + a, j * s + b]
                        better = v >= out[:, :, i, j]           # >= keeps the LAST maximum
                        out[:, :, i, j] = np.where(better, v, out[:, :, i, j])
                        arg[:, :, i, j, 0] = np.where(better, i * s + a, arg[:, :, i, j, 0])
                        arg[:, :, i, j, 1] = np.where(better, j * s + b, arg[:, :, i, j, 1])
        self.cache = (x.shape, arg)
        return out

    def backward(self, dout):
        shape, arg = self.cache
        dx = np.zeros(shape)
        N, C, OH, OW = dout.shape
        for n in range(N):
            for c in range(C):
                for i in range(OH):
                    for j in range(OW):
                        r, q = arg[n, c, i, j]
                        dx[n, c, r, q] += dout[n, c, i, j]
        return dx
