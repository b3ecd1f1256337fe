"""LRN with the classic slice bug: x[:, lo:hi] drops channel hi (window i-2..i+1)."""
import numpy as np

from minialex.labs.solutions.lrn import LocalResponseNorm as _Correct


class LocalResponseNorm(_Correct):
    def forward(self, x, train=True):
        C = x.shape[1]
        half = self.size // 2
        s = np.empty_like(x)
        for i in range(C):
            lo, hi = max(0, i - half), min(C, i + half)
            s[:, i] = self.k + self.alpha * (x[:, lo:hi] ** 2).sum(axis=1)   # end exclusive: off by one
        out = x * s ** (-self.beta)
        self.cache = (x, s, out)
        return out

    def backward(self, dout):
        x, s, out = self.cache
        C = x.shape[1]
        half = self.size // 2
        t = dout * out / s
        dx = dout * s ** (-self.beta)
        for j in range(C):
            lo, hi = max(0, j - half), min(C, j + half)                       # same slice in backward
            dx[:, j] -= 2 * self.alpha * self.beta * x[:, j] * t[:, lo:hi].sum(axis=1)
        return dx
