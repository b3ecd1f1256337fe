"""Softmax cross-entropy without the max-subtraction: exp() overflows for large logits."""
import numpy as np


def softmax_cross_entropy(x, y):
    N = x.shape[0]
    p = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)     # inf / inf = nan near x = 1000
    loss = -np.log(p[np.arange(N), y]).mean()
    dx = p.copy()
    dx[np.arange(N), y] -= 1
    return loss, dx / N
