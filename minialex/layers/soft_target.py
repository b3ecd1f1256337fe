"""Cross-entropy against a target distribution (soft labels).

Label smoothing (Bag of Tricks Sec. 5.2) and mixup (Sec. 5.4) both replace
the one-hot target of Sec. 3.5's multinomial logistic regression by a
probability vector q per image; this file is that loss, written once.
"""
from __future__ import annotations

from ..backend import get_array_module
from .base import check_float, check_ndim


def one_hot(y, num_classes, dtype="float32"):
    """Rows of the identity picked by integer labels.

    Shapes:  y: (N,) integers in [0, K)  ->  (N, K) with a single 1 per row

    The labels' range is not checked here (that would cost a GPU sync per
    step); the data edge validates them once.
    """
    xp = get_array_module(y)
    y = xp.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"one_hot: labels must be 1-D, got shape {tuple(y.shape)}")
    q = xp.zeros((y.shape[0], num_classes), dtype=dtype)
    q[xp.arange(y.shape[0]), y] = 1
    return q


class SoftTargetCrossEntropy:
    """Mean cross-entropy H(q, softmax(x)) between target rows q and the softmax of the logits.

        loss = -(1/N) sum_n sum_k q_nk log softmax(x_n)_k
             = (1/N) sum_n (logsumexp(x_n) - sum_k q_nk x_nk)      (rows of q sum to 1)

    With q = onehot(y) it is ``SoftmaxCrossEntropy``. Because the loss is
    linear in q, a mixture of targets gives the same mixture of losses: mixup's
    lam * CE(y_i) + (1 - lam) * CE(y_j) is this loss at q = lam e_i + (1 - lam) e_j.

    Shapes:  x: (N, K) logits, q: (N, K) rows summing to 1  ->  loss: () scalar
             backward: dx = (softmax(x) - q) / N, shape (N, K)
    Paper:   AlexNet Sec. 3.5 (the objective); Bag of Tricks Sec. 5.2, 5.4 (soft targets).
             Derivation: docs/tricks.md.
    """

    def __init__(self):
        self.params, self.grads, self.cache = {}, {}, None

    def forward(self, x, q):
        xp = get_array_module(x)
        check_ndim(x, 2, "SoftTargetCrossEntropy", "logits")
        check_float(x, "SoftTargetCrossEntropy", "logits")
        if tuple(q.shape) != tuple(x.shape):
            raise ValueError(f"SoftTargetCrossEntropy: targets must have the logits' shape {tuple(x.shape)}, "
                             f"got {tuple(q.shape)}")
        z = x - x.max(axis=1, keepdims=True)                       # (N, K), max is 0
        log_sum = xp.log(xp.exp(z).sum(axis=1))                    # (N,)
        loss = (log_sum - (q * z).sum(axis=1)).mean()              # q rows sum to 1: the max cancels
        self.cache = (z, log_sum, q)
        return loss

    __call__ = forward

    def backward(self, dout=1.0):
        z, log_sum, q = self.cache
        xp = get_array_module(z)
        N = z.shape[0]
        dx = xp.exp(z - log_sum[:, None])                          # softmax, (N, K)
        dx -= q
        dx *= dout / N
        self.cache = None
        return dx
