"""Assertions for instructors writing pytest-based labs.

    from minialex.testing import assert_gradients_close

    def test_student_lrn():
        from student import LocalResponseNorm
        from minialex.layers import LocalResponseNorm as Ref
        x = np.random.default_rng(0).standard_normal((2, 7, 3, 3))
        assert_gradients_close(LocalResponseNorm(alpha=1.0, k=1.0), x,
                               reference=Ref(alpha=1.0, k=1.0))

A failure raises ``AssertionError`` whose message is the full gradient
report: the error of every tensor, where the worst entry sits, and the hints
of ``minialex.gradcheck.diagnose``, so pytest shows a student what to fix.
"""
from __future__ import annotations

from .gradcheck.core import DEFAULT_EPS, DEFAULT_THRESHOLD, check_functions, check_layer


def assert_gradients_close(obj, *inputs, backward=None, reference=None, threshold=DEFAULT_THRESHOLD,
                           eps=DEFAULT_EPS, seed=0, allow_unreliable=False, info=None, name=None):
    """Assert that ``obj``'s analytic gradients match centred differences (float64).

    Parameters
    ----------
    obj : layer or function
        A layer (anything with ``forward``/``backward``, optional
        ``params``/``grads``), checked on ``inputs[0]``; or, with
        ``backward=``, a CS231n-style forward function ``f(*inputs) -> (out, cache)``.
    *inputs : arrays
        The layer's input ``x``; or every argument of the forward function
        (integer arrays such as labels are passed through, not differentiated).
    backward : callable, optional
        ``backward(dout, cache) -> grads`` (one per floating-point input).
    reference : layer or function, optional
        The same computation from minialex: the forward passes must agree too.
    threshold : float
        Maximum relative error (tensor-scale form, see ``minialex.gradcheck``); 1e-6.
    allow_unreliable : bool
        By default a check that is unreliable (float32 arithmetic, an input on
        a ReLU/max kink) fails even when the numbers agree: fix the inputs.

    Returns the ``GradReport`` when it passes.
    """
    if backward is not None:
        report = check_functions(obj, backward, *inputs, threshold=threshold, eps=eps, seed=seed,
                                 reference=reference, info=info, name=name)
    else:
        if len(inputs) != 1:
            raise ValueError(f"assert_gradients_close: a layer takes one input x, got {len(inputs)} "
                             "inputs; pass backward= to check a pair of functions")
        report = check_layer(obj, inputs[0], threshold=threshold, eps=eps, seed=seed,
                             reference=reference, info=info, name=name)
    if not report.passed:
        raise AssertionError("gradients differ\n" + str(report))
    if not report.reliable and not allow_unreliable:
        raise AssertionError("gradient check is unreliable (pass allow_unreliable=True to accept)\n"
                             + str(report))
    return report
