"""Label smoothing (Bag of Tricks, He et al. 2019, Sec. 5.2).

The one-hot target asks the net to make the correct logit infinitely larger
than the others; smoothing caps that wish by moving eps of the probability
mass onto the K - 1 wrong classes:

    q_i = 1 - eps          if i = y
          eps / (K - 1)    otherwise

(the paper's form; Szegedy et al.'s Inception-v3 spreads eps / K over all K
classes instead). The loss is the cross-entropy against q
(``SoftTargetCrossEntropy``).
"""
from __future__ import annotations

from .soft_target import SoftTargetCrossEntropy, one_hot


def check_smoothing(eps):
    """Raise ValueError unless 0 <= eps < 1 (eps = 1 would leave no mass on the true class)."""
    if not 0.0 <= float(eps) < 1.0 or eps != eps:
        raise ValueError(f"label smoothing eps must be in [0, 1), got {eps}")


def smooth_labels(y, num_classes, eps, dtype="float32"):
    """Smoothed target rows of Sec. 5.2.

    Shapes:  y: (N,) integer labels  ->  q: (N, K), q[n, y_n] = 1 - eps, eps / (K - 1) elsewhere
    """
    check_smoothing(eps)
    if num_classes < 2:
        raise ValueError(f"label smoothing needs at least 2 classes, got {num_classes}")
    q = one_hot(y, num_classes, dtype)                            # (N, K)
    off = eps / (num_classes - 1)
    return q * (1.0 - eps - off) + off                            # 1 - eps on y, eps/(K-1) elsewhere


class LabelSmoothingCrossEntropy:
    """Cross-entropy against smoothed labels: H(q(y, eps), softmax(x)).

    Shapes:  x: (N, K) logits, y: (N,) integer labels  ->  loss: () scalar
             backward: dx = (softmax(x) - q) / N, shape (N, K)
    Paper:   Bag of Tricks Sec. 5.2; eps = 0.1 there. eps = 0 is the plain loss of AlexNet Sec. 3.5.
    """

    def __init__(self, eps=0.1):
        check_smoothing(eps)
        self.eps = float(eps)
        self.params, self.grads = {}, {}
        self.ce = SoftTargetCrossEntropy()

    def forward(self, x, y):
        q = smooth_labels(y, x.shape[1], self.eps, dtype=x.dtype)   # (N, K)
        return self.ce.forward(x, q)

    __call__ = forward

    def backward(self, dout=1.0):
        return self.ce.backward(dout)
