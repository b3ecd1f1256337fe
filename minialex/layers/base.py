"""The Layer interface every minialex layer follows (STYLE.md, "A layer")."""
from __future__ import annotations

import copy

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
    towers, tower_axes :
        The two-tower contract of Sec. 3.2. ``towers`` is how many towers share
        out this layer's output units (1: not split; 2: half each), and
        ``tower_axes`` names, for each parameter, the axis that holds the
        output units (Conv2D: kernels, axis 0 of w; Linear: neurons, axis 1
        of w). Layers without parameters split nothing: ``{}``.
    """

    kernel_path = "reference"
    towers = 1
    tower_axes = {}

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

    @property
    def tower_slices(self):
        """Output-unit ranges, one per tower: [(0, F/2), (F/2, F)] for two, [(0, F)] for one."""
        if not self.tower_axes:
            return []
        key = next(iter(self.tower_axes))
        F = self.params[key].shape[self.tower_axes[key]]
        T = self.towers
        return [(t * F // T, (t + 1) * F // T) for t in range(T)]

    def tower_part(self, key, value, t):
        """Tower t's share of ``value``, an array shaped like ``params[key]`` (or its gradient):
        the slice ``tower_slices[t]`` along ``tower_axes[key]`` (a view)."""
        a, b = self.tower_slices[t]
        index = [slice(None)] * value.ndim
        index[self.tower_axes[key]] = slice(a, b)
        return value[tuple(index)]

    def split_for_tower(self, t):
        """Tower t's part of this layer (Sec. 3.2): a shallow copy holding its share of every
        parameter (views, ``tower_part``), no gradients, no cache, not split further.
        Layers whose hyper-parameters change with the split extend it."""
        part = copy.copy(self)
        part.params = {k: self.tower_part(k, v, t) for k, v in self.params.items()}
        part.grads = {k: None for k in self.params}
        part.cache = None
        part.towers = 1
        return part

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
    dt = np.dtype(x.dtype)
    if not (np.issubdtype(dt, np.floating) or dt.name == "bfloat16"):   # ml_dtypes' bfloat16 (kind "V")
        raise ValueError(f"{layer}: {what} must be a floating-point array, got dtype {x.dtype}")


def sum_dtype(dtype):
    """The dtype a layer's sums run in: float32 for a 16-bit float (float16, bfloat16), else ``dtype``.

    float16 keeps 11 significant bits and overflows above 65504, bfloat16 keeps 8:
    mixed-precision training (Micikevicius et al. 2018) stores activations in them
    but accumulates in float32, rounding once where a result is stored.
    """
    dt = np.dtype(dtype)
    return np.dtype(np.float32) if dt.itemsize < 4 else dt
