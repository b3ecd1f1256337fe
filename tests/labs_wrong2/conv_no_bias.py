"""expect: conv_bias [Conv2D]. Forgets to add the bias in forward (db is right)."""
import numpy as np

from minialex.im2col import col2im_reference as col2im
from _conv_base import ConvBase


class Conv2D(ConvBase):
    def forward(self, x, train=True):
        return ConvBase.forward(self, x) - self.params["b"][None, :, None, None] * 1.0

    def backward(self, dout):
        x, cols = self.cache
        w = self.params["w"]
        F, Cg, K, _ = w.shape
        G = self.groups
        d = dout.transpose(1, 0, 2, 3).reshape(G, F // G, -1)
        self.grads["b"] = dout.sum(axis=(0, 2, 3))
        self.grads["w"] = (d @ cols.transpose(0, 2, 1)).reshape(w.shape)
        dcols = (w.reshape(G, F // G, -1).transpose(0, 2, 1) @ d).reshape(-1, d.shape[-1])
        return col2im(dcols, x.shape, K, K, self.stride, self.padding)
