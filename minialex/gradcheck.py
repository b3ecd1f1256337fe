"""Numerical gradient checks: centred differences in float64.

    python -m minialex.gradcheck              # check every built-in layer
    python -m minialex.gradcheck --layer lrn  # check one

A check compares the analytic gradients of ``backward`` with

    df/dx_i ~ (f(x + eps e_i) - f(x - eps e_i)) / (2 eps)

for the scalar f = sum(forward(x) * dout), with a fixed random upstream
gradient ``dout``. Errors are relative to the tensor's own scale:

    rel_error(a, b) = max_i |a_i - b_i| / max(1e-8, max_i (|a_i| + |b_i|))

The per-entry form of CS231n (dividing each |a_i - b_i| by its own
|a_i| + |b_i|) flags correct layers whenever one gradient entry is tiny
(a softmax probability of 1e-6, a cancellation in x @ w.T): round-off in the
difference quotient is about 1e-16 |f| / eps, whatever the entry's size.
Scaling by the largest entry keeps that noise near 1e-9 while a genuine
mistake (a wrong LRN window with alpha=1, a missing 1/N) still scores 1e-3
or worse. ``rel_error_map`` gives the per-entry form for diagnostics.

In float64 with eps=1e-6 a correct layer scores about 1e-10 to 1e-7.
The default threshold is 1e-6.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field

import numpy as np

from .backend import to_numpy

DEFAULT_THRESHOLD = 1e-6
DEFAULT_EPS = 1e-6


def rel_error(a, b):
    """max_i |a_i - b_i| / max(1e-8, max_i (|a_i| + |b_i|)): error relative to the tensor's scale."""
    a, b = np.asarray(to_numpy(a), dtype=np.float64), np.asarray(to_numpy(b), dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rel_error: shapes differ, {a.shape} vs {b.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(_rel_error_map(a, b)))


def _rel_error_map(a, b):
    """Per-entry error divided by the tensor's scale (so its max is rel_error)."""
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


@dataclass
class TensorCheck:
    """Result for one tensor (``dx`` or a parameter)."""

    name: str
    shape: tuple
    max_rel_error: float
    worst_index: tuple
    passed: bool
    analytic_at_worst: float = 0.0
    numeric_at_worst: float = 0.0

    def where(self):
        """Human-readable location of the worst entry (channel/position for 4-D)."""
        idx = self.worst_index
        if len(self.shape) == 4 and len(idx) == 4:
            return f"n={idx[0]} c={idx[1]} h={idx[2]} w={idx[3]}"
        return str(idx)


@dataclass
class GradReport:
    """Outcome of a gradient check: one ``TensorCheck`` per tensor."""

    layer: str
    threshold: float
    tensors: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    @property
    def passed(self):
        return all(t.passed for t in self.tensors)

    @property
    def max_error(self):
        return max((t.max_rel_error for t in self.tensors), default=0.0)

    def __getitem__(self, name):
        for t in self.tensors:
            if t.name == name:
                return t
        raise KeyError(name)

    def __str__(self):
        lines = [f"gradient check of {self.layer} (float64, threshold {self.threshold:.0e}): "
                 f"{'PASS' if self.passed else 'FAIL'}"]
        w = max([len(t.name) for t in self.tensors] + [6])
        lines.append(f"  {'tensor':<{w}}  {'shape':<18} {'max rel err':>11}  {'worst at':<26} result")
        for t in self.tensors:
            lines.append(
                f"  {t.name:<{w}}  {str(t.shape):<18} {t.max_rel_error:11.2e}  {t.where():<26} "
                f"{'ok' if t.passed else 'FAIL'}"
            )
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _tensor_check(name, analytic, numeric, threshold):
    analytic = np.asarray(to_numpy(analytic), dtype=np.float64)
    if analytic.shape != numeric.shape:
        return TensorCheck(name, numeric.shape, float("inf"), (), False)
    err = _rel_error_map(analytic, numeric)
    flat = int(np.argmax(err)) if err.size else 0
    idx = tuple(int(i) for i in np.unravel_index(flat, err.shape)) if err.size else ()
    m = float(err.max()) if err.size else 0.0
    return TensorCheck(name, tuple(numeric.shape), m, idx, m <= threshold,
                       float(analytic[idx]) if err.size else 0.0,
                       float(numeric[idx]) if err.size else 0.0)


def check_layer(layer, x, threshold=DEFAULT_THRESHOLD, eps=DEFAULT_EPS, seed=0, train=True,
                name=None):
    """Check ``dx`` and every gradient in ``layer.grads`` against centred differences.

    ``layer`` is anything with ``forward(x, train)``, ``backward(dout)``,
    ``params`` and ``grads`` (duck typing). ``x`` and every parameter are cast
    to float64 first (the layer's params are replaced by float64 copies).
    Layers with randomness must be made deterministic first (e.g.
    ``Dropout.freeze(mask)``).

    Returns a ``GradReport``; ``report.passed`` and ``str(report)``.
    """
    rng = np.random.default_rng(seed)
    x = np.array(to_numpy(x), dtype=np.float64)
    params = getattr(layer, "params", {}) or {}
    for k in list(params):
        params[k] = np.array(to_numpy(params[k]), dtype=np.float64)
    out = layer.forward(x, train=train)
    dout = rng.standard_normal(np.shape(out))

    def f():
        return np.sum(to_numpy(layer.forward(x, train=train)) * dout)

    layer.forward(x, train=train)
    dx = layer.backward(dout.copy())
    grads = {k: np.array(to_numpy(v), dtype=np.float64) for k, v in (layer.grads or {}).items()}

    report = GradReport(name or type(layer).__name__, threshold)
    report.tensors.append(_tensor_check("dx", dx, numerical_gradient(f, x, eps), threshold))
    for k, p in params.items():
        if k not in grads:
            report.tensors.append(TensorCheck(k, tuple(p.shape), float("inf"), (), False))
            report.notes.append(f"backward did not fill grads[{k!r}]")
            continue
        report.tensors.append(_tensor_check(k, grads[k], numerical_gradient(f, p, eps), threshold))
    return report


def check_loss(loss, x, y, threshold=DEFAULT_THRESHOLD, eps=DEFAULT_EPS, name=None):
    """Check ``dx`` of a loss with ``forward(x, y) -> scalar`` and ``backward()``."""
    x = np.array(to_numpy(x), dtype=np.float64)

    def f():
        return float(to_numpy(loss.forward(x, y)))

    loss.forward(x, y)
    dx = loss.backward()
    report = GradReport(name or type(loss).__name__, threshold)
    report.tensors.append(_tensor_check("dx", dx, numerical_gradient(f, x, eps), threshold))
    return report


# ---------------------------------------------------------------------------
# The built-in suite: every layer, on inputs chosen so no check sits on a kink.
# ---------------------------------------------------------------------------

def _distinct(rng, shape, spread=1.0):
    """Values that are pairwise far apart (no ties for max, none near 0)."""
    n = int(np.prod(shape))
    vals = (np.arange(n) + 0.5) / n * 2 - 1                    # in (-1, 1), step 2/n
    vals = np.sign(vals) * (0.1 + np.abs(vals))                # keep away from 0
    return (rng.permutation(vals) * spread).reshape(shape)


def builtin_cases():
    """(name, description, thunk) for every built-in layer; thunk() -> GradReport."""
    from . import layers as L

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


def main(argv=None):
    names = sorted({c[0] for c in builtin_cases()})
    ap = argparse.ArgumentParser(
        prog="python -m minialex.gradcheck",
        description="Check every built-in minialex layer's backward pass against centred "
                    "finite differences in float64, print a table, exit 1 if any fails.",
    )
    ap.add_argument("--layer", choices=names, help="check only this layer family")
    ap.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                    help=f"max relative error that passes (default {DEFAULT_THRESHOLD:g})")
    ap.add_argument("-v", "--verbose", action="store_true", help="print each full report")
    args = ap.parse_args(argv)

    failed = 0
    print(f"{'layer':<46} {'max rel err':>11}  result")
    for fam, desc, run in builtin_cases():
        if args.layer and fam != args.layer:
            continue
        rep = run()
        rep.threshold = args.threshold
        for t in rep.tensors:
            t.passed = t.max_rel_error <= args.threshold
        failed += not rep.passed
        print(f"{rep.layer:<46} {rep.max_error:11.2e}  {'PASS' if rep.passed else 'FAIL'}")
        if args.verbose or not rep.passed:
            print(rep)
    print(f"{'all layers pass' if not failed else f'{failed} check(s) FAILED'} "
          f"(threshold {args.threshold:g})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
