"""How the autograder checks each agreed name (see ``minialex/labs/__init__.py``).

Every case builds the student's object with the agreed constructor, gives it
the same parameters as minialex's reference, and returns a ``GradReport``
from ``check_layer`` or ``check_functions`` (float64, threshold 1e-6). Inputs
avoid kinks: max-pool inputs are pairwise distinct, so no window has a tie.
LRN is checked twice: the paper's alpha=1e-4 hides a wrong window, alpha=1,
k=1 does not (STYLE.md, "Tests").
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..gradcheck.core import DEFAULT_THRESHOLD, check_functions, check_layer

LABS = {
    "lrn": ["LocalResponseNorm"],
    "maxpool": ["MaxPool2D"],
    "conv": ["col2im", "Conv2D"],
    "softmax": ["softmax_cross_entropy"],
}
AGREED_NAMES = [n for names in LABS.values() for n in names]


@dataclass
class Case:
    """One row of the autograder's table: ``run(student_obj) -> GradReport``."""

    name: str
    check: str
    run: object


def expand_names(names):
    """Lab names ("lrn") and agreed names ("Conv2D") -> agreed names, in order.

    Raises ValueError for anything else, naming the choices.
    """
    if not names:
        return list(AGREED_NAMES)
    out = []
    for n in names:
        if n in LABS:
            out += [m for m in LABS[n] if m not in out]
        elif n in AGREED_NAMES:
            out += [n] if n not in out else []
        else:
            raise ValueError(f"unknown lab or name {n!r}; expected one of the labs {sorted(LABS)} "
                             f"or the agreed names {AGREED_NAMES}")
    return out


def _distinct(rng, shape):
    """Pairwise distinct values in (-1.1, 1.1), none near 0: no max-pool ties, no ReLU kinks."""
    n = int(np.prod(shape))
    vals = (np.arange(n) + 0.5) / n * 2 - 1
    vals = np.sign(vals) * (0.1 + np.abs(vals))
    return rng.permutation(vals).reshape(shape)


def _construct(cls, signature, *args, **kwargs):
    """cls(*args, **kwargs), with a message naming the agreed signature when it does not fit."""
    try:
        return cls(*args, **kwargs)
    except TypeError as e:
        raise TypeError(f"{e}; the agreed constructor is {signature}") from e


def _threshold(t):
    return DEFAULT_THRESHOLD if t is None else t


def _lrn(alpha, k, C, threshold):
    from ..layers import LocalResponseNorm

    def run(cls):
        student = _construct(cls, "LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0)",
                             size=5, alpha=alpha, beta=0.75, k=k)
        ref = LocalResponseNorm(5, alpha=alpha, beta=0.75, k=k)
        x = np.random.default_rng(11).standard_normal((2, C, 3, 3))
        return check_layer(student, x, reference=ref, name="LocalResponseNorm",
                           threshold=_threshold(threshold))
    return run


def _pool(z, s, H, threshold):
    from ..layers import MaxPool2D

    def run(cls):
        student = _construct(cls, "MaxPool2D(kernel_size=3, stride=2)", kernel_size=z, stride=s)
        x = _distinct(np.random.default_rng(12), (2, 3, H, H))
        return check_layer(student, x, reference=MaxPool2D(z, s), name="MaxPool2D",
                           threshold=_threshold(threshold), info={"kind": "pool", "kernel_size": z,
                                                                   "stride": s})
    return run


def _col2im(K, s, p, threshold):
    from ..im2col import im2col_reference

    def run(fn):
        x = np.random.default_rng(13).standard_normal((2, 3, 7, 7))

        def im2col_forward(x):
            return im2col_reference(x, K, K, s, p), x.shape    # cols: (C*K*K, N*OH*OW)

        def student_backward(dcols, x_shape):
            return fn(dcols, x_shape, K, K, s, p)              # dx: (N, C, H, W)

        return check_functions(im2col_forward, student_backward, x, name="col2im",
                               threshold=_threshold(threshold),
                               info={"kind": "col2im", "kernel_size": K, "stride": s, "padding": p})
    return run


def _conv(C, F, K, s, p, G, H, threshold):
    from ..layers import Conv2D

    def run(cls):
        student = _construct(cls, "Conv2D(in_channels, out_channels, kernel_size, stride=1, "
                             "padding=0, groups=1)", C, F, K, stride=s, padding=p, groups=G)
        rng = np.random.default_rng(14)
        ref = Conv2D(C, F, K, stride=s, padding=p, groups=G, dtype=np.float64)
        params = {"w": rng.standard_normal((F, C // G, K, K)) * 0.5,   # (F, C/G, K, K)
                  "b": rng.standard_normal(F) * 0.1}                    # (F,)
        have = getattr(student, "params", None)
        if not isinstance(have, dict):
            raise ValueError("Conv2D: `params` must be a dict holding 'w' and 'b'")
        for key, v in params.items():
            if key not in have:
                raise ValueError(f"Conv2D: params has no {key!r}; expected keys 'w' and 'b'")
            if tuple(np.shape(have[key])) != v.shape:
                raise ValueError(f"Conv2D: params[{key!r}] has shape {tuple(np.shape(have[key]))}, "
                                 f"expected {v.shape} (w: (F, C/G, K, K), b: (F,))")
            have[key] = v.copy()
        x = rng.standard_normal((2, C, H, H))
        return check_layer(student, x, reference=ref, name="Conv2D", threshold=_threshold(threshold),
                           info={"kind": "conv", "kernel_size": K, "stride": s, "padding": p,
                                 "groups": G})
    return run


def _softmax(N, K, offset, threshold):
    from ..layers import SoftmaxCrossEntropy

    def run(fn):
        rng = np.random.default_rng(15)
        x = rng.standard_normal((N, K)) * 3 + offset     # exp(1000) overflows float64
        y = rng.integers(0, K, N)

        def forward(x, y):
            res = fn(x, y)
            if not (isinstance(res, tuple) and len(res) == 2):
                raise ValueError("softmax_cross_entropy must return a pair (loss, dx), got "
                                 f"{type(res).__name__}")
            loss, dx = res
            if np.shape(dx) != x.shape:
                raise ValueError(f"softmax_cross_entropy: dx must have the logits' shape {x.shape}, "
                                 f"got {np.shape(dx) if dx is not None else None}")
            return loss, dx                          # the "cache" is the student's dx

        def backward(dout, dx):
            return dout * np.asarray(dx)

        def reference(x, y):
            return SoftmaxCrossEntropy().forward(x, y)

        return check_functions(forward, backward, x, y, reference=reference,
                               name="softmax_cross_entropy", threshold=_threshold(threshold),
                               info={"kind": "softmax"})
    return run


def cases_for(name, threshold=None):
    """The autograder's cases for one agreed name."""
    t = threshold
    table = {
        "LocalResponseNorm": [
            Case(name, "alpha=1, k=1, 7 channels (exposes the window)", _lrn(1.0, 1.0, 7, t)),
            Case(name, "paper constants k=2, n=5, alpha=1e-4, beta=0.75", _lrn(1e-4, 2.0, 6, t)),
        ],
        "MaxPool2D": [
            Case(name, "overlapping z=3, s=2 on 9x9 (Sec. 3.4)", _pool(3, 2, 9, t)),
            Case(name, "classic z=s=2 on 8x8", _pool(2, 2, 8, t)),
        ],
        "col2im": [
            Case(name, "adjoint of im2col, 3x3, stride 2, padding 1", _col2im(3, 2, 1, t)),
            Case(name, "adjoint of im2col, 3x3, stride 1, padding 0", _col2im(3, 1, 0, t)),
        ],
        "Conv2D": [
            Case(name, "3x3, stride 1, padding 1, groups 2 (Sec. 3.2)", _conv(4, 6, 3, 1, 1, 2, 6, t)),
            Case(name, "5x5, stride 2, padding 2, groups 1", _conv(3, 4, 5, 2, 2, 1, 7, t)),
        ],
        "softmax_cross_entropy": [
            Case(name, "N=5, K=7", _softmax(5, 7, 0.0, t)),
            Case(name, "logits near 1000 (needs the max-subtraction)", _softmax(4, 6, 1000.0, t)),
        ],
    }
    if name not in table:
        raise ValueError(f"no lab checks for {name!r}; agreed names are {AGREED_NAMES}")
    return table[name]
