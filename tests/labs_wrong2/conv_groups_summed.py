"""expect: conv_groups [Conv2D]. dx ignores groups: every group's contribution lands in every group."""
import numpy as np

from minialex.im2col import col2im_reference as col2im
from _conv_base import ConvBase


class Conv2D(ConvBase):
    def backward(self, dout):
        x, cols = self.cache
        w = self.params["w"]
        F, Cg, K, _ = w.shape
        G = self.groups
        d = dout.transpose(1, 0, 2, 3).reshape(G, F // G, -1)
        self.grads["b"] = dout.sum(axis=(0, 2, 3))
        self.grads["w"] = (d @ cols.transpose(0, 2, 1)).reshape(w.shape)
        dcols_g = w.reshape(F, -1).T @ dout.transpose(1, 0, 2, 3).reshape(F, -1)   # (Cg*K*K, N*OH*OW)
        dcols = np.concatenate([dcols_g] * G)                                      # copied to every group
        return col2im(dcols, x.shape, K, K, self.stride, self.padding)
