"""The Layer interface every minialex layer follows (STYLE.md, "A layer")."""
from __future__ import annotations

import numpy as np


class Layer:
    """A differentiable layer with explicit forward and backward passes.

    Attributes
    ----------
    params : dict
        name -> array, e.g. ``{'w': ..., 'b': ...}``; ``{}`` for layers without
        parameters. The optimizer updates these arrays in place.
    grads : dict
        Same keys as ``params``, filled by ``backward``.
    cache : tuple or None
        What ``backward`` needs from ``forward``; released after ``backward``.
    kernel_path : str
        Which code runs: "reference" for the readable layers here; the fast
        twins in ``minialex.kernels`` say "numba" or "cuda".
    """

    kernel_path = "reference"

    def __init__(self):
        self.params = {}
        self.grads = {}
        self.cache = None

    def forward(self, x, train=True):  # pragma: no cover - interface
        """Return the layer output; keep what backward needs in ``self.cache``."""
        raise NotImplementedError

    def backward(self, dout):  # pragma: no cover - interface
        """Return dL/dx for upstream gradient ``dout``; fill ``self.grads``.

        ``dout`` is never modified in place.
        """
        raise NotImplementedError

    def __call__(self, x, train=True):
        return self.forward(x, train=train)

    def zero_grad(self):
        for k in self.grads:
            self.grads[k] = None

    def __repr__(self):
        shapes = ", ".join(f"{k}={tuple(v.shape)}" for k, v in self.params.items())
        return f"{type(self).__name__}({shapes})"


def check_ndim(x, ndim, layer, what="x"):
    """Raise ValueError unless ``x`` has ``ndim`` dimensions (no silent broadcast)."""
    if x.ndim != ndim:
        raise ValueError(
            f"{layer}: {what} must be {ndim}-D, got {x.ndim}-D array of shape {tuple(x.shape)}"
        )


def check_float(x, layer, what="x"):
    """Raise ValueError unless ``x`` is a floating-point array."""
    if not np.issubdtype(np.dtype(x.dtype), np.floating):
        raise ValueError(f"{layer}: {what} must be a floating-point array, got dtype {x.dtype}")
