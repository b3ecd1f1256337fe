"""Lab solution: local response normalisation, forward and backward (Sec. 3.3).

Written as a student would: a loop over channels, the window's limits spelled
out. With s_i = k + alpha * sum_{j in window(i)} a_j^2 and b_i = a_i s_i^-beta,

    dL/da_j = dout_j s_j^-beta  -  2 alpha beta a_j  sum_{i: j in window(i)} dout_i b_i / s_i

The second term is the cross-channel one: a_j sits in the denominator of
every neighbour whose window holds it. The window is symmetric, so the i
whose window holds j are window(j) itself.
"""
import numpy as np


class LocalResponseNorm:
    """b_i = a_i / (k + alpha * sum_{j=max(0,i-n/2)}^{min(C-1,i+n/2)} a_j^2)^beta.

    Shapes:  x, out: (N, C, H, W)
    Paper:   Sec. 3.3; alpha is not divided by n.
    """

    def __init__(self, size=5, alpha=1e-4, beta=0.75, k=2.0):
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k
        self.params, self.grads, self.cache = {}, {}, None

    def forward(self, x, train=True):
        N, C, H, W = x.shape
        half = self.size // 2
        sq = x * x
        s = np.empty_like(x)                                    # (N, C, H, W)
        for i in range(C):
            lo, hi = max(0, i - half), min(C - 1, i + half)     # inclusive, clipped
            s[:, i] = self.k + self.alpha * sq[:, lo:hi + 1].sum(axis=1)
        out = x * s ** (-self.beta)
        self.cache = (x, s, out)
        return out

    def backward(self, dout):
        """dout: (N, C, H, W) -> dx: (N, C, H, W). Do not modify dout."""
        x, s, out = self.cache
        C = x.shape[1]
        half = self.size // 2
        t = dout * out / s                                      # dout_i b_i / s_i, (N, C, H, W)
        dx = dout * s ** (-self.beta)                           # the i = j "direct" term
        for j in range(C):
            lo, hi = max(0, j - half), min(C - 1, j + half)     # the i whose window holds j
            dx[:, j] -= 2 * self.alpha * self.beta * x[:, j] * t[:, lo:hi + 1].sum(axis=1)
        self.cache = None
        return dx
