"""expect: lrn_window [LocalResponseNorm]. Normalises by the sum over all channels instead of a window."""
import numpy as np


class LocalResponseNorm:
    def __init__(self, size=5, alpha=1e-4, beta=0.75, k=2.0):
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k
        self.params, self.grads = {}, {}

    def forward(self, x, train=True):
        s = self.k + self.alpha * np.sum(x ** 2, axis=1, keepdims=True)       # (N, 1, H, W)
        self.cache = x, s
        return x * s ** -self.beta

    def backward(self, dout):
        x, s = self.cache
        t = np.sum(dout * x * s ** (-self.beta - 1), axis=1, keepdims=True)
        return dout * s ** -self.beta - 2 * self.alpha * self.beta * x * t
