"""expect: nonfinite [softmax_cross_entropy]. Row by row, without subtracting the maximum (fails only near 1000)."""
import math

import numpy as np


def softmax_cross_entropy(x, y):
    N, K = x.shape
    loss = 0.0
    dx = np.zeros_like(x)
    for n in range(N):
        e = [math.exp(v) if v < 700 else float("inf") for v in x[n]]
        total = sum(e)
        for k in range(K):
            dx[n, k] = e[k] / total / N
        dx[n, y[n]] -= 1 / N
        loss -= math.log(e[y[n]] / total) / N if e[y[n]] / total > 0 else -float("inf")
    return loss, dx
