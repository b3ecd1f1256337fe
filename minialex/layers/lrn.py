"""Local response normalisation across kernel maps (Sec. 3.3)."""
from __future__ import annotations

import numpy as np

from .base import Layer, check_float, check_ndim, sum_dtype

ALPHA_CONVENTIONS = ("paper", "pytorch")


def window_sum(a, half):
    """Sum of ``a`` over channels i-half .. i+half, clipped at 0 and C-1 (the paper's max/min limits).

    Shapes:  a, out: (N, C, H, W)
    """
    C = a.shape[1]
    s = a.copy()                                   # the d = 0 term, in a's dtype
    for d in range(1, min(half, C - 1) + 1):
        s[:, :C - d] += a[:, d:]                   # neighbour above: channel i + d
        s[:, d:] += a[:, :C - d]                   # neighbour below: channel i - d
    return s


class LocalResponseNorm(Layer):
    """Brightness normalisation across adjacent kernel maps.

        b_i = a_i / (k + alpha * sum_{j=max(0, i-n/2)}^{min(C-1, i+n/2)} a_j^2) ** beta

    Shapes:  x, out: (N, C, H, W)
    Paper:   Sec. 3.3; k=2, n=5, alpha=1e-4, beta=0.75, after ReLU in conv1/conv2.
             n/2 is integer division: the window holds 2*(n//2)+1 maps, clipped at the ends.
             alpha is NOT divided by n; ``alpha_convention="pytorch"`` divides it, as
             PyTorch and Caffe do (docs/deviations.md).
    Backward derivation: docs/derivations.md#local-response-normalisation.

    ``groups=G`` normalises each of G channel groups on its own, as the paper's
    two-GPU code did (docs/deviations.md, item 18); ``groups=1`` is the formula.

    Precision: for a float16/bfloat16 x (``--precision fp16|bf16``) the squares,
    their window sum, the bracket and its power are computed in float32
    (``sum_dtype``; float16's x*x overflows from |x| = 256 on), and out and dx
    are rounded once to the 16-bit type; the cached scale stays float32.
    float32 and float64 compute in their own type.
    """

    def __init__(self, size=5, alpha=1e-4, beta=0.75, k=2.0, alpha_convention="paper", groups=1):
        super().__init__()
        for name, v in (("groups", groups), ("size", size)):
            if int(v) != v or v < 1:
                raise ValueError(f"LocalResponseNorm: {name} must be a positive integer, got {v!r}")
        if alpha_convention not in ALPHA_CONVENTIONS:
            raise ValueError(f"LocalResponseNorm: alpha_convention must be one of {ALPHA_CONVENTIONS}, "
                             f"got {alpha_convention!r}")
        if k <= 0:
            raise ValueError(f"LocalResponseNorm: k must be > 0 so the denominator is positive, got {k!r}")
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k
        self.alpha_convention, self.groups = alpha_convention, groups

    @property
    def coeff(self):
        """The factor in front of the sum: alpha (paper) or alpha/n (PyTorch, Caffe)."""
        return self.alpha if self.alpha_convention == "paper" else self.alpha / self.size

    def forward(self, x, train=True):
        check_ndim(x, 4, "LocalResponseNorm")
        check_float(x, "LocalResponseNorm")
        N, C, H, W = x.shape
        G = self.groups
        if C % G:
            raise ValueError(f"LocalResponseNorm: groups={G} must divide the {C} input channels")
        out = self._forward(x.reshape(N * G, C // G, H, W))      # (N*G, C/G, H, W): each group alone
        return out.reshape(N, C, H, W)

    def backward(self, dout):
        N, C, H, W = dout.shape
        dx = self._backward(dout.reshape(N * self.groups, C // self.groups, H, W))  # (N*G, C/G, H, W)
        return dx.reshape(N, C, H, W)

    def _forward(self, x):
        a = x.astype(sum_dtype(x.dtype), copy=False)                      # float32 if x is 16-bit, else x
        scale = self.k + self.coeff * window_sum(a * a, self.size // 2)   # (N, C, H, W), >= k > 0
        out = (a * scale ** (-self.beta)).astype(x.dtype, copy=False)    # rounded once to x's type
        self.cache = (x, scale, out)
        return out

    def _backward(self, dout):
        # dL/da_j = dout_j s_j^-beta - 2 alpha beta a_j sum_{i: j in window(i)} dout_i b_i / s_i;
        # the window is symmetric, so "i whose window holds j" is window(j).
        x, scale, out = self.cache
        g = dout.astype(sum_dtype(dout.dtype), copy=False)                # float32 if dout is 16-bit
        dx = g * scale ** (-self.beta)
        dx -= (2 * self.coeff * self.beta) * x * window_sum(g * out / scale, self.size // 2)
        self.cache = None
        return dx.astype(np.result_type(x.dtype, dout.dtype), copy=False)  # the inputs' type, as without g
