"""LRN whose backward sums the window with np.roll: it wraps around at the edges."""
import numpy as np

from minialex.labs.solutions.lrn import LocalResponseNorm as _Correct


class LocalResponseNorm(_Correct):
    def backward(self, dout):
        x, s, out = self.cache
        half = self.size // 2
        t = dout * out / s
        tsum = sum(np.roll(t, d, axis=1) for d in range(-half, half + 1))   # wraps C-1 -> 0
        return dout * s ** (-self.beta) - 2 * self.alpha * self.beta * x * tsum
