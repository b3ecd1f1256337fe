"""Centred differences and the relative error every check uses (float64).

    df/dx_i ~ (f(x + eps e_i) - f(x - eps e_i)) / (2 eps)

    rel_error(a, b) = max_i |a_i - b_i| / max(1e-8, max_i (|a_i| + |b_i|))

Why the error is relative to the tensor's scale rather than per entry: see
``core.py``. These functions know nothing of layers or reports.
"""
from __future__ import annotations

import numpy as np

from ..backend import to_numpy

DEFAULT_THRESHOLD = 1e-6
DEFAULT_EPS = 1e-6


def rel_error(a, b):
    """max_i |a_i - b_i| / max(1e-8, max_i (|a_i| + |b_i|)): error relative to the tensor's scale."""
    a, b = np.asarray(to_numpy(a), dtype=np.float64), np.asarray(to_numpy(b), dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rel_error: shapes differ, {a.shape} vs {b.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(scaled_error_map(a, b)))


def scaled_error_map(a, b):
    """Per-entry |a_i - b_i| divided by the tensor's scale (so its max is ``rel_error``)."""
    a, b = np.asarray(to_numpy(a), dtype=np.float64), np.asarray(to_numpy(b), dtype=np.float64)
    return np.abs(a - b) / max(1e-8, float(np.max(np.abs(a) + np.abs(b), initial=0.0)))



def rel_error_map(a, b):
    """Per-entry relative error |a_i - b_i| / max(1e-8, |a_i| + |b_i|) (CS231n form)."""
    a, b = np.asarray(to_numpy(a), dtype=np.float64), np.asarray(to_numpy(b), dtype=np.float64)
    return np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))


def numerical_gradient(f, x, eps=DEFAULT_EPS):
    """Centred-difference gradient of the scalar function ``f()`` w.r.t. ``x``.

    ``x`` is perturbed in place, one entry at a time, and restored exactly.
    ``f`` takes no arguments: it closes over ``x`` (and whatever else).

    Shapes:  x: any shape  ->  grad: x's shape, float64
    """
    grad = np.zeros(x.shape, dtype=np.float64)
    it = np.nditer(x, flags=["multi_index"], op_flags=[["readwrite"]])
    while not it.finished:
        i = it.multi_index
        old = x[i].copy()
        x[i] = old + eps
        fp = float(f())
        x[i] = old - eps
        fm = float(f())
        x[i] = old
        grad[i] = (fp - fm) / (2 * eps)
        it.iternext()
    return grad


