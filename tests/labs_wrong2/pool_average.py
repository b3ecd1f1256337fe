"""expect: pool_average [MaxPool2D]. Average pooling instead of max pooling."""
import numpy as np


class MaxPool2D:
    def __init__(self, kernel_size=3, stride=2):
        self.kernel_size, self.stride = kernel_size, stride
        self.params, self.grads = {}, {}

    def forward(self, x, train=True):
        N, C, H, W = x.shape
        z, s = self.kernel_size, self.stride
        OH, OW = (H - z) // s + 1, (W - z) // s + 1
        self.shape = x.shape
        out = np.empty((N, C, OH, OW))
        for i in range(OH):
            for j in range(OW):
                out[:, :, i, j] = x[:, :, i * s:i * s + z, j * s:j * s + z].mean(axis=(2, 3))
        return out

    def backward(self, dout):
        z, s = self.kernel_size, self.stride
        dx = np.zeros(self.shape)
        for i in range(dout.shape[2]):
            for j in range(dout.shape[3]):
                dx[:, :, i * s:i * s + z, j * s:j * s + z] += dout[:, :, i, j][:, :, None, None] / (z * z)
        return dx
