"""Softmax and multinomial logistic regression (Sec. 3.5: the 1000-way softmax)."""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from .base import check_ndim


def softmax(x):
    """Row-wise softmax, stable: exp(x - max) / sum. Shapes: x, out: (N, K)."""
    xp = get_array_module(x)
    z = x - x.max(axis=1, keepdims=True)
    e = xp.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class SoftmaxCrossEntropy:
    """Mean negative log-probability of the correct class.

        loss = -(1/N) sum_n log softmax(x_n)[y_n]
             = (1/N) sum_n (logsumexp(x_n) - x_n[y_n])

    computed with log-sum-exp so large logits cannot overflow.

    Shapes:  x: (N, K) logits, y: (N,) integer labels in [0, K)  ->  loss: () scalar
             backward: dx = (softmax(x) - onehot(y)) / N, shape (N, K)
    Paper:   Sec. 3.5 ("maximizes the multinomial logistic regression objective").

    ``check_finite`` (default True) raises ValueError when NaN or inf reaches
    the loss. Both checks (labels in range, finite logits) run on NumPy
    arrays only: on a GPU each would be a device-to-host sync on every step.
    There the labels are checked once, where the data enters a run
    (``minialex.experiment.check_labels``), and a non-finite loss is caught by
    the training loop's one ``float(loss)`` per step.
    """

    def __init__(self, check_finite=True, check_labels=True):
        self.params, self.grads, self.cache = {}, {}, None
        self.check_finite = check_finite
        self.check_labels = check_labels      # False: labels checked by the caller (a CUDA graph cannot sync)

    def forward(self, x, y):
        xp = get_array_module(x)
        check_ndim(x, 2, "SoftmaxCrossEntropy", "logits")
        N, K = x.shape
        y = xp.asarray(y)
        if y.ndim != 1 or y.shape[0] != N:
            raise ValueError(
                f"SoftmaxCrossEntropy: labels must have shape ({N},) to match logits {tuple(x.shape)}, "
                f"got {tuple(y.shape)}"
            )
        if not np.issubdtype(np.dtype(y.dtype), np.integer):
            raise ValueError(f"SoftmaxCrossEntropy: labels must be integers, got dtype {y.dtype}")
        on_host = xp is np                                         # checks without a device sync
        lo, hi = (int(y.min()), int(y.max())) if on_host and self.check_labels else (0, 0)
        if lo < 0 or hi >= K:
            bad = lo if lo < 0 else hi
            raise ValueError(f"SoftmaxCrossEntropy: label {bad} out of range, expected 0 <= label < {K}")
        if on_host and self.check_finite and not bool(xp.isfinite(x).all()):
            n_bad = int((~xp.isfinite(x)).sum())
            raise ValueError(
                f"SoftmaxCrossEntropy: {n_bad} non-finite logits (NaN or inf) reached the loss; "
                "expected all finite. The learning rate may be too high."
            )
        z = x - x.max(axis=1, keepdims=True)                       # (N, K), max is 0
        log_sum = xp.log(xp.exp(z).sum(axis=1))                    # (N,)
        rows = xp.arange(N)
        loss = (log_sum - z[rows, y]).mean()
        self.cache = (z, log_sum, y)
        return loss

    __call__ = forward

    def backward(self, dout=1.0):
        xp = get_array_module(self.cache[0])
        z, log_sum, y = self.cache
        N = z.shape[0]
        dx = xp.exp(z - log_sum[:, None])                          # softmax, (N, K)
        dx[xp.arange(N), y] -= 1
        dx *= dout / N
        self.cache = None
        return dx
