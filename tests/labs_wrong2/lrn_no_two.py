"""expect: lrn_cross_factor [LocalResponseNorm]. d(a^2)/da = a: the 2 is missing."""
import numpy as np

from _lrn_base import lrn_scale


class LocalResponseNorm:
    def __init__(self, size=5, alpha=1e-4, beta=0.75, k=2.0):
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k
        self.params, self.grads = {}, {}

    def forward(self, x, train=True):
        s = lrn_scale(x, self.size, self.alpha, self.k)
        out = x * s ** -self.beta
        self.cache = x, s, out
        return out

    def backward(self, dout):
        x, s, out = self.cache
        C, h = x.shape[1], self.size // 2
        ratio = dout * out / s
        dx = dout * s ** -self.beta
        for j in range(C):
            window = ratio[:, max(0, j - h):min(C - 1, j + h) + 1].sum(axis=1)
            dx[:, j] = dx[:, j] - self.alpha * self.beta * x[:, j] * window
        return dx
