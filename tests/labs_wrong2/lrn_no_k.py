"""expect: lrn_k [LocalResponseNorm]. Forgets k in the denominator (backward consistent with it)."""
import numpy as np


class LocalResponseNorm:
    def __init__(self, size=5, alpha=1e-4, beta=0.75, k=2.0):
        self.n, self.alpha, self.beta, self.k = size, alpha, beta, k
        self.params, self.grads = {}, {}

    def _win(self, a):
        C, h = a.shape[1], self.n // 2
        return np.stack([a[:, max(0, i - h):i + h + 1].sum(axis=1) for i in range(C)], axis=1)

    def forward(self, x, train=True):
        self.x = x
        self.s = self.alpha * self._win(x * x)          # k forgotten
        return x * self.s ** -self.beta

    def backward(self, dout):
        x, s = self.x, self.s
        b = x * s ** -self.beta
        return dout * s ** -self.beta - 2 * self.alpha * self.beta * x * self._win(dout * b / s)
