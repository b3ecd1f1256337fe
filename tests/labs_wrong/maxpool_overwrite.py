"""Max-pool whose backward assigns the gradient instead of adding it."""
import numpy as np

from minialex.labs.solutions.maxpool import MaxPool2D as _Correct


class MaxPool2D(_Correct):
    def backward(self, dout):
        x = self.cache
        N, C, H, W = x.shape
        z, s = self.kernel_size, self.stride
        dx = np.zeros_like(x)
        for i in range(dout.shape[2]):
            for j in range(dout.shape[3]):
                window = x[:, :, i * s:i * s + z, j * s:j * s + z].reshape(N, C, z * z)
                arg = window.argmax(axis=2)
                n, c = np.meshgrid(np.arange(N), np.arange(C), indexing="ij")
                dx[n, c, i * s + arg // z, j * s + arg % z] = dout[:, :, i, j]   # overwrites at overlaps
        return dx
