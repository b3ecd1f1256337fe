"""Overlapping max pooling (Sec. 3.4)."""
from __future__ import annotations

from ..backend import get_array_module
from ..im2col import col2im_reference as col2im
from ..im2col import conv_output_size
from ..im2col import im2col_reference as im2col
from .base import Layer, check_float, check_ndim


class MaxPool2D(Layer):
    """Max over z x z windows placed every s pixels; s < z overlaps.

    Each channel is pooled on its own, so the input is viewed as N*C
    one-channel images and unrolled with im2col: every column is one window.
    Backward routes each output gradient to the arg-max of its window and
    col2im **adds** them, because with z=3, s=2 one pixel can be the max of
    up to four windows. Ties go to the first maximum in row-major window
    order, so results are deterministic.

    ``cover=False`` (the default, and AlexNet's sizes 55 -> 27 -> 13 -> 6)
    takes whole windows only, so pixels past the last whole window are not
    seen. ``cover=True`` is cuda-convnet's pooling (``outputsX=0``): windows
    go on until the last row and column are covered, the last ones partial
    (24 -> 12 -> 6 with z=3, s=2, where whole windows give 24 -> 11 -> 5).
    It pads the bottom and right with -inf, which loses to every finite
    value, pools as usual and crops the gradient back (docs/deviations.md).

    Shapes:  x: (N, C, H, W)  ->  out: (N, C, OH, OW),  OH = (H - z) // s + 1
             (cover=True: OH = ceil((H - z) / s) + 1)
    Paper:   Sec. 3.4; z=3, s=2 (overlapping) vs z=s=2 (classic).
    Backward derivation: docs/derivations.md#overlapping-max-pooling.
    """

    def __init__(self, kernel_size=3, stride=2, cover=False):
        super().__init__()
        for name, v in (("kernel_size", kernel_size), ("stride", stride)):
            if int(v) != v or v < 1:
                raise ValueError(f"MaxPool2D: {name} must be a positive integer, got {v!r}")
        if cover and stride > kernel_size:
            raise ValueError(f"MaxPool2D: cover=True needs stride <= kernel_size, got stride={stride}, "
                             f"kernel_size={kernel_size} (windows that skip pixels cannot cover the image)")
        self.kernel_size, self.stride, self.cover = kernel_size, stride, bool(cover)

    def _size(self, n):
        """Output length along an axis of length n."""
        z, s = self.kernel_size, self.stride
        if self.cover:
            return -(-(n - z) // s) + 1                            # ceil((n - z) / s) + 1
        return conv_output_size(n, z, s, 0)                        # (n - z) // s + 1

    def output_shape(self, input_shape):
        """(C, H, W) -> (C, OH, OW)."""
        C, H, W = input_shape
        return (C, self._size(H), self._size(W))

    def pad_to_cover(self, x):
        """x (N, C, H, W) -> (N, C, H', W'), -inf rows and columns added below and right so
        that the partial windows of cover=True are whole; x itself when nothing is missing."""
        if not self.cover:
            return x
        xp = get_array_module(x)
        H, W = x.shape[2], x.shape[3]
        z, s = self.kernel_size, self.stride
        ph, pw = (self._size(H) - 1) * s + z - H, (self._size(W) - 1) * s + z - W   # >= 0 with cover
        if ph == 0 and pw == 0:
            return x
        return xp.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)), constant_values=-xp.inf)

    def forward(self, x, train=True):
        xp = get_array_module(x)
        check_ndim(x, 4, "MaxPool2D")
        check_float(x, "MaxPool2D")
        N, C, H, W = x.shape
        z, s = self.kernel_size, self.stride
        if z > H or z > W:
            raise ValueError(f"MaxPool2D: kernel_size={z} is larger than the input {H}x{W}")
        _, OH, OW = self.output_shape((C, H, W))
        x_shape = x.shape
        x = self.pad_to_cover(x)                                   # (N, C, H', W'); H' = H unless cover
        N, C, H, W = x.shape
        cols = im2col(x.reshape(N * C, 1, H, W), z, z, s, 0)      # (z*z, N*C*OH*OW)
        arg = xp.argmax(cols, axis=0)                              # (N*C*OH*OW,), first max wins
        out = xp.take_along_axis(cols, arg[None, :], axis=0)       # (1, N*C*OH*OW)
        out = out.reshape(N, C, OH, OW)                            # (N, C, OH, OW)
        self.cache = (x_shape, x.shape, arg)
        return out

    def backward(self, dout):
        xp = get_array_module(dout)
        x_shape, (N, C, H, W), arg = self.cache                    # the input's shape, the padded one
        z, s = self.kernel_size, self.stride
        M = arg.shape[0]                                           # N*C*OH*OW windows
        dcols = xp.zeros((z * z, M), dtype=dout.dtype)             # (z*z, N*C*OH*OW)
        dcols[arg, xp.arange(M)] = dout.reshape(M)                 # one entry per column: no clash
        dx = col2im(dcols, (N * C, 1, H, W), z, z, s, 0)          # (N*C, 1, H, W), summed at overlaps
        self.cache = None
        dx = dx.reshape(N, C, H, W)                                # (N, C, H', W')
        return dx[:, :, :x_shape[2], :x_shape[3]]                  # (N, C, H, W): padding cropped
