"""expect: pool_argmax_transposed [MaxPool2D]. Unravels the flat arg-max as (col, row)."""
import numpy as np


class MaxPool2D:
    def __init__(self, kernel_size=3, stride=2):
        self.k, self.st = kernel_size, stride
        self.params, self.grads = {}, {}

    def forward(self, x, train=True):
        N, C, H, W = x.shape
        k, st = self.k, self.st
        OH, OW = (H - k) // st + 1, (W - k) // st + 1
        self.x = x
        out = np.empty((N, C, OH, OW))
        for i in range(OH):
            for j in range(OW):
                out[:, :, i, j] = x[:, :, i * st:i * st + k, j * st:j * st + k].reshape(N, C, -1).max(-1)
        return out

    def backward(self, dout):
        x, k, st = self.x, self.k, self.st
        N, C, OH, OW = dout.shape
        dx = np.zeros_like(x)
        for n in range(N):
            for c in range(C):
                for i in range(OH):
                    for j in range(OW):
                        a = np.argmax(x[n, c, i * st:i * st + k, j * st:j * st + k])
                        col, row = divmod(a, k)                 # should be row, col = divmod(a, k)
                        dx[n, c, i * st + row, j * st + col] += dout[n, c, i, j]
        return dx
