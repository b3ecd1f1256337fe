"""Fully connected layer and the flatten that feeds it (Sec. 3.5, fc6-fc8)."""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from .base import Layer, check_float, check_ndim
from .init import constant, make_rng, normal


class Linear(Layer):
    """out = x @ w + b.

    Shapes:  x: (N, in_features)  ->  out: (N, out_features)
             w: (in_features, out_features),  b: (out_features,)
    Paper:   Sec. 3.5 (fc6, fc7: 4096; fc8: 1000), Sec. 5 (init).
             Sec. 3.2: with ``towers=2`` each tower owns half of the neurons
             (fc6, fc7); fc8 is shared (``towers=1``).
    """

    tower_axes = {"w": 1, "b": 0}     # Sec. 3.2: towers divide the output neurons

    def __init__(self, in_features, out_features, rng=None, weight_std=0.01,
                 bias_init=0.0, dtype=np.float32, towers=1):
        super().__init__()
        for name, v in (("in_features", in_features), ("out_features", out_features)):
            if int(v) != v or v < 1:
                raise ValueError(f"Linear: {name} must be a positive integer, got {v!r}")
        self.in_features, self.out_features = in_features, out_features
        if towers not in (1, 2) or out_features % towers:
            raise ValueError(f"Linear: towers must be 1 or 2 and divide out_features={out_features}, "
                             f"got {towers!r}")
        self.towers = towers
        rng = make_rng(rng)
        self.params["w"] = normal((in_features, out_features), weight_std, rng, dtype)
        self.params["b"] = constant((out_features,), bias_init, dtype)
        self.grads = {"w": None, "b": None}

    def split_for_tower(self, t):
        """Tower t's neurons ``tower_slices[t]`` (Sec. 3.2); every tower reads the whole input."""
        part = super().split_for_tower(t)
        a, b = self.tower_slices[t]
        part.out_features = b - a
        return part

    def forward(self, x, train=True):
        check_ndim(x, 2, "Linear")
        check_float(x, "Linear")
        if x.shape[1] != self.in_features:
            raise ValueError(
                f"Linear: input has {x.shape[1]} features, expected in_features={self.in_features}"
            )
        self.cache = x
        return x @ self.params["w"] + self.params["b"]             # (N, out_features)

    def backward(self, dout):
        x = self.cache
        self.grads["w"] = x.T @ dout                               # (in, out)
        self.grads["b"] = dout.sum(axis=0)                         # (out,)
        dx = dout @ self.params["w"].T                             # (N, in)
        self.cache = None
        return dx


class Flatten(Layer):
    """(N, C, H, W) -> (N, C*H*W), e.g. 256x6x6 -> 9216 before fc6."""

    def forward(self, x, train=True):
        self.cache = x.shape
        return x.reshape(x.shape[0], -1)                           # (N, C*H*W)

    def backward(self, dout):
        shape = self.cache
        self.cache = None
        return dout.reshape(shape)                                 # (N, C, H, W)
