"""expect: softmax_label [softmax_cross_entropy]. `dx[:, y] -= 1` hits the labels of all rows in every row."""
import numpy as np


def softmax_cross_entropy(x, y):
    N = x.shape[0]
    z = x - x.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    loss = -np.log(p[np.arange(N), y]).mean()
    dx = p.copy()
    dx[:, y] -= 1
    return loss, dx / N
