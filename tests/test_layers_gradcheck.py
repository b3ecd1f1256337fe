"""Gradient checks for every layer: float64, centred differences, threshold 1e-6.

The relative error is max|a-b| / max(1e-8, max(|a|+|b|)) per tensor (see
minialex.gradcheck for why). Correct layers score 1e-9..1e-7 here; every
tensor -- dx and each entry of grads -- is checked.
"""
import numpy as np
import pytest

from minialex import gradcheck
from minialex.gradcheck.builtin import _distinct
from minialex.gradcheck import check_layer, check_loss, numerical_gradient, rel_error
from minialex.layers import (Conv2D, Dropout, Flatten, Linear, LocalResponseNorm, MaxPool2D, ReLU,
                             SoftmaxCrossEntropy, Tanh)
from minialex.layers.lrn import window_sum

THRESHOLD = 1e-6


def assert_passes(report):
    assert report.passed, str(report)
    names = {t.name for t in report.tensors}
    return names


@pytest.mark.parametrize("stride,pad,groups", [(1, 0, 1), (1, 1, 1), (2, 1, 2), (2, 2, 2), (3, 0, 1)])
def test_conv(stride, pad, groups):
    rng = np.random.default_rng(stride + pad + groups)
    layer = Conv2D(4, 6, 3, stride=stride, padding=pad, groups=groups, rng=rng, weight_std=0.5,
                   bias_init=0.1)
    rep = check_layer(layer, rng.standard_normal((2, 4, 7, 8)), threshold=THRESHOLD)
    assert assert_passes(rep) == {"dx", "w", "b"}


def test_relu_away_from_kink():
    x = _distinct(np.random.default_rng(0), (3, 4, 5))
    assert np.min(np.abs(x)) > 0.05
    assert_passes(check_layer(ReLU(), x, threshold=THRESHOLD))


def test_tanh():
    assert_passes(check_layer(Tanh(), np.random.default_rng(1).standard_normal((3, 7)),
                              threshold=THRESHOLD))


@pytest.mark.parametrize("alpha,k,conv", [(1e-4, 2.0, "paper"), (1.0, 1.0, "paper"),
                                          (1.0, 1.0, "pytorch"), (0.3, 0.5, "paper")])
def test_lrn(alpha, k, conv):
    x = np.random.default_rng(2).standard_normal((2, 8, 3, 3))
    layer = LocalResponseNorm(5, alpha, 0.75, k, alpha_convention=conv)
    assert_passes(check_layer(layer, x, threshold=THRESHOLD))


@pytest.mark.parametrize("kernels", ["fast", "reference"])
def test_lrn_per_tower_groups(kernels):
    from minialex.kernels import accelerate

    x = np.random.default_rng(12).standard_normal((2, 8, 3, 3))
    layer = accelerate(LocalResponseNorm(5, 1.0, 0.75, 1.0, groups=2), np, kernels)
    assert_passes(check_layer(layer, x, threshold=THRESHOLD))


def test_lrn_check_exposes_a_wrong_window():
    """With alpha=1, k=1 a window that forgets the clipping fails the check."""

    class WrongWindowLRN(LocalResponseNorm):
        def backward(self, dout):
            x, scale, out = self.cache
            dx = dout * scale ** (-self.beta)
            # Bug: a window of n-1 maps instead of n in the cross-channel term.
            dx -= 2 * self.coeff * self.beta * x * window_sum(dout * out / scale, self.size // 2 - 1)
            return dx

    x = np.random.default_rng(3).standard_normal((2, 8, 3, 3))
    # The subclass breaks the readable backward, whose cache it unpacks.
    rep = check_layer(WrongWindowLRN(5, 1.0, 0.75, 1.0), x, threshold=THRESHOLD)
    assert not rep.passed and rep["dx"].max_rel_error > 1e-3


def test_overlapping_maxpool():
    x = _distinct(np.random.default_rng(4), (2, 3, 9, 9))
    assert_passes(check_layer(MaxPool2D(3, 2), x, threshold=THRESHOLD))


def test_covering_maxpool():
    """cuda-convnet's pooling: 8x7 -> 4x3 with partial windows at the bottom and right."""
    x = _distinct(np.random.default_rng(5), (2, 3, 8, 7))
    layer = MaxPool2D(3, 2, cover=True)
    assert layer.output_shape((3, 8, 7)) == (3, 4, 3)
    assert_passes(check_layer(layer, x, threshold=THRESHOLD))


@pytest.mark.parametrize("mode", ["paper", "inverted"])
def test_dropout_frozen_mask(mode):
    rng = np.random.default_rng(5)
    layer = Dropout(0.5, mode=mode, rng=rng)
    layer.freeze((rng.random((4, 9)) >= 0.5).astype(np.float64))
    assert_passes(check_layer(layer, rng.standard_normal((4, 9)), threshold=THRESHOLD))


def test_linear_and_flatten():
    rng = np.random.default_rng(6)
    rep = check_layer(Linear(6, 5, rng=rng, weight_std=0.5, bias_init=0.2), rng.standard_normal((3, 6)),
                      threshold=THRESHOLD)
    assert assert_passes(rep) == {"dx", "w", "b"}
    assert_passes(check_layer(Flatten(), rng.standard_normal((2, 3, 2, 2)), threshold=THRESHOLD))


def test_softmax_cross_entropy():
    rng = np.random.default_rng(7)
    assert_passes(check_loss(SoftmaxCrossEntropy(), rng.standard_normal((6, 5)) * 3,
                             rng.integers(0, 5, 6), threshold=THRESHOLD))


def test_numerical_gradient_and_rel_error():
    x = np.array([1.0, -2.0, 3.0])
    g = numerical_gradient(lambda: np.sum(x ** 3), x)
    np.testing.assert_allclose(g, 3 * x ** 2, rtol=1e-8)
    np.testing.assert_array_equal(x, [1.0, -2.0, 3.0])       # restored exactly
    assert rel_error(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.0
    assert abs(rel_error(np.array([1.0]), np.array([1.1])) - 0.1 / 2.1) < 1e-12
    with pytest.raises(ValueError, match="shapes differ"):
        rel_error(np.zeros(2), np.zeros(3))


def test_report_is_readable():
    rep = check_layer(Tanh(), np.random.default_rng(8).standard_normal((2, 3)))
    text = str(rep)
    assert "Tanh" in text and "dx" in text and "PASS" in text


def test_cli_passes_all_layers(capsys):
    assert gradcheck.main([]) == 0
    out = capsys.readouterr().out
    for name in ("Conv2D", "ReLU", "Tanh", "LocalResponseNorm", "MaxPool2D", "Dropout", "Linear",
                 "SoftmaxCrossEntropy"):
        assert name in out
    assert "all layers pass" in out
    assert gradcheck.main(["--layer", "lrn"]) == 0


def test_check_layer_on_a_container_sees_every_parameter():
    """A Sequential builds its params dict on each access; the float64 copies
    must land in the sub-layers, or perturbations would be invisible (error 1)."""
    from minialex.layers import Sequential

    rng = np.random.default_rng(10)
    net = Sequential(("conv", Conv2D(2, 4, 3, padding=1, rng=rng, weight_std=0.5, dtype=np.float64)),
                     ("tanh", Tanh()), ("flat", Flatten()),
                     ("fc", Linear(4 * 5 * 5, 3, rng=rng, weight_std=0.3, dtype=np.float64)))
    rep = check_layer(net, rng.standard_normal((2, 2, 5, 5)), threshold=THRESHOLD)
    assert assert_passes(rep) == {"dx", "conv.w", "conv.b", "fc.w", "fc.b"}
