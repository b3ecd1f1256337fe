"""Lab solution: overlapping max-pooling, forward and backward (Sec. 3.4).

Each output's gradient goes to the arg-max of its window; when several
entries tie for the maximum (ReLU outputs are full of zeros), to the FIRST in
row-major order, which is what ``np.argmax`` returns and what minialex's
``MaxPool2D`` does. With z=3, s=2 windows overlap, so one input pixel can receive gradient from up to four
windows: backward must ADD (`+=` on a slice, one window at a time), never
overwrite.
"""
import numpy as np


class MaxPool2D:
    """Max over z x z windows every s pixels.

    Shapes:  x: (N, C, H, W)  ->  out: (N, C, OH, OW),  OH = (H - z) // s + 1
    Paper:   Sec. 3.4; z=3, s=2.
    """

    def __init__(self, kernel_size=3, stride=2):
        self.kernel_size, self.stride = kernel_size, stride
        self.params, self.grads, self.cache = {}, {}, None

    def forward(self, x, train=True):
        N, C, H, W = x.shape
        z, s = self.kernel_size, self.stride
        OH, OW = (H - z) // s + 1, (W - z) // s + 1
        out = np.empty((N, C, OH, OW), dtype=x.dtype)
        for i in range(OH):
            for j in range(OW):
                out[:, :, i, j] = x[:, :, i * s:i * s + z, j * s:j * s + z].max(axis=(2, 3))
        self.cache = x
        return out

    def backward(self, dout):
        """dout: (N, C, OH, OW) -> dx: (N, C, H, W). A tie goes to the first maximum (np.argmax)."""
        x = self.cache
        N, C, H, W = x.shape
        z, s = self.kernel_size, self.stride
        OH, OW = dout.shape[2], dout.shape[3]
        dx = np.zeros_like(x)
        for i in range(OH):
            for j in range(OW):
                window = x[:, :, i * s:i * s + z, j * s:j * s + z].reshape(N, C, z * z)  # (N, C, z*z)
                arg = window.argmax(axis=2)                                             # (N, C)
                mask = np.arange(z * z) == arg[:, :, None]                              # (N, C, z*z)
                grad = mask * dout[:, :, i, j][:, :, None]                              # (N, C, z*z)
                dx[:, :, i * s:i * s + z, j * s:j * s + z] += grad.reshape(N, C, z, z)  # ADD: windows overlap
        self.cache = None
        return dx
