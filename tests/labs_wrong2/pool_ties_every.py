"""expect: pool_ties_every [MaxPool2D]. A mask `window == max` sends the gradient to every tied maximum."""
import numpy as np


class MaxPool2D:
    def __init__(self, kernel_size=3, stride=2):
        self.z, self.s = kernel_size, stride
        self.params, self.grads = {}, {}

    def forward(self, x, train=True):
        N, C, H, W = x.shape
        z, s = self.z, self.s
        OH, OW = (H - z) // s + 1, (W - z) // s + 1
        out = np.zeros((N, C, OH, OW))
        for i in range(OH):
            for j in range(OW):
                out[:, :, i, j] = np.max(x[:, :, i * s:i * s + z, j * s:j * s + z], axis=(2, 3))
        self.x, self.out = x, out
        return out

    def backward(self, dout):
        x, out, z, s = self.x, self.out, self.z, self.s
        dx = np.zeros_like(x)
        for i in range(out.shape[2]):
            for j in range(out.shape[3]):
                win = x[:, :, i * s:i * s + z, j * s:j * s + z]
                mask = win == out[:, :, i, j][:, :, None, None]
                dx[:, :, i * s:i * s + z, j * s:j * s + z] += mask * dout[:, :, i, j][:, :, None, None]
        return dx
