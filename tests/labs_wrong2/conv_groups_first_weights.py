"""expect: conv_groups [Conv2D]. dx uses group 0's kernels for every group (fails only with groups > 1)."""
import numpy as np

from minialex.im2col import col2im_reference as col2im
from _conv_base import ConvBase


class Conv2D(ConvBase):
    def backward(self, dout):
        x, cols = self.cache
        w = self.params["w"]
        F, Cg, K, _ = w.shape
        G = self.groups
        d = dout.transpose(1, 0, 2, 3).reshape(G, F // G, -1)            # (G, F/G, N*OH*OW)
        self.grads["b"] = dout.sum(axis=(0, 2, 3))
        self.grads["w"] = (d @ cols.transpose(0, 2, 1)).reshape(w.shape)
        w0 = w[:F // G].reshape(F // G, -1)                                # group 0 only
        dcols = np.concatenate([w0.T @ d[g] for g in range(G)])
        return col2im(dcols, x.shape, K, K, self.stride, self.padding)
