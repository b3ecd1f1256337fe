"""expect: shape [col2im]. Crops with [p:-p], which is empty when p = 0."""
import numpy as np


def col2im(cols, x_shape, KH, KW, stride, padding):
    N, C, H, W = x_shape
    p, s = padding, stride
    OH, OW = (H + 2 * p - KH) // s + 1, (W + 2 * p - KW) // s + 1
    dxp = np.zeros((N, C, H + 2 * p, W + 2 * p))
    k = 0
    cols_t = cols.reshape(C * KH * KW, N, OH, OW)
    for c in range(C):
        for a in range(KH):
            for b in range(KW):
                dxp[:, c, a:a + s * OH:s, b:b + s * OW:s] += cols_t[k]
                k += 1
    return dxp[:, :, p:-p, p:-p]
