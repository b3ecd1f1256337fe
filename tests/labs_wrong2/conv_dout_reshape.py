"""expect: conv_layout [Conv2D]. dw reshapes dout (N, F, OH, OW) to (F, -1) without bringing F first."""
import numpy as np

from minialex.im2col import col2im_reference as col2im
from _conv_base import ConvBase


class Conv2D(ConvBase):
    def backward(self, dout):
        x, cols = self.cache
        w = self.params["w"]
        F, Cg, K, _ = w.shape
        G = self.groups
        self.grads["b"] = dout.sum(axis=(0, 2, 3))
        d_wrong = dout.reshape(G, F // G, -1)                              # samples and kernels mixed
        self.grads["w"] = (d_wrong @ cols.transpose(0, 2, 1)).reshape(w.shape)
        d = dout.transpose(1, 0, 2, 3).reshape(G, F // G, -1)
        dcols = (w.reshape(G, F // G, -1).transpose(0, 2, 1) @ d).reshape(-1, d.shape[-1])
        return col2im(dcols, x.shape, K, K, self.stride, self.padding)
