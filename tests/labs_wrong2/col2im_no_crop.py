"""expect: shape [col2im]. Returns the padded image (fails only in the cases with padding)."""
import numpy as np


def col2im(cols, x_shape, KH, KW, stride, padding):
    N, C, H, W = x_shape
    OH = (H + 2 * padding - KH) // stride + 1
    OW = (W + 2 * padding - KW) // stride + 1
    out = np.zeros((N, C, H + 2 * padding, W + 2 * padding))
    c6 = cols.reshape(C, KH, KW, N, OH, OW)
    for a in range(KH):
        for b in range(KW):
            out[:, :, a:a + stride * OH:stride, b:b + stride * OW:stride] += c6[:, a, b].transpose(1, 0, 2, 3)
    return out
