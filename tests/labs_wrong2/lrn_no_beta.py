"""expect: lrn_cross_factor [LocalResponseNorm]. The cross-channel term misses beta."""
import numpy as np

from _lrn_base import lrn_scale


class LocalResponseNorm:
    def __init__(self, size=5, alpha=1e-4, beta=0.75, k=2.0):
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k
        self.params, self.grads = {}, {}

    def forward(self, x, train=True):
        self.x = x
        self.s = lrn_scale(x, self.size, self.alpha, self.k)
        return x * self.s ** -self.beta

    def backward(self, dout):
        x, s = self.x, self.s
        C, h = x.shape[1], self.size // 2
        g = dout * x * s ** (-self.beta - 1)
        dx = dout * s ** -self.beta
        for j in range(C):
            dx[:, j] -= 2 * self.alpha * x[:, j] * g[:, max(0, j - h):j + h + 1].sum(axis=1)   # beta?
        return dx
