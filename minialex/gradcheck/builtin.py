"""The built-in suite: every minialex layer, on inputs chosen so no check sits on a kink."""
from __future__ import annotations

import numpy as np

from .core import check_layer, check_loss


def _distinct(rng, shape, spread=1.0):
    """Values that are pairwise far apart (no ties for max, none near 0)."""
    n = int(np.prod(shape))
    vals = (np.arange(n) + 0.5) / n * 2 - 1                    # in (-1, 1), step 2/n
    vals = np.sign(vals) * (0.1 + np.abs(vals))                # keep away from 0
    return (rng.permutation(vals) * spread).reshape(shape)


def builtin_cases():
    """(name, description, thunk) for every built-in layer; thunk() -> GradReport."""
    from .. import layers as L

    def conv(stride, padding, groups):
        def run():
            rng = np.random.default_rng(1)
            layer = L.Conv2D(4, 6, 3, stride=stride, padding=padding, groups=groups, rng=rng,
                             weight_std=0.5, bias_init=0.1)
            x = rng.standard_normal((2, 4, 7, 7))
            return check_layer(layer, x, name=f"Conv2D(s={stride}, p={padding}, g={groups})")
        return run

    def relu():
        x = _distinct(np.random.default_rng(2), (3, 4, 5))
        return check_layer(L.ReLU(), x, name="ReLU")

    def tanh():
        x = np.random.default_rng(3).standard_normal((3, 4, 5))
        return check_layer(L.Tanh(), x, name="Tanh")

    def lrn(alpha, k, convention="paper"):
        def run():
            x = np.random.default_rng(4).standard_normal((2, 7, 3, 3))
            layer = L.LocalResponseNorm(5, alpha=alpha, beta=0.75, k=k, alpha_convention=convention)
            return check_layer(layer, x, name=f"LocalResponseNorm(alpha={alpha}, k={k}, {convention})")
        return run

    def pool():
        x = _distinct(np.random.default_rng(5), (2, 3, 9, 9))
        return check_layer(L.MaxPool2D(3, 2), x, name="MaxPool2D(3, 2) overlapping")

    def dropout(mode):
        def run():
            rng = np.random.default_rng(6)
            x = rng.standard_normal((4, 10))
            layer = L.Dropout(0.5, mode=mode, rng=rng)
            layer.freeze((rng.random((4, 10)) >= 0.5).astype(np.float64))
            return check_layer(layer, x, name=f"Dropout({mode}, frozen mask)")
        return run

    def linear():
        rng = np.random.default_rng(7)
        layer = L.Linear(6, 5, rng=rng, weight_std=0.5, bias_init=0.1)
        return check_layer(layer, rng.standard_normal((3, 6)), name="Linear")

    def flatten():
        return check_layer(L.Flatten(), np.random.default_rng(8).standard_normal((2, 3, 2, 2)),
                           name="Flatten")

    def xent():
        rng = np.random.default_rng(9)
        return check_loss(L.SoftmaxCrossEntropy(), rng.standard_normal((5, 7)) * 3,
                          rng.integers(0, 7, 5), name="SoftmaxCrossEntropy")

    return [
        ("conv", "Conv2D, stride 1, padding 1, groups 1", conv(1, 1, 1)),
        ("conv", "Conv2D, stride 2, padding 2, groups 2", conv(2, 2, 2)),
        ("relu", "ReLU", relu),
        ("tanh", "Tanh", tanh),
        ("lrn", "LRN, paper constants", lrn(1e-4, 2.0)),
        ("lrn", "LRN, alpha=1, k=1 (exposes a wrong window)", lrn(1.0, 1.0)),
        ("lrn", "LRN, PyTorch alpha/n convention", lrn(1.0, 1.0, "pytorch")),
        ("maxpool", "overlapping max-pool 3/2", pool),
        ("dropout", "Dropout, paper form", dropout("paper")),
        ("dropout", "Dropout, inverted form", dropout("inverted")),
        ("linear", "Linear", linear),
        ("flatten", "Flatten", flatten),
        ("softmax", "softmax cross-entropy", xent),
    ]
