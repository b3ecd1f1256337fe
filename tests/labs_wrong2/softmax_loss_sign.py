"""expect: softmax_sign [softmax_cross_entropy]. Returns the mean log-likelihood (no minus); dx is right."""
import numpy as np


def softmax_cross_entropy(x, y):
    N = x.shape[0]
    z = x - x.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    loss = np.mean(log_p[np.arange(N), y])
    dx = np.exp(log_p)
    dx[np.arange(N), y] -= 1
    return loss, dx / N
