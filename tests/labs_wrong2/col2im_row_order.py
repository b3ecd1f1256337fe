"""expect: col2im_layout [col2im]. Reads the rows as (kh, kw, c) instead of (c, kh, kw)."""
import numpy as np


def col2im(cols, x_shape, KH, KW, stride, padding):
    N, C, H, W = x_shape
    p, s = padding, stride
    OH, OW = (H + 2 * p - KH) // s + 1, (W + 2 * p - KW) // s + 1
    img = np.zeros((N, C, H + 2 * p, W + 2 * p))
    blocks = cols.reshape(KH, KW, C, N, OH, OW)           # rows taken as (kh, kw, c)
    for a in range(KH):
        for b in range(KW):
            img[:, :, a:a + s * OH:s, b:b + s * OW:s] += blocks[a, b].transpose(1, 0, 2, 3)
    return img[:, :, p:p + H, p:p + W]
