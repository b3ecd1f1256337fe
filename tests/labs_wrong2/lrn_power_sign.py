"""expect: lrn_beta [LocalResponseNorm]. Multiplies by s^beta instead of dividing (both passes)."""
import numpy as np

from _lrn_base import lrn_scale


class LocalResponseNorm:
    def __init__(self, size=5, alpha=1e-4, beta=0.75, k=2.0):
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k
        self.params, self.grads = {}, {}

    def forward(self, x, train=True):
        self.x, self.s = x, lrn_scale(x, self.size, self.alpha, self.k)
        return x * self.s ** self.beta

    def backward(self, dout):
        x, s = self.x, self.s
        C, h = x.shape[1], self.size // 2
        t = dout * x * s ** (self.beta - 1)
        cross = np.stack([t[:, max(0, j - h):j + h + 1].sum(1) for j in range(C)], axis=1)
        return dout * s ** self.beta + 2 * self.alpha * self.beta * x * cross
