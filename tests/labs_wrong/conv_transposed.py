"""Conv whose backward uses the kernel with its h and w axes swapped."""
from minialex.labs.solutions.conv import Conv2D as _Correct
from minialex.labs.solutions.conv import col2im


class Conv2D(_Correct):
    def backward(self, dout):
        x_shape, cols = self.cache
        w = self.params["w"]
        F, Cg, K, _ = w.shape
        G, C = self.groups, x_shape[1]
        dout_g = dout.transpose(1, 0, 2, 3).reshape(G, F // G, -1)
        self.grads["b"] = dout.sum(axis=(0, 2, 3))
        self.grads["w"] = (dout_g @ cols.transpose(0, 2, 1)).reshape(w.shape)
        w_g = w.transpose(0, 1, 3, 2).reshape(G, F // G, Cg * K * K)      # kh and kw swapped
        dcols = (w_g.transpose(0, 2, 1) @ dout_g).reshape(C * K * K, -1)
        return col2im(dcols, x_shape, K, K, self.stride, self.padding)
