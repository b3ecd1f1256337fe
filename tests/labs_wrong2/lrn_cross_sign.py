"""expect: lrn_cross_sign [LocalResponseNorm]. The cross-channel term is added, not subtracted."""
import numpy as np


class LocalResponseNorm:
    def __init__(self, size=5, alpha=1e-4, beta=0.75, k=2.0):
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k
        self.params, self.grads = {}, {}

    def forward(self, x, train=True):
        N, C, H, W = x.shape
        h = self.size // 2
        sq = x ** 2
        s = np.zeros_like(x)
        for c in range(C):
            s[:, c] = self.k + self.alpha * np.sum(sq[:, max(0, c - h):min(C, c + h + 1)], axis=1)
        self.x, self.s = x, s
        self.out = x / s ** self.beta
        return self.out

    def backward(self, dout):
        x, s, out = self.x, self.s, self.out
        C = x.shape[1]
        h = self.size // 2
        r = dout * out / s
        dx = dout / s ** self.beta
        for c in range(C):
            dx[:, c] += 2 * self.alpha * self.beta * x[:, c] * r[:, max(0, c - h):min(C, c + h + 1)].sum(axis=1)
        return dx
