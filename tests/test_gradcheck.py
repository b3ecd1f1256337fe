"""minialex.gradcheck core: numerical gradients, duck-typed layers, function pairs, reference=,
reliability warnings, and minialex.testing.assert_gradients_close. Threshold 1e-6 (float64)."""
import numpy as np
import pytest

import minialex.gradcheck as gc
from minialex import layers as L
from minialex.gradcheck import check_functions, check_layer, check_loss, numerical_gradient, rel_error
from minialex.testing import assert_gradients_close


def test_public_names_kept():
    for name in ("numerical_gradient", "rel_error", "rel_error_map", "check_layer", "check_loss",
                 "GradReport", "TensorCheck", "builtin_cases", "main", "check_functions"):
        assert hasattr(gc, name), name


def test_numerical_gradient_of_a_cubic():
    x = np.array([0.5, -1.0, 2.0])
    g = numerical_gradient(lambda: np.sum(x ** 3), x)
    assert rel_error(g, 3 * x ** 2) < 1e-9
    assert np.array_equal(x, [0.5, -1.0, 2.0])          # restored exactly


def test_rel_error_is_relative_to_tensor_scale():
    a = np.array([1.0, 1e-7])
    b = np.array([1.0, 2e-7])                            # a tiny entry off by 100%: round-off size
    assert rel_error(a, b) < 1e-6
    assert gc.rel_error_map(a, b)[1] > 0.3               # the CS231n per-entry form would flag it
    with pytest.raises(ValueError, match="shapes differ"):
        rel_error(np.zeros(2), np.zeros(3))


class _Square:
    """A student-style layer without params/grads attributes and without train=."""

    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, dout):
        return 2 * self.x * dout


def test_check_layer_accepts_any_duck_typed_object():
    rep = check_layer(_Square(), np.random.default_rng(0).standard_normal((3, 4)))
    assert rep.passed, str(rep)
    assert [t.name for t in rep.tensors] == ["dx"]


def test_check_layer_rejects_non_layers():
    with pytest.raises(TypeError, match="no backward"):
        check_layer(object.__new__(type("Nope", (), {"forward": lambda self, x: x})), np.zeros(2))


class _Affine:
    def __init__(self, wrong_db=False):
        rng = np.random.default_rng(1)
        self.params = {"w": rng.standard_normal((4, 3)), "b": rng.standard_normal(3)}
        self.grads = {}
        self.wrong_db = wrong_db

    def forward(self, x, train=True):
        self.x = x
        return x @ self.params["w"] + self.params["b"]

    def backward(self, dout):
        self.grads["w"] = self.x.T @ dout
        self.grads["b"] = dout.sum(axis=0) * (2 if self.wrong_db else 1)
        return dout @ self.params["w"].T


def test_check_layer_covers_every_param_and_localises_a_wrong_one():
    x = np.random.default_rng(2).standard_normal((5, 4))
    assert check_layer(_Affine(), x).passed
    rep = check_layer(_Affine(wrong_db=True), x)
    assert not rep.passed
    assert rep["dx"].passed and rep["w"].passed and not rep["b"].passed
    assert "scale_factor" in rep.codes and "2 x the right value" in str(rep)


def affine_forward(x, w, b):
    return x @ w + b, (x, w)


def affine_backward(dout, cache):
    x, w = cache
    return dout @ w.T, x.T @ dout, dout.sum(axis=0)


def test_check_functions_cs231n_pair():
    rng = np.random.default_rng(3)
    rep = check_functions(affine_forward, affine_backward, rng.standard_normal((3, 4)),
                          rng.standard_normal((4, 5)), rng.standard_normal(5))
    assert rep.passed, str(rep)
    assert [t.name for t in rep.tensors] == ["dx", "dw", "db"]

    def bad_backward(dout, cache):
        x, w = cache
        return dout @ w.T, (x.T @ dout).T.reshape(4, 5), dout.sum(axis=0)   # a wrong dw

    rep = check_functions(affine_forward, bad_backward, rng.standard_normal((3, 4)),
                          rng.standard_normal((4, 5)), rng.standard_normal(5))
    assert not rep.passed and not rep["dw"].passed and rep["dx"].passed


def test_check_functions_skips_integer_inputs_and_uses_dout_1_for_a_loss():
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((4, 6)), rng.integers(0, 6, 4)

    def fwd(x, y):
        loss = L.SoftmaxCrossEntropy()
        return loss.forward(x, y), loss

    rep = check_functions(fwd, lambda dout, loss: loss.backward() * dout, x, y)
    assert rep.passed, str(rep)
    assert [t.name for t in rep.tensors] == ["dx"]


def test_reference_reports_forward_mismatch():
    x = np.random.default_rng(5).standard_normal((2, 7, 2, 2))
    ours = L.LocalResponseNorm(5, alpha=1.0, k=1.0, alpha_convention="pytorch")
    rep = check_layer(ours, x, reference=L.LocalResponseNorm(5, alpha=1.0, k=1.0))
    assert all(t.passed for t in rep.tensors)          # consistent with itself ...
    assert not rep.forward.passed and not rep.passed   # ... but not the paper's layer
    assert "lrn_alpha_convention" in rep.codes, str(rep)
    assert "alpha / n" in str(rep)


def test_reference_gets_the_same_params():
    rng = np.random.default_rng(6)
    student = L.Conv2D(2, 4, 3, padding=1, rng=rng, weight_std=0.5, bias_init=0.3)
    ref = L.Conv2D(2, 4, 3, padding=1, rng=np.random.default_rng(99), dtype=np.float64)
    rep = check_layer(student, rng.standard_normal((1, 2, 4, 4)), reference=ref)
    assert rep.passed and rep.forward.max_rel_error < 1e-12, str(rep)


def test_float32_arithmetic_is_flagged_unreliable():
    class Float32Tanh:
        params, grads = {}, {}

        def forward(self, x):
            self.out = np.tanh(x.astype(np.float32))
            return self.out

        def backward(self, dout):
            return dout * (1 - self.out.astype(np.float64) ** 2)

    rep = check_layer(Float32Tanh(), np.random.default_rng(7).standard_normal((3, 4)))
    assert not rep.reliable
    assert "float32" in rep.codes and "UNRELIABLE" in str(rep)


def test_float32_input_is_noted():
    x = np.random.default_rng(8).standard_normal((3, 4)).astype(np.float32)
    rep = check_layer(L.Tanh(), x)
    assert rep.passed and "float32" in rep.codes       # checked on a float64 copy, and said so


def test_relu_at_its_kink_is_unreliable():
    x = np.random.default_rng(9).standard_normal((3, 4))
    x[1, 2] = 0.0
    rep = check_layer(L.ReLU(), x)
    assert not rep.reliable and "kink" in rep.codes, str(rep)


def test_maxpool_with_tied_maxima_is_unreliable():
    x = np.random.default_rng(10).standard_normal((1, 1, 5, 5))
    x[0, 0, 1, 1] = x[0, 0, 1, 2] = 5.0
    rep = check_layer(L.MaxPool2D(3, 2), x)
    assert not rep.reliable and "kink" in rep.codes
    assert "near-tied maxima" in str(rep)


def test_errors_confined_to_one_group():
    from minialex.labs.solutions.conv import Conv2D

    class WrongSecondGroup(Conv2D):
        def backward(self, dout):
            dx = super().backward(dout)
            dx[:, 2:] *= 1.5
            return dx

    rng = np.random.default_rng(11)
    student = WrongSecondGroup(4, 6, 3, padding=1, groups=2)
    student.params["w"] = rng.standard_normal(student.params["w"].shape)
    rep = check_layer(student, rng.standard_normal((2, 4, 5, 5)),
                      reference=L.Conv2D(4, 6, 3, padding=1, groups=2, dtype=np.float64))
    assert "group" in rep.codes and "only in group 1 of 2" in str(rep), str(rep)


def test_softmax_missing_minus_one_at_label():
    def fwd(x, y):
        z = x - x.max(axis=1, keepdims=True)
        p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        return -np.log(p[np.arange(len(y)), y]).mean(), p / len(y)

    rng = np.random.default_rng(12)
    rep = check_functions(fwd, lambda d, c: d * c, rng.standard_normal((4, 6)), rng.integers(0, 6, 4),
                          info={"kind": "softmax"})
    assert "softmax_label" in rep.codes, str(rep)


def test_worst_entry_location_is_reported():
    rep = check_layer(_Square(), np.ones((1, 2, 3, 3)) * 0.5)
    assert rep["dx"].where() == "n=0 c=0 h=0 w=0"


def test_check_loss_still_works():
    rng = np.random.default_rng(13)
    rep = check_loss(L.SoftmaxCrossEntropy(), rng.standard_normal((5, 7)), rng.integers(0, 7, 5))
    assert rep.passed


def test_assert_gradients_close_passes_and_fails_with_the_report():
    x = np.random.default_rng(14).standard_normal((2, 7, 2, 2))
    rep = assert_gradients_close(L.LocalResponseNorm(alpha=1.0, k=1.0), x,
                                 reference=L.LocalResponseNorm(alpha=1.0, k=1.0))
    assert rep.passed
    from minialex.gradcheck.lab import load_student_module
    from pathlib import Path
    wrong = load_student_module(Path(__file__).parent / "labs_wrong" / "lrn_no_cross_channel.py")
    with pytest.raises(AssertionError, match="lrn_cross_channel"):
        assert_gradients_close(wrong.LocalResponseNorm(alpha=1.0, k=1.0), x)


def test_assert_gradients_close_for_function_pairs_and_unreliable_checks():
    rng = np.random.default_rng(15)
    assert_gradients_close(affine_forward, rng.standard_normal((3, 4)), rng.standard_normal((4, 5)),
                           rng.standard_normal(5), backward=affine_backward)
    x = rng.standard_normal((3, 4))
    x[0, 0] = 0.0
    with pytest.raises(AssertionError, match="unreliable|differ"):
        assert_gradients_close(L.ReLU(), x)
    with pytest.raises(ValueError, match="one input"):
        assert_gradients_close(L.ReLU(), x, x)


def test_cli_builtin_suite_in_process(capsys):
    assert gc.main(["--layer", "softmax"]) == 0
    assert "all layers pass" in capsys.readouterr().out


def test_backward_that_modifies_dout_fails():
    class InPlace:
        params, grads = {}, {}

        def forward(self, x):
            return 3 * x

        def backward(self, dout):
            dout *= 3                      # the Deep-Learning-from-Scratch flaw (STYLE.md)
            return dout

    rep = check_layer(InPlace(), np.random.default_rng(16).standard_normal((2, 3)))
    assert all(t.passed for t in rep.tensors)       # the numbers are right ...
    assert not rep.passed                           # ... but modifying an input is a failure (issue 16)
    assert any("modified dout" in n for n in rep.problems), str(rep)
    assert "FAIL: backward modified dout" in str(rep)


def test_forward_that_modifies_x_fails_and_the_reference_sees_the_original():
    class ShiftsInPlace:
        params, grads = {}, {}

        def forward(self, x):
            x -= x.max()                   # in place: the caller's x changes
            return x.copy()

        def backward(self, dout):
            return dout - dout.sum() * (np.arange(dout.size).reshape(dout.shape) == self.arg)

    class Shift:
        params, grads = {}, {}

        def forward(self, x):
            return x - x.max()

    x = np.random.default_rng(17).standard_normal((2, 3))
    layer = ShiftsInPlace()
    layer.arg = int(np.argmax(x))
    rep = check_layer(layer, x, reference=Shift())
    assert not rep.passed
    assert any("modified its input x" in n for n in rep.problems), str(rep)
    assert rep.forward.passed, str(rep)              # the reference ran on the untouched x
    assert "kink" not in rep.codes, str(rep)


def test_with_n_2_a_missing_mean_and_a_factor_2_are_both_named():
    """Issue 16.1: with N = 2 the factor-2 hint used to overwrite the 1/N one."""
    def forward(x):
        return (x ** 2).sum() / 2, x           # the mean over N = 2 rows of ...

    def backward(dout, x):
        return dout * x                        # ... forgot the 1/N: twice the right value

    x = np.random.default_rng(20).standard_normal((2, 3))
    rep = check_functions(lambda x: ((x ** 2).sum() / 2 / 2, x), backward, x)
    text = str(rep)
    assert "scale_factor" in rep.codes
    assert "2 = N, the batch size" in text and "twice the right value" in text
    assert "cannot be told apart" in text
    assert forward(x)[0] > 0


def test_no_constant_factor_hint_on_a_scalar_loss():
    """Issue 16.4: any wrong scalar is c x the right one; saying so teaches nothing."""
    def loss(x):
        return (x ** 2).sum() * 2.653, None

    def backward(dout, cache):
        return np.zeros(3)

    x = np.random.default_rng(21).standard_normal(3)
    rep = check_functions(loss, backward, x, reference=lambda x: (x ** 2).sum())
    assert not rep.forward.passed
    assert "x the right value" not in str(rep), str(rep)


def test_hints_name_their_tensor_once_and_weight_axes_are_named_as_such():
    """Issue 16.2."""
    from minialex.layers import Conv2D
    layer = Conv2D(2, 4, 3, rng=np.random.default_rng(22), weight_std=0.5, bias_init=0.1, dtype=np.float64)

    class WrongDw:
        params, grads = layer.params, layer.grads

        def forward(self, x, train=True):
            return layer.forward(x)

        def backward(self, dout):
            dx = layer.backward(dout)
            self.grads["w"] = self.grads["w"].copy()
            self.grads["w"][1, 0, 2, 2] += 1.0           # one wrong entry in dw
            return dx

    rep = check_layer(WrongDw(), np.random.default_rng(23).standard_normal((3, 2, 5, 5)))
    hints = rep.hints()
    assert len(hints) == len(set(hints))
    assert all(h.split(":")[0] in ("dx", "w", "b") for h in hints), hints
    assert any(h.startswith("w:") and "kernels [1] of 4" in h for h in hints), hints
    assert not any("samples" in h for h in hints if h.startswith("w:")), hints


def test_float32_arithmetic_is_not_called_a_kink():
    """Issue 16.3: float32 round-off used to be reported as [kink]."""
    class Float32Tanh:
        params, grads = {}, {}

        def forward(self, x, train=True):
            self.out = np.tanh(x.astype(np.float32))
            return self.out

        def backward(self, dout):
            return dout * (1 - self.out ** 2)

    rep = check_layer(Float32Tanh(), np.random.default_rng(24).standard_normal((4, 5)))
    assert "float32" in rep.codes and "kink" not in rep.codes, str(rep)
