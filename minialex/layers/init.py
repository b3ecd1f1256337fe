"""Initialisation helpers for Sec. 5 of the paper.

Paper: Sec. 5; weights ~ N(0, 0.01^2); biases 1 in conv2, conv4, conv5, fc6,
fc7 (to give ReLUs positive inputs early on) and 0 elsewhere.
"""
from __future__ import annotations

import numpy as np


def make_rng(seed_or_rng=None):
    """Return a ``numpy.random.Generator`` from a seed, a Generator or None."""
    if isinstance(seed_or_rng, np.random.Generator):
        return seed_or_rng
    return np.random.default_rng(seed_or_rng)


def normal(shape, std=0.01, rng=None, dtype=np.float32):
    """Weights drawn from N(0, std^2), seeded, in ``dtype`` (a NumPy array)."""
    rng = make_rng(rng)
    return (rng.standard_normal(shape) * std).astype(dtype)


def constant(shape, value=0.0, dtype=np.float32):
    """An array of ``shape`` filled with ``value`` (Sec. 5 biases: 0 or 1)."""
    return np.full(shape, value, dtype=dtype)
