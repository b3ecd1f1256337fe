"""Local response normalisation across kernel maps (Sec. 3.3)."""
from __future__ import annotations

from ..backend import get_array_module, use_cuda, use_numba
from .base import Layer, check_float, check_ndim

ALPHA_CONVENTIONS = ("paper", "pytorch")


def window_sum(a, half):
    """Sum of ``a`` over channels i-half .. i+half, clipped at 0 and C-1.

    This is the sum in the paper's formula, with its max(0, .) and
    min(N-1, .) limits: channels outside the layer simply contribute nothing.

    Shapes:  a, out: (N, C, H, W)
    """
    C = a.shape[1]
    s = a.copy()                                   # the d = 0 term, in a's dtype
    for d in range(1, half + 1):
        if d >= C:
            break
        s[:, :C - d] += a[:, d:]                   # neighbour above: channel i + d
        s[:, d:] += a[:, :C - d]                   # neighbour below: channel i - d
    return s


class LocalResponseNorm(Layer):
    """Brightness normalisation across adjacent kernel maps.

        b_i = a_i / (k + alpha * sum_{j=max(0, i-n/2)}^{min(C-1, i+n/2)} a_j^2) ** beta

    Shapes:  x, out: (N, C, H, W)
    Paper:   Sec. 3.3; k=2, n=5, alpha=1e-4, beta=0.75, after ReLU in conv1/conv2.
             n/2 is integer division, so the window holds 2*(n//2)+1 maps
             (5 for n=5) and is clipped at the first and last channel.
             alpha is NOT divided by n (``alpha_convention="paper"``).
             PyTorch's ``LocalResponseNorm`` and Caffe divide alpha by n; pass
             ``alpha_convention="pytorch"`` to get theirs: the paper's layer
             equals theirs with alpha' = n * alpha. See docs/deviations.md.
    Backward derivation: docs/derivations.md#local-response-normalisation.

    The NumPy code below is the readable path. On NumPy arrays with numba
    active (``impl``, env ``MINIALEX_KERNELS``; see ``minialex.im2col``) one
    loop kernel per pass runs instead (``minialex.kernels._numba.lrn_forward`` /
    ``lrn_backward``); it keeps only x for backward and recomputes the scale.

    ``groups=G`` normalises each of G equal channel groups on its own: the
    window is clipped at the group's first and last map as well. ``groups=2``
    is what the paper's two-GPU code did (each GPU normalised its own 48 or
    128 maps); ``groups=1`` (default) is the formula as printed, with N the
    layer's kernel count. See docs/deviations.md, item 18.
    """

    def __init__(self, size=5, alpha=1e-4, beta=0.75, k=2.0, alpha_convention="paper", impl="auto",
                 groups=1):
        super().__init__()
        if int(groups) != groups or groups < 1:
            raise ValueError(f"LocalResponseNorm: groups must be a positive integer, got {groups!r}")
        self.groups = groups
        if int(size) != size or size < 1:
            raise ValueError(f"LocalResponseNorm: size must be a positive integer, got {size!r}")
        if alpha_convention not in ALPHA_CONVENTIONS:
            raise ValueError(
                f"LocalResponseNorm: alpha_convention must be one of {ALPHA_CONVENTIONS}, "
                f"got {alpha_convention!r}"
            )
        if k <= 0:
            raise ValueError(f"LocalResponseNorm: k must be > 0 so the denominator is positive, got {k!r}")
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k
        self.alpha_convention = alpha_convention
        self.impl = impl

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
        if G == 1:
            return self._forward(x)
        out = self._forward(x.reshape(N * G, C // G, H, W))      # (N*G, C/G, H, W): each group alone
        return out.reshape(N, C, H, W)                           # (N, C, H, W)

    def backward(self, dout):
        G = self.groups
        if G == 1:
            return self._backward(dout)
        N, C, H, W = dout.shape
        dx = self._backward(dout.reshape(N * G, C // G, H, W))   # (N*G, C/G, H, W)
        return dx.reshape(N, C, H, W)                            # (N, C, H, W)

    def _forward(self, x):
        half = self.size // 2
        if use_numba(get_array_module(x), self.impl):
            from ..kernels import _numba
            out = _numba.lrn_forward(x, half, self.k, self.coeff, self.beta)  # (N, C, H, W)
            self.cache = (x, None, None)                          # scale is recomputed in backward
            return out
        if use_cuda(get_array_module(x), self.impl):
            from ..kernels import _cuda
            out, scale = _cuda.lrn_forward(x, self.size, self.coeff, self.beta, self.k)
            self.cache = (x, scale, out)
            return out
        scale = self.k + self.coeff * window_sum(x * x, half)     # (N, C, H, W), >= k > 0
        out = x * scale ** (-self.beta)
        self.cache = (x, scale, out)
        return out

    def _backward(self, dout):
        # dL/da_j = dout_j * s_j^-beta
        #           - 2 alpha beta a_j * sum_{i: j in window(i)} dout_i b_i / s_i
        # The window is symmetric, so "i whose window holds j" is window(j).
        x, scale, out = self.cache
        half = self.size // 2
        if scale is None:                                          # fast path (see forward)
            from ..kernels import _numba
            dx = _numba.lrn_backward(x, dout, half, self.k, self.coeff, self.beta)
            self.cache = None
            return dx
        if use_cuda(get_array_module(dout), self.impl):
            from ..kernels import _cuda
            dx = _cuda.lrn_backward(dout, x, scale, out, self.size, self.coeff, self.beta)
            self.cache = None
            return dx
        dx = dout * scale ** (-self.beta)
        dx -= (2 * self.coeff * self.beta) * x * window_sum(dout * out / scale, half)
        self.cache = None
        return dx
