"""Knowledge distillation (Hinton et al. 2015; Bag of Tricks, He et al. 2019, Sec. 5.3).

A trained teacher's logits r carry more than the label: which wrong classes
look alike. The student with logits z learns from both, through the loss

    loss = H(p, softmax(z)) + T^2 H(softmax(r / T), softmax(z / T))          (Sec. 5.3)

where p is the true label distribution (one-hot, smoothed or mixed), H the
cross-entropy and T the temperature that softens both distributions. The T^2
keeps the second term's gradient on the scale of the first (each soft
gradient carries a factor 1/T). Sec. 5.3 uses T = 20.

    dloss/dz = (softmax(z) - p) / N + T (softmax(z / T) - softmax(r / T)) / N

(derivation in docs/tricks.md). The teacher is fixed: no gradient reaches r.

The value returned is the second term less the teacher's own entropy
T^2 H(softmax(r / T)), a constant for the student: H(a, b) - H(a) = KL(a || b),
so the loss reads 0 when the student copies the teacher, and the gradient is
the paper's. (At T = 20 the teacher's distribution over 10 classes is nearly
uniform and T^2 H(.) is about 400 log 10 = 921: the plain cross-entropy would
hide the part that moves.)
"""
from __future__ import annotations

from ..backend import get_array_module
from .base import check_ndim
from .soft_target import SoftTargetCrossEntropy


def check_temperature(T):
    """Raise ValueError unless T is a finite number > 0."""
    if not float(T) > 0 or T == float("inf"):
        raise ValueError(f"distillation temperature must be > 0, got {T}")


class DistillationLoss:
    """H(p, softmax(z)) + T^2 KL(softmax(r/T) || softmax(z/T)); see the module docstring.

    Shapes:  z: (N, K) student logits, p: (N, K) target rows summing to 1,
             r: (N, K) teacher logits  ->  loss: () scalar
             backward: dz, shape (N, K)
    Paper:   Bag of Tricks Sec. 5.3 (T = 20 there); Hinton, Vinyals & Dean 2015.
    """

    def __init__(self, temperature=20.0):
        check_temperature(temperature)
        self.T = float(temperature)
        self.params, self.grads = {}, {}
        self.hard = SoftTargetCrossEntropy()           # H(p, softmax(z))
        self.soft = SoftTargetCrossEntropy()           # H(softmax(r/T), softmax(z/T))

    def forward(self, z, p, r):
        check_ndim(r, 2, "DistillationLoss", "teacher logits")
        if tuple(r.shape) != tuple(z.shape):
            raise ValueError(f"DistillationLoss: teacher logits have shape {tuple(r.shape)}, the student's "
                             f"{tuple(z.shape)}; the teacher must have the same classes")
        xp = get_array_module(z)
        T = self.T
        rt = xp.asarray(r, dtype=z.dtype) / T                       # (N, K), no gradient
        rt = rt - rt.max(axis=1, keepdims=True)
        log_pt = rt - xp.log(xp.exp(rt).sum(axis=1, keepdims=True))  # log softmax(r/T), (N, K)
        pt = xp.exp(log_pt)
        teacher_entropy = -(pt * log_pt).sum(axis=1).mean()         # constant for the student
        kl = self.soft.forward(z / T, pt) - teacher_entropy         # KL(pt || softmax(z/T))
        return self.hard.forward(z, p) + T * T * kl

    __call__ = forward

    def backward(self, dout=1.0):
        T = self.T
        dz = self.hard.backward(dout)                              # (softmax(z) - p) / N
        dz += T * self.soft.backward(dout)                         # T^2 times d(z/T)/dz = 1/T
        return dz
