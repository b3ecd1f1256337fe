"""Mixup (Zhang et al. 2018; Bag of Tricks, He et al. 2019, Sec. 5.4).

Each training image is replaced by a convex combination of two images of
the batch, and its target by the same combination of their targets:

    x_hat = lam x_i + (1 - lam) x_j
    y_hat = lam y_i + (1 - lam) y_j,        lam ~ Beta(alpha, alpha)

The loss is then the cross-entropy against y_hat
(``minialex.layers.SoftTargetCrossEntropy``), which equals
lam CE(x_hat, y_i) + (1 - lam) CE(x_hat, y_j) because cross-entropy is linear
in the target. Sec. 5.4 uses alpha = 0.2 and trains longer (200 epochs instead
of 120), as mixup makes the task harder.

Choices (docs/tricks.md): one lam per batch and j = a random permutation of
the batch (the published mixup code does the same; the paper's "two examples
at random" draws per pair). The draw comes from a generator seeded by
(seed, epoch, batch), so it needs no saved state: a resumed run redraws
exactly what the interrupted one would have drawn.
"""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module

STREAM = 0x6D6978                     # "mix": keeps mixup's draws apart from the loader's


def check_alpha(alpha):
    """Raise ValueError unless alpha is a finite number > 0."""
    if not float(alpha) > 0 or alpha == float("inf"):
        raise ValueError(f"mixup alpha must be > 0 (Beta(alpha, alpha)), got {alpha}")


def draw_mixup(alpha, n, seed, epoch, batch):
    """(lam, perm): lam ~ Beta(alpha, alpha) and a permutation of range(n), from (seed, epoch, batch)."""
    check_alpha(alpha)
    rng = np.random.default_rng([int(seed), int(epoch), int(batch), STREAM])
    lam = float(rng.beta(alpha, alpha))
    return lam, rng.permutation(n)


def mix(x, q, lam, perm):
    """The mixed batch and targets.

    Shapes:  x: (N, C, H, W) images, q: (N, K) target rows, perm: (N,) a permutation
             ->  x_hat: (N, C, H, W), q_hat: (N, K)
    """
    xp = get_array_module(x)
    perm = xp.asarray(perm)
    x_hat = lam * x + (1.0 - lam) * x[perm]
    q_hat = lam * q + (1.0 - lam) * q[perm]
    return x_hat.astype(x.dtype, copy=False), q_hat.astype(q.dtype, copy=False)
