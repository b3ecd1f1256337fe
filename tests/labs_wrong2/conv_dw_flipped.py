"""expect: conv_kernel_flip [Conv2D]. dw computed as a 'convolution' with dout, so it comes out rotated."""
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
        dw = (d @ cols.transpose(0, 2, 1)).reshape(w.shape)
        self.grads["w"] = dw[:, :, ::-1, ::-1]                  # "the kernel is flipped in a convolution"
        dcols = (w.reshape(G, F // G, -1).transpose(0, 2, 1) @ d).reshape(-1, d.shape[-1])
        return col2im(dcols, x.shape, K, K, self.stride, self.padding)
