"""numba kernels for the data pipeline, and only them.

``crop_flip_shift_f32`` fuses what ``augment.TrainTransform`` does in several
NumPy passes (float conversion, mean subtraction, zero padding, random crop,
reflection, PCA colour shift) into one pass over the output. It is tested to
agree exactly with the readable path. It runs single-threaded with the GIL
released (``nogil``): the loader calls it from its background thread while
the training thread runs its own (possibly parallel) kernels, and a
``parallel=True`` kernel here could collide with those in numba's thread pool.
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(nogil=True, cache=True)
def crop_flip_shift_f32(x, mean, top, left, flip, shift, pad, out):
    # x: (N, C, H, W) uint8; mean: (C, H, W) float32; top, left: (N,) offsets in the padded image;
    # flip: (N,) bool; shift: (N, C) float32; out: (N, C, SH, SW) float32, written fully:
    # out[n, c, i, j] = (x[n, c, h, w] - mean[c, h, w]) + shift[n, c], 0 + shift where (h, w) is padding,
    # h = top[n] + i - pad, w = left[n] + (SW - 1 - j if flip[n] else j) - pad.
    N, C, H, W = x.shape
    SH, SW = out.shape[2], out.shape[3]
    for n in range(N):
        for c in range(C):
            s = shift[n, c]
            for i in range(SH):
                h = top[n] + i - pad
                if h < 0 or h >= H:
                    for j in range(SW):
                        out[n, c, i, j] = s
                    continue
                for j in range(SW):
                    jj = SW - 1 - j if flip[n] else j
                    w = left[n] + jj - pad
                    if w < 0 or w >= W:
                        out[n, c, i, j] = s
                    else:  # float32 arithmetic step by step, exactly as the NumPy path rounds
                        d = np.float32(np.float32(x[n, c, h, w]) - mean[c, h, w])
                        out[n, c, i, j] = np.float32(d + s)
