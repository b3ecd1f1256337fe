"""expect: lrn_alpha_convention [LocalResponseNorm]. Divides alpha by n, as PyTorch does."""
import numpy as np


class LocalResponseNorm:
    def __init__(self, size=5, alpha=1e-4, beta=0.75, k=2.0):
        self.size, self.beta, self.k = size, beta, k
        self.alpha = alpha / size                       # copied from the PyTorch docs
        self.params, self.grads = {}, {}

    def forward(self, x):
        C = x.shape[1]
        half = self.size // 2
        padded = np.pad(x ** 2, ((0, 0), (half, half), (0, 0), (0, 0)))
        s = self.k + self.alpha * sum(padded[:, d:d + C] for d in range(2 * half + 1))
        self.cache = x, s
        return x * s ** (-self.beta)

    def backward(self, dout):
        x, s = self.cache
        C = x.shape[1]
        half = self.size // 2
        t = np.pad(dout * x * s ** (-self.beta - 1), ((0, 0), (half, half), (0, 0), (0, 0)))
        cross = sum(t[:, d:d + C] for d in range(2 * half + 1))
        return dout * s ** (-self.beta) - 2 * self.alpha * self.beta * x * cross
