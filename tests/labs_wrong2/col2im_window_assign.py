"""expect: pool_overlap [col2im]. Assigns each window instead of adding (fails where windows overlap)."""
import numpy as np


def col2im(cols, x_shape, KH, KW, stride, padding):
    N, C, H, W = x_shape
    p, s = padding, stride
    OH, OW = (H + 2 * p - KH) // s + 1, (W + 2 * p - KW) // s + 1
    dx = np.zeros((N, C, H + 2 * p, W + 2 * p))
    for n in range(N):
        for i in range(OH):
            for j in range(OW):
                col = cols[:, n * OH * OW + i * OW + j].reshape(C, KH, KW)
                dx[n, :, i * s:i * s + KH, j * s:j * s + KW] = col
    return dx[:, :, p:p + H, p:p + W]
