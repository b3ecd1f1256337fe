"""expect: col2im_layout [col2im]. Reads the columns as (oh, ow, n) instead of (n, oh, ow)."""
import numpy as np


def col2im(cols, x_shape, KH, KW, stride, padding):
    N, C, H, W = x_shape
    s, p = stride, padding
    OH, OW = (H + 2 * p - KH) // s + 1, (W + 2 * p - KW) // s + 1
    dx = np.zeros((N, C, H + 2 * p, W + 2 * p))
    cols = cols.reshape(C, KH, KW, OH, OW, N)            # wrong: the columns are (n, oh, ow)
    for i in range(OH):
        for j in range(OW):
            dx[:, :, i * s:i * s + KH, j * s:j * s + KW] += cols[:, :, :, i, j, :].transpose(3, 0, 1, 2)
    return dx[:, :, p:p + H, p:p + W]
