"""col2im that assigns with fancy indexing: repeated indices keep only one value."""
import numpy as np


def col2im(cols, x_shape, KH, KW, stride, padding):
    N, C, H, W = x_shape
    p, s = padding, stride
    OH, OW = (H + 2 * p - KH) // s + 1, (W + 2 * p - KW) // s + 1
    dx_pad = np.zeros((N, C, H + 2 * p, W + 2 * p))
    c = np.repeat(np.arange(C), KH * KW)[:, None]
    kh = np.tile(np.repeat(np.arange(KH), KW), C)[:, None]
    kw = np.tile(np.arange(KW), C * KH)[:, None]
    h = kh + s * np.repeat(np.arange(OH), OW)[None, :]
    w = kw + s * np.tile(np.arange(OW), OH)[None, :]
    cols_n = cols.reshape(C * KH * KW, N, OH * OW).transpose(1, 0, 2)
    dx_pad[:, c, h, w] += cols_n          # buffered: repeated (c, h, w) keep only the last
    return dx_pad[:, :, p:p + H, p:p + W]
