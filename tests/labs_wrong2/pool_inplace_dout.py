"""expect: mutates_input [MaxPool2D]. Right numbers, but backward zeroes dout afterwards "to free memory"."""
import numpy as np


class MaxPool2D:
    def __init__(self, kernel_size=3, stride=2):
        self.kernel_size, self.stride = kernel_size, stride
        self.params, self.grads = {}, {}

    def forward(self, x, train=True):
        N, C, H, W = x.shape
        z, s = self.kernel_size, self.stride
        OH, OW = (H - z) // s + 1, (W - z) // s + 1
        out = np.empty((N, C, OH, OW))
        for i in range(OH):
            for j in range(OW):
                out[:, :, i, j] = x[:, :, i * s:i * s + z, j * s:j * s + z].max(axis=(2, 3))
        self.x = x
        return out

    def backward(self, dout):
        x = self.x
        N, C, H, W = x.shape
        z, s = self.kernel_size, self.stride
        dx = np.zeros_like(x)
        for i in range(dout.shape[2]):
            for j in range(dout.shape[3]):
                w = x[:, :, i * s:i * s + z, j * s:j * s + z].reshape(N, C, -1)
                m = (np.arange(z * z) == w.argmax(-1)[..., None]).reshape(N, C, z, z)
                dx[:, :, i * s:i * s + z, j * s:j * s + z] += m * dout[:, :, i, j][..., None, None]
        dout.fill(0)                                      # "free memory"
        return dx
