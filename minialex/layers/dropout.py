"""Dropout (Sec. 4.2), in the paper's form and the inverted form."""
from __future__ import annotations

from ..backend import get_array_module
from .base import Layer
from .init import make_rng

MODES = ("paper", "inverted")


class Dropout(Layer):
    """Zero each unit with probability p during training.

    mode="paper" (default): train ``out = x * mask``; test ``out = x * (1 - p)``
        ("multiply their outputs by 0.5", Sec. 4.2).
    mode="inverted": train ``out = x * mask / (1 - p)``; test ``out = x``.
        Same expected activations, no work at test time; what most frameworks do.

    Randomness comes from ``rng`` (a ``numpy.random.Generator`` or a seed), so
    runs reproduce: the mask is ``rng.random(shape) >= p``, drawn on the host.
    (The fast GPU twin, ``minialex.kernels.dropout``, makes it on the device
    from one seed instead: docs/deviations.md 21.) ``freeze(mask)`` pins a
    mask, e.g. for a gradient check; ``unfreeze()`` returns to fresh masks.

    Shapes:  x, out, mask: any shape, mask of 0/1 in x's dtype
    Paper:   Sec. 4.2; p=0.5 in fc6 and fc7.
    """

    def __init__(self, p=0.5, mode="paper", rng=None):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p!r}")
        if mode not in MODES:
            raise ValueError(f"Dropout: mode must be one of {MODES}, got {mode!r}")
        self.p, self.mode = p, mode
        self.rng = make_rng(rng)
        self.frozen_mask = None

    def freeze(self, mask):
        """Use ``mask`` (0/1, x's shape) on every training forward until unfreeze()."""
        self.frozen_mask = mask

    def unfreeze(self):
        self.frozen_mask = None

    def _draw_mask(self, x):
        xp = get_array_module(x)
        if self.frozen_mask is not None:
            if tuple(self.frozen_mask.shape) != tuple(x.shape):
                raise ValueError(
                    f"Dropout: frozen mask has shape {tuple(self.frozen_mask.shape)}, "
                    f"input has {tuple(x.shape)}"
                )
            return xp.asarray(self.frozen_mask, dtype=x.dtype)
        return self._new_mask(x)

    def _new_mask(self, x):
        """A fresh 0/1 mask of x's shape and dtype, from ``self.rng``."""
        xp = get_array_module(x)
        keep = self.rng.random(x.shape, dtype="float32") >= self.p   # drawn on the host: reproducible
        return xp.asarray(keep, dtype=x.dtype)

    def forward(self, x, train=True):
        if self.p == 0:
            self.cache = None
            return x
        if not train:
            return x * (1 - self.p) if self.mode == "paper" else x
        mask = self._draw_mask(x)
        if self.mode == "inverted":
            mask = mask * (1 / (1 - self.p))
        self.cache = mask
        return x * mask

    def backward(self, dout):
        mask = self.cache
        self.cache = None
        return dout if mask is None else dout * mask
