"""expect: lrn_window [LocalResponseNorm]. Uses n maps on each side (2n+1 in all) instead of n//2."""
import numpy as np


class LocalResponseNorm:
    def __init__(self, size=5, alpha=1e-4, beta=0.75, k=2.0):
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k
        self.params, self.grads = {}, {}

    def forward(self, x, train=True):
        C = x.shape[1]
        n = self.size
        s = np.empty_like(x)
        for i in range(C):
            s[:, i] = self.k + self.alpha * (x[:, max(0, i - n):min(C, i + n + 1)] ** 2).sum(1)
        self.cache = (x, s)
        return x * s ** -self.beta

    def backward(self, dout):
        x, s = self.cache
        C = x.shape[1]
        n = self.size
        t = dout * x * s ** (-self.beta - 1)
        dx = dout * s ** -self.beta
        for j in range(C):
            dx[:, j] -= 2 * self.alpha * self.beta * x[:, j] * t[:, max(0, j - n):min(C, j + n + 1)].sum(1)
        return dx
