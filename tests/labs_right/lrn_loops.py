"""Correct LRN written with explicit loops over every channel pair; prints while it works."""
import numpy as np


class LocalResponseNorm:
    def __init__(self, size=5, alpha=1e-4, beta=0.75, k=2.0):
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k
        self.params, self.grads = {}, {}

    def forward(self, x):
        N, C, H, W = x.shape
        half = self.size // 2
        s = np.full(x.shape, float(self.k))
        for i in range(C):
            for j in range(max(0, i - half), min(C - 1, i + half) + 1):
                s[:, i] += self.alpha * x[:, j] ** 2
        print("forward: scale range", s.min(), s.max())
        self.x, self.s = x, s
        return x / s ** self.beta

    def backward(self, dout):
        x, s = self.x, self.s
        N, C, H, W = x.shape
        half = self.size // 2
        dx = np.zeros_like(x)
        for j in range(C):
            dx[:, j] += dout[:, j] * s[:, j] ** (-self.beta)
            for i in range(max(0, j - half), min(C - 1, j + half) + 1):
                # d b_i / d a_j through s_i
                dx[:, j] += dout[:, i] * x[:, i] * (-self.beta) * s[:, i] ** (-self.beta - 1) \
                    * 2 * self.alpha * x[:, j]
        return dx
