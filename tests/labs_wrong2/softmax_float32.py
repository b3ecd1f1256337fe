"""expect: float32 [softmax_cross_entropy]. Computes in float32 ("it is faster").

The numbers are right to float32 precision, so the failure must say float32, never "kink".
"""
import numpy as np


def softmax_cross_entropy(x, y):
    x = x.astype(np.float32)
    N = x.shape[0]
    z = x - x.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    loss = -np.log(p[np.arange(N), y]).mean()
    dx = p.copy()
    dx[np.arange(N), y] -= 1
    return loss, dx / N
