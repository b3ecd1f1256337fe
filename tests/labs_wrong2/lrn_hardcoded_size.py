"""expect: lrn_hardcoded [LocalResponseNorm]. Uses n = 5 whatever size is (fails only for n = 3)."""
import numpy as np


class LocalResponseNorm:
    def __init__(self, size=5, alpha=1e-4, beta=0.75, k=2.0):
        self.alpha, self.beta, self.k = alpha, beta, k
        self.params, self.grads = {}, {}

    def forward(self, x, train=True):
        C = x.shape[1]
        s = np.empty_like(x)
        for i in range(C):
            s[:, i] = self.k + self.alpha * (x[:, max(0, i - 2):i + 3] ** 2).sum(axis=1)
        self.x, self.s = x, s
        return x * s ** -self.beta

    def backward(self, dout):
        x, s = self.x, self.s
        C = x.shape[1]
        t = dout * x * s ** (-self.beta - 1)
        dx = dout * s ** -self.beta
        for j in range(C):
            dx[:, j] -= 2 * self.alpha * self.beta * x[:, j] * t[:, max(0, j - 2):j + 3].sum(axis=1)
        return dx
