"""Nonlinearities: ReLU (Sec. 3.1) and tanh, its Figure 1 rival."""
from __future__ import annotations

from ..backend import get_array_module
from .base import Layer


class ReLU(Layer):
    """f(x) = max(0, x), the paper's non-saturating nonlinearity.

    Shapes:  x, out: any shape
    Paper:   Sec. 3.1; trains about six times faster than tanh (Figure 1).
    The gradient at exactly x = 0 is taken as 0.
    """

    def forward(self, x, train=True):
        xp = get_array_module(x)
        out = xp.maximum(x, 0)
        self.cache = out
        return out

    def backward(self, dout):
        out = self.cache
        dx = dout * (out > 0)          # a new array; dout is untouched
        self.cache = None
        return dx


class Tanh(Layer):
    """f(x) = tanh(x), the saturating baseline of Figure 1.

    Shapes:  x, out: any shape
    Paper:   Sec. 3.1.
    """

    def forward(self, x, train=True):
        xp = get_array_module(x)
        out = xp.tanh(x)
        self.cache = out
        return out

    def backward(self, dout):
        out = self.cache
        dx = dout * (1 - out * out)    # d tanh = 1 - tanh^2
        self.cache = None
        return dx
