"""expect: scale_factor [Conv2D]. dw divided by the batch size (a layer's gradient sums over the batch)."""
import numpy as np

from minialex.im2col import col2im_reference as col2im
from _conv_base import ConvBase


class Conv2D(ConvBase):
    def backward(self, dout):
        x, cols = self.cache
        N = x.shape[0]
        w = self.params["w"]
        F, Cg, K, _ = w.shape
        G = self.groups
        d = dout.transpose(1, 0, 2, 3).reshape(G, F // G, -1)
        self.grads["b"] = dout.sum(axis=(0, 2, 3))
        self.grads["w"] = (d @ cols.transpose(0, 2, 1)).reshape(w.shape) / N       # average over the batch
        dcols = (w.reshape(G, F // G, -1).transpose(0, 2, 1) @ d).reshape(-1, d.shape[-1])
        return col2im(dcols, x.shape, K, K, self.stride, self.padding)
